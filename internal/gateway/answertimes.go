package gateway

import (
	"hash/maphash"
	"time"
)

// answerTimes keeps, for the paths the backend answered lately, how long
// it took to answer one on a connection: from the request's head sent, or
// from its turn to read when it waited in line, to the last byte of its
// answer read. It is what a GET or HEAD uses to judge whether queuing on a
// connection behind others would keep it waiting (Config.PipelineWait).
//
// The table has a fixed number of slots, each for the paths whose hash
// falls in it, the latest one seen: a client that asks for ever new paths
// only pushes other paths out, and a path not in the table is not
// expected soon. Each slot holds an estimate that falls at once to a
// quicker answer and rises by an eighth of the way to a slower one: the
// time the backend needs for the path when nothing else holds it up. A
// busy machine stretches some answers of every path (the gateway's and
// the backend's goroutines wait for a core), and an estimate that
// followed them, an average, would stop the queuing that makes the
// machine less busy. A path whose every answer is slow is expected slow;
// one that turns slow is, after a few slow answers in a row (past a wait
// of 1 ms from near 0: one answer of 10 ms, or six of 2 ms); one that is
// slow now and then (a cache miss) is expected quick. The pool's mu
// guards it.
type answerTimes struct {
	seed  maphash.Seed
	slots [answerSlots]answerSlot
}

type answerSlot struct {
	key      uint64
	expected time.Duration // the estimate
}

// answerSlots is the number of paths answerTimes keeps (16 bytes each).
const answerSlots = 1024

// unknownAnswer is the time expected of an answer to a path not in the
// table: longer than any wait a request would queue for.
const unknownAnswer = time.Hour

func newAnswerTimes() *answerTimes { return &answerTimes{seed: maphash.MakeSeed()} }

// key returns the key of path: never 0, which stands for none.
func (t *answerTimes) key(path string) uint64 { return maphash.String(t.seed, path) | 1 }

// expect returns the time an answer to the path of key is expected to
// take.
func (t *answerTimes) expect(key uint64) time.Duration {
	if s := &t.slots[key%answerSlots]; key != 0 && s.key == key {
		return s.expected
	}
	return unknownAnswer
}

// add records that an answer to the path of key took d.
func (t *answerTimes) add(key uint64, d time.Duration) {
	s := &t.slots[key%answerSlots]
	switch {
	case s.key != key, d < s.expected:
		*s = answerSlot{key: key, expected: d}
	default:
		s.expected += (d - s.expected) / 8
	}
}
