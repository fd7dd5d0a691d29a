package e2e_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gok8s/gok8s/e2e"
)

// TestPollNamesTheLastWholeAttempt: when the deadline cuts an attempt short,
// Poll's error says what the attempt before it found, not only "deadline
// exceeded".
func TestPollNamesTheLastWholeAttempt(t *testing.T) {
	tests := []struct {
		name string
		f    func(calls int) func(ctx context.Context) error
		want []string
	}{
		{"cut short after a failure", func(calls int) func(context.Context) error {
			return func(ctx context.Context) error {
				if calls == 0 {
					return errors.New("3 hits of 40")
				}
				<-ctx.Done()
				return ctx.Err()
			}
		}, []string{"deadline exceeded", "the attempt before: 3 hits of 40"}},
		{"every attempt whole", func(int) func(context.Context) error {
			return func(context.Context) error { return errors.New("3 hits of 40") }
		}, []string{"after 300ms: 3 hits of 40"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := e2e.Poll(t.Context(), 300*time.Millisecond, func(ctx context.Context) error {
				defer func() { calls++ }()
				return tt.f(calls)(ctx)
			})
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Poll: %v, want it to say %q", err, w)
				}
			}
		})
	}
}
