package carddav

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-webdav"
)

// Why hand-written XML: go-webdav keeps its element types in an internal
// package we cannot import, builds PROPFIND property maps inside unexported
// methods (no getctag, sync-token, supported-report-set or privileges can be
// added), rejects the sync-collection REPORT, writes a malformed PROPPATCH
// 207 and sets Content-Type after WriteHeader. So requests are read into a
// generic element tree and interpreted by name, and multistatus answers are
// written by hand with fixed prefixes (D, C, CS) that every client parses.

// XML namespaces of the properties and reports served here.
const (
	nsDAV     = "DAV:"
	nsCardDAV = "urn:ietf:params:xml:ns:carddav"
	nsCS      = "http://calendarserver.org/ns/"
)

// maxXMLBody bounds a request body that is parsed as XML. Thunderbird puts
// every href of a book into one multiget, so it must hold tens of thousands
// of hrefs.
const maxXMLBody = 16 << 20

func davName(local string) xml.Name  { return xml.Name{Space: nsDAV, Local: local} }
func cardName(local string) xml.Name { return xml.Name{Space: nsCardDAV, Local: local} }
func csName(local string) xml.Name   { return xml.Name{Space: nsCS, Local: local} }

// The properties and elements served or read here.
var (
	propResourceType         = davName("resourcetype")
	propDisplayName          = davName("displayname")
	propCurrentUserPrincipal = davName("current-user-principal")
	propPrincipalURL         = davName("principal-URL")
	propPrincipalCollection  = davName("principal-collection-set")
	propOwner                = davName("owner")
	propPrivileges           = davName("current-user-privilege-set")
	propReportSet            = davName("supported-report-set")
	propSyncToken            = davName("sync-token")
	propGetETag              = davName("getetag")
	propGetContentType       = davName("getcontenttype")
	propGetContentLength     = davName("getcontentlength")
	propGetLastModified      = davName("getlastmodified")
	propHomeSet              = cardName("addressbook-home-set")
	propDescription          = cardName("addressbook-description")
	propAddressData          = cardName("address-data")
	propSupportedData        = cardName("supported-address-data")
	propMaxResourceSize      = cardName("max-resource-size")
	propGetCTag              = csName("getctag")
	propMeCard               = csName("me-card")
)

// element is one XML element of a request body with its attributes,
// children and text.
type element struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []element  `xml:",any"`
	Text     string     `xml:",chardata"`
}

// child returns the first child with the given name, or nil.
func (e *element) child(name xml.Name) *element {
	if e == nil {
		return nil
	}
	for i := range e.Children {
		if e.Children[i].XMLName == name {
			return &e.Children[i]
		}
	}
	return nil
}

// attr returns the value of an attribute without namespace.
func (e *element) attr(local string) string {
	for _, a := range e.Attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// readXML reads a request body as XML; it returns nil for an empty body.
func readXML(r *http.Request) (*element, error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxXMLBody+1))
	if err != nil {
		return nil, webdav.NewHTTPError(http.StatusBadRequest, err)
	}
	if len(body) > maxXMLBody {
		return nil, webdav.NewHTTPError(http.StatusRequestEntityTooLarge, errors.New("carddav: XML body too large"))
	}
	return parseXML(body)
}

// parseXML parses a request body; it returns nil for an empty body.
func parseXML(body []byte) (*element, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	var root element
	if err := xml.Unmarshal(body, &root); err != nil {
		return nil, webdav.NewHTTPError(http.StatusBadRequest, fmt.Errorf("carddav: malformed XML: %w", err))
	}
	if !root.validNames() {
		return nil, webdav.NewHTTPError(http.StatusBadRequest, errors.New("carddav: malformed XML: bad element name"))
	}
	return &root, nil
}

// validNames reports whether every element name in the tree is an XML
// NCName. encoding/xml lets through names such as "<:/>", and property
// names are echoed in answers, where they must not break the document.
func (e *element) validNames() bool {
	if !isNCName(e.XMLName.Local) {
		return false
	}
	for i := range e.Children {
		if !e.Children[i].validNames() {
			return false
		}
	}
	return true
}

func isNCName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case unicode.IsLetter(r) || r == '_':
		case i > 0 && (unicode.IsDigit(r) || r == '-' || r == '.' || unicode.Is(unicode.Mn, r)):
		default:
			return false
		}
	}
	return true
}

// propRequest is what a PROPFIND or REPORT asks for: property names, all
// properties, or the names only.
type propRequest struct {
	propName bool
	allProp  bool
	props    []*element // named properties; with allProp, the DAV:include list
}

// find returns the request's element for a property, or nil.
func (q *propRequest) find(name xml.Name) *element {
	for _, p := range q.props {
		if p.XMLName == name {
			return p
		}
	}
	return nil
}

// parsePropRequest reads the DAV:prop, DAV:allprop or DAV:propname child of
// a PROPFIND or REPORT root.
func parsePropRequest(root *element) propRequest {
	var q propRequest
	if root.child(davName("propname")) != nil {
		q.propName = true
		return q
	}
	if root.child(davName("allprop")) != nil {
		q.allProp = true
		if inc := root.child(davName("include")); inc != nil {
			for i := range inc.Children {
				q.props = append(q.props, &inc.Children[i])
			}
		}
		return q
	}
	if p := root.child(davName("prop")); p != nil {
		for i := range p.Children {
			q.props = append(q.props, &p.Children[i])
		}
	}
	return q
}

// parsePropfind interprets a PROPFIND body; an empty body means allprop
// (RFC 4918 §9.1).
func parsePropfind(root *element) (propRequest, error) {
	if root == nil {
		return propRequest{allProp: true}, nil
	}
	if root.XMLName != davName("propfind") {
		return propRequest{}, webdav.NewHTTPError(http.StatusBadRequest, fmt.Errorf("carddav: expected DAV:propfind, got %s", root.XMLName.Local))
	}
	q := parsePropRequest(root)
	if !q.propName && !q.allProp && root.child(davName("prop")) == nil {
		return propRequest{}, webdav.NewHTTPError(http.StatusBadRequest, errors.New("carddav: PROPFIND without prop, allprop or propname"))
	}
	return q, nil
}

// prop is one property in an answer; value is its inner XML, written with
// the D, C and CS prefixes declared on the multistatus root.
type prop struct {
	name  xml.Name
	value string
}

type propstat struct {
	status int
	props  []prop
}

// response is one DAV:response: either a status for the href (deleted
// member, missing multiget href, truncation) or property blocks.
type response struct {
	href      string // already percent-encoded
	status    int
	propstats []propstat
}

// add puts a property into the block of the given status.
func (r *response) add(status int, p prop) {
	for i := range r.propstats {
		if r.propstats[i].status == status {
			r.propstats[i].props = append(r.propstats[i].props, p)
			return
		}
	}
	r.propstats = append(r.propstats, propstat{status: status, props: []prop{p}})
}

// multistatus is a 207 answer.
type multistatus struct {
	responses    []response
	syncToken    string
	hasSyncToken bool
}

func statusLine(code int) string {
	return fmt.Sprintf("HTTP/1.1 %d %s", code, http.StatusText(code))
}

// escapeText escapes character data. CR is written as &#xD; so vCard line
// ends survive XML's newline normalisation; quotes and LF stay literal, for
// readable answers; characters XML cannot carry become U+FFFD.
func escapeText(s string) string {
	var b strings.Builder
	last := 0 // s[last:i] is pending, needing no escape
	for i := 0; i < len(s); {
		c, size := s[i], 1
		var esc string
		switch {
		case c == '&':
			esc = "&amp;"
		case c == '<':
			esc = "&lt;"
		case c == '>':
			esc = "&gt;"
		case c == '\r':
			esc = "&#xD;"
		case c == '\n' || c == '\t':
		case c < 0x20:
			esc = "\uFFFD"
		case c >= utf8.RuneSelf:
			var r rune
			r, size = utf8.DecodeRuneInString(s[i:])
			if (r == utf8.RuneError && size == 1) || r == 0xFFFE || r == 0xFFFF {
				esc = "\uFFFD"
			}
		}
		if esc != "" {
			if b.Len() == 0 {
				b.Grow(len(s) + len(s)/8)
			}
			b.WriteString(s[last:i])
			b.WriteString(esc)
			last = i + size
		}
		i += size
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// escapeAttr escapes an attribute value.
func escapeAttr(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// writeName writes an element's opening (or, with closing, its closing) tag
// with the root's prefix for known namespaces and a local declaration for
// any other.
func writeName(b *bytes.Buffer, n xml.Name, closing bool) {
	prefix := ""
	switch n.Space {
	case nsDAV:
		prefix = "D:"
	case nsCardDAV:
		prefix = "C:"
	case nsCS:
		prefix = "CS:"
	case "":
	default:
		prefix = "X:"
	}
	if closing {
		b.WriteString("</" + prefix + n.Local + ">")
		return
	}
	b.WriteString("<" + prefix + n.Local)
	if prefix == "X:" {
		b.WriteString(` xmlns:X="` + escapeAttr(n.Space) + `"`)
	}
}

func writeProp(b *bytes.Buffer, p prop) {
	writeName(b, p.name, false)
	if p.value == "" {
		b.WriteString("/>")
		return
	}
	b.WriteString(">")
	b.WriteString(p.value)
	writeName(b, p.name, true)
}

// encode renders the multistatus document; 200 blocks come first in every
// response because Thunderbird reads only the first status.
func (ms *multistatus) encode() []byte {
	var b bytes.Buffer
	b.Grow(ms.sizeHint())
	b.WriteString(xml.Header)
	b.WriteString(`<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav" xmlns:CS="http://calendarserver.org/ns/">`)
	for _, r := range ms.responses {
		b.WriteString("<D:response><D:href>" + escapeText(r.href) + "</D:href>")
		if len(r.propstats) == 0 {
			status := r.status
			if status == 0 {
				status = http.StatusOK
			}
			b.WriteString("<D:status>" + statusLine(status) + "</D:status>")
		}
		stats := append([]propstat(nil), r.propstats...)
		for i := 1; i < len(stats); i++ { // insertion sort by status; a handful of blocks
			for j := i; j > 0 && stats[j].status < stats[j-1].status; j-- {
				stats[j], stats[j-1] = stats[j-1], stats[j]
			}
		}
		for _, ps := range stats {
			b.WriteString("<D:propstat><D:prop>")
			for _, p := range ps.props {
				writeProp(&b, p)
			}
			b.WriteString("</D:prop><D:status>" + statusLine(ps.status) + "</D:status></D:propstat>")
		}
		b.WriteString("</D:response>")
	}
	if ms.hasSyncToken {
		b.WriteString("<D:sync-token>" + escapeText(ms.syncToken) + "</D:sync-token>")
	}
	b.WriteString("</D:multistatus>\n")
	return b.Bytes()
}

// sizeHint estimates the length of the encoded document, so that encode
// allocates once instead of doubling its buffer through a multiget of
// thousands of cards.
func (ms *multistatus) sizeHint() int {
	n := len(xml.Header) + 256 + len(ms.syncToken)
	for _, r := range ms.responses {
		n += 96 + len(r.href)
		for _, ps := range r.propstats {
			n += 96
			for _, p := range ps.props {
				n += 2*len(p.name.Local) + len(p.value) + 16
			}
		}
	}
	return n
}

// writeMultistatus sends a 207, with its Content-Type set before the status
// line (go-webdav sets it after, so it is lost there).
func writeMultistatus(w http.ResponseWriter, ms *multistatus) {
	body := ms.encode()
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusMultiStatus)
	_, _ = w.Write(body)
}

// writeMultistatus answers a PROPFIND or REPORT. With "Prefer:
// return=minimal" (RFC 8144) or Apple's older "Brief: t", the 404 blocks of
// properties the resource lacks are left out: iOS asks for many it will not
// get, on every member.
func (s *session) writeMultistatus(w http.ResponseWriter, ms *multistatus) {
	if preferMinimal(s.r) {
		for i := range ms.responses {
			r := &ms.responses[i]
			kept := r.propstats[:0]
			for _, ps := range r.propstats {
				if ps.status != http.StatusNotFound {
					kept = append(kept, ps)
				}
			}
			if len(kept) > 0 {
				r.propstats = kept
			}
		}
		w.Header().Set("Preference-Applied", "return=minimal")
	}
	writeMultistatus(w, ms)
}

// preferMinimal reads the Prefer and Brief headers.
func preferMinimal(r *http.Request) bool {
	if strings.EqualFold(strings.TrimSpace(r.Header.Get("Brief")), "t") {
		return true
	}
	for _, v := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "return=minimal") {
				return true
			}
		}
	}
	return false
}

// hrefValue is the inner XML of a property holding one DAV:href.
func hrefValue(href string) string {
	return "<D:href>" + escapeText(href) + "</D:href>"
}

func xmlName(ns, local string) xml.Name { return xml.Name{Space: ns, Local: local} }
