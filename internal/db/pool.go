package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PoolConfig sizes the connection pool.
type PoolConfig struct {
	URL      string
	MaxConns int32
}

// NewPool opens a pgx pool; it does not wait for the database to be reachable.
func NewPool(ctx context.Context, c PoolConfig) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if c.MaxConns > 0 {
		cfg.MaxConns = c.MaxConns
	}
	cfg.MaxConnLifetime = 30 * time.Minute
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	cfg.ConnConfig.Tracer = tracer{} // spans under a traced request only
	cfg.AfterConnect = afterConnect
	return pgxpool.NewWithConfig(ctx, cfg)
}

// afterConnect prepares a new connection: ids as 16 bytes, not text, and whether it is a Citus
// coordinator's (its transactions then send their claims on to the workers: see begin).
func afterConnect(ctx context.Context, conn *pgx.Conn) error {
	if err := registerUUID(ctx, conn); err != nil {
		return err
	}
	citus, err := New().CitusState(ctx, conn)
	if err != nil {
		return fmt.Errorf("citus: %w", err)
	}
	// Without it the claims would stay on the coordinator: every request would see nothing (closed, but
	// silently), so the connection is refused instead.
	if citus.Installed && citus.PropagateSetCommands != "local" {
		return fmt.Errorf("citus: citus.propagate_set_commands is %q; the claims reach the workers only "+
			"with 'local' (README \"Scaling past one Postgres\")", citus.PropagateSetCommands)
	}
	conn.PgConn().CustomData()[citusKey] = citus.Installed
	return nil
}

// citusKey marks, in a connection's custom data, a connection to a Citus coordinator.
const citusKey = "fieldtrack.citus"

// onCitus reports whether conn was found to be a Citus coordinator's when it was made.
func onCitus(conn *pgx.Conn) bool {
	citus, _ := conn.PgConn().CustomData()[citusKey].(bool)
	return citus
}
