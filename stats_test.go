package spdymux

import (
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/spdymux/spdymux/spdy"
)

// traceLog records the frames a session traces.
type traceLog struct {
	mu     sync.Mutex
	events []FrameEvent
}

func (l *traceLog) trace(e FrameEvent) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

// find waits for a traced frame that match accepts.
func (l *traceLog) find(t *testing.T, what string, match func(FrameEvent) bool) FrameEvent {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		l.mu.Lock()
		i := slices.IndexFunc(l.events, match)
		var e FrameEvent
		if i >= 0 {
			e = l.events[i]
		}
		events := slices.Clone(l.events)
		l.mu.Unlock()
		if i >= 0 {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("no traced %s among %v", what, events)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitStats waits until ok accepts the listener's Stats.
func waitStats(t *testing.T, l *Listener, what string, ok func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		st := l.Stats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats: want %s; got %+v", what, st)
		}
		time.Sleep(time.Millisecond)
	}
}

// The trace carries the error code of every RST_STREAM and GOAWAY, read
// and written; Stats counts sessions by protocol and the limit a client
// ran into.
func TestTraceCodesAndStatsSPDY(t *testing.T) {
	var tl traceLog
	ts := newTestServer(t, ProtoSPDY31, &Config{Trace: tl.trace, MaxDataFrameSize: 16 << 10})
	p := ts.dial(t)
	st := waitStats(t, ts.sl, "one spdy/3.1 session", func(st Stats) bool { return st.ActiveSessionsByProto[ProtoSPDY31] == 1 })
	if st.SessionsByProto[ProtoSPDY31] != 1 || st.SessionsByProto[ProtoH2] != 0 || len(st.SessionsByProto) != len(statProtos) {
		t.Errorf("SessionsByProto = %v; want spdy/3.1 1 and every protocol present", st.SessionsByProto)
	}

	p.send(t, p.syn(1, 0, false, p.request("POST", "/echo")))
	p.send(t, &spdy.RstStreamFrame{Version: spdy.V3, StreamID: 1, Status: spdy.Cancel})
	e := tl.find(t, "RST_STREAM in", func(e FrameEvent) bool { return !e.Out && e.Name == "RST_STREAM" })
	if e.Code != uint32(spdy.Cancel) || e.CodeName() != "CANCEL" {
		t.Errorf("RST_STREAM in: code %d %q; want %d CANCEL", e.Code, e.CodeName(), spdy.Cancel)
	}

	// A DATA frame over MaxDataFrameSize ends the session: GOAWAY
	// PROTOCOL_ERROR, and a hit of the limit.
	var h [8]byte
	binary.BigEndian.PutUint32(h[:4], 3)
	binary.BigEndian.PutUint32(h[4:], 32<<10) // flags 0, length 32 KiB
	if err := p.sendRaw(h[:]); err != nil {
		t.Fatal(err)
	}
	e = tl.find(t, "GOAWAY out", func(e FrameEvent) bool { return e.Out && e.Name == "GOAWAY" })
	if e.Code != uint32(spdy.GoAwayProtocolError) || e.CodeName() != "PROTOCOL_ERROR" {
		t.Errorf("GOAWAY out: code %d %q; want PROTOCOL_ERROR", e.Code, e.CodeName())
	}
	if got := e.String(); !strings.HasSuffix(got, " code=PROTOCOL_ERROR") {
		t.Errorf("String() = %q; want it to end in the code", got)
	}
	st = waitStats(t, ts.sl, "the session gone", func(st Stats) bool { return st.ActiveSessionsByProto[ProtoSPDY31] == 0 })
	if got := st.LimitHits["MaxDataFrameSize"]; got != 1 {
		t.Errorf("LimitHits[MaxDataFrameSize] = %d; want 1 (all: %v)", got, st.LimitHits)
	}
	for _, name := range limitNames {
		if _, ok := st.LimitHits[name]; !ok {
			t.Errorf("LimitHits has no %s", name)
		}
	}
	if _, ok := st.LimitHits["MaxConcurrentStreams"]; !ok {
		t.Error("LimitHits has no MaxConcurrentStreams")
	}
}

func TestTraceCodesAndStatsH2(t *testing.T) {
	var tl traceLog
	ts := newTestServer(t, ProtoH2C, &Config{Trace: tl.trace, MaxSettingsEntries: 2})
	p := ts.dialH2(t)
	p.sync()
	if st := ts.sl.Stats(); st.ActiveSessionsByProto[ProtoH2C] != 1 || st.SessionsByProto[ProtoH2C] != 1 {
		t.Errorf("by protocol: %v active, %v in all; want h2c 1", st.ActiveSessionsByProto, st.SessionsByProto)
	}

	p.request(1, "GET", "/wait", true)
	p.write(func() error { return p.fr.WriteRSTStream(1, http2.ErrCodeCancel) })
	e := tl.find(t, "RST_STREAM in", func(e FrameEvent) bool { return !e.Out && e.Name == "RST_STREAM" })
	if e.Code != uint32(http2.ErrCodeCancel) || e.CodeName() != "CANCEL" {
		t.Errorf("RST_STREAM in: code %d %q; want CANCEL", e.Code, e.CodeName())
	}

	// A SETTINGS frame over MaxSettingsEntries ends the session with
	// GOAWAY ENHANCE_YOUR_CALM.
	p.write(func() error {
		return p.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 14}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 16})
	})
	g := p.expect("GOAWAY", func(f h2frame) bool { return f.typ == http2.FrameGoAway })
	e = tl.find(t, "GOAWAY out", func(e FrameEvent) bool { return e.Out && e.Name == "GOAWAY" })
	if e.Code != uint32(g.code) || g.code != http2.ErrCodeEnhanceYourCalm || e.CodeName() != "ENHANCE_YOUR_CALM" {
		t.Errorf("GOAWAY out: traced code %d %q, sent %v; want ENHANCE_YOUR_CALM", e.Code, e.CodeName(), g.code)
	}
	st := waitStats(t, ts.sl, "the session gone", func(st Stats) bool { return st.ActiveSessionsByProto[ProtoH2C] == 0 })
	if got := st.LimitHits["MaxSettingsEntries"]; got != 1 {
		t.Errorf("LimitHits[MaxSettingsEntries] = %d; want 1 (all: %v)", got, st.LimitHits)
	}
}

// An idle session closed by IdleTimeout counts as a hit of that limit.
func TestStatsIdleTimeout(t *testing.T) {
	ts := newTestServer(t, ProtoSPDY31, &Config{IdleTimeout: 50 * time.Millisecond})
	p := ts.dial(t)
	p.expectGoAway(t, spdy.GoAwayOK)
	st := waitStats(t, ts.sl, "an IdleTimeout hit", func(st Stats) bool { return st.LimitHits["IdleTimeout"] == 1 })
	if st.LimitHits["WriteTimeout"] != 0 || st.LimitHits["MaxQueuedControlFrames"] != 0 {
		t.Errorf("LimitHits %v; want IdleTimeout alone", st.LimitHits)
	}
}
