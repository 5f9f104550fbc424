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
// server until its secondary connection is closed; streams that find no free
// slot wait in a heap ordered by priority (0 first), then by arrival. A
// stream reset while it waits never runs. Pool is safe for concurrent use.
type Pool struct {
	mu      sync.Mutex
	slots   int
	busy    int
	seq     uint64
	waiting waitHeap
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
	return p.busy, len(p.waiting)
}

// poolEntry is one stream's claim on a slot. grant is called once, without
// the pool's lock held, when the slot is given.
type poolEntry struct {
	priority uint8
	seq      uint64
	index    int // in waiting, or -1
	grant    func()
}

// acquire grants e a slot now if one is free, or queues it.
func (p *Pool) acquire(e *poolEntry) {
	p.mu.Lock()
	if p.busy < p.slots {
		p.busy++
		e.index = -1
		p.mu.Unlock()
		e.grant()
		return
	}
	p.seq++
	e.seq = p.seq
	heap.Push(&p.waiting, e)
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
	heap.Remove(&p.waiting, e.index)
	return true
}

// release frees a slot, handing it to the first waiting entry.
func (p *Pool) release() {
	p.mu.Lock()
	if len(p.waiting) == 0 {
		p.busy--
		p.mu.Unlock()
		return
	}
	e := heap.Pop(&p.waiting).(*poolEntry)
	p.mu.Unlock()
	e.grant()
}

// waitHeap orders waiting entries by priority, then arrival.
type waitHeap []*poolEntry

func (h waitHeap) Len() int { return len(h) }
func (h waitHeap) Less(i, j int) bool {
	if h[i].priority != h[j].priority {
		return h[i].priority < h[j].priority
	}
	return h[i].seq < h[j].seq
}
func (h waitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *waitHeap) Push(x any) {
	e := x.(*poolEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *waitHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}
