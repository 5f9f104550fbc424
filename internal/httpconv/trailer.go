package httpconv

import (
	"net/http"
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
		dst = appendValues(dst, d, lowerName(k), vs)
	}
	return sortFields(dst, start, d)
}

// AnnouncedTrailers returns the trailers the values of a Trailer field
// announce, as an http.Header with nil values (as net/http's
// Request.Trailer and Response.Trailer before the body's end): names
// canonical, those ForbiddenTrailer names dropped; nil if none.
func AnnouncedTrailers(vv []string) http.Header {
	var t http.Header
	for _, v := range vv {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" && !ForbiddenTrailer(name) {
				if t == nil {
					t = make(http.Header)
				}
				t[http.CanonicalHeaderKey(name)] = nil
			}
		}
	}
	return t
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
