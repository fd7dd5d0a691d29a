package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gok8s/gok8s/app/internal/schema"
	"github.com/gok8s/gok8s/probes"
	"github.com/jackc/pgx/v5"
)

// usageError is a bad command line: exit status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: app [serve|healthcheck|migrate|wait|version|help]\n\n")
	fmt.Fprintf(w, "  serve        serve HTTP until SIGTERM or SIGINT (the default)\n")
	fmt.Fprintf(w, "  healthcheck  GET this service's /readyz (-path /livez, -timeout 3s); exit 0 if 200\n")
	fmt.Fprintf(w, "  migrate      apply the database migrations and exit\n")
	fmt.Fprintf(w, "  wait         wait until DATABASE_URL answers (-timeout 60s); exit 0 if it does\n")
	fmt.Fprintf(w, "  version      print the version\n\n")
	fmt.Fprintf(w, "Environment variables:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  VARIABLE\tDEFAULT\tDESCRIPTION\n")
	// From the struct tags, not envconfig.Usage: its text/template would keep
	// every exported method in the binary (2 MB of the image).
	for f := range reflect.TypeFor[config]().Fields() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.Tag.Get("envconfig"), f.Tag.Get("default"), f.Tag.Get("desc"))
	}
	_ = tw.Flush()
}

// parseFlags parses a command's flags; a bad one is a usageError.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Errorf("%s: %w", fs.Name(), err)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

// healthcheck GETs a probe path of the server at HTTP_ADDR on loopback and
// fails unless it answers 200: Docker's and compose's HEALTHCHECK, in an image
// with no shell or curl.
func healthcheck(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	path := fs.String("path", "/readyz", "probe path")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !strings.HasPrefix(*path, "/") {
		return usageError{fmt.Errorf("healthcheck: -path %q must begin with /", *path)}
	}
	port, err := cfg.listenPort()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	url := "http://127.0.0.1:" + port + *path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(stdout, "GET %s: %s\n", url, resp.Status)
	return nil
}

// migrate applies the migrations to DATABASE_URL.
func migrate(ctx context.Context, cfg config, log *slog.Logger) error {
	pool, err := newPool(cfg.DatabaseURL, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	versions, err := schema.Migrate(ctx, pool, log)
	if err != nil {
		return err
	}
	log.Info("migrate: done", "applied", versions)
	return nil
}

// waitForDatabase connects to DATABASE_URL until it answers a ping or the
// timeout passes: an init container's wait for its database.
func waitForDatabase(ctx context.Context, cfg config, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cc, err := pgx.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	for {
		err := pingOnce(ctx, cc)
		if err == nil {
			log.Info("wait: database answers", "after", time.Since(start).Round(time.Millisecond))
			return nil
		}
		log.Warn("wait: database does not answer yet", "error", probes.Redact(err.Error()))
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return fmt.Errorf("wait: database did not answer within %s", *timeout)
		}
	}
}

func pingOnce(ctx context.Context, cc *pgx.ConnConfig) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	return conn.Ping(ctx)
}
