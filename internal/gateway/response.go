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
// The head becomes one string that the fields' names and values share;
// the response is resp, its body reader body, both the caller's, with no
// Header: its fields go into *fields in the order received, names
// canonical, less the hop-by-hop ones, which is what copyResponseHeader
// would keep (fieldsInto makes that header of them). Anything else, and a
// response to HEAD, is left to http.ReadResponse, from the same place in
// br (the fast path reads nothing it does not keep), and *fields is
// emptied.
func readResponse(br *bufio.Reader, req *http.Request, resp *http.Response, body *lengthBody, fields *[]httpconv.HeaderField) (*http.Response, error) {
	*fields = (*fields)[:0]
	if req.Method != "HEAD" {
		if _, err := br.Peek(1); err != nil {
			// What ReadResponse makes of a failing first read.
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		buf, _ := br.Peek(br.Buffered())
		if n, ok := parseFastHead(buf, resp, fields); ok {
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

// parseFastHead parses the head at the start of b into resp and its
// fields into *fields, if it is of the common form readResponse
// describes, and returns its length. ok is false, resp untouched and
// *fields empty, for any other head or one not whole in b.
func parseFastHead(b []byte, resp *http.Response, fields *[]httpconv.HeaderField) (n int, ok bool) {
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

	f := (*fields)[:0]
	fail := func() (int, bool) {
		clear(f)
		*fields = f[:0]
		return 0, false
	}
	cl := int64(-1)
	for i := statusEnd + 2; i < len(head); {
		e := indexCRLF(head, i)
		kv := head[i:e]
		i = e + 2
		colon := 0
		for colon < len(kv) && kv[colon] != ':' {
			if !isTokenByte(kv[colon]) {
				return fail() // a space before the colon, or no colon
			}
			colon++
		}
		if colon == 0 || colon == len(kv) {
			return fail()
		}
		// The value without the blanks around it, as ReadResponse
		// trims it: spaces and tabs only.
		name, value := kv[:colon], strings.Trim(kv[colon+1:], " \t")
		// ReadResponse's rule for a value: no control byte but HTAB.
		if !httpguts.ValidHeaderFieldValue(value) {
			return fail()
		}
		name = textproto.CanonicalMIMEHeaderKey(name) // name itself, if canonical already
		switch name {
		case "Connection", "Transfer-Encoding", "Trailer", "Pragma":
			return fail()
		case "Content-Length":
			if cl >= 0 {
				return fail()
			}
			v, err := strconv.ParseUint(value, 10, 63)
			if err != nil {
				return fail()
			}
			cl = int64(v)
		}
		// What copyResponseHeader keeps: the fields less the hop-by-hop
		// ones (none is named by a Connection field: there is none).
		if !isHopHeader(name) {
			f = append(f, httpconv.HeaderField{Name: name, Value: value})
		}
	}
	if cl < 0 {
		return fail()
	}
	*fields = f
	*resp = http.Response{
		Status:        head[len(proto):statusEnd],
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		ContentLength: cl,
	}
	return n, true
}

// fieldsInto adds fields, as readResponse gives them, to dst: each name's
// values in order after those dst had, as copyResponseHeader adds a
// response's header.
func fieldsInto(dst http.Header, fields []httpconv.HeaderField) {
	hb := httpconv.HeaderBuilder{Header: dst}
	for i, f := range fields {
		hb.Add(f.Name, f.Value, len(fields)-i)
	}
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
