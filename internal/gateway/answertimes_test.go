package gateway

import (
	"testing"
	"time"
)

// answerTimes: a path not seen is not expected soon; an estimate falls at
// once to a quicker answer and rises an eighth of the way to a slower
// one; a path whose hash falls in the same slot pushes the other out.
func TestAnswerTimes(t *testing.T) {
	at := newAnswerTimes()
	a, b := at.key("/a"), at.key("/b")
	if a == 0 || a == b || a != at.key("/a") {
		t.Fatalf("keys %x, %x", a, b)
	}
	if got := at.expect(a); got != unknownAnswer {
		t.Errorf("unseen path: %v; want %v", got, unknownAnswer)
	}
	if got := at.expect(0); got != unknownAnswer {
		t.Errorf("no key: %v; want %v", got, unknownAnswer)
	}
	steps := []struct {
		took, want time.Duration
	}{
		{80 * time.Microsecond, 80 * time.Microsecond},                         // first answer
		{880 * time.Microsecond, 180 * time.Microsecond},                       // an eighth of the way up
		{20 * time.Microsecond, 20 * time.Microsecond},                         // down at once
		{10*time.Millisecond + 20*time.Microsecond, 1270 * time.Microsecond},   // one slow answer: past 1 ms
		{10*time.Millisecond + 20*time.Microsecond, 2363750 * time.Nanosecond}, // and on up
		{time.Microsecond, time.Microsecond},                                   // quick again
	}
	for i, s := range steps {
		at.add(a, s.took)
		if got := at.expect(a); got != s.want {
			t.Fatalf("after answer %d (%v): %v; want %v", i, s.took, got, s.want)
		}
	}
	if got := at.expect(b); got != unknownAnswer {
		t.Errorf("/b, unseen: %v", got)
	}
	// Another key in /a's slot takes it over.
	other := a + answerSlots
	at.add(other, time.Second)
	if at.expect(a) != unknownAnswer || at.expect(other) != time.Second {
		t.Errorf("after another path in the slot: /a %v, other %v", at.expect(a), at.expect(other))
	}
}
