package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/config"
	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/telemetry"
)

// root names the service and the build it runs.
func (s *Server) root(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{
		"service": "FieldTrack 2.0", "status": "online", "version": telemetry.Version(), "docs": "/docs",
	})
	return nil
}

// health is the liveness probe: it answers while the process can serve, without touching the database.
func (s *Server) health(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{
		"status": "ok", "timestamp": time.Now().UTC().Format(time.RFC3339Nano), "config_hash": s.configHash,
	})
	return nil
}

// ready is the readiness probe: 200 when a transaction as the API role works, 503 otherwise.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) error {
	_, err := db.Do(r.Context(), s.pool, db.Claims{}, s.txOptions(r, true), func(tx db.DBTX) (int32, error) {
		return s.q.Ping(r.Context(), tx)
	})
	status, database, code := "ready", "ok", http.StatusOK
	if err != nil {
		s.log.WarnContext(r.Context(), "readiness check failed", "error", err.Error())
		status, database, code = "not_ready", "error", http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{
		"status": status, "timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"checks": map[string]string{"database": database},
	})
	return nil
}

// metricsEndpoint serves Prometheus metrics; with METRICS_SCRAPE_TOKEN set (required in production) it
// answers only `Authorization: Bearer <token>`, and 401 to anything else.
func (s *Server) metricsEndpoint(w http.ResponseWriter, r *http.Request) error {
	if want := s.cfg.MetricsScrapeToken; want != "" && !bearerIs(r.Header.Get("Authorization"), want) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
		return &Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Message: "A valid scrape token is required"}
	}
	s.metrics.Handler().ServeHTTP(w, r)
	return nil
}

// bearerIs reports whether the Authorization header is the Bearer scheme with exactly token. It compares
// digests in constant time, so neither the token's bytes nor its length show in the answer's timing.
func bearerIs(header, token string) bool {
	scheme, got, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	a, b := sha256.Sum256([]byte(strings.TrimSpace(got))), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.spec.json)
	return nil
}

// configHash fingerprints the non-secret configuration so operators can tell replicas apart.
func configHash(c config.Config) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s|%d|%s|%s|%s|%v|%d|%s|%s|%d",
		c.AppEnv, c.Port, c.JWKSURL, c.JWTIssuer, c.JWTAudience, c.CORSOrigins, c.BodyLimitBytes,
		c.RequestTimeout, c.StatementTimeout, c.DBMaxConns)))
	return hex.EncodeToString(sum[:])[:12]
}
