package migration_test

import (
	"context"
	"errors"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/migration"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
	schema "github.com/fieldtrack/fieldtrack/sql"
)

// tenantTables are the tables holding tenant data: each must force row-level security.
var tenantTables = []string{"organizations", "users", "employees", "attendance_sessions", "gps_locations", "expenses"}

// embeddedVersions are the NNNNNN prefixes of the embedded migrations, ascending; each must come as an
// up/down pair.
func embeddedVersions(t *testing.T) []uint {
	t.Helper()
	entries, err := fs.ReadDir(schema.Migrations, ".")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`^([0-9]+)_[a-z0-9_]+\.(up|down)\.sql$`)
	dirs := map[uint][]string{}
	for _, e := range entries {
		m := name.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		v, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			t.Fatalf("migration %s: %v", e.Name(), err)
		}
		dirs[uint(v)] = append(dirs[uint(v)], m[2])
	}
	if len(dirs) == 0 {
		t.Fatal("no migrations embedded in sql.Migrations")
	}
	versions := make([]uint, 0, len(dirs))
	for v, d := range dirs {
		slices.Sort(d)
		if !slices.Equal(d, []string{"down", "up"}) {
			t.Errorf("migration %06d has %v, want an up and a down file", v, d)
		}
		versions = append(versions, v)
	}
	slices.Sort(versions)
	return versions
}

// scratchDatabase is an empty database dropped when the test ends.
func scratchDatabase(t *testing.T) string { return testfactory.ScratchDatabase(t) }

func openPool(t *testing.T, databaseURL string) *pgxpool.Pool {
	t.Helper()
	p, err := db.NewPool(context.Background(), db.PoolConfig{URL: databaseURL, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func wantVersion(t *testing.T, m *migration.Migrator, want uint) {
	t.Helper()
	v, dirty, err := m.Version()
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	if v != want || dirty {
		t.Fatalf("Version = %d (dirty %v), want %d (clean)", v, dirty, want)
	}
}

// publicTables lists the tables and views in schema public, sorted.
func publicTables(t *testing.T, p *pgxpool.Pool) []string {
	t.Helper()
	rows, err := p.Query(context.Background(), `SELECT c.relname::text FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func extensions(t *testing.T, p *pgxpool.Pool) []string {
	t.Helper()
	rows, err := p.Query(context.Background(), `SELECT extname::text FROM pg_extension ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func schemaExists(t *testing.T, p *pgxpool.Pool, name string) bool {
	t.Helper()
	var ok bool
	if err := p.QueryRow(context.Background(), `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)`, name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// checkMigrated asserts the state of a fully migrated database.
func checkMigrated(t *testing.T, p *pgxpool.Pool) {
	t.Helper()
	tables := publicTables(t, p)
	for _, want := range tenantTables {
		if !slices.Contains(tables, want) {
			t.Errorf("table %s missing after Up; public has %v", want, tables)
		}
	}
	if !schemaExists(t, p, "app") {
		t.Error("schema app missing after Up")
	}

	// Every tenant table, and every other table carrying organization_id, forces row-level security.
	rows, err := p.Query(context.Background(), `SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
		  AND (c.relname = ANY($1) OR EXISTS (
			SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped))
		ORDER BY 1`, tenantTables)
	if err != nil {
		t.Fatal(err)
	}
	type rls struct {
		table          string
		enabled, force bool
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rls, error) {
		var x rls
		err := r.Scan(&x.table, &x.enabled, &x.force)
		return x, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < len(tenantTables) {
		t.Fatalf("found %d tenant tables (%v), want at least %d", len(got), got, len(tenantTables))
	}
	for _, x := range got {
		if !x.enabled || !x.force {
			t.Errorf("table %s: row security enabled %v, forced %v; want both", x.table, x.enabled, x.force)
		}
	}

	// pg_cron exists only in the database named by cron.database_name; a scratch database migrates
	// without it. PostGIS and pgcrypto are created everywhere.
	exts := extensions(t, p)
	if slices.Contains(exts, "pg_cron") {
		t.Errorf("pg_cron was created in a scratch database: extensions %v", exts)
	}
	for _, want := range []string{"pgcrypto", "postgis"} {
		if !slices.Contains(exts, want) {
			t.Errorf("extension %s missing after Up: extensions %v", want, exts)
		}
	}
}

func TestMigration_UpDownUpOnAnEmptyDatabase(t *testing.T) {
	t.Parallel()
	versions := embeddedVersions(t)
	latest := versions[len(versions)-1]
	previous := uint(0) // what Down(1) from latest leaves
	if len(versions) > 1 {
		previous = versions[len(versions)-2]
	}
	dbURL := scratchDatabase(t)

	m, err := migration.Open(dbURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	p := openPool(t, dbURL)

	var cronDB *string
	if err := p.QueryRow(context.Background(), `SELECT current_setting('cron.database_name', true)`).Scan(&cronDB); err != nil {
		t.Fatal(err)
	}
	if cronDB == nil || *cronDB != "fieldtrack" {
		t.Fatalf("fixture: cron.database_name = %v, want fieldtrack (the cluster of make test)", cronDB)
	}

	wantVersion(t, m, 0)
	// Open created golang-migrate's bookkeeping table, nothing else exists yet.
	if tables := publicTables(t, p); !slices.Equal(tables, []string{"schema_migrations"}) {
		t.Fatalf("fixture: scratch database holds %v before Up, want only schema_migrations", tables)
	}

	if err := m.Up(); err != nil {
		t.Fatalf("Up: %v", err)
	}
	wantVersion(t, m, latest)
	checkMigrated(t, p)

	// Up with nothing to do is not an error.
	if err := m.Up(); err != nil {
		t.Fatalf("second Up: %v", err)
	}
	wantVersion(t, m, latest)

	// Down(0) reverts everything.
	if err := m.Down(0); err != nil {
		t.Fatalf("Down(0): %v", err)
	}
	wantVersion(t, m, 0)
	// Only golang-migrate's bookkeeping stays: PostGIS's spatial_ref_sys goes with the extension.
	remaining := publicTables(t, p)
	if !slices.Equal(remaining, []string{"schema_migrations"}) {
		t.Errorf("after Down(0) public holds %v, want only schema_migrations", remaining)
	}
	for _, table := range tenantTables {
		if slices.Contains(remaining, table) {
			t.Errorf("table %s remains after Down(0)", table)
		}
	}
	if schemaExists(t, p, "app") {
		t.Error("schema app remains after Down(0)")
	}
	if exts := extensions(t, p); !slices.Equal(exts, []string{"plpgsql"}) {
		t.Errorf("extensions after Down(0) = %v, want only plpgsql", exts)
	}
	// Down with nothing to do is not an error either.
	if err := m.Down(0); err != nil {
		t.Fatalf("second Down(0): %v", err)
	}

	// And it migrates up again from there; Down(n) reverts n steps.
	if err := m.Up(); err != nil {
		t.Fatalf("Up after Down: %v", err)
	}
	wantVersion(t, m, latest)
	checkMigrated(t, p)
	if err := m.Down(1); err != nil {
		t.Fatalf("Down(1): %v", err)
	}
	wantVersion(t, m, previous)
}

func TestMigration_OpenRefusesNonPostgresURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"",
		"mysql://user@127.0.0.1:3306/fieldtrack",
		"pgx5://fieldtrack@127.0.0.1:5432/fieldtrack",
		"127.0.0.1:5432/fieldtrack",
		"://missing-scheme",
		"host=127.0.0.1 dbname=fieldtrack",
	} {
		m, err := migration.Open(u)
		if err == nil {
			_ = m.Close()
			t.Errorf("Open(%q) = nil error, want an error", u)
		}
	}
}

// A database migrated by the unreleased files before the schema was rewritten by noun has schema app
// without the layout's mark: Up refuses it with one clear error instead of failing on existing objects.
func TestMigration_UpRefusesADatabaseOfTheEarlierLayout(t *testing.T) {
	t.Parallel()
	dbURL := scratchDatabase(t)
	p := openPool(t, dbURL)
	for _, sql := range []string{
		`CREATE SCHEMA app`,
		`CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (3, false)`,
	} {
		if _, err := p.Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	m, err := migration.Open(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if err := m.Up(); !errors.Is(err, migration.ErrEarlierLayout) {
		t.Fatalf("Up on the earlier layout = %v, want ErrEarlierLayout", err)
	}
	if !strings.Contains(migration.ErrEarlierLayout.Error(), "make db-reset") {
		t.Fatalf("the error does not say what to do: %v", migration.ErrEarlierLayout)
	}
	if tables := publicTables(t, p); !slices.Equal(tables, []string{"schema_migrations"}) {
		t.Fatalf("the refused Up created %v", tables)
	}
}
