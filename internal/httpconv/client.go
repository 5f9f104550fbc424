package httpconv

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// AppendRequestFields appends to dst the header block that opens a stream
// for req (SYN_STREAM, or HTTP/2 HEADERS), for a client. addAcceptEncoding
// adds "accept-encoding: gzip, deflate", for a client that decodes both;
// it must be false when req.Header has an Accept-Encoding.
//
// The block starts with the pseudo-headers: SPDY2 method, url, version,
// scheme, host; SPDY3 :method, :path, :version, :host, :scheme; H2
// :method, :scheme, :authority, :path (RFC 9113 section 8.3.1), or
// :method and :authority alone for CONNECT (section 8.5). The method is
// req.Method, or GET; the host req.Host, or req.URL.Host; the path
// req.URL.RequestURI(); the version HTTP/1.1. Then come the fields of
// req.Header in name order, names lowercased, without the fields that
// only concern one connection: Connection, Host, Keep-Alive,
// Proxy-Connection, Transfer-Encoding, Upgrade, TE, the names listed in
// Connection, and Content-Length, which is sent as req.ContentLength when
// that is positive.
//
// SPDY2 and SPDY3 match header names in that list exactly, in canonical
// form, and send a name once, its non-empty values joined by NUL (SPDY/3
// section 2.6.10). H2 matches names without case and sends one field per
// value, values trimmed of surrounding whitespace (section 8.2.1: a value
// MUST NOT start or end with it), and "te: trailers" if a TE value lists
// "trailers" (section 8.2.2: the only TE allowed).
//
// It returns dst unchanged and an error when CheckHeader refuses
// req.Header and, for H2, when the method is not a token or the host or
// path or scheme is not valid for the pseudo-headers: HTTP/2 does not let a
// client send what the server must treat as malformed. d must be SPDY2,
// SPDY3 or H2; any other value panics. The fields' strings alias req's
// where they can; req is not modified.
func AppendRequestFields(dst []HeaderField, d Dialect, req *http.Request, addAcceptEncoding bool) ([]HeaderField, error) {
	d.mustBeValid()
	if err := CheckHeader(req.Header); err != nil {
		return dst, err
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	path := req.URL.RequestURI()
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if d == H2 {
		if err := checkPseudoH2(method, req.URL.Scheme, host, path); err != nil {
			return dst, err
		}
	}
	dst = slices.Grow(dst, 6+len(req.Header))
	switch d {
	case SPDY2:
		dst = append(dst,
			HeaderField{Name: "method", Value: method},
			HeaderField{Name: "url", Value: path},
			HeaderField{Name: "version", Value: "HTTP/1.1"},
			HeaderField{Name: "scheme", Value: req.URL.Scheme},
			HeaderField{Name: "host", Value: host})
	case SPDY3:
		dst = append(dst,
			HeaderField{Name: ":method", Value: method},
			HeaderField{Name: ":path", Value: path},
			HeaderField{Name: ":version", Value: "HTTP/1.1"},
			HeaderField{Name: ":host", Value: host},
			HeaderField{Name: ":scheme", Value: req.URL.Scheme})
	case H2:
		if method == http.MethodConnect {
			dst = append(dst,
				HeaderField{Name: ":method", Value: method},
				HeaderField{Name: ":authority", Value: host})
		} else {
			dst = append(dst,
				HeaderField{Name: ":method", Value: method},
				HeaderField{Name: ":scheme", Value: req.URL.Scheme},
				HeaderField{Name: ":authority", Value: host},
				HeaderField{Name: ":path", Value: path})
		}
	}
	pseudo := len(dst)

	var listed []string // names listed in Connection, canonical
	for _, c := range req.Header["Connection"] {
		for f := range strings.SplitSeq(c, ",") {
			if f = strings.TrimSpace(f); f != "" {
				listed = append(listed, http.CanonicalHeaderKey(f))
			}
		}
	}
	if d == H2 {
		dst = appendHeaderH2(dst, req.Header, listed)
	} else {
		for k, vs := range req.Header {
			if spdyConnectionHeaders[k] || len(vs) == 0 || k == "Content-Length" || slices.Contains(listed, k) {
				continue
			}
			if d == SPDY2 && lowerName(k) == "host" {
				continue // the host field is SPDY/2's own
			}
			value := vs[0]
			if len(vs) > 1 {
				// Several values travel as one, joined by NUL; none may
				// be empty (SPDY/3 section 2.6.10).
				value = joinValues(vs)
			}
			dst = append(dst, HeaderField{Name: lowerName(k), Value: value})
		}
	}
	if req.ContentLength > 0 {
		dst = append(dst, HeaderField{Name: "content-length", Value: strconv.FormatInt(req.ContentLength, 10)})
	}
	if addAcceptEncoding {
		dst = append(dst, HeaderField{Name: "accept-encoding", Value: "gzip, deflate"})
	}

	return sortFields(dst, pseudo, d), nil
}

// checkPseudoH2 checks the values of an HTTP/2 request's pseudo-headers
// as the server side does (RFC 9113 section 8.3.1), so that a client never
// sends a request its server must treat as malformed.
func checkPseudoH2(method, scheme, authority, path string) error {
	switch {
	case !ValidToken(method):
		return errors.New("httpconv: invalid method " + strconv.Quote(method))
	case !validHost(authority):
		return errors.New("httpconv: invalid host " + strconv.Quote(authority))
	case method == http.MethodConnect:
		return nil
	case !validScheme(scheme):
		return errors.New("httpconv: invalid scheme " + strconv.Quote(scheme))
	case path == "*" && method != http.MethodOptions:
		return errors.New("httpconv: path * with method " + method)
	case path != "*" && !validPath(path):
		return errors.New("httpconv: invalid path " + strconv.Quote(path))
	}
	return nil
}

// appendHeaderH2 appends the fields of h that go in an HTTP/2 request,
// not sorted.
func appendHeaderH2(dst []HeaderField, h http.Header, listed []string) []HeaderField {
	trailers := false
	for k, vs := range h {
		name := lowerName(k)
		switch name {
		case "connection", "host", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "content-length":
			// RFC 9113 section 8.2.2: an endpoint MUST NOT generate
			// connection-specific fields; Host is :authority (section
			// 8.3.1), Content-Length is req.ContentLength.
			continue
		case "te":
			// Section 8.2.2: TE MUST NOT hold anything but "trailers".
			for _, v := range vs {
				for c := range strings.SplitSeq(v, ",") {
					trailers = trailers || equalFoldASCII(strings.TrimSpace(c), "trailers")
				}
			}
			continue
		}
		if slices.ContainsFunc(listed, func(l string) bool { return equalFoldASCII(name, l) }) {
			continue
		}
		for _, v := range vs {
			dst = append(dst, HeaderField{Name: name, Value: strings.Trim(v, " \t")})
		}
	}
	if trailers {
		dst = append(dst, HeaderField{Name: "te", Value: "trailers"})
	}
	return dst
}

// spdyConnectionHeaders are the headers SPDY forbids in requests (SPDY/3
// section 3.2.1) or that only concern one HTTP/1.1 connection, by their
// canonical names.
var spdyConnectionHeaders = map[string]bool{
	"Connection":        true,
	"Host":              true,
	"Keep-Alive":        true,
	"Proxy-Connection":  true,
	"Transfer-Encoding": true,
	"Upgrade":           true,
	"Te":                true,
}

// joinValues joins the non-empty values of vs with NUL.
func joinValues(vs []string) string {
	var b strings.Builder
	for _, v := range vs {
		if v == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(0)
		}
		b.WriteString(v)
	}
	return b.String()
}

// lowerName returns k in lower case, without allocating for common names.
func lowerName(k string) string {
	if l, ok := commonLower[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

// canonicalKey returns the canonical form of a header name as a client
// sends it (lower case in SPDY/3 and HTTP/2), without allocating for
// common names.
func canonicalKey(name string) string {
	if k, ok := commonCanonical[name]; ok {
		return k
	}
	return http.CanonicalHeaderKey(name)
}

// commonNames are the header names most requests and responses carry, in
// canonical form.
var commonNames = []string{
	"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization",
	"Cache-Control", "Content-Encoding", "Content-Length", "Content-Range", "Content-Type",
	"Cookie", "Date", "Dnt", "Etag", "Expect", "Forwarded", "If-Match", "If-Modified-Since",
	"If-None-Match", "If-Range", "If-Unmodified-Since", "Last-Modified", "Link", "Location",
	"Origin", "Pragma", "Priority", "Range", "Referer", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile",
	"Sec-Ch-Ua-Platform", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site",
	"Sec-Fetch-User", "Server", "Set-Cookie", "Trailer", "Upgrade-Insecure-Requests",
	"User-Agent", "Vary", "Via", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
	"X-Requested-With",
}

// commonLower maps each of commonNames to its lower case; commonCanonical
// maps both forms to the canonical one.
var commonLower, commonCanonical = func() (lower, canonical map[string]string) {
	lower = make(map[string]string, len(commonNames))
	canonical = make(map[string]string, 2*len(commonNames))
	for _, k := range commonNames {
		l := strings.ToLower(k)
		lower[k] = l
		canonical[k], canonical[l] = k, k
	}
	return lower, canonical
}()

// appendValues appends the field name with the values vs, each trimmed of
// surrounding blanks, those that are not valid dropped: for H2 a field per
// value, for SPDY one field of the non-empty values joined by NUL.
func appendValues(dst []HeaderField, d Dialect, name string, vs []string) []HeaderField {
	if d == H2 {
		for _, v := range vs {
			if v = strings.Trim(v, " \t"); ValidFieldValue(v) {
				dst = append(dst, HeaderField{Name: name, Value: v})
			}
		}
		return dst
	}
	if len(vs) == 1 {
		if v := strings.Trim(vs[0], " \t"); v != "" && ValidFieldValue(v) {
			dst = append(dst, HeaderField{Name: name, Value: v})
		}
		return dst
	}
	kept := make([]string, 0, len(vs))
	for _, v := range vs {
		if v = strings.Trim(v, " \t"); v != "" && ValidFieldValue(v) {
			kept = append(kept, v)
		}
	}
	if len(kept) > 0 {
		dst = append(dst, HeaderField{Name: name, Value: joinValues(kept)})
	}
	return dst
}

// sortFields puts the fields of dst after start in name order (a stable
// order compresses better) and, for SPDY, where a block holds a name once
// (SPDY/3 section 2.6.10), merges the fields of one name, as from keys of
// an http.Header that differ only in case, joining their values by NUL.
func sortFields(dst []HeaderField, start int, d Dialect) []HeaderField {
	rest := dst[start:]
	slices.SortStableFunc(rest, func(a, b HeaderField) int { return strings.Compare(a.Name, b.Name) })
	if d == H2 {
		return dst
	}
	out := dst[:start]
	for _, f := range rest {
		if n := len(out); n > start && out[n-1].Name == f.Name {
			out[n-1].Value = joinValues([]string{out[n-1].Value, f.Value})
			continue
		}
		out = append(out, f)
	}
	clear(dst[len(out):]) // drop the merged fields' strings
	return out
}

// ResponseFromFields builds the http.Response that a response header block
// (SYN_REPLY, or HTTP/2 HEADERS) describes, for a client. It sets
// StatusCode, Status ("200 OK": the reason phrase a SPDY server sent, else
// http.StatusText), Proto, ProtoMajor and ProtoMinor ("SPDY/2", "SPDY/3" or
// "HTTP/2.0"; a SPDY/3.1 client changes them), Header (canonical keys, one
// value per NUL-separated part for SPDY, per field for H2) and
// ContentLength (-1 unless one valid content-length). The caller sets
// Body, Request, TLS and the rest. fields is not retained; the Header's
// values alias its strings.
//
// SPDY2 and SPDY3 need only the status field ("status", ":status"); the
// version field and other names starting with ":" are ignored.
//
// H2 follows RFC 9113: exactly one :status of three digits and no other
// pseudo-header, ahead of the regular fields (sections 8.3 and 8.3.2);
// names lowercase tokens and values valid (section 8.2.1); no
// connection-specific field and no te (section 8.2.2); one valid
// content-length at most. An interim (1xx) response is returned as any
// other: the caller waits for the final one after it.
//
// A block that breaks these rules returns a *MalformedError, for every
// dialect: the caller resets the stream with PROTOCOL_ERROR (section
// 8.1.1). d must be SPDY2, SPDY3 or H2; any other value panics.
func ResponseFromFields(d Dialect, fields []HeaderField) (*http.Response, error) {
	d.mustBeValid()
	resp := &http.Response{
		Header:        make(http.Header, len(fields)),
		ContentLength: -1,
	}
	var err error
	switch d {
	case SPDY2:
		resp.Proto, resp.ProtoMajor = "SPDY/2", 2
		err = responseSPDY(resp, "status", "version", fields)
	case SPDY3:
		resp.Proto, resp.ProtoMajor = "SPDY/3", 3
		err = responseSPDY(resp, ":status", ":version", fields)
	case H2:
		resp.Proto, resp.ProtoMajor = "HTTP/2.0", 2
		err = responseH2(resp, fields)
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func responseSPDY(resp *http.Response, statusName, versionName string, fields []HeaderField) error {
	for _, f := range fields {
		switch {
		case f.Name == statusName:
			if resp.StatusCode != 0 {
				return malformed("repeated " + statusName)
			}
			code, text, _ := strings.Cut(f.Value, " ")
			n, ok := parseStatusCode(code)
			if !ok {
				return malformed("invalid " + statusName + " " + strconv.Quote(f.Value))
			}
			if text == "" {
				text = http.StatusText(n)
			}
			resp.StatusCode, resp.Status = n, code+" "+text
			continue
		case f.Name == versionName || strings.HasPrefix(f.Name, ":"):
			continue
		}
		key := http.CanonicalHeaderKey(f.Name)
		for v := range strings.SplitSeq(f.Value, "\x00") {
			resp.Header[key] = append(resp.Header[key], v)
		}
	}
	if resp.StatusCode == 0 {
		return malformed("missing " + statusName)
	}
	if vs := resp.Header["Content-Length"]; len(vs) == 1 {
		if n, ok := parseContentLength(vs[0]); ok {
			resp.ContentLength = n
		}
	}
	return nil
}

func responseH2(resp *http.Response, fields []HeaderField) error {
	regular := false
	for i := range fields {
		f := &fields[i]
		if strings.HasPrefix(f.Name, ":") {
			switch {
			case regular:
				// Section 8.3: pseudo-header fields MUST come first.
				return malformed("pseudo-header " + strconv.Quote(f.Name) + " after a regular field")
			case f.Name != ":status":
				// Section 8.3: request and undefined pseudo-headers
				// make a response malformed.
				return malformed("pseudo-header " + strconv.Quote(f.Name) + " in a response")
			case resp.StatusCode != 0:
				return malformed("repeated :status")
			}
			// Section 8.3.2: :status carries the three-digit code, and
			// nothing else: no reason phrase.
			n, ok := parseStatusCode(f.Value)
			if !ok {
				return malformed("invalid :status " + strconv.Quote(f.Value))
			}
			resp.StatusCode, resp.Status = n, f.Value+" "+http.StatusText(n)
			continue
		}
		regular = true
		if err := checkFieldH2(f); err != nil {
			return err
		}
		switch f.Name {
		case "te":
			// Section 8.2.2: TE MAY be present in a request only.
			return malformed("te in a response")
		case "content-length":
			if resp.ContentLength >= 0 {
				return malformed("repeated content-length")
			}
			n, ok := parseContentLength(f.Value)
			if !ok {
				return malformed("invalid content-length " + strconv.Quote(f.Value))
			}
			resp.ContentLength = n
		}
		key := http.CanonicalHeaderKey(f.Name)
		resp.Header[key] = append(resp.Header[key], f.Value)
	}
	if resp.StatusCode == 0 {
		// Section 8.3.2: :status MUST be included in all responses.
		return malformed("missing :status")
	}
	return nil
}

// parseStatusCode parses a status code: three digits, 100 to 999.
func parseStatusCode(s string) (int, bool) {
	if len(s) != 3 || s[0] < '1' || s[0] > '9' {
		return 0, false
	}
	n := 0
	for i := 0; i < 3; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
