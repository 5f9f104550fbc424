package spdymux

import (
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// A response complete before the request body: the server asks the
// client to stop sending with RST_STREAM NO_ERROR after END_STREAM (RFC
// 9113 §8.1), so the stream does not stay half-closed: here, where the
// client sends nothing more, after stopRequestWait.
func TestH2ResetNoErrorAfterResponse(t *testing.T) {
	ts := newTestServer(t, ProtoH2C, nil)
	p := ts.dialH2(t)
	p.request(1, "POST", "/noread", false, hpack.HeaderField{Name: "content-length", Value: "100"})
	p.write(func() error { return p.fr.WriteData(1, false, make([]byte, 10)) })
	head, body, _ := p.response(1)
	if head.field(":status") != "200" || string(body) != "ok\n" {
		t.Fatalf("POST /noread: %v %q", head.fields, body)
	}
	f := p.expect("RST_STREAM", func(f h2frame) bool { return f.id == 1 })
	if f.typ != http2.FrameRSTStream || f.code != http2.ErrCodeNo {
		t.Errorf("after the response: %v; want RST_STREAM NO_ERROR", f)
	}
	// The rest of the body, already on its way, is ignored.
	p.write(func() error { return p.fr.WriteData(1, true, make([]byte, 90)) })
	p.sync()
	for _, f := range p.pending {
		if f.id == 1 {
			t.Errorf("frame for the reset stream: %v", f)
		}
	}
	ts.waitNoStreams(t)
}

// A body that breaks its content-length is malformed (RFC 9113 §8.1.1)
// even when the handler answered before it came: the DATA frame that
// follows a complete response is checked before the client is asked to
// stop (h2spec 8.1.2.6, where that order is a race).
func TestH2ContentLengthAfterEarlyResponse(t *testing.T) {
	ts := newTestServer(t, ProtoH2C, nil)
	for _, tc := range []struct {
		name   string
		length string
		data   int
		end    bool
		want   http2.ErrCode
		reset  bool
	}{
		{"over", "1", 4, false, http2.ErrCodeProtocol, true},
		{"over at the end", "1", 4, true, http2.ErrCodeProtocol, true},
		{"short at the end", "10", 4, true, http2.ErrCodeProtocol, true},
		{"within", "10", 4, false, http2.ErrCodeNo, true},
		{"whole", "10", 10, true, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ts.dialH2(t)
			p.request(1, "POST", "/noread", false, hpack.HeaderField{Name: "content-length", Value: tc.length})
			head, body, _ := p.response(1)
			if head.field(":status") != "200" || string(body) != "ok\n" {
				t.Fatalf("POST /noread: %v %q", head.fields, body)
			}
			p.write(func() error { return p.fr.WriteData(1, tc.end, make([]byte, tc.data)) })
			if !tc.reset {
				p.sync()
				for _, f := range p.pending {
					if f.id == 1 {
						t.Errorf("frame for a stream that ended well: %v", f)
					}
				}
				ts.waitNoStreams(t)
				return
			}
			f := p.expect("RST_STREAM", func(f h2frame) bool { return f.id == 1 })
			if f.typ != http2.FrameRSTStream || f.code != tc.want {
				t.Errorf("after DATA: %v; want RST_STREAM %v", f, tc.want)
			}
			ts.waitNoStreams(t)
		})
	}
}
