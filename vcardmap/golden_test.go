package vcardmap

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/contactsdav/contactsdav/backend/graph"
)

var update = flag.Bool("update", false, "rewrite the golden .json, .extras and .out.vcf files in testdata")

// goldenMapped is the reviewable form of a Parse result.
type goldenMapped struct {
	Contact graph.Contact `json:"contact"`
	UID     string        `json:"uid,omitempty"`
	Kind    string        `json:"kind,omitempty"`
	Members []string      `json:"members,omitempty"`
	Photo   *goldenPhoto  `json:"photo,omitempty"`
}

type goldenPhoto struct {
	ContentType string `json:"contentType"`
	Bytes       int    `json:"bytes"`
	SHA256      string `json:"sha256"`
}

func toGolden(m *Mapped) goldenMapped {
	g := goldenMapped{Contact: m.Contact, UID: m.UID, Kind: m.Kind, Members: m.Members}
	if m.Photo != nil {
		sum := sha256.Sum256(m.Photo.Data)
		g.Photo = &goldenPhoto{m.Photo.ContentType, len(m.Photo.Data), hex.EncodeToString(sum[:])}
	}
	return g
}

// fixtures returns the client cards in testdata (not the .out.vcf goldens).
func fixtures(t testing.TB) []string {
	all, err := filepath.Glob("testdata/*.vcf")
	if err != nil {
		t.Fatal(err)
	}
	var in []string
	for _, f := range all {
		if !strings.HasSuffix(f, ".out.vcf") {
			in = append(in, f)
		}
	}
	if len(in) < 12 {
		t.Fatalf("only %d fixtures", len(in))
	}
	return in
}

// servedVersion is the version a card is rendered back in: its own (2.1 as 3.0).
func servedVersion(v string) string {
	if v == "4.0" {
		return "4.0"
	}
	return "3.0"
}

func TestGolden(t *testing.T) {
	for _, f := range fixtures(t) {
		base := strings.TrimSuffix(f, ".vcf")
		t.Run(filepath.Base(base), func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, _ := json.MarshalIndent(toGolden(m), "", "  ")
			got = append(got, '\n')
			out, err := Render(m, servedVersion(m.Version))
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if *update {
				must(t, os.WriteFile(base+".json", got, 0o644))
				must(t, os.WriteFile(base+".extras", []byte(m.Extras), 0o644))
				must(t, os.WriteFile(base+".out.vcf", out, 0o644))
			}
			wantJSON, err := os.ReadFile(base + ".json")
			must(t, err)
			var want, have goldenMapped
			must(t, json.Unmarshal(wantJSON, &want))
			must(t, json.Unmarshal(got, &have))
			if !reflect.DeepEqual(want, have) {
				t.Errorf("Graph mapping differs from %s.json (run with -update to regenerate):\n%s", base, got)
			}
			wantOut, err := os.ReadFile(base + ".out.vcf")
			must(t, err)
			if ok, diff := Equivalent(wantOut, out); !ok {
				t.Errorf("served card differs from %s.out.vcf:\n%s", base, diff)
			}
			if ok, diff := Equivalent(in, out); !ok {
				t.Errorf("round trip is not equivalent:\n%s", diff)
			}
			checkWire(t, out)
			// Served in the other version, the card maps to the same Graph contact.
			other := "4.0"
			if servedVersion(m.Version) == "4.0" {
				other = "3.0"
			}
			x, err := Render(m, other)
			if err != nil {
				t.Fatal(err)
			}
			checkWire(t, x)
			mx, err := Parse(x)
			if err != nil {
				t.Fatalf("Parse(%s rendering): %v", other, err)
			}
			if !reflect.DeepEqual(toGolden(mx), toGolden(m)) {
				t.Errorf("%s rendering maps differently:\n%+v\n%s", other, toGolden(mx).Contact, x)
			}
			// Serving the served card again is a fixed point.
			m2, err := Parse(out)
			if err != nil {
				t.Fatalf("Parse(served): %v", err)
			}
			if !reflect.DeepEqual(toGolden(m2), toGolden(m)) {
				t.Errorf("re-parsing the served card changes the Graph mapping")
			}
		})
	}
}

// checkWire asserts CRLF line ends and physical lines of at most 75 octets.
func checkWire(t testing.TB, out []byte) {
	t.Helper()
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		t.Errorf("output does not end in CRLF")
	}
	for i, l := range strings.Split(strings.TrimSuffix(string(out), "\r\n"), "\r\n") {
		if len(l) > maxLine {
			t.Errorf("line %d is %d octets: %.40q…", i+1, len(l), l)
		}
		if strings.ContainsAny(l, "\r\n") {
			t.Errorf("line %d has a bare CR or LF", i+1)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDeterministic: the backend derives ETags from rendered bytes and
// stores Extras, so both must be byte-stable for the same input.
func TestDeterministic(t *testing.T) {
	for _, f := range fixtures(t) {
		in, err := os.ReadFile(f)
		must(t, err)
		var extras string
		var out []byte
		for i := 0; i < 5; i++ {
			m, err := Parse(in)
			must(t, err)
			o, err := Render(m, "3.0")
			must(t, err)
			if i > 0 && (m.Extras != extras || !bytes.Equal(o, out)) {
				t.Fatalf("%s: output differs between runs", f)
			}
			extras, out = m.Extras, o
		}
	}
}

func BenchmarkParse(b *testing.B) {
	in, err := os.ReadFile("testdata/ios17-item-labels.vcf")
	must(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRender(b *testing.B) {
	in, err := os.ReadFile("testdata/ios17-item-labels.vcf")
	must(b, err)
	m, err := Parse(in)
	must(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(m, "3.0"); err != nil {
			b.Fatal(err)
		}
	}
}
