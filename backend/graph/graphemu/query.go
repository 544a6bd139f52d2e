package graphemu

import (
	"strings"
)

// The OData subset of $filter the emulator models: eq/ne comparisons of a
// property path with a string literal or null, and/or/not, parentheses, and
// the any() lambda over singleValueExtendedProperties and emailAddresses.
// Other functions (startswith, contains, …) answer 501.

type tokKind int

const (
	tIdent tokKind = iota
	tString
	tLParen
	tRParen
	tColon
	tComma
	tEOF
)

type token struct {
	kind tokKind
	text string
}

func lex(s string) ([]token, *apiError) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(':
			out = append(out, token{tLParen, "("})
			i++
		case c == ')':
			out = append(out, token{tRParen, ")"})
			i++
		case c == ':':
			out = append(out, token{tColon, ":"})
			i++
		case c == ',':
			out = append(out, token{tComma, ","})
			i++
		case c == '\'':
			var b strings.Builder
			i++
			closed := false
			for i < len(s) {
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				b.WriteByte(s[i])
				i++
			}
			if !closed {
				return nil, badFilter("unterminated string literal")
			}
			out = append(out, token{tString, b.String()})
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t():,'", rune(s[j])) {
				j++
			}
			out = append(out, token{tIdent, s[i:j]})
			i = j
		}
	}
	return append(out, token{tEOF, ""}), nil
}

func badFilter(why string) *apiError {
	return errf(400, "BadRequest", "Invalid filter clause: %s.", why)
}

// filterNode is a parsed boolean expression.
type filterNode interface {
	eval(env *filterEnv) bool
}

// filterEnv binds what paths resolve against.
type filterEnv struct {
	c    *contact
	ep   *extProp        // the element under an ext-property lambda, or the subject of an $expand filter
	em   *emailOut       // the element under an emailAddresses lambda
	vars map[string]byte // lambda variable → 'p' (ext prop) or 'e' (email)

	immutable bool // which id of the contact "id" means
}

type andNode struct{ l, r filterNode }
type orNode struct{ l, r filterNode }
type notNode struct{ x filterNode }

func (n andNode) eval(e *filterEnv) bool { return n.l.eval(e) && n.r.eval(e) }
func (n orNode) eval(e *filterEnv) bool  { return n.l.eval(e) || n.r.eval(e) }
func (n notNode) eval(e *filterEnv) bool { return !n.x.eval(e) }

// cmpNode compares a path with a literal. String comparison ignores case as
// Exchange restrictions do [inf].
type cmpNode struct {
	path []string
	ne   bool
	lit  *string // nil = null
}

func (n cmpNode) eval(e *filterEnv) bool {
	v, ok := e.resolve(n.path)
	var eq bool
	if n.lit == nil {
		eq = !ok || v == ""
	} else {
		eq = ok && strings.EqualFold(v, *n.lit)
	}
	return eq != n.ne
}

func (e *filterEnv) resolve(path []string) (string, bool) {
	if len(path) == 2 {
		switch e.vars[path[0]] {
		case 'p':
			return extField(e.ep, path[1])
		case 'e':
			if e.em == nil {
				return "", false
			}
			switch path[1] {
			case "address":
				if e.em.Address != nil {
					return *e.em.Address, true
				}
			case "name":
				if e.em.Name != nil {
					return *e.em.Name, true
				}
			}
			return "", false
		}
	}
	if len(path) != 1 {
		return "", false
	}
	if e.c == nil {
		return extField(e.ep, path[0])
	}
	switch path[0] {
	case "id":
		return e.c.idFor(e.immutable), true
	case "parentFolderId":
		return e.c.Folder, true
	case "changeKey":
		return e.c.ChangeKey, true
	}
	s := e.c.propString(path[0])
	return s, s != ""
}

func extField(ep *extProp, name string) (string, bool) {
	if ep == nil {
		return "", false
	}
	switch strings.ToLower(name) {
	case "id":
		return ep.ID, true
	case "value":
		return ep.Value, true
	}
	return "", false
}

// anyNode is coll/any(v: body).
type anyNode struct {
	coll string // "ext" or "email"
	v    string
	body filterNode
}

func (n anyNode) eval(e *filterEnv) bool {
	if e.c == nil {
		return false
	}
	inner := &filterEnv{c: e.c, vars: map[string]byte{}, immutable: e.immutable}
	for k, v := range e.vars {
		inner.vars[k] = v
	}
	switch n.coll {
	case "ext":
		inner.vars[n.v] = 'p'
		for _, ep := range e.c.Ext {
			ep := ep
			inner.ep = &ep
			if n.body.eval(inner) {
				return true
			}
		}
	case "email":
		inner.vars[n.v] = 'e'
		for _, em := range e.c.emails() {
			em := em
			inner.em = &em
			if n.body.eval(inner) {
				return true
			}
		}
	}
	return false
}

type parser struct {
	toks  []token
	pos   int
	vars  map[string]bool
	props func(string) (string, bool) // canonical property name of a bare path
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) take() token { t := p.toks[p.pos]; p.pos++; return t }
func (p *parser) isWord(w string) bool {
	t := p.peek()
	return t.kind == tIdent && strings.EqualFold(t.text, w)
}

// parseFilter parses a $filter against the contact (props != nil) or an
// extended property (props == nil, as inside $expand).
func parseFilter(s string, contactSubject bool) (filterNode, *apiError) {
	toks, aerr := lex(s)
	if aerr != nil {
		return nil, aerr
	}
	p := &parser{toks: toks, vars: map[string]bool{}}
	if contactSubject {
		p.props = contactFilterProp
	} else {
		p.props = func(n string) (string, bool) {
			l := strings.ToLower(n)
			return l, l == "id" || l == "value"
		}
	}
	n, aerr := p.or()
	if aerr != nil {
		return nil, aerr
	}
	if p.peek().kind != tEOF {
		return nil, badFilter("unexpected '" + p.peek().text + "'")
	}
	return n, nil
}

func contactFilterProp(n string) (string, bool) {
	c, ok := selectable[strings.ToLower(n)]
	if !ok {
		return "", false
	}
	if f, ok := schemaByName[c]; ok && f.kind != kString {
		return "", false // collections, addresses and dates: not modelled in eq
	}
	return c, true
}

func (p *parser) or() (filterNode, *apiError) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.isWord("or") {
		p.take()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = orNode{l, r}
	}
	return l, nil
}

func (p *parser) and() (filterNode, *apiError) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.isWord("and") {
		p.take()
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = andNode{l, r}
	}
	return l, nil
}

func (p *parser) unary() (filterNode, *apiError) {
	if p.isWord("not") {
		p.take()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return notNode{x}, nil
	}
	if p.peek().kind == tLParen {
		p.take()
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.take().kind != tRParen {
			return nil, badFilter("missing ')'")
		}
		return x, nil
	}
	t := p.take()
	if t.kind != tIdent {
		return nil, badFilter("expected a property, got '" + t.text + "'")
	}
	if p.peek().kind == tLParen {
		// A function call or a lambda.
		lower := strings.ToLower(t.text)
		var coll string
		switch {
		case lower == "singlevalueextendedproperties/any" && p.props != nil:
			coll = "ext"
		case lower == "emailaddresses/any":
			coll = "email"
		default:
			return nil, errf(501, "NotImplemented", "The emulator does not model the filter function '%s'.", t.text)
		}
		p.take()
		v := p.take()
		if v.kind != tIdent || p.take().kind != tColon {
			return nil, badFilter("malformed lambda")
		}
		p.vars[v.text] = true
		body, err := p.or()
		if err != nil {
			return nil, err
		}
		delete(p.vars, v.text)
		if p.take().kind != tRParen {
			return nil, badFilter("missing ')' after lambda")
		}
		return anyNode{coll: coll, v: v.text, body: body}, nil
	}
	path := strings.Split(t.text, "/")
	switch {
	case len(path) == 2 && p.vars[path[0]]:
	case len(path) == 1:
		c, ok := p.props(path[0])
		if !ok {
			return nil, errf(501, "NotImplemented", "The emulator does not model filtering on '%s'.", t.text)
		}
		path[0] = c
	default:
		return nil, errf(501, "NotImplemented", "The emulator does not model filtering on '%s'.", t.text)
	}
	opTok := p.take()
	if opTok.kind != tIdent {
		return nil, badFilter("expected an operator")
	}
	var ne bool
	switch strings.ToLower(opTok.text) {
	case "eq":
	case "ne":
		ne = true
	default:
		return nil, errf(501, "NotImplemented", "The emulator does not model the operator '%s'.", opTok.text)
	}
	lit := p.take()
	switch {
	case lit.kind == tString:
		s := lit.text
		return cmpNode{path: path, ne: ne, lit: &s}, nil
	case lit.kind == tIdent && lit.text == "null":
		return cmpNode{path: path, ne: ne}, nil
	}
	return nil, badFilter("expected a string literal")
}

// parseExpand parses $expand; only singleValueExtendedProperties, with an
// optional $filter on id, is modelled. It returns whether to expand and the
// filter (nil = every property).
func parseExpand(s string) (bool, filterNode, *apiError) {
	if s == "" {
		return false, nil, nil
	}
	const name = "singlevalueextendedproperties"
	l := strings.ToLower(strings.TrimSpace(s))
	if l == name {
		return true, nil, nil
	}
	if !strings.HasPrefix(l, name+"(") || !strings.HasSuffix(l, ")") {
		return false, nil, errf(501, "NotImplemented", "The emulator does not model $expand=%s.", s)
	}
	inner := strings.TrimSpace(s[len(name)+1 : len(s)-1])
	k, v, ok := strings.Cut(inner, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(k), "$filter") {
		return false, nil, errf(501, "NotImplemented", "The emulator does not model $expand options other than $filter: %s.", s)
	}
	f, aerr := parseFilter(v, false)
	if aerr != nil {
		return false, nil, aerr
	}
	return true, f, nil
}

// parseSelect parses $select into canonical names; nil means everything.
func parseSelect(s string) (map[string]bool, *apiError) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if c, ok := selectable[strings.ToLower(part)]; ok {
			out[c] = true
			continue
		}
		if strings.EqualFold(part, "singleValueExtendedProperties") {
			continue
		}
		return nil, errf(400, "RequestBroker--ParseUri", "Could not find a property named '%s' on type 'microsoft.graph.contact'.", part)
	}
	return out, nil
}

// selectString is the canonical $select baked into delta tokens.
func selectString(sel map[string]bool) string {
	if sel == nil {
		return ""
	}
	var parts []string
	for _, f := range []string{"id", "createdDateTime", "lastModifiedDateTime", "changeKey", "parentFolderId"} {
		if sel[f] {
			parts = append(parts, f)
		}
	}
	for _, f := range schema {
		if sel[f.name] {
			parts = append(parts, f.name)
		}
	}
	return strings.Join(parts, ",")
}

// expandedExt returns the contact's extended properties matching f, by id.
func (c *contact) expandedExt(f filterNode) []extProp {
	var out []extProp
	for _, ep := range c.Ext {
		ep := ep
		if f == nil || f.eval(&filterEnv{ep: &ep}) {
			out = append(out, ep)
		}
	}
	sortExt(out)
	return out
}
