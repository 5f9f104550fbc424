package spdymux

import "testing"

func TestOutflow(t *testing.T) {
	var f outflow
	if !f.add(100) || f.n != 100 {
		t.Fatalf("add 100: n = %d", f.n)
	}
	f.take(150)
	if f.n != -50 {
		t.Errorf("take 150 of 100: n = %d; want -50", f.n)
	}
	f = outflow{n: maxWindow - 1}
	if !f.add(1) || f.n != maxWindow {
		t.Errorf("add to 2^31-1: n = %d, refused", f.n)
	}
	if f.add(1) {
		t.Errorf("add past 2^31-1: accepted")
	}
}

func TestInflow(t *testing.T) {
	f := inflow{avail: 1000}
	if !f.take(1000) || f.avail != 0 {
		t.Fatalf("take the whole window: avail %d", f.avail)
	}
	if f.take(1) {
		t.Errorf("take past the window: accepted")
	}
	if d := f.credit(200, 250); d != 0 || f.unsent != 200 {
		t.Errorf("credit under threshold: sent %d, unsent %d; want 0, 200", d, f.unsent)
	}
	if d := f.credit(100, 250); d != 300 || f.avail != 300 || f.unsent != 0 {
		t.Errorf("credit over threshold: sent %d, avail %d, unsent %d; want 300, 300, 0", d, f.avail, f.unsent)
	}
}
