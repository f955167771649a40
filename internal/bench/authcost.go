package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/auth"
)

// The auth section: what authentication and the rate limits cost a request. The same server answers
// four GETs, each for Seconds with Concurrency workers after a warm-up:
//   - U0 GET /health: no authentication, no database (the HTTP floor);
//   - U1 GET /ready: no authentication, one database transaction (BEGIN, the settings, SELECT 1, COMMIT);
//   - J  GET /auth/me with a JWT: verification (cached), the limits, and the transaction with the caller
//     check (app.check_caller);
//   - K  GET /auth/me with an API key: the key's cache, the limits (one bucket more), and the transaction
//     with the caller check, which looks at the key too.
//
// J and K against U1 is the price of knowing the caller on a route that reaches Postgres anyway.

// authPhase is one GET of the auth section with its headers.
func authPhase(hc *http.Client, id, base, route string, headers ...string) phase {
	url := base + route
	return phase{id: id, path: "`GET " + route + "`", api: true, batch: 1,
		newWorker: func(int) work {
			return func(ctx context.Context) (int, bool, error) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if err != nil {
					return 0, false, err
				}
				for i := 0; i+1 < len(headers); i += 2 {
					req.Header.Set(headers[i], headers[i+1])
				}
				resp, err := hc.Do(req)
				if err != nil {
					return 0, false, err
				}
				b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
				resp.Body.Close()
				if err != nil {
					return 0, false, err
				}
				if resp.StatusCode != http.StatusOK {
					return 0, false, httpError(resp.StatusCode, b)
				}
				return 1, false, nil
			}
		}}
}

type authReport struct {
	cfg    Config
	phases []measured
}

func runAuth(ctx context.Context, cfg Config, admin *pgxpool.Pool, hc *http.Client, logf func(string, ...any)) (authReport, error) {
	rep := authReport{cfg: cfg}
	org, adminID := uuid.New(), uuid.New()
	text, key := auth.NewAPIKey()
	err := pgx.BeginFunc(ctx, admin, func(tx pgx.Tx) error {
		for _, s := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO organizations (id, name) VALUES ($1, 'Auth benchmark')`, []any{org}},
			{`INSERT INTO users (organization_id, id, email, role) VALUES ($1, $2, $3, 'ADMIN')`,
				[]any{org, adminID, "auth-admin-" + adminID.String() + "@example.test"}},
			{`INSERT INTO api_keys (organization_id, name, key_hash, key_prefix, key_last4, scopes)
			  VALUES ($1, 'bench', $2, $3, $4, '{admin:all}')`, []any{org, key.Hash[:], key.Prefix, key.Last4}},
		} {
			if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
				return fmt.Errorf("auth fixtures: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	tok, err := cfg.mint(auth.MintOptions{Subject: adminID.String(), Role: auth.RoleAdmin, OrgID: org})
	if err != nil {
		return rep, err
	}
	base := cfg.ServerURL
	for _, p := range []phase{
		authPhase(hc, "U0", base, "/health"),
		authPhase(hc, "U1", base, "/ready"),
		authPhase(hc, "J", base, "/auth/me", "Authorization", "Bearer "+tok),
		authPhase(hc, "K", base, "/auth/me", "X-API-Key", text),
	} {
		logf("auth: phase %s %s (warm-up %s, %s)", p.id, p.path, cfg.Warmup, cfg.Phase)
		run(ctx, p, cfg.Concurrency, cfg.Warmup)
		rep.phases = append(rep.phases, measured{phase: p, result: run(ctx, p, cfg.Concurrency, cfg.Phase)})
	}
	return rep, nil
}

func (r authReport) write(w io.Writer) {
	fmt.Fprintf(w, "## Authentication and rate limits\n\n")
	fmt.Fprintf(w, "%d workers, %s per phase; the server's rate limits are on (set high enough never to refuse).\n\n",
		r.cfg.Concurrency, r.cfg.Phase)
	fmt.Fprintf(w, "| phase | request | req/s | p50 ms | p99 ms | errors |\n|---|---|---:|---:|---:|---:|\n")
	for _, p := range r.phases {
		fmt.Fprintf(w, "| %s | %s | %.0f | %s | %s | %d |\n", p.id, p.path, p.perSecond(p.ops),
			millis(percentile(p.latencies, 0.5)), millis(percentile(p.latencies, 0.99)), p.errors)
	}
	if len(r.phases) == 4 {
		u0, u1, j, k := r.phases[0], r.phases[1], r.phases[2], r.phases[3]
		ratio := func(a, b measured) float64 { return a.perSecond(a.ops) / max(b.perSecond(b.ops), 1e-9) }
		added := func(a, b measured) time.Duration {
			return percentile(a.latencies, 0.5) - percentile(b.latencies, 0.5)
		}
		fmt.Fprintf(w, "\nJWT: %.2f of the unauthenticated transaction's rate (U1), %.2f of the HTTP floor (U0), "+
			"+%s ms p50 over U1. API key: %.2f of U1, %.2f of U0, +%s ms p50 over U1.\n",
			ratio(j, u1), ratio(j, u0), millis(added(j, u1)), ratio(k, u1), ratio(k, u0), millis(added(k, u1)))
	}
}

func (r authReport) failure() error {
	for _, p := range r.phases {
		if p.ops > 0 && float64(p.errors) > maxErrorShare*float64(p.ops) {
			return fmt.Errorf("auth %s: %d of %d requests failed (%s)", p.id, p.errors, p.ops, p.firstErr)
		}
	}
	return nil
}
