package graphemu

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/contactsdav/contactsdav/backend/graph/graphemu/oauthemu"
)

// JSON batching (POST /v1.0/$batch): at most 20 requests with relative
// URLs, at most 4 run at once (Outlook's documented parallelism), dependsOn
// sequencing with 424 for dependents of a failed request, and every item
// going through the ordinary handler, so it counts against the limits and
// can come back 429 with its own Retry-After.

const (
	maxBatchItems    = 20
	batchParallelism = 4
)

type batchItem struct {
	ID        string            `json:"id"`
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      json.RawMessage   `json:"body,omitempty"`
	DependsOn []string          `json:"dependsOn,omitempty"`
}

type batchResult struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

// recorder is a minimal in-memory http.ResponseWriter for batch items.
type recorder struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.buf.Write(b)
}

func (e *Emulator) serveBatch(w http.ResponseWriter, r *http.Request, ri reqInfo, _ oauthemu.Principal) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		e.writeError(w, ri, errf(400, "BadRequest", "Could not read the batch body."))
		return
	}
	var req struct {
		Requests []batchItem `json:"requests"`
	}
	if err := json.Unmarshal(raw, &req); err != nil || req.Requests == nil {
		e.writeError(w, ri, errf(400, "BadRequest", "Invalid batch payload format."))
		return
	}
	items := req.Requests
	if len(items) == 0 || len(items) > maxBatchItems {
		e.writeError(w, ri, errf(400, "BadRequest", "Invalid batch payload: the number of requests must be between 1 and %d.", maxBatchItems))
		return
	}
	index := map[string]int{}
	for i, it := range items {
		if it.ID == "" {
			e.writeError(w, ri, errf(400, "BadRequest", "Invalid batch payload: every request needs an id."))
			return
		}
		if _, dup := index[it.ID]; dup {
			e.writeError(w, ri, errf(400, "BadRequest", "Invalid batch payload: duplicate request id '%s'.", it.ID))
			return
		}
		if strings.Contains(it.URL, "://") || it.URL == "" {
			e.writeError(w, ri, errf(400, "BadRequest", "Invalid batch payload: request '%s' must use a relative URL.", it.ID))
			return
		}
		switch strings.ToUpper(it.Method) {
		case "GET", "POST", "PATCH", "PUT", "DELETE":
		default:
			e.writeError(w, ri, errf(400, "BadRequest", "Invalid batch payload: request '%s' has an invalid method.", it.ID))
			return
		}
		for _, d := range it.DependsOn {
			// Requiring dependencies to come earlier rules out cycles.
			if _, ok := index[d]; !ok {
				e.writeError(w, ri, errf(400, "BadRequest", "Invalid batch payload: request '%s' depends on '%s', which is not an earlier request.", it.ID, d))
				return
			}
		}
		index[it.ID] = i
	}

	results := make([]batchResult, len(items))
	done := make([]chan struct{}, len(items))
	for i := range done {
		done[i] = make(chan struct{})
	}
	sem := make(chan struct{}, batchParallelism)
	var wg sync.WaitGroup
	for i := range items {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer close(done[i])
			it := items[i]
			for _, d := range it.DependsOn {
				j := index[d]
				<-done[j] // j < i and always closes
				if s := results[j].Status; s < 200 || s > 299 {
					results[i] = e.failedDependency(it.ID, ri)
					return
				}
			}
			sem <- struct{}{}
			results[i] = e.runBatchItem(r, it)
			<-sem
		}(i)
	}
	wg.Wait()
	writeJSON(w, 200, mustJSON(map[string]any{"responses": results}))
}

func (e *Emulator) failedDependency(id string, ri reqInfo) batchResult {
	rec := &recorder{header: http.Header{}}
	e.writeError(rec, ri, errf(424, "FailedDependency", "The request '%s' depends on a request that failed.", id))
	e.count("batch.item", 424)
	return batchResult{ID: id, Status: 424, Headers: map[string]string{"Content-Type": "application/json"}, Body: bytes.TrimSpace(rec.buf.Bytes())}
}

// runBatchItem runs one item through the ordinary Graph handler.
func (e *Emulator) runBatchItem(outer *http.Request, it batchItem) batchResult {
	u := it.URL
	if !strings.HasPrefix(u, "/") {
		u = "/" + u
	}
	body, ctype := batchBody(it)
	req, err := http.NewRequestWithContext(outer.Context(), strings.ToUpper(it.Method), e.prefix+"/v1.0"+u, bytes.NewReader(body))
	if err != nil {
		return batchResult{ID: it.ID, Status: 400, Body: mustJSON(map[string]any{"error": map[string]string{"code": "BadRequest", "message": "Invalid request URL."}})}
	}
	req.Host, req.TLS, req.RemoteAddr = outer.Host, outer.TLS, outer.RemoteAddr
	for k, v := range it.Headers {
		req.Header.Set(k, v)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	// Only the credentials carry over from the envelope; other headers,
	// Prefer included, must be set per item [inf].
	req.Header.Set("Authorization", outer.Header.Get("Authorization"))
	ri := reqInfo{id: newGUID(), client: req.Header.Get("client-request-id")}
	if ri.client == "" {
		ri.client = ri.id
	}
	rec := &recorder{header: http.Header{}}
	op := e.serveGraph(rec, req, strings.TrimPrefix(req.URL.Path, e.prefix+"/v1.0"), ri, true)
	if rec.status == 0 {
		rec.status = 200
	}
	e.count(op, rec.status)
	res := batchResult{ID: it.ID, Status: rec.status, Headers: map[string]string{}}
	for k, v := range rec.header {
		if len(v) > 0 {
			res.Headers[k] = v[0]
		}
	}
	if rec.buf.Len() > 0 {
		if strings.Contains(rec.header.Get("Content-Type"), "json") {
			res.Body = bytes.TrimSpace(rec.buf.Bytes())
		} else {
			// Binary bodies (photos) travel base64-encoded.
			res.Body = mustJSON(base64.StdEncoding.EncodeToString(rec.buf.Bytes()))
		}
	}
	return res
}

// batchBody turns an item's body into request bytes: JSON as is, a JSON
// string with a non-JSON Content-Type as base64 binary.
func batchBody(it batchItem) ([]byte, string) {
	if len(it.Body) == 0 {
		return nil, ""
	}
	ctype := ""
	for k, v := range it.Headers {
		if strings.EqualFold(k, "Content-Type") {
			ctype = v
		}
	}
	trimmed := bytes.TrimSpace(it.Body)
	if len(trimmed) > 0 && trimmed[0] == '"' && !strings.Contains(ctype, "json") {
		var s string
		if json.Unmarshal(trimmed, &s) == nil {
			if b, err := base64.StdEncoding.DecodeString(s); err == nil {
				return b, ctype
			}
			return []byte(s), ctype
		}
	}
	if ctype == "" {
		ctype = "application/json"
	}
	return trimmed, ctype
}
