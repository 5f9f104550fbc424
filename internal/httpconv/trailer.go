package httpconv

import (
	"net/http"
	"slices"
	"strings"
)

// ForbiddenTrailer reports whether a field must not travel in a trailer
// section, in any letter case: RFC 9110 section 6.5.1 keeps out of
// trailers the fields a recipient needs before the content, those that
// frame the message, route it, modify the request, authenticate, control
// the response or describe the content. The list is net/http's (the
// trailers a handler may not declare, after RFC 7230 section 4.1.2),
// plus Cookie and Set-Cookie, which RFC 9110 names, and pseudo-headers.
// Both directions drop them: AppendLastChunk (request trailers to the
// server), ResponseParser (response trailers to the client) and the
// client's TrailerFields.
func ForbiddenTrailer(name string) bool {
	if strings.HasPrefix(name, ":") {
		return true
	}
	var buf [len("proxy-authorization")]byte // the longest
	if len(name) > len(buf) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	_, bad := forbiddenTrailers[string(buf[:len(name)])]
	return bad
}

var forbiddenTrailers = map[string]struct{}{
	"authorization":       {},
	"cache-control":       {},
	"connection":          {},
	"content-encoding":    {},
	"content-length":      {},
	"content-range":       {},
	"content-type":        {},
	"cookie":              {},
	"expect":              {},
	"host":                {},
	"keep-alive":          {},
	"max-forwards":        {},
	"pragma":              {},
	"proxy-authenticate":  {},
	"proxy-authorization": {},
	"proxy-connection":    {},
	"range":               {},
	"set-cookie":          {},
	"te":                  {},
	"trailer":             {},
	"transfer-encoding":   {},
	"upgrade":             {},
	"www-authenticate":    {},
}

// TrailerFields appends to dst the trailer fields of a client's request
// (http.Request.Trailer) in dialect d: names lowercased, in name order;
// SPDY2 and SPDY3 send a name once with its non-empty values joined by
// NUL, H2 one field per value. Fields ForbiddenTrailer names, and names or
// values that are not valid, are dropped. d must be SPDY2, SPDY3 or H2;
// any other value panics.
func TrailerFields(dst []HeaderField, d Dialect, trailer http.Header) []HeaderField {
	d.mustBeValid()
	start := len(dst)
	for k, vs := range trailer {
		if ForbiddenTrailer(k) || !ValidToken(k) {
			continue
		}
		name := lowerName(k)
		var kept []string
		for _, v := range vs {
			if v = strings.Trim(v, " \t"); ValidFieldValue(v) && (d == H2 || v != "") {
				kept = append(kept, v)
			}
		}
		switch {
		case len(kept) == 0:
		case d == H2:
			for _, v := range kept {
				dst = append(dst, HeaderField{Name: name, Value: v})
			}
		default:
			dst = append(dst, HeaderField{Name: name, Value: joinValues(kept)})
		}
	}
	rest := dst[start:]
	slices.SortStableFunc(rest, func(a, b HeaderField) int { return strings.Compare(a.Name, b.Name) })
	if d == H2 {
		return dst
	}
	// A SPDY block holds a name once (SPDY/3 section 2.6.10).
	out := dst[:start]
	for _, f := range rest {
		if n := len(out); n > start && out[n-1].Name == f.Name {
			out[n-1].Value = joinValues([]string{out[n-1].Value, f.Value})
			continue
		}
		out = append(out, f)
	}
	clear(dst[len(out):])
	return out
}

// TrailerFromFields returns the trailers a reply's last header block
// (SPDY HEADERS, HTTP/2 HEADERS with END_STREAM) carries, as an
// http.Header: names canonical, NUL-joined SPDY values split,
// pseudo-headers and the fields ForbiddenTrailer names dropped.
func TrailerFromFields(fields []HeaderField) http.Header {
	h := make(http.Header, len(fields))
	for _, f := range fields {
		if ForbiddenTrailer(f.Name) {
			continue
		}
		key := http.CanonicalHeaderKey(f.Name)
		for v := range strings.SplitSeq(f.Value, "\x00") {
			h[key] = append(h[key], v)
		}
	}
	return h
}
