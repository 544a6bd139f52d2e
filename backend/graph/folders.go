package graph

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// DefaultFolderID is the well-known name Graph accepts in place of the
// default Contacts folder's id.
const DefaultFolderID = "contacts"

// folderPath is the path of a contact folder below the mailbox; "" is the
// default folder.
func folderPath(id string) string {
	if id == "" {
		id = DefaultFolderID
	}
	return "/contactFolders/" + url.PathEscape(id)
}

// DefaultFolder returns the mailbox's default Contacts folder
// (GET contactFolders/contacts).
func (c *Client) DefaultFolder(ctx context.Context) (*ContactFolder, error) {
	return c.GetFolder(ctx, DefaultFolderID)
}

// GetFolder returns one contact folder by id (at any depth).
func (c *Client) GetFolder(ctx context.Context, id string) (*ContactFolder, error) {
	var f ContactFolder
	if err := c.getJSON(ctx, "GetFolder", c.mailboxURL(folderPath(id), ""), nil, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// ListFolders returns every contact folder below the default one at any
// depth, flattened, parents before their children. A v1.0 list does not
// recurse, so it walks childFolders of each folder found.
func (c *Client) ListFolders(ctx context.Context) ([]ContactFolder, error) {
	top := "$top=" + strconv.Itoa(MaxPageSize)
	level, err := listAll[ContactFolder](ctx, c, "ListFolders", c.mailboxURL("/contactFolders", top), nil)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var all []ContactFolder
	// Breadth first; seen guards against a folder showing up twice, so the
	// walk ends even if the server's tree were to loop.
	for len(level) > 0 {
		var next []ContactFolder
		for _, f := range level {
			if seen[f.ID] {
				continue
			}
			seen[f.ID] = true
			all = append(all, f)
			kids, err := listAll[ContactFolder](ctx, c, "ListFolders",
				c.mailboxURL(folderPath(f.ID)+"/childFolders", top), nil)
			if err != nil {
				return nil, err
			}
			for i := range kids {
				if kids[i].ParentFolderID == "" {
					kids[i].ParentFolderID = f.ID
				}
			}
			next = append(next, kids...)
		}
		level = next
	}
	return all, nil
}

// CreateFolder creates a folder under parentID ("" or DefaultFolderID: the
// default folder). Graph answers 409 ErrorFolderExists (ErrConflict) for a
// duplicate name.
func (c *Client) CreateFolder(ctx context.Context, parentID, displayName string) (*ContactFolder, error) {
	u := c.mailboxURL("/contactFolders", "")
	if parentID != "" && parentID != DefaultFolderID {
		u = c.mailboxURL(folderPath(parentID)+"/childFolders", "")
	}
	var f ContactFolder
	if err := c.sendJSON(ctx, "CreateFolder", http.MethodPost, u, "",
		map[string]string{"displayName": displayName}, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// RenameFolder changes a folder's display name.
func (c *Client) RenameFolder(ctx context.Context, id, displayName string) (*ContactFolder, error) {
	var f ContactFolder
	if err := c.sendJSON(ctx, "RenameFolder", http.MethodPatch, c.mailboxURL(folderPath(id), ""), "",
		map[string]string{"displayName": displayName}, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// DeleteFolder deletes a folder and what it holds (to Deleted Items).
func (c *Client) DeleteFolder(ctx context.Context, id string) error {
	_, err := c.do(ctx, &request{op: "DeleteFolder", method: http.MethodDelete, url: c.mailboxURL(folderPath(id), "")})
	return err
}
