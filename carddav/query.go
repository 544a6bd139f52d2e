package carddav

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/emersion/go-vcard"
	"github.com/emersion/go-webdav"
)

// Why our own matcher: go-webdav's carddav.Match looks at the first instance
// of a property only, ignores param-filter and compares case-sensitively,
// while RFC 6352 §10.5 asks for every instance and the case-insensitive
// i;unicode-casemap collation by default. Cards are parsed with go-vcard just
// for matching; the raw bytes are what the answer carries.

// cardFilter is a CARDDAV:filter.
type cardFilter struct {
	allOf bool
	props []propFilter
}

type propFilter struct {
	name       string // upper case
	allOf      bool
	notDefined bool
	texts      []textMatch
	params     []paramFilter
}

type paramFilter struct {
	name       string // upper case
	notDefined bool
	text       *textMatch
}

type textMatch struct {
	text      string
	negate    bool
	matchType string
	fold      bool // case-insensitive collation
}

// parseTest reads an anyof/allof test attribute; anyof is the default.
func parseTest(el *element) (allOf bool, err error) {
	switch el.attr("test") {
	case "", "anyof":
		return false, nil
	case "allof":
		return true, nil
	}
	return false, &PreconditionError{Status: http.StatusBadRequest, Condition: supportedFilter,
		Err: fmt.Errorf("test %q", el.attr("test"))}
}

func parseTextMatch(el *element) (textMatch, error) {
	tm := textMatch{text: el.Text, matchType: el.attr("match-type"), negate: el.attr("negate-condition") == "yes"}
	switch el.attr("collation") {
	case "", "i;unicode-casemap", "i;ascii-casemap":
		tm.fold = true
	case "i;octet":
	default:
		return tm, &PreconditionError{Status: http.StatusForbidden, Condition: supportedCollation,
			Err: fmt.Errorf("collation %q", el.attr("collation"))}
	}
	switch tm.matchType {
	case "":
		tm.matchType = "contains"
	case "equals", "contains", "starts-with", "ends-with":
	default:
		return tm, &PreconditionError{Status: http.StatusBadRequest, Condition: supportedFilter,
			Err: fmt.Errorf("match-type %q", tm.matchType)}
	}
	if tm.fold {
		tm.text = strings.ToLower(tm.text)
	}
	return tm, nil
}

// parseFilter reads a CARDDAV:filter element; nil matches every card.
func parseFilter(el *element) (cardFilter, error) {
	var f cardFilter
	if el == nil {
		return f, nil
	}
	var err error
	if f.allOf, err = parseTest(el); err != nil {
		return f, err
	}
	for i := range el.Children {
		pe := &el.Children[i]
		if pe.XMLName != cardName("prop-filter") {
			continue
		}
		pf := propFilter{name: strings.ToUpper(pe.attr("name"))}
		if pf.name == "" {
			return f, &PreconditionError{Status: http.StatusBadRequest, Condition: supportedFilter,
				Err: fmt.Errorf("prop-filter without name")}
		}
		if pf.allOf, err = parseTest(pe); err != nil {
			return f, err
		}
		for j := range pe.Children {
			c := &pe.Children[j]
			switch c.XMLName {
			case cardName("is-not-defined"):
				pf.notDefined = true
			case cardName("text-match"):
				tm, err := parseTextMatch(c)
				if err != nil {
					return f, err
				}
				pf.texts = append(pf.texts, tm)
			case cardName("param-filter"):
				par := paramFilter{name: strings.ToUpper(c.attr("name"))}
				if c.child(cardName("is-not-defined")) != nil {
					par.notDefined = true
				} else if te := c.child(cardName("text-match")); te != nil {
					tm, err := parseTextMatch(te)
					if err != nil {
						return f, err
					}
					par.text = &tm
				}
				pf.params = append(pf.params, par)
			}
		}
		f.props = append(f.props, pf)
	}
	return f, nil
}

func (tm textMatch) match(value string) bool {
	if tm.fold {
		value = strings.ToLower(value)
	}
	var ok bool
	switch tm.matchType {
	case "equals":
		ok = value == tm.text
	case "starts-with":
		ok = strings.HasPrefix(value, tm.text)
	case "ends-with":
		ok = strings.HasSuffix(value, tm.text)
	default:
		ok = strings.Contains(value, tm.text)
	}
	return ok != tm.negate
}

func (pf paramFilter) match(f *vcard.Field) bool {
	var values []string
	found := false
	for k, v := range f.Params {
		if strings.EqualFold(k, pf.name) {
			values, found = append(values, v...), true
		}
	}
	if pf.notDefined || !found {
		return pf.notDefined != found
	}
	if pf.text == nil {
		return true
	}
	for _, v := range values {
		if pf.text.match(v) {
			return true
		}
	}
	return false
}

// matchField applies a prop-filter's tests to one property instance.
func (pf propFilter) matchField(f *vcard.Field) bool {
	n := len(pf.texts) + len(pf.params)
	if n == 0 {
		return true
	}
	hits := 0
	for _, tm := range pf.texts {
		if tm.match(f.Value) {
			hits++
		}
	}
	for _, p := range pf.params {
		if p.match(f) {
			hits++
		}
	}
	if pf.allOf {
		return hits == n
	}
	return hits > 0
}

func (pf propFilter) match(card vcard.Card) bool {
	var fields []*vcard.Field
	for k, fs := range card {
		if strings.EqualFold(k, pf.name) {
			fields = append(fields, fs...)
		}
	}
	if pf.notDefined {
		return len(fields) == 0
	}
	for _, f := range fields {
		if pf.matchField(f) {
			return true
		}
	}
	return false
}

func (f cardFilter) match(card vcard.Card) bool {
	if len(f.props) == 0 {
		return true
	}
	for _, pf := range f.props {
		ok := pf.match(card)
		if ok && !f.allOf {
			return true
		}
		if !ok && f.allOf {
			return false
		}
	}
	return f.allOf
}

// parseLimit reads a limit element's nresults (0: none).
func parseLimit(el *element, ns string) (int, error) {
	if el == nil {
		return 0, nil
	}
	nr := el.child(xmlName(ns, "nresults"))
	if nr == nil {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(nr.Text))
	if err != nil || n < 0 {
		return 0, webdav.NewHTTPError(http.StatusBadRequest, fmt.Errorf("carddav: bad nresults %q", nr.Text))
	}
	return n, nil
}

// addressbookQuery answers the addressbook-query REPORT (RFC 6352 §8.6) over
// a book's members; past the client's limit, the request-URI gets a 507.
func (s *session) addressbookQuery(w http.ResponseWriter, t target, root *element) error {
	if t.kind != kindBook {
		return &PreconditionError{Status: http.StatusForbidden, Condition: supportedReport}
	}
	filter, err := parseFilter(root.child(cardName("filter")))
	if err != nil {
		return err
	}
	limit, err := parseLimit(root.child(cardName("limit")), nsCardDAV)
	if err != nil {
		return err
	}
	q := parsePropRequest(root)
	_, version, err := cardRequest(q)
	if err != nil {
		return err
	}
	infos, err := s.be.ListObjects(s.r.Context(), t.book)
	if err != nil {
		return err
	}
	loaded, err := s.loadListed(t.book, infos, version)
	if err != nil {
		return err
	}
	ms := &multistatus{}
	for _, in := range infos {
		o, ok := loaded[in.Name]
		if !ok {
			continue
		}
		card, err := vcard.NewDecoder(bytes.NewReader(o.card)).Decode()
		if err != nil || !filter.match(card) {
			continue
		}
		if limit > 0 && len(ms.responses) == limit {
			ms.responses = append(ms.responses, response{href: t.href(), status: http.StatusInsufficientStorage})
			break
		}
		resp, err := respond(t.member(in.Name, false), s.objectProps(o), q)
		if err != nil {
			return err
		}
		ms.responses = append(ms.responses, resp)
	}
	s.writeMultistatus(w, ms)
	return nil
}
