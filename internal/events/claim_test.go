package events

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
	"github.com/fieldtrack/fieldtrack/internal/webhook"
	"github.com/fieldtrack/fieldtrack/internal/webhook/webhooktest"
)

// TestHandOff_ClaimsFirstAttemptsForItsWorker: a hand-off makes the deliveries of a webhook with a closed
// circuit claimed for their first attempt and gives them to its process's worker, which sends them
// without a claim of its own (this worker never polls after its first look, and nothing wakes it). A
// webhook whose circuit is open gets its delivery unclaimed, as before. A replayed hand-off claims
// nothing again. A hand-off that left no delivery for a worker's claim covers its positions: the worker
// is not woken for it.
func TestHandOff_ClaimsFirstAttemptsForItsWorker(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, p := testfactory.MigratedDatabase(t, 4) // a database of its own: this worker serves every organization
	org := testfactory.NewOrgIn(t, p)
	rc := webhooktest.NewReceiver(t)
	var open, closed uuid.UUID
	for _, w := range []struct {
		id      *uuid.UUID
		circuit string
	}{{&closed, "NULL"}, {&open, "now() + interval '1 hour'"}} {
		if err := p.QueryRow(ctx, `INSERT INTO webhooks (organization_id, url, secret, events, circuit_open_until)
			VALUES ($1, $2, 'whsec_handoffhandoffhandoffhandoff', '{employee.created}', `+w.circuit+`)
			RETURNING id`, org.ID, rc.URL+"/hook").Scan(w.id); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	worker := webhook.NewWorker(p, webhook.Config{AllowPrivateTargets: true, Concurrency: 4,
		PollInterval: time.Hour}, log)
	done := make(chan struct{})
	go func() { defer close(done); worker.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testfactory.Eventually(t, 10*time.Second, "the worker's first look", func() (bool, error) { return worker.Live(), nil })

	s := &session{l: NewListener("", p, log).ClaimFor(worker)}
	for range 2 {
		var id uuid.UUID
		if err := p.QueryRow(ctx, `INSERT INTO webhook_events (organization_id, event_type, payload)
			VALUES ($1, 'employee.created', '{"type": "employee.created"}') RETURNING id`, org.ID).Scan(&id); err != nil {
			t.Fatal(err)
		}
		s.orgs, s.ids, s.xids, s.traces = append(s.orgs, org.ID), append(s.ids, id), append(s.xids, 0), append(s.traces, "")
	}
	if err := s.handOff(ctx); err != nil {
		t.Fatal(err)
	}
	attempts := func(hook uuid.UUID) (n int, tried []int32) {
		t.Helper()
		rows, err := p.Query(ctx, `SELECT attempt_count FROM webhook_deliveries WHERE organization_id = $1
			AND webhook_id = $2 ORDER BY attempt_count`, org.ID, hook)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var a int32
			if err := rows.Scan(&a); err != nil {
				t.Fatal(err)
			}
			tried = append(tried, a)
		}
		return len(tried), tried
	}
	// Claimed in the hand-off's own transaction: counted before anything was sent.
	if n, tried := attempts(closed); n != 2 || tried[0] != 1 || tried[1] != 1 {
		t.Fatalf("the closed circuit's deliveries have attempts %v, want [1 1]", tried)
	}
	if n, tried := attempts(open); n != 2 || tried[0] != 0 || tried[1] != 0 {
		t.Fatalf("the open circuit's deliveries have attempts %v, want [0 0] (not claimed)", tried)
	}
	testfactory.Eventually(t, 10*time.Second, "both first attempts recorded", func() (bool, error) {
		var ok int
		err := p.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE organization_id = $1
			AND webhook_id = $2 AND status = 'success'`, org.ID, closed).Scan(&ok)
		return ok == 2, err
	})
	if n := rc.Count(); n != 2 {
		t.Fatalf("the receiver got %d requests, want the 2 first attempts", n)
	}
	// The open circuit's deliveries are left for a worker's claim (which parks them): it is woken.
	if c := worker.Covered(); c != 0 {
		t.Fatalf("the worker is covered up to %d after a hand-off that left it deliveries, want 0", c)
	}

	// The same batch again (a replay after a crash before the acknowledgement): nothing is claimed twice.
	if err := s.handOff(ctx); err != nil {
		t.Fatal(err)
	}
	if _, tried := attempts(closed); tried[0] != 1 || tried[1] != 1 {
		t.Fatalf("after a replayed hand-off the deliveries have attempts %v, want [1 1]", tried)
	}
	if n := worker.Idle(); n != 4 {
		t.Fatalf("%d of the worker's 4 senders are idle after the hand-offs, want all (reserved ones given back)", n)
	}

	// With the open webhook gone, a hand-off claims every delivery it makes: nothing is left for a
	// worker's claim, and the worker is not woken for it (Covered).
	if _, err := p.Exec(ctx, `UPDATE webhooks SET is_active = false WHERE organization_id = $1 AND id = $2`,
		org.ID, open); err != nil {
		t.Fatal(err)
	}
	var id uuid.UUID
	if err := p.QueryRow(ctx, `INSERT INTO webhook_events (organization_id, event_type, payload)
		VALUES ($1, 'employee.created', '{"type": "employee.created"}') RETURNING id`, org.ID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	s.orgs, s.ids, s.xids, s.traces = []uuid.UUID{org.ID}, []uuid.UUID{id}, []int64{0}, []string{""}
	if err := s.handOff(ctx); err != nil {
		t.Fatal(err)
	}
	var head int64
	if err := p.QueryRow(ctx, `SELECT max(stream_id) FROM webhook_events`).Scan(&head); err != nil {
		t.Fatal(err)
	}
	if c := worker.Covered(); c != head {
		t.Fatalf("the worker is covered up to %d, want the last hand-off's position %d", c, head)
	}
	testfactory.Eventually(t, 10*time.Second, "the third first attempt", func() (bool, error) { return rc.Count() == 3, nil })
}

// TestSplitClaims_ByWhatEachRowIs: the claims and the "left for the workers" row both sort after the
// events, in no given order between them; each row is told by its fields, not its place.
func TestSplitClaims_ByWhatEachRowIs(t *testing.T) {
	t.Parallel()
	org, a, b := uuid.New(), uuid.New(), uuid.New()
	rows := []db.EventHandOffRow{
		{StreamID: 7, OrganizationID: org}, {StreamID: 8, OrganizationID: org},
		{OrganizationID: org, ClaimID: a, ClaimTraceContext: "00-x"}, {}, {OrganizationID: org, ClaimID: b},
	}
	events, claims, left := splitClaims(rows)
	if len(events) != 2 || events[0].StreamID != 7 || events[1].StreamID != 8 {
		t.Fatalf("events %+v, want the two stamped ones", events)
	}
	if len(claims) != 2 || claims[0].ID != a || claims[1].ID != b || claims[0].AttemptCount != 1 ||
		claims[0].TraceContext == nil || claims[1].TraceContext != nil {
		t.Fatalf("claims %+v, want a (traced) and b, first attempts", claims)
	}
	if !left {
		t.Fatal("the row of zeros between the claims was not seen")
	}
	if _, claims, left := splitClaims(rows[:3]); left || len(claims) != 1 {
		t.Fatalf("without the row of zeros: left %v, %d claims; want false, 1", left, len(claims))
	}
}
