package spdy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// peer writes raw frames, compressing header blocks it builds itself, so
// that tests can send what the Write methods refuse to.
type peer struct {
	v   Version
	enc *encoder
	buf bytes.Buffer
}

func newPeer(v Version) *peer { return &peer{v: v, enc: newEncoder(v)} }

// nv builds a raw name/value block from pairs.
func nv(v Version, pairs ...string) []byte {
	ls := nvLenSize(v)
	b := appendNVLen(nil, ls, len(pairs)/2)
	for _, s := range pairs {
		b = appendNVLen(b, ls, len(s))
		b = append(b, s...)
	}
	return b
}

func (p *peer) control(t FrameType, flags Flags, payload []byte) {
	h := []byte{0x80, byte(p.v), byte(t >> 8), byte(t), byte(flags), 0, 0, 0}
	putLength((*[8]byte)(h), len(payload))
	p.buf.Write(h)
	p.buf.Write(payload)
}

// headers sends a HEADERS frame whose block is raw, compressed.
func (p *peer) headers(id StreamID, raw []byte) {
	b := binary.BigEndian.AppendUint32(nil, uint32(id))
	if p.v == V2 {
		b = append(b, 0, 0)
	}
	p.control(TypeHeaders, 0, p.enc.appendBlock(b, raw))
}

// headersCompressed sends a HEADERS frame with the given block as is.
func (p *peer) headersCompressed(id StreamID, block []byte) {
	b := binary.BigEndian.AppendUint32(nil, uint32(id))
	if p.v == V2 {
		b = append(b, 0, 0)
	}
	p.control(TypeHeaders, 0, append(b, block...))
}

func (p *peer) framer() *Framer { return readerFramer(p.v, p.buf.Bytes()) }

func wantStreamError(t *testing.T, err error, id StreamID, s RstStatus) {
	t.Helper()
	var se *StreamError
	if !errors.As(err, &se) || se.StreamID != id || se.Status != s {
		t.Fatalf("got error %v; want a stream error %v on stream %d", err, s, id)
	}
	if !strings.HasPrefix(err.Error(), "spdy: ") {
		t.Errorf("got message %q; want the prefix \"spdy: \"", err)
	}
}

func wantSessionError(t *testing.T, err error) {
	t.Helper()
	var se *SessionError
	if !errors.As(err, &se) || se.Status != GoAwayProtocolError {
		t.Fatalf("got error %v; want a session error PROTOCOL_ERROR", err)
	}
	if !strings.HasPrefix(err.Error(), "spdy: ") || se.Unwrap() == nil {
		t.Errorf("got %q; want the prefix \"spdy: \" and a wrapped cause", err)
	}
}

func TestHeaderStreamErrors(t *testing.T) {
	for _, v := range []Version{V2, V3} {
		for _, tc := range []struct {
			name  string
			pairs []string
		}{
			{"uppercase", []string{"Host", "x"}},
			{"empty name", []string{"", "x"}},
			{"duplicate", []string{"a", "1", "b", "2", "a", "3"}},
			{"leading NUL", []string{"a", "\x00b"}},
			{"trailing NUL", []string{"a", "b\x00"}},
			{"NUL NUL", []string{"a", "b\x00\x00c"}},
			{"too many", []string{"a", "1", "b", "2", "c", "3", "d", "4"}},
		} {
			p := newPeer(v)
			p.headers(5, nv(v, tc.pairs...))
			p.headers(7, nv(v, "ok", "yes"))
			f := p.framer()
			f.MaxHeaderFields = 3
			_, err := f.ReadFrame()
			wantStreamError(t, err, 5, ProtocolError)
			// The block was inflated: the next one still decodes.
			fr, err := f.ReadFrame()
			want := &HeadersFrame{Version: v, StreamID: 7, Header: []HeaderField{{"ok", "yes"}}}
			if err != nil || !reflect.DeepEqual(fr, want) {
				t.Errorf("%v %s: next frame: got %+v, %v; want %+v", v, tc.name, fr, err, want)
			}
		}
	}
}

func TestDuplicateNamesManyFields(t *testing.T) {
	var pairs []string
	for i := range 40 {
		pairs = append(pairs, strings.Repeat("x", i+1), "v")
	}
	p := newPeer(V3)
	p.headers(1, nv(V3, pairs...))
	p.headers(3, nv(V3, append(pairs, "xx", "again")...))
	f := p.framer()
	if fr, err := f.ReadFrame(); err != nil || len(fr.(*HeadersFrame).Header) != 40 {
		t.Fatalf("got %v; want 40 fields", err)
	}
	_, err := f.ReadFrame()
	wantStreamError(t, err, 3, ProtocolError)
}

func TestHeaderSessionErrors(t *testing.T) {
	big := strings.Repeat("v", 3000)
	for _, v := range []Version{V2, V3} {
		for _, tc := range []struct {
			name string
			send func(p *peer)
		}{
			{"over MaxHeaderBytes", func(p *peer) { p.headers(1, nv(v, "a", big, "b", big)) }},
			{"count over budget", func(p *peer) { p.headers(1, []byte{0xff, 0xff, 0xff, 0xff}[:nvLenSize(v)]) }},
			{"block ends early", func(p *peer) { p.headers(1, nv(v, "a", "b")[:len(nv(v, "a", "b"))-1]) }},
			{"count without pairs", func(p *peer) { p.headers(1, appendNVLen(nil, nvLenSize(v), 2)) }},
			{"empty block", func(p *peer) { p.headersCompressed(1, nil) }},
			{"not zlib", func(p *peer) { p.headersCompressed(1, []byte("hello, world")) }},
			{"wrong dictionary", func(p *peer) { p.headersCompressed(1, unhex("78 bb 00 00 00 01 62 60 60 60 00 00 00 00 ff ff")) }},
			{"garbage deflate", func(p *peer) { p.headersCompressed(1, append(p.enc.appendBlock(nil, nil)[:6], 0xff, 0xff, 0xff, 0xff)) }},
		} {
			p := newPeer(v)
			tc.send(p)
			p.headers(3, nv(v, "a", "b"))
			f := p.framer()
			f.MaxHeaderBytes = 5000
			_, err := f.ReadFrame()
			t.Run(v.String()+" "+tc.name, func(t *testing.T) { wantSessionError(t, err) })
			if _, err2 := f.ReadFrame(); err2 != err {
				t.Errorf("%v %s: after a session error got %v; want it again", v, tc.name, err2)
			}
		}
	}
}

func TestControlFrameErrors(t *testing.T) {
	id5 := unhex("00 00 00 05")
	for _, tc := range []struct {
		name    string
		v       Version
		t       FrameType
		payload []byte
	}{
		{"rst_stream 7", V3, TypeRstStream, make([]byte, 7)},
		{"rst_stream 9", V2, TypeRstStream, make([]byte, 9)},
		{"ping 5", V3, TypePing, make([]byte, 5)},
		{"goaway v3 4", V3, TypeGoAway, make([]byte, 4)},
		{"goaway v2 12", V2, TypeGoAway, make([]byte, 12)},
		{"window_update 4", V3, TypeWindowUpdate, make([]byte, 4)},
		{"window_update 0 session", V3, TypeWindowUpdate, make([]byte, 8)},
		{"settings short", V3, TypeSettings, make([]byte, 3)},
		{"settings count", V3, TypeSettings, unhex("00 00 00 02 00 00 00 01 00 00 00 01")},
		{"settings huge count", V2, TypeSettings, unhex("ff ff ff ff 00 00 00 01 00 00 00 01")},
		{"noop with payload", V2, TypeNoop, make([]byte, 1)},
		{"syn_stream 9", V3, TypeSynStream, make([]byte, 9)},
		{"syn_reply v2 5", V2, TypeSynReply, id5[:4]},
		{"headers v3 3", V3, TypeHeaders, id5[:3]},
	} {
		p := newPeer(tc.v)
		p.control(tc.t, 0, tc.payload)
		_, err := p.framer().ReadFrame()
		t.Run(tc.name, func(t *testing.T) { wantSessionError(t, err) })
	}
}

func TestWindowUpdateDelta(t *testing.T) {
	p := newPeer(V3)
	p.control(TypeWindowUpdate, 0, unhex("00 00 00 05 00 00 00 00"))
	p.control(TypeWindowUpdate, 0, unhex("80 00 00 05 80 00 00 10"))
	f := p.framer()
	_, err := f.ReadFrame()
	wantStreamError(t, err, 5, ProtocolError)
	fr, err := f.ReadFrame()
	want := &WindowUpdateFrame{Version: V3, StreamID: 5, Delta: 16}
	if err != nil || !reflect.DeepEqual(fr, want) {
		t.Errorf("got %+v, %v; want %+v", fr, err, want)
	}
}

func TestVersionMismatch(t *testing.T) {
	p := newPeer(V2)
	p.control(TypePing, 0, make([]byte, 4))
	f := readerFramer(V3, p.buf.Bytes())
	_, err := f.ReadFrame()
	wantSessionError(t, err)
}

func TestSettingsDuplicates(t *testing.T) {
	for _, n := range []int{3, 40} {
		for _, v := range []Version{V2, V3} {
			var s []Setting
			for i := range n {
				s = append(s, Setting{ID: SettingID(i%5 + 1), Value: uint32(i)})
			}
			var buf bytes.Buffer
			NewFramer(&buf, nil, v).WriteSettings(0, s...)
			fr, err := readerFramer(v, buf.Bytes()).ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			got := fr.(*SettingsFrame).Settings
			want := s[:min(n, 5)]
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%v %d entries: got %v; want %v", v, n, got, want)
			}
		}
	}
}

func TestUnknownFrames(t *testing.T) {
	for _, tc := range []struct {
		v Version
		t FrameType
	}{{V2, TypeWindowUpdate}, {V2, TypeCredential}, {V3, TypeNoop}, {V3, 100}, {V2, 0}} {
		p := newPeer(tc.v)
		p.control(tc.t, 0x42, []byte("abc"))
		p.control(TypePing, 0, unhex("00 00 00 01"))
		f := p.framer()
		fr, err := f.ReadFrame()
		want := &UnknownFrame{Version: tc.v, Type: tc.t, Flags: 0x42, Length: 3}
		if err != nil || !reflect.DeepEqual(fr, want) {
			t.Errorf("got %+v, %v; want %+v", fr, err, want)
		}
		if fr, err := f.ReadFrame(); err != nil || fr.(*PingFrame).ID != 1 {
			t.Errorf("after an unknown frame: got %+v, %v; want PING 1", fr, err)
		}
	}
	p := newPeer(V3)
	p.control(TypeCredential, 0, make([]byte, 100))
	if fr, err := p.framer().ReadFrame(); err != nil || !reflect.DeepEqual(fr, &CredentialFrame{Version: V3}) {
		t.Errorf("CREDENTIAL: got %+v, %v", fr, err)
	}
}

func TestSizeLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setMax func(f *Framer)
		size   int
		data   bool
		ok     bool
	}{
		{"control at default", func(*Framer) {}, 1 << 16, false, true},
		{"control over default", func(*Framer) {}, 1<<16 + 1, false, false},
		{"control minimum raised", func(f *Framer) { f.MaxControlFrameSize = 100 }, 8192, false, true},
		{"control over minimum", func(f *Framer) { f.MaxControlFrameSize = 100 }, 8193, false, false},
		{"data at limit", func(f *Framer) { f.MaxDataFrameSize = 10000 }, 10000, true, true},
		{"data over limit", func(f *Framer) { f.MaxDataFrameSize = 10000 }, 10001, true, false},
		{"data over default", func(*Framer) {}, 1<<20 + 1, true, false},
	} {
		p := newPeer(V3)
		if tc.data {
			NewFramer(&p.buf, nil, V3).WriteData(1, 0, make([]byte, tc.size))
		} else {
			p.control(100, 0, make([]byte, tc.size))
		}
		f := p.framer()
		tc.setMax(f)
		_, err := f.ReadFrame()
		if tc.ok && err != nil {
			t.Errorf("%s: got %v; want no error", tc.name, err)
		}
		if !tc.ok {
			t.Run(tc.name, func(t *testing.T) { wantSessionError(t, err) })
		}
	}
}

func TestWriteErrors(t *testing.T) {
	var buf bytes.Buffer
	w2 := NewFramer(&buf, nil, V2)
	if err := w2.WriteWindowUpdate(1, 1); err != ErrWrongVersion {
		t.Errorf("WINDOW_UPDATE on SPDY/2: got %v; want ErrWrongVersion", err)
	}
	if err := NewFramer(&buf, nil, V3).WriteNoop(); err != ErrWrongVersion {
		t.Errorf("NOOP on SPDY/3: got %v; want ErrWrongVersion", err)
	}
	if err := w2.WriteData(1<<31, 0, nil); err != ErrBadStreamID {
		t.Errorf("stream id 2^31: got %v; want ErrBadStreamID", err)
	}
	if err := w2.WriteData(1, 0, make([]byte, 1<<24)); err != ErrFrameTooLarge {
		t.Errorf("DATA of 16 MiB: got %v; want ErrFrameTooLarge", err)
	}
	// A refused header block leaves the deflate context as it was.
	hdr := []HeaderField{{"a", strings.Repeat("x", 1<<16)}}
	if err := w2.WriteHeaders(&HeadersFrame{StreamID: 1, Header: hdr}); err != ErrHeaderTooLarge {
		t.Errorf("SPDY/2 value of 64 KiB: got %v; want ErrHeaderTooLarge", err)
	}
	want := &HeadersFrame{Version: V2, StreamID: 1, Header: []HeaderField{{"a", "b"}}}
	w2.WriteHeaders(want)
	w2.WriteHeaders(want)
	r := readerFramer(V2, buf.Bytes())
	for range 2 {
		if fr, err := r.ReadFrame(); err != nil || !reflect.DeepEqual(fr, want) {
			t.Errorf("got %+v, %v; want %+v", fr, err, want)
		}
	}
	// A failed Write sticks.
	fw := NewFramer(failWriter{}, nil, V3)
	if err := fw.WritePing(1); err != io.ErrClosedPipe {
		t.Errorf("got %v; want io.ErrClosedPipe", err)
	}
	if err := fw.WriteData(1, 0, nil); err != io.ErrClosedPipe {
		t.Errorf("after a failed write got %v; want io.ErrClosedPipe", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

// SPDY/2 GOAWAY has no status, but node's spdy-transport sends one: the
// 8-byte form is read, its status ignored.
func TestGoAwayV2WithStatus(t *testing.T) {
	var b bytes.Buffer
	b.Write([]byte{0x80, 0x02, 0x00, 0x07, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x01})
	f, err := NewFramer(io.Discard, &b, V2).ReadFrame()
	if err != nil {
		t.Fatalf("got error %v; want the frame", err)
	}
	if g, ok := f.(*GoAwayFrame); !ok || g.LastGoodStreamID != 5 || g.Status != 0 {
		t.Errorf("got %+v; want GOAWAY last-good 5, status 0", f)
	}
}
