package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

func TestSSE_AdminReceivesOwnOrganizationsSessionsInCommitOrder(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	org, other := testfactory.NewOrg(t), testfactory.NewOrg(t)
	emp := testfactory.NewEmployee(t, org, "Mine")
	var others []testfactory.Employee
	for range 3 {
		others = append(others, testfactory.NewEmployee(t, other, "Theirs"))
	}

	mine := openStream(t, adminStream(srv.base)+"?token="+url.QueryEscape(testfactory.AdminToken(t, org)), nil)
	theirs := openStream(t, adminStream(srv.base)+"?token="+url.QueryEscape(testfactory.AdminToken(t, other)), nil)
	first := mine.must(t)
	var hello map[string]string
	if err := json.Unmarshal([]byte(first.Data), &hello); err != nil || first.Event != "connected" ||
		hello["orgId"] != org.ID.String() {
		t.Fatalf("first frame %+v, want connected with orgId %s", first, org.ID)
	}
	if r := mine.retryField(); r != "3000" {
		t.Fatalf("retry field %q, want 3000", r)
	}
	theirs.connected(t)

	// The other organization is busy while ours checks in and out.
	var wg sync.WaitGroup
	theirSent := make([][]sent, len(others))
	errs := make(chan error, len(others))
	for i, e := range others {
		wg.Go(func() {
			tok := testfactory.EmployeeToken(t, e)
			for range 5 {
				for _, path := range []string{"check-in", "check-out"} {
					s, err := attend(srv.base, tok, path)
					if err != nil {
						errs <- err
						return
					}
					theirSent[i] = append(theirSent[i], s)
				}
			}
		})
	}
	tok := testfactory.EmployeeToken(t, emp)
	in := mustAttend(t, srv.base, tok, "check-in")
	out := mustAttend(t, srv.base, tok, "check-out")
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Committed after everything of the other organization: once it arrives, anything leaked would have.
	marker := mustAttend(t, srv.base, tok, "check-in")

	frames := mine.take(t, 3)
	expectFrames(t, frames, []sent{in, out, marker})
	for i, f := range frames {
		p := decodeSession(t, f)
		if p.EmployeeID != emp.ID.String() {
			t.Fatalf("frame %d is about employee %s, want %s", i, p.EmployeeID, emp.ID)
		}
		// The stream position counts every organization's events: it must not show.
		pos := streamID(t, testfactory.Pool(t), org.ID, []sent{in, out, marker}[i])
		if strings.Contains(f.ID, strconv.FormatInt(pos, 10)) {
			t.Fatalf("frame %d id %q shows the stream position %d", i, f.ID, pos)
		}
		ts := decodeData(t, f).TS
		if time.Since(*ts) > time.Minute || time.Until(*ts) > time.Minute {
			t.Fatalf("frame %d ts %s is not the event's time", i, ts)
		}
	}
	checkin, checkout := decodeSession(t, frames[0]).Session, decodeSession(t, frames[1]).Session
	if checkin["checkout_at"] != nil || checkin["employee_id"] != emp.ID.String() {
		t.Fatalf("check-in frame's session %v, want open and of employee %s", checkin, emp.ID)
	}
	if checkout["checkout_at"] == nil || checkout["distance_recalculation_status"] != "done" {
		t.Fatalf("check-out frame's session %v, want closed with distance_recalculation_status done", checkout)
	}

	// The other organization's stream got all of its own events (so they were flowing), and only those.
	var want []sent
	for _, s := range theirSent {
		want = append(want, s...)
	}
	got := theirs.take(t, len(want))
	seen := map[sent]bool{}
	for _, f := range got {
		p := decodeSession(t, f)
		seen[sent{f.Event, p.SessionID}] = true
	}
	for _, s := range want {
		if !seen[s] {
			t.Fatalf("the other organization's stream misses %s of session %s", s.event, s.session)
		}
	}
}

func TestSSE_ReconnectReplaysExactlyTheMissedEvents(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	org := testfactory.NewOrg(t)
	tok := testfactory.EmployeeToken(t, testfactory.NewEmployee(t, org, "Replay"))
	admin := testfactory.AdminToken(t, org)
	// The witness stays connected: once it has an event, this server's hub has fanned it out, so a
	// client resuming from before it must get it from the replay.
	witness := openStream(t, adminStream(srv.base), header(admin))
	witness.connected(t)

	client := openStream(t, adminStream(srv.base), header(admin))
	client.connected(t)
	before := cycles(t, srv.base, tok, 1)
	seen := client.take(t, 2)
	expectFrames(t, seen, before)
	last := seen[1].ID
	witness.take(t, 2)

	for _, via := range []string{"Last-Event-ID", "last_event_id"} {
		client.close()
		missed := cycles(t, srv.base, tok, 50)
		witnessed := witness.take(t, len(missed))
		expectFrames(t, witnessed, missed)

		u, h := adminStream(srv.base), header(admin)
		if via == "Last-Event-ID" {
			h.Set("Last-Event-ID", last)
		} else {
			u += "?last_event_id=" + url.QueryEscape(last) + "&token=" + url.QueryEscape(admin)
			h = nil
		}
		client = openStream(t, u, h)
		client.connected(t)
		replayed := client.take(t, len(missed))
		expectFrames(t, replayed, missed)
		for i := range replayed {
			if replayed[i].ID != witnessed[i].ID {
				t.Fatalf("%s: replayed frame %d has id %s, the live stream had %s", via, i, replayed[i].ID, witnessed[i].ID)
			}
		}
		// Then live events, with nothing repeated in between.
		live := mustAttend(t, srv.base, tok, "check-in")
		expectFrames(t, client.take(t, 1), []sent{live})
		closing := mustAttend(t, srv.base, tok, "check-out")
		liveFrames := client.take(t, 1)
		expectFrames(t, liveFrames, []sent{closing})
		witness.take(t, 2)
		last = liveFrames[0].ID
	}
}

// TestSSE_ResumingBeyondRetentionGetsReset moves app.stream_state.pruned_through, which every stream of
// the database reads: it does not run in parallel with the other tests of this package.
func TestSSE_ResumingBeyondRetentionGetsReset(t *testing.T) {
	srv := startServer(t, nil)
	p := testfactory.Pool(t)
	org := testfactory.NewOrg(t)
	tok := testfactory.EmployeeToken(t, testfactory.NewEmployee(t, org, "Retention"))
	admin := testfactory.AdminToken(t, org)
	witness := openStream(t, adminStream(srv.base), header(admin))
	witness.connected(t)

	client := openStream(t, adminStream(srv.base), header(admin))
	client.connected(t)
	seen := mustAttend(t, srv.base, tok, "check-in")
	last := client.take(t, 1)[0].ID
	client.close()
	missed := mustAttend(t, srv.base, tok, "check-out")
	witness.take(t, 2)

	// Within the retention the missed event is replayed ...
	resume := header(admin, "Last-Event-ID", last)
	control := openStream(t, adminStream(srv.base), resume)
	control.connected(t)
	expectFrames(t, control.take(t, 1), []sent{missed})
	control.close()

	// ... beyond it, the client is told to refetch.
	ctx := context.Background()
	var old int64
	if err := p.QueryRow(ctx, `SELECT pruned_through FROM app.stream_state`).Scan(&old); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exec(ctx, `UPDATE app.stream_state SET pruned_through = $1`, streamID(t, p, org.ID, seen)+1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := p.Exec(ctx, `UPDATE app.stream_state SET pruned_through = $1`, old); err != nil {
			t.Errorf("restoring pruned_through: %v", err)
		}
	})
	reset := openStream(t, adminStream(srv.base), resume)
	reset.connected(t)
	f := reset.must(t)
	d := decodeData(t, f)
	var payload struct{ Reason string }
	if err := json.Unmarshal(d.Payload, &payload); err != nil || f.Event != "reset" || d.Type != "reset" ||
		!strings.Contains(payload.Reason, "retention") {
		t.Fatalf("frame %+v, want a reset event saying the retention passed", f)
	}
	expectOpaqueID(t, f)
	// Nothing older follows the reset: the next frame is the next live event, and resuming from the
	// reset's id gives exactly that event too.
	live := mustAttend(t, srv.base, tok, "check-in")
	expectFrames(t, reset.take(t, 1), []sent{live})
	again := openStream(t, adminStream(srv.base), header(admin, "Last-Event-ID", f.ID))
	again.connected(t)
	expectFrames(t, again.take(t, 1), []sent{live})
}

func TestSSE_StreamHeadersAndCORS(t *testing.T) {
	t.Parallel()
	srv := startServer(t, map[string]string{"CORS_ORIGIN": "http://dashboard.test, http://admin.test"})
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)

	s := openStream(t, adminStream(srv.base), header(admin, "Origin", "http://admin.test"))
	s.connected(t)
	h := s.Header
	if got := h.Get("Access-Control-Allow-Origin"); got != "http://admin.test" {
		t.Fatalf("Access-Control-Allow-Origin %q, want http://admin.test", got)
	}
	if got := h.Get("Access-Control-Allow-Credentials"); got != "true" {
		t.Fatalf("Access-Control-Allow-Credentials %q, want true", got)
	}
	if got := h.Get("Content-Type"); !strings.HasPrefix(got, "text/event-stream") {
		t.Fatalf("Content-Type %q, want text/event-stream", got)
	}
	if got := h.Get("Cache-Control"); !strings.Contains(got, "no-cache") {
		t.Fatalf("Cache-Control %q, want no-cache", got)
	}

	foreign := openStream(t, adminStream(srv.base), header(admin, "Origin", "http://evil.test"))
	foreign.connected(t)
	if got := foreign.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("a foreign origin got Access-Control-Allow-Origin %q", got)
	}
}

func TestSSE_StreamsPerOrganizationAreCapped(t *testing.T) {
	t.Parallel()
	srv := startServer(t, map[string]string{"SSE_MAX_STREAMS_PER_ORG": "2"})
	org, other := testfactory.NewOrg(t), testfactory.NewOrg(t)
	admin := header(testfactory.AdminToken(t, org))
	first := openStream(t, adminStream(srv.base), admin)
	first.connected(t)
	second := openStream(t, adminStream(srv.base), admin)
	second.connected(t)

	_, err := connect(context.Background(), adminStream(srv.base), admin)
	var st *httpStatus
	if !errors.As(err, &st) || st.Code != http.StatusTooManyRequests {
		t.Fatalf("third stream: %v, want 429", err)
	}
	var body map[string]any
	if err := json.Unmarshal(st.Body, &body); err != nil || body["success"] != false || body["code"] != "TOO_MANY_STREAMS" {
		t.Fatalf("429 body %s, want the TOO_MANY_STREAMS error envelope", st.Body)
	}
	if st.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}

	elsewhere := openStream(t, adminStream(srv.base), header(testfactory.AdminToken(t, other)))
	elsewhere.connected(t)

	// A client that goes away frees its place.
	first.close()
	testfactory.Eventually(t, 10*time.Second, "a freed place to be usable", func() (bool, error) {
		s, err := connect(context.Background(), adminStream(srv.base), admin)
		if err != nil {
			return false, err
		}
		s.close()
		return true, nil
	})
}

func TestSSE_AuthenticationIsChecked(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	employee := testfactory.EmployeeToken(t, testfactory.NewEmployee(t, org, "Not an admin"))
	for _, c := range []struct {
		name   string
		query  string
		header http.Header
		status int
		code   string
	}{
		{"no token", "", nil, http.StatusUnauthorized, ""},
		{"garbage token", "?token=garbage", nil, http.StatusUnauthorized, ""},
		{"employee token", "", header(employee), http.StatusForbidden, "FORBIDDEN"},
		{"employee token in query", "?token=" + url.QueryEscape(employee), nil, http.StatusForbidden, "FORBIDDEN"},
		{"tampered admin token", "", header(admin + "x"), http.StatusUnauthorized, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := connect(context.Background(), adminStream(srv.base)+c.query, c.header)
			var st *httpStatus
			if !errors.As(err, &st) || st.Code != c.status {
				t.Fatalf("%v, want HTTP %d", err, c.status)
			}
			var body map[string]any
			if err := json.Unmarshal(st.Body, &body); err != nil || body["success"] != false ||
				(c.code != "" && body["code"] != c.code) {
				t.Fatalf("body %s, want an error envelope with code %q", st.Body, c.code)
			}
		})
	}
}

// An id the server did not give this organization (another organization's, a numeric id of an older
// server, garbage) says nothing about what the client has: the answer is a reset (refetch), not an
// error, and resuming from the reset's id misses nothing that follows it.
func TestSSE_ResumingFromAnUnknownIDGetsReset(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	org, other := testfactory.NewOrg(t), testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	tok := testfactory.EmployeeToken(t, testfactory.NewEmployee(t, org, "Mine"))
	theirs := openStream(t, adminStream(srv.base), header(testfactory.AdminToken(t, other)))
	theirs.connected(t)
	theirEvent := mustAttend(t, srv.base, testfactory.EmployeeToken(t, testfactory.NewEmployee(t, other, "Theirs")), "check-in")
	foreign := theirs.take(t, 1)[0]
	expectFrames(t, []frame{foreign}, []sent{theirEvent})
	numeric := strconv.FormatInt(streamID(t, testfactory.Pool(t), other.ID, theirEvent), 10)

	expectReset := func(t *testing.T, s *stream) frame {
		t.Helper()
		s.connected(t)
		f := s.must(t)
		var payload struct{ Reason string }
		if err := json.Unmarshal(decodeData(t, f).Payload, &payload); err != nil || f.Event != "reset" ||
			!strings.Contains(payload.Reason, "not one of this stream's") {
			t.Fatalf("frame %+v, want a reset saying the id is unknown", f)
		}
		expectOpaqueID(t, f)
		return f
	}
	for _, c := range []struct {
		name, query string
		header      http.Header
	}{
		{"another organization's id", "", header(admin, "Last-Event-ID", foreign.ID)},
		{"another organization's id in the query", "?last_event_id=" + url.QueryEscape(foreign.ID), header(admin)},
		{"a numeric id of an older server", "", header(admin, "Last-Event-ID", numeric)},
		{"a negative number", "", header(admin, "Last-Event-ID", "-1")},
		{"garbage in the query", "?last_event_id=abc", header(admin)},
		{"garbage of an id's length", "", header(admin, "Last-Event-ID", "AAAAAAAAAAAAAAAAAAAAAA")},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := openStream(t, adminStream(srv.base)+c.query, c.header)
			expectReset(t, s)
			s.close()
		})
	}

	// After the reset the stream goes on live, and the reset's id is a position to resume from.
	s := openStream(t, adminStream(srv.base), header(admin, "Last-Event-ID", foreign.ID))
	reset := expectReset(t, s)
	in := mustAttend(t, srv.base, tok, "check-in")
	expectFrames(t, s.take(t, 1), []sent{in})
	s.close()
	out := mustAttend(t, srv.base, tok, "check-out")
	resumed := openStream(t, adminStream(srv.base), header(admin, "Last-Event-ID", reset.ID))
	resumed.connected(t)
	expectFrames(t, resumed.take(t, 2), []sent{in, out})
}

func TestSSE_IdleStreamGetsHeartbeats(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	s := openStream(t, adminStream(srv.base), header(testfactory.AdminToken(t, testfactory.NewOrg(t))))
	s.connected(t)
	opened := time.Now()
	testfactory.Eventually(t, 25*time.Second, "a heartbeat on an idle stream", func() (bool, error) {
		return s.comments.Load() > 0, nil
	})
	t.Logf("first heartbeat after %s", time.Since(opened).Round(100*time.Millisecond))
	if n := len(s.frames); n != 0 {
		t.Fatalf("%d event frames on an idle stream: heartbeats must be comments", n)
	}
}

// TestSSE_TwoServersEachDeliverEveryEventOnce runs two servers on the database: one leads the listener,
// both fan out every event, and the hand-off records each webhook delivery once.
func TestSSE_TwoServersEachDeliverEveryEventOnce(t *testing.T) {
	t.Parallel()
	a, b := startServer(t, nil), startServer(t, nil)
	p := testfactory.Pool(t)
	org := testfactory.NewOrg(t)
	hook := newWebhook(t, p, org.ID, "session.checkin")
	tokens := []string{testfactory.EmployeeToken(t, testfactory.NewEmployee(t, org, "One")),
		testfactory.EmployeeToken(t, testfactory.NewEmployee(t, org, "Two"))}
	admin := header(testfactory.AdminToken(t, org))
	onA, onB := openStream(t, adminStream(a.base), admin), openStream(t, adminStream(b.base), admin)
	onA.connected(t)
	onB.connected(t)

	var want []sent
	for i := range 10 {
		for j, path := range []string{"check-in", "check-out"} {
			base := []string{a.base, b.base}[(i+j)%2]
			want = append(want, mustAttend(t, base, tokens[i%2], path))
		}
	}
	fa, fb := onA.take(t, len(want)), onB.take(t, len(want))
	expectFrames(t, fa, want)
	expectFrames(t, fb, want)
	for i := range fa {
		if fa[i].ID != fb[i].ID {
			t.Fatalf("frame %d has id %s on one server and %s on the other", i, fa[i].ID, fb[i].ID)
		}
	}

	// 2 employee.created, then 4 events per check-in/check-out cycle.
	waitHandedOff(t, p, org.ID, 2+4*10, 30*time.Second)
	if n := expectOneDeliveryPerSubscription(t, p, org.ID); n != 10 {
		t.Fatalf("%d deliveries to webhook %s, want one per check-in (10)", n, hook)
	}
}

// The pipeline the organizations share is for operators: /metrics shows it, with the scrape token only.
func TestMetrics_ShowTheSharedPipelineWithTheScrapeToken(t *testing.T) {
	t.Parallel()
	srv := startServer(t, map[string]string{"METRICS_SCRAPE_TOKEN": "scrape-0123456789abcdef"})
	res, err := quick.Get(srv.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token: %d", res.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer scrape-0123456789abcdef")
	res, err = quick.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, name := range []string{"fieldtrack_replication_slot_lag_bytes", "fieldtrack_replication_slot_active",
		"fieldtrack_outbox_backlog", "fieldtrack_stream_position", "fieldtrack_sse_streams", "fieldtrack_listener_leader",
		"fieldtrack_listener_acked_lsn_bytes", "fieldtrack_listener_events_handed_off",
		"fieldtrack_listener_last_error_timestamp_seconds"} {
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "\n"+name+" ") {
			t.Fatalf("/metrics (%d) lacks %s:\n%s", res.StatusCode, name, body)
		}
	}
	for _, series := range []string{"fieldtrack_reconcile_last_run_timestamp_seconds ", "fieldtrack_reconcile_errors ",
		`fieldtrack_snapshot_drift_rows{table="employee_last_state"} `,
		`fieldtrack_cron_job_failures_24h{job="fieldtrack-reconcile-snapshots"} `,
		"fieldtrack_db_pool_acquires_total ", "fieldtrack_webhook_dead_letters ", "fieldtrack_sse_drops_total "} {
		if !strings.Contains(string(body), "\n"+series) {
			t.Fatalf("/metrics lacks %s:\n%s", series, body)
		}
	}
}
