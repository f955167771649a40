package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// handlerFunc is an endpoint: it writes a success itself and returns any failure for writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// writeJSON writes v with status. Encoding errors are not reported: the status line is already out.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// respond writes {"success":true,"data":data}.
func respond(w http.ResponseWriter, status int, data any) error {
	writeJSON(w, status, struct {
		Success bool `json:"success"`
		Data    any  `json:"data"`
	}{true, data})
	return nil
}

// respondPage writes a list with its pagination block; total is exact.
func respondPage(w http.ResponseWriter, data any, p page, total int64) error {
	totalPages := int64(0)
	if p.Limit > 0 {
		totalPages = (total + int64(p.Limit) - 1) / int64(p.Limit)
	}
	writeJSON(w, http.StatusOK, struct {
		Success    bool `json:"success"`
		Data       any  `json:"data"`
		Pagination any  `json:"pagination"`
	}{true, data, map[string]int64{
		"page": int64(p.Page), "limit": int64(p.Limit), "total": total, "totalPages": totalPages,
	}})
	return nil
}

// writeError writes the error envelope for err; 5xx are logged with the cause.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toError(err)
	info := infoOf(r.Context())
	if e.Status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "request_id", info.id, "error", err.Error())
	}
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusUnauthorized, http.StatusForbidden:
		s.noteAbuse(r, e)
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) && len(pg.Code) >= 2 {
		s.metrics.DBErrors.WithLabelValues(pg.Code[:2]).Inc()
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	body := map[string]any{"success": false, "error": e.Message, "code": e.Code, "requestId": info.id}
	if e.Details != nil {
		body["details"] = e.Details
	}
	writeJSON(w, e.Status, body)
}

// authRoute tells the routes whose refusals look like password guessing (the original's pattern).
var authRoute = regexp.MustCompile(`(?i)/auth/|/login|/sign-?in|/token`)

// noteAbuse logs and counts a 429, 401 or 403: the client's address, the route and (the start of) its
// user agent, never the credentials.
func (s *Server) noteAbuse(r *http.Request, e *Error) {
	route := routePattern(r)
	ua := r.UserAgent()
	if len(ua) > 200 {
		ua = ua[:200]
	}
	attrs := []any{"request_id", infoOf(r.Context()).id, "ip", s.clientAddr(r).String(), "route", route,
		"user_agent", ua, "code", e.Code}
	switch e.Status {
	case http.StatusUnauthorized:
		s.metrics.AuthFailures.WithLabelValues(e.Code).Inc()
		s.log.WarnContext(r.Context(), "authentication refused", attrs...)
		return
	case http.StatusForbidden:
		s.metrics.AuthzFailures.WithLabelValues(e.Code).Inc()
		s.log.InfoContext(r.Context(), "authorization refused", attrs...)
		return
	}
	s.metrics.RateLimitHits.WithLabelValues(route).Inc()
	s.log.WarnContext(r.Context(), "rate limited", attrs...)
	if authRoute.MatchString(route) {
		s.metrics.AuthBruteforce.Inc()
		s.log.WarnContext(r.Context(), "possible brute force on authentication", attrs...)
	}
}

// routePattern is the request's chi route pattern ("unmatched" before routing or for unknown paths).
func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
		return rc.RoutePattern()
	}
	return "unmatched"
}
