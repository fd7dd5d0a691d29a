package e2e

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Permanent wraps err so that Poll returns it at once instead of trying again:
// for a failure that waiting cannot cure, such as a process that exited.
func Permanent(err error) error { return permanentError{err} }

type permanentError struct{ error }

func (p permanentError) Unwrap() error { return p.error }

// Poll calls f until it returns nil or timeout passes, and returns f's last
// error. An error made by Permanent ends the polling at once.
func Poll(ctx context.Context, timeout time.Duration, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var prev error // the last attempt's error that the deadline did not cut
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		err := f(attempt)
		cancelAttempt()
		if err == nil {
			return nil
		}
		if errors.As(err, new(permanentError)) {
			return err
		}
		if ctx.Err() != nil {
			if prev != nil && errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("after %s: %w (the attempt before: %w)", timeout, err, prev)
			}
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		prev = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}
