// Package httpapi is the HTTP edge: the route table, middleware, validation against the OpenAPI document,
// the response envelope and the one mapping from errors to statuses. Handlers reach Postgres only through
// db.InTx, under the caller's claims.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/config"
	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/events"
	"github.com/fieldtrack/fieldtrack/internal/identity"
	"github.com/fieldtrack/fieldtrack/internal/receipt"
	"github.com/fieldtrack/fieldtrack/internal/telemetry"
	"github.com/fieldtrack/fieldtrack/internal/webhook"
)

// Server holds what handlers share. It is built once by New.
type Server struct {
	cfg        config.Config
	pool       *pgxpool.Pool
	q          *db.Queries
	verifier   *auth.Verifier
	log        *slog.Logger
	spec       *spec
	gps        *gpsBodies // the GPS bodies' compiled validation; nil: kin-openapi validates them too
	configHash string
	metrics    *telemetry.Metrics
	limiter    *rateLimiter // nil when RATE_LIMIT_DISABLED
	keys       *keyring
	orgs       orgCounters  // what this process did for each organization (/internal/metrics)
	tracer     trace.Tracer // nil: tracing off
	started    time.Time
	identity   *identity.Service
	receipts   receipt.Store
	exports    chan struct{} // a slot per CSV export running
	streamKey  streamKey     // makes SSE ids opaque
	// the event streams' caller checks: one per caller at a time, a few at once
	streamChecks *streamChecks
	bg           Background
}

// Background is what runs beside the HTTP server in this process; a nil part does not run here. The event
// stream needs the Hub; the operations endpoints report on every part.
type Background struct {
	Notifier *events.Notifier
	Hub      *events.Hub
	Listener *events.Listener
	Webhooks *webhook.Worker
	Janitor  *receipt.Janitor
}

// WithBackground tells the server what runs beside it.
func (s *Server) WithBackground(bg Background) *Server {
	s.bg = bg
	return s
}

// New builds the server; it fails when the embedded OpenAPI document does not load. It counts the
// identity service's attempts in the server's metrics, and reads the key of the SSE ids (the same for
// every process) when the database answers within streamKeyTimeout; otherwise the first stream does.
func New(cfg config.Config, pool *pgxpool.Pool, verifier *auth.Verifier, ids *identity.Service, log *slog.Logger) (*Server, error) {
	sp, err := loadSpec()
	if err != nil {
		return nil, err
	}
	store, err := receipt.NewDisk(cfg.ReceiptsDir)
	if err != nil {
		return nil, err
	}
	// Every line logged with a request's context names its trace and span ids.
	log = slog.New(telemetry.TraceLogHandler(log.Handler()))
	s := &Server{cfg: cfg, pool: pool, q: db.New(), verifier: verifier, identity: ids, log: log, spec: sp,
		configHash: configHash(cfg), metrics: telemetry.New(), receipts: store,
		exports: make(chan struct{}, max(1, int(cfg.DBMaxConns)/4)), streamChecks: newStreamChecks()}
	if s.gps, err = compileGPSBodies(sp.doc, sp.formats); err != nil {
		log.Warn("GPS bodies validated by kin-openapi only", "error", err.Error())
	}
	s.keys = newKeyring(s)
	s.started = time.Now()
	if !cfg.RateLimitDisabled {
		s.limiter = newRateLimiter(cfg)
	}
	ids.Metrics = func(kind, outcome string) { s.metrics.AuthAttempts.WithLabelValues(kind, outcome).Inc() }
	ctx, cancel := context.WithTimeout(context.Background(), streamKeyTimeout)
	defer cancel()
	if _, err := s.loadStreamKey(ctx); err != nil { // the database may be down: the first stream retries
		log.Warn("stream key not loaded yet", "error", err.Error())
	}
	return s, nil
}

// WithTracerProvider turns tracing on: each request gets a server span made with tp (serve passes the
// provider the OTEL_* variables configure; tests an in-memory one). Without it requests are not traced
// and cost nothing for it.
func (s *Server) WithTracerProvider(tp trace.TracerProvider) *Server {
	s.tracer = tp.Tracer("github.com/fieldtrack/fieldtrack/internal/httpapi")
	return s
}

// Receipts is where receipt files are stored (the janitor removes what was never attached).
func (s *Server) Receipts() receipt.Store { return s.receipts }

// Metrics is the server's registry, for other components to add their instruments to.
func (s *Server) Metrics() *telemetry.Metrics { return s.metrics }

// access says who may call a route.
type access int

const (
	public       access = iota // no authentication
	anyUser                    // any authenticated caller
	adminOnly                  // role ADMIN (a user's JWT, or an API key with the route's scope)
	adminUser                  // role ADMIN with a user's JWT: API keys cannot (keys never manage keys)
	employeeOnly               // role EMPLOYEE
)

// handle registers one route. A request goes through: the client address's rate limit (before anything
// else, so floods of bad credentials are cut too), then for a non-public route admit (who the caller is,
// whether it may call the route, its rate limits), then validation against the OpenAPI operation of the
// same method and pattern, then the handler.
func (s *Server) handle(r chi.Router, method, pattern string, who access, h handlerFunc) {
	route := s.spec.operation(method, pattern)
	fast := s.gpsFast(method, pattern)
	scope := routeScope(method, pattern)
	r.Method(method, pattern, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if s.limiter != nil && !probe(pattern) {
			d := s.limiter.allowAddr(s.clientKey(req))
			d.setHeaders(w.Header()) // the caller's limits may name a tighter bucket
			if !d.ok {
				s.writeError(w, req, errRateLimited(d))
				return
			}
		}
		if who != public {
			if err := s.admit(w, req, who, scope, method+" "+pattern); err != nil {
				s.writeError(w, req, err)
				return
			}
		}
		body, err := s.spec.check(req, route, fast)
		if err != nil {
			s.writeError(w, req, err)
			return
		}
		if body != nil {
			infoOf(req.Context()).body = body
		}
		if err := h(w, req); err != nil {
			if identityOf(req).AuthType == auth.AuthTypeAPIKey && refusedKey(toError(err)) {
				s.keys.forget(req.Header.Get("X-API-Key")) // Postgres knows better than the cache
			}
			s.writeError(w, req, err)
		}
	}))
}

// admit authenticates the caller (401) and records it for the request, checks an API key's scope and
// then the route's role guard (403, in the original's order), and takes the caller's rate limits (429).
// A key's scope is checked again in Postgres, in the request's transaction (info.scope).
func (s *Server) admit(w http.ResponseWriter, req *http.Request, who access, scope, route string) error {
	id, err := s.authenticate(req)
	if err != nil {
		return err
	}
	info := infoOf(req.Context())
	info.identity = &id
	if id.AuthType == auth.AuthTypeAPIKey {
		if !hasScope(id.Scopes, scope) { // the cache may be behind a scope granted since
			if id, err = s.keys.authenticate(req.Context(), req.Header.Get("X-API-Key"), true); err != nil {
				return err
			}
			info.identity = &id
		}
		if !hasScope(id.Scopes, scope) {
			return errMissingScope(scope)
		}
		info.scope = scope
	}
	if err := guard(id, who); err != nil {
		return err
	}
	if s.limiter != nil {
		d := s.limiter.allow(id, route)
		d.setHeaders(w.Header())
		if !d.ok {
			return errRateLimited(d)
		}
	}
	return nil
}

// refusedKey tells app.check_caller's refusals of a key (revoked, or without the route's scope now).
func refusedKey(e *Error) bool {
	return e.Code == auth.CodeInvalidAPIKey || strings.HasPrefix(e.Message, missingScope)
}

// probe tells the health probes, which no limit applies to.
func probe(pattern string) bool { return pattern == "/health" || pattern == "/ready" }

func guard(id auth.Identity, who access) error {
	switch {
	case (who == adminOnly || who == adminUser) && id.Role != auth.RoleAdmin:
		return errForbidden("This action requires ADMIN role")
	case who == employeeOnly && id.Role != auth.RoleEmployee:
		return errForbidden("This action requires EMPLOYEE role")
	case who == adminUser && id.AuthType != auth.AuthTypeJWT:
		return &Error{Status: http.StatusForbidden, Code: "JWT_REQUIRED", Message: "This endpoint requires JWT user authentication"}
	}
	return nil
}
