package spdy

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"errors"
	"hash/adler32"
	"io"
	"reflect"
	"strings"
	"testing"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func spaced(b []byte) string {
	var s strings.Builder
	for i, c := range b {
		if i > 0 {
			s.WriteByte(' ')
		}
		s.WriteString(hex.EncodeToString([]byte{c}))
	}
	return s.String()
}

// fixture is one frame written by a fresh framer: its exact bytes.
type fixture struct {
	name  string
	v     Version
	frame Frame
	wire  string
}

var fixtures = []fixture{
	{"data", V3, &DataFrame{StreamID: 1, Flags: FlagFin, Data: []byte("hi")},
		"00 00 00 01 01 00 00 02 68 69"},
	{"data empty", V2, &DataFrame{StreamID: 0x7fffffff, Flags: FlagFin, Data: []byte{}},
		"7f ff ff ff 01 00 00 00"},
	{"syn_stream", V2, &SynStreamFrame{Version: V2, StreamID: 1, Priority: 2, Flags: FlagFin, Header: []HeaderField{{":method", "GET"}}},
		"80 02 00 01 01 00 00 26 00 00 00 01 00 00 00 00 80 00 78 bb df a2 51 b2 62 60 64 60 b7 ca 4d 2d c9 c8 4f 61 60 76 77 0d 01 00 00 00 ff ff"},
	{"syn_stream", V3, &SynStreamFrame{Version: V3, StreamID: 1, Priority: 2, Flags: FlagFin, Header: []HeaderField{{":method", "GET"}}},
		"80 03 00 01 01 00 00 25 00 00 00 01 00 00 00 00 40 00 78 bb e3 c6 a7 c2 62 60 60 60 64 60 60 60 b7 42 a4 5a 77 d7 10 00 00 00 00 ff ff"},
	{"syn_reply", V2, &SynReplyFrame{Version: V2, StreamID: 1, Header: []HeaderField{{":status", "200"}}},
		"80 02 00 02 00 00 00 1e 00 00 00 01 00 00 78 bb df a2 51 b2 62 60 64 60 b7 82 88 32 30 1b 19 18 00 00 00 00 ff ff"},
	{"syn_reply", V3, &SynReplyFrame{Version: V3, StreamID: 1, Header: []HeaderField{{":status", "200"}}},
		"80 03 00 02 00 00 00 20 00 00 00 01 78 bb e3 c6 a7 c2 62 60 60 60 64 60 60 60 b7 82 27 52 66 23 03 03 00 00 00 00 ff ff"},
	{"headers", V2, &HeadersFrame{Version: V2, StreamID: 3, Flags: FlagFin, Header: []HeaderField{{"a", "b\x00c"}}},
		"80 02 00 08 01 00 00 1c 00 00 00 03 00 00 78 bb df a2 51 b2 62 60 64 60 4c 64 60 4e 62 48 06 00 00 00 ff ff"},
	{"headers", V3, &HeadersFrame{Version: V3, StreamID: 3, Flags: FlagFin, Header: []HeaderField{{"a", "b\x00c"}}},
		"80 03 00 08 01 00 00 1c 00 00 00 03 78 bb e3 c6 a7 c2 62 60 60 60 04 e1 44 50 ea 4b 62 48 06 00 00 00 ff ff"},
	{"rst_stream", V2, &RstStreamFrame{Version: V2, StreamID: 5, Status: Cancel},
		"80 02 00 03 00 00 00 08 00 00 00 05 00 00 00 05"},
	{"rst_stream", V3, &RstStreamFrame{Version: V3, StreamID: 5, Status: FrameTooLarge},
		"80 03 00 03 00 00 00 08 00 00 00 05 00 00 00 0b"},
	{"settings", V2, &SettingsFrame{Version: V2, Flags: FlagClearSettings, Settings: []Setting{{SettingMaxConcurrentStreams, SettingFlagPersistValue, 100}, {0x010203, 0, 7}}},
		"80 02 00 04 01 00 00 14 00 00 00 02 04 00 00 01 00 00 00 64 03 02 01 00 00 00 00 07"},
	{"settings", V3, &SettingsFrame{Version: V3, Flags: FlagClearSettings, Settings: []Setting{{SettingMaxConcurrentStreams, SettingFlagPersistValue, 100}, {0x010203, 0, 7}}},
		"80 03 00 04 01 00 00 14 00 00 00 02 01 00 00 04 00 00 00 64 00 01 02 03 00 00 00 07"},
	{"settings empty", V3, &SettingsFrame{Version: V3, Settings: []Setting{}},
		"80 03 00 04 00 00 00 04 00 00 00 00"},
	{"noop", V2, &NoopFrame{Version: V2},
		"80 02 00 05 00 00 00 00"},
	{"ping", V2, &PingFrame{Version: V2, ID: 7},
		"80 02 00 06 00 00 00 04 00 00 00 07"},
	{"ping", V3, &PingFrame{Version: V3, ID: 0xfffffffe},
		"80 03 00 06 00 00 00 04 ff ff ff fe"},
	{"goaway", V2, &GoAwayFrame{Version: V2, LastGoodStreamID: 3},
		"80 02 00 07 00 00 00 04 00 00 00 03"},
	{"goaway", V3, &GoAwayFrame{Version: V3, LastGoodStreamID: 3, Status: GoAwayProtocolError},
		"80 03 00 07 00 00 00 08 00 00 00 03 00 00 00 01"},
	{"window_update", V3, &WindowUpdateFrame{Version: V3, StreamID: 0, Delta: 0x7fffffff},
		"80 03 00 09 00 00 00 08 00 00 00 00 7f ff ff ff"},
}

// writeFrame writes fr with the matching Write method.
func writeFrame(f *Framer, fr Frame) error {
	switch fr := fr.(type) {
	case *DataFrame:
		return f.WriteData(fr.StreamID, fr.Flags, fr.Data)
	case *SynStreamFrame:
		return f.WriteSynStream(fr)
	case *SynReplyFrame:
		return f.WriteSynReply(fr)
	case *HeadersFrame:
		return f.WriteHeaders(fr)
	case *RstStreamFrame:
		return f.WriteRstStream(fr.StreamID, fr.Status)
	case *SettingsFrame:
		return f.WriteSettings(fr.Flags, fr.Settings...)
	case *NoopFrame:
		return f.WriteNoop()
	case *PingFrame:
		return f.WritePing(fr.ID)
	case *GoAwayFrame:
		return f.WriteGoAway(fr.LastGoodStreamID, fr.Status)
	case *WindowUpdateFrame:
		return f.WriteWindowUpdate(fr.StreamID, fr.Delta)
	}
	return errors.New("no writer for this frame type")
}

func readerFramer(v Version, b []byte) *Framer {
	return NewFramer(io.Discard, bufio.NewReader(bytes.NewReader(b)), v)
}

func TestWriteFixtures(t *testing.T) {
	for _, fx := range fixtures {
		var buf bytes.Buffer
		if err := writeFrame(NewFramer(&buf, nil, fx.v), fx.frame); err != nil {
			t.Errorf("%v %s: write: %v", fx.v, fx.name, err)
			continue
		}
		if got := spaced(buf.Bytes()); got != fx.wire {
			t.Errorf("%v %s: got %s; want %s", fx.v, fx.name, got, fx.wire)
		}
	}
}

func TestReadFixtures(t *testing.T) {
	for _, fx := range fixtures {
		f := readerFramer(fx.v, unhex(fx.wire))
		got, err := f.ReadFrame()
		if err != nil {
			t.Errorf("%v %s: read: %v", fx.v, fx.name, err)
			continue
		}
		if !reflect.DeepEqual(got, fx.frame) {
			t.Errorf("%v %s: got %+v; want %+v", fx.v, fx.name, got, fx.frame)
		}
		if _, err := f.ReadFrame(); err != io.EOF {
			t.Errorf("%v %s: after the frame got %v; want io.EOF", fx.v, fx.name, err)
		}
	}
}

// TestFixtureHeaderBlocks inflates the header blocks of the fixtures with
// compress/zlib, independently of this package's reader.
func TestFixtureHeaderBlocks(t *testing.T) {
	for _, fx := range fixtures {
		var off int
		var hdr []HeaderField
		switch fr := fx.frame.(type) {
		case *SynStreamFrame:
			off, hdr = 18, fr.Header
		case *SynReplyFrame:
			off, hdr = 12, fr.Header
		case *HeadersFrame:
			off, hdr = 12, fr.Header
		default:
			continue
		}
		if fx.v == V2 && off == 12 {
			off = 14
		}
		d, _ := dictionary(fx.v)
		zr, err := zlib.NewReaderDict(bytes.NewReader(unhex(fx.wire)[off:]), d)
		if err != nil {
			t.Fatalf("%v %s: %v", fx.v, fx.name, err)
		}
		got, _ := io.ReadAll(zr)
		var want []byte
		want = appendNVLen(want, nvLenSize(fx.v), len(hdr))
		for _, h := range hdr {
			want = appendNVLen(want, nvLenSize(fx.v), len(h.Name))
			want = append(want, h.Name...)
			want = appendNVLen(want, nvLenSize(fx.v), len(h.Value))
			want = append(want, h.Value...)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%v %s: got block %s; want %s", fx.v, fx.name, spaced(got), spaced(want))
		}
	}
}

func nvLenSize(v Version) int {
	if v == V2 {
		return 2
	}
	return 4
}

func TestRoundTripAll(t *testing.T) {
	for _, v := range []Version{V2, V3} {
		var buf bytes.Buffer
		w := NewFramer(&buf, nil, v)
		var want []Frame
		for range 3 { // several times: the header contexts carry over
			for _, fx := range fixtures {
				if fx.v != v && fx.name != "data" && fx.name != "data empty" {
					continue
				}
				if err := writeFrame(w, fx.frame); err != nil {
					t.Fatalf("%v %s: write: %v", v, fx.name, err)
				}
				want = append(want, fx.frame)
			}
		}
		r := readerFramer(v, buf.Bytes())
		for i, wf := range want {
			got, err := r.ReadFrame()
			if err != nil {
				t.Fatalf("%v frame %d: %v", v, i, err)
			}
			if d, ok := got.(*DataFrame); ok {
				if wd := wf.(*DataFrame); d.StreamID != wd.StreamID || d.Flags != wd.Flags || !bytes.Equal(d.Data, wd.Data) {
					t.Errorf("%v frame %d: got %+v; want %+v", v, i, d, wd)
				}
				continue
			}
			if !reflect.DeepEqual(got, wf) {
				t.Errorf("%v frame %d: got %+v; want %+v", v, i, got, wf)
			}
		}
		if _, err := r.ReadFrame(); err != io.EOF {
			t.Errorf("%v: at the end got %v; want io.EOF", v, err)
		}
	}
}

func TestTruncation(t *testing.T) {
	for _, fx := range fixtures {
		wire := unhex(fx.wire)
		for n := range len(wire) {
			f := readerFramer(fx.v, wire[:n])
			_, err := f.ReadFrame()
			want := io.ErrUnexpectedEOF
			if n == 0 {
				want = io.EOF
			}
			if err != want {
				t.Errorf("%v %s: %d of %d bytes: got %v; want %v", fx.v, fx.name, n, len(wire), err, want)
			}
		}
	}
}

func TestDictionaries(t *testing.T) {
	for _, tc := range []struct {
		v     Version
		size  int
		adler uint32
	}{{V2, 907, 0xdfa251b2}, {V3, 1423, 0xe3c6a7c2}} {
		d, id := dictionary(tc.v)
		if len(d) != tc.size || adler32.Checksum(d) != tc.adler || id != tc.adler {
			t.Errorf("%v: got %d bytes, adler32 %#x, id %#x; want %d bytes, %#x", tc.v, len(d), adler32.Checksum(d), id, tc.size, tc.adler)
		}
	}
	if dictV2[906] != 0 {
		t.Errorf("SPDY/2 dictionary: got last byte %#x; want NUL", dictV2[906])
	}
}

func TestIsControlFrameStart(t *testing.T) {
	for _, tc := range []struct {
		in string
		v  Version
		ok bool
	}{
		{"80 03 00 01", V3, true},
		{"80 02", V2, true},
		{"80 04", 0, false},
		{"81 03", 0, false},
		{"80", 0, false},
		{"47 45", 0, false}, // "GE"
		{"50 52", 0, false}, // "PR", the HTTP/2 preface
	} {
		v, ok := IsControlFrameStart(unhex(tc.in))
		if v != tc.v || ok != tc.ok {
			t.Errorf("IsControlFrameStart(%s): got %v, %v; want %v, %v", tc.in, v, ok, tc.v, tc.ok)
		}
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{TypeSynStream.String(), "SYN_STREAM"},
		{TypeCredential.String(), "CREDENTIAL"},
		{FrameType(11).String(), "UNKNOWN_FRAME_TYPE_11"},
		{FrameType(0).String(), "UNKNOWN_FRAME_TYPE_0"},
		{ProtocolError.String(), "PROTOCOL_ERROR"},
		{FrameTooLarge.String(), "FRAME_TOO_LARGE"},
		{RstStatus(0).String(), "UNKNOWN_RST_STATUS_0"},
		{RstStatus(1 << 31).String(), "UNKNOWN_RST_STATUS_2147483648"},
		{GoAwayInternalError.String(), "INTERNAL_ERROR"},
		{GoAwayStatus(3).String(), "UNKNOWN_GOAWAY_STATUS_3"},
		{SettingInitialWindowSize.String(), "INITIAL_WINDOW_SIZE"},
		{SettingID(9).String(), "UNKNOWN_SETTING_9"},
		{V3.String(), "SPDY/3"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q; want %q", tc.got, tc.want)
		}
	}
}

// TestConcurrentReadWrite runs the read side and the write side of one
// framer at the same time, as a session's read and write loops do.
func TestConcurrentReadWrite(t *testing.T) {
	// The peer's frames, read by f while f writes its own.
	var in bytes.Buffer
	pw := NewFramer(&in, nil, V3)
	for i := range 200 {
		pw.WriteSynStream(&SynStreamFrame{StreamID: StreamID(2*i + 1), Header: []HeaderField{{":path", "/" + strings.Repeat("x", i)}}})
		pw.WriteData(StreamID(2*i+1), FlagFin, make([]byte, 5000))
	}
	pr, pwr := io.Pipe()
	f := NewFramer(pwr, bufio.NewReader(&in), V3)
	done := make(chan error, 1)
	go func() {
		defer pwr.Close()
		for i := range 200 {
			if err := f.WriteSynReply(&SynReplyFrame{StreamID: StreamID(2*i + 1), Header: typicalResponse}); err != nil {
				done <- err
				return
			}
			if err := f.WriteData(StreamID(2*i+1), FlagFin, []byte("ok")); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	readDone := make(chan error, 1)
	go func() {
		r := NewFramer(nil, bufio.NewReader(pr), V3)
		for {
			if _, err := r.ReadFrame(); err != nil {
				if err == io.EOF {
					err = nil
				}
				readDone <- err
				return
			}
		}
	}()
	for i := range 400 {
		if _, err := f.ReadFrame(); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := <-readDone; err != nil {
		t.Fatalf("peer read: %v", err)
	}
}

func TestZeroAllocs(t *testing.T) {
	w := NewFramer(io.Discard, nil, V3)
	data := make([]byte, 4096)
	if n := testing.AllocsPerRun(100, func() { w.WriteData(1, 0, data) }); n != 0 {
		t.Errorf("WriteData: got %v allocs; want 0", n)
	}
	var buf bytes.Buffer
	NewFramer(&buf, nil, V3).WriteData(1, 0, data)
	r := NewFramer(nil, bufio.NewReaderSize(&loopReader{b: buf.Bytes()}, 64<<10), V3)
	r.ReadFrame()
	if n := testing.AllocsPerRun(100, func() { r.ReadFrame() }); n != 0 {
		t.Errorf("ReadFrame of DATA: got %v allocs; want 0", n)
	}
}
