package httpconv

import (
	"errors"
	"strings"
	"testing"
)

func FuzzResponseParser(f *testing.F) {
	for _, tt := range responseTests {
		f.Add([]byte(tt.input), uint16(len(tt.input)/3), uint16(len(tt.input)/2), tt.version == 2, tt.method == "HEAD", tt.maxHead > 0)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n"), uint16(50), uint16(60), false, false, false)
	f.Fuzz(func(t *testing.T, data []byte, split1, split2 uint16, v2, head, smallHead bool) {
		version, method, maxHead := 3, "GET", 0
		if v2 {
			version = 2
		}
		if head {
			method = "HEAD"
		}
		if smallHead {
			maxHead = 64
		}
		whole := parseParts(t, version, method, maxHead, data)
		for _, e := range whole.events {
			if strings.HasPrefix(e, "INVALID") || e == "empty Body call" {
				t.Fatalf("parsing %q: %s", data, e)
			}
		}
		a := min(int(split1), len(data))
		b := min(a+int(split2), len(data))
		if got := parseParts(t, version, method, maxHead, data[:a], data[a:b], data[b:]); got.String() != whole.String() {
			t.Fatalf("parsing %q split at %d and %d: got\n%v\nwant (unsplit)\n%v", data, a, b, got, whole)
		}
		if len(data) <= 4096 {
			parts := make([][]byte, len(data))
			for i := range data {
				parts[i] = data[i : i+1]
			}
			if got := parseParts(t, version, method, maxHead, parts...); got.String() != whole.String() {
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
		f.Add(encodeFields(tt.fields), tt.version == 2, tt.endStream)
	}
	for _, tt := range badRequestTests {
		f.Add(encodeFields(tt.fields), tt.version == 2, tt.endStream)
	}
	f.Fuzz(func(t *testing.T, data string, v2, endStream bool) {
		version := 3
		if v2 {
			version = 2
		}
		var fields []HeaderField
		parts := strings.Split(data, "\xff")
		for i := 0; i+1 < len(parts); i += 2 {
			fields = append(fields, HeaderField{Name: parts[i], Value: parts[i+1]})
		}
		head, req, err := AppendRequestHead([]byte("x"), version, fields, endStream)
		if err != nil {
			var bre *BadRequestError
			if !errors.As(err, &bre) || bre.Status != 400 {
				t.Fatalf("got error %T %v; want a *BadRequestError with status 400", err, err)
			}
			if string(head) != "x" {
				t.Fatalf("got dst %q after an error; want it unchanged", head)
			}
			return
		}
		checkRequestParses(t, head[1:], req)
	})
}
