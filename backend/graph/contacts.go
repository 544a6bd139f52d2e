package graph

import (
	"context"
	"net/http"
	"net/url"
)

// Well-known single-value extended properties of a contact.
const (
	// PropHasPicture is PidLidHasPicture: whether the contact has a photo.
	// Graph v1.0 has no other "has photo" flag, so reading it through
	// $expand saves a photo GET per contact.
	PropHasPicture = "Boolean {00062004-0000-0000-C000-000000000046} Id 0x8015"
)

// contactPath is a contact's path in a folder; with folderID "" it is the
// mailbox-wide /contacts/{id}, which finds a contact in any folder.
func contactPath(folderID, id string) string {
	if folderID == "" {
		return "/contacts/" + url.PathEscape(id)
	}
	return folderPath(folderID) + "/contacts/" + url.PathEscape(id)
}

// ListContacts returns every contact in a folder ("" is the default one),
// following @odata.nextLink verbatim until it is absent.
func (c *Client) ListContacts(ctx context.Context, folderID string, q Query) ([]Contact, error) {
	return listAll[Contact](ctx, c, "ListContacts", c.mailboxURL(folderPath(folderID)+"/contacts", q.rawQuery(true)), nil)
}

// GetContact returns one contact. With folderID "" it is looked up in any
// folder of the mailbox.
func (c *Client) GetContact(ctx context.Context, folderID, id string, q Query) (*Contact, error) {
	var ct Contact
	if err := c.getJSON(ctx, "GetContact", c.mailboxURL(contactPath(folderID, id), q.rawQuery(false)), nil, &ct); err != nil {
		return nil, err
	}
	return &ct, nil
}

// CreateContact creates a contact in a folder ("" is the default one). The
// contact's SingleValueExtendedProperties are written too, but Graph does
// not echo them, so the returned contact lacks them; read them back with
// Query.Expand if needed.
func (c *Client) CreateContact(ctx context.Context, folderID string, ct *Contact) (*Contact, error) {
	// Read-only properties would make Graph answer 400.
	body := *ct
	body.ODataETag, body.ID, body.ChangeKey = "", "", ""
	body.CreatedDateTime, body.LastModifiedDateTime, body.ParentFolderID = "", "", ""
	body.Removed = nil
	var out Contact
	if err := c.sendJSON(ctx, "CreateContact", http.MethodPost,
		c.mailboxURL(folderPath(folderID)+"/contacts", ""), "", &body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateContact PATCHes a contact with p (see NewPatch) and returns the
// updated contact Graph answers with; a non-empty ifMatch is sent as
// If-Match, and a stale one gives ErrPreconditionFailed.
func (c *Client) UpdateContact(ctx context.Context, folderID, id string, p Patch, ifMatch string) (*Contact, error) {
	if p == nil {
		p = Patch{}
	}
	var out Contact
	if err := c.sendJSON(ctx, "UpdateContact", http.MethodPatch,
		c.mailboxURL(contactPath(folderID, id), ""), ifMatch, p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteContact deletes a contact (Graph moves it to Deleted Items); a
// non-empty ifMatch is sent as If-Match.
func (c *Client) DeleteContact(ctx context.Context, folderID, id, ifMatch string) error {
	_, err := c.do(ctx, &request{op: "DeleteContact", method: http.MethodDelete,
		url: c.mailboxURL(contactPath(folderID, id), ""), ifMatch: ifMatch})
	return err
}

// GetPhoto returns a contact's photo; ErrNotFound when it has none.
func (c *Client) GetPhoto(ctx context.Context, id string) (*Photo, error) {
	resp, err := c.do(ctx, &request{op: "GetPhoto", method: http.MethodGet,
		url: c.mailboxURL(contactPath("", id)+"/photo/$value", "")})
	if err != nil {
		return nil, err
	}
	return newPhoto(resp.header, resp.body), nil
}

// newPhoto is a photo answer: data with the Content-Type Graph gave, or
// one sniffed from data when it gave none.
func newPhoto(h http.Header, data []byte) *Photo {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = http.DetectContentType(data)
	}
	return &Photo{ContentType: ct, Data: data}
}

// PutPhoto replaces a contact's photo. Graph cannot DELETE a contact photo,
// so nil or empty data is sent as an empty PUT, which removes it (as
// Evolution does).
func (c *Client) PutPhoto(ctx context.Context, id string, p *Photo) error {
	data, ct := []byte{}, "image/jpeg"
	if p != nil && len(p.Data) > 0 {
		data = p.Data
		if p.ContentType != "" {
			ct = p.ContentType
		}
	}
	_, err := c.do(ctx, &request{op: "PutPhoto", method: http.MethodPut,
		url: c.mailboxURL(contactPath("", id)+"/photo/$value", ""), body: data, contentType: ct})
	return err
}

// User is the signed-in user, as GET /me gives it.
type User struct {
	ID                string `json:"id"`
	UserPrincipalName string `json:"userPrincipalName"`
	DisplayName       string `json:"displayName"`
	Mail              string `json:"mail"`
}

// Me returns the user the token speaks for (GET /me, whatever Mailbox is).
func (c *Client) Me(ctx context.Context) (*User, error) {
	var u User
	if err := c.getJSON(ctx, "Me", c.baseStr+"/me?$select=id,userPrincipalName,displayName,mail", nil, &u); err != nil {
		return nil, err
	}
	return &u, nil
}
