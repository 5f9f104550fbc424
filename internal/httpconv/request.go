package httpconv

import (
	"bytes"
	"strconv"
	"strings"
)

// BadRequestError reports a request header block that cannot be turned
// into an HTTP/1.1 request but is to be answered, not reset: the stream
// must get an HTTP response of the given Status (SPDY/3 section 3.2.1: a
// request without the required headers MUST get "400 Bad Request"), not a
// RST_STREAM. A malformed HTTP/2 request is a *MalformedError instead.
type BadRequestError struct {
	Status int    // the HTTP status to reply with: 400, or 501 for an HTTP/2 CONNECT
	Reason string // what was wrong, lower case
}

func (e *BadRequestError) Error() string {
	return "httpconv: bad request (" + strconv.Itoa(e.Status) + "): " + e.Reason
}

func badRequest(reason string) *BadRequestError {
	return &BadRequestError{Status: 400, Reason: reason}
}

// Request describes the HTTP/1.1 request that AppendRequestHead wrote.
// Its strings alias the values of the header block it was given.
type Request struct {
	Method, Scheme, Host, Path string
	// Proto is the version written on the request line: the client's
	// version, except that an HTTP/1.0 request whose body must be chunked is
	// sent as HTTP/1.1, since HTTP/1.0 has no chunked transfer coding.
	// Always HTTP/1.1 for HTTP/2, which carries no version.
	Proto string
	// ContentLength is the client's content-length, or -1 when it gave none.
	ContentLength int64
	// Chunked reports that the head announces "Transfer-Encoding: chunked":
	// the caller must frame each DATA payload with AppendChunkHeader and
	// AppendChunkEnd, and end the body with AppendLastChunk. An HTTP/2
	// request that announces trailers is chunked even with a content-length
	// (then left out of the head), so that its trailers can follow the body.
	Chunked bool
}

// Names of the request pseudo-headers, by SPDY version.
type requestNames struct{ method, path, version, host, scheme string }

var (
	namesV2 = requestNames{method: "method", path: "url", version: "version", host: "host", scheme: "scheme"}
	namesV3 = requestNames{method: ":method", path: ":path", version: ":version", host: ":host", scheme: ":scheme"}
)

// AppendRequestHead validates the header block that opens a request
// stream (SYN_STREAM, or an HTTP/2 HEADERS frame) and appends the HTTP/1.1
// request head (request line, header lines, blank line) to dst. endStream
// reports that the frame carried FIN (END_STREAM), so the request has no
// body. d must be SPDY2, SPDY3 or H2; any other value panics.
//
// The head is built as follows:
//   - SPDY/3 takes the request line from :method, :path and :version and the
//     Host header from :host; a "host" header is ignored. SPDY/2 takes it from
//     method, url and version and the plain host header; an absolute url is
//     reduced to origin form, and gives the host when no host header is sent.
//     The scheme (:scheme, scheme) is required and checked but not sent.
//     HTTP/2 has its own rules: see "HTTP/2 requests" below.
//   - Pseudo-headers and the connection-specific headers connection,
//     keep-alive, proxy-connection and transfer-encoding are dropped; a
//     client's transfer-encoding is ignored. Other names go out as received.
//   - A value holding several NUL-separated values becomes one header line
//     per value.
//   - "Accept-Encoding: gzip, deflate" is added when the client sent no
//     accept-encoding: SPDY clients must accept both codings (SPDY/3 section
//     3.2.1), and mod_spdy did the same. Not for HTTP/2.
//   - A body with a content-length passes raw. A body without one is sent
//     with "Transfer-Encoding: chunked" and Request.Chunked set. Without a
//     body no framing is needed; POST, PUT and PATCH then get
//     "Content-Length: 0" so that servers do not wait for one.
//   - "Connection: close" is always added: a virtual connection carries one
//     request.
//
// A SPDY block that is malformed returns dst unchanged and a
// *BadRequestError with Status 400, to be answered with that status, not
// with RST_STREAM (SPDY/3 section 3.2.1): a missing, repeated or invalid
// request-line header, scheme or host; a header name that is not a token; a
// value with CR, LF, NUL or another control byte; a repeated, empty or
// non-numeric content-length; or a non-zero content-length with endStream.
//
// # HTTP/2 requests
//
// An H2 block follows RFC 9113 section 8.3.1. The request line is
// ":method :path HTTP/1.1"; :scheme is required and checked but not sent.
// The Host header is :authority. A host field is used only when there is
// no :authority; when both are sent they must name the same authority
// (compared without case and without the scheme's default port), and the
// Host header is :authority (section 8.3.1: an intermediary MUST use
// :authority for Host). Repeated cookie fields become one Cookie line, the
// values joined by "; " (section 8.2.3). A te field ("trailers") is checked
// and dropped: TE is hop-by-hop (RFC 9110 section 10.1.4). Other fields go
// out one line each, in order.
//
// An H2 block that breaks a rule of RFC 9113 section 8 is malformed and
// returns dst unchanged and a *MalformedError: the stream must be reset
// with PROTOCOL_ERROR (section 8.1.1), not answered. That is: a field name
// that is not a lowercase token; a value with NUL, CR, LF or another
// control byte, or leading or trailing SP or HTAB; a pseudo-header after a
// regular field, undefined (including :protocol, as
// SETTINGS_ENABLE_CONNECT_PROTOCOL is never sent), repeated, empty or
// invalid; a missing :method, :scheme or :path; a :path of "*" but for
// OPTIONS, or not in origin form; a connection-specific field (connection,
// keep-alive, proxy-connection, transfer-encoding, upgrade); a te other
// than "trailers"; a repeated or non-numeric content-length, or a non-zero
// one with endStream; a host field that disagrees with :authority; a
// CONNECT with :scheme or :path or without :authority (section 8.5).
//
// An H2 block that is well formed but that spdymux cannot serve returns a
// *BadRequestError: Status 400 when neither :authority nor host is sent,
// or host is repeated or invalid (RFC 9110 section 7.2); Status 501 for
// CONNECT (section 8.5), since a stream is handed to the HTTP/1.1 server
// as one request, never as a tunnel.
//
// For typical requests it allocates nothing beyond growing dst.
func AppendRequestHead(dst []byte, d Dialect, fields []HeaderField, endStream bool) ([]byte, Request, error) {
	d.mustBeValid()
	if d == H2 {
		return appendRequestHeadH2(dst, fields, endStream)
	}
	return appendRequestHeadSPDY(dst, d, fields, endStream)
}

// CheckRequest checks a request header block as AppendRequestHead does,
// with the same errors, and returns the request's facts without writing a
// head: for a server that builds its http.Request from the fields
// (RequestHeader). It allocates nothing for typical requests.
func CheckRequest(d Dialect, fields []HeaderField, endStream bool) (Request, error) {
	d.mustBeValid()
	if d == H2 {
		return checkRequestH2(fields, endStream)
	}
	r, _, err := checkRequestSPDY(d, fields, endStream)
	return r, err
}

// appendRequestHeadSPDY is AppendRequestHead for SPDY2 and SPDY3.
func appendRequestHeadSPDY(dst []byte, d Dialect, fields []HeaderField, endStream bool) ([]byte, Request, error) {
	r, haveAE, err := checkRequestSPDY(d, fields, endStream)
	if err != nil {
		return dst, Request{}, err
	}
	names := requestNamesOf(d)
	dst = appendRequestLine(dst, r)
	for i := range fields {
		if f := &fields[i]; !dropRequestHeader(names, f.Name) {
			dst = appendFieldLines(dst, f.Name, f.Value)
		}
	}
	if !haveAE {
		dst = append(dst, "Accept-Encoding: gzip, deflate\r\n"...)
	}
	return appendHeadEnd(dst, r), r, nil
}

// appendRequestLine appends the request line and the Host line of a
// request head AppendRequestHead writes.
func appendRequestLine(dst []byte, r Request) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, ' ')
	dst = append(dst, r.Path...)
	dst = append(dst, ' ')
	dst = append(dst, r.Proto...)
	dst = append(dst, "\r\nHost: "...)
	dst = append(dst, r.Host...)
	return append(dst, "\r\n"...)
}

// appendFieldLines appends one header line per NUL-separated value of a
// field.
func appendFieldLines(dst []byte, name, value string) []byte {
	for v := range strings.SplitSeq(value, "\x00") {
		dst = append(dst, name...)
		dst = append(dst, ": "...)
		dst = append(dst, v...)
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// appendHeadEnd ends a request head AppendRequestHead writes: the body's
// framing, then Connection: close and the blank line.
func appendHeadEnd(dst []byte, r Request) []byte {
	switch {
	case r.Chunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	case r.ContentLength < 0 && (r.Method == "POST" || r.Method == "PUT" || r.Method == "PATCH"):
		dst = append(dst, "Content-Length: 0\r\n"...)
	}
	return append(dst, closeLine...)
}

func requestNamesOf(d Dialect) *requestNames {
	if d == SPDY2 {
		return &namesV2
	}
	return &namesV3
}

// checkRequestSPDY validates a SPDY request header block and returns the
// request's facts, and whether it names accept-encoding.
func checkRequestSPDY(d Dialect, fields []HeaderField, endStream bool) (Request, bool, error) {
	r := Request{ContentLength: -1}
	names := requestNamesOf(d)

	// First pass: the request-line headers and the body framing.
	var url string
	var haveCL, haveAE bool
	var got [5]bool // method, path, version, host, scheme
	for i := range fields {
		f := &fields[i]
		slot := -1
		switch f.Name {
		case names.method:
			slot, r.Method = 0, f.Value
		case names.path:
			slot, url = 1, f.Value
		case names.version:
			slot, r.Proto = 2, f.Value
		case names.host:
			slot, r.Host = 3, f.Value
		case names.scheme:
			slot, r.Scheme = 4, f.Value
		}
		if slot >= 0 {
			if got[slot] {
				return Request{}, false, badRequest("repeated " + f.Name + " header")
			}
			got[slot] = true
			continue
		}
		switch {
		case equalFoldASCII(f.Name, "content-length"):
			// SPDY/3 section 3.2.1 asks the server to check the body
			// against content-length; that is only possible with one
			// well-formed value (nghttpx: MultipleRequestCL, InvalidRequestCL).
			if haveCL {
				return Request{}, false, badRequest("repeated content-length header")
			}
			haveCL = true
			n, ok := parseContentLength(f.Value)
			if !ok {
				return Request{}, false, badRequest("invalid content-length " + strconv.Quote(f.Value))
			}
			r.ContentLength = n
		case equalFoldASCII(f.Name, "accept-encoding"):
			haveAE = true
		}
	}
	// SPDY/3 section 3.2.1: a request missing any of these MUST be answered
	// with 400. SPDY/2 may instead give the host in an absolute url.
	got[3] = got[3] || d == SPDY2
	for i, n := range [...]string{names.method, names.path, names.version, names.host, names.scheme} {
		if !got[i] {
			return Request{}, false, badRequest("missing " + n + " header")
		}
	}
	if !ValidToken(r.Method) {
		return Request{}, false, badRequest("invalid method " + strconv.Quote(r.Method))
	}
	if r.Proto != "HTTP/1.1" && r.Proto != "HTTP/1.0" {
		return Request{}, false, badRequest("unsupported version " + strconv.Quote(r.Proto))
	}
	if !validScheme(r.Scheme) {
		return Request{}, false, badRequest("invalid scheme " + strconv.Quote(r.Scheme))
	}
	r.Path = url
	if d == SPDY2 {
		path, host, ok := splitRequestURL(url)
		if !ok {
			return Request{}, false, badRequest("invalid url " + strconv.Quote(url))
		}
		r.Path = path
		if r.Host == "" {
			r.Host = host
		}
	}
	if r.Path == "*" {
		if r.Method != "OPTIONS" {
			return Request{}, false, badRequest("path * with method " + r.Method)
		}
	} else if !validPath(r.Path) {
		return Request{}, false, badRequest("invalid path " + strconv.Quote(r.Path))
	}
	if !validHost(r.Host) {
		return Request{}, false, badRequest("invalid host " + strconv.Quote(r.Host))
	}
	if endStream && r.ContentLength > 0 {
		// SPDY/3 section 3.2.1: the DATA must add up to content-length.
		return Request{}, false, badRequest("content-length " + strconv.FormatInt(r.ContentLength, 10) + " without a body")
	}
	r.Chunked = !endStream && r.ContentLength < 0
	if r.Chunked {
		r.Proto = "HTTP/1.1" // RFC 9112 section 6.1: no chunked coding in HTTP/1.0
	}

	// Every field that becomes a header line must be one.
	for i := range fields {
		f := &fields[i]
		if dropRequestHeader(names, f.Name) {
			continue
		}
		if !ValidToken(f.Name) {
			return Request{}, false, badRequest("invalid header name " + strconv.Quote(f.Name))
		}
		if !validValues(f.Value) {
			return Request{}, false, badRequest("invalid value of header " + f.Name)
		}
	}
	return r, haveAE, nil
}

// closeLine ends every request head AppendRequestHead writes.
const closeLine = "Connection: close\r\n\r\n"

// KeepAlive returns head, a request head from AppendRequestHead, without
// its "Connection: close", for a server that keeps the connection for
// further requests. It reuses head's memory.
func KeepAlive(head []byte) []byte {
	if !bytes.HasSuffix(head, []byte(closeLine)) {
		return head
	}
	return append(head[:len(head)-len(closeLine)], "\r\n"...)
}

// dropRequestHeader reports whether a header is not forwarded as a header
// line: a pseudo-header, a request-line header of the version, or a
// connection-specific header (forbidden in SPDY/3 requests, section 3.2.1).
func dropRequestHeader(names *requestNames, name string) bool {
	if strings.HasPrefix(name, ":") {
		return true
	}
	switch name {
	case names.method, names.path, names.version, names.scheme:
		return true
	}
	return equalFoldASCII(name, "host") ||
		equalFoldASCII(name, "connection") ||
		equalFoldASCII(name, "keep-alive") ||
		equalFoldASCII(name, "proxy-connection") ||
		equalFoldASCII(name, "transfer-encoding")
}

// splitRequestURL takes a SPDY/2 url, which Chromium sends in absolute form
// ("http://host/path?query"), and returns its origin form and authority.
// An origin-form or "*" url is returned as it is, with no host.
func splitRequestURL(u string) (path, host string, ok bool) {
	if u == "*" || strings.HasPrefix(u, "/") {
		return u, "", true
	}
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok || !validScheme(scheme) {
		return "", "", false
	}
	rest, _, _ = strings.Cut(rest, "#")
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	host, path = rest[:end], rest[end:]
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		host = host[at+1:] // drop userinfo
	}
	switch {
	case path == "":
		path = "/"
	case path[0] == '?':
		path = "/" + path
	}
	return path, host, true
}

// ParseContentLength parses a content-length value: one or more decimal
// digits that fit an int64.
func ParseContentLength(s string) (int64, bool) { return parseContentLength(s) }

// parseContentLength is ParseContentLength for a string or bytes.
func parseContentLength[T string | []byte](s T) (int64, bool) {
	if len(s) == 0 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// AppendChunkHeader appends the chunk-size line that precedes n bytes of
// chunk data (RFC 9112 section 7.1). n must be positive: a zero-size chunk
// would end the body, and panics; end it with AppendLastChunk instead.
func AppendChunkHeader(dst []byte, n int) []byte {
	if n <= 0 {
		panic("httpconv: chunk size " + strconv.Itoa(n) + " is not positive")
	}
	dst = strconv.AppendUint(dst, uint64(n), 16)
	return append(dst, "\r\n"...)
}

// AppendChunkEnd appends the CRLF that follows a chunk's data.
func AppendChunkEnd(dst []byte) []byte {
	return append(dst, "\r\n"...)
}

// AppendLastChunk appends the last chunk, the trailer section and the final
// CRLF that end a chunked body. trailers come from a HEADERS frame after the
// DATA; NUL-joined values become one line each. Fields that must not
// appear in a trailer (pseudo-headers, connection-specific headers, and
// those ForbiddenTrailer names) and fields that are not a valid name and value are
// dropped, so the trailer section can never carry injected lines. For
// HTTP/2, check trailers with CheckTrailers first: there a malformed
// trailer section resets the stream.
func AppendLastChunk(dst []byte, trailers []HeaderField) []byte {
	dst = append(dst, "0\r\n"...)
	for i := range trailers {
		f := &trailers[i]
		if !ValidToken(f.Name) || dropRequestHeader(&namesV3, f.Name) ||
			ForbiddenTrailer(f.Name) || !validValues(f.Value) {
			continue
		}
		dst = appendFieldLines(dst, f.Name, f.Value)
	}
	return append(dst, "\r\n"...)
}
