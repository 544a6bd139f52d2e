package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/emersion/go-webdav"

	"github.com/contactsdav/contactsdav/backend/graph"
	"github.com/contactsdav/contactsdav/carddav"
)

// retryThrottled is the Retry-After hint when Graph gave none.
const retryThrottled = 30 * time.Second

// graphErr gives a Graph failure its DAV meaning. Graph's own message stays
// in the wrapped error for logs; the HTTP front shows clients only the status
// and precondition.
func (b *Backend) graphErr(ctx context.Context, op string, err error) error {
	if ctxErr(ctx, err) {
		return err
	}
	wrapped := fmt.Errorf("%s: %w", op, err)
	var ge *graph.Error
	retry := func(def time.Duration) time.Duration {
		if errors.As(err, &ge) && ge.RetryAfter > 0 {
			return ge.RetryAfter
		}
		return def
	}
	switch {
	case errors.Is(err, graph.ErrNotFound):
		return webdav.NewHTTPError(http.StatusNotFound, wrapped)
	case errors.Is(err, graph.ErrPreconditionFailed):
		return webdav.NewHTTPError(http.StatusPreconditionFailed, wrapped)
	case errors.Is(err, graph.ErrThrottled), errors.Is(err, graph.ErrUnavailable):
		b.log.Warn("graph unavailable", "op", op, "err", err)
		return &carddav.UnavailableError{RetryAfter: retry(retryThrottled), Err: wrapped}
	case errors.Is(err, graph.ErrUnauthorized):
		// The CardDAV password was right; the Microsoft grant is what
		// failed (revoked or expired refresh token). A 401 is the one
		// answer every client shows as "sign in again" rather than retrying
		// silently; nothing is lost, as the client keeps its edits.
		b.log.Error("Microsoft refused the user's token: they must sign in again", "op", op, "err", err)
		return fmt.Errorf("%w: %w", carddav.ErrUnauthorized, wrapped)
	case errors.Is(err, graph.ErrBadRequest):
		// vcardmap keeps within Graph's caps, so this is a card Graph
		// rejects for a reason we did not foresee.
		b.log.Warn("graph rejected a request", "op", op, "err", err)
		return &carddav.PreconditionError{Status: http.StatusForbidden, Condition: carddav.ValidAddressData, Err: wrapped}
	case errors.Is(err, graph.ErrForbidden):
		return webdav.NewHTTPError(http.StatusForbidden, wrapped)
	case errors.Is(err, graph.ErrConflict):
		return webdav.NewHTTPError(http.StatusConflict, wrapped)
	}
	b.log.Error("graph request failed", "op", op, "err", err)
	return fmt.Errorf("backend: %w", wrapped)
}
