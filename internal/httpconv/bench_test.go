package httpconv

import (
	"bytes"
	"testing"
)

// benchRequestFields is a typical browser request.
func benchRequestFields() []HeaderField {
	return fieldList(
		":method", "GET", ":path", "/static/app.js?v=123", ":version", "HTTP/1.1", ":host", "www.example.com", ":scheme", "https",
		"accept", "*/*", "accept-encoding", "gzip, deflate, sdch", "accept-language", "en-US,en;q=0.8",
		"cookie", "session=abcdef0123456789\x00theme=dark", "referer", "https://www.example.com/",
		"user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/35.0 Safari/537.36",
	)
}

func BenchmarkAppendRequestHead(b *testing.B) {
	fields := benchRequestFields()
	dst, _, err := AppendRequestHead(nil, 3, fields, true)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(dst)))
	b.ReportAllocs()
	for b.Loop() {
		dst, _, _ = AppendRequestHead(dst[:0], 3, fields, true)
	}
}

func BenchmarkParseResponse(b *testing.B) {
	in := []byte("HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nServer: Apache\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!")
	var p ResponseParser
	var h discard
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		p.Reset(3, "GET", &h)
		if _, err := p.Write(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseChunkedBody parses 1 MiB of a chunked body, in chunks of
// varying size, written 16 KiB at a time.
func BenchmarkParseChunkedBody(b *testing.B) {
	const size = 1 << 20
	var body bytes.Buffer
	data := bytes.Repeat([]byte("x"), 10000)
	for n, i := 0, 0; n < size; i++ {
		c := min(1000+i*997%9000, size-n)
		body.Write(AppendChunkHeader(nil, c))
		body.Write(data[:c])
		body.WriteString("\r\n")
		n += c
	}
	encoded := body.Bytes()
	var p ResponseParser
	var h discard
	p.Reset(3, "GET", &h)
	if _, err := p.Write([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		for rest := encoded; len(rest) > 0; {
			w := rest[:min(16<<10, len(rest))]
			rest = rest[len(w):]
			if _, err := p.Write(w); err != nil {
				b.Fatal(err)
			}
		}
	}
	if h.n < size {
		b.Fatalf("got %d body bytes; want at least %d", h.n, size)
	}
}

// benchRequestFieldsH2 is a typical browser request over HTTP/2, its
// cookie split into crumbs (RFC 9113 section 8.2.3).
func benchRequestFieldsH2() []HeaderField {
	return fieldList(
		":method", "GET", ":scheme", "https", ":authority", "www.example.com", ":path", "/static/app.js?v=123",
		"accept", "*/*", "accept-encoding", "gzip, deflate, br", "accept-language", "en-US,en;q=0.8",
		"cookie", "session=abcdef0123456789", "cookie", "theme=dark", "referer", "https://www.example.com/",
		"user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
	)
}

func BenchmarkAppendRequestHeadH2(b *testing.B) {
	fields := benchRequestFieldsH2()
	dst, _, err := AppendRequestHead(nil, H2, fields, true)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(dst)))
	b.ReportAllocs()
	for b.Loop() {
		dst, _, _ = AppendRequestHead(dst[:0], H2, fields, true)
	}
}

func BenchmarkParseResponseH2(b *testing.B) {
	in := []byte("HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nServer: Apache\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 13\r\n\r\nHello, world!")
	var p ResponseParser
	var h discard
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		p.Reset(H2, "GET", &h)
		if _, err := p.Write(in); err != nil {
			b.Fatal(err)
		}
	}
}
