package carddav

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/emersion/go-webdav"
)

// vcardContentType is the media type of every served vCard.
const vcardContentType = "text/vcard; charset=utf-8"

// propSource answers the properties of one resource.
type propSource struct {
	names   []xml.Name // every property it has, for DAV:propname
	allprop []xml.Name // the ones DAV:allprop returns
	// get returns a property's inner XML, whether the resource has it,
	// and an error that fails the whole request.
	get func(el *element) (string, bool, error)
}

// respond answers a property request for one resource: found properties
// in a 200 block, the others in a 404 block.
func respond(href string, src propSource, q propRequest) (response, error) {
	r := response{href: href}
	if q.propName {
		for _, n := range src.names {
			r.add(http.StatusOK, prop{name: n})
		}
		return r, nil
	}
	seen := map[xml.Name]bool{}
	if q.allProp {
		for _, n := range src.allprop {
			v, ok, err := src.get(&element{XMLName: n})
			if err != nil {
				return r, err
			}
			if ok {
				r.add(http.StatusOK, prop{name: n, value: v})
				seen[n] = true
			}
		}
	}
	for _, el := range q.props {
		if seen[el.XMLName] {
			continue
		}
		seen[el.XMLName] = true
		v, ok, err := src.get(el)
		if err != nil {
			return r, err
		}
		if ok {
			r.add(http.StatusOK, prop{name: el.XMLName, value: v})
		} else {
			r.add(http.StatusNotFound, prop{name: el.XMLName})
		}
	}
	return r, nil
}

// privilegeSet renders DAV:current-user-privilege-set.
func privilegeSet(privs ...string) string {
	var b strings.Builder
	for _, p := range privs {
		b.WriteString("<D:privilege><D:" + p + "/></D:privilege>")
	}
	return b.String()
}

// The privileges by resource kind: the books are fully writable (Thunderbird
// and DAVx5 mark a book read-only without write; Apple may, too), the home
// set admits new books (DAVx5's "create address book") and the me-card.
var (
	privsReadOnly = privilegeSet("read", "read-current-user-privilege-set")
	privsHome     = privilegeSet("read", "bind", "unbind", "write-properties", "read-current-user-privilege-set")
	privsBook     = privilegeSet("read", "write", "write-properties", "write-content", "bind", "unbind", "read-current-user-privilege-set")
	privsObject   = privilegeSet("read", "write", "write-content", "read-current-user-privilege-set")
)

// bookReports is the book's DAV:supported-report-set; DAVx5 uses
// sync-collection only when it is listed.
const bookReports = `<D:supported-report><D:report><C:addressbook-multiget/></D:report></D:supported-report>` +
	`<D:supported-report><D:report><C:addressbook-query/></D:report></D:supported-report>` +
	`<D:supported-report><D:report><D:sync-collection/></D:report></D:supported-report>`

// supportedAddressData lists 3.0 first: it is what is served by default,
// and the one Apple reads.
const supportedAddressData = `<C:address-data-type content-type="text/vcard" version="3.0"/>` +
	`<C:address-data-type content-type="text/vcard" version="4.0"/>`

// common answers the properties every resource of the user has.
func (s *session) common(el *element) (string, bool) {
	switch el.XMLName {
	case propCurrentUserPrincipal:
		return hrefValue(principalHref(s.user)), true
	case propPrincipalCollection:
		return hrefValue("/"), true
	}
	return "", false
}

// commonNames are the names common answers.
var commonNames = []xml.Name{propCurrentUserPrincipal, propPrincipalCollection}

// rootProps answers for "/", which only points at the principal.
func (s *session) rootProps() propSource {
	return propSource{
		names:   append([]xml.Name{propResourceType, propPrivileges}, commonNames...),
		allprop: []xml.Name{propResourceType},
		get: func(el *element) (string, bool, error) {
			switch el.XMLName {
			case propResourceType:
				return "<D:collection/>", true, nil
			case propPrivileges:
				return privsReadOnly, true, nil
			}
			v, ok := s.common(el)
			return v, ok, nil
		},
	}
}

// principalProps answers for the user's principal (RFC 3744, RFC 6352 §7.1).
func (s *session) principalProps() propSource {
	return propSource{
		names: append([]xml.Name{propResourceType, propDisplayName, propPrincipalURL,
			propHomeSet, propPrivileges}, commonNames...),
		allprop: []xml.Name{propResourceType, propDisplayName},
		get: func(el *element) (string, bool, error) {
			switch el.XMLName {
			case propResourceType:
				return "<D:collection/><D:principal/>", true, nil
			case propDisplayName:
				return escapeText(s.user), true, nil
			case propPrincipalURL:
				return hrefValue(principalHref(s.user)), true, nil
			case propHomeSet:
				return hrefValue(homeHref(s.user)), true, nil
			case propPrivileges:
				return privsReadOnly, true, nil
			}
			v, ok := s.common(el)
			return v, ok, nil
		},
	}
}

// homeProps answers for the address book home set.
func (s *session) homeProps() propSource {
	return propSource{
		names: append([]xml.Name{propResourceType, propDisplayName, propOwner,
			propPrivileges, propMeCard}, commonNames...),
		allprop: []xml.Name{propResourceType, propDisplayName},
		get: func(el *element) (string, bool, error) {
			switch el.XMLName {
			case propResourceType:
				return "<D:collection/>", true, nil
			case propDisplayName:
				return "Address books", true, nil
			case propOwner:
				return hrefValue(principalHref(s.user)), true, nil
			case propPrivileges:
				return privsHome, true, nil
			case propMeCard:
				if v, ok := s.meCards.Load(s.user); ok {
					return hrefValue(v.(string)), true, nil
				}
				return "", false, nil
			}
			v, ok := s.common(el)
			return v, ok, nil
		},
	}
}

// maxSize is the largest vCard a book accepts: the handler's limit, or the
// backend's if smaller.
func (s *session) maxSize(ab *AddressBook) int64 {
	if ab != nil && ab.MaxResourceSize > 0 && ab.MaxResourceSize < s.opts.MaxResourceSize {
		return ab.MaxResourceSize
	}
	return s.opts.MaxResourceSize
}

// bookProps answers for an address book.
func (s *session) bookProps(ab *AddressBook) propSource {
	return propSource{
		names: append([]xml.Name{propResourceType, propDisplayName, propDescription, propSyncToken,
			propGetCTag, propReportSet, propPrivileges, propSupportedData, propMaxResourceSize,
			propOwner}, commonNames...),
		// RFC 6578 §4: sync-token is not part of allprop.
		allprop: []xml.Name{propResourceType, propDisplayName, propDescription},
		get: func(el *element) (string, bool, error) {
			switch el.XMLName {
			case propResourceType:
				return "<D:collection/><C:addressbook/>", true, nil
			case propDisplayName:
				if ab.DisplayName == "" {
					return escapeText(ab.Name), true, nil
				}
				return escapeText(ab.DisplayName), true, nil
			case propDescription:
				return escapeText(ab.Description), ab.Description != "", nil
			case propSyncToken, propGetCTag:
				// The same value: getctag must change whenever any member
				// does, which the sync token already guarantees.
				return escapeText(ab.SyncToken), ab.SyncToken != "", nil
			case propReportSet:
				return bookReports, true, nil
			case propPrivileges:
				return privsBook, true, nil
			case propSupportedData:
				return supportedAddressData, true, nil
			case propMaxResourceSize:
				return strconv.FormatInt(s.maxSize(ab), 10), true, nil
			case propOwner:
				return hrefValue(principalHref(s.user)), true, nil
			}
			v, ok := s.common(el)
			return v, ok, nil
		},
	}
}

// objectData is an object's version and, when loaded, its card.
type objectData struct {
	ObjectInfo
	card   []byte
	loaded bool
}

// objectProps answers for an address object.
func (s *session) objectProps(o objectData) propSource {
	return propSource{
		names: append([]xml.Name{propResourceType, propGetETag, propGetContentType,
			propGetLastModified, propGetContentLength, propAddressData, propPrivileges}, commonNames...),
		allprop: []xml.Name{propResourceType, propGetETag, propGetContentType, propGetLastModified, propGetContentLength},
		get: func(el *element) (string, bool, error) {
			switch el.XMLName {
			case propResourceType:
				return "", true, nil
			case propGetETag:
				return escapeText(o.ETag), o.ETag != "", nil
			case propGetContentType:
				return vcardContentType, true, nil
			case propGetLastModified:
				if o.ModTime.IsZero() {
					return "", false, nil
				}
				return o.ModTime.UTC().Format(http.TimeFormat), true, nil
			case propGetContentLength:
				return strconv.Itoa(len(o.card)), o.loaded, nil
			case propAddressData:
				if !o.loaded {
					return "", false, nil
				}
				return escapeText(string(selectProperties(o.card, requestedCardProps(el)))), true, nil
			case propPrivileges:
				return privsObject, true, nil
			}
			v, ok := s.common(el)
			return v, ok, nil
		},
	}
}

// cardRequest tells whether a property request needs the cards themselves
// and in which vCard version.
func cardRequest(q propRequest) (need bool, version string, err error) {
	version = "3.0"
	if el := q.find(propAddressData); el != nil {
		v, err := addressDataVersion(el)
		if err != nil {
			return false, "", err
		}
		return true, v, nil
	}
	return q.find(propGetContentLength) != nil, version, nil
}

// addressDataVersion reads the version a CARDDAV:address-data element asks
// for: 3.0 unless 4.0 is named, because macOS rejects 4.0 (clients.md §0).
func addressDataVersion(el *element) (string, error) {
	if ct := el.attr("content-type"); ct != "" && !strings.EqualFold(ct, "text/vcard") {
		return "", &PreconditionError{Status: http.StatusForbidden, Condition: supportedAddressDataConversion,
			Err: fmt.Errorf("content-type %q", ct)}
	}
	switch v := el.attr("version"); v {
	case "", "3.0":
		return "3.0", nil
	case "4.0":
		return "4.0", nil
	default:
		return "", &PreconditionError{Status: http.StatusForbidden, Condition: supportedAddressDataConversion,
			Err: fmt.Errorf("version %q", v)}
	}
}

// parseDepth reads a Depth header. Depth: infinity is answered as 1: below
// the home set the tree is two levels deep, and a bounded listing serves
// generic clients better than a refusal. A missing header takes def.
func parseDepth(r *http.Request, def int) (int, error) {
	switch strings.TrimSpace(r.Header.Get("Depth")) {
	case "":
		return def, nil
	case "0":
		return 0, nil
	case "1", "infinity", "Infinity":
		return 1, nil
	}
	return 0, webdav.NewHTTPError(http.StatusBadRequest, fmt.Errorf("carddav: bad Depth %q", r.Header.Get("Depth")))
}

// loadObjects fetches the named objects' cards, keyed by name.
func (s *session) loadObjects(book string, names []string, version string) (map[string]objectData, error) {
	out := make(map[string]objectData, len(names))
	if len(names) == 0 {
		return out, nil
	}
	objs, err := s.be.GetObjects(s.r.Context(), book, names, version)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		out[o.Name] = objectData{ObjectInfo: o.ObjectInfo, card: o.Card, loaded: true}
	}
	return out, nil
}

// loadListed fetches the cards of listed objects, keyed by name.
func (s *session) loadListed(book string, infos []ObjectInfo, version string) (map[string]objectData, error) {
	names := make([]string, len(infos))
	for i, in := range infos {
		names[i] = in.Name
	}
	return s.loadObjects(book, names, version)
}

// propfind answers PROPFIND (RFC 4918 §9.1). A missing Depth counts as 1
// (see parseDepth).
func (s *session) propfind(w http.ResponseWriter, t target) error {
	root, err := readXML(s.r)
	if err != nil {
		return err
	}
	q, err := parsePropfind(root)
	if err != nil {
		return err
	}
	depth, err := parseDepth(s.r, 1)
	if err != nil {
		return err
	}
	ms := &multistatus{}
	add := func(href string, src propSource) error {
		resp, err := respond(href, src, q)
		if err != nil {
			return err
		}
		ms.responses = append(ms.responses, resp)
		return nil
	}
	if err := s.collect(t, q, depth, add); err != nil {
		return err
	}
	s.writeMultistatus(w, ms)
	return nil
}

// collect adds the responses of a PROPFIND on t, and of its members when
// depth is 1.
func (s *session) collect(t target, q propRequest, depth int, add func(string, propSource) error) error {
	ctx := s.r.Context()
	switch t.kind {
	case kindRoot:
		if err := add("/", s.rootProps()); err != nil || depth == 0 {
			return err
		}
		return add(principalHref(s.user), s.principalProps())
	case kindPrincipal:
		if err := add(t.href(), s.principalProps()); err != nil || depth == 0 {
			return err
		}
		return add(t.member(homeSegment, true), s.homeProps())
	case kindHome:
		if err := add(t.href(), s.homeProps()); err != nil || depth == 0 {
			return err
		}
		books, err := s.be.ListAddressBooks(ctx)
		if err != nil {
			return err
		}
		for i := range books {
			if err := add(t.member(books[i].Name, true), s.bookProps(&books[i])); err != nil {
				return err
			}
		}
		return nil
	case kindBook:
		ab, err := s.be.AddressBook(ctx, t.book)
		if err != nil {
			return err
		}
		if err := add(t.href(), s.bookProps(ab)); err != nil || depth == 0 {
			return err
		}
		return s.listMembers(t, q, add)
	case kindObject:
		need, version, err := cardRequest(q)
		if err != nil {
			return err
		}
		objs, err := s.be.GetObjects(ctx, t.book, []string{t.name}, version)
		if err != nil {
			return err
		}
		if len(objs) == 0 {
			return webdav.NewHTTPError(http.StatusNotFound, nil)
		}
		o := objectData{ObjectInfo: objs[0].ObjectInfo}
		if need {
			o.card, o.loaded = objs[0].Card, true
		}
		return add(t.href(), s.objectProps(o))
	}
	return nil
}

// listMembers answers a book's members, loading cards only when asked for.
func (s *session) listMembers(t target, q propRequest, add func(string, propSource) error) error {
	infos, err := s.be.ListObjects(s.r.Context(), t.book)
	if err != nil {
		return err
	}
	need, version, err := cardRequest(q)
	if err != nil {
		return err
	}
	var loaded map[string]objectData
	if need {
		if loaded, err = s.loadListed(t.book, infos, version); err != nil {
			return err
		}
	}
	for _, in := range infos {
		o := objectData{ObjectInfo: in}
		if l, ok := loaded[in.Name]; ok {
			o = l
		} else if need {
			continue // deleted between the listing and the fetch
		}
		if err := add(t.member(in.Name, false), s.objectProps(o)); err != nil {
			return err
		}
	}
	return nil
}
