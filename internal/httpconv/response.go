package httpconv

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"slices"
	"strconv"
)

// ResponseHandler receives the SPDY or HTTP/2 form of one HTTP/1.1
// response as ResponseParser parses it. Its methods are called from the
// parser's Write and Close, in the order Head, Body (zero or more times),
// End. An error they return stops the parser and is returned from Write or
// Close.
type ResponseHandler interface {
	// Head is called once, for the final (non-1xx) response, with the
	// header block of the parser's Dialect. fields and its strings are
	// owned by the handler after the call.
	//
	// SPDY3: ":status" (the code, then a space and the reason phrase if
	// the server gave one, as in "200 OK") and ":version" ("HTTP/1.1");
	// SPDY2: "status" and "version". Then the response headers with
	// lowercase names, repeated headers merged into one NUL-joined value
	// in the order received, at the position of the first (set-cookie
	// included), and connection, keep-alive, proxy-connection,
	// transfer-encoding and the headers named by connection dropped
	// (SPDY/3 section 3.2.2).
	//
	// H2: ":status" with the three-digit code alone (RFC 9113 section
	// 8.3.2: no reason phrase, no version), then one field per header line
	// in the order received, repeated names included (set-cookie above all:
	// it cannot be joined), with lowercase names (section 8.2) and empty
	// values kept. The connection-specific fields connection, keep-alive,
	// proxy-connection, transfer-encoding, upgrade and te, and those named
	// by connection, are dropped (section 8.2.2: they MUST NOT be sent).
	// Values hold no control byte but HTAB and no surrounding whitespace
	// (section 8.2.1).
	//
	// In every dialect content-length is sent once, with the one value
	// the parser checked, and not at all when the response has a
	// transfer-encoding.
	// noBody reports that the response has no body (a reply to HEAD, 204,
	// 304, or content-length 0): the caller can put FIN (END_STREAM) on the
	// SYN_REPLY or HEADERS.
	Head(fields []HeaderField, noBody bool) error
	// Body is called with body bytes in order, chunk framing removed. p
	// aliases the buffer given to Write: it is valid only during the call,
	// and the parser never copies it. p is never empty.
	Body(p []byte) error
	// End is called once when the body is complete, at once after Head when
	// noBody. trailers are the trailer fields of a chunked body in the form
	// of Head's fields (without status and version), content-length and
	// the fields ForbiddenTrailer names dropped, or nil; the handler owns
	// them.
	End(trailers []HeaderField) error
}

// InterimHandler is implemented by a ResponseHandler that can send interim
// (1xx) responses. For the H2 dialect, the parser calls Interim for each
// interim response before the final one, except 101 Switching Protocols,
// which HTTP/2 cannot carry (RFC 9113 section 8.6) and which fails the
// parse. status is the code, 100 to 199; fields is the HTTP/2 header block
// in the form of ResponseHandler.Head's, led by ":status", without
// content-length (RFC 9110 section 8.6: none in a 1xx). The handler owns
// fields after the call; an error it returns stops the parser.
//
// SPDY has no interim responses: for SPDY2 and SPDY3, and for handlers
// that do not implement InterimHandler, interim responses are dropped (RFC
// 9110 section 15.2 lets a proxy drop those it cannot forward).
type InterimHandler interface {
	Interim(status int, fields []HeaderField) error
}

// ResponseError reports a malformed HTTP/1.1 response.
type ResponseError struct {
	Reason string // what was wrong, lower case
}

func (e *ResponseError) Error() string { return "httpconv: malformed response: " + e.Reason }

func badResponse(reason string) *ResponseError { return &ResponseError{Reason: reason} }

// ErrBytesAfterEnd is returned by Write for bytes that follow the end of the
// response, such as a body sent with a reply to HEAD.
var ErrBytesAfterEnd = errors.New("httpconv: bytes after the end of the response")

// DefaultMaxHeadBytes is the value used when ResponseParser.MaxHeadBytes is 0.
const DefaultMaxHeadBytes = 64 << 10

// maxChunkLine caps a chunk-size line with its extensions.
const maxChunkLine = 4096

type parseState uint8

const (
	stateHead        parseState = iota // status line and header lines, buffered in buf
	stateLengthBody                    // remaining bytes of a content-length body
	stateCloseBody                     // a body that ends when the server closes
	stateChunkSize                     // hex digits of a chunk size
	stateChunkSizeWS                   // whitespace after the chunk size
	stateChunkExt                      // chunk extensions, up to CR
	stateChunkSizeLF                   // LF ending the chunk-size line
	stateChunkData                     // remaining bytes of a chunk
	stateChunkDataCR                   // CR after chunk data
	stateChunkDataLF                   // LF after chunk data
	stateTrailer                       // trailer lines, buffered in buf
	stateDone                          // End was called
	stateFailed                        // err was returned
)

// ResponseParser parses one HTTP/1.1 response (RFC 9112) written by an
// HTTP/1.1 server and reports it to a ResponseHandler in SPDY or HTTP/2
// form.
//
// Input may be split anywhere across Write calls. Interim 1xx responses
// (100 Continue, 103 Early Hints) are skipped, since SPDY cannot carry
// them; with the H2 dialect they go to the handler's Interim method if it
// has one (InterimHandler). A 101 response is an error.
// The body is delimited by Transfer-Encoding: chunked (which wins over
// content-length, then dropped from the headers), else by content-length,
// else by the server closing the connection; replies to HEAD and 204 and
// 304 responses have none.
//
// Head and trailer bytes are buffered, up to MaxHeadBytes; body bytes are
// passed to the handler without copying, and parsing a body allocates
// nothing. The zero value is ready for Reset, and a parser may be Reset and
// reused to keep its buffers. It is not safe for concurrent use.
type ResponseParser struct {
	// MaxHeadBytes caps the bytes of a response head (status line and
	// header lines) plus those of its trailer section; 0 means
	// DefaultMaxHeadBytes. Each interim response has its own cap.
	MaxHeadBytes int

	dialect   Dialect
	isHead    bool // the request method was HEAD
	h         ResponseHandler
	interim   InterimHandler // h, if it is one and the dialect is H2
	state     parseState
	err       error // why state is stateFailed
	ended     bool  // End was called
	remaining int64 // bytes left of a content-length body or a chunk; a chunk size being parsed
	digits    int   // hex digits of the chunk size so far
	lineBytes int   // bytes of the chunk-size line so far
	used      int   // head and trailer bytes so far, against MaxHeadBytes

	// Scratch space, kept across Reset.
	buf       []byte      // the head or trailer section being received
	lineStart int         // offset in buf of the line being received
	lines     []lineSpan  // parsed header lines of buf
	order     []int32     // indexes of lines sorted by name
	next      []int32     // next line of the same name, or -1
	follows   []bool      // a line of the same name comes before
	out       []byte      // names and values of the header block being built
	spans     []fieldSpan // fields of the block being built, as offsets in out
}

// lineSpan locates a header line's lowercased name and trimmed value in buf.
type lineSpan struct{ name, nameEnd, value, valueEnd int32 }

// fieldSpan is a field being built: a constant name or one in out, and a
// value in out.
type fieldSpan struct {
	constName            string
	name, nameEnd, value int
	valueEnd             int
}

// Reset prepares p for the response to a request with the given method
// (a reply to HEAD has no body) on a stream of dialect d, which must be
// SPDY2, SPDY3 or H2; any other value panics. It keeps MaxHeadBytes and the
// buffers.
func (p *ResponseParser) Reset(d Dialect, method string, h ResponseHandler) {
	d.mustBeValid()
	p.dialect = d
	p.isHead = method == "HEAD"
	p.h = h
	p.interim = nil
	if ih, ok := h.(InterimHandler); ok && d == H2 {
		p.interim = ih
	}
	p.state = stateHead
	p.err, p.ended = nil, false
	p.remaining, p.digits, p.lineBytes, p.used = 0, 0, 0, 0
	p.buf, p.lineStart = p.buf[:0], 0
}

// Done reports whether End was called, even if an error followed.
func (p *ResponseParser) Done() bool { return p.ended }

// Write consumes response bytes, calling the handler as parts complete. It
// returns a *ResponseError for malformed input, ErrBytesAfterEnd for bytes
// after the end of the response, or the handler's error; after an error,
// every Write and Close returns the same error.
func (p *ResponseParser) Write(b []byte) (int, error) {
	if p.state == stateFailed {
		return 0, p.err
	}
	n := 0
	for n < len(b) {
		var k int
		var err error
		switch p.state {
		case stateHead, stateTrailer:
			k, err = p.writeHead(b[n:])
		case stateLengthBody, stateChunkData:
			k = int(min(p.remaining, int64(len(b)-n)))
			p.remaining -= int64(k)
			err = p.h.Body(b[n : n+k])
			if err == nil && p.remaining == 0 {
				if p.state == stateChunkData {
					p.state = stateChunkDataCR
				} else {
					err = p.end(nil)
				}
			}
		case stateCloseBody:
			k = len(b) - n
			err = p.h.Body(b[n:])
		case stateDone:
			err = ErrBytesAfterEnd
		default:
			k, err = p.writeChunkLine(b[n:])
		}
		n += k
		if err != nil {
			p.state, p.err = stateFailed, err
			return n, err
		}
	}
	return n, nil
}

// Close tells p that the server closed the connection. It ends a body
// delimited by the close, calling End, and returns io.ErrUnexpectedEOF if
// the response was incomplete: no final head, a content-length body cut
// short, or an unfinished chunked body.
func (p *ResponseParser) Close() error {
	switch p.state {
	case stateDone:
		return nil
	case stateFailed:
		return p.err
	case stateCloseBody:
		if err := p.end(nil); err != nil {
			p.state, p.err = stateFailed, err
			return err
		}
		return nil
	}
	p.state, p.err = stateFailed, io.ErrUnexpectedEOF
	return p.err
}

// end enters stateDone and calls End.
func (p *ResponseParser) end(trailers []HeaderField) error {
	p.state, p.ended = stateDone, true
	return p.h.End(trailers)
}

func (p *ResponseParser) maxHeadBytes() int {
	if p.MaxHeadBytes > 0 {
		return p.MaxHeadBytes
	}
	return DefaultMaxHeadBytes
}

// writeHead buffers the bytes of a head or trailer section up to the end of
// the first line in b, and processes the section when that line is blank.
func (p *ResponseParser) writeHead(b []byte) (int, error) {
	i := bytes.IndexByte(b, '\n')
	k := len(b)
	if i >= 0 {
		k = i + 1
	}
	if p.used+k > p.maxHeadBytes() {
		return 0, badResponse("head larger than " + strconv.Itoa(p.maxHeadBytes()) + " bytes")
	}
	p.used += k
	p.buf = append(p.buf, b[:k]...)
	if i < 0 {
		return k, nil
	}
	line := p.buf[p.lineStart:]
	if len(line) > 2 || len(line) == 2 && line[0] != '\r' {
		p.lineStart = len(p.buf)
		return k, nil
	}
	if p.state == stateTrailer {
		return k, p.endTrailer()
	}
	return k, p.endHead()
}

// endHead processes the complete head in buf.
func (p *ResponseParser) endHead() error {
	headLines := p.buf[:p.lineStart]
	eol := bytes.IndexByte(headLines, '\n')
	if eol < 0 {
		return badResponse("missing status line")
	}
	proto, code, reason, err := parseStatusLine(trimCR(headLines[:eol]))
	if err != nil {
		return err
	}
	if code < 200 {
		// RFC 9110 section 15.2 lets a proxy drop 1xx responses it cannot
		// forward, but not 101; neither SPDY nor HTTP/2 (RFC 9113 section
		// 8.6) can switch protocols.
		if code == 101 {
			return badResponse("101 Switching Protocols cannot be carried over " + p.dialect.String())
		}
		if p.interim != nil {
			if err := p.parseLines(eol + 1); err != nil {
				return err
			}
			if err := p.interim.Interim(code, p.buildFields(true, proto, code, reason, true)); err != nil {
				return err
			}
		}
		p.buf, p.lineStart, p.used = p.buf[:0], 0, 0
		return nil
	}
	if err := p.parseLines(eol + 1); err != nil {
		return err
	}

	// RFC 9112 section 6.3: the length of the body.
	noBody := p.isHead || code == 204 || code == 304
	chunked, haveTE, haveCL := false, false, false
	var length int64 = -1
	for _, l := range p.lines {
		switch name := p.buf[l.name:l.nameEnd]; string(name) {
		case "transfer-encoding":
			haveTE = true
		case "content-length":
			haveCL = true
		}
	}
	if haveTE && !noBody {
		// Only "chunked" alone: another coding would reach the client
		// with no header saying so.
		if !p.isChunkedOnly() {
			return badResponse("unsupported transfer-encoding")
		}
		chunked = true
	}
	dropCL := haveTE
	if haveCL && !haveTE {
		n, ok := p.contentLength()
		if !ok {
			return badResponse("invalid or conflicting content-length")
		}
		length = n
		noBody = noBody || n == 0
	}

	fields := p.buildFields(true, proto, code, reason, dropCL)
	if err := p.h.Head(fields, noBody); err != nil {
		return err
	}
	switch {
	case noBody:
		return p.end(nil)
	case chunked:
		p.state, p.remaining, p.digits, p.lineBytes = stateChunkSize, 0, 0, 0
	case length > 0:
		p.state, p.remaining = stateLengthBody, length
	default:
		p.state = stateCloseBody
	}
	return nil
}

// endTrailer processes the complete trailer section in buf.
func (p *ResponseParser) endTrailer() error {
	if err := p.parseLines(0); err != nil {
		return err
	}
	var trailers []HeaderField
	if len(p.lines) > 0 {
		trailers = p.buildFields(false, nil, 0, nil, true)
		if len(trailers) == 0 {
			trailers = nil
		}
	}
	return p.end(trailers)
}

// parseStatusLine parses "HTTP/1.1 200 OK" (RFC 9112 section 4).
func parseStatusLine(line []byte) (proto []byte, code int, reason []byte, err error) {
	if len(line) < 12 || line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return nil, 0, nil, badResponse("malformed status line " + strconv.Quote(string(line)))
	}
	proto = line[:8]
	if string(proto) != "HTTP/1.1" && string(proto) != "HTTP/1.0" {
		return nil, 0, nil, badResponse("unsupported version " + strconv.Quote(string(proto)))
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return nil, 0, nil, badResponse("malformed status code " + strconv.Quote(string(line[9:12])))
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return nil, 0, nil, badResponse("status code " + strconv.Itoa(code) + " below 100")
	}
	if len(line) > 12 {
		reason = line[13:]
	}
	if !ValidFieldValue(reason) {
		return nil, 0, nil, badResponse("control byte in reason phrase")
	}
	return proto, code, reason, nil
}

// parseLines parses the header lines of buf from offset start up to the
// blank line into p.lines, lowercasing names in place.
func (p *ResponseParser) parseLines(start int) error {
	p.lines = p.lines[:0]
	rest := p.buf[:p.lineStart]
	for start < len(rest) {
		eol := start + bytes.IndexByte(rest[start:], '\n')
		line := trimCR(rest[start:eol])
		if line[0] == ' ' || line[0] == '\t' {
			// RFC 9112 section 5.2: obs-fold; rejecting is allowed.
			return badResponse("folded header line")
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return badResponse("header line without a colon")
		}
		// RFC 9112 section 5.1: no whitespace before the colon, which
		// the token check also rejects.
		if !ValidToken(line[:colon]) {
			return badResponse("invalid header name " + strconv.Quote(string(line[:colon])))
		}
		v0, v1 := colon+1, len(line)
		for v0 < v1 && (line[v0] == ' ' || line[v0] == '\t') {
			v0++
		}
		for v1 > v0 && (line[v1-1] == ' ' || line[v1-1] == '\t') {
			v1--
		}
		for _, c := range line[v0:v1] {
			if c == '\r' || c == '\n' || c == 0 {
				return badResponse("CR, LF or NUL in the value of header " + string(line[:colon]))
			}
		}
		// RFC 9113 section 8.2.1: HTTP/2 recipients SHOULD check values
		// against RFC 9110 and treat other control bytes as malformed.
		if p.dialect == H2 && !ValidFieldValue(line[v0:v1]) {
			return badResponse("control byte in the value of header " + string(line[:colon]))
		}
		for i := range colon {
			line[i] = lowerASCII(line[i])
		}
		p.lines = append(p.lines, lineSpan{int32(start), int32(start + colon), int32(start + v0), int32(start + v1)})
		start = eol + 1
	}
	return nil
}

func trimCR(line []byte) []byte {
	if len(line) > 0 && line[len(line)-1] == '\r' {
		return line[:len(line)-1]
	}
	return line
}

func (p *ResponseParser) name(l lineSpan) []byte  { return p.buf[l.name:l.nameEnd] }
func (p *ResponseParser) value(l lineSpan) []byte { return p.buf[l.value:l.valueEnd] }

// isChunkedOnly reports whether the transfer-encoding lines list exactly
// one coding, chunked.
func (p *ResponseParser) isChunkedOnly() bool {
	n := 0
	for _, l := range p.lines {
		if string(p.name(l)) != "transfer-encoding" {
			continue
		}
		for c := range bytes.SplitSeq(p.value(l), []byte(",")) {
			c = bytes.Trim(c, " \t")
			switch {
			case len(c) == 0:
			case equalFoldASCII(c, "chunked"):
				n++
			default:
				return false
			}
		}
	}
	return n == 1
}

// contentLength returns the content-length, which may be repeated in lines
// or in a list as long as every value is the same (RFC 9110 section 8.6).
func (p *ResponseParser) contentLength() (int64, bool) {
	length := int64(-1)
	for _, l := range p.lines {
		if string(p.name(l)) != "content-length" {
			continue
		}
		for v := range bytes.SplitSeq(p.value(l), []byte(",")) {
			n, ok := parseContentLength(bytes.Trim(v, " \t"))
			if !ok || length >= 0 && n != length {
				return 0, false
			}
			length = n
		}
	}
	return length, length >= 0
}

// dropResponseHeader reports whether a response header is not forwarded:
// the connection-specific headers of SPDY/3 section 3.2.2 (on HTTP/2 also
// upgrade and te, RFC 9113 section 8.2.2), those named by connection (RFC
// 9110 section 7.6.1), and on SPDY/2 the names of its status fields.
// Trailers also drop content-length and the fields ForbiddenTrailer names
// (RFC 9110 section 6.5.1).
func (p *ResponseParser) dropResponseHeader(name []byte, trailer bool) bool {
	switch string(name) {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding":
		return true
	case "upgrade", "te":
		if p.dialect == H2 {
			return true
		}
	case "status", "version":
		return p.dialect == SPDY2
	case "content-length":
		return trailer
	}
	if trailer && ForbiddenTrailer(string(name)) {
		return true
	}
	for _, l := range p.lines {
		if string(p.name(l)) != "connection" {
			continue
		}
		for opt := range bytes.SplitSeq(p.value(l), []byte(",")) {
			if equalFoldASCII(bytes.Trim(opt, " \t"), string(name)) {
				return true
			}
		}
	}
	return false
}

// buildFields turns p.lines into a header block of the parser's dialect,
// led by the status fields when head is set. It allocates the fields and
// one string that holds all their names and values.
func (p *ResponseParser) buildFields(head bool, proto []byte, code int, reason []byte, dropCL bool) []HeaderField {
	p.out, p.spans = p.out[:0], p.spans[:0]
	if head {
		statusName, versionName := ":status", ":version"
		if p.dialect == SPDY2 {
			statusName, versionName = "status", "version"
		}
		v := len(p.out)
		p.out = strconv.AppendInt(p.out, int64(code), 10)
		if len(reason) > 0 && p.dialect != H2 {
			p.out = append(p.out, ' ')
			p.out = append(p.out, reason...)
		}
		p.spans = append(p.spans, fieldSpan{constName: statusName, value: v, valueEnd: len(p.out)})
		if p.dialect != H2 {
			v = len(p.out)
			p.out = append(p.out, proto...)
			p.spans = append(p.spans, fieldSpan{constName: versionName, value: v, valueEnd: len(p.out)})
		}
	}
	if p.dialect == H2 {
		p.spanLinesH2(!head, dropCL)
	} else {
		p.spanLinesSPDY(!head, dropCL)
	}

	s := string(p.out)
	fields := make([]HeaderField, len(p.spans))
	for i, f := range p.spans {
		fields[i].Name = f.constName
		if f.constName == "" {
			fields[i].Name = s[f.name:f.nameEnd]
		}
		fields[i].Value = s[f.value:f.valueEnd]
	}
	return fields
}

// spanLinesH2 adds a field for each line to be forwarded, in order: HTTP/2
// carries repeated names as they are.
func (p *ResponseParser) spanLinesH2(trailer, dropCL bool) {
	sentCL := false
	for _, l := range p.lines {
		name := p.name(l)
		if p.dropResponseHeader(name, trailer) {
			continue
		}
		f := fieldSpan{name: len(p.out)}
		p.out = append(p.out, name...)
		f.nameEnd, f.value = len(p.out), len(p.out)
		if string(name) == "content-length" {
			if dropCL || sentCL {
				p.out = p.out[:f.name]
				continue
			}
			// Forward the one value contentLength checked, once.
			sentCL = true
			length, _ := p.contentLength()
			p.out = strconv.AppendInt(p.out, length, 10)
		} else {
			p.out = append(p.out, p.value(l)...)
		}
		f.valueEnd = len(p.out)
		p.spans = append(p.spans, f)
	}
}

// spanLinesSPDY adds a field for each name to be forwarded, at the
// position of its first line, with the values of all its lines joined by
// NUL: a SPDY header block holds a name once.
func (p *ResponseParser) spanLinesSPDY(trailer, dropCL bool) {
	// Group lines by name: sort their indexes by name, then by position,
	// and link each line to the next of the same name.
	n := len(p.lines)
	p.order, p.next, p.follows = p.order[:0], p.next[:0], p.follows[:0]
	for i := range n {
		p.order = append(p.order, int32(i))
		p.next = append(p.next, -1)
		p.follows = append(p.follows, false)
	}
	slices.SortFunc(p.order, func(a, b int32) int {
		if c := bytes.Compare(p.name(p.lines[a]), p.name(p.lines[b])); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for k := 1; k < n; k++ {
		a, b := p.order[k-1], p.order[k]
		if bytes.Equal(p.name(p.lines[a]), p.name(p.lines[b])) {
			p.next[a] = b
			p.follows[b] = true
		}
	}

	for i, l := range p.lines {
		name := p.name(l)
		if p.follows[i] || p.dropResponseHeader(name, trailer) {
			continue
		}
		if string(name) == "content-length" && dropCL {
			continue
		}
		f := fieldSpan{name: len(p.out)}
		p.out = append(p.out, name...)
		f.nameEnd, f.value = len(p.out), len(p.out)
		if string(name) == "content-length" {
			// Forward the one value contentLength checked, once.
			length, _ := p.contentLength()
			p.out = strconv.AppendInt(p.out, length, 10)
		} else {
			// Join the values with NUL, skipping empty ones: SPDY
			// values must not start or end with NUL or hold NUL NUL.
			for j := int32(i); j >= 0; j = p.next[j] {
				v := p.value(p.lines[j])
				if len(v) == 0 {
					continue
				}
				if len(p.out) > f.value {
					p.out = append(p.out, 0)
				}
				p.out = append(p.out, v...)
			}
		}
		f.valueEnd = len(p.out)
		p.spans = append(p.spans, f)
	}
}

// writeChunkLine parses the framing around chunk data: the chunk-size line
// with its extensions (RFC 9112 section 7.1), and the CRLF after the data.
// It returns after the byte that completes either.
func (p *ResponseParser) writeChunkLine(b []byte) (int, error) {
	for i, c := range b {
		p.lineBytes++
		if p.lineBytes > maxChunkLine {
			return i, badResponse("chunk-size line longer than " + strconv.Itoa(maxChunkLine) + " bytes")
		}
		switch p.state {
		case stateChunkSize:
			if d, ok := unhex(c); ok {
				// At most 16 hex digits, and no overflow of int64.
				if p.digits == 16 || p.remaining > (1<<63-1)>>4 {
					return i, badResponse("chunk size too large")
				}
				p.remaining = p.remaining<<4 | int64(d)
				p.digits++
				continue
			}
			if p.digits == 0 {
				return i, badResponse("missing chunk size")
			}
			fallthrough
		case stateChunkSizeWS:
			switch c {
			case ' ', '\t':
				p.state = stateChunkSizeWS
			case ';':
				p.state = stateChunkExt
			case '\r':
				p.state = stateChunkSizeLF
			default:
				return i, badResponse("malformed chunk-size line")
			}
		case stateChunkExt:
			switch {
			case c == '\r':
				p.state = stateChunkSizeLF
			case byteClass[c]&classValue == 0:
				return i, badResponse("control byte in chunk extension")
			}
		case stateChunkSizeLF:
			if c != '\n' {
				return i, badResponse("chunk-size line not ended by CRLF")
			}
			if p.remaining == 0 {
				p.state = stateTrailer
				p.buf, p.lineStart = p.buf[:0], 0
			} else {
				p.state = stateChunkData
			}
			p.lineBytes = 0
			return i + 1, nil
		case stateChunkDataCR:
			if c != '\r' {
				return i, badResponse("chunk data not followed by CRLF")
			}
			p.state = stateChunkDataLF
		case stateChunkDataLF:
			if c != '\n' {
				return i, badResponse("chunk data not followed by CRLF")
			}
			p.state, p.remaining, p.digits, p.lineBytes = stateChunkSize, 0, 0, 0
			return i + 1, nil
		}
	}
	return len(b), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
