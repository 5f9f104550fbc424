package spdymux

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spdymux/spdymux/internal/interop"
	"github.com/spdymux/spdymux/spdy"
)

// The attack tests: one per known attack on multiplexed servers, each
// against a real listener over loopback (see attack_helpers_test.go for
// the three things every test checks). docs/limits.md lists the limits
// they cover.

// attackDuration is how long an attack that the server cuts off at once
// is repeated on new connections.
const attackDuration = 600 * time.Millisecond

// heapSlack is the heap growth every bound allows on top of what the
// attack may make the server hold. The well-behaved client alone makes the
// live heap vary by about 2 MiB (its responses of up to 200 KB in flight,
// the framers' pooled buffers); pools and the collector's timing add a few
// more on a loaded machine, where CI runs the packages' tests side by
// side. An attack the limits did not stop holds tens of MiB and more.
const heapSlack = 10 << 20

// goroutineBound is the most the goroutine count may grow while sessions
// attack a server whose pool has slots worker slots: per session the
// server's reader and writer and the attacker's reader; per slot the
// http.Server connection goroutine and its background read, or in
// handler mode one worker; plus 16 for timers, the monitor and the
// well-behaved client's requests.
func goroutineBound(sessions, slots int) int {
	if *handlerMode {
		return 3*sessions + slots + 16
	}
	return 3*sessions + 2*slots + 16
}

// Rapid reset (CVE-2023-44487): SYN_STREAM then RST_STREAM CANCEL, again
// and again. Once ResetBurst resets are spent (refilled at ResetRate per
// second) the session ends with GOAWAY PROTOCOL_ERROR, counted in
// Stats.RateLimited.
func TestAttackRapidReset(t *testing.T) {
	for _, tc := range []struct {
		name  string
		burst int
		rate  float64
	}{
		{"burst 100", 100, DefaultResetRate},
		{"default burst", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := startAttackServer(t, ProtoSPDY31, Config{ResetBurst: tc.burst, ResetRate: tc.rate})
			burst, rate := tc.burst, tc.rate
			if burst == 0 {
				burst, rate = DefaultResetBurst, DefaultResetRate
			}
			good := as.startGoodClient(t)
			mon := startMonitor(t)
			good.mark()
			hdr := attackRequest(spdy.V3, "GET", "/wait")
			n := rounds(attackDuration, func(round int) {
				a := as.dialAttacker(t, attackerOpts{})
				defer a.close()
				a.startReading()
				start := time.Now()
				id := spdy.StreamID(1)
				const perBatch = 10
				// Ten times the burst is far more than the limit allows.
				floodUntil(10*burst/perBatch, reactBound, a.gotGoAway, func(int) error {
					return a.batch(func(fr *spdy.Framer) {
						for range perBatch {
							fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: id, Flags: spdy.FlagFin, Header: hdr})
							fr.WriteRstStream(id, spdy.Cancel)
							id += 2
						}
					})
				})
				last := a.expectGoAway(t, spdy.GoAwayProtocolError, reactBound)
				elapsed := time.Since(start)
				accepted := int(last+1) / 2
				allowed := burst + int(rate*elapsed.Seconds()) + 1
				if round == 0 {
					t.Logf("GOAWAY after %d streams in %v (burst %d, rate %v/s: at most %d)", accepted, elapsed.Round(time.Millisecond), burst, rate, allowed)
				}
				if accepted > allowed || accepted < burst {
					t.Errorf("round %d: GOAWAY's last-good-stream-id %d: %d streams taken; want %d to %d (the reset budget and its refill)", round, last, accepted, burst, allowed)
				}
			})
			// Every stream is reset at once: a handful exist at any time,
			// a few KiB each.
			const heapBound = heapSlack
			mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
			good.check(t)
			if st := as.l.Stats(); st.RateLimited != uint64(n) || st.SessionErrors != uint64(n) {
				t.Errorf("after %d attacking sessions: Stats.RateLimited %d, SessionErrors %d; want %d each", n, st.RateLimited, st.SessionErrors, n)
			}
		})
	}
}

// 100,000 streams opened and reset on one session, the reset limit off
// (ResetBurst -1): the session survives, the heap stays bounded, and
// afterwards no stream, pool slot, waiting entry or goroutine is left.
func TestAttackHundredThousandResets(t *testing.T) {
	const streams = 100_000
	as := startAttackServer(t, ProtoSPDY31, Config{ResetBurst: -1})
	good := as.startGoodClient(t)
	good.unlimited = "the reset limit is off (ResetBurst -1)"
	a := as.dialAttacker(t, attackerOpts{})
	a.sync(t)
	// The baseline: the attacking session up and idle.
	mon := startMonitor(t)
	baseG := mon.baseG
	good.mark()
	start := time.Now()
	hdr := a.request("GET", "/wait")
	id := spdy.StreamID(1)
	const perBatch = 100
	const maxTime = 30 * time.Second
	batches := floodUntil(streams/perBatch, maxTime, a.isEnded, func(int) error {
		return a.batch(func(fr *spdy.Framer) {
			for range perBatch {
				fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: id, Flags: spdy.FlagFin, Header: hdr})
				fr.WriteRstStream(id, spdy.Cancel)
				id += 2
			}
		})
	})
	// The kernel's buffers may still hold megabytes of frames for the
	// server to read.
	a.syncWithin(t, maxTime)
	elapsed := time.Since(start)
	if batches*perBatch != streams {
		t.Fatalf("sent %d of %d streams in %v", batches*perBatch, streams, elapsed)
	}
	if a.gotGoAway() {
		t.Fatalf("GOAWAY with ResetBurst -1; want the session to survive")
	}
	// Streams are reset as they come and their state goes with them, so
	// 100,000 of them take no more than a hundred.
	const heapBound = heapSlack
	mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
	good.check(t)
	st := as.l.Stats()
	t.Logf("%d streams opened and reset in %v (%.0f/s); %d reached the handler", streams, elapsed.Round(time.Millisecond), streams/elapsed.Seconds(), as.waits.Load())
	if st.Streams < streams {
		t.Errorf("Stats.Streams %d; want at least %d", st.Streams, streams)
	}
	// No leak with the session still up: no stream, slot or waiting
	// entry, and the goroutines back to what they were before the attack.
	as.waitClean(t, "after 100,000 resets, the session still up", baseG, false)
}

// Closing the listener in the middle of a rapid-reset flood (from four
// sessions, the reset limit off) leaves nothing behind: no pool slot busy,
// no stream waiting for one, no stream or session open.
func TestAttackCloseUnderFlood(t *testing.T) {
	const sessions = 4
	as := startAttackServer(t, ProtoSPDY31, Config{ResetBurst: -1})
	good := as.startGoodClient(t)
	good.unlimited = "the reset limit is off (ResetBurst -1): four sessions flood at full speed"
	mon := startMonitor(t)
	good.mark()
	var wg sync.WaitGroup
	for range sessions {
		a := as.dialAttacker(t, attackerOpts{})
		a.startReading()
		hdr := a.request("GET", "/wait")
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := spdy.StreamID(1)
			floodUntil(1<<20, 2*reactBound, a.isEnded, func(int) error {
				return a.batch(func(fr *spdy.Framer) {
					for range 50 {
						fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: id, Flags: spdy.FlagFin, Header: hdr})
						fr.WriteRstStream(id, spdy.Cancel)
						id += 2
					}
				})
			})
		}()
	}
	time.Sleep(attackDuration / 2)
	good.check(t)
	as.srv.Close()
	as.l.Close()
	closed := time.Now()
	wg.Wait()
	// The floods stop with the connections; until then the streams are
	// reset as they come.
	const heapBound = heapSlack
	mon.check(t, heapBound, goroutineBound(sessions, as.pool.Slots()))
	deadline := closed.Add(reactBound)
	for {
		busy, waiting := as.pool.Stats()
		st := as.l.Stats()
		if busy == 0 && waiting == 0 && st.ActiveStreams == 0 && st.ActiveSessions == 0 {
			t.Logf("%d streams taken before Close; all released %v after it", st.Streams, time.Since(closed).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after Listener.Close under a SYN_STREAM/RST_STREAM flood: pool busy %d, waiting %d, active streams %d, sessions %d; want all 0: a StreamConn granted a slot after Close emptied the ready queue is queued for an Accept that never comes (Listener.enqueue does not check done), and a SYN_STREAM still buffered when the session closed opens a stream nobody fails (onSynStream checks goingAway, not err)",
				reactBound, busy, waiting, st.ActiveStreams, st.ActiveSessions)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// PING flood (CVE-2019-9512). A client that reads the echoes is served,
// however many it sends. One that does not read makes the echoes queue
// up; past MaxQueuedControlFrames the session ends with GOAWAY
// PROTOCOL_ERROR (Stats.SessionErrors), and one that never reads is cut off
// after WriteTimeout.
func TestAttackPingFlood(t *testing.T) {
	t.Run("reading", func(t *testing.T) {
		as := startAttackServer(t, ProtoSPDY31, Config{})
		good := as.startGoodClient(t)
		a := as.dialAttacker(t, attackerOpts{})
		a.startReading()
		mon := startMonitor(t)
		good.mark()
		const pings, perBatch = 10000, 10
		id := uint32(1)
		sent := perBatch * floodUntil(pings/perBatch, 10*time.Second, a.isEnded, func(int) error {
			return a.batch(func(fr *spdy.Framer) {
				for range perBatch {
					fr.WritePing(id)
					id += 2
				}
			})
		})
		deadline := time.Now().Add(reactBound)
		for !a.isEnded() && time.Now().Before(deadline) {
			a.mu.Lock()
			n := a.pings
			a.mu.Unlock()
			if n >= sent {
				break
			}
			time.Sleep(time.Millisecond)
		}
		// The queue holds at most MaxQueuedControlFrames echoes of 16
		// bytes.
		const heapBound = heapSlack
		mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
		good.check(t)
		a.mu.Lock()
		echoed := a.pings
		a.mu.Unlock()
		t.Logf("%d PINGs sent in batches of %d, %d echoed", sent, perBatch, echoed)
		if a.gotGoAway() {
			t.Errorf("GOAWAY(%v) after %d PINGs, %d echoed, although the client read every echo; want every PING served: the queued-control-frame cap (MaxQueuedControlFrames %d) counts echoes the writer has not yet had time to write, not echoes the client leaves unread (Stats.SessionErrors %d)",
				a.ga.Status, sent, echoed, DefaultMaxQueuedControlFrames, as.l.Stats().SessionErrors)
		} else if echoed != sent {
			t.Errorf("%d of %d PINGs echoed", echoed, sent)
		}
	})

	t.Run("not reading", func(t *testing.T) {
		// Small send buffers: what the client leaves unread is felt after
		// a few KiB of echoes, not after the megabytes of tcp_wmem.
		as := startAttackServerSmallSend(t, ProtoSPDY31, Config{})
		good := as.startGoodClient(t)
		mon := startMonitor(t)
		good.mark()
		n := rounds(attackDuration, func(round int) {
			before := as.l.Stats().SessionErrors
			a := as.dialAttacker(t, attackerOpts{recvBuffer: 4096})
			defer a.close()
			const maxPings, perBatch = 1_000_000, 100
			id := uint32(1)
			sent := perBatch * floodUntil(maxPings/perBatch, 2*reactBound, func() bool { return as.l.Stats().SessionErrors > before }, func(int) error {
				return a.batch(func(fr *spdy.Framer) {
					for range perBatch {
						fr.WritePing(id)
						id += 2
					}
				})
			})
			if as.l.Stats().SessionErrors == before {
				t.Fatalf("no reaction to %d PINGs from a client that reads nothing", sent)
			}
			a.expectGoAway(t, spdy.GoAwayProtocolError, reactBound)
			a.mu.Lock()
			echoed := a.pings
			a.mu.Unlock()
			if round == 0 {
				t.Logf("cut off after %d PINGs; %d echoed before GOAWAY", sent, echoed)
			}
			if echoed >= sent {
				t.Errorf("%d of %d PINGs echoed; want the echoes cut at the queue limit", echoed, sent)
			}
		})
		// The queue holds at most MaxQueuedControlFrames echoes of 16
		// bytes.
		const heapBound = heapSlack
		mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
		good.check(t)
		if st := as.l.Stats(); st.SessionErrors != uint64(n) {
			t.Errorf("after %d attacking sessions: Stats.SessionErrors %d; want %d", n, st.SessionErrors, n)
		}
	})

	t.Run("never reading", func(t *testing.T) {
		const writeTimeout = time.Second
		// A small send buffer on the server's side: otherwise the kernel
		// takes megabytes of PING echoes first, and on a loaded machine
		// the writer stalls later than the bounds below.
		as := startAttackServerSmallSend(t, ProtoSPDY31, Config{WriteTimeout: writeTimeout})
		good := as.startGoodClient(t)
		a := as.dialAttacker(t, attackerOpts{recvBuffer: 4096})
		mon := startMonitor(t)
		good.mark()
		// The session reads PINGs as fast as its writer can answer them;
		// once the client's socket is full, the writer stalls, and within
		// WriteTimeout the session is cut off and counted.
		start := time.Now()
		id := uint32(1)
		sent := 0
		floodUntil(1<<30, writeTimeout+2*reactBound, func() bool { return as.l.Stats().SessionErrors > 0 }, func(int) error {
			sent += 100
			return a.batch(func(fr *spdy.Framer) {
				for range 100 {
					fr.WritePing(id)
					id += 2
				}
			})
		})
		var cutAt time.Time
		for deadline := start.Add(writeTimeout + reactBound); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if as.l.Stats().SessionErrors > 0 {
				cutAt = time.Now()
				break
			}
		}
		const heapBound = heapSlack
		mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
		good.check(t)
		if cutAt.IsZero() {
			t.Fatalf("no session error counted within %v after %d PINGs from a client that reads nothing", writeTimeout+reactBound, sent)
		}
		closed := false
		for deadline := time.Now().Add(reactBound); !closed && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			closed = a.raw([]byte{0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1}) != nil
		}
		if !closed {
			t.Fatalf("the connection is still open %v after the session was cut off", time.Since(cutAt))
		}
		t.Logf("%d PINGs sent; cut off %v after the flood began (WriteTimeout %v)", sent, cutAt.Sub(start).Round(time.Millisecond), writeTimeout)
	})
}

// SETTINGS flood: every SETTINGS frame after the first is a glitch; once
// GlitchBurst of them are spent the session ends with GOAWAY
// PROTOCOL_ERROR (Stats.RateLimited).
func TestAttackSettingsFlood(t *testing.T) {
	as := startAttackServer(t, ProtoSPDY31, Config{})
	good := as.startGoodClient(t)
	mon := startMonitor(t)
	good.mark()
	n := rounds(attackDuration, func(round int) {
		a := as.dialAttacker(t, attackerOpts{})
		defer a.close()
		a.startReading()
		sent := 0
		floodUntil(3*DefaultGlitchBurst/100, reactBound, a.gotGoAway, func(int) error {
			sent += 100
			return a.batch(func(fr *spdy.Framer) {
				for range 100 {
					fr.WriteSettings(0, spdy.Setting{ID: spdy.SettingMaxConcurrentStreams, Value: 100})
				}
			})
		})
		a.expectGoAway(t, spdy.GoAwayProtocolError, reactBound)
		if round == 0 {
			t.Logf("GOAWAY after at most %d SETTINGS frames (GlitchBurst %d)", sent, DefaultGlitchBurst)
		}
	})
	const heapBound = heapSlack
	mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
	good.check(t)
	st := as.l.Stats()
	if st.RateLimited != uint64(n) || st.Glitches < uint64(n*DefaultGlitchBurst) {
		t.Errorf("after %d attacking sessions: Stats.RateLimited %d, Glitches %d; want %d and at least %d", n, st.RateLimited, st.Glitches, n, n*DefaultGlitchBurst)
	}
}

// A SETTINGS frame of more than MaxSettingsEntries entries, or one whose
// count disagrees with its length, ends the session with GOAWAY
// PROTOCOL_ERROR before anything is allocated for the entries.
func TestAttackSettingsTooManyEntries(t *testing.T) {
	as := startAttackServer(t, ProtoSPDY31, Config{})
	good := as.startGoodClient(t)
	mon := startMonitor(t)
	good.mark()
	entries := func(n int) []spdy.Setting {
		s := make([]spdy.Setting, n)
		for i := range s {
			s[i] = spdy.Setting{ID: spdy.SettingID(i + 1), Value: 1}
		}
		return s
	}
	// A count of 2^32-1 in a frame of 12 bytes: one entry.
	lying := controlFrame(spdy.V3, spdy.TypeSettings, 0, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 4, 0, 0, 0, 100})
	goAways := 0
	rounds(attackDuration, func(round int) {
		a := as.dialAttacker(t, attackerOpts{})
		defer a.close()
		a.startReading()
		switch round % 3 {
		case 0:
			a.batch(func(fr *spdy.Framer) { fr.WriteSettings(0, entries(DefaultMaxSettingsEntries+1)...) })
			a.expectGoAway(t, spdy.GoAwayProtocolError, reactBound)
			goAways++
		case 1:
			a.raw(lying)
			a.expectGoAway(t, spdy.GoAwayProtocolError, reactBound)
			goAways++
		case 2:
			// At the limit the frame is taken.
			a.batch(func(fr *spdy.Framer) { fr.WriteSettings(0, entries(DefaultMaxSettingsEntries)...) })
			a.sync(t)
			if a.gotGoAway() {
				t.Errorf("GOAWAY for a SETTINGS frame of %d entries; want it taken", DefaultMaxSettingsEntries)
			}
		}
	})
	// No entry is allocated before the count is checked against the length.
	const heapBound = heapSlack
	mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
	good.check(t)
	if st := as.l.Stats(); st.SessionErrors != uint64(goAways) {
		t.Errorf("Stats.SessionErrors %d; want %d", st.SessionErrors, goAways)
	}
}

// Reset flood (CVE-2019-9514): frames that each earn a RST_STREAM. A
// client that does not read makes the RST_STREAMs queue up: past
// MaxQueuedControlFrames the session ends with GOAWAY PROTOCOL_ERROR. A
// client that reads is stopped by the glitch budget: every frame that earns
// a RST_STREAM is a glitch (Config.GlitchBurst).
func TestAttackResetFlood(t *testing.T) {
	t.Run("not reading", func(t *testing.T) {
		// The glitch budget is off, so the queue limit is what stops it;
		// a small send buffer on the server's side makes the writer stall
		// on the unread RST_STREAMs at once, as with a real slow link.
		as := startAttackServerSmallSend(t, ProtoSPDY31, Config{GlitchBurst: -1})
		good := as.startGoodClient(t)
		mon := startMonitor(t)
		good.mark()
		// DATA with FIN and no payload for stream 1, never opened: each
		// earns RST_STREAM INVALID_STREAM.
		batch := bytes.Repeat([]byte{0, 0, 0, 1, byte(spdy.FlagFin), 0, 0, 0}, 500)
		n := rounds(attackDuration, func(round int) {
			before := as.l.Stats().SessionErrors
			a := as.dialAttacker(t, attackerOpts{recvBuffer: 4096})
			defer a.close()
			a.batch(func(fr *spdy.Framer) { fr.WriteSettings(0) }) // the first frame tells SPDY
			sent := 500 * floodUntil(1_000_000/500, 2*reactBound, func() bool { return as.l.Stats().SessionErrors > before }, func(int) error {
				return a.raw(batch)
			})
			if as.l.Stats().SessionErrors == before {
				t.Fatalf("no reaction to %d frames that each earn RST_STREAM from a client that reads nothing", sent)
			}
			a.expectGoAway(t, spdy.GoAwayProtocolError, reactBound)
			rst := a.rstCount(spdy.InvalidStream)
			if round == 0 {
				t.Logf("cut off after %d frames; %d RST_STREAMs came before GOAWAY", sent, rst)
			}
			if rst >= sent {
				t.Errorf("%d RST_STREAMs for %d frames; want them cut at the queue limit", rst, sent)
			}
		})
		const heapBound = heapSlack
		mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
		good.check(t)
		if st := as.l.Stats(); st.SessionErrors != uint64(n) {
			t.Errorf("after %d attacking sessions: Stats.SessionErrors %d; want %d", n, st.SessionErrors, n)
		}
	})

	t.Run("reading", func(t *testing.T) {
		as := startAttackServer(t, ProtoSPDY31, Config{})
		good := as.startGoodClient(t)
		mon := startMonitor(t)
		good.mark()
		okHdr := attackRequest(spdy.V3, "GET", "/wait")
		badHdr := append(attackRequest(spdy.V3, "GET", "/wait"), spdy.HeaderField{Name: "X-Upper", Value: "1"})
		zeroWindowUpdate := controlFrame(spdy.V3, spdy.TypeWindowUpdate, 0, []byte{0, 0, 0, 1, 0, 0, 0, 0})
		for _, tc := range []struct {
			name   string
			status spdy.RstStatus
			frame  func(fr *spdy.Framer, buf *bytes.Buffer, id spdy.StreamID)
		}{
			{"DATA for a stream that never was", spdy.InvalidStream, func(fr *spdy.Framer, _ *bytes.Buffer, _ spdy.StreamID) {
				fr.WriteData(1, spdy.FlagFin, nil)
			}},
			{"WINDOW_UPDATE of 0", spdy.ProtocolError, func(_ *spdy.Framer, buf *bytes.Buffer, _ spdy.StreamID) {
				buf.Write(zeroWindowUpdate)
			}},
			{"header name in upper case", spdy.ProtocolError, func(fr *spdy.Framer, _ *bytes.Buffer, id spdy.StreamID) {
				fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: id, Flags: spdy.FlagFin, Header: badHdr})
			}},
			{"SYN_REPLY from a client", spdy.InvalidStream, func(fr *spdy.Framer, _ *bytes.Buffer, id spdy.StreamID) {
				fr.WriteSynReply(&spdy.SynReplyFrame{StreamID: id, Header: []spdy.HeaderField{{Name: ":status", Value: "200"}, {Name: ":version", Value: "HTTP/1.1"}}})
			}},
			{"unidirectional SYN_STREAM", spdy.ProtocolError, func(fr *spdy.Framer, _ *bytes.Buffer, id spdy.StreamID) {
				fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: id, Flags: spdy.FlagFin | spdy.FlagUnidirectional, Header: okHdr})
			}},
			{"DATA after FIN", spdy.StreamAlreadyClosed, func(fr *spdy.Framer, _ *bytes.Buffer, id spdy.StreamID) {
				fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: id, Flags: spdy.FlagFin, Header: okHdr})
				fr.WriteData(id, 0, []byte{1})
			}},
		} {
			a := as.dialAttacker(t, attackerOpts{})
			a.startReading()
			a.batch(func(fr *spdy.Framer) { fr.WriteSettings(0) }) // the first frame tells SPDY
			id := spdy.StreamID(1)
			sent := 0
			const perBatch = 50
			floodUntil(3*DefaultGlitchBurst/perBatch, reactBound, a.gotGoAway, func(int) error {
				sent += perBatch
				return a.batch(func(fr *spdy.Framer) {
					for range perBatch {
						tc.frame(fr, &a.wbuf, id)
						id += 2
					}
				})
			})
			a.settle()
			rst := a.rstCount(tc.status)
			if !a.gotGoAway() {
				t.Errorf("%s: %d frames, %d answered with RST_STREAM %v, and no GOAWAY; want GOAWAY once GlitchBurst (%d) is spent: a frame that earns a RST_STREAM is a glitch (Config.GlitchBurst)",
					tc.name, sent, rst, tc.status, DefaultGlitchBurst)
			} else {
				a.expectGoAway(t, spdy.GoAwayProtocolError, reactBound)
				t.Logf("%s: GOAWAY after at most %d frames, %d RST_STREAM %v", tc.name, sent, rst, tc.status)
			}
			if rst == 0 {
				t.Errorf("%s: no RST_STREAM %v", tc.name, tc.status)
			}
			a.close()
		}
		const heapBound = heapSlack
		mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
		good.check(t)
	})
}

// Empty-frame flood (CVE-2019-9518): DATA frames without payload or FIN
// on an open stream are glitches; the session ends with GOAWAY
// PROTOCOL_ERROR once GlitchBurst are spent.
func TestAttackEmptyFrameFlood(t *testing.T) {
	as := startAttackServer(t, ProtoSPDY31, Config{})
	good := as.startGoodClient(t)
	good.holding = true
	mon := startMonitor(t)
	good.mark()
	hdr := attackRequest(spdy.V3, "POST", "/wait")
	empty := bytes.Repeat([]byte{0, 0, 0, 1, 0, 0, 0, 0}, 100) // DATA(1), no flags, no payload
	n := rounds(attackDuration, func(round int) {
		a := as.dialAttacker(t, attackerOpts{})
		defer a.close()
		a.startReading()
		if err := a.batch(func(fr *spdy.Framer) { fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: 1, Header: hdr}) }); err != nil {
			t.Fatal(err)
		}
		sent := 100 * floodUntil(3*DefaultGlitchBurst/100, reactBound, a.gotGoAway, func(int) error { return a.raw(empty) })
		a.expectGoAway(t, spdy.GoAwayProtocolError, reactBound)
		if round == 0 {
			t.Logf("GOAWAY after at most %d empty DATA frames (GlitchBurst %d)", sent, DefaultGlitchBurst)
		}
	})
	const heapBound = heapSlack
	mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
	good.check(t)
	if st := as.l.Stats(); st.RateLimited != uint64(n) {
		t.Errorf("after %d attacking sessions: Stats.RateLimited %d; want %d", n, st.RateLimited, n)
	}
}

// Data dribble (CVE-2019-9511): the client keeps its window at one byte
// and opens it a byte at a time, so the server must send one-byte DATA
// frames; each is a glitch, and the session ends with GOAWAY
// PROTOCOL_ERROR once GlitchBurst are spent.
func TestAttackDataDribble(t *testing.T) {
	forEach(t, v3versions, func(t *testing.T, proto string) {
		as := startAttackServer(t, proto, Config{})
		good := as.startGoodClient(t)
		good.holding = true
		mon := startMonitor(t)
		good.mark()
		hdr := attackRequest(spdy.V3, "GET", "/bytes/100000")
		const streams = 8
		n := rounds(attackDuration, func(round int) {
			a := as.dialAttacker(t, attackerOpts{})
			defer a.close()
			var tiny atomic.Int64
			a.onFrame = func(f spdy.Frame) {
				d, ok := f.(*spdy.DataFrame)
				if !ok || len(d.Data) == 0 || d.Flags&spdy.FlagFin != 0 {
					return
				}
				tiny.Add(1)
				k := uint32(len(d.Data))
				a.batch(func(fr *spdy.Framer) {
					fr.WriteWindowUpdate(d.StreamID, k)
					if proto == ProtoSPDY31 {
						fr.WriteWindowUpdate(0, k)
					}
				})
			}
			a.startReading()
			start := time.Now()
			a.batch(func(fr *spdy.Framer) {
				fr.WriteSettings(0, spdy.Setting{ID: spdy.SettingInitialWindowSize, Value: 1})
				for i := range streams {
					fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: spdy.StreamID(2*i + 1), Flags: spdy.FlagFin, Header: hdr})
				}
			})
			a.expectGoAway(t, spdy.GoAwayProtocolError, 2*reactBound)
			elapsed := time.Since(start)
			allowed := DefaultGlitchBurst + int(DefaultGlitchRate*elapsed.Seconds()) + streams
			if round == 0 {
				t.Logf("GOAWAY after %d one-byte DATA frames in %v", tiny.Load(), elapsed.Round(time.Millisecond))
			}
			if got := int(tiny.Load()); got > allowed {
				t.Errorf("%d one-byte DATA frames before GOAWAY; want at most %d (GlitchBurst and its refill)", got, allowed)
			}
		})
		const heapBound = heapSlack
		mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
		good.check(t)
		if st := as.l.Stats(); st.RateLimited != uint64(n) {
			t.Errorf("after %d attacking sessions: Stats.RateLimited %d; want %d", n, st.RateLimited, n)
		}
	})
}

// Zero-window hold (CVE-2019-9517): the client asks for large responses
// and never opens its window. After WindowTimeout each stream is reset
// with CANCEL (Stats.WindowTimeouts), which frees its handler and its pool
// slot.
func TestAttackZeroWindowHold(t *testing.T) {
	forEach(t, v3versions, func(t *testing.T, proto string) {
		const windowTimeout = 300 * time.Millisecond
		as := startAttackServer(t, proto, Config{WindowTimeout: windowTimeout})
		good := as.startGoodClient(t)
		good.holding = true
		mon := startMonitor(t)
		good.mark()
		const sessions, streams = 2, 20
		hdr := attackRequest(spdy.V3, "GET", "/bytes/1000000")
		var attackers []*attacker
		start := time.Now()
		for range sessions {
			a := as.dialAttacker(t, attackerOpts{})
			a.startReading()
			a.batch(func(fr *spdy.Framer) {
				for i := range streams {
					fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: spdy.StreamID(2*i + 1), Flags: spdy.FlagFin, Header: hdr})
				}
			})
			attackers = append(attackers, a)
		}
		deadline := time.Now().Add(as.windowResetsWithin(streams, windowTimeout) + reactBound)
		for _, a := range attackers {
			for a.rstCount(spdy.Cancel) < streams && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
		}
		elapsed := time.Since(start)
		// Each blocked handler holds its http.Server buffers (8 KiB) and a
		// stream; the response bytes are the handler's own, not copied.
		const heapBound = heapSlack + sessions*streams*64<<10
		mon.check(t, heapBound, goroutineBound(sessions, as.pool.Slots()))
		good.check(t)
		for i, a := range attackers {
			if got := a.rstCount(spdy.Cancel); got != streams {
				t.Errorf("session %d: %d of %d held streams reset with CANCEL within WindowTimeout %v (+%v); the others still hold their handlers (Stats.ActiveStreams %d)",
					i, got, streams, windowTimeout, reactBound, as.l.Stats().ActiveStreams)
			}
		}
		if elapsed < windowTimeout {
			t.Errorf("streams reset %v after the requests; want no sooner than WindowTimeout %v", elapsed, windowTimeout)
		}
		t.Logf("%d streams reset after %v (WindowTimeout %v)", sessions*streams, elapsed.Round(time.Millisecond), windowTimeout)
		// Through the gateway a held stream may also end by the gateway's
		// own stall timeout first (the reset above is the same CANCEL): the
		// counter then counts the rest.
		if st := as.l.Stats(); st.WindowTimeouts != sessions*streams && (as.gateway == nil || st.WindowTimeouts == 0 || st.WindowTimeouts > sessions*streams) {
			t.Errorf("Stats.WindowTimeouts %d; want %d", st.WindowTimeouts, sessions*streams)
		}
		// The handlers are freed with the sessions still up.
		for _, a := range attackers {
			a.sync(t)
		}
		as.waitClean(t, "after the zero-window streams were reset", 1<<30, false)
		if n := as.handlers.Load(); n != 0 {
			t.Errorf("%d handlers still running after their streams were reset", n)
		}
	})
}

// bombBlock is an inflated name/value block of version v: a request for
// /wait and then filler fields of 32 KiB each, total bytes in all.
func bombBlock(v spdy.Version, total int) []byte {
	req := attackRequest(v, "GET", "/wait")
	filler := strings.Repeat("a", 32<<10)
	n := (total + len(filler) - 1) / len(filler)
	nv := (&nvBlock{v: v}).num(uint32(len(req) + n)).fields(req)
	for i := range n {
		nv.str(fmt.Sprintf("x-bomb-%04d", i)).str(filler)
	}
	return nv.b
}

// Header bomb (the zlib bomb of SPDY, and HTTP/2's header floods): a
// header block of a few KiB that inflates past MaxHeaderBytes ends the
// session with GOAWAY PROTOCOL_ERROR, inflating no more than the limit; a
// block of more than MaxHeaderFields fields gets RST_STREAM PROTOCOL_ERROR
// and the session goes on, until the glitch budget is spent.
func TestAttackHeaderBomb(t *testing.T) {
	forEach(t, []string{ProtoSPDY31, ProtoSPDY2}, func(t *testing.T, proto string) {
		t.Run("zlib bomb", func(t *testing.T) {
			v := versionOf(proto)
			const sessions = 4
			// The first header block of a session, the same for all.
			hb := newDeflater().block(bombBlock(v, 2*DefaultMaxHeaderBytes))
			t.Logf("bomb: a header block of %d bytes that inflates to %d", len(hb), 2*DefaultMaxHeaderBytes)
			bomb := synStreamRaw(v, 1, spdy.FlagFin, hb)
			as := startAttackServer(t, proto, Config{})
			good := as.startGoodClient(t)
			mon := startMonitor(t)
			good.mark()
			n := rounds(attackDuration, func(round int) {
				var wg sync.WaitGroup
				for range sessions {
					wg.Add(1)
					go func() {
						defer wg.Done()
						a := as.dialAttacker(t, attackerOpts{})
						defer a.close()
						a.startReading()
						a.raw(bomb)
						a.expectGoAway(t, spdy.GoAwayProtocolError, reactBound)
					}()
				}
				wg.Wait()
			})
			// Each session inflates at most MaxHeaderBytes into a buffer
			// that may have grown to twice that.
			const heapBound = heapSlack + sessions*2*DefaultMaxHeaderBytes
			mon.check(t, heapBound, goroutineBound(sessions, as.pool.Slots()))
			good.check(t)
			if st := as.l.Stats(); st.SessionErrors != uint64(n*sessions) {
				t.Errorf("after %d bombs: Stats.SessionErrors %d; want %d", n*sessions, st.SessionErrors, n*sessions)
			}
			if n := as.waits.Load(); n != 0 {
				t.Errorf("%d bombs reached the handler; want none", n)
			}
		})

		t.Run("too many fields", func(t *testing.T) {
			const glitchBurst = 50
			as := startAttackServer(t, proto, Config{GlitchBurst: glitchBurst})
			good := as.startGoodClient(t)
			mon := startMonitor(t)
			good.mark()
			v := versionOf(proto)
			hdr := attackRequest(v, "GET", "/bytes/10")
			for i := range DefaultMaxHeaderFields + 1 - len(hdr) {
				hdr = append(hdr, spdy.HeaderField{Name: fmt.Sprintf("x-f%04d", i), Value: "v"})
			}
			ok := attackRequest(v, "GET", "/bytes/10")
			n := rounds(attackDuration, func(round int) {
				a := as.dialAttacker(t, attackerOpts{})
				defer a.close()
				a.startReading()
				a.batch(func(fr *spdy.Framer) {
					fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: 1, Flags: spdy.FlagFin, Header: hdr})
				})
				a.sync(t)
				if got := a.rstCount(spdy.ProtocolError); got != 1 {
					t.Fatalf("a block of %d fields: %d RST_STREAM PROTOCOL_ERROR; want 1", len(hdr), got)
				}
				// The session goes on.
				a.batch(func(fr *spdy.Framer) {
					fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: 3, Flags: spdy.FlagFin, Header: ok})
				})
				deadline := time.Now().Add(reactBound)
				for {
					a.mu.Lock()
					got := a.data
					a.mu.Unlock()
					if got == 10 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("after the RST_STREAM, a request on the same session: %d of 10 body bytes within %v", got, reactBound)
					}
					time.Sleep(time.Millisecond)
				}
				// Until the glitch budget is spent.
				id := spdy.StreamID(5)
				floodUntil(3*glitchBurst, reactBound, a.gotGoAway, func(int) error {
					defer func() { id += 2 }()
					return a.batch(func(fr *spdy.Framer) {
						fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: id, Flags: spdy.FlagFin, Header: hdr})
					})
				})
				a.expectGoAway(t, spdy.GoAwayProtocolError, reactBound)
			})
			// A block of 1001 small fields is about 20 KiB inflated.
			const heapBound = heapSlack
			mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
			good.check(t)
			if st := as.l.Stats(); st.StreamErrors < uint64(n*glitchBurst) || st.RateLimited != uint64(n) {
				t.Errorf("after %d sessions: Stats.StreamErrors %d, RateLimited %d; want at least %d and %d", n, st.StreamErrors, st.RateLimited, n*glitchBurst, n)
			}
		})
	})
}

func versionOf(proto string) spdy.Version {
	if proto == ProtoSPDY2 {
		return spdy.V2
	}
	return spdy.V3
}

// Name/value counts and lengths that claim gigabytes (moby/spdystream
// CVE-2026-35469): each is checked against the bytes really inflated and
// MaxHeaderBytes before anything is allocated, and the session ends with
// GOAWAY PROTOCOL_ERROR. The heap does not jump.
func TestAttackHeaderLengthLies(t *testing.T) {
	forEach(t, []string{ProtoSPDY31, ProtoSPDY2}, func(t *testing.T, proto string) {
		v := versionOf(proto)
		nv := func() *nvBlock { return &nvBlock{v: v} }
		type lie struct {
			name string
			nv   []byte
		}
		var lies []lie
		if v == spdy.V3 {
			lies = []lie{
				{"count 2^31-1", nv().num(1<<31 - 1).b},
				{"count 2^32-1", nv().num(1<<32 - 1).b},
				{"name length 2^31-1", append(nv().num(1).num(1<<31-1).b, "abc"...)},
				{"value length 2^31-16", append(nv().num(1).str("x-a").num(1<<31-16).b, "0123456789"...)},
				{"100,000 fields, one there", nv().num(100_000).str("x-a").str("b").b},
				{"1000 fields of 1 MiB each", append(nv().num(1000).num(1<<20-64).b, "abc"...)},
			}
		} else {
			lies = []lie{
				{"65535 fields of 64 KiB each", append(nv().num(0xffff).num(0xffff).b, "abc"...)},
				{"65535 fields, one there", nv().num(0xffff).str("x-a").str("b").b},
				{"value length 65535", append(nv().num(1).str("x-a").num(0xffff).b, "0123456789"...)},
			}
		}
		as := startAttackServer(t, proto, Config{})
		good := as.startGoodClient(t)
		mon := startMonitor(t)
		good.mark()
		n := rounds(attackDuration, func(round int) {
			l := lies[round%len(lies)]
			a := as.dialAttacker(t, attackerOpts{})
			defer a.close()
			a.startReading()
			a.raw(synStreamRaw(v, 1, spdy.FlagFin, storedBlock(l.nv, true)))
			select {
			case <-a.goAway:
			case <-time.After(reactBound):
				t.Errorf("%s: no GOAWAY within %v", l.name, reactBound)
				return
			}
			a.expectGoAway(t, spdy.GoAwayProtocolError, reactBound)
		})
		// Nothing claimed is allocated before it is inflated, and the
		// largest real block here is a few bytes.
		const heapBound = heapSlack
		mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
		good.check(t)
		if st := as.l.Stats(); st.SessionErrors != uint64(n) {
			t.Errorf("after %d lying header blocks: Stats.SessionErrors %d; want %d", n, st.SessionErrors, n)
		}
	})
}

// Frames longer than MaxControlFrameSize or MaxDataFrameSize end the
// session with GOAWAY PROTOCOL_ERROR before their payload is read. Frames
// within the limits whose payload never comes hold the session until
// IdleTimeout, and the memory they hold stays within the windows.
func TestAttackOversizedFrames(t *testing.T) {
	settings := controlFrame(spdy.V3, spdy.TypeSettings, 0, []byte{0, 0, 0, 0})
	header := func(control bool, typ spdy.FrameType, length int) []byte {
		h := []byte{0, 0, 0, 1, 0, byte(length >> 16), byte(length >> 8), byte(length)}
		if control {
			h[0], h[1], h[2], h[3] = 0x80, 3, byte(typ>>8), byte(typ)
		}
		return h
	}
	t.Run("over the limits", func(t *testing.T) {
		as := startAttackServer(t, ProtoSPDY31, Config{})
		good := as.startGoodClient(t)
		mon := startMonitor(t)
		good.mark()
		cases := []struct {
			name string
			head []byte
		}{
			{"SYN_STREAM of 16 MiB", header(true, spdy.TypeSynStream, 1<<24-1)},
			{"SETTINGS over MaxControlFrameSize", header(true, spdy.TypeSettings, DefaultMaxControlFrameSize+4)},
			{"unknown type of 16 MiB", header(true, 0x7ff, 1<<24-1)},
			{"DATA of 16 MiB", header(false, 0, 1<<24-1)},
			{"DATA over MaxDataFrameSize", header(false, 0, DefaultMaxDataFrameSize+1)},
		}
		payload := make([]byte, 4096)
		n := rounds(attackDuration, func(round int) {
			c := cases[round%len(cases)]
			a := as.dialAttacker(t, attackerOpts{})
			defer a.close()
			a.startReading()
			a.raw(append(append(bytes.Clone(settings), c.head...), payload...))
			select {
			case <-a.goAway:
			case <-time.After(reactBound):
				t.Errorf("%s: no GOAWAY within %v", c.name, reactBound)
				return
			}
			a.expectGoAway(t, spdy.GoAwayProtocolError, reactBound)
		})
		// The length is checked before a byte of payload is buffered.
		const heapBound = heapSlack
		mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
		good.check(t)
		if st := as.l.Stats(); st.SessionErrors != uint64(n) {
			t.Errorf("after %d oversized frames: Stats.SessionErrors %d; want %d", n, st.SessionErrors, n)
		}
	})

	t.Run("announced and stalled", func(t *testing.T) {
		const idleTimeout = 500 * time.Millisecond
		as := startAttackServer(t, ProtoSPDY31, Config{IdleTimeout: idleTimeout})
		good := as.startGoodClient(t)
		mon := startMonitor(t)
		good.mark()
		const sessions = 32
		var attackers []*attacker
		start := time.Now()
		for i := range sessions {
			a := as.dialAttacker(t, attackerOpts{})
			a.startReading()
			// Half announce a DATA frame of MaxDataFrameSize, half a control
			// frame of MaxControlFrameSize, both within the limits; 100
			// bytes of payload follow, then nothing.
			h := header(false, 0, DefaultMaxDataFrameSize)
			if i%2 == 1 {
				h = header(true, 0x7ff, DefaultMaxControlFrameSize)
			}
			a.raw(append(append(bytes.Clone(settings), h...), make([]byte, 100)...))
			attackers = append(attackers, a)
		}
		time.Sleep(idleTimeout / 2)
		// What a stalled frame may hold: no more than a stream window of
		// payload (64 KiB) and the framer's buffers (64 KiB).
		const perSession = DefaultInitialWindowSize + 64<<10
		const heapBound = heapSlack + sessions*perSession
		mon.check(t, heapBound, goroutineBound(sessions, as.pool.Slots()),
			fmt.Sprintf("%d sessions each stalled inside a frame announced at MaxDataFrameSize (%d) or MaxControlFrameSize (%d); the framer takes a buffer of the announced length before the payload arrives (spdy.Framer.readPayload)",
				sessions, DefaultMaxDataFrameSize, DefaultMaxControlFrameSize))
		for i, a := range attackers {
			ok := false
			select {
			case <-a.goAway:
				ok = true
			case <-a.ended:
				ok = a.gotGoAway()
			case <-time.After(idleTimeout + reactBound):
			}
			if !ok {
				t.Errorf("session %d, stalled inside a frame: no GOAWAY(OK) within IdleTimeout %v (+%v)", i, idleTimeout, reactBound)
				continue
			}
			a.expectGoAway(t, spdy.GoAwayOK, reactBound)
		}
		if d := time.Since(start); d < idleTimeout {
			t.Errorf("stalled sessions closed after %v; want no sooner than IdleTimeout %v", d, idleTimeout)
		}
		good.check(t)
	})
}

// Slowloris: connections that send nothing, or stop inside the TLS
// handshake or the first frame, are closed HandshakeTimeout after they
// were accepted. The
// deadline ends with the first frame: a session that has sent one is not
// cut off later, even with WriteTimeout off.
func TestAttackSlowloris(t *testing.T) {
	const handshakeTimeout = 300 * time.Millisecond
	t.Run("stalled", func(t *testing.T) {
		certFile, keyFile := interop.WriteSelfSignedCert(t, t.TempDir())
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		// TLS and cleartext on one port: the well-behaved client speaks
		// cleartext.
		as := startAttackServer(t, ProtoSPDY31, Config{
			HandshakeTimeout: handshakeTimeout,
			TLSConfig:        &tls.Config{Certificates: []tls.Certificate{cert}},
			AllowCleartext:   true,
		})
		good := as.startGoodClient(t)
		good.holding = true
		mon := startMonitor(t)
		good.mark()
		cases := []struct {
			name  string
			bytes []byte
		}{
			{"nothing", nil},
			{"one byte", []byte{0x80}},
			{"half a frame header", []byte{0x80, 3, 0, 4}},
			{"half a first frame", []byte{0x80, 3, 0, 4, 0, 0, 0, 12, 0, 0}},
			{"half a TLS ClientHello", []byte{0x16, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3}},
		}
		const perCase = 20
		type conn struct {
			a     *attacker
			name  string
			start time.Time
		}
		var conns []conn
		for _, c := range cases {
			for range perCase {
				a := as.dialAttacker(t, attackerOpts{})
				start := time.Now()
				if len(c.bytes) > 0 {
					a.raw(c.bytes)
				}
				a.startReading()
				conns = append(conns, conn{a, c.name, start})
			}
		}
		// Each connection holds a goroutine, at most a session's 4 KiB
		// read buffer and state: 64 KiB each is generous.
		const heapBound = heapSlack + perCase*5*64<<10
		mon.check(t, heapBound, goroutineBound(len(conns), as.pool.Slots()))
		var slowest time.Duration
		for _, c := range conns {
			select {
			case <-c.a.ended:
			case <-time.After(handshakeTimeout + reactBound):
				t.Errorf("%s: connection open %v after it was made; want it closed after HandshakeTimeout %v", c.name, time.Since(c.start), handshakeTimeout)
				continue
			}
			c.a.mu.Lock()
			d := c.a.endAt.Sub(c.start)
			c.a.mu.Unlock()
			slowest = max(slowest, d)
			if d < handshakeTimeout-50*time.Millisecond {
				t.Errorf("%s: connection closed %v after it was made; want no sooner than HandshakeTimeout %v", c.name, d, handshakeTimeout)
			}
		}
		t.Logf("%d stalled connections closed, the last %v after it was made (HandshakeTimeout %v)", len(conns), slowest.Round(time.Millisecond), handshakeTimeout)
		good.check(t)
		if st := as.l.Stats(); st.HandshakeErrors < 3*perCase {
			t.Errorf("Stats.HandshakeErrors %d; want at least %d (the connections that never told their protocol or finished TLS)", st.HandshakeErrors, 3*perCase)
		}
	})

	t.Run("the first frame ends the deadline", func(t *testing.T) {
		as := startAttackServer(t, ProtoSPDY31, Config{HandshakeTimeout: handshakeTimeout, WriteTimeout: -1})
		a := as.dialAttacker(t, attackerOpts{})
		a.sync(t)
		time.Sleep(2 * handshakeTimeout)
		a.batch(func(fr *spdy.Framer) {
			fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: 1, Flags: spdy.FlagFin, Header: attackRequest(spdy.V3, "GET", "/bytes/10")})
		})
		deadline := time.Now().Add(reactBound)
		for {
			a.mu.Lock()
			got, err := a.data, a.readErr
			a.mu.Unlock()
			if got == 10 {
				break
			}
			if a.isEnded() || time.Now().After(deadline) {
				t.Fatalf("a request %v after the first frame, WriteTimeout off: %d of 10 body bytes, connection error %v; want the response: the handshake deadline (HandshakeTimeout %v) must end with the first frame, for writes too",
					2*handshakeTimeout, got, err, handshakeTimeout)
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// Idle sessions: a session without open streams for IdleTimeout ends with
// GOAWAY OK and is closed, whether it made requests or never did.
func TestAttackIdleSessions(t *testing.T) {
	const idleTimeout = 300 * time.Millisecond
	as := startAttackServer(t, ProtoSPDY31, Config{IdleTimeout: idleTimeout})
	good := as.startGoodClient(t)
	good.holding = true
	mon := startMonitor(t)
	good.mark()
	const sessions = 40
	hdr := attackRequest(spdy.V3, "GET", "/bytes/100")
	var attackers []*attacker
	var dialed []time.Time // no session can have gone idle before
	for i := range sessions {
		dialed = append(dialed, time.Now())
		a := as.dialAttacker(t, attackerOpts{})
		a.startReading()
		a.batch(func(fr *spdy.Framer) {
			fr.WriteSettings(0)
			if i%2 == 0 {
				fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: 1, Flags: spdy.FlagFin, Header: hdr})
			}
		})
		attackers = append(attackers, a)
	}
	start := time.Now()
	// An idle session holds its reader's 4 KiB buffer and little else.
	const heapBound = heapSlack + sessions*64<<10
	mon.check(t, heapBound, goroutineBound(sessions, as.pool.Slots()))
	for i, a := range attackers {
		select {
		case <-a.goAway:
		case <-a.ended:
		case <-time.After(idleTimeout + reactBound):
		}
		if !a.gotGoAway() {
			t.Errorf("session %d: no GOAWAY(OK) within IdleTimeout %v (+%v)", i, idleTimeout, reactBound)
			continue
		}
		a.expectGoAway(t, spdy.GoAwayOK, reactBound)
		a.mu.Lock()
		at := a.gaAt
		a.mu.Unlock()
		if d := at.Sub(dialed[i]); d < idleTimeout {
			t.Errorf("session %d: GOAWAY %v after it connected; want no sooner than IdleTimeout %v", i, d, idleTimeout)
		}
	}
	t.Logf("%d idle sessions closed, the last %v after the last connected (IdleTimeout %v)", sessions, time.Since(start).Round(time.Millisecond), idleTimeout)
	good.check(t)
	if st := as.l.Stats(); st.SessionErrors != 0 {
		t.Errorf("Stats.SessionErrors %d; want 0: an idle session is no error", st.SessionErrors)
	}
	for _, a := range attackers {
		a.close()
	}
	deadline := time.Now().Add(reactBound)
	for as.l.Stats().ActiveSessions > 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := as.l.Stats().ActiveSessions; n > 1 {
		t.Errorf("Stats.ActiveSessions %d after the idle clients closed; want only the well-behaved client's", n)
	}
}

// Unknown control frame types are read and ignored (SPDY/3 §2.2.1), but
// each is a glitch: a flood of them ends with GOAWAY PROTOCOL_ERROR once
// GlitchBurst are spent.
func TestAttackUnknownControlFlood(t *testing.T) {
	as := startAttackServer(t, ProtoSPDY31, Config{})
	good := as.startGoodClient(t)
	mon := startMonitor(t)
	good.mark()
	var batch []byte
	for i := range 50 {
		typ := spdy.FrameType(11 + i*97%0x7000)
		batch = append(batch, controlFrame(spdy.V3, typ, 0, make([]byte, []int{0, 100, 4000}[i%3]))...)
	}
	n := rounds(attackDuration, func(round int) {
		a := as.dialAttacker(t, attackerOpts{})
		defer a.close()
		a.startReading()
		a.batch(func(fr *spdy.Framer) { fr.WriteSettings(0) })
		sent := 50 * floodUntil(3*DefaultGlitchBurst/50, reactBound, a.gotGoAway, func(int) error { return a.raw(batch) })
		a.expectGoAway(t, spdy.GoAwayProtocolError, reactBound)
		if round == 0 {
			t.Logf("GOAWAY after at most %d unknown control frames (GlitchBurst %d)", sent, DefaultGlitchBurst)
		}
	})
	// Unknown frames are read into the framer's buffer and dropped.
	const heapBound = heapSlack
	mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
	good.check(t)
	if st := as.l.Stats(); st.RateLimited != uint64(n) || st.Glitches < uint64(n*DefaultGlitchBurst) {
		t.Errorf("after %d sessions: Stats.RateLimited %d, Glitches %d; want %d and at least %d", n, st.RateLimited, st.Glitches, n, n*DefaultGlitchBurst)
	}
}

// The other frames that do nothing (Config.GlitchBurst): RST_STREAM for a
// stream that never was, WINDOW_UPDATE or HEADERS for a stream that is
// gone, a PING of the server's parity, CREDENTIAL, streams over
// MAX_CONCURRENT_STREAMS. A flood of any ends with GOAWAY PROTOCOL_ERROR.
func TestAttackGlitchFlood(t *testing.T) {
	as := startAttackServer(t, ProtoSPDY31, Config{MaxConcurrentStreams: 1})
	good := as.startGoodClient(t)
	mon := startMonitor(t)
	good.mark()
	wait := attackRequest(spdy.V3, "GET", "/wait")
	hello := attackRequest(spdy.V3, "GET", "/bytes/1")
	credential := controlFrame(spdy.V3, spdy.TypeCredential, 0, []byte{0, 0, 0, 0})
	for _, tc := range []struct {
		name  string
		setup func(fr *spdy.Framer)
		frame func(fr *spdy.Framer, buf *bytes.Buffer, i int)
	}{
		{"RST_STREAM for a stream that never was", nil, func(fr *spdy.Framer, _ *bytes.Buffer, i int) {
			fr.WriteRstStream(spdy.StreamID(2*i+1), spdy.Cancel)
		}},
		{"WINDOW_UPDATE for a stream that is gone", nil, func(fr *spdy.Framer, _ *bytes.Buffer, _ int) {
			fr.WriteWindowUpdate(1, 1)
		}},
		{"HEADERS for a stream that is gone", nil, func(fr *spdy.Framer, _ *bytes.Buffer, _ int) {
			fr.WriteHeaders(&spdy.HeadersFrame{StreamID: 1, Flags: spdy.FlagFin, Header: []spdy.HeaderField{{Name: "x-a", Value: "b"}}})
		}},
		{"PING of the server's parity", nil, func(fr *spdy.Framer, _ *bytes.Buffer, i int) {
			fr.WritePing(uint32(2*i + 2))
		}},
		{"CREDENTIAL", nil, func(_ *spdy.Framer, buf *bytes.Buffer, _ int) {
			buf.Write(credential)
		}},
		{"streams over MAX_CONCURRENT_STREAMS", func(fr *spdy.Framer) {
			fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: 1, Flags: spdy.FlagFin, Header: wait})
		}, func(fr *spdy.Framer, _ *bytes.Buffer, i int) {
			fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: spdy.StreamID(2*i + 3), Flags: spdy.FlagFin, Header: hello})
		}},
	} {
		a := as.dialAttacker(t, attackerOpts{})
		a.startReading()
		if tc.setup != nil {
			a.batch(tc.setup)
		}
		i, sent := 0, 0
		const perBatch = 50
		floodUntil(3*DefaultGlitchBurst/perBatch, reactBound, a.gotGoAway, func(int) error {
			sent += perBatch
			return a.batch(func(fr *spdy.Framer) {
				for range perBatch {
					tc.frame(fr, &a.wbuf, i)
					i++
				}
			})
		})
		a.settle()
		if !a.gotGoAway() {
			t.Errorf("%s: %d frames and no GOAWAY; want GOAWAY once GlitchBurst (%d) is spent: Config.GlitchBurst counts it as a glitch", tc.name, sent, DefaultGlitchBurst)
		} else {
			a.expectGoAway(t, spdy.GoAwayProtocolError, reactBound)
			t.Logf("%s: GOAWAY after at most %d frames", tc.name, sent)
		}
		a.close()
	}
	const heapBound = heapSlack
	mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
	good.check(t)
}

// Worker exhaustion: many sessions, each keeping MaxConcurrentStreams
// streams on a slow handler at the highest priority, against a small pool.
// A session never holds more than MaxConcurrentStreams slots or waiting
// entries; the goroutines stay within goroutineBound(sessions, slots), as
// a waiting stream has none; and a well-behaved session still gets its
// answers in time.
func TestAttackWorkerExhaustion(t *testing.T) {
	const (
		sessions   = 8
		maxStreams = 16
		slots      = 16
		handlerMS  = 300
		duration   = 2500 * time.Millisecond // longer than goodLatencyBound
	)
	pool := NewPool(slots)
	as := startAttackServer(t, ProtoSPDY31, Config{MaxConcurrentStreams: maxStreams, Pool: pool})
	good := as.startGoodClient(t)
	good.holding = true
	mon := startMonitor(t)
	var maxBusy, maxWaiting int
	mon.also(func() {
		b, w := pool.Stats()
		maxBusy, maxWaiting = max(maxBusy, b), max(maxWaiting, w)
	})
	good.mark()
	hdr := attackRequest(spdy.V3, "GET", fmt.Sprintf("/slow?ms=%d", handlerMS))
	var answered atomic.Int64
	stop := make(chan struct{})
	for range sessions {
		a := as.dialAttacker(t, attackerOpts{})
		var mu sync.Mutex
		next := spdy.StreamID(1)
		open := func(n int) {
			mu.Lock()
			defer mu.Unlock()
			if isClosedChan(stop) {
				return
			}
			a.batch(func(fr *spdy.Framer) {
				for range n {
					fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: next, Priority: 0, Flags: spdy.FlagFin, Header: hdr})
					next += 2
				}
			})
		}
		// Each answer, or reset, makes room for the next stream.
		a.onFrame = func(f spdy.Frame) {
			switch f := f.(type) {
			case *spdy.DataFrame:
				if f.Flags&spdy.FlagFin != 0 {
					answered.Add(1)
					open(1)
				}
			case *spdy.RstStreamFrame:
				open(1)
			}
		}
		a.startReading()
		open(maxStreams)
	}
	time.Sleep(duration)
	close(stop)
	const heapBound = heapSlack
	mon.check(t, heapBound, goroutineBound(sessions, slots))
	good.check(t)
	if good.failed() {
		t.Errorf("%d sessions at priority 0 kept the %d slots busy and up to %d streams waiting, and the well-behaved session's requests waited behind them: the pool orders waiting streams by priority then arrival across all sessions, with no share per session (Apache mod_http2 caps and lowers a connection's workers)",
			sessions, slots, maxWaiting)
	}
	t.Logf("%d sessions × %d streams on a %d ms handler, %d slots: %d answers in %v; pool busy at most %d, waiting at most %d",
		sessions, maxStreams, handlerMS, slots, answered.Load(), duration, maxBusy, maxWaiting)
	if maxBusy > slots {
		t.Errorf("pool busy %d; want at most its %d slots", maxBusy, slots)
	}
	if maxWaiting > sessions*maxStreams {
		t.Errorf("pool waiting %d; want at most sessions × MaxConcurrentStreams = %d", maxWaiting, sessions*maxStreams)
	}
	if maxWaiting == 0 {
		t.Errorf("no stream waited for a slot; the attack did not saturate the pool")
	}
	if st := as.l.Stats(); st.RefusedStreams != 0 {
		t.Errorf("Stats.RefusedStreams %d; want 0: no session went over MaxConcurrentStreams", st.RefusedStreams)
	}
}

// Upload that no handler reads: every stream's body goes to a handler that
// never reads it. What the server buffers is bounded per stream by the
// window it advertised (InitialWindowSize; V2StreamBuffer on SPDY/2, which
// has no flow control) and per session by twice SessionWindowSize: the
// session window is credited as data is buffered only while the session
// holds less than SessionWindowSize. DATA over a stream's window is
// RST_STREAM FLOW_CONTROL_ERROR.
func TestAttackUploadNotRead(t *testing.T) {
	const (
		sessionWindow = 256 << 10
		streamWindow  = DefaultInitialWindowSize
		v2Buffer      = 64 << 10
		streams       = DefaultMaxConcurrentStreams
		sessionBound  = 2 * sessionWindow
	)
	forEach(t, versions, func(t *testing.T, proto string) {
		// Pool slots for every stream: TestAttackWorkerExhaustion is about
		// slots; this test is about bytes.
		as := startAttackServer(t, proto, Config{SessionWindowSize: sessionWindow, V2StreamBuffer: v2Buffer, Pool: NewPool(2 * streams)})
		good := as.startGoodClient(t)
		good.holding = true
		mon := startMonitor(t)
		var maxStream, maxSession int
		mon.also(func() {
			st, se := as.buffered()
			maxStream, maxSession = max(maxStream, st), max(maxSession, se)
		})
		good.mark()
		v := versionOf(proto)
		a := as.dialAttacker(t, attackerOpts{})
		var sessWin atomic.Int64
		var credited1 atomic.Bool // the server credited stream 1's window
		sessWin.Store(DefaultInitialWindowSize)
		a.onFrame = func(f spdy.Frame) {
			if w, ok := f.(*spdy.WindowUpdateFrame); ok {
				switch w.StreamID {
				case 0:
					sessWin.Add(int64(w.Delta))
				case 1:
					credited1.Store(true)
				}
			}
		}
		a.sync(t)
		hdr := attackRequest(v, "POST", "/wait")
		chunk := make([]byte, 16<<10)
		perStream := streamWindow
		if v == spdy.V2 {
			perStream = v2Buffer - 1
		}
		id := spdy.StreamID(1)
		if v != spdy.V2 {
			// One byte over the stream window.
			a.batch(func(fr *spdy.Framer) {
				fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: 1, Header: hdr})
				fr.WriteData(1, 0, make([]byte, streamWindow))
				fr.WriteData(1, 0, []byte{1})
			})
			a.sync(t)
			switch got := a.rstCount(spdy.FlowControlError); {
			case got == 1:
			case got == 0 && viaGateway(t) && credited1.Load():
				// The gateway streams the body to the backend as it
				// arrives, so the server may have widened the window
				// before the last byte came: then it is not over.
				t.Logf("stream 1's window was credited before the extra byte arrived: not over the window")
			default:
				t.Errorf("DATA one byte over the stream window: %d RST_STREAM FLOW_CONTROL_ERROR; want 1", got)
			}
			sessWin.Add(-streamWindow - 1)
			id = 3
		}
		a.batch(func(fr *spdy.Framer) {
			for i := range streams {
				fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: id + spdy.StreamID(2*i), Header: hdr})
			}
		})
		left := make([]int, streams)
		for i := range left {
			left[i] = perStream
		}
		// Send round robin within the windows; stop once nothing more may
		// be sent for 300 ms.
		stalled := time.Time{}
		var sent int64
		for {
			progress := false
			err := a.batch(func(fr *spdy.Framer) {
				for i := range left {
					k := min(left[i], len(chunk))
					if proto == ProtoSPDY31 {
						k = min(k, int(sessWin.Load()))
					}
					if k <= 0 {
						continue
					}
					fr.WriteData(id+spdy.StreamID(2*i), 0, chunk[:k])
					left[i] -= k
					sessWin.Add(int64(-k))
					sent += int64(k)
					progress = true
				}
			})
			if err != nil {
				break
			}
			if progress {
				stalled = time.Time{}
				continue
			}
			if stalled.IsZero() {
				stalled = time.Now()
			} else if time.Since(stalled) > 300*time.Millisecond {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if v == spdy.V2 {
			// A SPDY/2 stream just under V2StreamBuffer must not take one
			// more frame of the largest size the session accepts.
			a.batch(func(fr *spdy.Framer) {
				for i := range 4 {
					fr.WriteData(id+spdy.StreamID(2*i), 0, make([]byte, v2Buffer))
				}
			})
			sent += 4 * v2Buffer
		}
		if proto == ProtoSPDY31 {
			a.sync(t)
		} else {
			// Without a session window, the session stops reading once
			// its budget is full: wait for the buffered bytes to settle.
			settle(t, func() int { _, se := as.buffered(); return se })
		}
		streamBound := streamWindow
		if v == spdy.V2 {
			streamBound = v2Buffer
		}
		// Each of the streams is an open connection of the http.Server
		// with a waiting handler: net/http's 4 KiB read and write
		// buffers, the request, the StreamConn; 16 KiB is generous.
		const handlerState = 16 << 10
		const heapBound = heapSlack + sessionBound + streams*handlerState
		mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
		good.check(t)
		t.Logf("%d streams, %d bytes sent; buffered at most %d bytes for one stream (bound %d) and %d for the session (bound %d)",
			streams, sent, maxStream, streamBound, maxSession, sessionBound)
		if maxStream > streamBound {
			t.Errorf("one stream buffered %d bytes no handler read; want at most %d (V2StreamBuffer)",
				maxStream, streamBound)
		}
		if maxSession > sessionBound {
			t.Errorf("one session buffered %d bytes no handler read (%d streams × up to %d); want at most %d (2 × SessionWindowSize) on %s",
				maxSession, streams, streamBound, sessionBound, proto)
		}
		if a.gotGoAway() {
			t.Errorf("GOAWAY for an upload within the windows")
		}
	})
}

// settle waits until f returns the same value for 200 ms (at most 5 s).
func settle(t *testing.T, f func() int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	last, since := f(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		if v := f(); v != last {
			last, since = v, time.Now()
		} else if time.Since(since) >= 200*time.Millisecond {
			return
		}
	}
	t.Fatalf("value still changing after 5s (last %d)", last)
}
