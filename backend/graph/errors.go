package graph

import (
	"errors"
	"fmt"
	"time"
)

// Sentinels for errors.Is on an *Error, so callers act on meaning, not strings.
var (
	ErrNotFound           = errors.New("graph: not found")             // 404 ErrorItemNotFound
	ErrPreconditionFailed = errors.New("graph: precondition failed")   // 412 ErrorIrresolvableConflict
	ErrThrottled          = errors.New("graph: throttled")             // 429, or 503/504 after retries
	ErrSyncStateNotFound  = errors.New("graph: delta sync state gone") // 410 SyncStateNotFound on a delta link
	ErrUnauthorized       = errors.New("graph: unauthorized")          // 401 after one token refresh
	ErrBadRequest         = errors.New("graph: bad request")           // 400, e.g. a collection over its cap
	ErrForbidden          = errors.New("graph: forbidden")             // 403 ErrorAccessDenied
	ErrConflict           = errors.New("graph: conflict")              // 409 ErrorFolderExists
	ErrUnavailable        = errors.New("graph: service unavailable")   // 5xx after retries
)

// Error is a Graph error response:
// {"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}.
type Error struct {
	Status     int
	Code       string
	Message    string
	RequestID  string
	RetryAfter time.Duration // from the Retry-After header, when present
}

func (e *Error) Error() string {
	return fmt.Sprintf("graph: %d %s: %s (request-id %s)", e.Status, e.Code, e.Message, e.RequestID)
}
