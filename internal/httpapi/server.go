// Package httpapi is the HTTP edge: the route table, middleware, validation against the OpenAPI document,
// the response envelope and the one mapping from errors to statuses. Handlers reach Postgres only through
// db.InTx, under the caller's claims.
package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/config"
	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/events"
	"github.com/fieldtrack/fieldtrack/internal/telemetry"
)

// Server holds what handlers share. It is built once by New.
type Server struct {
	cfg        config.Config
	pool       *pgxpool.Pool
	q          *db.Queries
	verifier   *auth.Verifier
	log        *slog.Logger
	spec       *spec
	configHash string
	metrics    *telemetry.Metrics
	limiter    *rateLimiter     // nil when RATE_LIMIT_DISABLED
	hub        *events.Hub      // nil: no event stream in this process
	listener   *events.Listener // nil: this process does not consume the outbox
}

// WithEvents attaches the event hub (for /admin/events) and the listener (for the operations endpoints).
func (s *Server) WithEvents(hub *events.Hub, listener *events.Listener) *Server {
	s.hub, s.listener = hub, listener
	return s
}

// New builds the server; it fails when the embedded OpenAPI document does not load.
func New(cfg config.Config, pool *pgxpool.Pool, verifier *auth.Verifier, log *slog.Logger) (*Server, error) {
	sp, err := loadSpec()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, pool: pool, q: db.New(), verifier: verifier, log: log, spec: sp,
		configHash: configHash(cfg), metrics: telemetry.New()}
	if !cfg.RateLimitDisabled {
		s.limiter = newRateLimiter(cfg)
	}
	return s, nil
}

// Metrics is the server's registry, for other components to add their instruments to.
func (s *Server) Metrics() *telemetry.Metrics { return s.metrics }

// access says who may call a route.
type access int

const (
	public       access = iota // no authentication
	anyUser                    // any authenticated caller
	adminOnly                  // role ADMIN
	employeeOnly               // role EMPLOYEE
)

// handle registers one route: authentication and the role guard (401/403 first, as the original), the
// rate limits (429), then validation against the OpenAPI operation of the same method and pattern, then
// the handler.
func (s *Server) handle(r chi.Router, method, pattern string, who access, h handlerFunc) {
	route := s.spec.operation(method, pattern)
	r.Method(method, pattern, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if who != public {
			id, err := s.authenticate(req)
			if err != nil {
				s.writeError(w, req, err)
				return
			}
			infoOf(req.Context()).identity = &id
			if err := guard(id, who); err != nil {
				s.writeError(w, req, err)
				return
			}
			if s.limiter != nil {
				if ok, wait := s.limiter.allow(id, method+" "+pattern); !ok {
					s.writeError(w, req, errRateLimited(wait))
					return
				}
			}
		}
		if err := s.spec.validate(req, route); err != nil {
			s.writeError(w, req, err)
			return
		}
		if err := h(w, req); err != nil {
			s.writeError(w, req, err)
		}
	}))
}

func guard(id auth.Identity, who access) error {
	switch {
	case who == adminOnly && id.Role != auth.RoleAdmin:
		return errForbidden("This action requires ADMIN role")
	case who == employeeOnly && id.Role != auth.RoleEmployee:
		return errForbidden("This action requires EMPLOYEE role")
	}
	return nil
}

// tx runs fn in a transaction under the caller's claims; GET and HEAD run READ ONLY.
func (s *Server) tx(r *http.Request, fn func(pgx.Tx) error) error {
	return s.inTx(r, false, fn)
}

// txOne is tx for a fn that runs exactly one statement: BEGIN, the claims, the statement and COMMIT
// travel together, one round trip (the hot write paths: GPS ingest, check-in).
func (s *Server) txOne(r *http.Request, fn func(pgx.Tx) error) error {
	return s.inTx(r, true, fn)
}

func (s *Server) inTx(r *http.Request, single bool, fn func(pgx.Tx) error) error {
	id := identityOf(r)
	claims := db.Claims{OrgID: id.OrgID, Role: string(id.Role), EmployeeID: id.EmployeeID, JWT: id.Claims}
	if id.AuthType == auth.AuthTypeJWT {
		claims.UserID.UUID, claims.UserID.Valid = id.UserID, true
	}
	opts := db.TxOptions{
		ReadOnly:         r.Method == http.MethodGet || r.Method == http.MethodHead,
		StatementTimeout: s.cfg.StatementTimeout,
		AcquireTimeout:   s.cfg.DBAcquireTimeout,
		SingleStatement:  single,
	}
	return db.InTx(r.Context(), s.pool, claims, opts, fn)
}
