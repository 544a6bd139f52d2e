package graph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// batchParallelism is how many items of one batch Outlook runs at once
// (JSON batching docs); each holds a slot of the mailbox's concurrency cap.
const batchParallelism = 4

// batchRequest is one request of a JSON $batch; url is relative to the
// version root.
type batchRequest struct {
	ID      string            `json:"id"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
}

type batchResponse struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// header returns a per-item header, whose name case Graph does not fix.
func (r *batchResponse) header() http.Header {
	h := http.Header{}
	for k, v := range r.Headers {
		h.Set(k, v)
	}
	return h
}

// bodyBytes is the item's body: JSON as is, or base64 for other media types.
func (r *batchResponse) bodyBytes() []byte {
	b := []byte(r.Body)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if json.Unmarshal(b, &s) == nil {
			if d, err := base64.StdEncoding.DecodeString(s); err == nil {
				return d
			}
			return []byte(s)
		}
	}
	return b
}

// GetContacts fetches contacts by id through POST /$batch, MaxBatch GETs a
// batch, in the order of ids. Ids that no longer exist (404) are left out;
// items throttled inside a batch (429/503/504) are sent again, alone,
// after their Retry-After.
func (c *Client) GetContacts(ctx context.Context, ids []string, q Query) ([]Contact, error) {
	got := make(map[string]Contact, len(ids))
	rq := q.rawQuery(false)
	err := c.batchGet(ctx, ids, func(id string) string {
		u := c.mailboxPath + contactPath("", id)
		if rq != "" {
			u += "?" + rq
		}
		return u
	}, func(id string, r *batchResponse) error {
		var ct Contact
		if err := json.Unmarshal(r.bodyBytes(), &ct); err != nil {
			return fmt.Errorf("graph: Batch: decoding item %s: %w", r.ID, err)
		}
		got[id] = ct
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Contact, 0, len(got))
	for _, id := range ids {
		if ct, ok := got[id]; ok {
			out = append(out, ct)
		}
	}
	return out, nil
}

// GetPhotos fetches the photos of many contacts through POST /$batch
// (binary bodies travel base64-encoded inside the batch). Every id asked for
// is in the result, mapped to nil when the contact has no photo (404): a
// cold sync of a large book costs a request per 20 photos, not per photo.
func (c *Client) GetPhotos(ctx context.Context, ids []string) (map[string]*Photo, error) {
	got := make(map[string]*Photo, len(ids))
	for _, id := range ids {
		got[id] = nil
	}
	err := c.batchGet(ctx, ids, func(id string) string {
		return c.mailboxPath + contactPath("", id) + "/photo/$value"
	}, func(id string, r *batchResponse) error {
		if data := r.bodyBytes(); len(data) > 0 {
			got[id] = newPhoto(r.header(), data)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return got, nil
}

// batchGet GETs url(id) for every id through $batch, MaxBatch items a
// batch, handing each 2xx item to ok; 404 items are skipped.
func (c *Client) batchGet(ctx context.Context, ids []string, url func(id string) string, ok func(id string, r *batchResponse) error) error {
	for start := 0; start < len(ids); start += MaxBatch {
		if err := c.batchChunk(ctx, ids[start:min(start+MaxBatch, len(ids))], url, ok); err != nil {
			return err
		}
	}
	return nil
}

// batchChunk runs one batch of at most MaxBatch GETs, retrying throttled
// items up to MaxRetries times.
func (c *Client) batchChunk(ctx context.Context, ids []string, url func(id string) string, ok func(id string, r *batchResponse) error) error {
	pending := map[string]string{} // batch item id → contact id
	for i, id := range ids {
		pending[strconv.Itoa(i)] = id
	}
	for round := 0; ; round++ {
		reqs := make([]batchRequest, 0, len(pending))
		for i := range ids { // in input order, for stable request bodies
			key := strconv.Itoa(i)
			if id, ok := pending[key]; ok {
				// Graph does not document that the outer request's
				// Prefer reaches the items, so each carries its own.
				reqs = append(reqs, batchRequest{ID: key, Method: http.MethodGet, URL: url(id),
					Headers: map[string]string{"Prefer": preferHeader(nil)}})
			}
		}
		var out struct {
			Responses []batchResponse `json:"responses"`
		}
		body, err := json.Marshal(map[string]any{"requests": reqs})
		if err != nil {
			return fmt.Errorf("graph: Batch: encoding: %w", err)
		}
		resp, err := c.do(ctx, &request{op: "Batch", method: http.MethodPost, url: c.baseStr + "/$batch",
			body: body, contentType: "application/json", weight: min(len(reqs), batchParallelism),
			repeatable: true}) // GETs only
		if err != nil {
			return err
		}
		if err := decodeBody("Batch", resp.body, &out); err != nil {
			return err
		}
		var retryErr *Error
		answered := map[string]bool{}
		for i := range out.Responses {
			r := &out.Responses[i]
			id, mine := pending[r.ID]
			if !mine || answered[r.ID] {
				continue
			}
			answered[r.ID] = true
			switch {
			case r.Status >= 200 && r.Status < 300:
				if err := ok(id, r); err != nil {
					return err
				}
				delete(pending, r.ID)
			case r.Status == http.StatusNotFound:
				delete(pending, r.ID)
			case retryable(r.Status):
				e := decodeError(r.Status, r.header(), r.bodyBytes())
				if retryErr == nil || e.RetryAfter > retryErr.RetryAfter {
					retryErr = e
				}
			default:
				return decodeError(r.Status, r.header(), r.bodyBytes())
			}
		}
		for key := range pending {
			if !answered[key] {
				return fmt.Errorf("graph: Batch: no answer for item %s", key)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		if round >= c.maxRetries {
			return retryErr
		}
		wait, ok := c.retryWait(ctx, round, retryErr.RetryAfter)
		if !ok {
			return retryErr
		}
		c.log.DebugContext(ctx, "graph: retrying throttled batch items", "items", len(pending),
			"wait", wait, "code", strings.TrimSpace(retryErr.Code))
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}
