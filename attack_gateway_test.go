package spdymux

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spdymux/spdymux/internal/gateway"
)

// The attack tests run in two modes. In process, the listener's
// http.Server serves the test handler itself. Through the gateway (every
// test run again as a subtest of TestAttackGateway), it serves
// internal/gateway, which forwards each request to the same handler on an
// HTTP/1.1 server of its own on loopback: what `spdymux serve -backend`
// does in front of Apache httpd. The bounds are the same in both modes; the
// backend's own goroutines, which carry the pprof label
// backendLabel=backendLabelValue, are not the server's under test and are
// left out of the counts (serverGoroutines).

const (
	backendLabel      = "spdymux-attack"
	backendLabelValue = "backend"
)

// liveBackends counts the gateway-mode backends running, so that
// serverGoroutines takes a goroutine profile only when one does.
var liveBackends atomic.Int32

// attackTests are the attack tests TestAttackGateway runs again through
// the gateway: every test of attack_test.go and attack_h2_test.go.
var attackTests = []struct {
	name string
	f    func(*testing.T)
}{
	{"RapidReset", TestAttackRapidReset},
	{"HundredThousandResets", TestAttackHundredThousandResets},
	{"CloseUnderFlood", TestAttackCloseUnderFlood},
	{"PingFlood", TestAttackPingFlood},
	{"SettingsFlood", TestAttackSettingsFlood},
	{"SettingsTooManyEntries", TestAttackSettingsTooManyEntries},
	{"ResetFlood", TestAttackResetFlood},
	{"EmptyFrameFlood", TestAttackEmptyFrameFlood},
	{"DataDribble", TestAttackDataDribble},
	{"ZeroWindowHold", TestAttackZeroWindowHold},
	{"HeaderBomb", TestAttackHeaderBomb},
	{"HeaderLengthLies", TestAttackHeaderLengthLies},
	{"OversizedFrames", TestAttackOversizedFrames},
	{"Slowloris", TestAttackSlowloris},
	{"IdleSessions", TestAttackIdleSessions},
	{"UnknownControlFlood", TestAttackUnknownControlFlood},
	{"GlitchFlood", TestAttackGlitchFlood},
	{"WorkerExhaustion", TestAttackWorkerExhaustion},
	{"UploadNotRead", TestAttackUploadNotRead},
	{"SlowClients", TestAttackSlowClients},
	{"H2RapidReset", TestAttackH2RapidReset},
	{"H2MadeYouReset", TestAttackH2MadeYouReset},
	{"H2ContinuationFlood", TestAttackH2ContinuationFlood},
	{"H2HPACKBomb", TestAttackH2HPACKBomb},
	{"H2FieldCountAmplification", TestAttackH2FieldCountAmplification},
	{"H2PingFlood", TestAttackH2PingFlood},
	{"H2SettingsFlood", TestAttackH2SettingsFlood},
	{"H2ResetFlood", TestAttackH2ResetFlood},
	{"H2ZeroLengthHeaders", TestAttackH2ZeroLengthHeaders},
	{"H2EmptyFrames", TestAttackH2EmptyFrames},
	{"H2DataDribble", TestAttackH2DataDribble},
	{"H2ZeroWindowHold", TestAttackH2ZeroWindowHold},
	{"H2HeaderListSize", TestAttackH2HeaderListSize},
	{"H2WellBehavedClient", TestAttackH2WellBehavedClient},
}

// TestAttackGateway runs every attack test again with the server behind
// the gateway: same attacks, same reactions, same bounds on the heap, the
// goroutines and the well-behaved client.
func TestAttackGateway(t *testing.T) {
	for _, at := range attackTests {
		t.Run(at.name, func(t *testing.T) {
			if raceEnabled && strings.HasSuffix(at.name, "ZeroWindowHold") {
				// Through the gateway the resets of held streams come
				// later than WindowTimeout plus the reaction bound when
				// the race detector slows the backend path: a timing bar,
				// checked in .ci/run's pass without the race detector.
				t.Skip("timing bar through the gateway: run without -race")
			}
			at.f(t)
		})
	}
}

// viaGateway reports whether t runs through the gateway: whether it is
// one of TestAttackGateway's subtests or theirs.
func viaGateway(t *testing.T) bool {
	return strings.HasPrefix(t.Name(), "TestAttackGateway/")
}

// front returns the handler the listener's http.Server serves: the test
// handler itself in process; through the gateway, a gateway to a backend
// on loopback serving the test handler. as.stopBackend, called once the
// front server is closed, stops that backend.
func (as *attackServer) front(t *testing.T) http.Handler {
	t.Helper()
	as.stopBackend = func() {}
	if !viaGateway(t) {
		return as.handler()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &http.Server{Handler: as.handler(), ErrorLog: log.New(io.Discard, "", 0)}
	served := make(chan struct{})
	liveBackends.Add(1)
	// Every goroutine the backend starts inherits the label.
	pprof.Do(context.Background(), pprof.Labels(backendLabel, backendLabelValue), func(context.Context) {
		go func() {
			defer close(served)
			backend.Serve(ln)
		}()
	})
	u, _ := gateway.ParseBackend("http://" + ln.Addr().String())
	g, err := gateway.New(gateway.Config{Backend: u, PipelineDepth: gateway.DefaultPipelineDepth, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	as.gateway = g
	as.stopBackend = func() {
		// The front server is closed: every exchange ends, and with the
		// idle connections closed none is left open.
		waitUntil(reactBound, func() bool {
			g.CloseIdleConnections()
			return g.Stats().Open == 0
		})
		if st := g.Stats(); st.Open != 0 {
			t.Errorf("the gateway has %d backend connections open after the server closed (%+v); want none", st.Open, st)
		}
		backend.Close()
		<-served
		liveBackends.Add(-1)
	}
	return g
}

// serverGoroutines returns the goroutines running now, less those of the
// gateway-mode backends.
func serverGoroutines() int {
	n := runtime.NumGoroutine()
	if liveBackends.Load() == 0 {
		return n
	}
	return n - labelledGoroutines(backendLabel, backendLabelValue)
}

// labelledGoroutines counts the goroutines that carry the pprof label
// key=value, from the goroutine profile in its text form: a line "N @ ..."
// per group of identical stacks, then "# labels: {...}" if they have any.
func labelledGoroutines(key, value string) int {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		return 0
	}
	want := strconv.Quote(key) + ":" + strconv.Quote(value)
	n, group := 0, 0
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if count, _, ok := strings.Cut(line, " @ "); ok {
			group, _ = strconv.Atoi(count)
			continue
		}
		if strings.HasPrefix(line, "# labels: ") && strings.Contains(line, want) {
			n += group
			group = 0
		}
	}
	return n
}

// windowResetsWithin is how long the resets of streams held at a shut
// window, all asked for at once on one session, may take: WindowTimeout in
// process. Through the gateway a session's streams take turns at the
// backend connections its limit allows, which drops to two as its
// exchanges stall (docs/limits.md, "The gateway"): each turn takes
// WindowTimeout.
func (as *attackServer) windowResetsWithin(streams int, windowTimeout time.Duration) time.Duration {
	if as.gateway == nil {
		return windowTimeout
	}
	return time.Duration((streams+1)/2) * windowTimeout
}

// checkBackendIdle fails the test unless, through the gateway, no backend
// connection is busy and no request waits for one.
func (as *attackServer) checkBackendIdle(t *testing.T) {
	t.Helper()
	g := as.gateway
	if g == nil {
		return
	}
	waitUntil(reactBound, func() bool {
		st := g.Stats()
		return st.Busy == 0 && st.Waiting == 0 && st.Sessions == 0
	})
	st := g.Stats()
	t.Logf("gateway: %d backend connections open (%d idle), %d dialed, %d reused, %d found closed when taken, %d retries, %d exchanges cut for a stalled client",
		st.Open, st.Idle, st.Dials, st.Reuses, st.Stale, st.Retries, st.Stalled)
	if st.Busy != 0 || st.Waiting != 0 || st.Sessions != 0 {
		t.Errorf("gateway after the abuse: %d backend connections busy, %d requests waiting, %d sessions known; want none", st.Busy, st.Waiting, st.Sessions)
	}
}
