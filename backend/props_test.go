package backend

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/contactsdav/contactsdav/backend/graph"
)

func TestSplitExtras(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		chunks int
		ok     bool
	}{
		{"empty", "", 0, true},
		{"small", "X-A:1", 1, true},
		{"exactly one chunk", strings.Repeat("a", extraChunk), 1, true},
		{"rune across the boundary", strings.Repeat("a", extraChunk-1) + "é" + "b", 2, true},
		{"four chunks", strings.Repeat("a", maxChunks*extraChunk), maxChunks, true},
		{"too many", strings.Repeat("a", maxChunks*extraChunk+1), maxChunks + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks, ok := splitExtras(tt.in)
			if len(chunks) != tt.chunks || ok != tt.ok {
				t.Fatalf("got %d chunks ok=%v, want %d ok=%v", len(chunks), ok, tt.chunks, tt.ok)
			}
			c := &graph.Contact{}
			for i, ch := range chunks {
				if !utf8.ValidString(ch) || len(ch) > extraChunk {
					t.Errorf("chunk %d: %d bytes, valid UTF-8 %v", i, len(ch), utf8.ValidString(ch))
				}
				if i < len(extraProps) {
					setProp(c, extraProps[i], ch)
				}
			}
			if tt.ok && joinExtras(c) != tt.in {
				t.Errorf("join(split(x)) != x")
			}
		})
	}
}

func TestTokens(t *testing.T) {
	tok := formatToken("abcdefghijklmnop", 1<<39, 42)
	key, epoch, seq, err := parseToken(tok)
	if err != nil || key != "abcdefghijklmnop" || epoch != 1<<39 || seq != 42 {
		t.Fatalf("parseToken(%q) = %q %d %d %v", tok, key, epoch, seq, err)
	}
	for _, bad := range []string{"", "urn:contactsdav:sync:", "urn:contactsdav:sync:k:1", "urn:contactsdav:sync:k:-1:2", "urn:other:sync:k:1:2"} {
		if _, _, _, err := parseToken(bad); err == nil {
			t.Errorf("parseToken(%q) accepted", bad)
		}
	}
}

func TestETagDependsOnPhotoAndChangeKey(t *testing.T) {
	base := graph.Contact{ChangeKey: "ck1"}
	pic := base
	setProp(&pic, graph.PropHasPicture, "true")
	other := graph.Contact{ChangeKey: "ck2"}
	e1, e2, e3 := contactETag(&base), contactETag(&pic), contactETag(&other)
	if e1 == e2 || e1 == e3 || e2 == e3 {
		t.Errorf("ETags collide: %s %s %s", e1, e2, e3)
	}
	if !strings.HasPrefix(e1, `"`) || !strings.HasSuffix(e1, `"`) || strings.HasPrefix(e1, "W/") {
		t.Errorf("ETag %s is not strong and quoted", e1)
	}
}
