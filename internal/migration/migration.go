// Package migration applies the embedded schema migrations with golang-migrate.
package migration

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers pgx5://
	"github.com/golang-migrate/migrate/v4/source/iofs"

	schema "github.com/fieldtrack/fieldtrack/sql"
)

// Migrator runs migrations against one database.
type Migrator struct{ m *migrate.Migrate }

// Open connects to databaseURL (postgres:// or postgresql://) with the embedded migrations.
func Open(databaseURL string) (*Migrator, error) {
	u, err := url.Parse(databaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("DATABASE_URL must be a postgres:// URL")
	}
	u.Scheme = "pgx5"
	src, err := iofs.New(schema.Migrations, ".")
	if err != nil {
		return nil, err
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, u.String())
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return &Migrator{m: m}, nil
}

// Up applies every pending migration; nothing to do is not an error.
func (m *Migrator) Up() error { return ignoreNoChange(m.m.Up()) }

// Down reverts the last n migrations (all of them when n <= 0).
func (m *Migrator) Down(n int) error {
	if n <= 0 {
		return ignoreNoChange(m.m.Down())
	}
	return ignoreNoChange(m.m.Steps(-n))
}

// Version reports the applied version and whether the last migration failed halfway (dirty).
func (m *Migrator) Version() (version uint, dirty bool, err error) {
	v, d, err := m.m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, nil
	}
	return v, d, err
}

// Close releases the connection.
func (m *Migrator) Close() error {
	srcErr, dbErr := m.m.Close()
	return errors.Join(srcErr, dbErr)
}

func ignoreNoChange(err error) error {
	if errors.Is(err, migrate.ErrNoChange) {
		return nil
	}
	return err
}
