//go:build race

package app

// raceEnabled: the race detector slows the simulation about tenfold, so
// the race run checks fewer seeds; the plain run in `task test` checks more.
const raceEnabled = true
