// Package vcardmap converts between vCard (RFC 2426 3.0, RFC 6350 4.0) and
// the Microsoft Graph v1.0 contact resource, losslessly: what Graph cannot
// hold travels in Extras, which the backend stores beside the contact.
package vcardmap

import (
	"errors"

	"github.com/contactsdav/contactsdav/backend/graph"
)

// Mapped is a vCard split into what Graph holds and what it does not.
// TEMPORARY SEAM: the vcardmap work (issue 3) replaces the bodies below.
type Mapped struct {
	Contact graph.Contact // Graph fields only: no id, changeKey or extended properties
	UID     string        // the card's UID, verbatim ("" when the card has none)
	Extras  string        // compact record of what Graph cannot hold; "" when nothing
	Photo   *graph.Photo  // nil when the card has no PHOTO
}

// ErrInvalid wraps every error caused by a malformed card.
var ErrInvalid = errors.New("vcardmap: invalid vCard")

// Parse decodes and maps a vCard a client sent.
func Parse(data []byte) (*Mapped, error) { panic("vcardmap: not implemented") }

// Render renders a Graph contact and its extras as a vCard of version "3.0" or "4.0".
func Render(m *Mapped, version string) ([]byte, error) { panic("vcardmap: not implemented") }
