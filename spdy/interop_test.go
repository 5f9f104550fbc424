package spdy

import (
	"bytes"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	theirs "github.com/moby/spdystream/spdy"
)

// The interop tests exchange SPDY/3 frames with moby/spdystream's framer,
// including many header blocks over one compression context each way.

func toHTTP(hdr []HeaderField) http.Header {
	h := http.Header{}
	for _, f := range hdr {
		for _, v := range strings.Split(f.Value, "\x00") {
			h.Add(f.Name, v)
		}
	}
	return h
}

func interopHeader(i int) []HeaderField {
	h := []HeaderField{
		{":status", "200 OK"},
		{":version", "HTTP/1.1"},
		{"content-type", "text/html; charset=utf-8"},
		{"content-length", fmt.Sprint(1000 + i)},
		{"set-cookie", fmt.Sprintf("a=%d\x00b=%d", i, i*i)},
	}
	if i%5 == 0 {
		h = append(h, HeaderField{"x-big", strings.Repeat(fmt.Sprint(i), 2000)})
	}
	return h
}

func TestInteropOursToTheirs(t *testing.T) {
	var buf bytes.Buffer
	w := NewFramer(&buf, nil, V3)
	const n = 300
	for i := range n {
		id := StreamID(2*i + 1)
		if err := w.WriteSynStream(&SynStreamFrame{StreamID: id, Priority: 3, Flags: FlagFin, Header: interopHeader(i)}); err != nil {
			t.Fatal(err)
		}
		w.WriteSynReply(&SynReplyFrame{StreamID: id, Header: interopHeader(i + 1)})
		w.WriteHeaders(&HeadersFrame{StreamID: id, Header: interopHeader(i + 2)})
		w.WriteData(id, FlagFin, []byte(fmt.Sprint("body ", i)))
	}
	w.WriteRstStream(5, Cancel)
	w.WriteSettings(0, Setting{SettingInitialWindowSize, 0, 1 << 20}, Setting{SettingMaxConcurrentStreams, SettingFlagPersistValue, 100})
	w.WritePing(2)
	w.WriteWindowUpdate(0, 12345)
	w.WriteGoAway(7, GoAwayInternalError)

	r, err := theirs.NewFramer(nil, &buf)
	if err != nil {
		t.Fatal(err)
	}
	read := func() theirs.Frame {
		t.Helper()
		fr, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("spdystream ReadFrame: %v", err)
		}
		return fr
	}
	for i := range n {
		id := theirs.StreamId(2*i + 1)
		ss := read().(*theirs.SynStreamFrame)
		if ss.StreamId != id || ss.Priority != 3 || ss.CFHeader.Flags != theirs.ControlFlagFin || !reflect.DeepEqual(ss.Headers, toHTTP(interopHeader(i))) {
			t.Fatalf("SYN_STREAM %d: got %+v", i, ss)
		}
		sr := read().(*theirs.SynReplyFrame)
		if sr.StreamId != id || !reflect.DeepEqual(sr.Headers, toHTTP(interopHeader(i+1))) {
			t.Fatalf("SYN_REPLY %d: got %+v", i, sr)
		}
		hf := read().(*theirs.HeadersFrame)
		if hf.StreamId != id || !reflect.DeepEqual(hf.Headers, toHTTP(interopHeader(i+2))) {
			t.Fatalf("HEADERS %d: got %+v", i, hf)
		}
		df := read().(*theirs.DataFrame)
		if df.StreamId != id || df.Flags != theirs.DataFlagFin || string(df.Data) != fmt.Sprint("body ", i) {
			t.Fatalf("DATA %d: got %+v", i, df)
		}
	}
	if fr := read().(*theirs.RstStreamFrame); fr.StreamId != 5 || fr.Status != theirs.Cancel {
		t.Errorf("RST_STREAM: got %+v", fr)
	}
	want := []theirs.SettingsFlagIdValue{{Id: theirs.SettingsInitialWindowSize, Value: 1 << 20}, {Flag: theirs.FlagSettingsPersistValue, Id: theirs.SettingsMaxConcurrentStreams, Value: 100}}
	if fr := read().(*theirs.SettingsFrame); !reflect.DeepEqual(fr.FlagIdValues, want) {
		t.Errorf("SETTINGS: got %+v; want %+v", fr.FlagIdValues, want)
	}
	if fr := read().(*theirs.PingFrame); fr.Id != 2 {
		t.Errorf("PING: got %+v", fr)
	}
	if fr := read().(*theirs.WindowUpdateFrame); fr.StreamId != 0 || fr.DeltaWindowSize != 12345 {
		t.Errorf("WINDOW_UPDATE: got %+v", fr)
	}
	if fr := read().(*theirs.GoAwayFrame); fr.LastGoodStreamId != 7 || fr.Status != theirs.GoAwayInternalError {
		t.Errorf("GOAWAY: got %+v", fr)
	}
}

func TestInteropTheirsToOurs(t *testing.T) {
	var buf bytes.Buffer
	w, err := theirs.NewFramer(&buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		id := theirs.StreamId(2*i + 1)
		write := func(fr theirs.Frame) {
			t.Helper()
			if err := w.WriteFrame(fr); err != nil {
				t.Fatalf("spdystream WriteFrame: %v", err)
			}
		}
		write(&theirs.SynStreamFrame{StreamId: id, Priority: 5, Headers: toHTTP(interopHeader(i)), CFHeader: theirs.ControlFrameHeader{Flags: theirs.ControlFlagFin}})
		write(&theirs.SynReplyFrame{StreamId: id, Headers: toHTTP(interopHeader(i + 1))})
		write(&theirs.HeadersFrame{StreamId: id, Headers: toHTTP(interopHeader(i + 2))})
		write(&theirs.DataFrame{StreamId: id, Flags: theirs.DataFlagFin, Data: []byte(fmt.Sprint("body ", i))})
	}
	w.WriteFrame(&theirs.RstStreamFrame{StreamId: 5, Status: theirs.FlowControlError})
	w.WriteFrame(&theirs.SettingsFrame{FlagIdValues: []theirs.SettingsFlagIdValue{{Flag: theirs.FlagSettingsPersisted, Id: theirs.SettingsRoundTripTime, Value: 9}}})
	w.WriteFrame(&theirs.PingFrame{Id: 3})
	w.WriteFrame(&theirs.WindowUpdateFrame{StreamId: 1, DeltaWindowSize: 77})
	w.WriteFrame(&theirs.GoAwayFrame{LastGoodStreamId: 9, Status: theirs.GoAwayProtocolError})

	r := readerFramer(V3, buf.Bytes())
	read := func() Frame {
		t.Helper()
		fr, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("ReadFrame: %v", err)
		}
		return fr
	}
	for i := range n {
		id := StreamID(2*i + 1)
		ss := read().(*SynStreamFrame)
		if ss.StreamID != id || ss.Priority != 5 || ss.Flags != FlagFin || !reflect.DeepEqual(toHTTP(ss.Header), toHTTP(interopHeader(i))) {
			t.Fatalf("SYN_STREAM %d: got %+v", i, ss)
		}
		sr := read().(*SynReplyFrame)
		if sr.StreamID != id || !reflect.DeepEqual(toHTTP(sr.Header), toHTTP(interopHeader(i+1))) {
			t.Fatalf("SYN_REPLY %d: got %+v", i, sr)
		}
		hf := read().(*HeadersFrame)
		if hf.StreamID != id || !reflect.DeepEqual(toHTTP(hf.Header), toHTTP(interopHeader(i+2))) {
			t.Fatalf("HEADERS %d: got %+v", i, hf)
		}
		df := read().(*DataFrame)
		if df.StreamID != id || df.Flags != FlagFin || string(df.Data) != fmt.Sprint("body ", i) {
			t.Fatalf("DATA %d: got %+v", i, df)
		}
	}
	for _, want := range []Frame{
		&RstStreamFrame{Version: V3, StreamID: 5, Status: FlowControlError},
		&SettingsFrame{Version: V3, Settings: []Setting{{SettingRoundTripTime, SettingFlagPersisted, 9}}},
		&PingFrame{Version: V3, ID: 3},
		&WindowUpdateFrame{Version: V3, StreamID: 1, Delta: 77},
		&GoAwayFrame{Version: V3, LastGoodStreamID: 9, Status: GoAwayProtocolError},
	} {
		if got := read(); !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v; want %+v", got, want)
		}
	}
}
