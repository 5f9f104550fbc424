package spdymux

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

type ctxTestKey string

// closedWithin reports whether c is closed within a second.
func closedWithin(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	case <-time.After(time.Second):
		return false
	}
}

// ran returns a function that closes the channel it returns, once.
func ran() (func(), chan struct{}) {
	c := make(chan struct{})
	return func() { close(c) }, c
}

// A stream context is a context: its values, its end, and the contexts
// and functions that wait for its end.
func TestStreamContext(t *testing.T) {
	info := &StreamInfo{StreamID: 7}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443}
	base := context.WithValue(context.Background(), ctxTestKey("k"), "v")
	var c streamContext
	c.init(base, info, local)

	if got, _ := StreamInfoFromContext(&c); got != info {
		t.Errorf("StreamInfoFromContext: %v; want the stream's", got)
	}
	if got := c.Value(http.LocalAddrContextKey); got != local {
		t.Errorf("LocalAddrContextKey: %v", got)
	}
	if got := c.Value(ctxTestKey("k")); got != "v" {
		t.Errorf("the base's value: %v", got)
	}
	if _, ok := c.Deadline(); ok {
		t.Error("a deadline without one in the base")
	}
	if c.Err() != nil {
		t.Fatalf("Err before the end: %v", c.Err())
	}
	done := c.Done()
	select {
	case <-done:
		t.Fatal("Done closed before the end")
	default:
	}

	child, cancelChild := context.WithCancel(&c)
	defer cancelChild()
	f1, ran1 := ran()
	context.AfterFunc(&c, f1)
	f2, ran2 := ran()
	stop2 := context.AfterFunc(&c, f2)
	if !stop2() {
		t.Error("stopping an AfterFunc before the end reported false")
	}
	if stop2() {
		t.Error("stopping it twice reported true")
	}
	w, watched := ran()
	if !c.WatchDone(w) {
		t.Fatal("WatchDone refused the first watch")
	}
	if c.WatchDone(func() {}) {
		t.Error("WatchDone took a second watch")
	}

	c.cancel(context.Canceled)
	c.cancel(errors.New("a second end is ignored"))
	if !closedWithin(done) || c.Done() != done {
		t.Error("Done was not closed, or changed, at the end")
	}
	if c.Err() != context.Canceled || context.Cause(&c) != context.Canceled {
		t.Errorf("Err %v, Cause %v; want Canceled", c.Err(), context.Cause(&c))
	}
	if !closedWithin(child.Done()) || child.Err() != context.Canceled {
		t.Errorf("a WithCancel child: %v; want Canceled", child.Err())
	}
	if !closedWithin(ran1) || !closedWithin(watched) {
		t.Error("an AfterFunc or the watch did not run at the end")
	}
	select {
	case <-ran2:
		t.Error("a stopped AfterFunc ran")
	case <-time.After(20 * time.Millisecond):
	}
	if c.StopWatch() {
		t.Error("StopWatch after the watch ran reported true")
	}

	// After the end: new waiters run at once.
	f3, ran3 := ran()
	if stop := context.AfterFunc(&c, f3); !closedWithin(ran3) || stop() {
		t.Error("an AfterFunc set after the end did not run, or could be stopped")
	}
	w2, watched2 := ran()
	if !c.WatchDone(w2) || !closedWithin(watched2) || c.StopWatch() {
		t.Error("a watch set after the end did not run at once")
	}
	late, cancelLate := context.WithCancel(&c)
	defer cancelLate()
	if late.Err() != context.Canceled {
		t.Errorf("a child made after the end: %v; want Canceled", late.Err())
	}
}

// A watch stopped before the end never runs, and the context takes a new
// one: a request served by the gateway twice, one exchange after the
// other.
func TestStreamContextWatchStopped(t *testing.T) {
	var c streamContext
	c.init(context.Background(), &StreamInfo{}, nil)
	w, watched := ran()
	if !c.WatchDone(w) || !c.StopWatch() {
		t.Fatal("a watch set and stopped before the end")
	}
	w2, watched2 := ran()
	if !c.WatchDone(w2) {
		t.Fatal("WatchDone refused a watch after the first was stopped")
	}
	c.cancel(context.Canceled)
	if !closedWithin(watched2) {
		t.Error("the second watch did not run")
	}
	select {
	case <-watched:
		t.Error("the stopped watch ran")
	case <-time.After(20 * time.Millisecond):
	}
}

// The end of the base (BaseContext, ConnContext) ends the stream's
// context with the base's error; the stream's own end stops watching the
// base.
func TestStreamContextBase(t *testing.T) {
	base, cancelBase := context.WithCancel(context.Background())
	var c streamContext
	c.init(base, &StreamInfo{}, nil)
	cancelBase()
	if !closedWithin(c.Done()) || c.Err() != context.Canceled {
		t.Errorf("after the base's cancel: %v; want Canceled", c.Err())
	}

	dl, cancelDL := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancelDL()
	var d streamContext
	d.init(dl, &StreamInfo{}, nil)
	if _, ok := d.Deadline(); !ok {
		t.Error("the base's deadline is not the context's")
	}
	if !closedWithin(d.Done()) || d.Err() != context.DeadlineExceeded {
		t.Errorf("after the base's deadline: %v; want DeadlineExceeded", d.Err())
	}

	base2, cancelBase2 := context.WithCancel(context.Background())
	var e streamContext
	e.init(base2, &StreamInfo{}, nil)
	e.cancel(context.Canceled)
	if e.stopBase() {
		t.Error("the watch on the base outlived the stream's context")
	}
	cancelBase2()
}

// A request's context costs no allocation beyond its exchange: made,
// watched by the gateway, and ended.
func TestStreamContextAllocs(t *testing.T) {
	info := &StreamInfo{}
	watch := func() {}
	c := new(streamContext)
	allocs := testing.AllocsPerRun(100, func() {
		*c = streamContext{}
		c.init(context.Background(), info, nil)
		if !c.WatchDone(watch) || !c.StopWatch() {
			t.Fatal("watch refused")
		}
		c.cancel(context.Canceled)
		if c.Err() == nil {
			t.Fatal("not ended")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per request context; want 0", allocs)
	}
}
