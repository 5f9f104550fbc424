package spdymux

import (
	"container/heap"
	"sync"
)

// DefaultWorkers is the number of worker slots of DefaultPool.
const DefaultWorkers = 1024

// DefaultPool is the process-wide pool used by every Listener whose Config
// names none.
var DefaultPool = NewPool(DefaultWorkers)

// Pool is a process-wide set of worker slots: the seed's per-process thread
// pool. A stream holds a slot from the moment it is handed to the inner
// server until its secondary connection is closed. When no slot is free,
// streams wait, and each slot that frees goes to the session holding the
// fewest slots (so one session cannot starve the others, as Apache
// mod_http2 shrinks the worker share of a busy connection), and within
// that session to its waiting stream of the highest priority (0 first),
// then the oldest; between sessions holding as many slots, priority, then
// age, decides. A sixteenth of the slots is kept for sessions that hold
// none, so that their first stream runs at once. A stream reset while it
// waits never runs. Pool is safe for concurrent use.
type Pool struct {
	mu       sync.Mutex
	slots    int
	busy     int
	idle     int // idle secondary connections kept, at most slots - busy
	seq      uint64
	waiting  int
	sessions ownerHeap // owners with waiting entries
}

// NewPool returns a pool of n worker slots (n < 1 means 1).
func NewPool(n int) *Pool {
	return &Pool{slots: max(n, 1)}
}

// Slots returns the number of slots.
func (p *Pool) Slots() int { return p.slots }

// Stats returns the slots in use and the streams waiting for one.
func (p *Pool) Stats() (busy, waiting int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busy, p.waiting
}

// poolOwner is one session's share of a pool: the slots it holds and its
// streams waiting for one. Guarded by the pool's lock.
type poolOwner struct {
	busy    int
	entries entryHeap
	index   int // in Pool.sessions, or -1
}

func newPoolOwner() *poolOwner { return &poolOwner{index: -1} }

// poolEntry is one stream's claim on a slot. grant's grantSlot is called
// once, without the pool's lock held, when the slot is given.
type poolEntry struct {
	owner    *poolOwner
	priority uint8
	seq      uint64
	index    int // in owner.entries, or -1
	grant    slotGrantee
}

// slotGrantee is told that its slot is given: a *stream, held in the
// entry without a closure of its own.
type slotGrantee interface{ grantSlot() }

// reserveLocked returns the slots kept for sessions that hold none: a
// sixteenth of the pool (none in a pool of fewer than 16). A session that
// holds slots takes one only while more than these are free, so that a
// stream of a session that holds none never waits behind handlers that
// run long, however many streams other sessions keep busy.
func (p *Pool) reserveLocked() int { return p.slots / 16 }

// acquire grants e a slot now if one is free (and e's session holds none,
// or more than the reserve are free), or queues it.
func (p *Pool) acquire(e *poolEntry) {
	p.mu.Lock()
	if p.busy < p.slots && (e.owner.busy == 0 || p.busy < p.slots-p.reserveLocked()) {
		p.busy++
		e.owner.busy++
		e.index = -1
		p.mu.Unlock()
		e.grant.grantSlot()
		return
	}
	p.seq++
	e.seq = p.seq
	o := e.owner
	heap.Push(&o.entries, e)
	p.waiting++
	if o.index < 0 {
		heap.Push(&p.sessions, o)
	} else {
		heap.Fix(&p.sessions, o.index)
	}
	p.mu.Unlock()
}

// cancel removes e from the queue. It reports whether e was still waiting;
// false means its slot was granted (or is being granted) and must be
// released.
func (p *Pool) cancel(e *poolEntry) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.index < 0 {
		return false
	}
	o := e.owner
	heap.Remove(&o.entries, e.index)
	p.waiting--
	if len(o.entries) == 0 {
		heap.Remove(&p.sessions, o.index)
	} else {
		heap.Fix(&p.sessions, o.index)
	}
	return true
}

// takeIdle reports whether a secondary connection may stay idle for a
// stream to come, counting it if so: no more are kept than there are free
// slots.
func (p *Pool) takeIdle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle >= p.slots-p.busy {
		return false
	}
	p.idle++
	return true
}

// putIdle uncounts an idle connection that takes a stream or closes.
func (p *Pool) putIdle() {
	p.mu.Lock()
	p.idle--
	p.mu.Unlock()
}

// reprioritize gives e a new priority, which matters while it waits.
func (p *Pool) reprioritize(e *poolEntry, priority uint8) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.priority = priority
	if e.index >= 0 {
		heap.Fix(&e.owner.entries, e.index)
		heap.Fix(&p.sessions, e.owner.index)
	}
}

// release frees a slot held by o, handing it to the next waiting entry.
func (p *Pool) release(o *poolOwner) {
	p.mu.Lock()
	o.busy--
	if o.index >= 0 {
		heap.Fix(&p.sessions, o.index)
	}
	next := (*poolOwner)(nil)
	if p.waiting > 0 {
		next = p.sessions[0]
	}
	if next == nil || next.busy > 0 && p.busy-1 >= p.slots-p.reserveLocked() {
		// Nobody waits, or only sessions that hold slots while the
		// reserve is all that is free: the slot stays free.
		p.busy--
		p.mu.Unlock()
		return
	}
	e := heap.Pop(&next.entries).(*poolEntry)
	p.waiting--
	next.busy++
	if len(next.entries) == 0 {
		heap.Pop(&p.sessions)
	} else {
		heap.Fix(&p.sessions, 0)
	}
	p.mu.Unlock()
	e.grant.grantSlot()
}

// entryHeap orders one owner's waiting entries by priority, then arrival.
type entryHeap []*poolEntry

func (h entryHeap) Len() int { return len(h) }
func (h entryHeap) Less(i, j int) bool {
	if h[i].priority != h[j].priority {
		return h[i].priority < h[j].priority
	}
	return h[i].seq < h[j].seq
}
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *entryHeap) Push(x any) {
	e := x.(*poolEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}

// ownerHeap orders owners with waiting entries by the slots they hold,
// then by their first waiting entry.
type ownerHeap []*poolOwner

func (h ownerHeap) Len() int { return len(h) }
func (h ownerHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.busy != b.busy {
		return a.busy < b.busy
	}
	return entryBefore(a.entries[0], b.entries[0])
}
func (h ownerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *ownerHeap) Push(x any) {
	o := x.(*poolOwner)
	o.index = len(*h)
	*h = append(*h, o)
}
func (h *ownerHeap) Pop() any {
	old := *h
	o := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	o.index = -1
	return o
}

func entryBefore(a, b *poolEntry) bool {
	if a.priority != b.priority {
		return a.priority < b.priority
	}
	return a.seq < b.seq
}
