package spdymux

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spdymux/spdymux/spdy"
)

// Each bound on push has a test here that drives it (docs/push.md).

func resources(prefix string, n int) string {
	var urls []string
	for i := range n {
		urls = append(urls, fmt.Sprintf(`"%s%d"`, prefix, i))
	}
	return strings.Join(urls, ", ")
}

// MaxPushesPerStream: a page that asks for more pushes gets that many; the
// rest of its header is not read (mod_spdy stops at the first refusal).
func TestPushBoundPerStream(t *testing.T) {
	forEachBubble(t, pushVersions, func(t *testing.T, proto string) {
		ts := newPushServer(t, proto, &Config{MaxPushesPerStream: 3})
		p := ts.dial(t)
		p.get(t, 1, pageURL([]string{resources("/res/", 5)}, []string{"</res/link>; rel=preload"}))
		_, pushes := p.readPage(t, 1)
		if len(pushes) != 3 || pushes["/res/0"] == nil || pushes["/res/2"] == nil {
			t.Errorf("pushes %v; want /res/0, /res/1, /res/2", keys(pushes))
		}
		if got := ts.sl.Stats().LimitHits["MaxPushesPerStream"]; got != 1 {
			t.Errorf("LimitHits[MaxPushesPerStream] %d; want 1", got)
		}
		// The next page has a budget of its own.
		p.get(t, 3, pageURL([]string{resources("/res/x", 2)}, nil))
		if _, pushes := p.readPage(t, 3); len(pushes) != 2 {
			t.Errorf("second page: pushes %v; want 2", keys(pushes))
		}
	})
}

// MaxPushesPerSession: pushes over a session's life.
func TestPushBoundPerSession(t *testing.T) {
	forEachBubble(t, pushVersions, func(t *testing.T, proto string) {
		ts := newPushServer(t, proto, &Config{MaxPushesPerSession: 3})
		p := ts.dial(t)
		p.get(t, 1, pageURL([]string{resources("/res/a", 2)}, nil))
		if _, pushes := p.readPage(t, 1); len(pushes) != 2 {
			t.Errorf("first page: pushes %v; want 2", keys(pushes))
		}
		p.get(t, 3, pageURL([]string{resources("/res/b", 2)}, nil))
		if _, pushes := p.readPage(t, 3); len(pushes) != 1 {
			t.Errorf("second page: pushes %v; want 1 (3 in all)", keys(pushes))
		}
		p.get(t, 5, pageURL([]string{resources("/res/c", 2)}, nil))
		if _, pushes := p.readPage(t, 5); len(pushes) != 0 {
			t.Errorf("third page: pushes %v; want none", keys(pushes))
		}
		if got := ts.sl.Stats().LimitHits["MaxPushesPerSession"]; got != 2 {
			t.Errorf("LimitHits[MaxPushesPerSession] %d; want 2", got)
		}
		// A new session starts afresh.
		p2 := ts.dial(t)
		p2.get(t, 1, pageURL([]string{resources("/res/a", 2)}, nil))
		if _, pushes := p2.readPage(t, 1); len(pushes) != 2 {
			t.Errorf("new session: pushes %v; want 2", keys(pushes))
		}
	})
}

// A URL is pushed once per session (mod_http2's push diary), whichever
// header names it, however often.
func TestPushOncePerSession(t *testing.T) {
	forEachBubble(t, pushVersions, func(t *testing.T, proto string) {
		ts := newPushServer(t, proto, nil)
		p := ts.dial(t)
		p.get(t, 1, pageURL([]string{`"/res/a", "/res/a", "https://example.com:443/res/a"`}, []string{"</res/a>; rel=preload"}))
		if _, pushes := p.readPage(t, 1); len(pushes) != 1 || pushes["/res/a"] == nil {
			t.Errorf("first page: pushes %v; want /res/a once", keys(pushes))
		}
		p.get(t, 3, pageURL([]string{`"/res/a", "/res/b"`}, nil))
		if _, pushes := p.readPage(t, 3); len(pushes) != 1 || pushes["/res/b"] == nil {
			t.Errorf("second page: pushes %v; want /res/b alone", keys(pushes))
		}
	})
}

// The client's MAX_CONCURRENT_STREAMS bounds the pushes open at once
// (mod_spdy's max_concurrent_pushes); the pushes count against no limit
// of the client's own streams.
func TestPushBoundConcurrent(t *testing.T) {
	forEachBubble(t, pushVersions, func(t *testing.T, proto string) {
		ts := newPushServer(t, proto, &Config{MaxConcurrentStreams: 3})
		p := ts.dial(t)
		p.send(t, &spdy.SettingsFrame{Settings: []spdy.Setting{{ID: spdy.SettingMaxConcurrentStreams, Value: 2}}})
		p.get(t, 1, pageURL([]string{`"/block/a", "/block/b", "/block/c", "/res/d"`}, nil))
		var pushed []spdy.StreamID
		for {
			f := p.expect(t, "the page's FIN", func(f spdy.Frame) bool {
				return streamOf(f) == 1 || isType[*spdy.SynStreamFrame](f)
			})
			if s, ok := f.(*spdy.SynStreamFrame); ok {
				pushed = append(pushed, s.StreamID)
				continue
			}
			if d, ok := f.(*spdy.DataFrame); ok && d.Flags&spdy.FlagFin != 0 {
				break
			}
		}
		if len(pushed) != 2 {
			t.Fatalf("%d pushes opened; want 2, the client's MAX_CONCURRENT_STREAMS", len(pushed))
		}
		// Two pushes open, a third stream of the client's own is taken (the
		// session's MaxConcurrentStreams is 3), and its page pushes nothing.
		p.get(t, 3, pageURL([]string{`"/res/e"`}, nil))
		if _, pushes := p.readPage(t, 3); len(pushes) != 0 {
			t.Errorf("page with two pushes open: pushes %v; want none", keys(pushes))
		}
		for _, id := range pushed {
			p.send(t, &spdy.RstStreamFrame{StreamID: id, Status: spdy.Cancel})
			ts.waitEvent(t, "cancelled", uint32(id))
		}
		p.get(t, 5, pageURL([]string{`"/res/e"`}, nil))
		if _, pushes := p.readPage(t, 5); len(pushes) != 1 {
			t.Errorf("page once the pushes ended: pushes %v; want /res/e", keys(pushes))
		}
	})
}

// MaxPushBytes: pushed DATA written and not credited back by the client
// stays within the bound; what the client asked for itself is not held
// back, and the pushes go on as the client credits them.
func TestPushBoundBytesInFlight(t *testing.T) {
	bubble(t, func(t *testing.T) {
		const budget = 16 << 10
		ts := newPushServer(t, ProtoSPDY31, &Config{MaxPushBytes: budget})
		p := ts.dial(t)
		p.setAutoCredit(false)
		p.get(t, 1, pageURL([]string{`"/big/40000", "/big/40001"`}, nil, "n=30000"))
		var pageBytes, pushed int
		pushIDs := map[spdy.StreamID]bool{}
		for pageDone := false; !pageDone; {
			f := p.expect(t, "the page", func(f spdy.Frame) bool { return true })
			switch f := f.(type) {
			case *spdy.SynStreamFrame:
				pushIDs[f.StreamID] = true
			case *spdy.DataFrame:
				if f.StreamID == 1 {
					pageBytes += len(f.Data)
					pageDone = f.Flags&spdy.FlagFin != 0
				} else {
					pushed += len(f.Data)
				}
			}
		}
		// The pushes' handlers write as the writer takes their bytes: wait
		// for the budget to fill, then make sure nothing more comes.
		for pushed < budget {
			f := p.expect(t, fmt.Sprintf("pushed DATA (%d bytes so far)", pushed), func(f spdy.Frame) bool {
				d, ok := f.(*spdy.DataFrame)
				return ok && pushIDs[d.StreamID]
			})
			pushed += len(f.(*spdy.DataFrame).Data)
		}
		time.Sleep(50 * time.Millisecond)
		p.sync(t)
		for _, f := range p.takeAll() {
			if d, ok := f.(*spdy.DataFrame); ok && pushIDs[d.StreamID] {
				pushed += len(d.Data)
			}
		}
		if pageBytes != 30000 {
			t.Errorf("page: %d bytes; want 30000, whatever the pushes wait for", pageBytes)
		}
		if pushed != budget {
			t.Errorf("%d pushed bytes before any credit; want %d (MaxPushBytes)", pushed, budget)
		}
		if got := ts.sl.Stats().LimitHits["MaxPushBytes"]; got < 1 {
			t.Errorf("LimitHits[MaxPushBytes] %d; want at least 1", got)
		}
		// Credit what came: the pushes go on to their end.
		p.setAutoCredit(true)
		var ids []spdy.StreamID
		for id := range pushIDs {
			ids = append(ids, id)
		}
		want := 40000 + 40001
		for pushed < want {
			for _, id := range ids {
				p.send(t, &spdy.WindowUpdateFrame{StreamID: id, Delta: budget})
			}
			p.send(t, &spdy.WindowUpdateFrame{StreamID: 0, Delta: 2 * budget})
			f := p.expect(t, fmt.Sprintf("pushed DATA (%d of %d bytes)", pushed, want), func(f spdy.Frame) bool {
				d, ok := f.(*spdy.DataFrame)
				return ok && pushIDs[d.StreamID]
			})
			pushed += len(f.(*spdy.DataFrame).Data)
		}
		ts.waitNoStreams(t)
	})
}

// MaxPushBytes does not hold a SPDY/2 push: SPDY/2 has no flow control,
// so nothing credits pushed bytes back, and pushes bigger than the bound
// go on to their end without a limit hit.
func TestPushBytesSPDY2(t *testing.T) {
	bubble(t, func(t *testing.T) {
		const budget = 16 << 10
		ts := newPushServer(t, ProtoSPDY2, &Config{MaxPushBytes: budget})
		p := ts.dial(t)
		p.get(t, 1, pageURL([]string{`"/big/40000", "/big/40001"`}, nil, "n=30000"))
		page, pushes := p.readPage(t, 1)
		if len(page.body) != 30000 {
			t.Errorf("page: %d bytes; want 30000", len(page.body))
		}
		for _, n := range []int{40000, 40001} {
			path := fmt.Sprintf("/big/%d", n)
			if ps := pushes[path]; ps == nil || len(ps.body) != n || !ps.fin {
				t.Errorf("push %s: %v; want %d bytes and FIN", path, ps != nil, n)
			}
		}
		if got := ts.sl.Stats().LimitHits["MaxPushBytes"]; got != 0 {
			t.Errorf("LimitHits[MaxPushBytes] %d; want 0 on SPDY/2", got)
		}
		ts.waitNoStreams(t)
	})
}

// A SPDY push whose response head is later than pushOpenWait is dropped
// before the client hears of it: the page's FIN does not wait longer, and
// the push's handler is cancelled.
func TestPushLateHeadDropped(t *testing.T) {
	forEachBubble(t, pushVersions, func(t *testing.T, proto string) {
		ts := newPushServer(t, proto, nil)
		p := ts.dial(t)
		start := time.Now()
		p.get(t, 1, pageURL([]string{`"/slow/x?ms=10000", "/res/a"`}, nil))
		page, pushes := p.readPage(t, 1)
		took := time.Since(start)
		if string(page.body) != "page" {
			t.Errorf("page %q", page.body)
		}
		if len(pushes) != 0 {
			// /res/a waits behind the late push: ids go out in order.
			t.Errorf("pushes %v; want none", keys(pushes))
		}
		if took != pushOpenWait {
			t.Errorf("the page took %v; want pushOpenWait (%v), on the bubble's clock", took, pushOpenWait)
		}
		ts.waitEvent(t, "cancelled", 2)
		ts.waitNoStreams(t)
	})
}

// SPDY/3 §3.3.2 (and SPDY/2's draft 2): the client's CANCEL of the
// associated stream cancels its pushes; the session goes on.
func TestPushCancelledWithPage(t *testing.T) {
	forEachBubble(t, pushVersions, func(t *testing.T, proto string) {
		ts := newPushServer(t, proto, nil)
		p := ts.dial(t)
		p.get(t, 1, pageURL([]string{`"/block/x"`}, nil, "block=1"))
		f := p.expect(t, "the push's SYN_STREAM", func(f spdy.Frame) bool { return isType[*spdy.SynStreamFrame](f) })
		push := f.(*spdy.SynStreamFrame).StreamID
		p.send(t, &spdy.RstStreamFrame{StreamID: 1, Status: spdy.Cancel})
		ts.waitEvent(t, "cancelled", 1)
		ts.waitEvent(t, "cancelled", uint32(push))
		ts.waitNoStreams(t)
		p.get(t, 3, "/res/a")
		if r := p.readResponse(t, 3); string(r.body) != "resource a\n" {
			t.Errorf("next stream: %q", r.body)
		}
	})
}

// After the client's GOAWAY no push is made (SPDY/3 §2.6.6; mod_spdy).
func TestNoPushAfterClientGoAway(t *testing.T) {
	forEachBubble(t, pushVersions, func(t *testing.T, proto string) {
		ts := newPushServer(t, proto, nil)
		p := ts.dial(t)
		p.send(t, &spdy.GoAwayFrame{LastGoodStreamID: 0, Status: spdy.GoAwayOK})
		p.get(t, 1, pageURL([]string{`"/res/a"`}, nil))
		if _, pushes := p.readPage(t, 1); len(pushes) != 0 {
			t.Errorf("pushes %v after the client's GOAWAY; want none", keys(pushes))
		}
	})
}
