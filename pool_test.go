package spdymux

import (
	"fmt"
	"slices"
	"testing"
)

// grants records the order in which a pool grants entries, all of one
// session.
type grants struct {
	order []int
	owner *poolOwner
}

func (g *grants) entry(name int, prio uint8) *poolEntry {
	if g.owner == nil {
		g.owner = newPoolOwner()
	}
	return &poolEntry{owner: g.owner, priority: prio, index: -1, grant: grantFunc(func() { g.order = append(g.order, name) })}
}

func checkStats(t *testing.T, p *Pool, busy, waiting int) {
	t.Helper()
	if b, w := p.Stats(); b != busy || w != waiting {
		t.Errorf("Stats() = %d busy, %d waiting; want %d, %d", b, w, busy, waiting)
	}
}

func TestPoolOrder(t *testing.T) {
	p := NewPool(1)
	var g grants
	p.acquire(g.entry(0, 7))
	// Waiting entries: priority first (0 highest), then arrival.
	prios := []uint8{7, 3, 0, 5, 3, 0, 7}
	for i, prio := range prios {
		p.acquire(g.entry(i+1, prio))
	}
	checkStats(t, p, 1, len(prios))
	for range prios {
		p.release(g.owner)
	}
	if want := []int{0, 3, 6, 2, 5, 4, 1, 7}; !slices.Equal(g.order, want) {
		t.Errorf("grant order %v; want %v", g.order, want)
	}
	checkStats(t, p, 1, 0)
	p.release(g.owner)
	checkStats(t, p, 0, 0)
}

func TestPoolFreeSlots(t *testing.T) {
	p := NewPool(3)
	if p.Slots() != 3 {
		t.Errorf("Slots() = %d; want 3", p.Slots())
	}
	var g grants
	for i := range 3 {
		p.acquire(g.entry(i, 7))
	}
	if want := []int{0, 1, 2}; !slices.Equal(g.order, want) {
		t.Errorf("granted %v at once; want %v", g.order, want)
	}
	checkStats(t, p, 3, 0)
	p.acquire(g.entry(3, 0))
	checkStats(t, p, 3, 1)
	if NewPool(0).Slots() != 1 || NewPool(-5).Slots() != 1 {
		t.Error("NewPool(n < 1) does not have 1 slot")
	}
}

func TestPoolCancel(t *testing.T) {
	p := NewPool(1)
	var g grants
	first := g.entry(0, 0)
	p.acquire(first)
	a, b, c := g.entry(1, 2), g.entry(2, 1), g.entry(3, 3)
	p.acquire(a)
	p.acquire(b)
	p.acquire(c)
	if !p.cancel(b) {
		t.Fatal("cancel of a waiting entry reported false")
	}
	if p.cancel(b) {
		t.Error("second cancel of the same entry reported true")
	}
	if p.cancel(first) {
		t.Error("cancel of a granted entry reported true; its slot must be released")
	}
	checkStats(t, p, 1, 2)
	p.release(g.owner) // hands the slot to a
	p.release(g.owner) // to c
	p.release(g.owner) // frees it
	if want := []int{0, 1, 3}; !slices.Equal(g.order, want) {
		t.Errorf("grant order %v; want %v (2 was cancelled)", g.order, want)
	}
	checkStats(t, p, 0, 0)
	// The last waiter cancelled: release frees the slot.
	p.acquire(g.entry(4, 0))
	d := g.entry(5, 0)
	p.acquire(d)
	p.cancel(d)
	p.release(g.owner)
	checkStats(t, p, 0, 0)
}

func TestPoolReleaseHandsOver(t *testing.T) {
	p := NewPool(1)
	var g grants
	p.acquire(g.entry(0, 0))
	p.acquire(g.entry(1, 0))
	p.release(g.owner)
	// The slot went straight to the waiter: still one busy, none free.
	checkStats(t, p, 1, 0)
	p.acquire(g.entry(2, 0))
	checkStats(t, p, 1, 1)
	if want := []int{0, 1}; !slices.Equal(g.order, want) {
		t.Errorf("granted %v; want %v", g.order, want)
	}
}

func BenchmarkPool(b *testing.B) {
	b.Run("free", func(b *testing.B) {
		p := NewPool(1)
		o := newPoolOwner()
		e := &poolEntry{owner: o, index: -1, grant: grantFunc(func() {})}
		b.ReportAllocs()
		for b.Loop() {
			p.acquire(e)
			p.release(o)
		}
	})
	b.Run("contended", func(b *testing.B) {
		// 64 streams of 8 sessions wait; each release hands the slot to
		// the best of them, which queues again at once.
		p := NewPool(1)
		var owners [8]*poolOwner
		for i := range owners {
			owners[i] = newPoolOwner()
		}
		var granted *poolEntry
		p.acquire(&poolEntry{owner: owners[0], index: -1, grant: grantFunc(func() {})})
		granted = &poolEntry{owner: owners[0]}
		for i := range 64 {
			e := &poolEntry{owner: owners[i%8], priority: uint8(i % 8), index: -1}
			e.grant = grantFunc(func() { granted = e })
			p.acquire(e)
		}
		b.ReportAllocs()
		for b.Loop() {
			p.release(granted.owner)
			p.acquire(granted)
		}
	})
}

// Between sessions, a freed slot goes to the session holding the fewest,
// whatever the priorities: one session cannot starve the others.
func TestPoolFairBetweenSessions(t *testing.T) {
	p := NewPool(2)
	var order []string
	a, b := newPoolOwner(), newPoolOwner()
	entry := func(o *poolOwner, name string, prio uint8) *poolEntry {
		return &poolEntry{owner: o, priority: prio, index: -1, grant: grantFunc(func() { order = append(order, name) })}
	}
	p.acquire(entry(a, "a1", 0))
	p.acquire(entry(a, "a2", 0))
	for i := range 3 {
		p.acquire(entry(a, fmt.Sprintf("a%d", i+3), 0))
	}
	p.acquire(entry(b, "b1", 7))
	p.acquire(entry(b, "b2", 7))
	checkStats(t, p, 2, 5)
	// a holds 2, b none: b's first goes first despite its priority; then
	// a holds 1, b 1: priority decides (a's 0 before b's 7).
	p.release(a)
	p.release(a)
	p.release(b)
	if want := []string{"a1", "a2", "b1", "a3", "b2"}; !slices.Equal(order, want) {
		t.Errorf("grant order %v; want %v", order, want)
	}
}

// A sixteenth of the slots is kept for sessions that hold none: a session
// that keeps every slot it can busy leaves them free, and another
// session's stream runs at once instead of waiting for a handler to end.
func TestPoolReserve(t *testing.T) {
	p := NewPool(32) // two slots kept
	var busy, other grants
	for i := range 40 {
		p.acquire(busy.entry(i, 0))
	}
	if len(busy.order) != 30 {
		t.Fatalf("one session got %d of 32 slots at once; want 30, two kept for others", len(busy.order))
	}
	checkStats(t, p, 30, 10)
	p.acquire(other.entry(0, 7))
	if len(other.order) != 1 {
		t.Fatal("a session that holds no slot waits while the reserve is free")
	}
	// A slot it frees goes to the waiting session again only while more
	// than the reserve would be free.
	p.release(other.owner)
	checkStats(t, p, 30, 10)
	p.release(busy.owner)
	if len(busy.order) != 31 {
		t.Errorf("after a release: %d granted; want 31 (the slot to the next waiting stream)", len(busy.order))
	}
	checkStats(t, p, 30, 9)
}

// grantFunc is a slotGrantee that calls itself.
type grantFunc func()

func (f grantFunc) grantSlot() { f() }
