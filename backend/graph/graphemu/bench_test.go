package graphemu_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/contactsdav/contactsdav/backend/graph/graphemu"
)

// benchEmulator is an in-memory emulator whose default folder holds 10,000
// contacts.
func benchEmulator(b *testing.B) (*graphemu.Emulator, string) {
	b.Helper()
	emu, err := graphemu.New(graphemu.Options{PathPrefix: prefix, Limits: graphemu.Limits{RequestsPerWindow: 1 << 30}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { emu.Close() })
	if err := emu.Seed(upn, 10000); err != nil {
		b.Fatal(err)
	}
	return emu, emu.AccessToken(upn)
}

func serve(b *testing.B, emu *graphemu.Emulator, token, url string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	emu.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("%s: %d %s", url, rec.Code, rec.Body.String())
	}
	return rec
}

// BenchmarkListPage1000 lists one 1000-contact page from the middle of a
// 10,000-contact folder.
func BenchmarkListPage1000(b *testing.B) {
	emu, token := benchEmulator(b)
	b.ResetTimer()
	for b.Loop() {
		serve(b, emu, token, "http://127.0.0.1"+prefix+"/v1.0/me/contacts?$top=1000&$skip=5000")
	}
}

// BenchmarkDeltaPage1000 serves the first 1000-item page of an initial delta
// round over a 10,000-contact folder.
func BenchmarkDeltaPage1000(b *testing.B) {
	emu, token := benchEmulator(b)
	rec := serve(b, emu, token, "http://127.0.0.1"+prefix+"/v1.0/me/contacts/delta", "Prefer", "odata.maxpagesize=1000")
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		b.Fatal(err)
	}
	next, _ := m["@odata.nextLink"].(string)
	if next == "" {
		b.Fatal("no nextLink")
	}
	b.ResetTimer()
	for b.Loop() {
		serve(b, emu, token, next, "Prefer", "odata.maxpagesize=1000")
	}
}
