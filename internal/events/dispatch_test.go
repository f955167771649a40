package events

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// These tests use employee.created, an event the SSE stream does not carry: handing it off from a test
// cannot disturb the hubs of servers that other tests run on the same database.

// TestDispatchEvents_ReplayedTransactionIsSkipped is what makes a crash between the hand-off and the
// acknowledgement harmless: the WAL is replayed, and the second hand-off changes nothing.
func TestDispatchEvents_ReplayedTransactionIsSkipped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := testfactory.Pool(t)
	org := testfactory.NewOrg(t)
	var hook uuid.UUID
	if err := p.QueryRow(ctx, `INSERT INTO webhooks (organization_id, url, secret, events)
		VALUES ($1, 'http://127.0.0.1:1/x', 'whsec-0123456789abcdef', '{employee.created}') RETURNING id`,
		org.ID).Scan(&hook); err != nil {
		t.Fatal(err)
	}
	// The webhook exists before the events: whoever hands them off (a listener of a server that another
	// test runs, or this test) records their deliveries.
	testfactory.NewEmployee(t, org, "First")
	testfactory.NewEmployee(t, org, "Second")
	var ids []uuid.UUID
	rows, err := p.Query(ctx, `SELECT id FROM webhook_events WHERE organization_id = $1 AND event_type = 'employee.created'
		ORDER BY created_at, id`, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ids, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID]); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 {
		t.Fatalf("%d employee.created events, want 2", len(ids))
	}

	dispatch := func() int64 {
		t.Helper()
		var last int64
		err := db.InTx(ctx, p, db.Claims{}, db.TxOptions{Role: db.WorkerRole}, func(tx db.DBTX) (err error) {
			last, err = db.New().EventDispatch(ctx, tx, db.EventDispatchParams{
				OrganizationIds: []uuid.UUID{org.ID, org.ID}, EventIds: ids})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return last
	}
	positions := func() map[uuid.UUID]int64 {
		t.Helper()
		out := map[uuid.UUID]int64{}
		rows, err := p.Query(ctx, `SELECT id, stream_id FROM webhook_events WHERE organization_id = $1 AND id = ANY($2)`,
			org.ID, ids)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id uuid.UUID
			var sid *int64
			if err := rows.Scan(&id, &sid); err != nil {
				t.Fatal(err)
			}
			if sid == nil {
				t.Fatalf("event %s has no stream position after a hand-off", id)
			}
			out[id] = *sid
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}

	dispatch()
	first := positions()
	if len(first) != 2 || first[ids[0]] == first[ids[1]] {
		t.Fatalf("stream positions %v, want two distinct ones", first)
	}
	if last := dispatch(); last != 0 {
		t.Fatalf("replayed hand-off assigned position %d, want 0 (nothing new)", last)
	}
	if again := positions(); again[ids[0]] != first[ids[0]] || again[ids[1]] != first[ids[1]] {
		t.Fatalf("replayed hand-off moved the events: %v, then %v", first, again)
	}
	for _, id := range ids {
		var n int
		if err := p.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries
			WHERE organization_id = $1 AND event_id = $2 AND webhook_id = $3`, org.ID, id, hook).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("event %s has %d deliveries, want 1", id, n)
		}
	}
}

// TestOutbox_EventCommitsWithItsChange: an event exists exactly when the change that caused it committed.
func TestOutbox_EventCommitsWithItsChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := testfactory.Pool(t)
	org := testfactory.NewOrg(t)
	insert := func(commit bool) uuid.UUID {
		t.Helper()
		id := uuid.New()
		tx, err := p.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, `INSERT INTO employees (organization_id, id, name) VALUES ($1, $2, 'Outbox')`,
			org.ID, id); err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	count := func(employee uuid.UUID) int {
		t.Helper()
		var n int
		if err := p.QueryRow(ctx, `SELECT count(*) FROM webhook_events WHERE organization_id = $1
			AND event_type = 'employee.created' AND payload->'data'->>'employee_id' = $2::text`,
			org.ID, employee).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(insert(false)); n != 0 {
		t.Fatalf("a rolled-back employee left %d events", n)
	}
	if n := count(insert(true)); n != 1 {
		t.Fatalf("a committed employee has %d events, want 1", n)
	}
}

// TestOutbox_EventsGoWithTheirOrganization: the outbox has no foreign key to organizations (sql/000026:
// it made every event lock its organization's row), and an organization's events and their deliveries
// are still deleted with it, in the same statement, and no other organization's.
func TestOutbox_EventsGoWithTheirOrganization(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := testfactory.Pool(t)
	gone, kept := testfactory.NewOrg(t), testfactory.NewOrg(t)
	for _, org := range []uuid.UUID{gone.ID, kept.ID} {
		if _, err := p.Exec(ctx, `WITH w AS (
				INSERT INTO webhooks (organization_id, url, secret, events)
				VALUES ($1, 'https://example.test/hook', 'whsec_outboxoutboxoutboxoutbox', '{employee.created}')
				RETURNING organization_id, id),
			e AS (INSERT INTO webhook_events (organization_id, event_type, payload)
				SELECT $1, 'employee.created', '{}' FROM generate_series(1, 3) RETURNING organization_id, id)
			INSERT INTO webhook_deliveries (organization_id, webhook_id, event_id, event_type)
			SELECT w.organization_id, w.id, e.id, 'employee.created' FROM w, e`, org); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Exec(ctx, `DELETE FROM organizations WHERE id = $1`, gone.ID); err != nil {
		t.Fatalf("deleting an organization with events and deliveries: %v", err)
	}
	count := func(org uuid.UUID) (events, deliveries int) {
		t.Helper()
		if err := p.QueryRow(ctx, `SELECT (SELECT count(*) FROM webhook_events WHERE organization_id = $1),
			(SELECT count(*) FROM webhook_deliveries WHERE organization_id = $1)`, org).Scan(&events, &deliveries); err != nil {
			t.Fatal(err)
		}
		return events, deliveries
	}
	if e, d := count(gone.ID); e != 0 || d != 0 {
		t.Fatalf("the deleted organization left %d events and %d deliveries", e, d)
	}
	if e, d := count(kept.ID); e != 3 || d != 3 {
		t.Fatalf("the other organization has %d events and %d deliveries, want 3 and 3", e, d)
	}
}

// TestDispatchEvents_WaitsForTheProducersTransaction: an event the listener received while its
// transaction is not visible yet is waited for on that transaction's lock (sleeping in the lock manager,
// not polling), and handed off once the transaction ends.
func TestDispatchEvents_WaitsForTheProducersTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := testfactory.Pool(t)
	org := testfactory.NewOrg(t)
	producer, err := p.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = producer.Rollback(ctx) }()
	if _, err := producer.Exec(ctx, `INSERT INTO employees (organization_id, name) VALUES ($1, 'Pending')`, org.ID); err != nil {
		t.Fatal(err)
	}
	var event uuid.UUID
	var xid int64
	if err := producer.QueryRow(ctx, `SELECT id, txid_current() FROM webhook_events
		WHERE organization_id = $1 AND event_type = 'employee.created'`, org.ID).Scan(&event, &xid); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := db.Do(ctx, p, db.Claims{}, db.TxOptions{Role: db.WorkerRole}, func(tx db.DBTX) (int64, error) {
			return db.New().EventDispatch(ctx, tx, db.EventDispatchParams{
				OrganizationIds: []uuid.UUID{org.ID}, EventIds: []uuid.UUID{event}, Xids: []int64{xid}})
		})
		done <- err
	}()
	testfactory.Eventually(t, 20*time.Second, "the hand-off to wait on the producer's lock", func() (bool, error) {
		var waiting bool
		err := p.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' AND query LIKE '%dispatch_events%')`).Scan(&waiting)
		return waiting, err
	})
	select {
	case err := <-done:
		t.Fatalf("the hand-off returned before the producer committed: %v", err)
	default:
	}
	if err := producer.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the hand-off did not finish after the producer committed")
	}
	var stamped bool
	if err := p.QueryRow(ctx, `SELECT stream_id IS NOT NULL FROM webhook_events WHERE organization_id = $1 AND id = $2`,
		org.ID, event).Scan(&stamped); err != nil || !stamped {
		t.Fatalf("event handed off: stamped %v, err %v", stamped, err)
	}
}

// TestOutbox_WritersDoNotWaitForKeysSomeoneElseHolds: the outbox's advisory keys are predictable and open
// to every login; a session holding the next transactions' keys neither blocks writers nor the hand-off.
func TestOutbox_WritersDoNotWaitForKeysSomeoneElseHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := testfactory.Pool(t)
	org := testfactory.NewOrg(t)
	squatter, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Release()
	if _, err := squatter.Exec(ctx, `SELECT pg_advisory_lock(app.outbox_lock_key(txid_current() + k))
		FROM generate_series(1, 200) AS k`); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_, _ = squatter.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock_all()`)
	}()

	writeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var event uuid.UUID
	var xid int64
	err = pgx.BeginFunc(writeCtx, p, func(tx pgx.Tx) error {
		if _, err := tx.Exec(writeCtx, `INSERT INTO employees (organization_id, name) VALUES ($1, 'Unblocked')`, org.ID); err != nil {
			return err
		}
		return tx.QueryRow(writeCtx, `SELECT id, txid_current() FROM webhook_events
			WHERE organization_id = $1 AND event_type = 'employee.created'`, org.ID).Scan(&event, &xid)
	})
	if err != nil {
		t.Fatalf("a write that emits an event waited for a key someone else holds: %v", err)
	}
	_, err = db.Do(writeCtx, p, db.Claims{}, db.TxOptions{Role: db.WorkerRole}, func(tx db.DBTX) (int64, error) {
		return db.New().EventDispatch(writeCtx, tx, db.EventDispatchParams{
			OrganizationIds: []uuid.UUID{org.ID}, EventIds: []uuid.UUID{event}, Xids: []int64{xid}})
	})
	if err != nil {
		t.Fatalf("the hand-off of that event: %v", err)
	}
}

// TestDispatchEvents_StampingReadsOneIndexEntryPerEvent: stamping an event is one primary-key probe,
// also when a burst of unstamped events meets statistics that say there are none (000011). Counted on
// a scratch database, where nothing else touches webhook_events.
func TestDispatchEvents_StampingReadsOneIndexEntryPerEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, p := testfactory.MigratedDatabase(t, 2)
	org := testfactory.NewOrgIn(t, p)
	for _, sql := range []string{
		// History, all stamped, and statistics that know only it.
		`INSERT INTO webhook_events (organization_id, event_type, payload, stream_id, dispatched_at)
		 SELECT $1, 'employee.created', '{}', nextval('app.stream_seq'), now() FROM generate_series(1, 3000)`,
		`ANALYZE webhook_events`,
		// Then a burst the listener has not handed off yet.
		`INSERT INTO webhook_events (organization_id, event_type, payload)
		 SELECT $1, 'employee.created', '{}' FROM generate_series(1, 2000)`,
	} {
		args := []any{org.ID}
		if sql == `ANALYZE webhook_events` {
			args = nil
		}
		if _, err := p.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := p.Query(ctx, `SELECT id FROM webhook_events WHERE stream_id IS NULL LIMIT 100`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		t.Fatal(err)
	}
	orgs := make([]uuid.UUID, len(ids))
	for i := range orgs {
		orgs[i] = org.ID
	}
	var read int64
	err = db.InTx(ctx, p, db.Claims{}, db.TxOptions{Role: db.WorkerRole}, func(tx db.DBTX) error {
		if _, err := db.New().EventDispatch(ctx, tx, db.EventDispatchParams{OrganizationIds: orgs, EventIds: ids}); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT sum(pg_stat_get_xact_tuples_returned(indexrelid))::bigint
			FROM pg_index WHERE indrelid = 'webhook_events'::regclass`).Scan(&read)
	})
	if err != nil {
		t.Fatal(err)
	}
	// A few probes per event (the visibility check, the stamping); a scan of the burst per event is 2,000.
	if read > int64(5*len(ids)) {
		t.Fatalf("stamping %d events read %d index entries, want about one per event", len(ids), read)
	}
}

// TestHandOff_CostsTheSameHoweverManyEventsAreStamped: the hand-off reads where the stream stands from
// its sequence, not from the stamped events (sql/000024), so a hand-off after 3,000 stamped events, with
// statistics taken before any was stamped, still reads a few index entries per event.
func TestHandOff_CostsTheSameHoweverManyEventsAreStamped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, p := testfactory.MigratedDatabase(t, 2)
	org := testfactory.NewOrgIn(t, p)
	for _, sql := range []string{
		// Statistics taken while nothing was stamped (a new database), then 3,000 events stamped.
		`INSERT INTO webhook_events (organization_id, event_type, payload) SELECT $1, 'employee.created', '{}'
		 FROM generate_series(1, 3000)`,
		`ANALYZE webhook_events`,
		`UPDATE webhook_events SET stream_id = nextval('app.stream_seq'), dispatched_at = now()`,
	} {
		var args []any
		if strings.Contains(sql, "$1") {
			args = []any{org.ID}
		}
		if _, err := p.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	var orgs, ids []uuid.UUID
	for range 10 {
		var id uuid.UUID
		if err := p.QueryRow(ctx, `INSERT INTO webhook_events (organization_id, event_type, payload)
			VALUES ($1, 'employee.created', '{}') RETURNING id`, org.ID).Scan(&id); err != nil {
			t.Fatal(err)
		}
		orgs, ids = append(orgs, org.ID), append(ids, id)
	}
	var read int64
	var handed []db.EventHandOffRow
	err := db.InTx(ctx, p, db.Claims{}, db.TxOptions{Role: db.WorkerRole}, func(tx db.DBTX) (err error) {
		if handed, err = db.New().EventHandOff(ctx, tx, db.EventHandOffParams{OrganizationIds: orgs, EventIds: ids}); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT sum(pg_stat_get_xact_tuples_returned(indexrelid))::bigint
			FROM pg_index WHERE indrelid = 'webhook_events'::regclass`).Scan(&read)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(handed) != len(ids) || handed[0].PrevHead != 3000 || handed[0].StreamID != 3001 || handed[9].StreamID != 3010 {
		t.Fatalf("handed off %+v, want positions 3001..3010 after 3000", handed)
	}
	if read > int64(5*len(ids)) {
		t.Fatalf("handing off %d events after 3,000 stamped ones read %d index entries, want a few per event", len(ids), read)
	}
}

// TestHandOff_EventsThatNeverAppearShareOneWait: events the hand-off cannot see and no transaction holds
// (deleted with their organization before the hand-off) are skipped after one short round of looks for
// them all, not one each: thirty of them fit well inside a 5 s statement timeout (one round each would
// take 10 s), so a backlog of them cannot hold the stream up hand-off after hand-off.
func TestHandOff_EventsThatNeverAppearShareOneWait(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, p := testfactory.MigratedDatabase(t, 2)
	org := testfactory.NewOrgIn(t, p)
	var visible uuid.UUID
	if err := p.QueryRow(ctx, `INSERT INTO webhook_events (organization_id, event_type, payload)
		VALUES ($1, 'employee.created', '{}') RETURNING id`, org.ID).Scan(&visible); err != nil {
		t.Fatal(err)
	}
	orgs, ids, xids := []uuid.UUID{}, []uuid.UUID{}, []int64{}
	for i := range 30 {
		orgs, ids, xids = append(orgs, org.ID), append(ids, uuid.New()), append(xids, int64(1_000_000+i))
	}
	orgs, ids, xids = append(orgs, org.ID), append(ids, visible), append(xids, 1_000_100)
	var handed []db.EventHandOffRow
	err := db.InTx(ctx, p, db.Claims{}, db.TxOptions{Role: db.WorkerRole, StatementTimeout: 5 * time.Second},
		func(tx db.DBTX) (err error) {
			handed, err = db.New().EventHandOff(ctx, tx, db.EventHandOffParams{OrganizationIds: orgs, EventIds: ids, Xids: xids})
			return err
		})
	if err != nil {
		t.Fatalf("handing off 30 events that never appear and one that is there: %v", err)
	}
	if len(handed) != 1 || handed[0].OrganizationID != org.ID {
		t.Fatalf("handed off %+v, want the one visible event", handed)
	}
}
