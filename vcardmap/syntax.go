package vcardmap

// This file is the content-line layer (RFC 6350 §3.3, RFC 2426 §2): reading
// with the tolerance real clients need, writing strictly. It deliberately does
// not use go-vcard: its encoder neither folds nor quotes parameter values and
// mangles list and escaped values (see clients.md §5), and its decoder drops
// lines it cannot parse. Values stay in their escaped wire form here; the
// mapping layer unescapes per value kind.

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// param is one parameter of a content line; Values are its comma-separated
// values as written (quotes removed).
type param struct {
	Name   string
	Values []string
}

// property is one content line. Value is the raw, still escaped value.
type property struct {
	Group  string
	Name   string
	Params []param
	Value  string
}

// is reports whether the property has the given name (case-insensitive).
func (p *property) is(name string) bool { return strings.EqualFold(p.Name, name) }

// param returns every value of the parameters called name, in order.
func (p *property) param(name string) []string {
	var vs []string
	for _, pa := range p.Params {
		if strings.EqualFold(pa.Name, name) {
			vs = append(vs, pa.Values...)
		}
	}
	return vs
}

// hasParam reports whether a parameter called name is present.
func (p *property) hasParam(name string) bool {
	for _, pa := range p.Params {
		if strings.EqualFold(pa.Name, name) {
			return true
		}
	}
	return false
}

// dropParam removes every parameter called name.
func (p *property) dropParam(name string) {
	out := p.Params[:0:0]
	for _, pa := range p.Params {
		if !strings.EqualFold(pa.Name, name) {
			out = append(out, pa)
		}
	}
	p.Params = out
}

// types returns the lower-cased TYPE values; a quoted 4.0 "work,voice" is split.
func (p *property) types() map[string]bool {
	t := map[string]bool{}
	for _, v := range p.param("TYPE") {
		for _, s := range strings.Split(v, ",") {
			if s = strings.ToLower(strings.TrimSpace(s)); s != "" {
				t[s] = true
			}
		}
	}
	return t
}

// clone returns a deep copy.
func (p *property) clone() *property {
	q := *p
	q.Params = make([]param, len(p.Params))
	for i, pa := range p.Params {
		q.Params[i] = param{Name: pa.Name, Values: append([]string(nil), pa.Values...)}
	}
	return &q
}

// card is a parsed vCard: its VERSION and every other property in order
// (BEGIN, END and VERSION excluded).
type card struct {
	Version string
	Props   []*property
}

// invalid returns an error wrapping ErrInvalid.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// parseCard reads exactly one vCard. It accepts CRLF or bare LF, folding by
// space or tab, and vCard 2.1 leftovers (quoted-printable with soft line
// breaks, CHARSET, bare TYPE parameters), which it normalises to 3.0 form.
func parseCard(data []byte) (*card, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	lines := unfold(string(data))
	c := &card{}
	state := 0 // 0 before BEGIN, 1 inside, 2 after END
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if state == 2 {
			return nil, invalid("content after END:VCARD (one vCard per resource)")
		}
		p, err := parseLine(l)
		if err != nil {
			return nil, err
		}
		switch {
		case p.is("BEGIN"):
			if !strings.EqualFold(strings.TrimSpace(p.Value), "VCARD") || state != 0 {
				return nil, invalid("unexpected BEGIN (nested or not VCARD)")
			}
			state = 1
			continue
		case state == 0:
			return nil, invalid("content before BEGIN:VCARD")
		case p.is("END"):
			if !strings.EqualFold(strings.TrimSpace(p.Value), "VCARD") {
				return nil, invalid("unexpected END (not VCARD)")
			}
			state = 2
			continue
		case p.is("VERSION"):
			c.Version = strings.TrimSpace(p.Value)
			continue
		}
		c.Props = append(c.Props, p)
	}
	if state == 0 {
		return nil, invalid("no BEGIN:VCARD")
	}
	if state == 1 {
		return nil, invalid("no END:VCARD")
	}
	switch c.Version {
	case "2.1", "3.0", "4.0":
	case "":
		c.Version = "3.0" // tolerated: some exporters omit it
	default:
		return nil, invalid("unsupported VERSION %q", c.Version)
	}
	for _, p := range c.Props {
		if err := decodeLegacy(p); err != nil {
			return nil, err
		}
		if err := checkText(p); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// unfold splits text into logical lines: a physical line starting with space
// or tab continues the previous one (RFC 6350 §3.2), and a quoted-printable
// line ending in "=" continues on the next (vCard 2.1 soft line break).
func unfold(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	if !strings.Contains(s, "\n") {
		s = strings.ReplaceAll(s, "\r", "\n") // classic Mac line ends
	}
	phys := strings.Split(s, "\n")
	var out []string
	var cur strings.Builder // builders keep a 100 KB folded PHOTO linear
	open := false
	flush := func() {
		if open {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(phys); i++ {
		l := strings.TrimSuffix(phys[i], "\r")
		if (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && open {
			cur.WriteString(l[1:])
			continue
		}
		flush()
		if isQP(l) {
			for strings.HasSuffix(l, "=") && i+1 < len(phys) {
				cur.WriteString(l[:len(l)-1])
				i++
				l = strings.TrimSuffix(phys[i], "\r")
			}
		}
		cur.WriteString(l)
		open = true
	}
	flush()
	return out
}

// isQP reports whether a raw line has an ENCODING=QUOTED-PRINTABLE (or
// bare QUOTED-PRINTABLE) parameter; the words elsewhere (a TYPE value, inside
// a quoted string) do not count.
func isQP(l string) bool {
	if !strings.Contains(strings.ToUpper(l), "QUOTED-PRINTABLE") {
		return false // fast path
	}
	p, err := parseLine(l)
	if err != nil {
		return false
	}
	for _, v := range p.param("ENCODING") {
		if strings.EqualFold(v, "QUOTED-PRINTABLE") {
			return true
		}
	}
	return false
}

// cutValue splits a line at the first colon outside a quoted parameter value.
func cutValue(l string) (head, value string, ok bool) {
	q := false
	for i := 0; i < len(l); i++ {
		switch l[i] {
		case '"':
			// Only a quote opening a parameter value (after '=' or ',')
			// starts a quoted string; a stray one inside a value is data.
			if q || i > 0 && (l[i-1] == '=' || l[i-1] == ',') {
				q = !q
			}
		case ':':
			if !q {
				return l[:i], l[i+1:], true
			}
		}
	}
	return l, "", false
}

// parseLine parses one unfolded content line.
func parseLine(l string) (*property, error) {
	head, value, ok := cutValue(l)
	if !ok {
		return nil, invalid("line without a colon")
	}
	p := &property{Value: value}
	i := strings.IndexByte(head, ';')
	name := head
	rest := ""
	if i >= 0 {
		name, rest = head[:i], head[i+1:]
	}
	if g, n, ok := strings.Cut(name, "."); ok {
		p.Group, name = g, n
		if !isName(p.Group) {
			return nil, invalid("bad group name")
		}
	}
	if !isName(name) {
		return nil, invalid("bad property name %q", truncate(name))
	}
	p.Name = name
	for rest != "" {
		pa, r, err := parseParam(rest)
		if err != nil {
			return nil, err
		}
		rest = r
		if pa.Name == "" {
			continue // ";;" — tolerated
		}
		p.Params = append(p.Params, pa)
	}
	return p, nil
}

// parseParam parses one parameter from s and returns the remainder after the
// following ';'. A parameter without '=' (vCard 2.1 "TEL;CELL:") becomes
// TYPE=<it>, or ENCODING=<it> for an encoding name.
func parseParam(s string) (param, string, error) {
	i := 0
	for i < len(s) && s[i] != '=' && s[i] != ';' {
		i++
	}
	name := strings.TrimSpace(s[:i])
	if name != "" && !isName(name) {
		return param{}, "", invalid("bad parameter name %q", truncate(name))
	}
	if i == len(s) || s[i] == ';' {
		rest := ""
		if i < len(s) {
			rest = s[i+1:]
		}
		if name == "" {
			return param{}, rest, nil
		}
		switch strings.ToUpper(name) {
		case "QUOTED-PRINTABLE", "BASE64", "8BIT", "7BIT", "B":
			return param{Name: "ENCODING", Values: []string{name}}, rest, nil
		}
		return param{Name: "TYPE", Values: []string{name}}, rest, nil
	}
	if name == "" {
		return param{}, "", invalid("parameter without a name")
	}
	s = s[i+1:]
	pa := param{Name: name}
	for {
		var v string
		if strings.HasPrefix(s, `"`) {
			j := strings.IndexByte(s[1:], '"')
			if j < 0 {
				return param{}, "", invalid("unterminated quoted parameter value")
			}
			v, s = s[1:1+j], s[2+j:]
		} else {
			j := strings.IndexAny(s, ",;")
			if j < 0 {
				j = len(s)
			}
			v, s = s[:j], s[j:]
		}
		pa.Values = append(pa.Values, v)
		if strings.HasPrefix(s, ",") {
			s = s[1:]
			continue
		}
		if s == "" {
			return pa, "", nil
		}
		if s[0] != ';' {
			return param{}, "", invalid("garbage after quoted parameter value")
		}
		return pa, s[1:], nil
	}
}

// isName reports whether s is a valid property, group or parameter name.
func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// decodeLegacy turns vCard 2.1 encodings into plain 3.0/4.0 form: the
// quoted-printable value is decoded, CHARSET applied, and newlines escaped;
// the ENCODING=QUOTED-PRINTABLE, 8BIT and CHARSET parameters are removed and
// ENCODING=BASE64 becomes ENCODING=b.
func decodeLegacy(p *property) error {
	qp := false
	for i := range p.Params {
		pa := &p.Params[i]
		if !strings.EqualFold(pa.Name, "ENCODING") {
			continue
		}
		for j, v := range pa.Values {
			switch strings.ToUpper(v) {
			case "QUOTED-PRINTABLE":
				qp = true
			case "BASE64":
				pa.Values[j] = "b"
			}
		}
	}
	charset := ""
	if cs := p.param("CHARSET"); len(cs) > 0 {
		charset = strings.ToLower(cs[0])
	}
	// An empty CHARSET= names no charset: decode as UTF-8, but still drop
	// the parameter, which no 3.0/4.0 card may carry.
	if !qp && !p.hasParam("CHARSET") {
		return nil
	}
	raw := []byte(p.Value)
	if qp {
		var err error
		if raw, err = decodeQP(p.Value); err != nil {
			return err
		}
		out := p.Params[:0:0]
		for _, pa := range p.Params {
			if strings.EqualFold(pa.Name, "ENCODING") {
				var keep []string
				for _, v := range pa.Values {
					if u := strings.ToUpper(v); u != "QUOTED-PRINTABLE" && u != "8BIT" && u != "7BIT" {
						keep = append(keep, v)
					}
				}
				if len(keep) == 0 {
					continue
				}
				pa.Values = keep
			}
			out = append(out, pa)
		}
		p.Params = out
	}
	s, err := toUTF8(raw, charset)
	if err != nil {
		return err
	}
	p.dropParam("CHARSET")
	if qp {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		s = strings.ReplaceAll(s, "\r", "\n")
		s = strings.ReplaceAll(s, "\n", `\n`)
	}
	p.Value = s
	return nil
}

// decodeQP decodes a quoted-printable value (RFC 2045 §6.7) whose soft line
// breaks were already removed by unfold.
func decodeQP(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			out = append(out, s[i])
			continue
		}
		if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
			if i == len(s)-1 {
				break // a trailing soft break with nothing after it
			}
			return nil, invalid("bad quoted-printable escape")
		}
		out = append(out, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
		i += 2
	}
	return out, nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// cp1252 maps bytes 0x80–0x9F of windows-1252 (undefined ones to U+FFFD).
var cp1252 = [32]rune{
	0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
	0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
}

// toUTF8 converts bytes in the named charset to UTF-8. Only the charsets
// vCard 2.1 exporters use in practice without a conversion library are
// supported; anything else is refused rather than guessed.
func toUTF8(b []byte, charset string) (string, error) {
	switch charset {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		if !utf8.Valid(b) {
			return "", invalid("value is not valid UTF-8")
		}
		return string(b), nil
	case "iso-8859-1", "latin1", "iso-8859-15", "windows-1252", "cp1252":
		var sb strings.Builder
		for _, c := range b {
			switch {
			case c >= 0x80 && c < 0xA0 && (charset == "windows-1252" || charset == "cp1252"):
				sb.WriteRune(cp1252[c-0x80])
			default:
				sb.WriteRune(rune(c))
			}
		}
		return sb.String(), nil
	}
	return "", invalid("unsupported CHARSET %q", charset)
}

// checkText refuses invalid UTF-8 and control characters other than tab:
// Graph cannot store them and no client writes them on purpose.
func checkText(p *property) error {
	check := func(s string) error {
		if !utf8.ValidString(s) {
			return invalid("%s: not valid UTF-8", p.Name)
		}
		for _, r := range s {
			if r < 0x20 && r != '\t' || r == 0x7f {
				return invalid("%s: control character", p.Name)
			}
		}
		return nil
	}
	if err := check(p.Value); err != nil {
		return err
	}
	for _, pa := range p.Params {
		for _, v := range pa.Values {
			if err := check(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// contentLine serialises a property without folding. Parameter values that
// contain ':', ';' or ',' are quoted (go-vcard does not); a double quote,
// which cannot appear inside a quoted value, becomes RFC 6868's ^'.
func contentLine(p *property) string {
	var b strings.Builder
	if p.Group != "" {
		b.WriteString(p.Group)
		b.WriteByte('.')
	}
	b.WriteString(p.Name)
	for _, pa := range p.Params {
		b.WriteByte(';')
		b.WriteString(pa.Name)
		b.WriteByte('=')
		for i, v := range pa.Values {
			if i > 0 {
				b.WriteByte(',')
			}
			if strings.ContainsAny(v, `:;,"`) {
				b.WriteByte('"')
				b.WriteString(strings.ReplaceAll(v, `"`, "^'"))
				b.WriteByte('"')
			} else {
				b.WriteString(v)
			}
		}
	}
	b.WriteByte(':')
	b.WriteString(p.Value)
	return b.String()
}

// maxLine is the longest physical line in octets, without the CRLF (RFC 6350 §3.2).
const maxLine = 75

// writeFolded writes line folded at 75 octets, never inside a UTF-8
// sequence, each physical line ending in CRLF (go-vcard never folds).
func writeFolded(b *bytes.Buffer, line string) {
	limit := maxLine
	for len(line) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		// Keep an escape such as \n on one physical line: legal to split,
		// but some readers unescape before unfolding.
		n := 0
		for n < cut && line[cut-1-n] == '\\' {
			n++
		}
		if n%2 == 1 {
			cut--
		}
		b.WriteString(line[:cut])
		b.WriteString("\r\n ")
		line = line[cut:]
		limit = maxLine - 1 // the continuation's leading space counts
	}
	b.WriteString(line)
	b.WriteString("\r\n")
}

// escapeText escapes a TEXT value or component: backslash, newline, comma
// and semicolon (RFC 6350 §3.4; RFC 2426 §4). CRLF and CR count as newline.
func escapeText(s string) string {
	if !strings.ContainsAny(s, "\\\n\r,;") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			b.WriteString(`\n`)
		case '\n':
			b.WriteString(`\n`)
		case ',':
			b.WriteString(`\,`)
		case ';':
			b.WriteString(`\;`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unescapeText reverses escapeText. It also accepts \N and the \: some
// clients write; an unknown escape keeps its backslash so nothing is lost.
func unescapeText(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 'n', 'N':
			b.WriteByte('\n')
		case '\\', ',', ';', ':':
			b.WriteByte(s[i])
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// splitEscaped splits a raw value at every sep not escaped by a backslash;
// the parts stay escaped.
func splitEscaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// components unescapes a structured value (N, ADR, ORG) into its components.
func components(raw string) []string {
	parts := splitEscaped(raw, ';')
	for i, p := range parts {
		parts[i] = unescapeText(p)
	}
	return parts
}

// list unescapes a list value (CATEGORIES, NICKNAME) into its elements.
func list(raw string) []string {
	parts := splitEscaped(raw, ',')
	for i, p := range parts {
		parts[i] = unescapeText(p)
	}
	return parts
}

// joinList escapes and joins list elements with unescaped commas.
func joinList(elems []string) string {
	out := make([]string, len(elems))
	for i, e := range elems {
		out[i] = escapeText(e)
	}
	return strings.Join(out, ",")
}

// joinStructured escapes components and joins them with ';', dropping
// trailing empty components beyond min.
func joinStructured(comps []string, min int) string {
	n := len(comps)
	for n > min && comps[n-1] == "" {
		n--
	}
	out := make([]string, n)
	for i := range out {
		out[i] = escapeText(comps[i])
	}
	return strings.Join(out, ";")
}
