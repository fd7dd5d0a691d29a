package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// RequireDocker skips tb when no Docker engine answers, or fails it when the
// environment variable CI is set.
func RequireDocker(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := dockerHealth(ctx)
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("e2e: no Docker engine answers and CI is set: %v", err)
	}
	tb.Skipf("e2e: no Docker engine answers (%v); start Docker and run `make test` to run this test", err)
}

func dockerHealth(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil { // testcontainers panics when it finds no engine
			err = fmt.Errorf("%v", p)
		}
	}()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.Ping(ctx, client.PingOptions{})
	return err
}
