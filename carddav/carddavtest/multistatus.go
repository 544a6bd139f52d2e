package carddavtest

import (
	"encoding/xml"
	"net/http"
	"strings"
	"testing"
)

// StatusOK is the status line of a propstat whose properties were found.
const StatusOK = "HTTP/1.1 200 OK"

// Multistatus is a decoded 207 Multi-Status answer (RFC 4918 §13).
type Multistatus struct {
	XMLName   xml.Name   `xml:"DAV: multistatus"`
	Responses []Response `xml:"DAV: response"`
	SyncToken *string    `xml:"DAV: sync-token"`
}

// Response is one DAV:response of a Multistatus.
type Response struct {
	Href      string     `xml:"DAV: href"`
	Status    string     `xml:"DAV: status"`
	Propstats []Propstat `xml:"DAV: propstat"`
}

// Propstat is one DAV:propstat of a Response: properties and their status.
type Propstat struct {
	Prop struct {
		Props []Element `xml:",any"`
	} `xml:"DAV: prop"`
	Status string `xml:"DAV: status"`
}

// Element is one XML element: its name, attributes, raw inner XML, text
// and child elements.
type Element struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Inner    string     `xml:",innerxml"`
	Text     string     `xml:",chardata"`
	Children []Element  `xml:",any"`
}

// ParseMultistatus decodes a 207 answer, failing the test unless its status
// is 207, its Content-Type the handler's "application/xml; charset=utf-8"
// and its body a DAV:multistatus.
func ParseMultistatus(t testing.TB, resp *http.Response, body string) *Multistatus {
	t.Helper()
	what := "response"
	if resp.Request != nil {
		what = resp.Request.Method + " " + resp.Request.URL.Path
	}
	if resp.StatusCode != http.StatusMultiStatus {
		t.Fatalf("%s = %d, want 207:\n%s", what, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/xml; charset=utf-8" {
		t.Errorf("%s: Content-Type = %q, want application/xml; charset=utf-8", what, ct)
	}
	var ms Multistatus
	if err := xml.Unmarshal([]byte(body), &ms); err != nil {
		t.Fatalf("%s: bad multistatus: %v\n%s", what, err, body)
	}
	return &ms
}

// Find returns the response for href, or nil if there is none.
func (ms *Multistatus) Find(href string) *Response {
	for i := range ms.Responses {
		if ms.Responses[i].Href == href {
			return &ms.Responses[i]
		}
	}
	return nil
}

// Response returns the response for href, failing the test if there is
// none.
func (ms *Multistatus) Response(t testing.TB, href string) *Response {
	t.Helper()
	r := ms.Find(href)
	if r == nil {
		t.Fatalf("no response for %q among %q", href, ms.Hrefs())
	}
	return r
}

// Hrefs returns the href of every response, in document order.
func (ms *Multistatus) Hrefs() []string {
	var out []string
	for _, r := range ms.Responses {
		out = append(out, r.Href)
	}
	return out
}

// Members returns the responses below the collection href, the collection
// itself left out.
func (ms *Multistatus) Members(collection string) []*Response {
	var out []*Response
	for i := range ms.Responses {
		if r := &ms.Responses[i]; r.Href != collection && strings.HasPrefix(r.Href, collection) {
			out = append(out, r)
		}
	}
	return out
}

// Prop returns property ns local with the status line of its propstat, or
// status "" when no propstat holds it.
func (r *Response) Prop(ns, local string) (string, Element) {
	for _, ps := range r.Propstats {
		for _, p := range ps.Prop.Props {
			if p.XMLName.Space == ns && p.XMLName.Local == local {
				return ps.Status, p
			}
		}
	}
	return "", Element{}
}

// OK returns property ns local, failing the test unless it stands in a 200
// propstat.
func (r *Response) OK(t testing.TB, ns, local string) Element {
	t.Helper()
	st, p := r.Prop(ns, local)
	if st != StatusOK {
		t.Fatalf("%s: {%s}%s has status %q, want %q", r.Href, ns, local, st, StatusOK)
	}
	return p
}

// Has reports whether a descendant of the element is named ns local.
func (e Element) Has(ns, local string) bool {
	for _, c := range e.Children {
		if (c.XMLName.Space == ns && c.XMLName.Local == local) || c.Has(ns, local) {
			return true
		}
	}
	return false
}

// Hrefs returns the trimmed text of every DAV:href below the element, in
// document order.
func (e Element) Hrefs() []string {
	var out []string
	for _, c := range e.Children {
		if c.XMLName.Space == "DAV:" && c.XMLName.Local == "href" {
			out = append(out, strings.TrimSpace(c.Text))
		}
		out = append(out, c.Hrefs()...)
	}
	return out
}
