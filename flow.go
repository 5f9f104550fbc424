package spdymux

// Flow-control windows, one pair per stream and one per session, the same
// for SPDY/3 (streams), SPDY/3.1 and HTTP/2 (streams and session), after
// golang.org/x/net/http2's inflow and outflow. They are plain values,
// guarded by the session's lock.

// maxWindow is the largest window SPDY/3 and HTTP/2 allow (2^31-1).
const maxWindow = 1<<31 - 1

// outflow is a send window: what the peer still lets this side send.
// It may go negative when the peer shrinks its initial window.
type outflow struct{ n int32 }

// take spends n bytes of window.
func (f *outflow) take(n int32) { f.n -= n }

// add grows the window by n; false means it would pass 2^31-1, which the
// peer may not do (SPDY/3 §2.6.8, RFC 9113 §6.9.1).
func (f *outflow) add(n int32) bool {
	if int64(f.n)+int64(n) > maxWindow {
		return false
	}
	f.n += n
	return true
}

// inflow is a receive window: what the peer may still send (avail), and
// credit for bytes consumed here but not yet given back (unsent).
type inflow struct{ avail, unsent int32 }

// take accounts for n received bytes; false means the peer overran the
// window.
func (f *inflow) take(n int32) bool {
	if n > f.avail {
		return false
	}
	f.avail -= n
	return true
}

// credit notes n consumed bytes and returns the WINDOW_UPDATE delta to send
// now, or 0: credit goes out once it reaches threshold, so the peer is not
// sent a frame per read.
func (f *inflow) credit(n, threshold int32) int32 {
	f.unsent += n
	if f.unsent < threshold {
		return 0
	}
	d := f.unsent
	f.avail += d
	f.unsent = 0
	return d
}
