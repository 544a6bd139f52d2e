package carddav

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/emersion/go-webdav"
)

// Backend is one user's address books as the HTTP front sees them. Books are
// named by their path segment (slug) under the home set, objects by their
// resource name (the last path segment, e.g. "6E1F….vcf"), exactly as the
// client wrote it. Errors carry their HTTP meaning: webdav.NewHTTPError for a
// plain status, *PreconditionError for a DAV precondition, *UnavailableError
// for a 503 with Retry-After, ErrInvalidSyncToken for a bad sync token.
type Backend interface {
	// ListAddressBooks returns the user's books, the default book first.
	ListAddressBooks(ctx context.Context) ([]AddressBook, error)
	// AddressBook returns one book; 404 when it does not exist.
	AddressBook(ctx context.Context, book string) (*AddressBook, error)
	// CreateAddressBook makes a book at the slug the client chose (MKCOL).
	CreateAddressBook(ctx context.Context, book string, props BookProps) (*AddressBook, error)
	// UpdateAddressBook renames a book (PROPPATCH displayname).
	UpdateAddressBook(ctx context.Context, book string, props BookProps) error
	// DeleteAddressBook deletes a book; 403 for the default book.
	DeleteAddressBook(ctx context.Context, book string) error

	// ListObjects returns the name and ETag of every object in a book.
	ListObjects(ctx context.Context, book string) ([]ObjectInfo, error)
	// GetObjects returns the named objects rendered as vCard of the given
	// version ("3.0" or "4.0"); names that do not exist are left out.
	GetObjects(ctx context.Context, book string, names []string, version string) ([]Object, error)
	// PutObject creates or replaces an object from the client's raw vCard.
	PutObject(ctx context.Context, book, name string, card []byte, cond Conditions) (*PutResult, error)
	// DeleteObject deletes an object; 412 when ifMatch is set and stale.
	DeleteObject(ctx context.Context, book, name string, ifMatch webdav.ConditionalMatch) error

	// SyncChanges answers an RFC 6578 sync-collection from token ("" for an
	// initial sync) with at most limit changes (0: no limit).
	SyncChanges(ctx context.Context, book, token string, limit int) (*Changes, error)
}

// AddressBook describes one address book.
type AddressBook struct {
	Name            string // path segment under the home set
	DisplayName     string
	Description     string
	MaxResourceSize int64
	// SyncToken is the book's current RFC 6578 sync token (a URI); it is
	// served as CS:getctag too, so it changes whenever any member changes.
	SyncToken string
}

// BookProps are the writable properties of an address book; nil means
// "leave as it is".
type BookProps struct {
	DisplayName *string
	Description *string
}

// ObjectInfo is an object's name and version.
type ObjectInfo struct {
	Name    string
	ETag    string // strong and quoted: "\"…\""
	ModTime time.Time
}

// Object is a rendered address object.
type Object struct {
	ObjectInfo
	Card []byte // the vCard, CRLF line ends, folded
}

// Conditions are a PUT's preconditions (RFC 7232).
type Conditions struct {
	IfMatch     webdav.ConditionalMatch
	IfNoneMatch webdav.ConditionalMatch
}

// PutResult is the outcome of a PUT.
type PutResult struct {
	Created bool   // 201 rather than 204
	ETag    string // the new ETag; empty when it must not be sent
}

// Changes is the answer to a sync-collection request.
type Changes struct {
	Token     string       // the new sync token
	Changed   []ObjectInfo // created or modified members, last change per name
	Deleted   []string     // names of removed members
	Truncated bool         // more remain: answer 507 on the request-URI
}

// ErrInvalidSyncToken reports a sync token that is malformed, foreign or
// expired (RFC 6578 DAV:valid-sync-token).
var ErrInvalidSyncToken = errors.New("carddav: invalid sync token")

// Precondition names a DAV or CardDAV precondition (RFC 4918 §16, RFC 6352 §6.3.2).
type Precondition string

// The preconditions a backend may report.
const (
	// CardDAV (urn:ietf:params:xml:ns:carddav).
	SupportedAddressData Precondition = "supported-address-data"
	ValidAddressData     Precondition = "valid-address-data"
	NoUIDConflict        Precondition = "no-uid-conflict"
	MaxResourceSize      Precondition = "max-resource-size"
	// WebDAV (DAV:).
	NeedPrivileges Precondition = "need-privileges"
)

// PreconditionError is a failed precondition, answered with its status and a
// DAV:error body naming the condition.
type PreconditionError struct {
	Status    int
	Condition Precondition
	Err       error
}

func (e *PreconditionError) Error() string {
	if e.Err != nil {
		return string(e.Condition) + ": " + e.Err.Error()
	}
	return string(e.Condition)
}

func (e *PreconditionError) Unwrap() error { return e.Err }

// UnavailableError is a temporary failure upstream (Graph throttling or an
// outage), answered with 503 and Retry-After.
type UnavailableError struct {
	RetryAfter time.Duration
	Err        error
}

func (e *UnavailableError) Error() string { return "service unavailable: " + e.Err.Error() }

func (e *UnavailableError) Unwrap() error { return e.Err }

// Authenticator checks a request's Basic credentials and returns the user's
// Backend. It returns ErrUnauthorized for bad credentials (401), and
// *UnavailableError or a *RateLimitError for temporary refusals.
type Authenticator interface {
	Authenticate(r *http.Request, username, password string) (Backend, error)
}

// ErrUnauthorized reports bad or unusable credentials.
var ErrUnauthorized = errors.New("carddav: unauthorized")

// RateLimitError refuses a login attempt for a while (429 with Retry-After).
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string { return "too many failed login attempts" }
