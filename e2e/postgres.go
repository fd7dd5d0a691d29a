package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/wait"
)

// DefaultPostgresImage is the PostgreSQL image, as on any machine with a registry.
const DefaultPostgresImage = "postgres:17-alpine"

// PostgresImage returns $POSTGRES_IMAGE, or DefaultPostgresImage.
func PostgresImage() string { return envOr("POSTGRES_IMAGE", DefaultPostgresImage) }

// A Postgres is a PostgreSQL container with user and password "postgres" and a
// database "gok8s".
type Postgres struct {
	*Container
	// URL is the database URL of gok8s on the host.
	URL string
}

// StartPostgres starts PostgreSQL on host port port (FreePort when ""), with
// every statement logged (see CountStatements). The container is removed when
// tb ends.
func StartPostgres(tb testing.TB, port string) *Postgres {
	tb.Helper()
	RequireDocker(tb)
	ctr, port := start(tb, port, func(port string) (testcontainers.Container, error) {
		ctr, err := postgres.Run(tb.Context(), PostgresImage(),
			postgres.WithDatabase("gok8s"),
			postgres.WithUsername("postgres"),
			postgres.WithPassword("postgres"),
			// postgres.BasicWaitStrategies, with room for a loaded machine:
			// the ready line twice (PostgreSQL restarts once during init), then the port.
			testcontainers.WithWaitStrategyAndDeadline(startTimeout,
				wait.ForLog("database system is ready to accept connections").WithOccurrence(2).WithStartupTimeout(startTimeout),
				wait.ForListeningPort("5432/tcp").WithStartupTimeout(startTimeout)),
			testcontainers.WithExposedPorts("5432/tcp"),
			pinPort("5432/tcp", port),
			testcontainers.WithCmdArgs("-c", "log_statement=all", "-c", "fsync=off"),
		)
		if ctr == nil {
			return nil, err // a typed nil would not be nil as a Container
		}
		return ctr, err
	})
	url := "postgres://postgres:postgres@127.0.0.1:" + port + "/gok8s?sslmode=disable"
	p := &Postgres{URL: url, Container: &Container{Container: ctr, Port: port}}
	p.ready = func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		return conn.Ping(ctx)
	}
	p.waitReady(tb)
	return p
}

// CountStatements returns how many times the server has logged the statement
// stmt, as log_statement=all writes it ("statement: <stmt>").
func (p *Postgres) CountStatements(tb testing.TB, stmt string) int {
	tb.Helper()
	return strings.Count(p.Logs(tb), "statement: "+stmt+"\n")
}
