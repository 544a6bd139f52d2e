package vcardmap

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, name := range fixtures(f) {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, lines := range adversarial {
		f.Add(vcf(lines...))
	}
	f.Add([]byte("BEGIN:VCARD\r\nVERSION:2.1\r\nNOTE;ENCODING=QUOTED-PRINTABLE:a=\r\nb=0D=0A\r\nTEL;CELL:1\r\nEND:VCARD\r\n"))
	f.Add([]byte("BEGIN:VCARD\nVERSION:4.0\nX-A;P=\"a:b\";Q=x,y:v\\,w\\;\\\\\n\tz\nEND:VCARD\n"))
}

// FuzzParse: Parse never panics, fails only with ErrInvalid, and what it
// accepts renders to well-formed output that parses again.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		for _, v := range []string{"3.0", "4.0"} {
			out, err := Render(m, v)
			if err != nil {
				t.Fatalf("Render %s: %v", v, err)
			}
			checkWire(t, out)
			if _, err := Parse(out); err != nil {
				t.Fatalf("served %s card does not parse: %v\n%s", v, err, out)
			}
		}
	})
}

// FuzzRoundTrip: whatever Parse accepts comes back equivalent when served
// in its own version, and serving is stable (the served card maps to the
// same Graph contact and serves an equivalent card again).
func FuzzRoundTrip(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		v := servedVersion(m.Version)
		out, err := Render(m, v)
		if err != nil {
			t.Fatal(err)
		}
		if ok, diff := Equivalent(data, out); !ok {
			t.Fatalf("not equivalent:\n%s\n--- in:\n%q\n--- out:\n%q", diff, data, out)
		}
		m2, err := Parse(out)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(toGolden(m2), toGolden(m)) {
			t.Fatalf("served card maps differently:\n%+v\n%+v", m.Contact, m2.Contact)
		}
		out2, err := Render(m2, v)
		if err != nil {
			t.Fatal(err)
		}
		if ok, diff := Equivalent(out, out2); !ok {
			t.Fatalf("second serving differs:\n%s", diff)
		}
	})
}

// FuzzRenderExtras: Render never panics or fails on whatever Extras the
// store hands back, and always serves a card that parses.
func FuzzRenderExtras(f *testing.F) {
	all, _ := filepath.Glob("testdata/*.extras")
	for _, name := range all {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, extras string) {
		c := fullContact()
		for _, v := range []string{"3.0", "4.0"} {
			out, err := Render(&Mapped{Contact: c, Extras: extras, Photo: testPhoto(10)}, v)
			if err != nil {
				t.Fatal(err)
			}
			checkWire(t, out)
			if _, err := Parse(out); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		}
	})
}
