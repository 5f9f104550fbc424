package spdy

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func FuzzReadFrame(f *testing.F) {
	for _, fx := range fixtures {
		f.Add(unhex(fx.wire), fx.v == V3)
	}
	// Several frames in a row, sharing a header context.
	for _, v := range []Version{V2, V3} {
		var buf bytes.Buffer
		w := NewFramer(&buf, nil, v)
		for _, fx := range fixtures {
			if fx.v == v {
				writeFrame(w, fx.frame)
			}
		}
		f.Add(buf.Bytes(), v == V3)
	}
	f.Fuzz(func(t *testing.T, data []byte, v3 bool) {
		v := V2
		if v3 {
			v = V3
		}
		r := readerFramer(v, data)
		r.MaxHeaderBytes = 64 << 10
		var out bytes.Buffer
		w := NewFramer(&out, nil, v)
		var frames []Frame
		for {
			fr, err := r.ReadFrame()
			var se *StreamError
			if errors.As(err, &se) {
				continue
			}
			if err != nil {
				break
			}
			switch fr := fr.(type) {
			case *UnknownFrame, *CredentialFrame:
				continue
			case *DataFrame:
				c := *fr
				c.Data = bytes.Clone(fr.Data)
				frames = append(frames, &c)
			default:
				frames = append(frames, fr)
			}
			if err := writeFrame(w, frames[len(frames)-1]); err != nil {
				t.Fatalf("re-encoding %+v: %v", fr, err)
			}
		}
		r2 := readerFramer(v, out.Bytes())
		for i, want := range frames {
			got, err := r2.ReadFrame()
			if err != nil {
				t.Fatalf("frame %d: re-reading %+v: %v", i, want, err)
			}
			if d, ok := got.(*DataFrame); ok {
				wd := want.(*DataFrame)
				if d.StreamID != wd.StreamID || d.Flags != wd.Flags || !bytes.Equal(d.Data, wd.Data) {
					t.Fatalf("frame %d: got %+v; want %+v", i, d, wd)
				}
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("frame %d: got %+v; want %+v", i, got, want)
			}
		}
	})
}

// FuzzHeaderBlock feeds arbitrary name/value data, properly compressed, to
// the header block decoder.
func FuzzHeaderBlock(f *testing.F) {
	for _, fx := range fixtures {
		var hdr []HeaderField
		switch fr := fx.frame.(type) {
		case *SynStreamFrame:
			hdr = fr.Header
		case *SynReplyFrame:
			hdr = fr.Header
		case *HeadersFrame:
			hdr = fr.Header
		default:
			continue
		}
		var pairs []string
		for _, h := range hdr {
			pairs = append(pairs, h.Name, h.Value)
		}
		f.Add(nv(fx.v, pairs...), fx.v == V3)
	}
	f.Add(nv(V3, "a", "b\x00c", "B", "x"), true)
	f.Fuzz(func(t *testing.T, raw []byte, v3 bool) {
		v := V2
		if v3 {
			v = V3
		}
		p := newPeer(v)
		p.headers(1, raw)
		p.headers(3, raw)
		r := p.framer()
		r.MaxHeaderBytes = 64 << 10
		fr, err := r.ReadFrame()
		if err != nil {
			var se *StreamError
			var ss *SessionError
			if !errors.As(err, &se) && !errors.As(err, &ss) {
				t.Fatalf("got error %v; want a stream or session error", err)
			}
			return
		}
		hdr := fr.(*HeadersFrame).Header
		if err := checkHeader(1, hdr); err != nil {
			t.Fatalf("accepted a block that fails the checks: %v", err)
		}
		var pairs []string
		for _, h := range hdr {
			pairs = append(pairs, h.Name, h.Value)
		}
		// Inflated bytes after the name/value data are not detected in
		// the block itself, so the re-encoding is a prefix of raw.
		if re := nv(v, pairs...); !bytes.HasPrefix(raw, re) {
			t.Fatalf("re-encoded block %q is not a prefix of %q", re, raw)
		}
	})
}

// FuzzEncoder checks that compress/zlib inflates what the encoder writes.
func FuzzEncoder(f *testing.F) {
	f.Add([]byte(":status200 OK:versionHTTP/1.1"), uint16(10), true)
	f.Add(bytes.Repeat([]byte("abc"), 5000), uint16(3000), false)
	f.Add([]byte{}, uint16(0), true)
	f.Fuzz(func(t *testing.T, data []byte, split uint16, v3 bool) {
		v := V2
		if v3 {
			v = V3
		}
		e := newEncoder(v)
		s := &zlibSink{v: v}
		size := int(split)%4096 + 1
		var out []byte
		// Twice, so the second round matches against the first.
		for round := range 2 {
			for b := data; ; {
				n := min(size, len(b))
				out = e.appendBlock(out[:0], b[:n])
				if got := s.inflate(t, out, n); !bytes.Equal(got, b[:n]) {
					t.Fatalf("round %d: inflated %q; want %q", round, got, b[:n])
				}
				b = b[n:]
				if len(b) == 0 {
					break
				}
			}
		}
	})
}
