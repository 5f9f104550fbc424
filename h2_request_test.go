package spdymux

import (
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// A response complete before the request body: the server asks the
// client to stop sending with RST_STREAM NO_ERROR after END_STREAM (RFC
// 9113 §8.1), so the stream does not stay half-closed.
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
