package events_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/events"
	"github.com/fieldtrack/fieldtrack/internal/migration"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// Events written while no slot existed are not in any WAL the listener will read: when the listener
// creates the slot it hands them off from the table, and later events flow through the slot as usual.
func TestListener_HandsOffEventsWrittenBeforeTheSlotExisted(t *testing.T) {
	t.Parallel()
	url := testfactory.ScratchDatabase(t)
	m, err := migration.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	m.Close()
	pool, err := db.NewPool(context.Background(), db.PoolConfig{URL: url, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	org := testfactory.NewOrgIn(t, pool)
	testfactory.NewEmployeeIn(t, pool, org, "Before") // employee.created, with no slot yet
	if n := count(t, pool, `SELECT count(*) FROM pg_replication_slots WHERE database = current_database()`); n != 0 {
		t.Fatalf("%d slots before the listener ran", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		events.NewListener(url, pool, slog.New(slog.NewTextHandler(io.Discard, nil))).Run(ctx)
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })

	testfactory.Eventually(t, 30*time.Second, "the event written before the slot to be handed off", func() (bool, error) {
		return count(t, pool, `SELECT count(*) FROM webhook_events WHERE stream_id IS NOT NULL`) == 1, nil
	})
	testfactory.NewEmployeeIn(t, pool, org, "After")
	testfactory.Eventually(t, 30*time.Second, "the event written after the slot to be handed off", func() (bool, error) {
		return count(t, pool, `SELECT count(*) FROM webhook_events WHERE stream_id IS NOT NULL`) == 2, nil
	})
	if n := count(t, pool, `SELECT count(*) FROM webhook_events WHERE stream_id IS NULL`); n != 0 {
		t.Fatalf("%d events left without a stream position", n)
	}
}

func count(t *testing.T, p *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	if err := p.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
