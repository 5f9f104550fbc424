//go:build !race

package gateway

// raceEnabled reports whether the tests run under the race detector, under
// which sync.Pool drops some of what it is given: allocation counts that
// rely on a pool hold only without it.
const raceEnabled = false
