package db

import (
	"context"
	"fmt"
	"time"

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
	cfg.AfterConnect = registerUUID  // ids as 16 bytes, not text
	return pgxpool.NewWithConfig(ctx, cfg)
}
