package graph

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// statusSentinels maps an HTTP status to the sentinels it matches.
var statusSentinels = map[int][]error{
	http.StatusBadRequest:          {ErrBadRequest},
	http.StatusUnauthorized:        {ErrUnauthorized},
	http.StatusForbidden:           {ErrForbidden},
	http.StatusNotFound:            {ErrNotFound},
	http.StatusConflict:            {ErrConflict},
	http.StatusGone:                {ErrSyncStateNotFound},
	http.StatusPreconditionFailed:  {ErrPreconditionFailed},
	http.StatusTooManyRequests:     {ErrThrottled},
	http.StatusInternalServerError: {ErrUnavailable},
	http.StatusBadGateway:          {ErrUnavailable},
	// Graph also throttles with 503 and 504 (throttling docs), so they
	// match ErrThrottled as well, as that sentinel documents.
	http.StatusServiceUnavailable: {ErrUnavailable, ErrThrottled},
	http.StatusGatewayTimeout:     {ErrUnavailable, ErrThrottled},
}

// codeSentinels maps an error code, lower case and without Exchange's
// "Error" prefix, to its sentinel: Exchange says ErrorItemNotFound, the
// Graph gateway itemNotFound.
var codeSentinels = map[string]error{
	"itemnotfound":                 ErrNotFound,
	"resourcenotfound":             ErrNotFound,
	"irresolvableconflict":         ErrPreconditionFailed,
	"toomanyrequests":              ErrThrottled,
	"applicationthrottled":         ErrThrottled,
	"syncstatenotfound":            ErrSyncStateNotFound,
	"resyncrequired":               ErrSyncStateNotFound,
	"invalidsyncstatedata":         ErrSyncStateNotFound, // [inf] a 400 some delta links get
	"invalidauthenticationtoken":   ErrUnauthorized,
	"accessdenied":                 ErrForbidden,
	"authorization_requestdenied":  ErrForbidden,
	"folderexists":                 ErrConflict,
	"serviceunavailable":           ErrUnavailable,
	"servicenotavailable":          ErrUnavailable,
	"serverbusy":                   ErrUnavailable,
	"toomanyobjectsopened":         ErrUnavailable,
	"invalididmalformed":           ErrBadRequest,
	"badrequest":                   ErrBadRequest,
	"invalidrequest":               ErrBadRequest,
	"invalidproperty":              ErrBadRequest,
	"invalidauthenticationrequest": ErrUnauthorized,
}

// normCode lowercases a Graph error code and strips Exchange's "Error"
// prefix, so ErrorItemNotFound and itemNotFound compare equal.
func normCode(code string) string {
	c := strings.ToLower(code)
	if len(c) > len("error") && strings.HasPrefix(c, "error") {
		c = c[len("error"):]
	}
	return c
}

// Is lets errors.Is match an *Error against the package's sentinels: by
// HTTP status first, then by error code.
func (e *Error) Is(target error) bool {
	for _, s := range statusSentinels[e.Status] {
		if s == target {
			return true
		}
	}
	if s, ok := codeSentinels[normCode(e.Code)]; ok && s == target {
		return true
	}
	return false
}

// errorBody is Graph's error JSON; innerError can nest.
type errorBody struct {
	Error *struct {
		Code       string      `json:"code"`
		Message    string      `json:"message"`
		InnerError *innerError `json:"innerError"`
	} `json:"error"`
}

type innerError struct {
	Code       string      `json:"code"`
	RequestID  string      `json:"request-id"`
	InnerError *innerError `json:"innerError"`
}

// decodeError turns a non-2xx answer into an *Error. A body that is not
// Graph's error JSON (a proxy's HTML page) still gives the status.
func decodeError(status int, h http.Header, body []byte) *Error {
	e := &Error{Status: status, RequestID: h.Get("request-id")}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != nil {
		e.Code = eb.Error.Code
		e.Message = eb.Error.Message
		for in, depth := eb.Error.InnerError, 0; in != nil && depth < 8; in, depth = in.InnerError, depth+1 {
			if in.RequestID != "" {
				e.RequestID = in.RequestID
				break
			}
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	e.RetryAfter = parseRetryAfter(h.Get("Retry-After"), time.Now())
	return e
}
