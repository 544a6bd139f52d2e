package graphemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// kind is the wire type of a contact property.
type kind int

const (
	kString  kind = iota // String, null when unset
	kStrings             // String[], [] when unset
	kEmails              // emailAddress[], [] when unset
	kAddress             // physicalAddress, {} when unset
	kDate                // DateTimeOffset, null when unset
)

// field is one writable property of the v1.0 contact resource.
type field struct {
	name string
	kind kind
	max  int    // collection cap (0 = none)
	cap  string // name used in the multi-value error message
}

// schema lists the writable contact properties in the order Graph returns
// them (the update-contact sample response); read-only properties
// (id, createdDateTime, lastModifiedDateTime, changeKey, parentFolderId)
// are rendered separately ahead of them.
var schema = []field{
	{name: "categories", kind: kStrings},
	{name: "birthday", kind: kDate},
	{name: "fileAs", kind: kString},
	{name: "displayName", kind: kString},
	{name: "givenName", kind: kString},
	{name: "initials", kind: kString},
	{name: "middleName", kind: kString},
	{name: "nickName", kind: kString},
	{name: "surname", kind: kString},
	{name: "title", kind: kString},
	{name: "yomiGivenName", kind: kString},
	{name: "yomiSurname", kind: kString},
	{name: "yomiCompanyName", kind: kString},
	{name: "generation", kind: kString},
	{name: "emailAddresses", kind: kEmails, max: 3, cap: "EmailAddresses"},
	// imAddresses ≤3 and homePhones ≤2 are [inf] (Exchange's ImAddress1-3 and
	// HomePhone/HomePhone2 slots); the other two caps are documented.
	{name: "imAddresses", kind: kStrings, max: 3, cap: "ImAddresses"},
	{name: "jobTitle", kind: kString},
	{name: "companyName", kind: kString},
	{name: "department", kind: kString},
	{name: "officeLocation", kind: kString},
	{name: "profession", kind: kString},
	{name: "businessHomePage", kind: kString},
	{name: "assistantName", kind: kString},
	{name: "manager", kind: kString},
	{name: "homePhones", kind: kStrings, max: 2, cap: "HomePhones"},
	{name: "mobilePhone", kind: kString},
	{name: "businessPhones", kind: kStrings, max: 2, cap: "BusinessPhones"},
	{name: "homeAddress", kind: kAddress},
	{name: "businessAddress", kind: kAddress},
	{name: "otherAddress", kind: kAddress},
	{name: "spouseName", kind: kString},
	{name: "personalNotes", kind: kString},
	{name: "children", kind: kStrings},
}

// readOnly are the outlookItem properties a client cannot set; Graph ignores
// them in a request body [inf] (the SDKs send back what they read).
var readOnly = map[string]bool{
	"id": true, "createdDateTime": true, "lastModifiedDateTime": true, "changeKey": true,
	"@odata.etag": true, "@odata.type": true, "@odata.context": true,
}

var schemaByName = func() map[string]field {
	m := map[string]field{}
	for _, f := range schema {
		m[f.name] = f
	}
	return m
}()

// selectable maps the lower-cased name of every selectable property to its
// canonical spelling ($select is case-insensitive in Graph).
var selectable = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{"id", "createdDateTime", "lastModifiedDateTime", "changeKey", "parentFolderId"} {
		m[strings.ToLower(n)] = n
	}
	for _, f := range schema {
		m[strings.ToLower(f.name)] = f.name
	}
	return m
}()

var addressKeys = map[string]bool{"street": true, "city": true, "state": true, "postalCode": true, "countryOrRegion": true}

// contact is one stored contact. Props holds only set properties as
// normalized JSON; unset ones render as Graph's empties.
type contact struct {
	ID         string                     `json:"id"`    // immutable id
	RegID      string                     `json:"regId"` // regular id, new on every move
	Folder     string                     `json:"folder"`
	Props      map[string]json.RawMessage `json:"props"`
	Ext        map[string]extProp         `json:"ext,omitempty"` // key: lower-cased property id
	ChangeKey  string                     `json:"changeKey"`
	Created    time.Time                  `json:"created"`
	Modified   time.Time                  `json:"modified"`
	Seq        uint64                     `json:"seq"`     // sequence of the last change
	Entered    uint64                     `json:"entered"` // sequence at which it entered Folder
	CreatedSeq uint64                     `json:"createdSeq"`
	Photo      *photoMeta                 `json:"photo,omitempty"`
	DistList   bool                       `json:"distList,omitempty"` // a contact group: counted by lists, never shown
}

// extProp is a single-value extended property as first written.
type extProp struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

// photoMeta describes a stored contact photo; the bytes live apart.
type photoMeta struct {
	ContentType string `json:"contentType"`
	ETag        string `json:"etag"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	Size        int    `json:"size"`
}

// hasPhotoProp is PidLidHasPicture, which Outlook keeps in step with the
// contact picture attachment.
const hasPhotoProp = "Boolean {00062004-0000-0000-C000-000000000046} Id 0x8015"

// apiError is a Graph error to be written as {"error":{…}}.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message) }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func badBody(format string, args ...any) *apiError {
	return errf(400, "RequestBodyRead", format, args...)
}

// contactWrite is a parsed, validated POST or PATCH body.
type contactWrite struct {
	set      map[string]json.RawMessage // normalized value, or nil to clear
	ext      []extProp                  // properties to set
	extDel   map[string]bool            // lower-cased ids whose value was null [inf]
	parentID *string                    // a move, when set
}

// parseContactWrite decodes and validates a contact body against the v1.0
// schema: unknown properties, wrong types and over-cap collections are 400s.
func parseContactWrite(body []byte) (*contactWrite, *apiError) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, badBody("Invalid JSON. A JSON object was expected in the request body.")
	}
	w := &contactWrite{set: map[string]json.RawMessage{}, extDel: map[string]bool{}}
	for k, v := range raw {
		isNull := bytes.Equal(bytes.TrimSpace(v), []byte("null"))
		switch {
		case readOnly[k] || strings.HasPrefix(k, "@odata."):
			continue
		case k == "parentFolderId":
			var s string
			if isNull || json.Unmarshal(v, &s) != nil || s == "" {
				return nil, badBody("Invalid value for property 'parentFolderId'.")
			}
			w.parentID = &s
			continue
		case k == "singleValueExtendedProperties":
			var eps []map[string]json.RawMessage
			if err := json.Unmarshal(v, &eps); err != nil {
				return nil, badBody("Cannot read singleValueExtendedProperties: an array of {id, value} was expected.")
			}
			for _, ep := range eps {
				var id string
				if json.Unmarshal(ep["id"], &id) != nil || !validExtID(id) {
					return nil, errf(400, "ErrorInvalidExtendedPropertyValue", "The extended property id '%s' is not valid.", id)
				}
				val, ok := ep["value"]
				if !ok || bytes.Equal(bytes.TrimSpace(val), []byte("null")) {
					// A null value removes the property [inf].
					w.extDel[strings.ToLower(id)] = true
					continue
				}
				var s string
				if json.Unmarshal(val, &s) != nil {
					return nil, errf(400, "ErrorInvalidExtendedPropertyValue", "The value of extended property '%s' must be a string.", id)
				}
				w.ext = append(w.ext, extProp{ID: id, Value: s})
			}
			continue
		case k == "multiValueExtendedProperties" || k == "extensions" || k == "photo":
			return nil, errf(501, "NotImplemented", "The emulator does not model '%s' in a contact body.", k)
		}
		f, ok := schemaByName[k]
		if !ok {
			return nil, badBody("The property '%s' does not exist on type 'microsoft.graph.contact'. Make sure to only use property names that are defined by the type or mark the type as open type.", k)
		}
		if isNull {
			w.set[k] = nil
			continue
		}
		norm, aerr := normalize(f, v)
		if aerr != nil {
			return nil, aerr
		}
		w.set[k] = norm
	}
	return w, nil
}

// validExtID accepts the documented id forms: "{Type} {GUID} Name {name}",
// "{Type} {GUID} Id 0x8xxx" and "{Type} 0xNNNN".
func validExtID(id string) bool {
	parts := strings.Fields(id)
	switch len(parts) {
	case 2:
		return strings.HasPrefix(strings.ToLower(parts[1]), "0x")
	case 4:
		return strings.HasPrefix(parts[1], "{") && strings.HasSuffix(parts[1], "}") &&
			(strings.EqualFold(parts[2], "Name") || strings.EqualFold(parts[2], "Id"))
	default:
		return len(parts) > 4 && strings.EqualFold(parts[2], "Name") // names may hold spaces
	}
}

// normalize checks one non-null value against its field's type and returns
// the canonical JSON stored for it, or nil when it is the type's empty value.
func normalize(f field, v json.RawMessage) (json.RawMessage, *apiError) {
	typeErr := badBody("Cannot convert the literal '%s' to the expected type of property '%s'.", truncate(string(v), 40), f.name)
	switch f.kind {
	case kString:
		var s string
		if json.Unmarshal(v, &s) != nil {
			return nil, typeErr
		}
		if s == "" {
			// An empty string is stored as unset and reads back null [inf].
			return nil, nil
		}
		return mustJSON(s), nil
	case kStrings:
		var ss []string
		if json.Unmarshal(v, &ss) != nil {
			return nil, typeErr
		}
		if f.max > 0 && len(ss) > f.max {
			return nil, multiValueErr(f, len(ss))
		}
		if len(ss) == 0 {
			return nil, nil
		}
		return mustJSON(ss), nil
	case kEmails:
		var es []map[string]any
		if json.Unmarshal(v, &es) != nil {
			return nil, typeErr
		}
		if len(es) > f.max {
			return nil, multiValueErr(f, len(es))
		}
		if len(es) == 0 {
			return nil, nil
		}
		out := make([]emailOut, 0, len(es))
		for _, e := range es {
			var o emailOut
			for k, x := range e {
				s, ok := x.(string)
				if x != nil && !ok {
					return nil, typeErr
				}
				switch k {
				case "name":
					o.Name = &s
					if x == nil {
						o.Name = nil
					}
				case "address":
					o.Address = &s
					if x == nil {
						o.Address = nil
					}
				case "@odata.type":
				default:
					return nil, badBody("The property '%s' does not exist on type 'microsoft.graph.emailAddress'.", k)
				}
			}
			out = append(out, o)
		}
		return mustJSON(out), nil
	case kAddress:
		var a map[string]any
		if json.Unmarshal(v, &a) != nil {
			return nil, typeErr
		}
		out := map[string]string{}
		for k, x := range a {
			if k == "@odata.type" {
				continue
			}
			if !addressKeys[k] {
				return nil, badBody("The property '%s' does not exist on type 'microsoft.graph.physicalAddress'.", k)
			}
			if x == nil {
				continue
			}
			s, ok := x.(string)
			if !ok {
				return nil, typeErr
			}
			if s != "" {
				out[k] = s
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return marshalAddress(out), nil
	case kDate:
		var s string
		if json.Unmarshal(v, &s) != nil {
			return nil, typeErr
		}
		t, ok := parseDateTimeOffset(s)
		if !ok {
			return nil, badBody("Cannot convert the literal '%s' to the expected type 'Edm.DateTimeOffset'.", s)
		}
		return mustJSON(t.UTC().Format("2006-01-02T15:04:05Z")), nil
	}
	return nil, typeErr
}

// emailOut is an emailAddress as stored: the keys the client sent.
type emailOut struct {
	Name    *string `json:"name,omitempty"`
	Address *string `json:"address,omitempty"`
}

func multiValueErr(f field, n int) *apiError {
	// The code is [inf]; status and message are documented (docs#15276).
	return errf(400, "ErrorInvalidArgument",
		"The multi value property %s has %d entries, that exceeds the max allowed value of %d", f.cap, n, f.max)
}

// parseDateTimeOffset accepts a bare date (as in the docs' samples) or an
// RFC 3339 timestamp.
func parseDateTimeOffset(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func marshalAddress(a map[string]string) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for _, k := range []string{"street", "city", "state", "countryOrRegion", "postalCode"} {
		if v, ok := a[k]; ok {
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.Write(mustJSON(k))
			b.WriteByte(':')
			b.Write(mustJSON(v))
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

// mustJSON marshals without HTML escaping: Graph writes "&" in links, not
// "\u0026".
func mustJSON(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // only called on plain strings, slices, maps and structs
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// nameParts are the properties from which Outlook recomputes displayName.
var nameParts = []string{"givenName", "middleName", "surname", "title", "generation"}

// applyWrite applies w to c with PATCH semantics: omitted kept, null
// cleared, collections and addresses replaced whole. Moves are the
// caller's business.
func (c *contact) applyWrite(w *contactWrite) {
	nameChanged := false
	for k, v := range w.set {
		if v == nil {
			delete(c.Props, k)
		} else {
			c.Props[k] = v
		}
		for _, n := range nameParts {
			if k == n {
				nameChanged = true
			}
		}
	}
	if _, sent := w.set["displayName"]; !sent && nameChanged {
		// Outlook regenerates displayName from the name parts when they
		// change and displayName is not resent [doc: update-contact]; the
		// composition rule ("given middle surname") is [inf].
		if dn := composeDisplayName(c.Props); dn == "" {
			delete(c.Props, "displayName")
		} else {
			c.Props["displayName"] = mustJSON(dn)
		}
	}
	if c.Ext == nil {
		c.Ext = map[string]extProp{}
	}
	for id := range w.extDel {
		delete(c.Ext, id)
	}
	for _, ep := range w.ext {
		key := strings.ToLower(ep.ID)
		if old, ok := c.Ext[key]; ok {
			ep.ID = old.ID // keep the spelling first written
		}
		c.Ext[key] = ep
	}
}

func composeDisplayName(p map[string]json.RawMessage) string {
	var parts []string
	for _, n := range []string{"givenName", "middleName", "surname"} {
		if v, ok := p[n]; ok {
			var s string
			_ = json.Unmarshal(v, &s)
			if s != "" {
				parts = append(parts, s)
			}
		}
	}
	return strings.Join(parts, " ")
}

// propString returns a string property or "".
func (c *contact) propString(name string) string {
	v, ok := c.Props[name]
	if !ok {
		return ""
	}
	var s string
	_ = json.Unmarshal(v, &s)
	return s
}

// idFor returns the id a caller sees: the immutable one when it sent
// Prefer: IdType="ImmutableId", else the regular one, which changes when the
// contact moves to another folder.
func (c *contact) idFor(immutable bool) string {
	if immutable || c.RegID == "" {
		return c.ID
	}
	return c.RegID
}

// render writes the contact as Graph JSON with the given id. sel limits the
// properties (nil = all); id and @odata.etag are always present. head is
// written first (e.g. @odata.context or @odata.type); ext adds
// singleValueExtendedProperties.
func (c *contact) render(b *bytes.Buffer, head [][2]string, id string, sel map[string]bool, ext []extProp, withExt bool) {
	b.WriteByte('{')
	for _, h := range head {
		b.Write(mustJSON(h[0]))
		b.WriteByte(':')
		b.Write(mustJSON(h[1]))
		b.WriteByte(',')
	}
	b.WriteString(`"@odata.etag":`)
	b.Write(mustJSON(`W/"` + c.ChangeKey + `"`))
	b.WriteString(`,"id":`)
	b.Write(mustJSON(id))
	want := func(n string) bool { return sel == nil || sel[n] }
	kv := func(k string, v json.RawMessage) {
		b.WriteByte(',')
		b.Write(mustJSON(k))
		b.WriteByte(':')
		b.Write(v)
	}
	if want("createdDateTime") {
		kv("createdDateTime", mustJSON(c.Created.UTC().Format("2006-01-02T15:04:05Z")))
	}
	if want("lastModifiedDateTime") {
		kv("lastModifiedDateTime", mustJSON(c.Modified.UTC().Format("2006-01-02T15:04:05Z")))
	}
	if want("changeKey") {
		kv("changeKey", mustJSON(c.ChangeKey))
	}
	for i, f := range schema {
		if i == 1 && want("parentFolderId") { // Graph puts it after categories
			kv("parentFolderId", mustJSON(c.Folder))
		}
		if !want(f.name) {
			continue
		}
		if v, ok := c.Props[f.name]; ok {
			kv(f.name, v)
			continue
		}
		switch f.kind {
		case kString, kDate:
			kv(f.name, json.RawMessage("null"))
		case kStrings, kEmails:
			kv(f.name, json.RawMessage("[]"))
		case kAddress:
			kv(f.name, json.RawMessage("{}"))
		}
	}
	if withExt {
		b.WriteString(`,"singleValueExtendedProperties":`)
		if ext == nil {
			ext = []extProp{}
		}
		b.Write(mustJSON(ext))
	}
	b.WriteByte('}')
}

// emails decodes the stored emailAddresses.
func (c *contact) emails() []emailOut {
	var out []emailOut
	if v, ok := c.Props["emailAddresses"]; ok {
		_ = json.Unmarshal(v, &out)
	}
	return out
}

// sortExt orders extended properties by id for stable output.
func sortExt(eps []extProp) {
	sort.Slice(eps, func(i, j int) bool { return eps[i].ID < eps[j].ID })
}
