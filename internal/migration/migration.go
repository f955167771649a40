// Package migration applies the embedded schema migrations with golang-migrate.
package migration

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers pgx5://
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"

	schema "github.com/fieldtrack/fieldtrack/sql"
)

// Migrator runs migrations against one database.
type Migrator struct {
	m   *migrate.Migrate
	url string
}

// ErrEarlierLayout means the database was migrated by the schema files as they were before they were
// rewritten into one file per noun. Those were never released: the database must be recreated.
var ErrEarlierLayout = errors.New("this database was migrated by the earlier, unreleased schema files; " +
	"recreate it (the local cluster: make db-reset, then make run)")

// layoutMark is what the first migration writes on schema app (see 000001_roles_and_app.up.sql).
const layoutMark = "schema layout 2"

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
	return &Migrator{m: m, url: databaseURL}, nil
}

// Up applies every pending migration; nothing to do is not an error. It refuses a database of the earlier
// layout with ErrEarlierLayout instead of failing on objects that already exist.
//
// On a Citus coordinator (the citus extension installed in the database) it then distributes the
// tables with app.citus_distribute, which skips those distributed already: the same migrations serve
// both, and a single-node database is left exactly as they make it.
func (m *Migrator) Up() error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, m.url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := checkLayout(ctx, conn); err != nil {
		return err
	}
	state, err := db.New().CitusState(ctx, conn)
	if err != nil {
		return fmt.Errorf("citus: %w", err)
	}
	citus := state.Installed
	if citus {
		// Citus refuses PostGIS's extension script inside a multi-statement query (the form each
		// migration file is sent in), so the extensions come first, one statement each.
		for _, ext := range []string{"pgcrypto", "postgis"} {
			if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS "+ext); err != nil {
				return fmt.Errorf("citus: create extension %s: %w", ext, err)
			}
		}
	}
	if err := ignoreNoChange(m.m.Up()); err != nil || !citus {
		return err
	}
	// Two transactions: the second reaches the workers over connections that see only what was committed.
	for _, step := range []string{"SELECT count(*) FROM app.citus_distribute()", "SELECT app.citus_propagate()"} {
		if _, err := conn.Exec(ctx, step); err != nil {
			return fmt.Errorf("citus: %s: %w", step, err)
		}
	}
	return nil
}

func checkLayout(ctx context.Context, conn *pgx.Conn) error {
	layouts, err := db.New().SchemaLayout(ctx, conn)
	if err != nil {
		return fmt.Errorf("schema layout: %w", err)
	}
	if len(layouts) > 0 && !strings.Contains(layouts[0], layoutMark) {
		return ErrEarlierLayout
	}
	return nil
}

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
