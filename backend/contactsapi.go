package backend

import (
	"context"

	"github.com/contactsdav/contactsdav/backend/graph"
)

// ContactsAPI is what the backend needs of Microsoft Graph for one mailbox.
// *graph.Client implements it; tests may use the emulator behind a client.
type ContactsAPI interface {
	// DefaultFolder returns the mailbox's default Contacts folder.
	DefaultFolder(ctx context.Context) (*graph.ContactFolder, error)
	// ListFolders returns every contact folder below the default one, at
	// any depth, flattened, each with its ParentFolderID.
	ListFolders(ctx context.Context) ([]graph.ContactFolder, error)
	CreateFolder(ctx context.Context, parentID, displayName string) (*graph.ContactFolder, error)
	RenameFolder(ctx context.Context, id, displayName string) (*graph.ContactFolder, error)
	DeleteFolder(ctx context.Context, id string) error

	// ListContacts returns every contact in a folder, following nextLink.
	ListContacts(ctx context.Context, folderID string, q graph.Query) ([]graph.Contact, error)
	GetContact(ctx context.Context, folderID, id string, q graph.Query) (*graph.Contact, error)
	// GetContacts fetches many contacts through $batch (20 a batch); ids
	// that no longer exist are left out of the result.
	GetContacts(ctx context.Context, ids []string, q graph.Query) ([]graph.Contact, error)
	CreateContact(ctx context.Context, folderID string, c *graph.Contact) (*graph.Contact, error)
	// UpdateContact PATCHes a contact; a non-empty ifMatch is sent as If-Match.
	UpdateContact(ctx context.Context, folderID, id string, p graph.Patch, ifMatch string) (*graph.Contact, error)
	DeleteContact(ctx context.Context, folderID, id, ifMatch string) error
	// ContactsDelta runs one delta round of a folder from deltaLink ("" for
	// the initial round); graph.ErrSyncStateNotFound when the link expired.
	ContactsDelta(ctx context.Context, folderID, deltaLink string, q graph.Query) (*graph.DeltaResult, error)

	// GetPhoto returns a contact's photo, graph.ErrNotFound when it has none.
	GetPhoto(ctx context.Context, id string) (*graph.Photo, error)
	// PutPhoto replaces a contact's photo; nil or empty data removes it.
	PutPhoto(ctx context.Context, id string, p *graph.Photo) error
}
