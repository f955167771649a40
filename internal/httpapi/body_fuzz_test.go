package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
)

// A fixed id for paths and bodies; the fuzz server has no rows, so any id will do.
const fuzzID = "3f1c2a9e-8b7d-4e6f-a5c4-1b2d3e4f5a6b"

// bodyRoute is an operation that takes a JSON body: a concrete request target for its pattern, the
// caller it needs ("admin", "employee" or "" for public routes), and realistic bodies for the seed
// corpus (the first of them must get through to the database).
type bodyRoute struct {
	method, pattern, target string
	caller                  string
	seeds                   []string
}

// key names the route in fuzz inputs: method and target.
func (rt bodyRoute) key() string { return rt.method + " " + rt.target }

var webhookSeeds = []string{
	`{"url":"https://hooks.example.com/fieldtrack","events":["expense.created","session.checkin"],"secret":"0123456789abcdef0123"}`,
	`{"url":"https://hooks.example.com/x","events":["expense.created","expense.created"],"secret":"whsec_MDEyMzQ1Njc4OWFiY2RlZg=="}`,
	`{"url":"https://hooks.example.com/x","events":["employee.created"],"secret":"whsec_!!!!!!!!!!!!!!!!!!!"}`,
	`{"url":"http://localhost:8080/hook","events":["expense.created"],"secret":"0123456789abcdef"}`,
	`{"url":"http://[::1]/","events":["expense.created"],"secret":"0123456789abcdef"}`,
	`{"url":"ftp://hooks.example.com/","events":["expense.created"],"secret":"0123456789abcdef"}`,
	`{"url":"https://hooks.example.com/","events":[],"secret":"0123456789abcdef"}`,
	`{"url":null,"events":["expense.created"],"secret":"0123456789abcdef"}`,
}

var webhookUpdateSeeds = []string{
	`{"is_active":true}`,
	`{"url":"https://hooks.example.com/new","events":["session.checkout"]}`,
	`{"secret":"whsec_MDEyMzQ1Njc4OWFiY2RlZg=="}`,
	`{}`,
	`{"is_active":null}`,
}

var bodyRoutes = []bodyRoute{
	{"POST", "/locations", "/locations", "employee", []string{
		`{"session_id":"` + fuzzID + `","latitude":12.9716,"longitude":77.5946,"accuracy":5.5,"recorded_at":"2026-03-01T09:30:00.123Z","sequence_number":1}`,
		`{"session_id":"` + fuzzID + `","latitude":-90,"longitude":180,"accuracy":0,"recorded_at":"2026-03-01T09:30:00+05:30"}`,
		`{"session_id":"` + fuzzID + `","latitude":12.9,"longitude":77.5,"accuracy":5,"recorded_at":"2026-03-01T09:30:00"}`,
		`{"session_id":"` + fuzzID + `","latitude":12.9,"longitude":77.5,"accuracy":5,"recorded_at":"2026-02-30T09:30:00Z"}`,
		`{"session_id":"` + fuzzID + `","latitude":12.9,"longitude":77.5,"accuracy":5,"recorded_at":"2026-03-01T09:30:00Z","sequence_number":2147483648}`,
		`{"session_id":"` + fuzzID + `","latitude":12.9,"longitude":77.5,"accuracy":5,"recorded_at":"2026-03-01T09:30:00Z","sequence_number":1e3}`,
		`{"session_id":"` + strings.ToUpper(fuzzID) + `","latitude":1e-400,"longitude":-0,"accuracy":1e308,"recorded_at":"0000-01-01T00:00:00Z"}`,
		`{"session_id":"{` + fuzzID + `}","latitude":91,"longitude":"77","accuracy":-1,"recorded_at":12}`,
	}},
	{"POST", "/locations/batch", "/locations/batch", "employee", []string{
		`{"session_id":"` + fuzzID + `","points":[{"latitude":12.97,"longitude":77.59,"accuracy":5,"recorded_at":"2026-03-01T09:30:00Z","sequence_number":1},{"latitude":12.98,"longitude":77.6,"accuracy":7,"recorded_at":"2026-03-01T09:30:10Z"}]}`,
		`{"session_id":"` + fuzzID + `","points":[]}`,
		`{"session_id":"` + fuzzID + `","points":[` + strings.Repeat(`{"latitude":1,"longitude":1,"accuracy":1,"recorded_at":"2026-03-01T09:30:00Z"},`, 100) + `{"latitude":1,"longitude":1,"accuracy":1,"recorded_at":"2026-03-01T09:30:00Z"}]}`,
		`{"session_id":"` + fuzzID + `","points":[null]}`,
		`{"session_id":"` + fuzzID + `","points":{"latitude":1}}`,
	}},
	{"POST", "/admin/force-checkout", "/admin/force-checkout", "admin", []string{
		`{"employee_id":"` + fuzzID + `"}`,
		`{"employee_id":"00000000-0000-0000-0000-000000000000"}`,
		`{"employee_id":"urn:uuid:` + fuzzID + `"}`,
		`{"employee_id":123}`,
	}},
	{"POST", "/admin/queues/replay-distance-dlq", "/admin/queues/replay-distance-dlq", "admin", []string{
		`{"limit":100}`, ``, `{}`, `{"limit":500}`, `{"limit":0}`, `{"limit":1.5}`, `{"limit":2147483648}`, `{"limit":null}`,
	}},
	{"POST", "/admin/employees", "/admin/employees", "admin", []string{
		`{"name":"Asha Rao","employee_code":"EMP0042","user_id":"` + fuzzID + `","phone":"+91 98450 12345"}`,
		`{"name":"Ravi","phone":null}`,
		`{"name":"nul\u0000byte"}`,
		`{"name":""}`,
		`{"name":"` + strings.Repeat("é", 200) + `"}`,
		`{"name":"x","employee_code":"","user_id":"not-a-uuid"}`,
	}},
	{"PATCH", "/admin/employees/{id}", "/admin/employees/" + fuzzID, "admin", []string{
		`{"name":"Asha R."}`, `{}`, ``, `{"phone":null}`, `{"name":null}`, `{"phone":"+1 555 0100","name":"B"}`, `{"name":1}`,
	}},
	{"PATCH", "/admin/employees/{id}/status", "/admin/employees/" + fuzzID + "/status", "admin", []string{
		`{"is_active":false}`, `{"is_active":true}`, `{"is_active":"false"}`, `{"is_active":null}`, `{}`,
	}},
	{"POST", "/auth/login", "/auth/login", "", []string{
		`{"email":"asha@example.com","password":"correct horse battery staple"}`,
		`{"email":"a@b","password":""}`,
		`{"email":"  ASHA@EXAMPLE.COM  ","password":"x"}`,
		`{"email":["a@b.c"],"password":"x"}`,
	}},
	{"POST", "/auth/v1/token", "/auth/v1/token?grant_type=password", "", []string{
		`{"email":"asha@example.com","password":"correct horse battery staple"}`,
		`{"email":"","password":""}`,
		``,
	}},
	{"POST", "/auth/v1/token", "/auth/v1/token?grant_type=refresh_token", "", []string{
		`{"refresh_token":"v1.abcdefghijklmnop"}`,
		`{"refresh_token":""}`,
		`{"refresh_token":null}`,
	}},
	{"POST", "/auth/v1/token", "/auth/v1/token?grant_type=pkce", "", []string{
		`{"auth_code":"x","code_verifier":"y"}`,
	}},
	{"POST", "/expenses/receipt-upload-url", "/expenses/receipt-upload-url", "employee", []string{
		`{"extension":"jpg","mimeType":"image/jpeg"}`,
		`{"extension":"pdf"}`,
		`{"extension":"pdf","mimeType":"image/png"}`,
		`{"extension":"png","mimeType":"text/html"}`,
		`{"extension":"exe"}`,
	}},
	{"POST", "/expenses", "/expenses", "employee", []string{
		`{"amount":12.5,"description":"Taxi to the client site","receipt_url":"https://fieldtrack.test/receipts/` + fuzzID + `","idempotency_key":"k-1"}`,
		`{"amount":9999999999.99,"description":"Fleet purchase"}`,
		`{"amount":0.001,"description":"Rounding"}`,
		`{"amount":1E+2,"description":"Exponent"}`,
		`{"amount":"100.00","description":"A string"}`,
		`{"amount":0,"description":"Zero"}`,
		`{"amount":1e-999999,"description":"Tiny"}`,
		`{"amount":12,"description":"Lunch","receipt_url":"http://fieldtrack.test/receipts/` + fuzzID + `"}`,
		`{"amount":12,"description":"Lunch","receipt_url":"javascript:alert(1)"}`,
		`{"amount":12,"description":"Lunch","receipt_url":"https://evil.example/receipts/` + fuzzID + `?x=1"}`,
		`{"amount":12,"description":"Lunch","receipt_url":""}`,
		`{"amount":12,"description":"=HYPERLINK(\"https://evil.example\")"}`,
	}},
	{"PATCH", "/admin/expenses/{id}", "/admin/expenses/" + fuzzID, "admin", []string{
		`{"status":"APPROVED"}`,
		`{"status":"REJECTED","rejection_comment":"No receipt attached"}`,
		`{"status":"REJECTED"}`,
		`{"status":"PENDING"}`,
		`{"status":"approved","rejection_comment":null}`,
	}},
	{"POST", "/admin/webhooks", "/admin/webhooks", "admin", webhookSeeds},
	{"POST", "/webhooks", "/webhooks", "admin", webhookSeeds},
	{"PATCH", "/admin/webhooks/{id}", "/admin/webhooks/" + fuzzID, "admin", webhookUpdateSeeds},
	{"PATCH", "/webhooks/{id}", "/webhooks/" + fuzzID, "admin", webhookUpdateSeeds},
	{"POST", "/admin/api-keys", "/admin/api-keys", "admin", []string{
		`{"name":"billing sync","scopes":["read:employees","read:sessions"]}`,
		`{"name":"all","scopes":["admin:all"]}`,
		`{"name":"mixed","scopes":["admin:all","write:expenses"]}`,
		`{"name":"twice","scopes":["read:sessions","read:sessions"]}`,
		`{"name":"ab","scopes":[]}`,
		`{"name":null,"scopes":["nope"]}`,
	}},
	{"PATCH", "/admin/api-keys/{id}", "/admin/api-keys/" + fuzzID, "admin", []string{
		`{"active":false}`, `{"name":"renamed","scopes":["write:expenses"]}`, `{}`, `{"active":"no"}`,
	}},
	{"PATCH", "/admin/tracking-settings", "/admin/tracking-settings", "admin", []string{
		`{"max_accuracy_m":60}`, `{"stay_min_seconds":180,"max_session_hours":12}`, `{}`, `{"jitter_floor_m":1e308}`,
		`{"max_speed_mps":-0}`,
	}},
}

// nastyBodies are tried on every route.
var nastyBodies = []string{
	``, ` `, `null`, `[]`, `{}`, `"text"`, `1e999`, `{"a":`, `{"a":1}{"b":2}`, `{"a":1} trailing`,
	strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001),
	`{"` + strings.Repeat("k", 1000) + `":"` + strings.Repeat("v", 3000) + `"}`,
	"{\"name\":\"\xff\xfe\"}", `{"name":"\ud800"}`,
}

// keyVariants returns body, a JSON object, with one of its keys repeated in another case, once for each key
// and each of the values null, "" and 1e6. The document's names are case-sensitive; encoding/json's
// matching of keys to fields is not.
func keyVariants(body string) []string {
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(body), &obj) != nil {
		return nil
	}
	var out []string
	for k := range obj {
		for _, v := range []string{`null`, `""`, `1e6`} {
			out = append(out, strings.TrimSuffix(body, "}")+`,"`+strings.ToUpper(k)+`":`+v+"}")
		}
	}
	sort.Strings(out) // a stable seed corpus
	return out
}

func (fs *fuzzServer) token(caller string) string {
	switch caller {
	case "admin":
		return fs.admin
	case "employee":
		return fs.employee
	}
	return ""
}

// FuzzRequestBody sends arbitrary bodies (and Content-Type and Idempotency-Key headers) to every route that
// takes a JSON body, as the right caller. Validation and the handler's decoding must answer a 4xx in the
// error envelope that openapi.yaml lists for the route, or let the request through to the database; never
// another 5xx, never a panic.
func FuzzRequestBody(f *testing.F) {
	keys := make([]string, len(bodyRoutes))
	for i, rt := range bodyRoutes {
		keys[i] = rt.key()
		for _, b := range rt.seeds {
			f.Add(rt.key(), "application/json", "", []byte(b))
		}
		for _, b := range nastyBodies {
			f.Add(rt.key(), "application/json", "", []byte(b))
		}
		for _, b := range keyVariants(rt.seeds[0]) {
			f.Add(rt.key(), "application/json", "", []byte(b))
		}
		f.Add(rt.key(), "text/plain", "", []byte(rt.seeds[0]))
		f.Add(rt.key(), "application/merge-patch+json; charset=utf-8", "", []byte(rt.seeds[0]))
		f.Add(rt.key(), "", "", []byte(rt.seeds[0]))
		if rt.target == "/expenses" { // the Idempotency-Key header, alone and against the field
			f.Add(rt.key(), "application/json", "k-1", []byte(rt.seeds[0]))
			f.Add(rt.key(), "application/json", "k-2", []byte(rt.seeds[0]))
			f.Add(rt.key(), "application/json", strings.Repeat("k", 256), []byte(rt.seeds[1]))
		}
	}
	fs := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, route, contentType, idempotencyKey string, body []byte) {
		rt := bodyRoutes[pick(route, keys)]
		header := http.Header{}
		if contentType != "" {
			header.Set("Content-Type", contentType)
		}
		if idempotencyKey != "" {
			header.Set("Idempotency-Key", idempotencyKey)
		}
		if token := fs.token(rt.caller); token != "" {
			header.Set("Authorization", "Bearer "+token)
		}
		r, ok := fuzzRequest(rt.method, rt.target, body, header)
		if !ok {
			return
		}
		fs.serve(t, r)
	})
}

// TestFuzzRequestBody_CoversEveryOperationWithABody keeps the fuzz target complete: every operation of
// openapi.yaml with a request body is in bodyRoutes, and the first seed of each gets through validation,
// authentication and decoding (so the route, caller and seed are right).
func TestFuzzRequestBody_CoversEveryOperationWithABody(t *testing.T) {
	t.Parallel()
	fs := newFuzzServer(t)
	covered := map[string]bool{}
	for _, rt := range bodyRoutes {
		covered[rt.method+" "+rt.pattern] = true
		header := http.Header{"Content-Type": {"application/json"}}
		if token := fs.token(rt.caller); token != "" {
			header.Set("Authorization", "Bearer "+token)
		}
		r, _ := fuzzRequest(rt.method, rt.target, []byte(rt.seeds[0]), header)
		if res := fs.serve(t, r); !reachedDatabase(res) && rt.target != "/auth/v1/token?grant_type=pkce" {
			t.Errorf("%s %s: the first seed answered %d %s, want it to reach the database", rt.method, rt.target,
				res.Status, res.Raw)
		}
	}
	for path, item := range fs.server.spec.doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody != nil && !covered[method+" "+path] {
				t.Errorf("%s %s takes a body but is not in bodyRoutes", method, path)
			}
		}
	}
}

// TestDecodeBody_FillsFieldsOnlyFromExactNames: a key that names a field in another case is ignored, as
// unknown keys are, at any depth, so a body decodes to what the document validated (FuzzRequestBody
// found {"url": "…", "URL": null} to reach createWebhook with a nil URL).
func TestDecodeBody_FillsFieldsOnlyFromExactNames(t *testing.T) {
	t.Parallel()
	decode := func(body string, dst any) {
		t.Helper()
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		if err := decodeBody(r, dst); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
	}
	var hook webhookBody
	decode(`{"url":"https://hooks.example.com/x","URL":null,"Secret":"s","events":["a"],"EVENTS":[]}`, &hook)
	if hook.URL == nil || *hook.URL != "https://hooks.example.com/x" || hook.Secret != nil || len(hook.Events) != 1 {
		t.Fatalf("webhook body decoded to %+v", hook)
	}
	var fix singlePointBody // the fields of the embedded point, too
	decode(`{"latitude":12.5,"LATITUDE":1000,"sequence_number":3,"Sequence_Number":-1,"recorded_at":"2026-03-01T09:30:00Z"}`, &fix)
	if fix.Latitude != 12.5 || fix.SequenceNumber == nil || *fix.SequenceNumber != 3 || fix.RecordedAt.IsZero() {
		t.Fatalf("fix decoded to %+v", fix)
	}
	var batch batchBody // and the objects of an array
	decode(`{"points":[{"latitude":1,"Latitude":2,"longitude":3}]}`, &batch)
	if len(batch.Points) != 1 || batch.Points[0].Latitude != 1 || batch.Points[0].Longitude != 3 {
		t.Fatalf("batch decoded to %+v", batch)
	}
	var amount expenseBody // numbers keep their digits
	decode(`{"amount":12.10,"AMOUNT":"99999999999999.99","description":"Taxi"}`, &amount)
	if amount.Amount != "12.10" || amount.Description != "Taxi" {
		t.Fatalf("expense decoded to %+v", amount)
	}
	var update map[string]json.RawMessage // a map keeps every key: the handler looks names up exactly
	decode(`{"name":"A","NAME":null}`, &update)
	if string(update["name"]) != `"A"` || len(update) != 2 {
		t.Fatalf("update decoded to %v", update)
	}
}
