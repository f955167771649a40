package testfactory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/migration"
)

// ScratchDatabase creates an empty database on the cluster of DATABASE_URL and returns its URL. When the
// test ends it drops the database, with any replication slot a listener created in it.
func ScratchDatabase(t testing.TB) string {
	t.Helper()
	base := URL(t)
	owner := Pool(t)
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "ft_scratch_" + hex.EncodeToString(b)
	if _, err := owner.Exec(context.Background(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create scratch database: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		// A listener the test stopped has closed its replication connection, but the walsender behind it
		// may still be exiting: while its slot is active the database cannot be dropped.
		Eventually(t, 30*time.Second, "the replication slots of "+name+" to be released", func() (bool, error) {
			var active int
			err := owner.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE database = $1 AND active`,
				name).Scan(&active)
			return active == 0, err
		})
		if _, err := owner.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
			WHERE database = $1`, name); err != nil {
			t.Errorf("drop the slots of %s: %v", name, err)
		}
		if _, err := owner.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop scratch database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// MigratedDatabase is ScratchDatabase with every migration applied, and a pool of maxConns connections
// on it as the owner (closed when the test ends).
func MigratedDatabase(t testing.TB, maxConns int32) (string, *pgxpool.Pool) {
	t.Helper()
	u := ScratchDatabase(t)
	m, err := migration.Open(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	m.Close()
	pool, err := db.NewPool(context.Background(), db.PoolConfig{URL: u, MaxConns: maxConns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return u, pool
}

// LoginAs is databaseURL logging in as login instead (the test clusters trust loopback: no password).
func LoginAs(t testing.TB, databaseURL, login string) string {
	t.Helper()
	u, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(login)
	return u.String()
}
