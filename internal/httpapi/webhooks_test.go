package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
	"github.com/fieldtrack/fieldtrack/internal/webhook"
	"github.com/fieldtrack/fieldtrack/internal/webhook/webhooktest"
)

const (
	hookSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	plainSecret = "plain-secret-for-the-original-scheme"
)

// setupWebhooks is the harness with loopback webhook targets allowed (the receivers run on loopback).
func setupWebhooks(t *testing.T) *harness {
	t.Helper()
	cfg := testConfig()
	cfg.WebhookAllowPrivateTargets = true
	return setupWith(t, cfg, testfactory.Pool(t))
}

// startWorker runs a delivery worker for org's deliveries only until the test ends.
func startWorker(t *testing.T, org testfactory.Org, maxAttempts int) *webhook.Worker {
	t.Helper()
	w := webhook.NewWorker(testfactory.Pool(t), webhook.Config{
		OrganizationID: org.ID, AllowPrivateTargets: true, MaxAttempts: maxAttempts,
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, PollInterval: 10 * time.Millisecond,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func (h *harness) createWebhook(tok, url string, events []string, secret string) map[string]any {
	h.t.Helper()
	r := h.call("POST", "/admin/webhooks", tok, map[string]any{"url": url, "events": events, "secret": secret})
	expect(h.t, r, http.StatusCreated)
	return r.data()
}

// deliveryStatus reads one delivery through the API.
func (h *harness) delivery(tok, id string) map[string]any {
	h.t.Helper()
	r := h.call("GET", "/admin/webhook-deliveries?limit=100", tok, nil)
	expect(h.t, r, http.StatusOK)
	for _, d := range r.list() {
		if d["id"] == id {
			return d
		}
	}
	h.t.Fatalf("delivery %s not in the log: %s", id, r.Raw)
	return nil
}

func TestWebhooks_CheckInIsDeliveredSignedToEverySubscriber(t *testing.T) {
	t.Parallel()
	h := setupWebhooks(t)
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	emp := testfactory.NewEmployee(t, org, "Field Worker")
	both, legacy := webhooktest.NewReceiver(t), webhooktest.NewReceiver(t)
	h.createWebhook(admin, both.URL+"/a", []string{"session.checkin", "employee.checked_in"}, hookSecret)
	h.createWebhook(admin, legacy.URL+"/b", []string{"session.checkin"}, plainSecret)
	h.createWebhook(admin, legacy.URL+"/c", []string{"expense.created"}, plainSecret) // not subscribed

	checkIn := h.call("POST", "/attendance/check-in", testfactory.EmployeeToken(t, emp), nil)
	expect(t, checkIn, http.StatusCreated)
	sessionID := checkIn.data()["id"]
	webhooktest.Dispatch(t, testfactory.Pool(t), org.ID) // what the logical-replication listener does
	startWorker(t, org, 3)
	testfactory.Eventually(t, 20*time.Second, "three deliveries", func() (bool, error) { return both.Count() == 2 && legacy.Count() == 1, nil })

	check := func(r webhooktest.Request, secret string) string {
		t.Helper()
		if err := webhooktest.VerifyStandard(secret, r.Header, r.Body, time.Now()); err != nil {
			t.Errorf("%s: Standard Webhooks: %v", r.Path, err)
		}
		if err := webhooktest.VerifyLegacy(secret, r.Header, r.Body, time.Now()); err != nil {
			t.Errorf("%s: sha256=: %v", r.Path, err)
		}
		var raw map[string]any
		if err := json.Unmarshal(r.Body, &raw); err != nil {
			t.Fatal(err)
		}
		if raw["id"] != r.Header.Get("webhook-id") || raw["type"] != r.Header.Get("X-FieldTrack-Event") ||
			raw["organization_id"] != org.ID.String() || raw["version"] != 1.0 ||
			raw["data"].(map[string]any)["session_id"] != sessionID || raw["data"].(map[string]any)["employee_id"] != emp.ID.String() {
			t.Errorf("%s: envelope %s with headers %v", r.Path, r.Body, r.Header)
		}
		return raw["type"].(string)
	}
	types := map[string]bool{}
	for _, r := range both.Requests() {
		types[check(r, hookSecret)] = true
	}
	if !types["session.checkin"] || !types["employee.checked_in"] {
		t.Errorf("subscriber of both types got %v", types)
	}
	if r := legacy.Requests()[0]; r.Path != "/b" || check(r, plainSecret) != "session.checkin" {
		t.Errorf("legacy subscriber got %s %s", r.Path, r.Body)
	}
	testfactory.Eventually(t, 20*time.Second, "three successes in the log", func() (bool, error) {
		return h.call("GET", "/admin/webhook-deliveries?status=success", admin, nil).total() == 3, nil
	})
	for _, d := range h.call("GET", "/admin/webhook-deliveries", admin, nil).list() {
		if d["response_code"] != 200.0 || d["response_status"] != 200.0 || d["attempt_count"] != 1.0 {
			t.Errorf("delivery %v", d)
		}
	}
}

func TestWebhooks_CreateListUpdateDeleteThroughEveryAlias(t *testing.T) {
	t.Parallel()
	h := setupWebhooks(t)
	org := testfactory.NewOrg(t)
	tok := testfactory.AdminToken(t, org)
	for _, base := range []string{"/admin/webhooks", "/webhooks"} {
		created := h.call("POST", base, tok, map[string]any{"url": "https://hooks.example.com/" + base,
			"events": []string{"session.checkin", "session.checkin", "expense.approved"}, "secret": hookSecret, "extra": 1})
		expect(t, created, http.StatusCreated)
		d := created.data()
		id, _ := d["id"].(string)
		if d["organization_id"] != org.ID.String() || d["is_active"] != true || d["url"] != "https://hooks.example.com/"+base ||
			len(d["events"].([]any)) != 2 || d["created_at"] == nil || d["updated_at"] == nil {
			t.Fatalf("%s: created %s", base, created.Raw)
		}
		list := h.call("GET", base, tok, nil)
		expect(t, list, http.StatusOK)
		if items := list.list(); len(items) == 0 || items[0]["id"] != id {
			t.Fatalf("%s: newest first: %s", base, list.Raw)
		}
		patched := h.call("PATCH", base+"/"+id, tok, map[string]any{"events": []string{"employee.created"}, "is_active": false})
		expect(t, patched, http.StatusOK)
		if p := patched.data(); p["is_active"] != false || len(p["events"].([]any)) != 1 || p["url"] != d["url"] {
			t.Fatalf("%s: patched %s", base, patched.Raw)
		}
		expect(t, h.call("PATCH", base+"/"+id, tok, map[string]any{"secret": "another-secret-of-16+"}), http.StatusOK)
		expect(t, h.call("PATCH", base+"/"+id, tok, map[string]any{"url": "https://hooks.example.com/moved", "is_active": true}), http.StatusOK)
		del := h.call("DELETE", base+"/"+id, tok, nil)
		expect(t, del, http.StatusNoContent)
		if len(del.Raw) != 0 {
			t.Fatalf("204 with a body: %q", del.Raw)
		}
		expectError(t, h.call("DELETE", base+"/"+id, tok, nil), http.StatusNotFound, "NOT_FOUND", "Webhook not found")
		expectError(t, h.call("PATCH", base+"/"+id, tok, map[string]any{"is_active": true}), http.StatusNotFound, "NOT_FOUND", "Webhook not found")
	}
	if n := len(h.call("GET", "/admin/webhooks", tok, nil).list()); n != 0 {
		t.Fatalf("%d webhooks left", n)
	}
}

func TestWebhooks_ValidationNamesTheProblem(t *testing.T) {
	t.Parallel()
	h := setup(t) // private targets not allowed
	tok := testfactory.AdminToken(t, testfactory.NewOrg(t))
	ok := map[string]any{"url": "https://hooks.example.com/x", "events": []string{"session.checkin"}, "secret": "0123456789abcdef"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range ok {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for name, c := range map[string]struct {
		body  map[string]any
		field string
		msg   string
	}{
		"missing url":     {with("url", nil), "url", `body/url property "url" is missing`},
		"empty url":       {with("url", ""), "url", ""},
		"malformed url":   {with("url", "not a url"), "url", "Invalid webhook URL: URL is malformed or cannot be parsed"},
		"ftp url":         {with("url", "ftp://hooks.example.com/x"), "url", "Invalid webhook URL: Only HTTP(S) URLs are permitted (received protocol: ftp:)"},
		"loopback":        {with("url", "http://localhost:8080/x"), "url", "Invalid webhook URL: Loopback, private, and link-local addresses are not permitted"},
		"metadata":        {with("url", "http://169.254.169.254/latest"), "url", "Invalid webhook URL: Loopback, private, and link-local addresses are not permitted"},
		"no events":       {with("events", []string{}), "events", "body/events events must contain at least one event type"},
		"unknown event":   {with("events", []string{"session.teleported"}), "events.0", ""},
		"test event":      {with("events", []string{"webhook.test"}), "events.0", ""},
		"short secret":    {with("secret", "too-short"), "secret", "body/secret secret must be 16 to 256 characters"},
		"long secret":     {with("secret", strings.Repeat("s", 257)), "secret", "body/secret secret must be 16 to 256 characters"},
		"bad whsec":       {with("secret", "whsec_not*base64*at*all"), "secret", ""},
		"missing secret":  {with("secret", nil), "secret", ""},
		"events not list": {with("events", "session.checkin"), "events", ""},
	} {
		r := h.call("POST", "/admin/webhooks", tok, c.body)
		expectError(t, r, http.StatusBadRequest, "VALIDATION_ERROR", c.msg)
		if !strings.Contains(string(r.Raw), `"field":"`+c.field+`"`) {
			t.Errorf("%s: field %s not named: %s", name, c.field, r.Raw)
		}
	}
	expect(t, h.call("POST", "/admin/webhooks", tok, ok), http.StatusCreated)
}

func TestWebhooks_ProductionRequiresHTTPS(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.AppEnv = "production"
	h := setupWith(t, cfg, testfactory.Pool(t))
	tok := testfactory.AdminToken(t, testfactory.NewOrg(t))
	body := map[string]any{"url": "http://hooks.example.com/x", "events": []string{"expense.created"}, "secret": "0123456789abcdef"}
	expectError(t, h.call("POST", "/admin/webhooks", tok, body), http.StatusBadRequest, "VALIDATION_ERROR",
		"Invalid webhook URL: Only HTTPS URLs are permitted (received protocol: http:)")
	body["url"] = "https://hooks.example.com/x"
	created := h.call("POST", "/admin/webhooks", tok, body)
	expect(t, created, http.StatusCreated)
	expectError(t, h.call("PATCH", "/admin/webhooks/"+created.data()["id"].(string), tok, map[string]any{"url": "http://hooks.example.com/y"}),
		http.StatusBadRequest, "VALIDATION_ERROR", "Invalid webhook URL: Only HTTPS URLs are permitted (received protocol: http:)")
}

func TestWebhooks_UpdateNeedsAFieldAndIDsMustBeUUIDs(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tok := testfactory.AdminToken(t, testfactory.NewOrg(t))
	id := h.createWebhook(tok, "https://hooks.example.com/x", []string{"expense.created"}, "0123456789abcdef")["id"].(string)
	expectError(t, h.call("PATCH", "/admin/webhooks/"+id, tok, map[string]any{"unknown": 1}), http.StatusBadRequest,
		"VALIDATION_ERROR", "At least one field must be provided for update")
	expectError(t, h.call("PATCH", "/admin/webhooks/"+id, tok, map[string]any{"is_active": "yes"}), http.StatusBadRequest, "VALIDATION_ERROR", "")
	for _, c := range []struct{ method, path string }{
		{"PATCH", "/admin/webhooks/nope"}, {"DELETE", "/webhooks/nope"}, {"POST", "/admin/webhooks/nope/test"},
		{"POST", "/admin/webhook-deliveries/nope/retry"}, {"POST", "/webhooks/logs/nope/retry"}, {"POST", "/admin/webhook-dlq/nope/retry"},
	} {
		expectError(t, h.call(c.method, c.path, tok, map[string]any{"is_active": true}), http.StatusBadRequest, "VALIDATION_ERROR",
			"params/id id must be a valid UUID")
	}
	for _, q := range []string{"/admin/webhook-deliveries?status=lost", "/admin/webhook-deliveries?webhook_id=x",
		"/admin/webhook-deliveries?limit=101", "/admin/webhook-dlq?offset=-1", "/admin/webhook-dlq?limit=0", "/admin/webhook-dlq?webhook_id=1"} {
		expectError(t, h.call("GET", q, tok, nil), http.StatusBadRequest, "VALIDATION_ERROR", "")
	}
}

func TestWebhooks_EmployeesAreForbidden(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tok := testfactory.EmployeeToken(t, testfactory.NewEmployee(t, testfactory.NewOrg(t), "E"))
	for _, c := range []struct{ method, path string }{
		{"GET", "/admin/webhooks"}, {"POST", "/webhooks"}, {"GET", "/admin/webhook-deliveries"}, {"GET", "/admin/webhook-dlq"},
		{"POST", "/admin/webhooks/" + uuid.NewString() + "/test"},
	} {
		expectError(t, h.call(c.method, c.path, tok, nil), http.StatusForbidden, "FORBIDDEN", "This action requires ADMIN role")
	}
	expect(t, h.call("GET", "/admin/webhooks", "", nil), http.StatusUnauthorized)
}

func TestWebhookTest_QueuesAPendingDeliveryVisibleInEveryLogAlias(t *testing.T) {
	t.Parallel()
	h := setupWebhooks(t)
	org := testfactory.NewOrg(t)
	tok := testfactory.AdminToken(t, org)
	first := h.createWebhook(tok, "https://hooks.example.com/a", []string{"expense.created"}, "0123456789abcdef")["id"].(string)
	second := h.createWebhook(tok, "https://hooks.example.com/b", []string{"expense.created"}, "0123456789abcdef")["id"].(string)
	expect(t, h.call("PATCH", "/admin/webhooks/"+second, tok, map[string]any{"is_active": false}), http.StatusOK)

	queued := h.call("POST", "/admin/webhooks/"+first+"/test", tok, nil)
	expect(t, queued, http.StatusAccepted)
	d := queued.data()
	if d["status"] != "pending" || d["delivery_id"] == nil || d["event_id"] == nil {
		t.Fatalf("test queued %s", queued.Raw)
	}
	// An inactive webhook can be tested too (through the alias, with an empty JSON body).
	expect(t, h.call("POST", "/webhooks/"+second+"/test", tok, "", "Content-Type", "application/json"), http.StatusAccepted)

	var logs []response
	for _, path := range []string{"/admin/webhook-deliveries", "/admin/webhooks/logs", "/webhooks/logs"} {
		r := h.call("GET", path+"?webhook_id="+first, tok, nil)
		expect(t, r, http.StatusOK)
		logs = append(logs, r)
	}
	items := logs[0].list()
	if logs[0].total() != 1 || len(items) != 1 || string(logs[1].Raw) != string(logs[0].Raw) || string(logs[2].Raw) != string(logs[0].Raw) {
		t.Fatalf("aliases differ or wrong total: %s / %s / %s", logs[0].Raw, logs[1].Raw, logs[2].Raw)
	}
	item := items[0]
	if item["id"] != d["delivery_id"] || item["event_id"] != d["event_id"] || item["event_type"] != "webhook.test" ||
		item["status"] != "pending" || item["attempt_count"] != 0.0 || item["response_code"] != nil || item["webhook_id"] != first {
		t.Fatalf("log item %v", item)
	}
	if r := h.call("GET", "/admin/webhook-deliveries?status=pending", tok, nil); r.total() != 2 {
		t.Fatalf("pending total %d", r.total())
	}
	if r := h.call("GET", "/admin/webhook-deliveries?status=success&page=1&limit=5", tok, nil); r.total() != 0 || len(r.list()) != 0 {
		t.Fatalf("success page %s", r.Raw)
	}
	// The event is the original's test envelope.
	var payload []byte
	if err := testfactory.Pool(t).QueryRow(context.Background(), `SELECT payload FROM webhook_events WHERE organization_id = $1 AND id = $2`,
		org.ID, d["event_id"]).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	_ = json.Unmarshal(payload, &env)
	data, _ := env["data"].(map[string]any)
	if env["type"] != "webhook.test" || env["id"] != d["event_id"] || data["webhook_id"] != first || data["test"] != true ||
		data["message"] != "FieldTrack test webhook delivery" {
		t.Fatalf("test envelope %s", payload)
	}
	// A pending delivery is not retried.
	expectError(t, h.call("POST", "/admin/webhook-deliveries/"+d["delivery_id"].(string)+"/retry", tok, nil),
		http.StatusBadRequest, "VALIDATION_ERROR", "Delivery is already pending — retry not needed")
}

func TestWebhookDLQ_DeadLetterIsListedAndRetriedOnceFixed(t *testing.T) {
	t.Parallel()
	h := setupWebhooks(t)
	org := testfactory.NewOrg(t)
	tok := testfactory.AdminToken(t, org)
	rc := webhooktest.NewReceiver(t)
	rc.Answer(func(int) webhooktest.Answer {
		return webhooktest.Answer{Status: http.StatusServiceUnavailable, Body: "maintenance"}
	})
	hook := h.createWebhook(tok, rc.URL+"/hook", []string{"expense.created"}, hookSecret)["id"].(string)
	other := h.createWebhook(tok, "https://hooks.example.com/other", []string{"expense.created"}, hookSecret)["id"].(string)
	queued := h.call("POST", "/admin/webhooks/"+hook+"/test", tok, nil).data()
	delivery := queued["delivery_id"].(string)
	startWorker(t, org, 2)
	testfactory.Eventually(t, 20*time.Second, "the delivery to be dead-lettered", func() (bool, error) {
		return h.delivery(tok, delivery)["status"] == "failed", nil
	})

	dlq := h.call("GET", "/admin/webhook-dlq", tok, nil)
	expect(t, dlq, http.StatusOK)
	meta, _ := dlq.Body["meta"].(map[string]any)
	items := dlq.list()
	if meta["count"] != 1.0 || meta["limit"] != 50.0 || meta["offset"] != 0.0 || len(items) != 1 {
		t.Fatalf("dlq %s", dlq.Raw)
	}
	dl := items[0]
	payload, _ := dl["payload"].(map[string]any)
	if dl["id"] != delivery || dl["status"] != "failed" || dl["attempts"] != 2.0 || dl["response_status"] != 503.0 ||
		dl["response_body"] != "maintenance" || dl["last_error"] != "HTTP 503" || dl["event_type"] != "webhook.test" ||
		payload["id"] != queued["event_id"] || dl["last_attempt_at"] == nil {
		t.Fatalf("dead letter %v", dl)
	}
	for q, want := range map[string]float64{
		"?event_type=webhook.test": 1, "?event_type=expense.created": 0, "?webhook_id=" + hook: 1, "?webhook_id=" + other: 0,
		"?limit=1&offset=1": 1, // count is the total, whatever the page
	} {
		if r := h.call("GET", "/admin/webhook-dlq"+q, tok, nil); r.Body["meta"].(map[string]any)["count"] != want {
			t.Errorf("dlq%s: %s", q, r.Raw)
		}
	}

	rc.Always(http.StatusOK)
	retried := h.call("POST", "/admin/webhook-dlq/"+delivery+"/retry", tok, nil)
	expect(t, retried, http.StatusOK)
	if r := retried.data(); r["id"] != delivery || r["status"] != "pending" || r["attempt_count"] != 2.0 || r["next_retry_at"] == nil {
		t.Fatalf("retried %s", retried.Raw)
	}
	testfactory.Eventually(t, 20*time.Second, "the retried delivery to succeed", func() (bool, error) {
		return h.delivery(tok, delivery)["status"] == "success", nil
	})
	if got := h.delivery(tok, delivery); got["attempt_count"] != 3.0 || got["response_code"] != 200.0 {
		t.Fatalf("after the retry %v", got)
	}
	if r := h.call("GET", "/admin/webhook-dlq", tok, nil); len(r.list()) != 0 {
		t.Fatalf("dlq after the retry %s", r.Raw)
	}
	for _, path := range []string{"/admin/webhook-dlq/", "/admin/webhook-deliveries/", "/admin/webhooks/logs/", "/webhooks/logs/"} {
		expectError(t, h.call("POST", path+delivery+"/retry", tok, nil), http.StatusBadRequest, "VALIDATION_ERROR",
			"Delivery already succeeded — retry not needed")
	}
	if n := rc.Count(); n != 3 {
		t.Fatalf("receiver got %d requests, want 3", n)
	}
}

func TestWebhookRetry_DeliveryRouteAndAliasesAnswerTheDelivery(t *testing.T) {
	t.Parallel()
	h := setupWebhooks(t)
	org := testfactory.NewOrg(t)
	tok := testfactory.AdminToken(t, org)
	rc := webhooktest.NewReceiver(t)
	rc.Always(http.StatusBadRequest) // permanent: dead-lettered at once
	hook := h.createWebhook(tok, rc.URL, []string{"expense.created"}, hookSecret)["id"].(string)
	var deliveries []string
	for range 3 {
		deliveries = append(deliveries, h.call("POST", "/admin/webhooks/"+hook+"/test", tok, nil).data()["delivery_id"].(string))
	}
	w := webhook.NewWorker(testfactory.Pool(t), webhook.Config{OrganizationID: org.ID, AllowPrivateTargets: true},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if n, err := w.DeliverDue(context.Background()); err != nil || n != 3 {
		t.Fatalf("DeliverDue = %d, %v", n, err)
	}
	for i, path := range []string{"/admin/webhook-deliveries/", "/admin/webhooks/logs/", "/webhooks/logs/"} {
		r := h.call("POST", path+deliveries[i]+"/retry", tok, nil)
		expect(t, r, http.StatusOK)
		d := r.data()
		if d["id"] != deliveries[i] || d["status"] != "pending" || d["attempt_count"] != 1.0 || d["response_code"] != 400.0 ||
			d["last_error"] == nil || d["next_retry_at"] == nil {
			t.Fatalf("%s: %s", path, r.Raw)
		}
	}
}

func TestWebhooks_ReactivationSendsWhatWaited(t *testing.T) {
	t.Parallel()
	h := setupWebhooks(t)
	org := testfactory.NewOrg(t)
	tok := testfactory.AdminToken(t, org)
	rc := webhooktest.NewReceiver(t)
	hook := h.createWebhook(tok, rc.URL, []string{"employee.created"}, hookSecret)["id"].(string)
	expect(t, h.call("POST", "/admin/employees", tok, map[string]any{"name": "New Hire"}), http.StatusCreated)
	webhooktest.Dispatch(t, testfactory.Pool(t), org.ID)
	expect(t, h.call("PATCH", "/admin/webhooks/"+hook, tok, map[string]any{"is_active": false}), http.StatusOK)

	w := webhook.NewWorker(testfactory.Pool(t), webhook.Config{OrganizationID: org.ID, AllowPrivateTargets: true},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if n, err := w.DeliverDue(context.Background()); err != nil || n != 0 {
		t.Fatalf("DeliverDue for an inactive webhook = %d, %v", n, err)
	}
	pending := h.call("GET", "/admin/webhook-deliveries?status=pending", tok, nil).list()
	if len(pending) != 1 || rc.Count() != 0 {
		t.Fatalf("pending %v, receiver %d", pending, rc.Count())
	}
	expect(t, h.call("PATCH", "/admin/webhooks/"+hook, tok, map[string]any{"is_active": true}), http.StatusOK)
	if n, err := w.DeliverDue(context.Background()); err != nil || n != 1 {
		t.Fatalf("DeliverDue after re-activation = %d, %v", n, err)
	}
	if rc.Count() != 1 || h.delivery(tok, pending[0]["id"].(string))["status"] != "success" {
		t.Fatalf("receiver %d", rc.Count())
	}
}

func TestWebhooks_OtherOrganizationsIDsAre404AndListsAreOwn(t *testing.T) {
	t.Parallel()
	h := setupWebhooks(t)
	mine, theirs := testfactory.NewOrg(t), testfactory.NewOrg(t)
	myTok, theirTok := testfactory.AdminToken(t, mine), testfactory.AdminToken(t, theirs)
	rc := webhooktest.NewReceiver(t)
	rc.Always(http.StatusNotFound)
	theirHook := h.createWebhook(theirTok, rc.URL, []string{"expense.created"}, hookSecret)["id"].(string)
	theirDelivery := h.call("POST", "/admin/webhooks/"+theirHook+"/test", theirTok, nil).data()["delivery_id"].(string)
	w := webhook.NewWorker(testfactory.Pool(t), webhook.Config{OrganizationID: theirs.ID, AllowPrivateTargets: true},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := w.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.delivery(theirTok, theirDelivery)["status"] != "failed" {
		t.Fatal("their delivery should be dead-lettered")
	}
	h.createWebhook(myTok, "https://hooks.example.com/mine", []string{"expense.created"}, hookSecret)

	for _, c := range []struct{ method, path, msg string }{
		{"PATCH", "/admin/webhooks/" + theirHook, "Webhook not found"},
		{"PATCH", "/webhooks/" + theirHook, "Webhook not found"},
		{"DELETE", "/admin/webhooks/" + theirHook, "Webhook not found"},
		{"POST", "/admin/webhooks/" + theirHook + "/test", "Webhook not found"},
		{"POST", "/admin/webhook-deliveries/" + theirDelivery + "/retry", "Delivery not found"},
		{"POST", "/webhooks/logs/" + theirDelivery + "/retry", "Delivery not found"},
		{"POST", "/admin/webhook-dlq/" + theirDelivery + "/retry", "Delivery not found"},
		{"POST", "/admin/webhook-dlq/" + uuid.NewString() + "/retry", "Delivery not found"},
	} {
		expectError(t, h.call(c.method, c.path, myTok, map[string]any{"is_active": false}), http.StatusNotFound, "NOT_FOUND", c.msg)
	}
	if items := h.call("GET", "/admin/webhooks", myTok, nil).list(); len(items) != 1 || items[0]["id"] == theirHook {
		t.Fatalf("my webhooks %v", items)
	}
	if r := h.call("GET", "/admin/webhook-deliveries?webhook_id="+theirHook, myTok, nil); r.total() != 0 {
		t.Fatalf("their deliveries visible: %s", r.Raw)
	}
	if r := h.call("GET", "/admin/webhook-dlq", myTok, nil); r.Body["meta"].(map[string]any)["count"] != 0.0 {
		t.Fatalf("their dead letters visible: %s", r.Raw)
	}
	// Their webhook is untouched.
	if items := h.call("GET", "/admin/webhooks", theirTok, nil).list(); len(items) != 1 || items[0]["is_active"] != true {
		t.Fatalf("their webhooks %v", items)
	}
}

func TestWebhooks_SecretsNeverAppearInAnswers(t *testing.T) {
	t.Parallel()
	h := setupWebhooks(t)
	org := testfactory.NewOrg(t)
	tok := testfactory.AdminToken(t, org)
	rc := webhooktest.NewReceiver(t)
	rc.Always(http.StatusBadRequest)
	const secret, rotated = "s3cr3t-that-must-never-leak", "r0tated-s3cr3t-never-leaks"
	var raw []string
	created := h.call("POST", "/webhooks", tok, map[string]any{"url": rc.URL, "events": []string{"expense.created"}, "secret": secret})
	expect(t, created, http.StatusCreated)
	id := created.data()["id"].(string)
	raw = append(raw, string(created.Raw))
	patched := h.call("PATCH", "/webhooks/"+id, tok, map[string]any{"secret": rotated})
	expect(t, patched, http.StatusOK)
	raw = append(raw, string(patched.Raw))
	delivery := h.call("POST", "/webhooks/"+id+"/test", tok, nil)
	raw = append(raw, string(delivery.Raw))
	w := webhook.NewWorker(testfactory.Pool(t), webhook.Config{OrganizationID: org.ID, AllowPrivateTargets: true},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := w.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The rotated secret signs the delivery.
	if r := rc.Requests(); len(r) != 1 || webhooktest.VerifyLegacy(rotated, r[0].Header, r[0].Body, time.Now()) != nil {
		t.Fatalf("delivery not signed with the rotated secret")
	}
	for _, path := range []string{"/admin/webhooks", "/webhooks", "/admin/webhook-deliveries", "/webhooks/logs", "/admin/webhook-dlq"} {
		raw = append(raw, string(h.call("GET", path, tok, nil).Raw))
	}
	raw = append(raw, string(h.call("POST", "/admin/webhook-dlq/"+delivery.data()["delivery_id"].(string)+"/retry", tok, nil).Raw))
	for _, body := range raw {
		if strings.Contains(body, secret) || strings.Contains(body, rotated) || strings.Contains(body, `"secret":`) {
			t.Fatalf("a secret leaked: %s", body)
		}
	}
}

func TestWebhooks_NewURLClosesAnOpenCircuit(t *testing.T) {
	t.Parallel()
	h := setupWebhooks(t)
	org := testfactory.NewOrg(t)
	tok := testfactory.AdminToken(t, org)
	broken, fixed := webhooktest.NewReceiver(t), webhooktest.NewReceiver(t)
	broken.Always(http.StatusInternalServerError)
	hook := h.createWebhook(tok, broken.URL, []string{"employee.created"}, hookSecret)["id"].(string)
	expect(t, h.call("POST", "/admin/employees", tok, map[string]any{"name": "New Hire"}), http.StatusCreated)
	webhooktest.Dispatch(t, testfactory.Pool(t), org.ID)
	first := h.call("GET", "/admin/webhook-deliveries", tok, nil).list()[0]["id"].(string)
	w := webhook.NewWorker(testfactory.Pool(t), webhook.Config{OrganizationID: org.ID, AllowPrivateTargets: true,
		CircuitThreshold: 1, CircuitOpen: time.Hour, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if n, err := w.DeliverDue(context.Background()); err != nil || n != 1 {
		t.Fatalf("DeliverDue = %d, %v", n, err)
	}
	// The circuit is open for an hour; the failed delivery's retry is parked behind it.
	testfactory.Eventually(t, 20*time.Second, "the retry to be parked", func() (bool, error) {
		if _, err := w.DeliverDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		next, _ := time.Parse(time.RFC3339Nano, h.delivery(tok, first)["next_retry_at"].(string))
		return next.After(time.Now().Add(30 * time.Minute)), nil
	})
	expect(t, h.call("PATCH", "/admin/webhooks/"+hook, tok, map[string]any{"url": fixed.URL}), http.StatusOK)
	if n, err := w.DeliverDue(context.Background()); err != nil || n != 1 {
		t.Fatalf("DeliverDue after the new URL = %d, %v", n, err)
	}
	if fixed.Count() != 1 || broken.Count() != 1 || h.delivery(tok, first)["status"] != "success" {
		t.Fatalf("fixed %d, broken %d, delivery %v", fixed.Count(), broken.Count(), h.delivery(tok, first))
	}
}
