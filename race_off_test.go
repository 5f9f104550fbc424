//go:build !race

package spdymux

// raceEnabled reports whether the tests run under the race detector, which
// slows the code it watches five to twenty times: timing bars that hold
// without it (goodP99Bound) are only reported under it.
const raceEnabled = false
