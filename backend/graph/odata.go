package graph

import (
	"strconv"
	"strings"
)

// odataEscape percent-encodes a query option value. It keeps the characters
// OData expressions are made of ($ ' ( ) , = : @ /) readable, as Graph's own
// examples write them, and encodes spaces as %20 rather than "+", which
// Graph does not read as a space in every place.
func odataEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9',
			strings.IndexByte("-._~$'(),=:@/*!", ch) >= 0:
			b.WriteByte(ch)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[ch>>4])
			b.WriteByte(hex[ch&15])
		}
	}
	return b.String()
}

// odataString quotes s as an OData string literal: single quotes, with a
// quote inside doubled.
func odataString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// expandValue is the $expand of single-value extended properties by id.
func expandValue(ids []string) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = "id eq " + odataString(id)
	}
	return "singleValueExtendedProperties($filter=" + strings.Join(parts, " or ") + ")"
}

// pageSize is q's page size, defaulted and capped at Graph's maximum.
func (q Query) pageSize() int {
	switch {
	case q.PageSize <= 0:
		return DefaultPageSize
	case q.PageSize > MaxPageSize:
		return MaxPageSize
	}
	return q.PageSize
}

// rawQuery renders q as a URL query: $top when top is set, then $select
// and $expand.
func (q Query) rawQuery(top bool) string {
	var opts []string
	if top {
		opts = append(opts, "$top="+strconv.Itoa(q.pageSize()))
	}
	if len(q.Select) > 0 {
		opts = append(opts, "$select="+odataEscape(strings.Join(q.Select, ",")))
	}
	if len(q.Expand) > 0 {
		opts = append(opts, "$expand="+odataEscape(expandValue(q.Expand)))
	}
	return strings.Join(opts, "&")
}
