package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/migration"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// produceSessions checks every employee in and out n times, each step its own transaction written as
// the owner (the triggers emit 2 events per step), the employees concurrently. It returns each
// employee's session ids in the order they were written.
func produceSessions(ctx context.Context, p *pgxpool.Pool, emps []testfactory.Employee, n int) (map[uuid.UUID][]uuid.UUID, error) {
	var mu sync.Mutex
	out := map[uuid.UUID][]uuid.UUID{}
	var wg sync.WaitGroup
	errs := make(chan error, len(emps))
	for _, e := range emps {
		wg.Go(func() {
			for range n {
				id := uuid.New()
				if _, err := p.Exec(ctx, `INSERT INTO attendance_sessions (organization_id, id, employee_id)
					VALUES ($1, $2, $3)`, e.OrgID, id, e.ID); err != nil {
					errs <- fmt.Errorf("check-in: %w", err)
					return
				}
				if _, err := p.Exec(ctx, `UPDATE attendance_sessions SET checkout_at = now()
					WHERE organization_id = $1 AND id = $2`, e.OrgID, id); err != nil {
					errs <- fmt.Errorf("check-out: %w", err)
					return
				}
				mu.Lock()
				out[e.ID] = append(out[e.ID], id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	return out, <-errs
}

// expectSessionEventsInCommitOrder checks that every employee's events carry stream positions in the
// order the employee's transactions committed: per session, check-in (session.checkin, then
// employee.checked_in in the same transaction), then check-out (session.checkout, employee.checked_out).
func expectSessionEventsInCommitOrder(t *testing.T, p *pgxpool.Pool, org uuid.UUID, sessions map[uuid.UUID][]uuid.UUID) {
	t.Helper()
	rows, err := p.Query(context.Background(), `
		SELECT stream_id, event_type, payload->'data'->>'employee_id', payload->'data'->>'session_id'
		  FROM webhook_events WHERE organization_id = $1 AND event_type <> 'employee.created'
		 ORDER BY stream_id`, org)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type step struct{ typ, session string }
	got := map[string][]step{}
	var prev int64
	for rows.Next() {
		var sid int64
		var typ, emp, session string
		if err := rows.Scan(&sid, &typ, &emp, &session); err != nil {
			t.Fatal(err)
		}
		if sid <= prev {
			t.Fatalf("stream position %d follows %d: positions must be unique", sid, prev)
		}
		prev = sid
		got[emp] = append(got[emp], step{typ, session})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for emp, ids := range sessions {
		var want []step
		for _, id := range ids {
			s := id.String()
			want = append(want, step{"session.checkin", s}, step{"employee.checked_in", s},
				step{"session.checkout", s}, step{"employee.checked_out", s})
		}
		have := got[emp.String()]
		if len(have) != len(want) {
			t.Fatalf("employee %s has %d events, want %d", emp, len(have), len(want))
		}
		for i := range want {
			if have[i] != want[i] {
				t.Fatalf("employee %s: event %d in stream order is %v, want %v (commit order)", emp, i, have[i], want[i])
			}
		}
	}
}

// expectStreamMatchesTable checks that frames are exactly the organization's streamed events, in stream
// order, each once (ids are opaque: each frame has one of its own, and the events are told apart by their
// session).
func expectStreamMatchesTable(t *testing.T, p *pgxpool.Pool, org uuid.UUID, frames []frame) {
	t.Helper()
	rows, err := p.Query(context.Background(), `SELECT e.stream_id, e.stream_event, e.stream_payload->>'sessionId'
		FROM webhook_events e WHERE e.organization_id = $1 AND e.stream_event IS NOT NULL ORDER BY e.stream_id`, org)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	ids := map[string]int{}
	for rows.Next() {
		var pos int64
		var event, session string
		if err := rows.Scan(&pos, &event, &session); err != nil {
			t.Fatal(err)
		}
		if i >= len(frames) {
			t.Fatalf("the stream ended after %d frames; the table has more (next: %d %s)", len(frames), pos, event)
		}
		f := frames[i]
		expectOpaqueID(t, f)
		if j, dup := ids[f.ID]; dup {
			t.Fatalf("frames %d and %d have the same id %s", j, i, f.ID)
		}
		ids[f.ID] = i
		if got := decodeSession(t, f); f.Event != event || got.SessionID != session {
			t.Fatalf("frame %d is %s of session %s, the table's event %d (position %d) is %s of session %s",
				i, f.Event, got.SessionID, i, pos, event, session)
		}
		i++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(frames) {
		t.Fatalf("%d frames for %d streamed events", len(frames), i)
	}
}

// TestListener_KillNineLosesAndDuplicatesNothing crashes the consuming process twice while 5,000 events
// are written: the process that takes over resumes from the slot's acknowledged position. The listener's
// lock is shared with every process on the database, so this test does not run in parallel with the
// others of this package; processes of other packages may still lead, and the assertions hold whoever did.
func TestListener_KillNineLosesAndDuplicatesNothing(t *testing.T) {
	const employees, perEmployee = 5, 250 // 5 × 250 × (check-in + check-out) × 2 events = 5,000 events
	const events = employees * perEmployee * 4
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p := testfactory.Pool(t)

	first := startProcess(t, "A", nil)
	waitForSlot(t, p) // events written before the slot exists are not in its stream
	org := testfactory.NewOrg(t)
	newWebhook(t, p, org.ID, "session.checkin", "session.checkout")
	newWebhook(t, p, org.ID, "employee.checked_out")
	var emps []testfactory.Employee
	for i := range employees {
		emps = append(emps, testfactory.NewEmployee(t, org, fmt.Sprintf("Crash %d", i)))
	}
	// An observer that never leads follows the organization's stream across the crashes.
	observer := startServer(t, map[string]string{"EVENTS_LISTENER_ENABLED": "false"})
	watcher := follow(t, adminStream(observer.base), testfactory.AdminToken(t, org))
	testfactory.Eventually(t, 20*time.Second, "the observer's stream to connect", func() (bool, error) {
		return watcher.connections() > 0, nil
	})
	second := startProcess(t, "B", nil) // a standby while A leads

	produced := make(chan error, 1)
	var written atomic.Bool
	var sessions map[uuid.UUID][]uuid.UUID
	began := time.Now()
	go func() {
		var err error
		sessions, err = produceSessions(ctx, p, emps, perEmployee)
		written.Store(true)
		produced <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-produced // the writers have stopped
	})
	stampedAtLeast := func(n int) func() (bool, error) {
		return func() (bool, error) {
			stamped, total, err := handedOff(ctx, p, org.ID)
			if err != nil {
				return false, err
			}
			// Once everything is written and handed off there is nothing more to wait for.
			done := written.Load() && stamped == total && total == employees+events
			return stamped >= n || done, fmt.Errorf("%d of %d written events handed off", stamped, total)
		}
	}
	report := func(killed *process, at time.Time, next *process) {
		stamped, total, _ := handedOff(ctx, p, org.ID)
		_, led := killed.logs.first(leadingLine)
		t.Logf("SIGKILL %s (led: %v) at %s: %d of %d events written so far handed off", killed.name, led,
			at.Sub(began).Round(time.Millisecond), stamped, total)
		testfactory.Eventually(t, 60*time.Second, "the hand-off to resume after "+killed.name+" died", stampedAtLeast(stamped+1))
		resumed := time.Since(at)
		if took, ok := next.logs.first(leadingLine); ok && took.After(at) {
			t.Logf("%s took over %s after the kill; hand-offs resumed within %s", next.name,
				took.Sub(at).Round(time.Millisecond), resumed.Round(time.Millisecond))
		} else {
			t.Logf("%s did not log taking over (another process may lead); hand-offs resumed within %s",
				next.name, resumed.Round(time.Millisecond))
		}
	}

	testfactory.Eventually(t, 60*time.Second, "a third of the events to be handed off", stampedAtLeast(events/3))
	report(first, first.kill(t), second)
	testfactory.Eventually(t, 60*time.Second, "two thirds of the events to be handed off", stampedAtLeast(2*events/3))
	killedAt := second.kill(t)
	third := startProcess(t, "C", nil)
	report(second, killedAt, third)

	select {
	case err := <-produced:
		produced <- nil // for the cleanup
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(120 * time.Second):
		t.Fatal("writing the events took more than 120 s")
	}
	waitHandedOff(t, p, org.ID, employees+events, 60*time.Second)
	t.Logf("all %d events handed off %s after the first was written", events, time.Since(began).Round(time.Millisecond))

	expectSessionEventsInCommitOrder(t, p, org.ID, sessions)
	if n := expectOneDeliveryPerSubscription(t, p, org.ID); n != events/4*2+events/4 {
		t.Fatalf("%d deliveries, want %d", n, events/4*2+events/4)
	}
	frames := watcher.wait(t, events/2, 60*time.Second)
	expectStreamMatchesTable(t, p, org.ID, frames)
	t.Logf("the observer's stream had every one of the %d streamed events once, over %d connections",
		len(frames), watcher.connections())
}

// waitForSlot waits until the listener's replication slot exists.
func waitForSlot(t *testing.T, p *pgxpool.Pool) {
	t.Helper()
	testfactory.Eventually(t, 30*time.Second, "the outbox replication slot", func() (bool, error) {
		var n int
		err := p.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_replication_slots WHERE slot_name = app.outbox_slot()`).Scan(&n)
		return n == 1, err
	})
}

// cluster is a Postgres cluster of this test alone, managed with scripts/pg.sh.
type cluster struct {
	script  string
	datadir string
	port    string
	url     string
}

// privateCluster starts a fast (fsync off) cluster on a free port in a temporary directory and migrates
// it; the test's cleanup stops and removes it.
func privateCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{script: filepath.Join(repoRoot(t), "scripts", "pg.sh")}
	dir, err := os.MkdirTemp("", "fieldtrack-e2e-pg-")
	if err != nil {
		t.Fatal(err)
	}
	// As root, pg.sh runs the server as "postgres", which must be able to enter the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c.datadir = filepath.Join(dir, "pg")
	t.Cleanup(func() {
		if out, err := exec.Command("bash", c.script, "remove", c.datadir).CombinedOutput(); err != nil {
			t.Errorf("pg.sh remove: %v\n%s", err, out)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	c.port = c.pg(t, "free-port")
	c.pg(t, "start", c.datadir, c.port, "fast")
	c.url = c.pg(t, "url", c.port)
	m, err := migration.Open(c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Up(); err != nil {
		t.Fatalf("migrating the private cluster: %v", err)
	}
	return c
}

// pg runs scripts/pg.sh and returns its standard output, trimmed.
func (c *cluster) pg(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("bash", append([]string{c.script}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pg.sh %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// TestListener_RecoversFromPostgresRestart restarts the database under a running server: the listener
// and the hub reconnect by themselves, and a client that reconnects like a browser ends up with every
// event exactly once, in order.
func TestListener_RecoversFromPostgresRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := privateCluster(t)
	p, err := db.NewPool(ctx, db.PoolConfig{URL: c.url, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	srv := startServer(t, map[string]string{"DATABASE_URL": c.url})
	waitForSlot(t, p)
	org := testfactory.NewOrgIn(t, p)
	emp := testfactory.NewEmployeeIn(t, p, org, "Restart")
	tok := testfactory.EmployeeToken(t, emp)
	watcher := follow(t, adminStream(srv.base), testfactory.AdminToken(t, org))
	testfactory.Eventually(t, 20*time.Second, "the stream to connect", func() (bool, error) { return watcher.connections() > 0, nil })

	want := cycles(t, srv.base, tok, 10)
	watcher.wait(t, 5, 30*time.Second) // events flow before the restart

	stopping := time.Now()
	c.pg(t, "stop", c.datadir)
	t.Logf("Postgres stopped in %s", time.Since(stopping).Round(time.Millisecond))
	// The network drops too: the client reconnects while the database is down.
	watcher.drop()
	starting := time.Now()
	c.pg(t, "start", c.datadir, c.port, "fast")
	up := time.Now()
	t.Logf("Postgres started in %s", up.Sub(starting).Round(time.Millisecond))

	testfactory.Eventually(t, 30*time.Second, "the server to reach the database again", func() (bool, error) {
		status, _, err := call(http.MethodGet, srv.base+"/ready", "")
		return status == http.StatusOK, err
	})
	after := cycles(t, srv.base, tok, 10)
	want = append(want, after...)
	waitHandedOff(t, p, org.ID, 1+4*20, 60*time.Second)
	t.Logf("every event handed off %s after Postgres was up again", time.Since(up).Round(time.Millisecond))
	if took, ok := srv.logs.nth(leadingLine, 2); ok {
		t.Logf("the listener led again %s after Postgres was up", took.Sub(up).Round(time.Millisecond))
	} else {
		t.Fatal("the listener never led again after the restart")
	}
	if _, ok := srv.logs.first("listener stopped; retrying"); !ok {
		t.Fatal("the listener did not notice the restart")
	}

	frames := watcher.wait(t, len(want), 60*time.Second)
	expectFrames(t, frames, want)
	t.Logf("the client received all %d events over %d connections", len(frames), watcher.connections())
	// Nothing repeated after them either: the next frame is the next event.
	marker := mustAttend(t, srv.base, tok, "check-in")
	frames = watcher.wait(t, len(want)+1, 30*time.Second)
	expectFrames(t, frames[len(want):], []sent{marker})
	expectFrames(t, frames, append(want, marker))
}

// TestListener_AtTwoThousandEventsASecondKillAndRestartLoseNothing commits 2,000 events a second, one
// per transaction, for 8 s, while the leading process is killed (SIGKILL, a quarter into the writing)
// and Postgres restarts under the standby that took over (at half): every event is handed off once, with one delivery per subscription,
// and a client that follows the stream on a third process (reconnecting like a browser) receives each
// streamed event once, in stream order.
func TestListener_AtTwoThousandEventsASecondKillAndRestartLoseNothing(t *testing.T) {
	t.Parallel()
	const rate, seconds = 2000, 8
	const events = rate * seconds
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := privateCluster(t)
	p, err := db.NewPool(ctx, db.PoolConfig{URL: c.url, MaxConns: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	env := map[string]string{"DATABASE_URL": c.url, "WEBHOOK_WORKER_ENABLED": "false"}
	leader := startProcess(t, "A", env)
	waitForSlot(t, p)
	org := testfactory.NewOrgIn(t, p)
	newWebhook(t, p, org.ID, "session.checkin")
	standby := startProcess(t, "B", env)
	observer := startServer(t, map[string]string{"DATABASE_URL": c.url, "EVENTS_LISTENER_ENABLED": "false",
		"WEBHOOK_WORKER_ENABLED": "false"})
	watcher := follow(t, adminStream(observer.base), testfactory.AdminToken(t, org))
	// And one on B, whose hub reads the stream from the table while A leads and gets it from its own
	// listener once B leads.
	onStandby := follow(t, adminStream(standby.base), testfactory.AdminToken(t, org))
	testfactory.Eventually(t, 20*time.Second, "the streams to connect", func() (bool, error) {
		return watcher.connections() > 0 && onStandby.connections() > 0, nil
	})

	// Each event is its own transaction; one whose commit failed (Postgres going down) is written again
	// once Postgres is back, unless it committed after all.
	const emitSQL = `SELECT app.emit($1, 'session.checkin', jsonb_build_object('seq', $2::int), 'session.checkin',
		jsonb_build_object('sessionId', $3::text, 'employeeId', $4::text, 'session', jsonb_build_object('id', $3::text)))`
	employee := uuid.NewString()
	var retried atomic.Int64
	var errMu sync.Mutex
	var errs []string // the first few failures, for the log
	note := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if len(errs) < 5 {
			errs = append(errs, err.Error())
		}
	}
	emit := func(seq int) error {
		deadline := time.Now().Add(60 * time.Second)
		for {
			_, err := p.Exec(ctx, emitSQL, org.ID, seq, fmt.Sprintf("event-%05d", seq), employee)
			if err == nil || ctx.Err() != nil {
				return err
			}
			retried.Add(1)
			note(err)
			for {
				if time.Now().After(deadline) {
					return fmt.Errorf("event %d not written within 60 s: %w", seq, err)
				}
				time.Sleep(50 * time.Millisecond)
				var n int
				err = p.QueryRow(ctx, `SELECT count(*) FROM webhook_events WHERE organization_id = $1
					AND payload->'data'->>'seq' = $2::int::text`, org.ID, seq).Scan(&n)
				if err == nil && n > 0 {
					return nil // it committed after all
				}
				if err == nil {
					break // write it again
				}
			}
		}
	}
	jobs := make(chan int, rate)
	produced := make(chan error, 1)
	var workers sync.WaitGroup
	var failed atomic.Pointer[error]
	var written atomic.Int64
	for range 12 {
		workers.Go(func() {
			for seq := range jobs {
				if err := emit(seq); err != nil {
					failed.CompareAndSwap(nil, &err)
				}
				written.Add(1)
			}
		})
	}
	began := time.Now()
	go func() {
		// Paced: event seq is due at began + seq/rate.
		for seq := range events {
			if wait := time.Until(began.Add(time.Duration(seq) * time.Second / rate)); wait > 0 {
				time.Sleep(wait)
			}
			jobs <- seq
		}
		close(jobs)
		workers.Wait()
		if err := failed.Load(); err != nil {
			produced <- *err
			return
		}
		produced <- nil
	}()
	t.Cleanup(func() {
		cancel()
		<-produced
		produced <- nil
	})

	waitStamped := func(n int, what string) {
		t.Helper()
		testfactory.Eventually(t, 60*time.Second, what, func() (bool, error) {
			stamped, total, err := handedOff(ctx, p, org.ID)
			return stamped >= n, fmt.Errorf("%d of %d events handed off (%v)", stamped, total, err)
		})
	}
	waitWritten := func(n int64, what string) {
		t.Helper()
		testfactory.Eventually(t, 60*time.Second, what, func() (bool, error) {
			return written.Load() >= n, fmt.Errorf("%d events written", written.Load())
		})
	}
	// The faults strike while the writers write: A leads and hands off until a quarter is written, B
	// takes over, and Postgres restarts under it at half.
	waitWritten(events/4, "a quarter of the events to be written")
	waitStamped(1, "A to hand off")
	killed := leader.kill(t)
	t.Logf("SIGKILL A %s into the run", killed.Sub(began).Round(time.Millisecond))
	stamped, _, _ := handedOff(ctx, p, org.ID)
	waitStamped(stamped+1, "B to take over the hand-off")
	waitWritten(events/2, "half of the events to be written")
	stopping := time.Now()
	c.pg(t, "stop", c.datadir)
	c.pg(t, "start", c.datadir, c.port, "fast")
	t.Logf("Postgres restarted %s into the run, down for %s", stopping.Sub(began).Round(time.Millisecond),
		time.Since(stopping).Round(time.Millisecond))

	select {
	case err := <-produced:
		produced <- nil // for the cleanup
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(120 * time.Second):
		t.Fatalf("writing the events took more than 120 s (failures: %v)", errs)
	}
	took := time.Since(began)
	t.Logf("first failures of the writers: %v", errs)
	waitHandedOff(t, p, org.ID, events, 90*time.Second)
	t.Logf("%d events written in %s (%d transactions written again after a failed commit); all handed off %s after the first",
		events, took.Round(time.Millisecond), retried.Load(), time.Since(began).Round(time.Millisecond))
	if _, ok := standby.logs.first(leadingLine); !ok {
		t.Error("B never led")
	}

	// Fresh statistics, or the checks below plan 24,000 × 24,000 nested loops.
	if _, err := p.Exec(ctx, "ANALYZE webhook_events, webhook_deliveries"); err != nil {
		t.Fatal(err)
	}
	var distinct, total int
	if err := p.QueryRow(ctx, `SELECT count(DISTINCT payload->'data'->>'seq'), count(*) FROM webhook_events
		WHERE organization_id = $1`, org.ID).Scan(&distinct, &total); err != nil {
		t.Fatal(err)
	}
	if distinct != events || total != events {
		t.Fatalf("%d distinct events in %d rows, want %d once each", distinct, total, events)
	}
	if n := expectOneDeliveryPerSubscription(t, p, org.ID); n != events {
		t.Fatalf("%d deliveries, want %d", n, events)
	}
	t.Logf("checked the table %s after the first event", time.Since(began).Round(time.Millisecond))
	for name, f := range map[string]*follower{"the observer": watcher, "B": onStandby} {
		frames := f.wait(t, events, 90*time.Second)
		expectStreamMatchesTable(t, p, org.ID, frames)
		t.Logf("the stream on %s had every one of the %d events once, over %d connections", name, len(frames),
			f.connections())
	}
}
