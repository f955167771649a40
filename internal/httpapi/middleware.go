package httpapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/receipt"
	"github.com/fieldtrack/fieldtrack/internal/telemetry"
)

// requestInfo travels in the request context from the first middleware on; later stages fill it in
// (identity) so the access log, written last, can say who called.
type requestInfo struct {
	id       string
	identity *auth.Identity
	scope    string // the scope an API-key caller was admitted with, checked again in Postgres
	body     any    // the body as a compiled validator decoded it (gpsbody.go), or nil
}

type infoKey struct{}

func infoOf(ctx context.Context) *requestInfo {
	if i, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return i
	}
	return &requestInfo{}
}

// identityOf returns the caller authenticated for this request (the zero Identity on public routes).
func identityOf(r *http.Request) auth.Identity {
	if id := infoOf(r.Context()).identity; id != nil {
		return *id
	}
	return auth.Identity{}
}

var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestID takes x-request-id from the request when it is a sane token, generates one otherwise, and
// echoes it on every response.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !saneRequestID.MatchString(id) {
			id = uuid.NewString()
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), infoKey{}, &requestInfo{id: id})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// statusWriter remembers the status for the access log. It forwards Flush so streams keep working.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessLog writes one JSON line per request (request id, route pattern, status, duration, org, user; the
// trace and span ids through the logger, see telemetry.TraceLogHandler) and records the request's
// metrics, labelled by route pattern, with its trace as the latency's exemplar. With tracing on (see
// WithTracerProvider) each request gets a server span, a child of the caller's traceparent; with it off
// nothing is extracted or started.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		s.metrics.Started()
		var span trace.Span
		if s.tracer != nil {
			ctx := telemetry.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			ctx, span = s.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("http.request.method", r.Method)))
			r = r.WithContext(ctx)
		}
		// Deferred, so that a request aborted by a panic (http.ErrAbortHandler: an export whose client
		// left) still ends its span, leaves the in-flight gauge and gets its line.
		defer func() {
			aborted := recover()
			s.finish(r, sw, start, span, aborted != nil)
			if aborted != nil {
				panic(aborted)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// finish ends a request's span and records its metrics and access-log line.
func (s *Server) finish(r *http.Request, sw *statusWriter, start time.Time, span trace.Span, aborted bool) {
	info := infoOf(r.Context())
	route := routePattern(r)
	status := sw.status
	if status == 0 && aborted {
		status = http.StatusInternalServerError
	}
	exemplar := ""
	if span != nil {
		if span.IsRecording() {
			exemplar = span.SpanContext().TraceID().String()
		}
		span.SetName(r.Method + " " + route)
		span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", status))
		if status >= 500 || aborted {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		span.End()
	}
	s.metrics.Observe(r.Method, route, status, time.Since(start), route == eventsPath, exemplar)
	if id := info.identity; id != nil && id.AuthType == auth.AuthTypeAPIKey {
		s.keys.count(*id, status)
		s.metrics.APIKeyRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
		if status >= 400 {
			s.metrics.APIKeyErrors.WithLabelValues(route, strconv.Itoa(status)).Inc()
		}
	}
	attrs := []slog.Attr{
		slog.String("request_id", info.id),
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		slog.Int("bytes", sw.bytes),
	}
	if aborted {
		attrs = append(attrs, slog.Bool("aborted", true))
	}
	if id := info.identity; id != nil {
		attrs = append(attrs, slog.String("org", id.OrgID.String()), slog.String("user", id.Subject),
			slog.String("auth", id.AuthType))
		if id.APIKeyID.Valid {
			attrs = append(attrs, slog.String("api_key_id", id.APIKeyID.UUID.String()))
		}
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// recoverer turns a panic into a 500 envelope and logs the stack.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic", "request_id", infoOf(r.Context()).id,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				s.writeError(w, r, errInternal)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// limits caps the body size (413 past it; a receipt upload has its own, larger cap) and gives each
// request a deadline, but the streams: the SSE stream lives as long as its client, the CSV export as
// long as it has rows, and a receipt upload as long as the phone keeps sending (each read may wait
// REQUEST_TIMEOUT_MS for the next bytes: 10 MB over a slow link takes minutes).
func (s *Server) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := s.cfg.BodyLimitBytes
		upload := r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, uploadPath)
		if upload {
			limit = receipt.MaxSize
		}
		if r.ContentLength > limit {
			s.writeError(w, r, &Error{Status: http.StatusRequestEntityTooLarge, Code: "PAYLOAD_TOO_LARGE",
				Message: "Request body is too large"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if upload {
			r.Body = idleBody{ReadCloser: r.Body, rc: http.NewResponseController(w), idle: s.cfg.RequestTimeout}
		}
		if upload || r.URL.Path == eventsPath || r.URL.Path == exportPath {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// idleBody fails a read that waits longer than idle for the client's next bytes: the connection's read
// deadline moves forward before each read.
type idleBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
}

func (b idleBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	return b.ReadCloser.Read(p)
}

// securityHeaders sets the original's Helmet headers (its defaults: a strict CSP fit for an API, no
// framing by others, no sniffing, HSTS).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self';base-uri 'self';font-src 'self' https: data:;"+
			"form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';"+
			"script-src-attr 'none';style-src 'self' 'unsafe-inline';upgrade-insecure-requests")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Origin-Agent-Cluster", "?1")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-DNS-Prefetch-Control", "off")
		h.Set("X-Download-Options", "noopen")
		h.Set("X-Frame-Options", "SAMEORIGIN")
		h.Set("X-Permitted-Cross-Domain-Policies", "none")
		h.Set("X-XSS-Protection", "0")
		next.ServeHTTP(w, r)
	})
}

// cors answers preflights and marks responses for the allowed origins (CORS_ORIGIN; in development with
// none configured, the dashboard's local origins). Credentials are allowed, so origins are never "*".
func (s *Server) cors(next http.Handler) http.Handler {
	origins := s.cfg.CORSOrigins
	if len(origins) == 0 && s.cfg.AppEnv == "development" {
		origins = []string{"http://localhost:3000", "http://localhost:5173"}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !slices.Contains(origins, origin) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After, Idempotent-Replayed, X-Supabase-Api-Version, "+
			"X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				h.Set("Access-Control-Allow-Headers", req)
			}
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate verifies the caller: a bearer JWT, or an API key when no Authorization header is sent (as
// the original: with both, the JWT wins). Failures are *auth.Error (401).
func (s *Server) authenticate(r *http.Request) (auth.Identity, error) {
	header := r.Header.Get("Authorization")
	if key := r.Header.Get("X-API-Key"); header == "" && strings.TrimSpace(key) != "" {
		return s.keys.authenticate(r.Context(), key, false)
	}
	if header == "" && r.URL.Path == eventsPath && r.URL.Query().Get("token") != "" {
		// Browsers' EventSource cannot send headers: the stream also takes the token in the query.
		header = "Bearer " + r.URL.Query().Get("token")
	}
	token, err := auth.BearerToken(header)
	if err != nil {
		return auth.Identity{}, err
	}
	return s.verifier.Verify(r.Context(), token)
}
