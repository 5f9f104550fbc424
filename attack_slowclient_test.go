package spdymux

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spdymux/spdymux/spdy"
)

// Clients that do not read what they asked for, on a few sessions of
// many streams each, for several seconds: in process a stream that waits
// for its client holds a handler and a pool slot of its own; through the
// gateway it must not also hold a backend connection for long, or the
// backend's connections run out for every other session (issue 11).
//
//   - zero window: 100 streams per session ask for 64 MiB each and never
//     open their window;
//   - empty DATA: 100 POSTs per session that never end, fed empty DATA
//     frames until the glitch budget ends the session;
//   - slow read: 100 streams per session ask for 64 MiB each with a window
//     of one byte, opened by one byte per DATA frame, until the glitch
//     budget ends the session.
//
// Each abusive client opens a new session a second after its last one
// began, for as long as the abuse lasts.
//
// The well-behaved client on a session of its own must see no failure and
// a p99 under goodP99Bound; afterwards nothing is left: no stream, slot,
// goroutine, and through the gateway no busy backend connection.
func TestAttackSlowClients(t *testing.T) {
	const (
		sessions = 3
		streams  = 100
		big      = 64 << 20
	)
	dur := slowClientDuration
	for _, tc := range []struct {
		name string
		// session runs one abusive session on a until stop is closed or
		// the server ends it.
		session func(a *attacker, stop chan struct{})
	}{
		{"zero window", func(a *attacker, stop chan struct{}) {
			a.startReading()
			hdr := a.request("GET", "/bytes/"+strconv.Itoa(big))
			a.batch(func(fr *spdy.Framer) {
				fr.WriteSettings(0, spdy.Setting{ID: spdy.SettingInitialWindowSize, Value: 0})
				for i := range streams {
					fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: spdy.StreamID(2*i + 1), Flags: spdy.FlagFin, Header: hdr})
				}
			})
			select {
			case <-stop:
			case <-a.ended:
			}
		}},
		{"empty DATA", func(a *attacker, stop chan struct{}) {
			a.startReading()
			hdr := a.request("POST", "/bytes/1000")
			a.batch(func(fr *spdy.Framer) {
				for i := range streams {
					fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: spdy.StreamID(2*i + 1), Header: hdr})
				}
			})
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-a.ended:
					return
				case <-tick.C:
				}
				if a.batch(func(fr *spdy.Framer) {
					for j := range 10 {
						fr.WriteData(spdy.StreamID(2*((10*i+j)%streams)+1), 0, nil)
					}
				}) != nil {
					return
				}
			}
		}},
		{"slow read", func(a *attacker, stop chan struct{}) {
			a.onFrame = func(f spdy.Frame) {
				d, ok := f.(*spdy.DataFrame)
				if !ok || len(d.Data) == 0 {
					return
				}
				k := uint32(len(d.Data))
				a.batch(func(fr *spdy.Framer) {
					fr.WriteWindowUpdate(d.StreamID, k)
					fr.WriteWindowUpdate(0, k)
				})
			}
			a.startReading()
			hdr := a.request("GET", "/bytes/"+strconv.Itoa(big))
			a.batch(func(fr *spdy.Framer) {
				fr.WriteSettings(0, spdy.Setting{ID: spdy.SettingInitialWindowSize, Value: 1})
				for i := range streams {
					fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: spdy.StreamID(2*i + 1), Flags: spdy.FlagFin, Header: hdr})
				}
			})
			select {
			case <-stop:
			case <-a.ended:
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Slots for every stream: the point is the backend's
			// connections, not the pool's slots.
			as := startAttackServer(t, ProtoSPDY31, Config{Pool: NewPool(2 * sessions * streams)})
			good := as.startGoodClient(t)
			good.holding = true
			good.mark()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var opened atomic.Int64
			for range sessions {
				wg.Go(func() {
					for !isClosedChan(stop) {
						next := time.NewTimer(time.Second)
						a := as.dialAttacker(t, attackerOpts{})
						opened.Add(1)
						tc.session(a, stop)
						a.close()
						// A session the server ends comes back a
						// second after it began: a few abusive
						// sessions at a time, not a connection flood.
						select {
						case <-stop:
						case <-next.C:
						}
						next.Stop()
					}
				})
			}
			time.Sleep(dur)
			good.check(t)
			close(stop)
			wg.Wait()
			t.Logf("%d abusive sessions of %d streams in %v", opened.Load(), streams, dur)
			as.waitClean(t, "after the abusive sessions closed", 1<<30, false)
			as.checkBackendIdle(t)
		})
	}
}

// slowClientDuration is how long TestAttackSlowClients keeps each abuse
// up.
const slowClientDuration = 5 * time.Second
