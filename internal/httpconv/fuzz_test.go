package httpconv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// fuzzDialect maps a fuzzer's byte to a Dialect.
func fuzzDialect(b uint8) Dialect { return []Dialect{SPDY3, SPDY2, H2}[b%3] }

// dialectByte is the byte fuzzDialect maps to d.
func dialectByte(d Dialect) uint8 {
	switch d {
	case SPDY2:
		return 1
	case H2:
		return 2
	}
	return 0
}

func FuzzResponseParser(f *testing.F) {
	for _, tt := range responseTests {
		f.Add([]byte(tt.input), uint16(len(tt.input)/3), uint16(len(tt.input)/2), dialectByte(tt.version), tt.method == "HEAD", tt.maxHead > 0)
	}
	for _, tt := range responseTestsH2 {
		f.Add([]byte(tt.input), uint16(len(tt.input)/3), uint16(len(tt.input)/2), dialectByte(H2), tt.method == "HEAD", false)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n"), uint16(50), uint16(60), uint8(0), false, false)
	f.Fuzz(func(t *testing.T, data []byte, split1, split2 uint16, dialect uint8, head, smallHead bool) {
		d, method, maxHead := fuzzDialect(dialect), "GET", 0
		if head {
			method = "HEAD"
		}
		if smallHead {
			maxHead = 64
		}
		whole := parseParts(t, d, method, maxHead, data)
		for _, e := range whole.events {
			if strings.HasPrefix(e, "INVALID") || e == "empty Body call" {
				t.Fatalf("parsing %q: %s", data, e)
			}
		}
		a := min(int(split1), len(data))
		b := min(a+int(split2), len(data))
		if got := parseParts(t, d, method, maxHead, data[:a], data[a:b], data[b:]); got.String() != whole.String() {
			t.Fatalf("parsing %q split at %d and %d: got\n%v\nwant (unsplit)\n%v", data, a, b, got, whole)
		}
		if len(data) <= 4096 {
			parts := make([][]byte, len(data))
			for i := range data {
				parts[i] = data[i : i+1]
			}
			if got := parseParts(t, d, method, maxHead, parts...); got.String() != whole.String() {
				t.Fatalf("parsing %q byte at a time: got\n%v\nwant (unsplit)\n%v", data, got, whole)
			}
		}
	})
}

// encodeFields joins names and values with 0xff bytes, the encoding
// FuzzRequestHead decodes.
func encodeFields(fields []HeaderField) string {
	var parts []string
	for _, f := range fields {
		parts = append(parts, f.Name, f.Value)
	}
	return strings.Join(parts, "\xff")
}

func FuzzRequestHead(f *testing.F) {
	for _, tt := range requestTests {
		f.Add(encodeFields(tt.fields), dialectByte(tt.version), tt.endStream)
	}
	for _, tt := range badRequestTests {
		f.Add(encodeFields(tt.fields), dialectByte(tt.version), tt.endStream)
	}
	for _, tt := range requestTestsH2 {
		f.Add(encodeFields(tt.fields), dialectByte(H2), tt.endStream)
	}
	for _, tt := range badRequestTestsH2 {
		f.Add(encodeFields(tt.fields), dialectByte(H2), tt.endStream)
	}
	f.Fuzz(func(t *testing.T, data string, dialect uint8, endStream bool) {
		d := fuzzDialect(dialect)
		var fields []HeaderField
		parts := strings.Split(data, "\xff")
		for i := 0; i+1 < len(parts); i += 2 {
			fields = append(fields, HeaderField{Name: parts[i], Value: parts[i+1]})
		}
		head, req, err := AppendRequestHead([]byte("x"), d, fields, endStream)
		// CheckRequest, what handler mode calls, judges alike.
		creq, cerr := CheckRequest(d, fields, endStream)
		if fmt.Sprint(cerr) != fmt.Sprint(err) || creq != req {
			t.Fatalf("CheckRequest: %+v, %v; AppendRequestHead: %+v, %v", creq, cerr, req, err)
		}
		if err != nil {
			var bre *BadRequestError
			var me *MalformedError
			switch {
			case errors.As(err, &me):
				if d != H2 {
					t.Fatalf("got %v for %v; want a *BadRequestError", err, d)
				}
			case !errors.As(err, &bre) || bre.Status != 400 && (d != H2 || bre.Status != 501):
				t.Fatalf("got error %T %v; want a *BadRequestError with status 400", err, err)
			}
			if string(head) != "x" {
				t.Fatalf("got dst %q after an error; want it unchanged", head)
			}
			return
		}
		checkRequestParses(t, head[1:], req)

		// What the server side accepts, the client side sends again, in
		// a form the server side accepts.
		hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head[1:])))
		if err != nil {
			t.Fatal(err)
		}
		hr.URL.Scheme = req.Scheme
		out, err := AppendRequestFields(nil, d, hr, false)
		if err != nil {
			t.Fatalf("AppendRequestFields of %q: %v", head[1:], err)
		}
		if _, _, err := AppendRequestHead(nil, d, out, endStream); err != nil {
			t.Fatalf("AppendRequestHead of AppendRequestFields %v (from %q): %v", formatFields(out), head[1:], err)
		}
	})
}
