package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// scrape reads /metrics (Prometheus text format) into series → value, a series being the metric's name
// with its labels as printed ("name{a=\"x\",b=\"y\"}"; the labels come sorted).
func scrape(t testing.TB, base, token string) map[string]float64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := quick.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", res.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// family sums every series of one metric (all its label values).
func family(m map[string]float64, name string) float64 {
	total := 0.0
	for series, v := range m {
		if series == name || strings.HasPrefix(series, name+"{") {
			total += v
		}
	}
	return total
}

// waitStreaming returns once the listener of the process at base hands off from its replication stream:
// an event written now (an employee of org created through the owner pool) has been handed off by it,
// counted in fieldtrack_listener_events_handed_off. (Events committed while the slot was being created
// are handed off by the listener's start-up sweep instead, which reads no trace context and is not
// counted; the slot shows active already while it is created.)
func waitStreaming(t *testing.T, base, token string, owner *pgxpool.Pool, org testfactory.Org) {
	t.Helper()
	var wrote time.Time
	testfactory.Eventually(t, 30*time.Second, "the listener handing off from its stream", func() (bool, error) {
		m := scrape(t, base, token)
		if m["fieldtrack_listener_events_handed_off"] >= 1 && m["fieldtrack_outbox_backlog"] == 0 {
			return true, nil
		}
		if time.Since(wrote) > time.Second { // a new event now and then: the sweep may have taken the last
			testfactory.NewEmployeeIn(t, owner, org, "Warm-up")
			wrote = time.Now()
		}
		return false, fmt.Errorf("handed off %v, backlog %v", m["fieldtrack_listener_events_handed_off"], m["fieldtrack_outbox_backlog"])
	})
}

// send makes an API request with a JSON body and returns its status.
func send(t testing.TB, method, url, token string, body any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		js, _ := json.Marshal(body)
		rd = bytes.NewReader(js)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := quick.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// After a scripted day (a second check-in refused, fixes single and batched with a duplicate, refusals,
// a check-out, webhooks answering 200 and 500), /metrics has moved by exactly what happened. On a
// database of its own, so that no other test's server delivers these webhooks or counts these events.
func TestMetrics_AScriptedScenarioMovesTheCountersByWhatHappened(t *testing.T) {
	t.Parallel()
	dbURL, owner := testfactory.MigratedDatabase(t, 4)
	var ok, refused atomic.Int64
	okHook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ok.Add(1) }))
	t.Cleanup(okHook.Close)
	badHook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refused.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(badHook.Close)
	org := testfactory.NewOrgIn(t, owner)
	emp := testfactory.NewEmployeeIn(t, owner, org, "Scripted")
	for url, events := range map[string]string{okHook.URL: "{employee.checked_in,employee.checked_out}",
		badHook.URL: "{employee.checked_in}"} {
		if _, err := owner.Exec(context.Background(), `INSERT INTO webhooks (organization_id, url, secret, events)
			VALUES ($1, $2, 'whsec-0123456789abcdef', $3)`, org.ID, url, events); err != nil {
			t.Fatal(err)
		}
	}
	const token = "scrape-token-for-tests"
	p := startProcess(t, "scripted", map[string]string{"DATABASE_URL": dbURL, "METRICS_SCRAPE_TOKEN": token,
		"WEBHOOK_WORKER_ENABLED": "true", "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true", "WEBHOOK_MAX_ATTEMPTS": "1"})
	waitStreaming(t, p.base, token, owner, org)
	before := scrape(t, p.base, token)
	var eventsBefore int
	if err := owner.QueryRow(context.Background(), `SELECT count(*) FROM webhook_events`).Scan(&eventsBefore); err != nil {
		t.Fatal(err)
	}

	tok := testfactory.EmployeeToken(t, emp)
	var session string
	{
		status, body, err := call(http.MethodPost, p.base+"/attendance/check-in", tok)
		if err != nil || status != http.StatusCreated {
			t.Fatalf("check-in: %d %v %v", status, body, err)
		}
		session, _ = body["data"].(map[string]any)["id"].(string)
	}
	if got := send(t, http.MethodPost, p.base+"/attendance/check-in", tok, nil); got != http.StatusBadRequest {
		t.Fatalf("a second check-in: %d, want 400 (the original's)", got) // the one-open-session rule, class 23
	}
	now := time.Now().UTC() // after the check-in: fixes must not precede the session
	fix := func(i int) map[string]any {
		return map[string]any{"latitude": 48.1 + float64(i)*0.0005, "longitude": 11.5, "accuracy": 8,
			"recorded_at": now.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano), "sequence_number": i}
	}
	single := fix(0)
	single["session_id"] = session
	if got := send(t, http.MethodPost, p.base+"/locations", tok, single); got != http.StatusCreated {
		t.Fatalf("a fix: %d", got)
	}
	batch := map[string]any{"session_id": session, "points": []map[string]any{fix(0), fix(1), fix(2)}}
	if got := send(t, http.MethodPost, p.base+"/locations/batch", tok, batch); got != http.StatusCreated {
		t.Fatalf("a batch: %d", got)
	}
	if got := send(t, http.MethodGet, p.base+"/admin/employees", tok, nil); got != http.StatusForbidden {
		t.Fatalf("an employee on an admin route: %d", got)
	}
	if got := send(t, http.MethodGet, p.base+"/auth/me", "not-a-token", nil); got != http.StatusUnauthorized {
		t.Fatalf("a bad token: %d", got)
	}
	if got := send(t, http.MethodPost, p.base+"/attendance/check-out", tok, nil); got != http.StatusOK {
		t.Fatalf("check-out: %d", got)
	}

	// Attempts: checked_in and checked_out to the good hook, checked_in to the bad one (dead-lettered
	// at once: one attempt allowed).
	var after map[string]float64
	testfactory.Eventually(t, 30*time.Second, "the webhook attempts in /metrics", func() (bool, error) {
		after = scrape(t, p.base, token)
		// An attempt is counted, then timed: wait for both (a scrape may fall between the two).
		d := family(after, "fieldtrack_webhook_attempts_total") - family(before, "fieldtrack_webhook_attempts_total")
		timed := after["fieldtrack_webhook_attempt_duration_seconds_count"] - before["fieldtrack_webhook_attempt_duration_seconds_count"]
		return d >= 3 && timed >= 3 && after["fieldtrack_outbox_backlog"] == 0, fmt.Errorf("%v attempts, %v timed", d, timed)
	})
	var eventsAfter int
	if err := owner.QueryRow(context.Background(), `SELECT count(*) FROM webhook_events`).Scan(&eventsAfter); err != nil {
		t.Fatal(err)
	}
	delta := func(series string) float64 { return after[series] - before[series] }
	for series, want := range map[string]float64{
		`http_requests_total{method="POST",route="/attendance/check-in",status_code="201"}`:  1,
		`http_requests_total{method="POST",route="/attendance/check-in",status_code="400"}`:  1,
		`http_requests_total{method="POST",route="/locations",status_code="201"}`:            1,
		`http_requests_total{method="POST",route="/locations/batch",status_code="201"}`:      1,
		`http_requests_total{method="GET",route="/admin/employees",status_code="403"}`:       1,
		`http_requests_total{method="GET",route="/auth/me",status_code="401"}`:               1,
		`http_requests_total{method="POST",route="/attendance/check-out",status_code="200"}`: 1,
		`http_request_duration_seconds_count{method="POST",route="/attendance/check-in"}`:    2,
		`http_request_duration_seconds_count{method="POST",route="/locations/batch"}`:        1,
		"gps_locations_inserted_total":                         3, // the batch's first fix was a duplicate
		`fieldtrack_db_errors_total{class="23"}`:               1, // the second check-in
		`fieldtrack_webhook_attempts_total{outcome="success"}`: 2,
		`fieldtrack_webhook_attempts_total{outcome="failed"}`:  1,
		"fieldtrack_webhook_attempt_duration_seconds_count":    3,
		"fieldtrack_webhook_dead_letters":                      1,
		"fieldtrack_listener_events_handed_off":                float64(eventsAfter - eventsBefore),
	} {
		if got := delta(series); got != want {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
	for fam, want := range map[string]float64{"security_auth_failures_total": 1, "security_authz_failures_total": 1} {
		if got := family(after, fam) - family(before, fam); got != want {
			t.Errorf("%s moved by %v, want %v", fam, got, want)
		}
	}
	if eventsAfter-eventsBefore < 4 {
		t.Errorf("%d events, want at least the check-in's and check-out's 4", eventsAfter-eventsBefore)
	}
	if ok.Load() != 2 || refused.Load() != 1 {
		t.Errorf("the hooks got %d and %d requests, want 2 and 1", ok.Load(), refused.Load())
	}
	if after["http_requests_in_flight"] != 1 { // the scrape itself
		t.Errorf("http_requests_in_flight = %v during a scrape, want 1", after["http_requests_in_flight"])
	}
}

// PPROF_ADDR serves Go's profiler on its own loopback listener, never on the API's.
func TestPprof_OnItsOwnLoopbackListenerOnly(t *testing.T) {
	t.Parallel()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startProcess(t, "profiled", map[string]string{"PPROF_ADDR": addr})
	res, err := quick.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "serve") {
		t.Fatalf("pprof: %d %q", res.StatusCode, body)
	}
	res, err = quick.Get(p.base + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("the API's listener answered /debug/pprof with %d", res.StatusCode)
	}
}
