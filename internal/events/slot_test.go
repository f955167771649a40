package events_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/events"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// Events written while no slot existed are not in any WAL the listener will read: when the listener
// creates the slot it hands them off from the table, and later events flow through the slot as usual.
func TestListener_HandsOffEventsWrittenBeforeTheSlotExisted(t *testing.T) {
	t.Parallel()
	url, pool := testfactory.MigratedDatabase(t, 4)

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

// A transaction of many events is handed off in parts as it arrives (each part bounded by its statement
// timeout), not as one hand-off that could never finish in time and would be retried forever.
func TestListener_HandsOffALargeTransactionInParts(t *testing.T) {
	t.Parallel()
	url, pool := testfactory.MigratedDatabase(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		events.NewListener(url, pool, slog.New(slog.NewTextHandler(io.Discard, nil))).Run(ctx)
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	// A first event handed off means the listener is past creating its slot (which hands off what the
	// table holds in one go): what follows comes through the stream.
	org := testfactory.NewOrgIn(t, pool)
	emp := testfactory.NewEmployeeIn(t, pool, org, "Bulk filer")
	testfactory.Eventually(t, 30*time.Second, "the listener to hand off a first event", func() (bool, error) {
		return count(t, pool, `SELECT count(*) FROM webhook_events WHERE stream_id IS NOT NULL`) == 1, nil
	})

	const n = 3_500
	if _, err := pool.Exec(context.Background(), `INSERT INTO expenses (organization_id, employee_id, amount, description)
		SELECT $1, $2, 1, 'Bulk ' || i FROM generate_series(1, $3::int) i`, org.ID, emp.ID, n); err != nil {
		t.Fatal(err)
	}
	testfactory.Eventually(t, 60*time.Second, "every event of the large transaction to be handed off", func() (bool, error) {
		return count(t, pool, `SELECT count(*) FROM webhook_events WHERE stream_id IS NULL`) == 0, nil
	})
	if got := count(t, pool, `SELECT count(*) FROM webhook_events WHERE event_type = 'expense.created'`); got != n {
		t.Fatalf("%d expense.created events, want %d", got, n)
	}
	// Each part is a hand-off transaction of its own, with its own dispatched_at.
	if parts := count(t, pool, `SELECT count(DISTINCT dispatched_at) FROM webhook_events
		WHERE event_type = 'expense.created'`); parts < n/1000 {
		t.Fatalf("handed off in %d parts, want at least %d", parts, n/1000)
	}
	// In the order they were written.
	if bad := count(t, pool, `SELECT count(*) FROM (
		SELECT w.stream_id < lag(w.stream_id) OVER (ORDER BY substring(x.description FROM '[0-9]+')::int) AS back
		  FROM webhook_events w JOIN expenses x ON x.id = (w.payload->'data'->>'expense_id')::uuid
		 WHERE w.event_type = 'expense.created') s WHERE back`); bad != 0 {
		t.Fatalf("%d events out of order", bad)
	}
}

// The leading process's hub gets each hand-off's events from its listener as soon as they committed: in
// order, and without reading them back from the table or being woken again by the hand-off's NOTIFY.
func TestListener_HandsItsHubTheEventsItHandsOff(t *testing.T) {
	t.Parallel()
	url, pool := testfactory.MigratedDatabase(t, 6)
	log := slog.New(slog.DiscardHandler)
	notifier := events.NewNotifier(url, log)
	hub := events.NewHub(pool, 10, log).WakeOn(notifier)
	worker := notifier.Subscribe()
	listener := events.NewListener(url, pool, log).FanOut(hub, notifier)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context){notifier.Run, hub.Run, listener.Run} {
		wg.Go(func() { run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })

	org := testfactory.NewOrgIn(t, pool)
	var sub *events.Subscriber
	testfactory.Eventually(t, 30*time.Second, "the hub and the listener to start", func() (bool, error) {
		if sub == nil {
			if s, _, err := hub.Subscribe(org.ID); err == nil {
				sub = s
			}
		}
		return sub != nil && listener.Status().Leader && notifier.Live() &&
			count(t, pool, `SELECT count(*) FROM pg_replication_slots WHERE database = current_database() AND active`) == 1, nil
	})
	emit := func(seq int) *events.Event {
		t.Helper()
		if _, err := pool.Exec(context.Background(), `SELECT app.emit($1, 'session.checkin', jsonb_build_object('seq', $2::int),
			'session.checkin', jsonb_build_object('seq', $2::int))`, org.ID, seq); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-sub.Events():
			if !strings.Contains(string(ev.Payload), fmt.Sprintf(`"seq": %d`, seq)) {
				t.Fatalf("event %d: got %s %s", seq, ev.Name, ev.Payload)
			}
			return ev
		case <-time.After(60 * time.Second):
			t.Fatalf("event %d never reached the hub's subscriber", seq)
			return nil
		}
	}
	last := emit(0).StreamID

	// One event per hand-off: each is awaited before the next is written.
	const n = 20
	reads, started := hub.Reads(), time.Now()
	for i := 1; i <= n; i++ {
		ev := emit(i)
		if ev.StreamID <= last {
			t.Fatalf("event %d has position %d after %d", i, ev.StreamID, last)
		}
		last = ev.StreamID
		select {
		case <-worker: // the worker is woken for each hand-off (or once for several)
		case <-time.After(60 * time.Second):
			t.Fatalf("the worker was not woken after event %d", i)
		}
	}
	// Only the hub's timer (once a second) read the table meanwhile; woken per hand-off it would have read
	// at least n times.
	took := time.Since(started)
	t.Logf("%d hand-offs in %s", n, took.Round(time.Millisecond))
	if got, allowed := hub.Reads()-reads, int64(took/time.Second)+2; got > allowed {
		t.Fatalf("the hub read the table %d times for %d hand-offs of its own listener in %s (its timer allows %d)",
			got, n, took.Round(time.Millisecond), allowed)
	}
}
