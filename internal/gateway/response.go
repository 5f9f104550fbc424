package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/spdymux/spdymux/internal/httpconv"
)

// readResponse reads the response head to req from br,
// with http.ReadResponse's result and errors in every case.
//
// The common response of a keep-alive backend, one already whole in br's
// buffer, is parsed there at less cost: "HTTP/1.1", a final status other
// than 204 and 304, one Content-Length, CRLF line ends and no folded
// lines, and none of the fields that change how ReadResponse frames or
// rewrites a response (Connection, Transfer-Encoding, Trailer, Pragma).
// The head becomes one string that the header's names and values share;
// the response is resp, its body reader body, both the caller's, and its
// fields go straight into dst less the hop-by-hop ones, as
// copyResponseHeader would put them, with resp.Header set to dst.
// Anything else, and a response to HEAD, is left to http.ReadResponse,
// from the same place in br (the fast path reads nothing it does not
// keep), and dst is left alone.
func readResponse(br *bufio.Reader, req *http.Request, resp *http.Response, body *lengthBody, dst http.Header) (*http.Response, error) {
	if req.Method != "HEAD" {
		if _, err := br.Peek(1); err != nil {
			// What ReadResponse makes of a failing first read.
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		buf, _ := br.Peek(br.Buffered())
		if n, ok := parseFastHead(buf, resp, dst); ok {
			br.Discard(n)
			resp.Request = req
			*body = lengthBody{r: br, n: resp.ContentLength}
			resp.Body = body
			if resp.ContentLength == 0 {
				resp.Body = http.NoBody
			}
			return resp, nil
		}
	}
	return http.ReadResponse(br, req)
}

// field is one header field of a head parseFastHead reads.
type field struct{ name, value string }

// parseFastHead parses the head at the start of b into resp and its
// fields into dst, if it is of the common form readResponse describes,
// and returns its length. ok is false, and resp and dst untouched, for
// any other head or one not whole in b.
func parseFastHead(b []byte, resp *http.Response, dst http.Header) (n int, ok bool) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return 0, false
	}
	n = end + 4
	// "HTTP/1.1 " and three digits, then the end of the line or a space
	// and a reason phrase.
	const proto = "HTTP/1.1 "
	if end < len(proto)+3 || string(b[:len(proto)]) != proto {
		return 0, false
	}
	code := 0
	for _, c := range b[len(proto) : len(proto)+3] {
		if c < '0' || c > '9' {
			return 0, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified {
		return 0, false
	}
	head := string(b[:end+2]) // the names and values below are its substrings
	line := len(proto) + 3
	statusEnd := indexCRLF(head, line)
	if statusEnd != line && head[line] != ' ' || !httpguts.ValidHeaderFieldValue(head[line:statusEnd]) {
		return 0, false
	}

	// Every field is checked before any goes into dst.
	var stack [24]field
	fields := stack[:0]
	cl := int64(-1)
	for i := statusEnd + 2; i < len(head); {
		e := indexCRLF(head, i)
		kv := head[i:e]
		i = e + 2
		colon := 0
		for colon < len(kv) && kv[colon] != ':' {
			if !isTokenByte(kv[colon]) {
				return 0, false // a space before the colon, or no colon
			}
			colon++
		}
		if colon == 0 || colon == len(kv) {
			return 0, false
		}
		// The value without the blanks around it, as ReadResponse
		// trims it: spaces and tabs only.
		name, value := kv[:colon], strings.Trim(kv[colon+1:], " \t")
		// ReadResponse's rule for a value: no control byte but HTAB.
		if !httpguts.ValidHeaderFieldValue(value) {
			return 0, false
		}
		name = textproto.CanonicalMIMEHeaderKey(name) // name itself, if canonical already
		switch name {
		case "Connection", "Transfer-Encoding", "Trailer", "Pragma":
			return 0, false
		case "Content-Length":
			if cl >= 0 {
				return 0, false
			}
			v, err := strconv.ParseUint(value, 10, 63)
			if err != nil {
				return 0, false
			}
			cl = int64(v)
		}
		fields = append(fields, field{name, value})
	}
	if cl < 0 {
		return 0, false
	}

	// What copyResponseHeader would put into dst: the fields less the
	// hop-by-hop ones (none is named by a Connection field: there is
	// none), each name's values in order after those dst had.
	hb := httpconv.HeaderBuilder{Header: dst}
	for i, f := range fields {
		if !isHopHeader(f.name) {
			hb.Add(f.name, f.value, len(fields)-i)
		}
	}
	*resp = http.Response{
		Status:        head[len(proto):statusEnd],
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        dst,
		ContentLength: cl,
	}
	return n, true
}

// indexCRLF returns the index of the first CRLF in s at or after i; s
// ends with one.
func indexCRLF(s string, i int) int {
	for s[i] != '\r' || s[i+1] != '\n' {
		i++
	}
	return i
}

// lengthBody reads a body of n bytes from r, as ReadResponse's body of a
// known length does: io.ErrUnexpectedEOF if r ends first, io.EOF with the
// last bytes.
type lengthBody struct {
	r *bufio.Reader
	n int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	if b.n == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }
