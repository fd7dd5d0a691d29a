package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gok8s/gok8s/app/internal/schema"
	"github.com/gok8s/gok8s/app/internal/tracing"
	"github.com/gok8s/gok8s/grpchealth"
	"github.com/gok8s/gok8s/probes"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// usageError is a bad command line: exit status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }

// A command is one of the app's subcommands.
type command struct {
	name    string
	flags   string // its flags and their defaults, for the usage
	summary string
	// run runs it with the configuration; help and version, which need
	// none, have no run: the caller answers them.
	run func(ctx context.Context, cfg config, args []string, stdout io.Writer, log *slog.Logger) error
}

// commands returns the app's commands in the order `app help` lists them: the
// one list of them, which run dispatches on and usage prints.
func commands() []command {
	return []command{
		{"serve", "", "serve HTTP and gRPC until SIGTERM or SIGINT (the default)", noFlags("serve", serve)},
		{"healthcheck", "[-path /readyz] [-timeout 3s] [-grpc [-service readiness]]",
			"GET this service's probe path on loopback; exit 0 if it answers 200; with -grpc, ask its grpc.health.v1 service instead; exit 0 if SERVING",
			func(ctx context.Context, cfg config, args []string, stdout io.Writer, _ *slog.Logger) error {
				return healthcheck(ctx, cfg, args, stdout)
			}},
		{"migrate", "", "apply the database migrations and exit", noFlags("migrate", migrate)},
		{"wait", "[-timeout 60s]", "wait until DATABASE_URL answers; exit 0 if it does",
			func(ctx context.Context, cfg config, args []string, _ io.Writer, log *slog.Logger) error {
				return waitForDatabase(ctx, cfg, args, log)
			}},
		{"version", "", "print the version", nil},
		{"help", "", "print this: the commands and the environment variables", nil},
	}
}

// noFlags returns the run of the command name, which takes no flags nor
// arguments: f, after checking that args is empty.
func noFlags(name string, f func(context.Context, config, *slog.Logger) error) func(context.Context, config, []string, io.Writer, *slog.Logger) error {
	return func(ctx context.Context, cfg config, args []string, _ io.Writer, log *slog.Logger) error {
		if err := parseFlags(flag.NewFlagSet(name, flag.ContinueOnError), args); err != nil {
			return err
		}
		return f(ctx, cfg, log)
	}
}

// lookup returns the command named name; -h, -help and --help name help.
func lookup(name string) (command, bool) {
	switch name {
	case "-h", "-help", "--help":
		name = "help"
	}
	i := slices.IndexFunc(commands(), func(c command) bool { return c.name == name })
	if i < 0 {
		return command{}, false
	}
	return commands()[i], true
}

// usage prints the commands and the environment variables, from commands and
// from config's struct tags.
func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: app [command] [flags]\n\nCommands:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.name, c.flags, c.summary)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nEnvironment variables:\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  VARIABLE\tDEFAULT\tDESCRIPTION\n")
	// From the struct tags, not envconfig.Usage: its text/template would keep
	// every exported method in the binary (2 MB of the image).
	for f := range reflect.TypeFor[config]().Fields() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.Tag.Get("envconfig"), f.Tag.Get("default"), f.Tag.Get("desc"))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nTracing (OpenTelemetry), read by the OpenTelemetry SDK; with no exporter or endpoint set, no tracing:\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, v := range tracing.Variables() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, v.Default, v.Description)
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
// with no shell or curl. With -grpc it asks the gRPC health service at
// GRPC_ADDR about -service instead, and fails unless it is SERVING.
func healthcheck(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	path := fs.String("path", "/readyz", "probe path")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	overGRPC := fs.Bool("grpc", false, "ask the gRPC health service at GRPC_ADDR instead")
	service := fs.String("service", grpchealth.Readiness, "with -grpc: the health service (readiness, liveness, a check or group)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !strings.HasPrefix(*path, "/") {
		return usageError{fmt.Errorf("healthcheck: -path %q must begin with /", *path)}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if *overGRPC {
		return grpcHealthcheck(ctx, cfg, *service, stdout)
	}
	port, err := cfg.listenPort()
	if err != nil {
		return err
	}
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

// grpcHealthcheck asks the gRPC health service at GRPC_ADDR, on loopback,
// about service and fails unless it is SERVING.
func grpcHealthcheck(ctx context.Context, cfg config, service string, stdout io.Writer) error {
	if cfg.GRPCAddr == "" {
		return usageError{errors.New("healthcheck: -grpc: GRPC_ADDR is empty, so the service serves no gRPC")}
	}
	_, port, err := net.SplitHostPort(cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("GRPC_ADDR: %w", err)
	}
	target := net.JoinHostPort("127.0.0.1", port)
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return fmt.Errorf("gRPC health check of %q at %s: %w", service, target, err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("gRPC health check of %q at %s: %s", service, target, resp.GetStatus())
	}
	fmt.Fprintf(stdout, "gRPC health check of %q at %s: %s\n", service, target, resp.GetStatus())
	return nil
}

// migrate applies the migrations to DATABASE_URL.
func migrate(ctx context.Context, cfg config, log *slog.Logger) error {
	pool, err := newPool("DATABASE_URL", cfg.DatabaseURL, 0, 2, nil)
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
	pc, err := parseDatabaseURL("DATABASE_URL", cfg.DatabaseURL)
	if err != nil {
		return err
	}
	cc := pc.ConnConfig
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
