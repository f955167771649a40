package db

import (
	"context"
	"errors"
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

// NewPool opens a pgx pool. Every connection must have standard_conforming_strings on, because InTx
// quotes claim values as standard SQL literals. It does not wait for the database to be reachable.
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
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		if conn.PgConn().ParameterStatus("standard_conforming_strings") != "on" {
			return errors.New("standard_conforming_strings must be on")
		}
		return nil
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}
