package backend

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/contactsdav/contactsdav/backend/graph"
	"github.com/contactsdav/contactsdav/vcardmap"
)

// Our single-value extended properties: one GUID and few names, as Exchange's
// named-property quota asks (research §1.10).
const (
	propGUID   = "{7a463779-c0ca-4a9c-b179-149ed9395eee}"
	propHref   = "String " + propGUID + " Name vcard-href"
	propUID    = "String " + propGUID + " Name vcard-uid"
	propExtra  = "String " + propGUID + " Name vcard-extra"
	extraChunk = 16000 // bytes per extras property: MAPI truncates long strings in places
	maxChunks  = 4     // vcard-extra, vcard-extra-1 … -3: up to 64 KB of extras
)

// extraProps are the ids of the extras chunks, in order.
var extraProps = func() []string {
	ids := []string{propExtra}
	for i := 1; i < maxChunks; i++ {
		ids = append(ids, propExtra+"-"+strconv.Itoa(i))
	}
	return ids
}()

// fullQuery reads a contact with everything rendering needs.
var fullQuery = graph.Query{Expand: append([]string{propHref, propUID, graph.PropHasPicture}, extraProps...)}

// deltaQuery keeps delta rounds small: rows are only a trigger to fetch
// (research §1.6: $expand inside delta is unreliable).
var deltaQuery = graph.Query{Select: []string{"id", "changeKey"}, PageSize: 500}

// listQuery lists a whole folder with what rendering needs, in large pages.
var listQuery = graph.Query{Expand: fullQuery.Expand, PageSize: 1000}

// renderEpoch is mixed into every ETag: bump it when rendering changes, so
// clients fetch the cards again.
const renderEpoch = "r1"

// splitExtras cuts extras into chunk values on rune boundaries; ok is false
// when it needs more than maxChunks.
func splitExtras(s string) (chunks []string, ok bool) {
	for s != "" {
		n := min(extraChunk, len(s))
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n--
		}
		chunks = append(chunks, s[:n])
		s = s[n:]
	}
	return chunks, len(chunks) <= maxChunks
}

// joinExtras reassembles the extras chunks of a contact.
func joinExtras(c *graph.Contact) string {
	var sb strings.Builder
	for _, id := range extraProps {
		v, _ := c.ExtendedPropertyValue(id)
		sb.WriteString(v)
	}
	return sb.String()
}

// hasPicture reads PidLidHasPicture from an expanded contact.
func hasPicture(c *graph.Contact) bool {
	v, _ := c.ExtendedPropertyValue(graph.PropHasPicture)
	return strings.EqualFold(v, "true")
}

// contactETag is the served ETag of a contact: strong, quoted, from its
// changeKey and photo state (and the rendering epoch).
func contactETag(c *graph.Contact) string {
	pic := "0"
	if hasPicture(c) {
		pic = "1"
	}
	return `"` + shortHash(renderEpoch, c.ChangeKey, pic) + `"`
}

// derivedName is the resource name of a contact no CardDAV client named.
func derivedName(id string) string { return shortHash("contact", id) + ".vcf" }

// hrefOf is the resource name a client gave the contact, "" when none.
func hrefOf(c *graph.Contact) string {
	v, _ := c.ExtendedPropertyValue(propHref)
	return v
}

// uidFor is the UID to render: the client's, unless the contact is not
// named by its own href (made in Outlook, or a copy of another contact, whose
// UID would clash), then one derived from the id.
func uidFor(c *graph.Contact, name string) string {
	if uid, ok := c.ExtendedPropertyValue(propUID); ok && uid != "" && hrefOf(c) == name {
		return uid
	}
	return vcardmap.UIDFromID(c.ID)
}

// modTime parses lastModifiedDateTime; zero when absent or odd.
func modTime(c *graph.Contact) time.Time {
	t, err := time.Parse(time.RFC3339Nano, c.LastModifiedDateTime)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// setProp sets or adds one extended property on a contact copy.
func setProp(c *graph.Contact, id, value string) {
	for i := range c.SingleValueExtendedProperties {
		if strings.EqualFold(c.SingleValueExtendedProperties[i].ID, id) {
			c.SingleValueExtendedProperties[i].Value = value
			return
		}
	}
	c.SingleValueExtendedProperties = append(c.SingleValueExtendedProperties, graph.ExtendedProperty{ID: id, Value: value})
}

// wantProps are the extended property values a written card must end with;
// chunks no longer needed are cleared with "".
func wantProps(cur *graph.Contact, name, uid string, chunks []string) []graph.ExtendedProperty {
	props := []graph.ExtendedProperty{{ID: propHref, Value: name}}
	if uid != "" || cur != nil {
		props = append(props, graph.ExtendedProperty{ID: propUID, Value: uid})
	}
	for i, id := range extraProps {
		v := ""
		if i < len(chunks) {
			v = chunks[i]
		}
		if v == "" && cur == nil {
			continue
		}
		props = append(props, graph.ExtendedProperty{ID: id, Value: v})
	}
	if cur == nil {
		return props
	}
	// On update, send only what differs.
	var diff []graph.ExtendedProperty
	for _, p := range props {
		if old, _ := cur.ExtendedPropertyValue(p.ID); old != p.Value {
			diff = append(diff, p)
		}
	}
	return diff
}
