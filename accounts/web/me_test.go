package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// SignInName takes the UPN, falls back to the mail address (personal
// accounts without one) and refuses a user with neither.
func TestSignInName(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"id":"1","userPrincipalName":"adele@contoso.example","mail":"a@other.example"}`, "adele@contoso.example"},
		{`{"id":"1","mail":"adele@outlook.example"}`, "adele@outlook.example"},
		{`{"id":"1"}`, ""},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1.0/me" || r.Header.Get("Authorization") != "Bearer tok" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, tc.body)
		}))
		got, err := SignInName(context.Background(), srv.Client(), srv.URL+"/v1.0", "tok")
		srv.Close()
		if tc.want == "" {
			if err == nil {
				t.Errorf("%s: got %q, want an error", tc.body, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.body, got, err, tc.want)
		}
	}
}
