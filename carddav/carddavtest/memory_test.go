package carddavtest

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-webdav"

	"github.com/contactsdav/contactsdav/carddav"
)

func vcf(uid string) []byte {
	return []byte("BEGIN:VCARD\r\nVERSION:4.0\r\nUID:" + uid + "\r\nFN:" + uid + "\r\nEND:VCARD\r\n")
}

func put(t *testing.T, b *Backend, name string, cond carddav.Conditions) *carddav.PutResult {
	t.Helper()
	res, err := b.PutObject(context.Background(), DefaultBook, name, vcf(strings.TrimSuffix(name, ".vcf")), cond)
	if err != nil {
		t.Fatalf("PutObject(%s) = %v", name, err)
	}
	return res
}

func names(infos []carddav.ObjectInfo) string {
	var out []string
	for _, in := range infos {
		out = append(out, in.Name)
	}
	return strings.Join(out, ",")
}

func TestSyncChanges(t *testing.T) {
	ctx := context.Background()
	b := NewBackend()
	ab, err := b.AddressBook(ctx, DefaultBook)
	if err != nil {
		t.Fatal(err)
	}
	t0 := ab.SyncToken
	put(t, b, "a.vcf", carddav.Conditions{})
	put(t, b, "b.vcf", carddav.Conditions{})
	put(t, b, "c.vcf", carddav.Conditions{})
	if err := b.DeleteObject(ctx, DefaultBook, "b.vcf", ""); err != nil {
		t.Fatal(err)
	}
	put(t, b, "a.vcf", carddav.Conditions{}) // a's last change is now the newest

	initial, err := b.SyncChanges(ctx, DefaultBook, "", 0)
	if err != nil || names(initial.Changed) != "c.vcf,a.vcf" || len(initial.Deleted) != 0 || initial.Truncated {
		t.Fatalf("initial = %+v, %v", initial, err)
	}
	ab, _ = b.AddressBook(ctx, DefaultBook)
	if initial.Token != ab.SyncToken || initial.Token == t0 {
		t.Errorf("token %q, book %q", initial.Token, ab.SyncToken)
	}
	incr, err := b.SyncChanges(ctx, DefaultBook, t0, 0)
	if err != nil || names(incr.Changed) != "c.vcf,a.vcf" || strings.Join(incr.Deleted, ",") != "b.vcf" {
		t.Fatalf("incremental = %+v, %v", incr, err)
	}

	// Paging: two at a time, resuming from each token, ends with all.
	var seen []string
	tok := t0
	for i := 0; ; i++ {
		if i == 5 {
			t.Fatal("paging does not end")
		}
		page, err := b.SyncChanges(ctx, DefaultBook, tok, 2)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, names(page.Changed))
		seen = append(seen, page.Deleted...)
		tok = page.Token
		if !page.Truncated {
			break
		}
	}
	if got := strings.Join(seen, ","); got != "b.vcf,c.vcf,a.vcf" && got != "c.vcf,b.vcf,a.vcf" {
		t.Errorf("paged = %q", got)
	}
	if tok != initial.Token {
		t.Errorf("paging ended at %q, want %q", tok, initial.Token)
	}

	for _, bad := range []string{"x", tok + "0", "http://contactsdav.test/ns/sync/0/0", strings.Replace(tok, "/sync/", "/sync/9", 1)} {
		if _, err := b.SyncChanges(ctx, DefaultBook, bad, 0); !errors.Is(err, carddav.ErrInvalidSyncToken) {
			t.Errorf("SyncChanges(%q) = %v", bad, err)
		}
	}
	// A re-created book does not accept the old book's tokens.
	if _, err := b.CreateAddressBook(ctx, "x", carddav.BookProps{}); err != nil {
		t.Fatal(err)
	}
	xb, _ := b.AddressBook(ctx, "x")
	if err := b.DeleteAddressBook(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateAddressBook(ctx, "x", carddav.BookProps{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SyncChanges(ctx, "x", xb.SyncToken, 0); !errors.Is(err, carddav.ErrInvalidSyncToken) {
		t.Errorf("old book's token = %v", err)
	}
}

// status reads the code of a webdav.NewHTTPError ("412 Precondition Failed: …").
func status(err error) int {
	for _, code := range []int{403, 404, 405, 409, 412} {
		if err != nil && strings.HasPrefix(err.Error(), strconv.Itoa(code)+" ") {
			return code
		}
	}
	return 0
}

func TestConditionsAndPreconditions(t *testing.T) {
	ctx := context.Background()
	b := NewBackend()
	res := put(t, b, "a.vcf", carddav.Conditions{IfNoneMatch: "*"})
	if !res.Created || !strings.HasPrefix(res.ETag, `"`) {
		t.Fatalf("create = %+v", res)
	}
	for _, tc := range []struct {
		name string
		cond carddav.Conditions
		want int
	}{
		{"If-None-Match * on existing", carddav.Conditions{IfNoneMatch: "*"}, 412},
		{"stale If-Match", carddav.Conditions{IfMatch: `"nope"`}, 412},
		{"If-None-Match current etag", carddav.Conditions{IfNoneMatch: webdav.ConditionalMatch(res.ETag)}, 412},
		{"current If-Match", carddav.Conditions{IfMatch: webdav.ConditionalMatch(res.ETag)}, 0},
		{"If-Match *", carddav.Conditions{IfMatch: "*"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.PutObject(ctx, DefaultBook, "a.vcf", vcf("a"), tc.cond)
			if got := status(err); got != tc.want {
				t.Errorf("status = %d (%v), want %d", got, err, tc.want)
			}
		})
	}
	if _, err := b.PutObject(ctx, DefaultBook, "new.vcf", vcf("n"), carddav.Conditions{IfMatch: "*"}); status(err) != 412 {
		t.Errorf("If-Match on a missing object = %v", err)
	}
	var pe *carddav.PreconditionError
	if _, err := b.PutObject(ctx, DefaultBook, "dup.vcf", vcf("a"), carddav.Conditions{}); !errors.As(err, &pe) || pe.Condition != carddav.NoUIDConflict {
		t.Errorf("UID conflict = %v", err)
	}
	if _, err := b.PutObject(ctx, DefaultBook, "bad.vcf", []byte("hello"), carddav.Conditions{}); !errors.As(err, &pe) || pe.Condition != carddav.ValidAddressData {
		t.Errorf("bad card = %v", err)
	}
	if _, err := b.PutObject(ctx, "nope", "a.vcf", vcf("z"), carddav.Conditions{}); status(err) != 404 {
		t.Errorf("missing book = %v", err)
	}
	if err := b.DeleteObject(ctx, DefaultBook, "a.vcf", `"stale"`); status(err) != 412 {
		t.Errorf("stale delete = %v", err)
	}
	if err := b.DeleteAddressBook(ctx, DefaultBook); status(err) != 403 {
		t.Errorf("delete default = %v", err)
	}
	objs, err := b.GetObjects(ctx, DefaultBook, []string{"a.vcf", "missing.vcf"}, "3.0")
	if err != nil || len(objs) != 1 || !strings.Contains(string(objs[0].Card), "VERSION:3.0") {
		t.Errorf("GetObjects = %+v, %v", objs, err)
	}
	b.Fail = func(op string) error {
		if op == "ListObjects" {
			return &carddav.UnavailableError{Err: errors.New("down")}
		}
		return nil
	}
	var ue *carddav.UnavailableError
	if _, err := b.ListObjects(ctx, DefaultBook); !errors.As(err, &ue) {
		t.Errorf("Fail hook = %v", err)
	}
}
