package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/config"
	"github.com/fieldtrack/fieldtrack/internal/identity"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// harness is the real router on a loopback server, backed by the real database.
type harness struct {
	t      *testing.T
	server *Server
	mux    *chi.Mux
	url    string
}

func testConfig() config.Config {
	return config.Config{
		AppEnv:           "test",
		JWTSecret:        []byte(testfactory.Secret),
		JWTAudience:      "authenticated",
		BodyLimitBytes:   1_000_000,
		RequestTimeout:   15 * time.Second,
		StatementTimeout: 10 * time.Second,
		DBAcquireTimeout: 5 * time.Second,
		CORSOrigins:      []string{"http://dashboard.test"},
		// Tests upload faster than a phone; the limits have their own test.
		RateLimitDisabled:        true,
		AuthAccessTokenTTL:       15 * time.Minute,
		AuthRefreshTokenTTL:      time.Hour,
		AuthRefreshReuseGrace:    10 * time.Second,
		RateLimitLoginPerAccount: 10,
		RateLimitLoginPerIP:      30,
		RateLimitAPIKeyPerMinute: 600,
		RateLimitIPPerMinute:     6000,
		RateLimitProcesses:       1,
		TrustedProxies:           []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		SSEHeartbeat:             15 * time.Second,
	}
}

func setup(t *testing.T) *harness {
	t.Helper()
	return setupWith(t, testConfig(), testfactory.Pool(t))
}

func setupWith(t *testing.T, cfg config.Config, pool *pgxpool.Pool) *harness {
	t.Helper()
	return setupWithLog(t, cfg, pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// setupWithLog is setupWith with the server's logger.
func setupWithLog(t *testing.T, cfg config.Config, pool *pgxpool.Pool, log *slog.Logger) *harness {
	t.Helper()
	if cfg.ReceiptsDir == "" {
		cfg.ReceiptsDir = t.TempDir()
	}
	if cfg.ReceiptURLTTL == 0 {
		cfg.ReceiptURLTTL = time.Hour
	}
	keys := identity.NewKeyRing(pool, cfg.AuthAccessTokenTTL, log)
	lctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	_ = keys.Load(lctx) // fails with the database down or the pool held, as a server's would at start
	cancel()
	verifier, err := auth.NewVerifier(auth.Config{Secret: cfg.JWTSecret, JWKSURL: cfg.JWKSURL, Audience: cfg.JWTAudience,
		Local: keys, LocalIssuer: cfg.LocalIssuer()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, pool, verifier, identity.New(pool, keys, identity.FromConfig(cfg)), log)
	if err != nil {
		t.Fatal(err)
	}
	mux := s.Handler().(*chi.Mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return &harness{t: t, server: s, mux: mux, url: ts.URL}
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

// data returns body.data as an object.
func (r response) data() map[string]any {
	m, _ := r.Body["data"].(map[string]any)
	return m
}

// list returns body.data as a list of objects.
func (r response) list() []map[string]any {
	raw, _ := r.Body["data"].([]any)
	out := make([]map[string]any, len(raw))
	for i, v := range raw {
		out[i], _ = v.(map[string]any)
	}
	return out
}

func (r response) total() int {
	p, _ := r.Body["pagination"].(map[string]any)
	f, _ := p["total"].(float64)
	return int(f)
}

// call sends a request with an optional bearer token and JSON body (a string is sent as is), and checks
// every answer of a known route against the OpenAPI document.
func (h *harness) call(method, path, token string, body any, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	out := response{Status: res.StatusCode, Header: res.Header, Raw: raw}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			h.t.Fatalf("%s %s: invalid JSON %q: %v", method, path, raw, err)
		}
	}
	h.checkAgainstSpec(req, out)
	return out
}

// checkAgainstSpec validates every answer of a route against the OpenAPI document: a status the document
// does not list for the operation fails the test, and so does a body that does not match its schema, so
// the document and the server cannot drift apart. Unknown routes (404 from the router) have no operation.
func (h *harness) checkAgainstSpec(req *http.Request, res response) {
	h.t.Helper()
	rctx := chi.NewRouteContext()
	if !h.mux.Match(rctx, req.Method, req.URL.Path) {
		return
	}
	route := h.server.spec.operation(req.Method, rctx.RoutePattern())
	specCoverage.record(req.Method, rctx.RoutePattern(), res.Status)
	if route.Operation.Responses.Status(res.Status) == nil {
		h.t.Errorf("%s %s -> %d: openapi.yaml lists no %d answer for %s %s\nbody: %s",
			req.Method, req.URL.Path, res.Status, res.Status, req.Method, rctx.RoutePattern(), res.Raw)
		return
	}
	params := map[string]string{}
	for i, k := range rctx.URLParams.Keys {
		params[k] = rctx.URLParams.Values[i]
	}
	opts := &openapi3filter.Options{SchemaValidationOptions: h.server.spec.options.SchemaValidationOptions}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); (len(res.Raw) > 0 || mt == "text/event-stream") &&
		mt != "application/json" {
		// A file (CSV, a receipt) or a stream (not read): its type must be one the document lists; its bytes
		// have no schema.
		if route.Operation.Responses.Status(res.Status).Value.Content.Get(mt) == nil {
			h.t.Errorf("%s %s -> %d answered %s, which openapi.yaml does not list", req.Method, req.URL.Path, res.Status, mt)
		}
		opts.ExcludeResponseBody = true
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 res.Status,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(res.Raw)),
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		h.t.Errorf("%s %s -> %d does not match openapi.yaml: %v\nbody: %s", req.Method, req.URL.Path, res.Status, err, res.Raw)
	}
}

// expect fails the test unless the status is want; it prints the body to explain.
func expect(t *testing.T, r response, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %d, want %d; body %s", r.Status, want, r.Raw)
	}
}

// expectError checks an error envelope: status, code, message and the request id.
func expectError(t *testing.T, r response, status int, code, message string) {
	t.Helper()
	expect(t, r, status)
	if r.Body["success"] != false || r.Body["code"] != code || (message != "" && r.Body["error"] != message) {
		t.Fatalf("error envelope %s, want code %q message %q", r.Raw, code, message)
	}
	if id, _ := r.Body["requestId"].(string); id == "" || id != r.Header.Get("X-Request-Id") {
		t.Fatalf("requestId %q does not match header %q", id, r.Header.Get("X-Request-Id"))
	}
}
