package app

import (
	"time"

	"github.com/lnmux/lnmux/ports"
)

// SystemClock is the wall clock.
type SystemClock struct{}

var _ ports.Clock = SystemClock{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) ports.Timer { return time.AfterFunc(d, f) }
