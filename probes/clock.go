package probes

import "time"

// A clock tells the time and calls functions later. A [Readiness] reads every
// time and sets every timer through its clock: check timeouts, the end of a
// result's TTL and a request's wait. Production uses systemClock, the time
// package; tests give a fake one, so that they move time through the code
// production runs.
type clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) timer
}

// A timer is a pending call of a clock's AfterFunc; *time.Timer is one.
type timer interface {
	Stop() bool
}

// systemClock is the time package.
type systemClock struct{}

var _ clock = systemClock{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) timer { return time.AfterFunc(d, f) }
