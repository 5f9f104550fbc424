package httpconv

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// This file serves a handler called directly, without an HTTP/1.1
// exchange in between: the request header as an http.Header, and the
// response header block made from the handler's http.Header.

// RequestHeader returns the header of the request that fields describe,
// once AppendRequestHead has accepted them (r is what it returned): the
// fields the HTTP/1.1 head would carry, under canonical keys, without Host
// (r.Host), the request line's fields, the body framing and the
// connection-specific fields. A SPDY value holding several NUL-separated
// values gives one value each, and SPDY gets "Accept-Encoding: gzip,
// deflate" when the client sent none, as AppendRequestHead does. HTTP/2
// cookie fields become one Cookie value joined by "; " (RFC 9113 section
// 8.2.3) and te is dropped. The values alias the fields' strings.
func RequestHeader(d Dialect, fields []HeaderField, r Request) http.Header {
	d.mustBeValid()
	h := make(http.Header, len(fields))
	b := HeaderBuilder{Header: h}
	if d == H2 {
		cookie := false
		for i := range fields {
			f := &fields[i]
			switch {
			case strings.HasPrefix(f.Name, ":"), f.Name == "host", f.Name == "te":
				continue
			case f.Name == "cookie":
				if cookie {
					continue
				}
				cookie = true
				h["Cookie"] = []string{joinCookies(fields[i:])}
				continue
			}
			b.Add(canonicalKey(f.Name), f.Value, len(fields)-i)
		}
		return h
	}
	names := &namesV3
	if d == SPDY2 {
		names = &namesV2
	}
	for i := range fields {
		f := &fields[i]
		if dropRequestHeader(names, f.Name) {
			continue
		}
		k := canonicalKey(f.Name)
		if strings.IndexByte(f.Value, 0) < 0 {
			b.Add(k, f.Value, len(fields)-i)
			continue
		}
		for v := range strings.SplitSeq(f.Value, "\x00") {
			b.Add(k, v, len(fields)-i)
		}
	}
	if _, ok := h["Accept-Encoding"]; !ok {
		h["Accept-Encoding"] = []string{"gzip, deflate"}
	}
	return h
}

// HeaderBuilder adds values to Header: the first value of each name in
// one array shared by all names, capped so that a later append to one
// name's values copies them rather than writing over the next name's.
// A header of n names costs one allocation for its values, not n.
type HeaderBuilder struct {
	Header http.Header
	vals   []string
}

// Add adds v to k's values; left is how many values are still to come,
// this one included: the array's size when this is the first value.
func (b *HeaderBuilder) Add(k, v string, left int) {
	if old := b.Header[k]; len(old) > 0 {
		b.Header[k] = append(old, v)
		return
	}
	if b.vals == nil {
		b.vals = make([]string, 0, left)
	}
	b.vals = append(b.vals, v)
	n := len(b.vals)
	b.Header[k] = b.vals[n-1 : n : n]
}

func joinCookies(fields []HeaderField) string {
	n, first := 0, ""
	for i := range fields {
		if f := &fields[i]; f.Name == "cookie" && f.Value != "" {
			if n == 0 {
				first = f.Value
			}
			n++
		}
	}
	if n <= 1 {
		return first
	}
	return string(appendCookies(nil, fields))
}

// AppendResponseFields appends the header block of a response a handler
// made (status code and header) in dialect d: for SPDY the status field
// with its reason phrase and the version field "HTTP/1.1", for HTTP/2
// :status; then the header's fields, names lowercased and in name order.
// contentLength, when not negative, is sent as content-length in place of
// any the header holds. As with a response parsed from HTTP/1.1 bytes,
// the connection-specific fields (connection and the names it lists,
// keep-alive, proxy-connection, transfer-encoding; upgrade and te too for
// HTTP/2) are dropped, SPDY/2's status and version names cannot be set,
// and names or values that are not valid are dropped. SPDY joins the values
// of a name with NUL; HTTP/2 sends a field per value. d must be SPDY2,
// SPDY3 or H2; any other value panics.
func AppendResponseFields(dst []HeaderField, d Dialect, code int, h http.Header, contentLength int64) []HeaderField {
	dst = appendStatus(dst, d, code)
	start := len(dst)
	connection := h["Connection"]
	for k, vs := range h {
		if len(vs) == 0 || !ValidToken(k) {
			continue
		}
		name := lowerName(k)
		switch responseFieldKind(d, name) {
		case dropField:
			continue
		case lengthField:
			if n, ok := parseContentLength(vs[0]); ok && contentLength < 0 {
				dst = append(dst, HeaderField{Name: name, Value: strconv.FormatInt(n, 10)})
			}
			continue
		}
		if !listedIn(connection, name) {
			dst = appendValues(dst, d, name, vs)
		}
	}
	if contentLength >= 0 {
		dst = append(dst, HeaderField{Name: "content-length", Value: strconv.FormatInt(contentLength, 10)})
	}
	return sortFields(dst, start, d)
}

// AppendResponseFieldList is AppendResponseFields for a header given as
// its fields in the order received (names in any case, a field per
// value), such as an HTTP/1.1 response's head: the result is the same
// as that of AppendResponseFields on the http.Header those fields make.
func AppendResponseFieldList(dst []HeaderField, d Dialect, code int, fields []HeaderField, contentLength int64) []HeaderField {
	dst = appendStatus(dst, d, code)
	start := len(dst)
	firstLength := true
	for i := range fields {
		f := &fields[i]
		if !ValidToken(f.Name) {
			continue
		}
		name := lowerName(f.Name)
		switch responseFieldKind(d, name) {
		case dropField:
			continue
		case lengthField:
			// The map's first value of content-length, as above.
			if firstLength && contentLength < 0 {
				if n, ok := parseContentLength(f.Value); ok {
					dst = append(dst, HeaderField{Name: name, Value: strconv.FormatInt(n, 10)})
				}
			}
			firstLength = false
			continue
		}
		if !listedInFields(fields, name) {
			dst = appendValues(dst, d, name, []string{f.Value})
		}
	}
	if contentLength >= 0 {
		dst = append(dst, HeaderField{Name: "content-length", Value: strconv.FormatInt(contentLength, 10)})
	}
	return sortFields(dst, start, d)
}

// InsertField adds f to a block that AppendResponseFields or
// AppendResponseFieldList made in dialect d, at its place in name order;
// no field of the block has f's name.
func InsertField(block []HeaderField, d Dialect, f HeaderField) []HeaderField {
	start := 1
	if d != H2 {
		start = 2
	}
	i, _ := slices.BinarySearchFunc(block[start:], f.Name, func(e HeaderField, name string) int { return strings.Compare(e.Name, name) })
	return slices.Insert(block, start+i, f)
}

// appendStatus appends a response's status fields in dialect d: for SPDY
// the status with its reason phrase and the version "HTTP/1.1", for HTTP/2
// :status.
func appendStatus(dst []HeaderField, d Dialect, code int) []HeaderField {
	d.mustBeValid()
	status := strconv.Itoa(code)
	if d == H2 {
		return append(dst, HeaderField{Name: ":status", Value: status})
	}
	statusName, versionName := ":status", ":version"
	if d == SPDY2 {
		statusName, versionName = "status", "version"
	}
	if text := http.StatusText(code); text != "" {
		status += " " + text
	}
	return append(dst, HeaderField{Name: statusName, Value: status}, HeaderField{Name: versionName, Value: "HTTP/1.1"})
}

// What a response field of a lowercase name is in a dialect.
const (
	keptField   = iota // sent, unless Connection lists it
	dropField          // never sent
	lengthField        // content-length
)

func responseFieldKind(d Dialect, name string) int {
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding":
		return dropField
	case "upgrade", "te":
		if d == H2 {
			return dropField
		}
	case "status", "version":
		if d == SPDY2 {
			return dropField
		}
	case "content-length":
		return lengthField
	}
	return keptField
}

// listedInFields is listedIn for the values of the connection fields
// among fields.
func listedInFields(fields []HeaderField, name string) bool {
	for i := range fields {
		if f := &fields[i]; equalFoldASCII(f.Name, "connection") && listedIn([]string{f.Value}, name) {
			return true
		}
	}
	return false
}

// listedIn reports whether name is one of the options of the Connection
// values.
func listedIn(connection []string, name string) bool {
	for _, v := range connection {
		for opt := range strings.SplitSeq(v, ",") {
			if equalFoldASCII(strings.Trim(opt, " \t"), name) {
				return true
			}
		}
	}
	return false
}

// WholeResponseWriter is an http.ResponseWriter that takes a whole
// response in one call, its head as fields, such as one parsed from an
// HTTP/1.1 backend's bytes: spdymux's handler-mode writer, which then
// makes the response's header block straight from the fields
// (AppendResponseFieldList), with no http.Header in between. Wrappers of
// a writer pass the call on.
type WholeResponseWriter interface {
	// WriteWholeResponse sends the final response code (200 or above)
	// with the given fields (HTTP/1.1 names in any case, a field per
	// value, none of them Transfer-Encoding or Trailer) and all of the
	// body, which the writer does not keep; a Content-Length among
	// the fields must match the body. It is the handler's whole
	// response: the handler writes nothing before it and nothing after.
	// A writer that cannot take the response in this form, because the
	// response already began or it is a response to HEAD, returns false
	// having sent nothing; the handler then writes it the usual way.
	WriteWholeResponse(code int, fields []HeaderField, body []byte) bool
}
