package spdymux

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The HTTP/2 attack tests: one per known attack on HTTP/2 servers, each
// against a real listener over loopback TCP, the attacker speaking
// cleartext HTTP/2 with prior knowledge (see attack_h2_helpers_test.go).
// As the SPDY ones (attack_test.go), each checks the server's documented
// reaction (the frame it sends, the Stats counter that moves), the heap and
// goroutines while the attack runs, and a well-behaved HTTP/2 client on a
// connection of its own, answered correctly within goodLatencyBound
// throughout. docs/limits.md lists the limits they cover.

// Rapid Reset (CVE-2023-44487): HEADERS then RST_STREAM(CANCEL), again and
// again. Once ResetBurst resets are spent (refilled at ResetRate per
// second) the connection ends with GOAWAY ENHANCE_YOUR_CALM, counted in
// Stats.RateLimited.
func TestAttackH2RapidReset(t *testing.T) {
	for _, tc := range []struct {
		name  string
		burst int
		rate  float64
	}{
		{"burst 100", 100, DefaultResetRate},
		{"default burst", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := startAttackServer(t, ProtoH2C, Config{ResetBurst: tc.burst, ResetRate: tc.rate})
			burst, rate := tc.burst, tc.rate
			if burst == 0 {
				burst, rate = DefaultResetBurst, DefaultResetRate
			}
			good := as.startGoodH2Client(t)
			mon := startMonitor(t)
			good.mark()
			req := h2Request("GET", "/wait")
			n := rounds(attackDuration, func(round int) {
				a := as.dialH2(t, h2AttackerOpts{})
				defer a.close()
				a.startReading()
				start := time.Now()
				id := uint32(1)
				const perBatch = 10
				// Ten times the burst is far more than the limit allows.
				floodUntil(10*burst/perBatch, reactBound, a.gotGoAway, func(int) error {
					return a.batch(func(fr *http2.Framer) {
						for range perBatch {
							a.headersLocked(fr, id, true, req)
							fr.WriteRSTStream(id, http2.ErrCodeCancel)
							id += 2
						}
					})
				})
				last := a.expectGoAway(t, http2.ErrCodeEnhanceYourCalm, reactBound)
				elapsed := time.Since(start)
				accepted := int(last+1) / 2
				allowed := burst + int(rate*elapsed.Seconds()) + 1
				if round == 0 {
					t.Logf("GOAWAY(ENHANCE_YOUR_CALM) after %d streams in %v (burst %d, rate %v/s: at most %d)", accepted, elapsed.Round(time.Millisecond), burst, rate, allowed)
				}
				if accepted > allowed || accepted < burst {
					t.Errorf("round %d: GOAWAY's last stream id %d: %d streams taken; want %d to %d (the reset budget and its refill)", round, last, accepted, burst, allowed)
				}
			})
			// Every stream is reset at once: a handful exist at any time.
			const heapBound = heapSlack
			mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
			good.check(t)
			if st := as.l.Stats(); st.RateLimited != uint64(n) || st.SessionErrors != uint64(n) {
				t.Errorf("after %d attacking connections: Stats.RateLimited %d, SessionErrors %d; want %d each", n, st.RateLimited, st.SessionErrors, n)
			}
		})
	}
}

// MadeYouReset (CVE-2025-8671): the client makes the server reset streams,
// so that no count of the client's own resets sees them. Every RST_STREAM
// the client earns is a glitch: once GlitchBurst are spent the connection
// ends with GOAWAY ENHANCE_YOUR_CALM (Stats.RateLimited), and every reset
// is in Stats.StreamErrors.
func TestAttackH2MadeYouReset(t *testing.T) {
	// A small stream window, so that overrunning it is cheap.
	const window = 1024
	as := startAttackServer(t, ProtoH2C, Config{InitialWindowSize: window})
	good := as.startGoodH2Client(t)
	mon := startMonitor(t)
	good.mark()
	post := h2Request("POST", "/wait")
	for _, tc := range []struct {
		name  string
		code  http2.ErrCode
		frame func(a *h2Attacker, fr *http2.Framer, id uint32)
	}{
		{"WINDOW_UPDATE overflowing a stream window", http2.ErrCodeFlowControl, func(a *h2Attacker, fr *http2.Framer, id uint32) {
			a.headersLocked(fr, id, true, h2Request("GET", "/wait"))
			fr.WriteWindowUpdate(id, 1<<31-1)
		}},
		{"DATA on a half-closed stream", http2.ErrCodeStreamClosed, func(a *h2Attacker, fr *http2.Framer, id uint32) {
			a.headersLocked(fr, id, true, h2Request("GET", "/wait"))
			fr.WriteData(id, false, []byte{1})
		}},
		{"malformed request header", http2.ErrCodeProtocol, func(a *h2Attacker, fr *http2.Framer, id uint32) {
			a.headersLocked(fr, id, true, h2Request("GET", "/wait", hpack.HeaderField{Name: "X-Upper", Value: "1"}))
		}},
		{"DATA beyond the stream window", http2.ErrCodeFlowControl, func(a *h2Attacker, fr *http2.Framer, id uint32) {
			a.headersLocked(fr, id, false, post)
			fr.WriteData(id, true, make([]byte, window+1))
		}},
		{"DATA beyond content-length", http2.ErrCodeProtocol, func(a *h2Attacker, fr *http2.Framer, id uint32) {
			a.headersLocked(fr, id, false, h2Request("POST", "/wait", hpack.HeaderField{Name: "content-length", Value: "1"}))
			fr.WriteData(id, true, []byte{1, 2})
		}},
		{"trailers without END_STREAM", http2.ErrCodeProtocol, func(a *h2Attacker, fr *http2.Framer, id uint32) {
			a.headersLocked(fr, id, false, post)
			a.headersLocked(fr, id, false, []hpack.HeaderField{{Name: "x-trailer", Value: "1"}})
		}},
		{"PRIORITY: an idle stream depends on itself", http2.ErrCodeProtocol, func(a *h2Attacker, fr *http2.Framer, id uint32) {
			fr.WritePriority(id, http2.PriorityParam{StreamDep: id, Weight: 15})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := as.l.Stats()
			a := as.dialH2(t, h2AttackerOpts{})
			defer a.close()
			a.startReading()
			start := time.Now()
			id := uint32(1)
			sent := 0
			const perBatch = 20
			floodUntil(3*DefaultGlitchBurst/perBatch, reactBound, a.gotGoAway, func(int) error {
				sent += perBatch
				return a.batch(func(fr *http2.Framer) {
					for range perBatch {
						tc.frame(a, fr, id)
						id += 2
					}
				})
			})
			got := a.awaitGoAway(2 * reactBound)
			elapsed := time.Since(start)
			rst := a.rstCount(tc.code)
			if !got {
				t.Fatalf("%d frames, %d answered with RST_STREAM %v, and no GOAWAY; want GOAWAY(ENHANCE_YOUR_CALM) once GlitchBurst (%d) is spent: every RST_STREAM the client earns is a glitch",
					sent, rst, tc.code, DefaultGlitchBurst)
			}
			a.expectGoAway(t, http2.ErrCodeEnhanceYourCalm, reactBound)
			rst = a.rstCount(tc.code)
			allowed := DefaultGlitchBurst + int(DefaultGlitchRate*elapsed.Seconds()) + 1
			t.Logf("GOAWAY(ENHANCE_YOUR_CALM) after %d RST_STREAM(%v) in %v (at most %d)", rst, tc.code, elapsed.Round(time.Millisecond), allowed)
			if rst < DefaultGlitchBurst/2 || rst > allowed {
				t.Errorf("%d RST_STREAM(%v) before GOAWAY; want about GlitchBurst, at most %d", rst, tc.code, allowed)
			}
			st := as.l.Stats()
			if d := st.RateLimited - before.RateLimited; d != 1 {
				t.Errorf("Stats.RateLimited moved by %d; want 1", d)
			}
			if d := st.StreamErrors - before.StreamErrors; d < uint64(rst) {
				t.Errorf("Stats.StreamErrors moved by %d; want at least the %d resets", d, rst)
			}
		})
	}
	// Streams are reset as they come; their handlers return.
	const heapBound = heapSlack
	mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
	good.check(t)
}

// CONTINUATION flood (CVE-2024-27316, CVE-2024-28182, CVE-2023-45288):
// HEADERS without END_HEADERS, then CONTINUATION frames without end. A
// block of more than MaxContinuationFrames CONTINUATION frames, whatever
// they hold, ends the connection with GOAWAY ENHANCE_YOUR_CALM
// (Stats.RateLimited); a block whose compressed bytes pass MaxHeaderBytes
// too (Stats.SessionErrors). The server reads no CONTINUATION past the
// limit, and what it buffers of an unfinished field is bounded by the block.
func TestAttackH2ContinuationFlood(t *testing.T) {
	// A literal of 1 MiB - 64 bytes (under MaxHeaderBytes, the HPACK
	// decoder's string limit) that never ends: the decoder must buffer it.
	hugeStart := appendHpackInt(hpackString([]byte{0x00}, "x"), 0, 7, 1<<20-64)
	huge := bytes.Repeat([]byte{'a'}, h2MinFrame)
	// Whole fields of 126 bytes, as many as a frame takes.
	field := literalBlock(hpack.HeaderField{Name: "x-f", Value: strings.Repeat("v", 120)})
	fields := bytes.Repeat(field, h2MinFrame/len(field))
	for _, tc := range []struct {
		name     string
		cfg      Config
		first    []byte // the HEADERS fragment, after the request
		frag     []byte // each CONTINUATION's fragment
		sessions int
		maxConts int // the most CONTINUATION frames the server may read
		limited  bool
	}{
		{"endless CONTINUATION", Config{}, nil, literalBlock(hpack.HeaderField{Name: "x-c", Value: "1"}), 1, DefaultMaxContinuationFrames + 1, true},
		{"empty CONTINUATION", Config{}, nil, nil, 1, DefaultMaxContinuationFrames + 1, true},
		{"huge fragments of one field", Config{}, hugeStart, huge, 4, DefaultMaxContinuationFrames + 1, true},
		{"huge fragments past MaxHeaderBytes", Config{MaxHeaderBytes: 64 << 10}, fields[len(field):], fields, 4, 64<<10/h2MinFrame + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conts := newFrameCounter("CONTINUATION")
			tc.cfg.Trace = conts.trace
			as := startAttackServer(t, ProtoH2C, tc.cfg)
			good := as.startGoodH2Client(t)
			mon := startMonitor(t)
			good.mark()
			var sent atomic.Int64
			n := rounds(attackDuration, func(round int) {
				var wg sync.WaitGroup
				for range tc.sessions {
					wg.Add(1)
					go func() {
						defer wg.Done()
						a := as.dialH2(t, h2AttackerOpts{})
						defer a.close()
						a.startReading()
						a.batch(func(fr *http2.Framer) {
							first := append(bytes.Clone(a.blockLocked(h2Request("GET", "/wait"))), tc.first...)
							fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: true})
						})
						k := floodUntil(1<<20, reactBound, a.gotGoAway, func(int) error {
							return a.batch(func(fr *http2.Framer) {
								for range 8 {
									fr.WriteContinuation(1, false, tc.frag)
								}
							})
						})
						sent.Add(int64(8 * k))
						a.expectGoAway(t, http2.ErrCodeEnhanceYourCalm, reactBound)
					}()
				}
				wg.Wait()
			})
			// What a session holds of a block: its fields, or the part of a
			// field the decoder buffers, at most the block (MaxHeaderBytes),
			// in a buffer that may have grown to twice that.
			heapBound := int64(heapSlack + tc.sessions*2*(DefaultMaxContinuationFrames+1)*h2MinFrame)
			mon.check(t, heapBound, goroutineBound(tc.sessions, as.pool.Slots()))
			good.check(t)
			most := conts.most()
			t.Logf("%d connections sent %d CONTINUATION frames; the server read at most %d of one block (limit %d)", n*tc.sessions, sent.Load(), most, tc.maxConts)
			if most > tc.maxConts {
				t.Errorf("the server read %d CONTINUATION frames of one block; want at most %d", most, tc.maxConts)
			}
			st := as.l.Stats()
			if st.SessionErrors != uint64(n*tc.sessions) {
				t.Errorf("after %d floods: Stats.SessionErrors %d; want %d", n*tc.sessions, st.SessionErrors, n*tc.sessions)
			}
			if tc.limited && st.RateLimited != uint64(n*tc.sessions) {
				t.Errorf("after %d floods: Stats.RateLimited %d; want %d", n*tc.sessions, st.RateLimited, n*tc.sessions)
			}
			if w := as.waits.Load(); w != 0 {
				t.Errorf("%d unfinished header blocks reached the handler; want none", w)
			}
		})
	}
}

// HPACK bomb (CVE-2016-6581): one dynamic-table entry of 4 KiB referenced
// thousands of times, each reference one byte on the wire. The fields are
// sized as they are decoded: past MaxHeaderBytes nothing more is kept and
// the request is answered 431 (a glitch, Stats.Glitches); the connection
// goes on. A block over the limits leaves nothing behind in a connection
// that then sits idle.
func TestAttackH2HPACKBomb(t *testing.T) {
	t.Run("one entry referenced 10,000 times", func(t *testing.T) {
		as := startAttackServer(t, ProtoH2C, Config{})
		good := as.startGoodH2Client(t)
		mon := startMonitor(t)
		good.mark()
		const sessions, refs = 4, 10_000
		bomb := repeatBlock("/wait", hpack.HeaderField{Name: "x-bomb", Value: strings.Repeat("a", 4000)}, refs)
		// The bomb on stream 1, then a request on stream 3: the
		// connection goes on.
		frames := h2Frames(func(fr *http2.Framer) {
			writeH2Block(fr, 1, bomb, true)
			writeH2Block(fr, 3, literalBlock(h2Request("GET", "/bytes/10")...), true)
		})
		n := rounds(attackDuration, func(round int) {
			var wg sync.WaitGroup
			for range sessions {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a := as.dialH2(t, h2AttackerOpts{})
					defer a.close()
					a.startReading()
					a.raw(frames)
					if !waitUntil(reactBound, func() bool { return a.statusCount("431") == 1 && a.statusCount("200") == 1 }) {
						t.Errorf("bomb on stream 1, a request on stream 3: got %s within %v; want one 431 and one 200", a.tally(), reactBound)
					}
					if a.gotGoAway() {
						t.Errorf("GOAWAY(%v) for a header block under the limits on the wire", a.gaCode)
					}
				}()
			}
			wg.Wait()
		})
		t.Logf("%d bombs: blocks of %d bytes that decode to %d", n*sessions, len(bomb), refs*(4000+6+32))
		// Without the limit each bomb would be 40 MB of fields.
		const heapBound = heapSlack
		mon.check(t, heapBound, goroutineBound(sessions, as.pool.Slots()))
		good.check(t)
		st := as.l.Stats()
		if st.Glitches < uint64(n*sessions) || st.SessionErrors != 0 {
			t.Errorf("after %d bombs: Stats.Glitches %d, SessionErrors %d; want at least %d and 0", n*sessions, st.Glitches, st.SessionErrors, n*sessions)
		}
		if w := as.waits.Load(); w != 0 {
			t.Errorf("%d bombs reached the handler; want none", w)
		}
	})

	t.Run("nothing kept by idle connections", func(t *testing.T) {
		// One block per connection of 101 distinct fields of 5000 bytes
		// (over MaxHeaderFields, here 100), the connections left open
		// and idle.
		const sessions, maxFields = 32, 100
		fields := h2Request("GET", "/wait")
		for i := range maxFields + 1 - len(fields) {
			fields = append(fields, hpack.HeaderField{Name: fmt.Sprintf("x-%04d", i), Value: fmt.Sprintf("%04d", i) + strings.Repeat("a", 4996)})
		}
		frames := h2Frames(func(fr *http2.Framer) { writeH2Block(fr, 1, literalBlock(fields...), true) })
		as := startAttackServer(t, ProtoH2C, Config{MaxHeaderFields: maxFields})
		good := as.startGoodH2Client(t)
		mon := startMonitor(t)
		good.mark()
		for range sessions {
			a := as.dialH2(t, h2AttackerOpts{})
			a.startReading()
			a.raw(frames)
			if !waitUntil(reactBound, func() bool { return a.statusCount("431") == 1 }) {
				t.Fatalf("a block of %d fields: got %s within %v; want 431", len(fields), a.tally(), reactBound)
			}
		}
		t.Logf("%d connections each sent a block of %d bytes, %d fields, and sit idle", sessions, len(frames), len(fields))
		// Each idle connection keeps what it always keeps, not the fields
		// of a block it refused: 32 × 500 KB otherwise.
		const heapBound = heapSlack
		mon.check(t, heapBound, goroutineBound(sessions, as.pool.Slots()),
			"the fields decoded before a block passed the limits stay referenced from the session's field slice")
		good.check(t)
	})
}

// Field-count amplification (CVE-2026-49975): a tiny dynamic-table entry,
// "a:" (33 accounted bytes) or a cookie crumb, referenced 30,000 times in
// one block of 30 KB, under MaxHeaderBytes, while the client holds its
// window at zero to pin what the request holds. Every field is counted:
// past MaxHeaderFields nothing more is kept and the request is answered
// 431 (Stats.Glitches); the 431's body waits for the window until
// WindowTimeout resets the stream (Stats.WindowTimeouts).
func TestAttackH2FieldCountAmplification(t *testing.T) {
	const windowTimeout = 300 * time.Millisecond
	as := startAttackServer(t, ProtoH2C, Config{WindowTimeout: windowTimeout})
	good := as.startGoodH2Client(t)
	mon := startMonitor(t)
	good.mark()
	const sessions, streams, refs = 2, 20, 30_000
	tiny := repeatBlock("/wait", hpack.HeaderField{Name: "a"}, refs)
	crumbs := repeatBlock("/wait", hpack.HeaderField{Name: "cookie", Value: "a"}, refs)
	frames := h2Frames(func(fr *http2.Framer) {
		for i := range streams {
			block := tiny
			if i%2 == 1 {
				block = crumbs
			}
			writeH2Block(fr, uint32(2*i+1), block, true)
		}
	})
	var attackers []*h2Attacker
	start := time.Now()
	for range sessions {
		a := as.dialH2(t, h2AttackerOpts{settings: []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 0}}})
		a.startReading()
		a.raw(frames)
		attackers = append(attackers, a)
	}
	for i, a := range attackers {
		if !waitUntil(2*reactBound, func() bool { return a.statusCount("431") == streams }) {
			t.Errorf("connection %d: got %s within %v; want %d × 431", i, a.tally(), reactBound, streams)
		}
	}
	// The 431s' bodies wait for a window that stays shut.
	for i, a := range attackers {
		if !waitUntil(windowTimeout+reactBound, func() bool { return a.rstCount(http2.ErrCodeCancel) == streams }) {
			t.Errorf("connection %d: %d of %d streams reset with CANCEL within WindowTimeout %v (+%v)", i, a.rstCount(http2.ErrCodeCancel), streams, windowTimeout, reactBound)
		}
	}
	elapsed := time.Since(start)
	// Without the count each request would be 30,000 fields through
	// HTTP/1.1 into a handler held by the shut window: megabytes each.
	const heapBound = heapSlack
	mon.check(t, heapBound, goroutineBound(sessions, as.pool.Slots()))
	good.check(t)
	t.Logf("%d requests of %d fields in blocks of %d bytes answered 431, reset after %v (WindowTimeout %v)", sessions*streams, refs+4, len(tiny), elapsed.Round(time.Millisecond), windowTimeout)
	st := as.l.Stats()
	if st.Glitches < sessions*streams || st.WindowTimeouts != sessions*streams {
		t.Errorf("Stats.Glitches %d, WindowTimeouts %d; want at least %d and %d", st.Glitches, st.WindowTimeouts, sessions*streams, sessions*streams)
	}
	if w := as.waits.Load(); w != 0 {
		t.Errorf("%d requests over MaxHeaderFields reached the handler; want none", w)
	}
	for _, a := range attackers {
		if a.gotGoAway() {
			t.Errorf("GOAWAY(%v); want the connections to go on", a.gaCode)
		}
	}
}

// PING flood (CVE-2019-9512). A client that reads the ACKs is served,
// however many PINGs it sends. One that does not read makes the ACKs queue
// up: the connection ends with GOAWAY ENHANCE_YOUR_CALM
// (MaxQueuedControlFrames, Stats.SessionErrors).
func TestAttackH2PingFlood(t *testing.T) {
	t.Run("reading", func(t *testing.T) {
		as := startAttackServer(t, ProtoH2C, Config{})
		good := as.startGoodH2Client(t)
		a := as.dialH2(t, h2AttackerOpts{})
		a.startReading()
		mon := startMonitor(t)
		good.mark()
		const pings, perBatch = 10000, 10
		var k uint64
		sent := perBatch * floodUntil(pings/perBatch, 10*time.Second, a.isEnded, func(int) error {
			return a.batch(func(fr *http2.Framer) {
				for range perBatch {
					k++
					fr.WritePing(false, [8]byte{7: byte(k), 6: byte(k >> 8)})
				}
			})
		})
		waitUntil(2*reactBound, func() bool {
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.pingAcks >= sent || a.isEnded()
		})
		const heapBound = heapSlack
		mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
		good.check(t)
		a.mu.Lock()
		acked := a.pingAcks
		a.mu.Unlock()
		t.Logf("%d PINGs sent in batches of %d, %d acknowledged", sent, perBatch, acked)
		if a.gotGoAway() {
			t.Errorf("GOAWAY(%v) after %d PINGs from a client that read every ACK; want every PING served", a.gaCode, sent)
		} else if acked != sent {
			t.Errorf("%d of %d PINGs acknowledged", acked, sent)
		}
	})

	t.Run("not reading", func(t *testing.T) {
		as := startAttackServerSmallSend(t, ProtoH2C, Config{})
		good := as.startGoodH2Client(t)
		mon := startMonitor(t)
		good.mark()
		n := rounds(attackDuration, func(round int) {
			a := as.dialH2(t, h2AttackerOpts{recvBuffer: 4096})
			defer a.close()
			const perBatch = 100
			sent, cut := a.floodUnread(as, perBatch, func(fr *http2.Framer) {
				for range perBatch {
					fr.WritePing(false, [8]byte{})
				}
			})
			if !cut {
				t.Fatalf("no reaction to %d PINGs from a client that reads nothing", sent)
			}
			a.expectGoAway(t, http2.ErrCodeEnhanceYourCalm, reactBound)
			a.mu.Lock()
			acked := a.pingAcks
			a.mu.Unlock()
			if round == 0 {
				t.Logf("cut off after %d PINGs; %d acknowledged before GOAWAY", sent, acked)
			}
			if acked >= sent {
				t.Errorf("%d of %d PINGs acknowledged; want the ACKs cut at the queue limit", acked, sent)
			}
		})
		// The queue holds at most MaxQueuedControlFrames ACKs.
		const heapBound = heapSlack
		mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
		good.check(t)
		if st := as.l.Stats(); st.SessionErrors != uint64(n) {
			t.Errorf("after %d attacking connections: Stats.SessionErrors %d; want %d", n, st.SessionErrors, n)
		}
	})
}

// SETTINGS flood (CVE-2019-9515). Every SETTINGS frame after the first is
// a glitch: a client that reads the ACKs is cut off with GOAWAY
// ENHANCE_YOUR_CALM once GlitchBurst are spent (Stats.RateLimited); one
// that does not read makes the ACKs queue up (MaxQueuedControlFrames,
// Stats.SessionErrors). A SETTINGS frame of more than MaxSettingsEntries
// entries ends the connection at once.
func TestAttackH2SettingsFlood(t *testing.T) {
	flood := func(fr *http2.Framer) {
		for range 100 {
			fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
		}
	}
	t.Run("reading", func(t *testing.T) {
		as := startAttackServer(t, ProtoH2C, Config{})
		good := as.startGoodH2Client(t)
		mon := startMonitor(t)
		good.mark()
		n := rounds(attackDuration, func(round int) {
			a := as.dialH2(t, h2AttackerOpts{})
			defer a.close()
			a.startReading()
			sent := 100 * floodUntil(3*DefaultGlitchBurst/100, reactBound, a.gotGoAway, func(int) error { return a.batch(flood) })
			if !a.awaitGoAway(2 * reactBound) {
				t.Fatalf("%d SETTINGS frames and no GOAWAY; want GOAWAY(ENHANCE_YOUR_CALM) once GlitchBurst (%d) is spent: SETTINGS after the first is a glitch (Config.GlitchBurst)", sent, DefaultGlitchBurst)
			}
			a.expectGoAway(t, http2.ErrCodeEnhanceYourCalm, reactBound)
			if round == 0 {
				a.mu.Lock()
				t.Logf("GOAWAY(ENHANCE_YOUR_CALM) after at most %d SETTINGS frames, %d acknowledged (GlitchBurst %d)", sent, a.settingsAck, DefaultGlitchBurst)
				a.mu.Unlock()
			}
		})
		const heapBound = heapSlack
		mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
		good.check(t)
		st := as.l.Stats()
		if st.RateLimited != uint64(n) || st.Glitches < uint64(n*DefaultGlitchBurst) {
			t.Errorf("after %d attacking connections: Stats.RateLimited %d, Glitches %d; want %d and at least %d", n, st.RateLimited, st.Glitches, n, n*DefaultGlitchBurst)
		}
	})

	t.Run("not reading", func(t *testing.T) {
		// The glitch budget is off, so the queue limit is what stops it.
		as := startAttackServerSmallSend(t, ProtoH2C, Config{GlitchBurst: -1})
		good := as.startGoodH2Client(t)
		mon := startMonitor(t)
		good.mark()
		n := rounds(attackDuration, func(round int) {
			a := as.dialH2(t, h2AttackerOpts{recvBuffer: 4096})
			defer a.close()
			sent, cut := a.floodUnread(as, 100, flood)
			if !cut {
				t.Fatalf("no reaction to %d SETTINGS frames from a client that reads nothing", sent)
			}
			a.expectGoAway(t, http2.ErrCodeEnhanceYourCalm, reactBound)
			a.mu.Lock()
			acked := a.settingsAck
			a.mu.Unlock()
			if round == 0 {
				t.Logf("cut off after %d SETTINGS frames; %d acknowledged before GOAWAY", sent, acked)
			}
			if acked >= sent {
				t.Errorf("%d of %d SETTINGS acknowledged; want the ACKs cut at the queue limit", acked, sent)
			}
		})
		const heapBound = heapSlack
		mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
		good.check(t)
		if st := as.l.Stats(); st.SessionErrors != uint64(n) {
			t.Errorf("after %d attacking connections: Stats.SessionErrors %d; want %d", n, st.SessionErrors, n)
		}
	})

	t.Run("too many entries", func(t *testing.T) {
		as := startAttackServer(t, ProtoH2C, Config{})
		good := as.startGoodH2Client(t)
		mon := startMonitor(t)
		good.mark()
		entries := func(n int) []http2.Setting {
			s := make([]http2.Setting, n)
			for i := range s {
				s[i] = http2.Setting{ID: http2.SettingID(0x100 + i), Val: 1} // unknown ids, ignored
			}
			return s
		}
		goAways := 0
		rounds(attackDuration, func(round int) {
			// Within the limit in the preface; the next one over it.
			a := as.dialH2(t, h2AttackerOpts{settings: entries(DefaultMaxSettingsEntries)})
			defer a.close()
			a.sync(t)
			if a.gotGoAway() {
				t.Fatalf("GOAWAY for a SETTINGS frame of %d entries; want it taken", DefaultMaxSettingsEntries)
			}
			a.batch(func(fr *http2.Framer) { fr.WriteSettings(entries(DefaultMaxSettingsEntries + 1)...) })
			a.expectGoAway(t, http2.ErrCodeEnhanceYourCalm, reactBound)
			goAways++
		})
		const heapBound = heapSlack
		mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
		good.check(t)
		if st := as.l.Stats(); st.SessionErrors != uint64(goAways) {
			t.Errorf("Stats.SessionErrors %d; want %d", st.SessionErrors, goAways)
		}
	})
}

// Reset flood (CVE-2019-9514): frames that each earn a RST_STREAM, here a
// PRIORITY frame that makes an idle stream depend on itself (RFC 9113
// §5.3.1), 14 bytes that open nothing. A client that does not read makes
// the RST_STREAMs queue up: GOAWAY ENHANCE_YOUR_CALM
// (MaxQueuedControlFrames, Stats.SessionErrors). A client that reads is
// stopped by the glitch budget (TestAttackH2MadeYouReset).
func TestAttackH2ResetFlood(t *testing.T) {
	// The glitch budget is off, so the queue limit is what stops it.
	as := startAttackServerSmallSend(t, ProtoH2C, Config{GlitchBurst: -1})
	good := as.startGoodH2Client(t)
	mon := startMonitor(t)
	good.mark()
	n := rounds(attackDuration, func(round int) {
		a := as.dialH2(t, h2AttackerOpts{recvBuffer: 4096})
		defer a.close()
		id := uint32(1)
		const perBatch = 500
		sent, cut := a.floodUnread(as, perBatch, func(fr *http2.Framer) {
			for range perBatch {
				fr.WritePriority(id, http2.PriorityParam{StreamDep: id})
				id += 2
			}
		})
		if !cut {
			t.Fatalf("no reaction to %d frames that each earn RST_STREAM from a client that reads nothing", sent)
		}
		a.expectGoAway(t, http2.ErrCodeEnhanceYourCalm, reactBound)
		rst := a.rstCount(http2.ErrCodeProtocol)
		if round == 0 {
			t.Logf("cut off after %d frames; %d RST_STREAM(PROTOCOL_ERROR) came before GOAWAY", sent, rst)
		}
		if rst >= sent {
			t.Errorf("%d RST_STREAMs for %d frames; want them cut at the queue limit", rst, sent)
		}
	})
	const heapBound = heapSlack
	mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
	good.check(t)
	if st := as.l.Stats(); st.SessionErrors != uint64(n) {
		t.Errorf("after %d attacking connections: Stats.SessionErrors %d; want %d", n, st.SessionErrors, n)
	}
}

// 0-length headers (CVE-2019-9516): fields with an empty name and an empty
// value, one byte each once indexed, 32 accounted bytes each here. A
// request with one is malformed: RST_STREAM PROTOCOL_ERROR, a glitch, so a
// flood of them ends in GOAWAY ENHANCE_YOUR_CALM. 100,000 of them in one
// block are counted against MaxHeaderFields: 431, nothing kept.
func TestAttackH2ZeroLengthHeaders(t *testing.T) {
	empty := hpack.HeaderField{}
	t.Run("one per request", func(t *testing.T) {
		as := startAttackServer(t, ProtoH2C, Config{})
		good := as.startGoodH2Client(t)
		mon := startMonitor(t)
		good.mark()
		req := h2Request("GET", "/wait", empty)
		n := rounds(attackDuration, func(round int) {
			a := as.dialH2(t, h2AttackerOpts{})
			defer a.close()
			a.startReading()
			id := uint32(1)
			floodUntil(3*DefaultGlitchBurst/20, reactBound, a.gotGoAway, func(int) error {
				return a.batch(func(fr *http2.Framer) {
					for range 20 {
						a.headersLocked(fr, id, true, req)
						id += 2
					}
				})
			})
			if !a.awaitGoAway(2 * reactBound) {
				t.Fatalf("%d requests with an empty field, %d RST_STREAM(PROTOCOL_ERROR), no GOAWAY; want GOAWAY once GlitchBurst (%d) is spent", id/2, a.rstCount(http2.ErrCodeProtocol), DefaultGlitchBurst)
			}
			a.expectGoAway(t, http2.ErrCodeEnhanceYourCalm, reactBound)
			if round == 0 {
				t.Logf("GOAWAY(ENHANCE_YOUR_CALM) after %d RST_STREAM(PROTOCOL_ERROR)", a.rstCount(http2.ErrCodeProtocol))
			}
		})
		const heapBound = heapSlack
		mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
		good.check(t)
		if st := as.l.Stats(); st.RateLimited != uint64(n) {
			t.Errorf("after %d attacking connections: Stats.RateLimited %d; want %d", n, st.RateLimited, n)
		}
		if w := as.waits.Load(); w != 0 {
			t.Errorf("%d malformed requests reached the handler; want none", w)
		}
	})

	t.Run("100,000 in one block", func(t *testing.T) {
		as := startAttackServer(t, ProtoH2C, Config{})
		good := as.startGoodH2Client(t)
		mon := startMonitor(t)
		good.mark()
		const sessions, refs = 4, 100_000
		frames := h2Frames(func(fr *http2.Framer) { writeH2Block(fr, 1, repeatBlock("/wait", empty, refs), true) })
		n := rounds(attackDuration, func(round int) {
			var wg sync.WaitGroup
			for range sessions {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a := as.dialH2(t, h2AttackerOpts{})
					defer a.close()
					a.startReading()
					a.raw(frames)
					if !waitUntil(reactBound, func() bool { return a.statusCount("431") == 1 }) {
						t.Errorf("%d empty fields: got %s within %v; want 431", refs, a.tally(), reactBound)
					}
				}()
			}
			wg.Wait()
		})
		const heapBound = heapSlack
		mon.check(t, heapBound, goroutineBound(sessions, as.pool.Slots()))
		good.check(t)
		if st := as.l.Stats(); st.Glitches < uint64(n*sessions) || st.SessionErrors != 0 {
			t.Errorf("after %d blocks: Stats.Glitches %d, SessionErrors %d; want at least %d and 0", n*sessions, st.Glitches, st.SessionErrors, n*sessions)
		}
	})
}

// Empty frames (CVE-2019-9518): frames with no payload and no END_STREAM.
// Empty DATA is a glitch; empty HEADERS opening a stream is a malformed
// request (RST_STREAM PROTOCOL_ERROR), a glitch too: once GlitchBurst are
// spent, GOAWAY ENHANCE_YOUR_CALM (Stats.RateLimited). Empty CONTINUATION
// frames are TestAttackH2ContinuationFlood's; a PUSH_PROMISE from a
// client, empty or not, is GOAWAY PROTOCOL_ERROR at once.
func TestAttackH2EmptyFrames(t *testing.T) {
	as := startAttackServer(t, ProtoH2C, Config{})
	good := as.startGoodH2Client(t)
	mon := startMonitor(t)
	good.mark()
	limited := 0
	for _, tc := range []struct {
		name  string
		code  http2.ErrCode
		start func(a *h2Attacker, fr *http2.Framer)
		frame func(fr *http2.Framer, id uint32)
	}{
		{"DATA", http2.ErrCodeEnhanceYourCalm, func(a *h2Attacker, fr *http2.Framer) {
			a.headersLocked(fr, 1, false, h2Request("POST", "/wait"))
		}, func(fr *http2.Framer, _ uint32) { fr.WriteData(1, false, nil) }},
		{"HEADERS", http2.ErrCodeEnhanceYourCalm, nil, func(fr *http2.Framer, id uint32) {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true})
		}},
		{"PUSH_PROMISE", http2.ErrCodeProtocol, nil, func(fr *http2.Framer, id uint32) {
			fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: id + 1, EndHeaders: true})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rounds(attackDuration/3, func(round int) {
				a := as.dialH2(t, h2AttackerOpts{})
				defer a.close()
				a.startReading()
				if tc.start != nil {
					a.batch(func(fr *http2.Framer) { tc.start(a, fr) })
				}
				id := uint32(1)
				sent := 100 * floodUntil(3*DefaultGlitchBurst/100, reactBound, a.gotGoAway, func(int) error {
					return a.batch(func(fr *http2.Framer) {
						for range 100 {
							tc.frame(fr, id)
							id += 2
						}
					})
				})
				if !a.awaitGoAway(2 * reactBound) {
					t.Fatalf("%d empty %s frames and no GOAWAY; want GOAWAY(%v)", sent, tc.name, tc.code)
				}
				a.expectGoAway(t, tc.code, reactBound)
				if tc.code == http2.ErrCodeEnhanceYourCalm {
					limited++
				}
				if round == 0 {
					t.Logf("GOAWAY(%v) after at most %d empty %s frames", tc.code, sent, tc.name)
				}
			})
		})
	}
	const heapBound = heapSlack
	mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
	good.check(t)
	if st := as.l.Stats(); st.RateLimited != uint64(limited) {
		t.Errorf("after %d floods of empty DATA and HEADERS: Stats.RateLimited %d; want %d", limited, st.RateLimited, limited)
	}
}

// Data dribble (CVE-2019-9511): the client sets its stream window to one
// byte and opens it a byte at a time, so that the server must send
// one-byte DATA frames; each is a glitch ("window kept under 64 bytes"),
// and the connection ends with GOAWAY ENHANCE_YOUR_CALM once GlitchBurst
// are spent (Stats.RateLimited).
func TestAttackH2DataDribble(t *testing.T) {
	as := startAttackServer(t, ProtoH2C, Config{})
	good := as.startGoodH2Client(t)
	good.holding = true
	mon := startMonitor(t)
	good.mark()
	const streams = 8
	req := h2Request("GET", "/bytes/100000")
	n := rounds(attackDuration, func(round int) {
		a := as.dialH2(t, h2AttackerOpts{settings: []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1}}})
		defer a.close()
		var tiny atomic.Int64
		a.onFrame = func(f http2.Frame) {
			d, ok := f.(*http2.DataFrame)
			if !ok || len(d.Data()) == 0 || d.StreamEnded() {
				return
			}
			tiny.Add(1)
			k := uint32(len(d.Data()))
			a.batch(func(fr *http2.Framer) {
				fr.WriteWindowUpdate(d.StreamID, k)
				fr.WriteWindowUpdate(0, k)
			})
		}
		a.startReading()
		start := time.Now()
		a.batch(func(fr *http2.Framer) {
			for i := range streams {
				a.headersLocked(fr, uint32(2*i+1), true, req)
			}
		})
		a.expectGoAway(t, http2.ErrCodeEnhanceYourCalm, 2*reactBound)
		elapsed := time.Since(start)
		allowed := DefaultGlitchBurst + int(DefaultGlitchRate*elapsed.Seconds()) + streams
		if round == 0 {
			t.Logf("GOAWAY(ENHANCE_YOUR_CALM) after %d one-byte DATA frames in %v", tiny.Load(), elapsed.Round(time.Millisecond))
		}
		if got := int(tiny.Load()); got > allowed {
			t.Errorf("%d one-byte DATA frames before GOAWAY; want at most %d (GlitchBurst and its refill)", got, allowed)
		}
	})
	const heapBound = heapSlack
	mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
	good.check(t)
	if st := as.l.Stats(); st.RateLimited != uint64(n) {
		t.Errorf("after %d attacking connections: Stats.RateLimited %d; want %d", n, st.RateLimited, n)
	}
}

// Zero-window hold (CVE-2019-9517): the client asks for large responses
// and never opens its window, a stream's (SETTINGS_INITIAL_WINDOW_SIZE 0)
// or the connection's (never a WINDOW_UPDATE for stream 0). After
// WindowTimeout each stream is reset with CANCEL (Stats.WindowTimeouts),
// which frees its handler and its pool slot; the connection goes on.
func TestAttackH2ZeroWindowHold(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings []http2.Setting
	}{
		{"stream window", []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 0}}},
		{"connection window", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const windowTimeout = 300 * time.Millisecond
			as := startAttackServer(t, ProtoH2C, Config{WindowTimeout: windowTimeout})
			good := as.startGoodH2Client(t)
			good.holding = true
			mon := startMonitor(t)
			good.mark()
			const sessions, streams = 2, 20
			req := h2Request("GET", "/bytes/1000000")
			var attackers []*h2Attacker
			start := time.Now()
			for range sessions {
				a := as.dialH2(t, h2AttackerOpts{settings: tc.settings})
				a.startReading()
				a.batch(func(fr *http2.Framer) {
					for i := range streams {
						a.headersLocked(fr, uint32(2*i+1), true, req)
					}
				})
				attackers = append(attackers, a)
			}
			for _, a := range attackers {
				waitUntil(as.windowResetsWithin(streams, windowTimeout)+reactBound, func() bool { return a.rstCount(http2.ErrCodeCancel) >= streams })
			}
			elapsed := time.Since(start)
			// Each blocked handler holds its http.Server buffers and a
			// stream; the response bytes are the handler's own.
			const heapBound = heapSlack + sessions*streams*64<<10
			mon.check(t, heapBound, goroutineBound(sessions, as.pool.Slots()))
			good.check(t)
			for i, a := range attackers {
				if got := a.rstCount(http2.ErrCodeCancel); got != streams {
					t.Errorf("connection %d: %d of %d held streams reset with CANCEL within WindowTimeout %v (+%v); Stats.ActiveStreams %d",
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
			// The handlers are freed with the connections still up.
			for _, a := range attackers {
				a.sync(t)
				if a.gotGoAway() {
					t.Errorf("GOAWAY(%v); want the connection to go on", a.gaCode)
				}
			}
			as.waitClean(t, "after the zero-window streams were reset", 1<<30, false)
			if n := as.handlers.Load(); n != 0 {
				t.Errorf("%d handlers still running after their streams were reset", n)
			}
		})
	}
}

// A request header list over MaxHeaderBytes (RFC 9113 §10.5.1), here
// 16 KiB: fields that decode past it, in a block under it on the wire, are
// answered 431 (a glitch, Stats.Glitches) and the connection goes on; a
// list just under it is served. One field longer than MaxHeaderBytes, the
// HPACK decoder's string limit, cannot be decoded: GOAWAY
// COMPRESSION_ERROR, as x/net/http2 (Stats.SessionErrors).
func TestAttackH2HeaderListSize(t *testing.T) {
	const maxHeaderBytes = 16 << 10
	as := startAttackServer(t, ProtoH2C, Config{MaxHeaderBytes: maxHeaderBytes})
	good := as.startGoodH2Client(t)
	mon := startMonitor(t)
	good.mark()
	// Fields of 1 KiB of one letter: Huffman codes them in 5 bits a byte,
	// so 20 of them decode to 21 KiB from a block of 13 KiB.
	list := func(n int) []hpack.HeaderField {
		fields := h2Request("GET", "/bytes/10")
		for i := range n {
			fields = append(fields, hpack.HeaderField{Name: fmt.Sprintf("x-%02d", i), Value: strings.Repeat("a", 1024)})
		}
		return fields
	}
	over, under := list(20), list(12)
	oneField := h2Request("GET", "/bytes/10", hpack.HeaderField{Name: "x-big", Value: strings.Repeat("a", maxHeaderBytes+1)})
	var over431, compression int
	rounds(attackDuration, func(round int) {
		a := as.dialH2(t, h2AttackerOpts{})
		defer a.close()
		a.startReading()
		a.batch(func(fr *http2.Framer) {
			a.headersLocked(fr, 1, true, over)
			a.headersLocked(fr, 3, true, under)
		})
		if !waitUntil(reactBound, func() bool {
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.statuses[1] != "" && a.statuses[3] != ""
		}) {
			t.Fatalf("no answer to a header list over MaxHeaderBytes and one under it within %v", reactBound)
		}
		a.mu.Lock()
		s1, s3 := a.statuses[1], a.statuses[3]
		a.mu.Unlock()
		if s1 != "431" || s3 != "200" {
			t.Errorf("a header list over MaxHeaderBytes: %s, one under it on the same connection: %s; want 431 and 200", s1, s3)
		}
		over431++
		a.sync(t)
		if a.gotGoAway() {
			t.Fatalf("GOAWAY(%v) after a 431; want the connection to go on", a.gaCode)
		}
		// One field past the decoder's string limit.
		a.batch(func(fr *http2.Framer) { a.headersLocked(fr, 5, true, oneField) })
		a.expectGoAway(t, http2.ErrCodeCompression, reactBound)
		compression++
	})
	const heapBound = heapSlack
	mon.check(t, heapBound, goroutineBound(1, as.pool.Slots()))
	good.check(t)
	t.Logf("%d lists over MaxHeaderBytes answered 431; %d fields over it ended their connection with COMPRESSION_ERROR", over431, compression)
	if st := as.l.Stats(); st.Glitches < uint64(over431) || st.SessionErrors != uint64(compression) {
		t.Errorf("Stats.Glitches %d, SessionErrors %d; want at least %d and %d", st.Glitches, st.SessionErrors, over431, compression)
	}
}

// A well-behaved HTTP/2 client (golang.org/x/net/http2's Transport) costs
// no glitch: it credits the window of a body it is still reading after
// the server's END_STREAM, 4 KiB at a time (WINDOW_UPDATE on a closed
// stream, RFC 9113 §6.9), and the glitch budget must not end its
// connection for that.
func TestAttackH2WellBehavedClient(t *testing.T) {
	as := startAttackServer(t, ProtoH2C, Config{GlitchBurst: 10})
	good := as.startGoodH2Client(t)
	good.holding = true
	good.mark()
	const requests = 50
	waitUntil(10*time.Second, func() bool {
		good.mu.Lock()
		defer good.mu.Unlock()
		return good.n >= requests
	})
	good.check(t)
	if st := as.l.Stats(); st.Glitches != 0 || st.SessionErrors != 0 || st.Sessions != 1 {
		t.Errorf("after %d requests of a well-behaved client: Stats.Glitches %d, SessionErrors %d, Sessions %d; want 0, 0 and 1", good.n, st.Glitches, st.SessionErrors, st.Sessions)
	}
}
