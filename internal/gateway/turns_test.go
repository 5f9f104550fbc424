package gateway

import (
	"testing"
)

// The turns of the requests queued on a connection come in the order they
// joined, however joining and passing interleave; the queue reuses its
// array rather than grow, and a turn's channel goes back once received.
func TestTurnsOrder(t *testing.T) {
	c := &backendConn{}
	var waiting []chan error // in join order
	joined, passed := 0, 0
	join := func() {
		turn, err := c.joinTurns()
		if err != nil || turn == nil {
			t.Fatalf("join %d: %v, %v", joined, turn, err)
		}
		joined++
		waiting = append(waiting, turn)
	}
	pass := func() {
		c.passTurn()
		select {
		case err := <-waiting[0]:
			if err != nil {
				t.Fatalf("turn %d: %v", passed, err)
			}
		default:
			t.Fatalf("turn %d did not come to the first in line", passed)
		}
		for _, w := range waiting[1:] {
			if len(w) != 0 {
				t.Fatalf("turn %d came to a request further back", passed)
			}
		}
		doneTurn(waiting[0])
		waiting = waiting[1:]
		passed++
	}
	for range 4 {
		join()
	}
	// A sliding window of 4 to 7 waiting: joins and passes interleaved
	// for many times the array's length.
	for i := range 1000 {
		join()
		join()
		if i%2 == 0 {
			join()
		}
		pass()
		pass()
		if len(waiting) > 6 {
			pass()
		}
	}
	if passed < 2000 {
		t.Fatalf("%d turns passed", passed)
	}
	if cap(c.turns) > 16 {
		t.Errorf("the queue's array grew to %d for at most %d waiting", cap(c.turns), 8)
	}
	for len(waiting) > 0 {
		pass()
	}
	// A turn passed with no one in line is kept for the next to join.
	c.passTurn()
	if turn, err := c.joinTurns(); turn != nil || err != nil {
		t.Errorf("after a handoff: %v, %v; want the turn at once", turn, err)
	}

	// A connection that fails fails every request in line, and the
	// requests yet to join.
	join()
	join()
	c.breakTurns()
	for i, w := range waiting {
		if err := <-w; err != errPipelineBroken {
			t.Errorf("waiting request %d after the break: %v", i, err)
		}
	}
	if _, err := c.joinTurns(); err != errPipelineBroken {
		t.Errorf("joining after the break: %v", err)
	}
}

// Queuing a request and passing its turn allocates nothing once the
// queue's array and a channel exist.
func TestTurnsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop a quarter of what it is given")
	}
	c := &backendConn{}
	step := func() {
		a, _ := c.joinTurns()
		b, _ := c.joinTurns()
		c.passTurn()
		<-a
		doneTurn(a)
		c.passTurn()
		<-b
		doneTurn(b)
	}
	step()
	if n := testing.AllocsPerRun(1000, step); n > 0.1 {
		t.Errorf("%v allocations per two queued requests; want 0", n)
	}
}
