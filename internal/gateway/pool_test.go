package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testPool is a connPool whose dials make one end of a net.Pipe.
func testPool(t *testing.T, maxConns, maxIdle, perSession int) *connPool {
	t.Helper()
	var mu sync.Mutex
	var peers []net.Conn
	p := newConnPool(func(context.Context) (*backendConn, error) {
		a, b := net.Pipe()
		mu.Lock()
		peers = append(peers, b)
		mu.Unlock()
		return newBackendConn(a, time.Second), nil
	}, maxConns, maxIdle, perSession, time.Minute)
	t.Cleanup(func() {
		p.closeIdle(true)
		mu.Lock()
		defer mu.Unlock()
		for _, c := range peers {
			c.Close()
		}
	})
	return p
}

// getAsync asks for a connection in the background; the channel gets it
// (nil and the error on failure).
func getAsync(p *connPool, ctx context.Context, session string) chan *backendConn {
	ch := make(chan *backendConn, 1)
	go func() {
		c, _ := p.get(ctx, session, false)
		ch <- c
	}()
	return ch
}

// take gets n connections for session, none of which may have to wait.
func take(t *testing.T, p *connPool, session string, n int) []*backendConn {
	t.Helper()
	var cs []*backendConn
	for range n {
		c, err := p.get(context.Background(), session, false)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

func waitWaiting(t *testing.T, p *connPool, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for p.stats().Waiting != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests waiting; want %d", p.stats().Waiting, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A session starts at sessionStartConns connections; its other requests
// wait even though the pool has room, while another session's get one at
// once.
func TestPoolSessionLimit(t *testing.T) {
	p := testPool(t, 64, 64, 32)
	ctx := context.Background()
	held := take(t, p, "a", sessionStartConns)
	over := getAsync(p, ctx, "a")
	waitWaiting(t, p, 1)
	c, err := p.get(ctx, "b", false)
	if err != nil {
		t.Fatalf("another session: %v", err)
	}
	p.put("b", c, true)
	if st := p.stats(); st.Busy != sessionStartConns || st.Waiting != 1 || st.Sessions != 1 {
		t.Errorf("stats %+v; want %d busy, 1 waiting, 1 session", st, sessionStartConns)
	}
	// One of a's own comes back: the waiting request gets it.
	p.put("a", held[0], true)
	if c := <-over; c == nil {
		t.Fatal("the waiting request got no connection")
	} else {
		p.put("a", c, true)
	}
	for _, c := range held[1:] {
		p.put("a", c, true)
	}
	if st := p.stats(); st.Busy != 0 || st.Waiting != 0 || st.Sessions != 0 || st.Open != st.Idle {
		t.Errorf("after all came back: %+v; want nothing busy, waiting or known", st)
	}
}

// When the pool is full, a freed connection goes to the waiting session
// that holds the fewest, whatever the order of arrival.
func TestPoolFairOrder(t *testing.T) {
	p := testPool(t, 4, 4, 4)
	ctx := context.Background()
	a := take(t, p, "a", 4)
	aMore := getAsync(p, ctx, "a") // first in line, but a holds 4
	waitWaiting(t, p, 1)
	b := getAsync(p, ctx, "b")
	waitWaiting(t, p, 2)
	p.put("a", a[0], true)
	select {
	case c := <-b:
		p.put("b", c, true)
	case <-aMore:
		t.Fatal("the connection went to the session holding 3, not to the one holding none")
	case <-time.After(2 * time.Second):
		t.Fatal("nobody got the freed connection")
	}
	p.put("a", a[1], true)
	if c := <-aMore; c == nil {
		t.Fatal("a's request got nothing")
	} else {
		p.put("a", c, true)
	}
	for _, c := range a[2:] {
		p.put("a", c, true)
	}
}

// A request that waits past its context gets nothing and leaves the line.
func TestPoolWaitTimeout(t *testing.T) {
	p := testPool(t, 1, 1, 1)
	c, err := p.get(context.Background(), "a", false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.get(ctx, "b", false); err == nil {
		t.Fatal("got a connection from a full pool")
	}
	if st := p.stats(); st.Waiting != 0 || st.Sessions != 1 {
		t.Errorf("after the timeout: %+v; want no waiter and a's session only", st)
	}
	p.put("a", c, false)
	if st := p.stats(); st.Open != 0 || st.Busy != 0 || st.Sessions != 0 {
		t.Errorf("after a closed its connection: %+v; want nothing open", st)
	}
}

// Waits with deadlines end with context.DeadlineExceeded each at its own
// deadline, whatever the order they came in, through the pool's one
// timer; a wait granted first is not touched, and the pool's count of
// waiters and sessions is right after.
func TestPoolWaitDeadlines(t *testing.T) {
	p := testPool(t, 1, 1, 1)
	held, err := p.get(context.Background(), "a", false)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	type result struct {
		name string
		c    *backendConn
		err  error
		at   time.Duration
	}
	results := make(chan result, 4)
	wait := func(name, session string, after time.Duration) {
		go func() {
			var deadline time.Time
			if after > 0 {
				deadline = start.Add(after)
			}
			c, err := p.getBy(context.Background(), deadline, session, false, true)
			results <- result{name, c, err, time.Since(start)}
		}()
	}
	// The later deadline first, so that the timer must move earlier.
	wait("late", "b", time.Second)
	waitWaiting(t, p, 1)
	wait("early", "c", 100*time.Millisecond)
	wait("none", "d", 0)
	waitWaiting(t, p, 3)
	for _, want := range []struct {
		name string
		by   time.Duration
	}{{"early", 100 * time.Millisecond}, {"late", time.Second}} {
		r := <-results
		if r.name != want.name || r.c != nil || r.err != context.DeadlineExceeded {
			t.Fatalf("got %s: %v, %v; want %s to end with DeadlineExceeded", r.name, r.c, r.err, want.name)
		}
		if r.at < want.by {
			t.Errorf("%s ended after %v, before its deadline %v", r.name, r.at, want.by)
		}
		if r.name == "early" {
			// Not held up until the later deadline that armed the timer.
			if st := p.stats(); st.Waiting != 2 {
				t.Errorf("after the early deadline: %+v; want the other two waiting", st)
			}
		}
	}
	if st := p.stats(); st.Waiting != 1 || st.Sessions != 2 {
		t.Errorf("after two waits expired: %+v; want 1 waiting, sessions a and d", st)
	}
	// The wait without a deadline still gets the connection.
	p.put("a", held, true)
	r := <-results
	if r.name != "none" || r.err != nil || r.c == nil {
		t.Fatalf("got %s: %v, %v; want the wait without deadline to get the connection", r.name, r.c, r.err)
	}
	p.put("d", r.c, true)
	if st := p.stats(); st.Waiting != 0 || st.Busy != 0 || st.Sessions != 0 {
		t.Errorf("at the end: %+v; want nothing busy, waiting or known", st)
	}
}

// Idle connections beyond maxIdle are kept for idleGrace, so that demand
// swinging around maxIdle reuses them, then closed least recently used
// first.
func TestPoolIdleGrace(t *testing.T) {
	p := testPool(t, 8, 2, 8)
	p.idleGrace = 200 * time.Millisecond
	held := take(t, p, "a", 5)
	for _, c := range held {
		p.put("a", c, true)
	}
	if st := p.stats(); st.Idle != 5 || st.Open != 5 {
		t.Fatalf("just back: %+v; want all 5 idle and open, within the grace", st)
	}
	// Demand comes back within the grace: served by the idle ones.
	again := take(t, p, "a", 4)
	if st := p.stats(); st.Dials != 5 {
		t.Errorf("after taking 4 again: %d dials; want still 5", st.Dials)
	}
	for _, c := range again {
		p.put("a", c, true)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.stats().Idle != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after the grace: %+v; want 2 idle", p.stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := p.stats()
	if st.Open != 2 {
		t.Errorf("after the grace: %+v; want 2 open", st)
	}
	// The two kept are the most recently used: the last two given back.
	p.mu.Lock()
	kept := slices.Clone(p.idle)
	p.mu.Unlock()
	if len(kept) != 2 || kept[0] != again[2] || kept[1] != again[3] {
		t.Errorf("kept the wrong connections")
	}
}

// Many requests of a few sessions come and go at once, some giving up at
// a deadline, some cancelled, some closing their connection: afterwards
// nothing is busy, waiting or known, and every open connection is idle.
func TestPoolStress(t *testing.T) {
	p := testPool(t, 4, 2, 2)
	p.idleGrace = time.Millisecond
	var wg sync.WaitGroup
	var got, expired, cancelled atomic.Int64
	for i := range 40 {
		wg.Go(func() {
			session := fmt.Sprint("s", i%5)
			for j := range 100 {
				ctx, cancel := context.WithCancel(context.Background())
				var deadline time.Time
				switch j % 4 {
				case 1:
					deadline = time.Now().Add(time.Duration(j%3) * time.Millisecond)
				case 2:
					time.AfterFunc(time.Duration(j%5)*100*time.Microsecond, cancel)
				}
				c, err := p.getBy(ctx, deadline, session, j%7 == 0, true)
				switch {
				case err == nil:
					got.Add(1)
					time.Sleep(time.Duration(j%3) * 50 * time.Microsecond)
					p.put(session, c, j%5 != 0)
				case errors.Is(err, context.DeadlineExceeded):
					expired.Add(1)
				case errors.Is(err, context.Canceled):
					cancelled.Add(1)
				default:
					t.Errorf("getBy: %v", err)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	t.Logf("%d got a connection, %d expired, %d cancelled", got.Load(), expired.Load(), cancelled.Load())
	if got.Load() == 0 || expired.Load() == 0 {
		t.Errorf("the load did not exercise both grants and expiries")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := p.stats()
		if st.Busy == 0 && st.Waiting == 0 && st.Sessions == 0 && st.Open == st.Idle && st.Idle <= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the load: %+v; want nothing busy, waiting or known, at most 2 idle", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The limit doubles as exchanges end well, up to perSession, and drops
// when the session annoys.
func TestPoolMood(t *testing.T) {
	p := testPool(t, 64, 64, 32)
	ctx := context.Background()
	c, err := p.get(ctx, "a", false)
	if err != nil {
		t.Fatal(err)
	}
	limit := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.sessions["a"].limit
	}
	if got := limit(); got != sessionStartConns {
		t.Fatalf("limit %d at first; want %d", got, sessionStartConns)
	}
	for _, want := range []int{12, 24, 32, 32} {
		p.mu.Lock()
		p.sessions["a"].changed = time.Now().Add(-time.Second)
		p.mu.Unlock()
		p.happy("a", time.Now())
		if got := limit(); got != want {
			t.Fatalf("after a happy end: limit %d; want %d", got, want)
		}
	}
	for _, want := range []int{16, 8, 4, 2, 2} {
		p.mu.Lock()
		p.sessions["a"].changed = time.Now().Add(-time.Second)
		p.mu.Unlock()
		p.annoyed("a")
		if got := limit(); got != want {
			t.Fatalf("after an annoyance: limit %d; want %d", got, want)
		}
	}
	// An exchange begun before the last change does not count.
	p.happy("a", time.Now().Add(-time.Hour))
	if got := limit(); got != 2 {
		t.Fatalf("after a happy end of an old exchange: limit %d; want 2", got)
	}
	p.put("a", c, true)
}
