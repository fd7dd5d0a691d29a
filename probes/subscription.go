package probes

// A Subscription signals changes of a [Readiness], for a watcher such as a
// gRPC health Watch: get one from [Readiness.Subscribe], read
// [Readiness.Status] on each signal, and Close it when done.
type Subscription struct {
	// C receives a value whenever the state, the lifecycle or any check's
	// pass or fail outcome (optional checks included) changes. It has one
	// slot and a signal is never waited for: signals that come while one is
	// pending merge into it, so that a slow reader skips intermediate
	// outcomes but always reads the latest. C is never closed.
	C <-chan struct{}

	c chan struct{}
	r *Readiness
}

// Subscribe returns a new [Subscription] to r's changes. While at least one is
// open, r keeps its results fresh by itself: each check runs again as its TTL
// ends (with a TTL of zero, a timeout after its last result), bounded as
// usual, so that a watcher sees an outage with no request to run the checks.
// A check that has no fresh result runs at once. With none open, checks run
// only when asked.
//
// Read the current outcome after Subscribe returns, then again on each signal:
// a change that comes in between is signalled.
func (r *Readiness) Subscribe() *Subscription {
	c := make(chan struct{}, 1)
	s := &Subscription{C: c, c: c, r: r}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subs[s] = struct{}{}
	if !r.watching() {
		return s
	}
	started := false
	for _, e := range r.checks {
		if (!e.ran || e.due) && !e.busy {
			r.start(e)
			started = true
		}
	}
	if started {
		r.publish()
	}
	return s
}

// Close ends the subscription: no signal is sent after it returns, and once
// the last one is closed the Readiness stops running checks by itself. Close
// may be called more than once.
func (s *Subscription) Close() {
	s.r.mu.Lock()
	delete(s.r.subs, s)
	s.r.mu.Unlock()
}
