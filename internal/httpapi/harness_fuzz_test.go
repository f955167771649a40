package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/identity"
)

// The fuzz targets run the real route table (authentication, validation against openapi.yaml, the
// handlers) with no database behind it: every connection attempt fails at once. A request that gets
// through a handler's reading of its parameters and body reaches its first statement and is answered
// 503 SERVICE_UNAVAILABLE ("Database unavailable"); anything else it may answer is a 4xx. So the fuzz
// targets need no Postgres and run anywhere `go test` does.

// errNoDatabase is what every connection attempt of the fuzz server's pool fails with.
var errNoDatabase = errors.New("fuzzing: there is no database")

// fuzzServer is a Server over a pool that cannot connect, with tokens of both roles.
type fuzzServer struct {
	server   *Server
	mux      *chi.Mux
	log      *syncBuffer // errors and panics of the current input
	admin    string      // bearer token of an ADMIN
	employee string      // bearer token of an EMPLOYEE
}

func newFuzzServer(tb testing.TB) *fuzzServer {
	tb.Helper()
	cfg := testConfig()
	cfg.ReceiptsDir = tb.TempDir()
	cfg.ReceiptURLTTL = time.Hour
	pcfg, err := pgxpool.ParseConfig("postgres://fuzz@127.0.0.1:5432/fuzz?sslmode=disable")
	if err != nil {
		tb.Fatal(err)
	}
	pcfg.ConnConfig.DialFunc = func(context.Context, string, string) (net.Conn, error) { return nil, errNoDatabase }
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	buf := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelError}))
	keys := identity.NewKeyRing(pool, cfg.AuthAccessTokenTTL, log) // never loaded: logins answer 503
	verifier, err := auth.NewVerifier(auth.Config{Secret: cfg.JWTSecret, Audience: cfg.JWTAudience, Local: keys,
		LocalIssuer: cfg.LocalIssuer()})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(cfg, pool, verifier, identity.New(pool, keys, identity.FromConfig(cfg)), log)
	if err != nil {
		tb.Fatal(err)
	}
	org := uuid.New()
	mint := func(o auth.MintOptions) string {
		o.OrgID, o.TTL = org, 30*24*time.Hour // long fuzz runs must not see the tokens expire
		token, err := auth.Mint(cfg.JWTSecret, o)
		if err != nil {
			tb.Fatal(err)
		}
		return token
	}
	return &fuzzServer{server: s, mux: s.Handler().(*chi.Mux), log: buf,
		admin:    mint(auth.MintOptions{Role: auth.RoleAdmin}),
		employee: mint(auth.MintOptions{Role: auth.RoleEmployee, EmployeeID: uuid.NullUUID{UUID: uuid.New(), Valid: true}}),
	}
}

// fuzzRequest is one request of a fuzz input; ok is false for a request no HTTP server would hand to a
// handler (a target or header value that does not parse), which the input then skips.
func fuzzRequest(method, target string, body []byte, header http.Header) (*http.Request, bool) {
	if strings.ContainsAny(target, " \t\r\n\x00") {
		return nil, false
	}
	for _, vs := range header {
		for i, v := range vs {
			if !validHeaderValue(v) {
				return nil, false
			}
			vs[i] = strings.Trim(v, " \t") // as the server reads it
		}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequest(method, "http://fieldtrack.test"+target, rd)
	if err != nil {
		return nil, false
	}
	if r.Body == nil {
		r.Body = http.NoBody // as a server's request always has one
	}
	r.RemoteAddr = "192.0.2.1:1234"
	r.RequestURI = target
	for k, vs := range header {
		r.Header[k] = vs
	}
	return r, true
}

// validHeaderValue is net/http's rule for a field value: no control characters but tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// serve answers r through the route table and fails the input on any 5xx that is not the missing
// database (a panic, an unmapped error), on an answer that is not the JSON error envelope, and on an
// answer openapi.yaml does not list for the route.
func (fs *fuzzServer) serve(t *testing.T, r *http.Request) response {
	t.Helper()
	fs.log.Reset()
	rec := httptest.NewRecorder()
	fs.mux.ServeHTTP(rec, r)
	res := response{Status: rec.Code, Header: rec.Header(), Raw: rec.Body.Bytes()}
	_ = json.Unmarshal(res.Raw, &res.Body)
	if res.Status >= 500 && !reachedDatabase(res) {
		t.Fatalf("%s %s -> %d %s\nlog:\n%s", r.Method, r.URL.RequestURI(), res.Status, res.Raw, fs.log.String())
	}
	if res.Status >= 400 && res.Body == nil {
		t.Fatalf("%s %s -> %d answered no JSON: %q", r.Method, r.URL.RequestURI(), res.Status, res.Raw)
	}
	if !reachedDatabase(res) {
		h := &harness{t: t, server: fs.server, mux: fs.mux}
		h.checkAgainstSpec(r, res)
	}
	return res
}

// reachedDatabase reports that the handler got as far as its first statement (or, for sign-in, to the
// signing keys a server loads from the database): what the fuzz server answers for every request that
// passed validation and decoding.
func reachedDatabase(res response) bool {
	if res.Status != http.StatusServiceUnavailable {
		return false
	}
	code, _ := res.Body["code"].(string)
	return code == "SERVICE_UNAVAILABLE" || code == "unexpected_failure"
}

// pick is the index of key in keys or, for a key that names none (a mutated one), an index its hash
// chooses. Inputs name their route, so corpus files keep meaning the same route when routes are added.
func pick(key string, keys []string) int {
	if i := slices.Index(keys, key); i >= 0 {
		return i
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(len(keys)))
}

// syncBuffer is a bytes.Buffer the server's logger may write to from any goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
