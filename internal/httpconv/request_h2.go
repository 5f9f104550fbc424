package httpconv

import (
	"strconv"
	"strings"
)

// appendRequestHeadH2 is AppendRequestHead for H2 (RFC 9113 section 8.3.1).
func appendRequestHeadH2(dst []byte, fields []HeaderField, endStream bool) ([]byte, Request, error) {
	r, err := checkRequestH2(fields, endStream)
	if err != nil {
		return dst, Request{}, err
	}
	dst = appendRequestLine(dst, r)
	cookie := false
	for i := range fields {
		f := &fields[i]
		switch {
		case strings.HasPrefix(f.Name, ":"), f.Name == "host", f.Name == "te",
			f.Name == "content-length" && r.Chunked:
			continue
		case f.Name == "cookie":
			// RFC 9113 section 8.2.3: several cookie fields MUST be
			// joined with "; " before they reach an HTTP/1.1
			// connection. The line goes where the first one was.
			if cookie {
				continue
			}
			cookie = true
			dst = append(dst, "cookie: "...)
			dst = appendCookies(dst, fields[i:])
			dst = append(dst, "\r\n"...)
			continue
		}
		dst = append(dst, f.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, f.Value...)
		dst = append(dst, "\r\n"...)
	}
	return appendHeadEnd(dst, r), r, nil
}

// appendCookies appends the non-empty values of the cookie fields among
// fields, joined by "; ".
func appendCookies(dst []byte, fields []HeaderField) []byte {
	first := true
	for i := range fields {
		if f := &fields[i]; f.Name == "cookie" && f.Value != "" {
			if !first {
				dst = append(dst, "; "...)
			}
			first = false
			dst = append(dst, f.Value...)
		}
	}
	return dst
}

// checkRequestH2 validates an HTTP/2 request header block and returns the
// request it describes, or a *MalformedError or *BadRequestError as
// AppendRequestHead documents.
func checkRequestH2(fields []HeaderField, endStream bool) (Request, error) {
	r := Request{Proto: "HTTP/1.1", ContentLength: -1}
	var authority, host string
	var got [4]bool // :method, :scheme, :authority, :path
	hosts := 0      // host fields
	haveCL, regular, announced := false, false, false
	for i := range fields {
		f := &fields[i]
		if strings.HasPrefix(f.Name, ":") {
			// Section 8.3: all pseudo-header fields MUST appear before all
			// regular field lines.
			if regular {
				return Request{}, malformed("pseudo-header " + strconv.Quote(f.Name) + " after a regular field")
			}
			slot := -1
			switch f.Name {
			case ":method":
				slot, r.Method = 0, f.Value
			case ":scheme":
				slot, r.Scheme = 1, f.Value
			case ":authority":
				slot, authority = 2, f.Value
			case ":path":
				slot, r.Path = 3, f.Value
			default:
				// Section 8.3: undefined pseudo-header fields make a
				// request malformed (:protocol too, RFC 8441 section 3:
				// we never send SETTINGS_ENABLE_CONNECT_PROTOCOL).
				return Request{}, malformed("undefined pseudo-header " + strconv.Quote(f.Name))
			}
			// Section 8.3: the same pseudo-header field name MUST NOT
			// appear more than once in a field block.
			if got[slot] {
				return Request{}, malformed("repeated " + f.Name)
			}
			got[slot] = true
			continue
		}
		regular = true
		if err := checkFieldH2(f); err != nil {
			return Request{}, err
		}
		switch f.Name {
		case "trailer":
			announced = true
		case "content-length":
			// Section 8.1.1: the body must add up to the content-length,
			// which takes one well-formed value.
			if haveCL {
				return Request{}, malformed("repeated content-length")
			}
			haveCL = true
			n, ok := parseContentLength(f.Value)
			if !ok {
				return Request{}, malformed("invalid content-length " + strconv.Quote(f.Value))
			}
			r.ContentLength = n
		case "host":
			// Pseudo-headers come first, so :authority is known here.
			// Section 8.3.1: a server SHOULD treat a request as malformed
			// if Host identifies another entity than :authority.
			if got[2] && !sameAuthority(r.Scheme, authority, f.Value) {
				return Request{}, malformed("host " + strconv.Quote(f.Value) + " differs from :authority " + strconv.Quote(authority))
			}
			hosts++
			host = f.Value
		}
	}

	// Section 8.3: invalid pseudo-header fields make a request malformed.
	if got[0] && !ValidToken(r.Method) {
		return Request{}, malformed("invalid :method " + strconv.Quote(r.Method))
	}
	if got[1] && !validScheme(r.Scheme) {
		return Request{}, malformed("invalid :scheme " + strconv.Quote(r.Scheme))
	}
	// validHost also refuses the userinfo that section 8.3.1 forbids.
	if got[2] && !validHost(authority) {
		return Request{}, malformed("invalid :authority " + strconv.Quote(authority))
	}
	if r.Method == "CONNECT" {
		// Section 8.5: :scheme and :path MUST be omitted and :authority
		// holds the host and port to connect to; a CONNECT request that
		// does not conform is malformed. One that does is answered: a
		// stream reaches the HTTP/1.1 server as one request and cannot
		// become a tunnel.
		if got[1] || got[3] {
			return Request{}, malformed("CONNECT with :scheme or :path")
		}
		if !got[2] {
			return Request{}, malformed("CONNECT without :authority")
		}
		return Request{}, &BadRequestError{Status: 501, Reason: "CONNECT is not supported"}
	}
	// Section 8.3.1: all HTTP/2 requests MUST include exactly one valid
	// value for :method, :scheme and :path.
	for i, name := range [...]string{":method", ":scheme", "", ":path"} {
		if name != "" && !got[i] {
			return Request{}, malformed("missing " + name)
		}
	}
	// Section 8.3.1: :path MUST NOT be empty; it is "*" only for OPTIONS.
	if r.Path == "*" {
		if r.Method != "OPTIONS" {
			return Request{}, malformed(":path * with method " + r.Method)
		}
	} else if !validPath(r.Path) {
		return Request{}, malformed("invalid :path " + strconv.Quote(r.Path))
	}
	switch {
	case got[2]:
		// Section 8.3.1: an intermediary that generates a Host field MUST
		// take its value from :authority.
		r.Host = authority
	case hosts > 1:
		// RFC 9110 section 7.2: more than one Host is answered with 400.
		return Request{}, badRequest("repeated host field")
	case hosts == 0:
		// RFC 9110 section 4.2.1: an http or https URI without a host is
		// invalid, and HTTP/1.1 needs one.
		return Request{}, badRequest("missing :authority and host")
	case !validHost(host):
		return Request{}, badRequest("invalid host " + strconv.Quote(host))
	default:
		r.Host = host
	}
	if endStream && r.ContentLength > 0 {
		// Section 8.1.1: malformed if the content-length does not equal
		// the length of the DATA.
		return Request{}, malformed("content-length " + strconv.FormatInt(r.ContentLength, 10) + " without a body")
	}
	// A body goes chunked without a length, and also with one when the
	// request announces trailers: HTTP/1.1 carries trailers only after
	// the last chunk (RFC 9112 section 7.1.2). ContentLength still holds
	// the client's length, for the caller to check the body against.
	r.Chunked = !endStream && (r.ContentLength < 0 || announced)
	return r, nil
}

// checkFieldH2 checks a regular field of an HTTP/2 request header or
// trailer section.
func checkFieldH2(f *HeaderField) error {
	// Section 8.2.1: names are lowercase; names and values SHOULD be
	// checked against RFC 9110, which we must to pass them to HTTP/1.1,
	// and values MUST NOT hold NUL, CR or LF nor start or end with
	// whitespace.
	if !validH2Name(f.Name) {
		return h2NameError(f.Name)
	}
	if !validH2Value(f.Value) {
		return malformed("invalid value of field " + f.Name)
	}
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		// Section 8.2.2: a message containing connection-specific
		// header fields MUST be treated as malformed.
		return malformed("connection-specific field " + f.Name)
	case "te":
		// Section 8.2.2: TE MUST NOT contain any value other than
		// "trailers" (a coding name, so compared without case).
		if !equalFoldASCII(f.Value, "trailers") {
			return malformed("te " + strconv.Quote(f.Value))
		}
	}
	return nil
}

// sameAuthority reports whether a and b name the same authority after the
// scheme-based normalization (RFC 3986 section 6.2.3) that RFC 9113 section
// 8.3.1 asks for: host names compared without case, and an empty port or
// the scheme's default port left out.
func sameAuthority(scheme, a, b string) bool {
	return equalFoldASCII(trimDefaultPort(scheme, a), trimDefaultPort(scheme, b))
}

func trimDefaultPort(scheme, authority string) string {
	switch {
	case equalFoldASCII(scheme, "http"):
		authority = strings.TrimSuffix(authority, ":80")
	case equalFoldASCII(scheme, "https"):
		authority = strings.TrimSuffix(authority, ":443")
	}
	return strings.TrimSuffix(authority, ":")
}

// CheckTrailers checks the trailer fields that end a request body (a
// HEADERS frame after DATA) before AppendLastChunk writes them.
//
// For SPDY2 and SPDY3 it returns nil: AppendLastChunk drops whatever a
// trailer section must not hold. For H2 it returns a *MalformedError, and
// the stream must be reset with PROTOCOL_ERROR (RFC 9113 section 8.1.1),
// for a pseudo-header (section 8.1: pseudo-header fields MUST NOT appear
// in a trailer section), and for a field that AppendRequestHead would find
// malformed: a name that is not a lowercase token, an invalid value, a
// connection-specific field, or a te other than "trailers". d must be
// SPDY2, SPDY3 or H2; any other value panics.
func CheckTrailers(d Dialect, trailers []HeaderField) error {
	d.mustBeValid()
	if d != H2 {
		return nil
	}
	for i := range trailers {
		f := &trailers[i]
		if strings.HasPrefix(f.Name, ":") {
			return malformed("pseudo-header " + strconv.Quote(f.Name) + " in trailers")
		}
		if err := checkFieldH2(f); err != nil {
			return err
		}
	}
	return nil
}
