// Package config reads the environment into a Config value, validated once at start-up.
package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is everything the server needs from its environment. It is a value: pass it down, never read
// the environment elsewhere.
type Config struct {
	DatabaseURL string
	Port        int
	AppEnv      string // development | test | production
	LogLevel    slog.Level

	JWTSecret   []byte
	JWKSURL     string
	JWTIssuer   string
	JWTAudience string

	CORSOrigins                []string
	MetricsScrapeToken         string
	PprofAddr                  string // loopback host:port for net/http/pprof; "" = off
	WebhookAllowPrivateTargets bool

	BodyLimitBytes    int64
	RequestTimeout    time.Duration
	StatementTimeout  time.Duration
	DBMaxConns        int32
	DBAcquireTimeout  time.Duration
	RateLimitDisabled bool

	RateLimitUserPerMinute        int
	RateLimitOrgPerMinute         int
	RateLimitLocationsPer10s      int
	RateLimitExpensesPerMinute    int
	RateLimitRecalculatePerMinute int
	RateLimitAPIKeyPerMinute      int
	RateLimitIPPerMinute          int // every request of a client address, before authentication
	// RateLimitProcesses is how many server processes share the limits: each enforces its share, 1/N of
	// every rate (the login limits included; not the SSE cap, which is per process by contract).
	RateLimitProcesses  int
	APIKeyUsageFlush    time.Duration // how often a process writes its API keys' counts
	ShutdownGracePeriod time.Duration

	SSEMaxStreamsPerOrg int
	SSEHeartbeat        time.Duration // a comment frame on idle streams, and a new look at the caller
	SSEMaxLifetime      time.Duration // streams end (with a `reauth` event) after at most this long
	ListenerEnabled     bool
	// ListenerDatabaseURL is the listener's own login (it needs REPLICATION; in production
	// fieldtrack_listener); default DATABASE_URL.
	ListenerDatabaseURL string

	// PublicURL is how clients reach this server (upload and receipt URLs are built on it); empty: from
	// each request's Host (and X-Forwarded-Proto / X-Forwarded-Host).
	PublicURL             string
	ReceiptsDir           string
	ReceiptURLTTL         time.Duration
	ReceiptJanitorEnabled bool

	// Built-in identity: token lives, and the login attempt limits (RATE_LIMIT_DISABLED lifts them too).
	AuthAccessTokenTTL       time.Duration
	AuthRefreshTokenTTL      time.Duration
	AuthRefreshReuseGrace    time.Duration
	RateLimitLoginPerAccount int // failed logins per account per 15 minutes
	RateLimitLoginPerIP      int // logins per client address per minute
	// TrustedProxies are the addresses whose X-Forwarded-For, -Proto and -Host are believed: the client's
	// address is the last hop of X-Forwarded-For that is not one of them.
	TrustedProxies []netip.Prefix

	WebhookWorkerEnabled    bool
	WebhookConcurrency      int
	WebhookTimeout          time.Duration
	WebhookMaxAttempts      int
	WebhookBackoffBase      time.Duration
	WebhookBackoffMax       time.Duration
	WebhookPollInterval     time.Duration
	WebhookCircuitThreshold int
	WebhookCircuitOpen      time.Duration
}

// Load reads the environment through getenv (os.Getenv in production, a map in tests). It returns an
// error naming the first variable that is invalid.
func Load(getenv func(string) string) (Config, error) {
	r := reader{getenv: getenv}
	c := Config{
		DatabaseURL:                getenv("DATABASE_URL"),
		Port:                       r.int("PORT", 8080, 1, 65535),
		AppEnv:                     r.oneOf("APP_ENV", "development", "development", "test", "production"),
		JWTSecret:                  []byte(getenv("JWT_SECRET")),
		JWKSURL:                    getenv("JWT_JWKS_URL"),
		JWTIssuer:                  getenv("JWT_ISSUER"),
		JWTAudience:                r.str("JWT_AUDIENCE", "authenticated"),
		CORSOrigins:                r.list("CORS_ORIGIN"),
		MetricsScrapeToken:         getenv("METRICS_SCRAPE_TOKEN"),
		WebhookAllowPrivateTargets: r.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", false),
		BodyLimitBytes:             int64(r.int("BODY_LIMIT_BYTES", 1_000_000, 1024, 64<<20)),
		RequestTimeout:             r.millis("REQUEST_TIMEOUT_MS", 30_000),
		StatementTimeout:           r.millis("DB_STATEMENT_TIMEOUT_MS", 10_000),
		DBMaxConns:                 int32(r.int("DB_MAX_CONNS", 20, 1, 1000)),
		DBAcquireTimeout:           r.millis("DB_ACQUIRE_TIMEOUT_MS", 5_000),
		RateLimitDisabled:          r.bool("RATE_LIMIT_DISABLED", false),

		RateLimitUserPerMinute:        r.int("RATE_LIMIT_USER_PER_MIN", 1200, 1, 1_000_000),
		RateLimitOrgPerMinute:         r.int("RATE_LIMIT_ORG_PER_MIN", 5000, 1, 10_000_000),
		RateLimitLocationsPer10s:      r.int("RATE_LIMIT_LOCATIONS_PER_10S", 10, 1, 100_000),
		RateLimitExpensesPerMinute:    r.int("RATE_LIMIT_EXPENSES_PER_MIN", 10, 1, 100_000),
		RateLimitRecalculatePerMinute: r.int("RATE_LIMIT_RECALCULATE_PER_MIN", 5, 1, 100_000),
		RateLimitAPIKeyPerMinute:      r.int("RATE_LIMIT_API_KEY_PER_MIN", 600, 1, 1_000_000),
		RateLimitIPPerMinute:          r.int("RATE_LIMIT_IP_PER_MIN", 6000, 1, 10_000_000),
		RateLimitProcesses:            r.int("RATE_LIMIT_PROCESSES", 1, 1, 1000),
		APIKeyUsageFlush:              time.Duration(r.int("API_KEY_USAGE_FLUSH_MS", 10_000, 100, 600_000)) * time.Millisecond,
		ShutdownGracePeriod:           r.millis("SHUTDOWN_GRACE_MS", 10_000),
		SSEMaxStreamsPerOrg:           r.int("SSE_MAX_STREAMS_PER_ORG", 20, 1, 10_000),
		SSEHeartbeat:                  time.Duration(r.int("SSE_HEARTBEAT_MS", 15_000, 100, 300_000)) * time.Millisecond,
		SSEMaxLifetime:                time.Duration(r.int("SSE_MAX_LIFETIME_MS", 3_600_000, 1_000, 86_400_000)) * time.Millisecond,
		ListenerEnabled:               r.bool("EVENTS_LISTENER_ENABLED", true),
		ListenerDatabaseURL:           r.str("LISTENER_DATABASE_URL", getenv("DATABASE_URL")),
	}
	// The listener adds replication=database to it, so it must be a URL (not key=value settings).
	if v := strings.TrimSpace(getenv("LISTENER_DATABASE_URL")); v != "" {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			r.fail("LISTENER_DATABASE_URL", "must be a postgres:// URL")
		}
	}
	switch strings.ToLower(r.str("LOG_LEVEL", "info")) {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		r.fail("LOG_LEVEL", "must be debug, info, warn or error")
	}
	// Go's profiler, for finding where a load's time goes: on a loopback address only, never the API's
	// listener (its endpoints are unauthenticated and expose the process's internals).
	c.PprofAddr = r.str("PPROF_ADDR", "")
	if c.PprofAddr != "" {
		host, _, err := net.SplitHostPort(c.PprofAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			r.fail("PPROF_ADDR", "must be a loopback address such as 127.0.0.1:6060")
		}
	}
	c.PublicURL = strings.TrimRight(r.str("PUBLIC_URL", ""), "/")
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			r.fail("PUBLIC_URL", "must be an http(s) URL such as https://api.example.com")
		}
	}
	// supabase-js refreshes a session shortly before it expires: an access token must live a minute at
	// least, and the times are whole seconds (the protocol's expires_in).
	c.AuthAccessTokenTTL = time.Duration(r.int("AUTH_ACCESS_TOKEN_TTL_MS", 900_000, 60_000, 86_400_000)) *
		time.Millisecond
	c.AuthRefreshTokenTTL = time.Duration(r.int("AUTH_REFRESH_TOKEN_TTL_MS", 30*24*3_600_000, 3_600_000,
		365*24*3_600_000)) * time.Millisecond
	c.AuthRefreshReuseGrace = time.Duration(r.int("AUTH_REFRESH_REUSE_GRACE_MS", 10_000, 0, 300_000)) *
		time.Millisecond
	c.TrustedProxies = r.prefixes("TRUSTED_PROXIES", "127.0.0.0/8,::1/128")
	c.RateLimitLoginPerAccount = r.int("RATE_LIMIT_LOGIN_PER_ACCOUNT", 10, 1, 100_000)
	c.RateLimitLoginPerIP = r.int("RATE_LIMIT_LOGIN_PER_IP_PER_MIN", 30, 1, 100_000)
	// Each of RATE_LIMIT_PROCESSES processes enforces 1/N of every limit: a limit below N would round up
	// to one per process and the sum pass the limit.
	if !c.RateLimitDisabled {
		for _, l := range []struct {
			name string
			n    int
		}{{"RATE_LIMIT_USER_PER_MIN", c.RateLimitUserPerMinute}, {"RATE_LIMIT_ORG_PER_MIN", c.RateLimitOrgPerMinute},
			{"RATE_LIMIT_API_KEY_PER_MIN", c.RateLimitAPIKeyPerMinute}, {"RATE_LIMIT_IP_PER_MIN", c.RateLimitIPPerMinute},
			{"RATE_LIMIT_LOCATIONS_PER_10S", c.RateLimitLocationsPer10s}, {"RATE_LIMIT_EXPENSES_PER_MIN", c.RateLimitExpensesPerMinute},
			{"RATE_LIMIT_RECALCULATE_PER_MIN", c.RateLimitRecalculatePerMinute},
			{"RATE_LIMIT_LOGIN_PER_ACCOUNT", c.RateLimitLoginPerAccount}, {"RATE_LIMIT_LOGIN_PER_IP_PER_MIN", c.RateLimitLoginPerIP},
		} {
			if l.n < c.RateLimitProcesses {
				r.fail(l.name, "must be at least RATE_LIMIT_PROCESSES (each process enforces 1/N of it)")
			}
		}
	}
	c.ReceiptsDir = r.str("RECEIPTS_DIR", ".local/receipts")
	c.ReceiptURLTTL = r.millis("RECEIPT_URL_TTL_MS", 3_600_000)
	// Under APP_ENV=test the janitor runs only when asked, as the webhook worker (test processes share one
	// database, each with a store of its own).
	c.ReceiptJanitorEnabled = r.bool("RECEIPT_JANITOR_ENABLED", c.AppEnv != "test")
	if c.JWKSURL != "" {
		if u, err := url.Parse(c.JWKSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			r.fail("JWT_JWKS_URL", "must be an http(s) URL")
		}
	}
	// Webhook delivery. Under APP_ENV=test the worker runs only when asked: test processes share one
	// database, and a worker in one would make the attempts (with its settings) another test waits for.
	c.WebhookWorkerEnabled = r.bool("WEBHOOK_WORKER_ENABLED", c.AppEnv != "test")
	c.WebhookConcurrency = r.int("WEBHOOK_CONCURRENCY", 32, 1, 256)
	c.WebhookTimeout = r.millis("WEBHOOK_TIMEOUT_MS", 15_000)
	c.WebhookMaxAttempts = r.int("WEBHOOK_MAX_ATTEMPTS", 16, 1, 100)
	c.WebhookBackoffBase = r.millis("WEBHOOK_BACKOFF_BASE_MS", 30_000)
	c.WebhookBackoffMax = r.millis("WEBHOOK_BACKOFF_MAX_MS", 12*3600*1000)
	c.WebhookPollInterval = r.millis("WEBHOOK_POLL_INTERVAL_MS", 250)
	c.WebhookCircuitThreshold = r.int("WEBHOOK_CIRCUIT_THRESHOLD", 5, 1, 1000)
	c.WebhookCircuitOpen = r.millis("WEBHOOK_CIRCUIT_OPEN_MS", 600_000)
	if c.WebhookBackoffMax < c.WebhookBackoffBase {
		r.fail("WEBHOOK_BACKOFF_MAX_MS", "must not be less than WEBHOOK_BACKOFF_BASE_MS")
	}
	if r.err != nil {
		return Config{}, r.err
	}
	return c, nil
}

// Default is the configuration of an empty environment: every default, each declared once, in Load.
func Default() Config {
	c, err := Load(func(string) string { return "" })
	if err != nil {
		panic("config: the defaults do not validate: " + err.Error())
	}
	return c
}

// ValidateServe checks what `serve` needs on top of Load: a database, a way to verify tokens and, in
// production, what keeps the process's figures and the tokens it accepts its operator's own. It returns
// the first problem as one line naming the variable.
func (c Config) ValidateServe() error {
	// Tokens of built-in identity always verify; JWT_SECRET and JWT_JWKS_URL add external issuers.
	if c.DatabaseURL == "" {
		return fmt.Errorf("config: DATABASE_URL is required (or use `make run`, which starts a local cluster)")
	}
	if c.ListenerEnabled && c.ListenerDatabaseURL == "" {
		return fmt.Errorf("config: LISTENER_DATABASE_URL is required when EVENTS_LISTENER_ENABLED (it defaults to DATABASE_URL)")
	}
	if len(c.JWTSecret) > 0 && len(c.JWTSecret) < 16 {
		return fmt.Errorf("config: JWT_SECRET must be at least 16 bytes")
	}
	if c.Production() {
		// /metrics shows every organization's pipeline together: never open to anyone in production.
		if c.MetricsScrapeToken == "" {
			return fmt.Errorf("config: METRICS_SCRAPE_TOKEN is required with APP_ENV=production (/metrics answers only `Authorization: Bearer <token>`)")
		}
		// Without it, a key set or secret shared by several issuers (one provider's tenants or projects)
		// would let the tokens of any of them in.
		if c.JWTIssuer == "" && (len(c.JWTSecret) > 0 || c.JWKSURL != "") {
			return fmt.Errorf("config: JWT_ISSUER is required with APP_ENV=production when JWT_SECRET or JWT_JWKS_URL is set")
		}
	}
	return nil
}

// Production reports whether APP_ENV is production.
func (c Config) Production() bool { return c.AppEnv == "production" }

type reader struct {
	getenv func(string) string
	err    error
}

func (r *reader) fail(name, why string) {
	if r.err == nil {
		r.err = fmt.Errorf("config: %s %s", name, why)
	}
}

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) int(name string, def, lo, hi int) int {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.fail(name, fmt.Sprintf("must be an integer in %d..%d, got %q", lo, hi, v))
		return def
	}
	return n
}

func (r *reader) millis(name string, def int) time.Duration {
	return time.Duration(r.int(name, def, 1, 24*3600*1000)) * time.Millisecond
}

func (r *reader) bool(name string, def bool) bool {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, fmt.Sprintf("must be true or false, got %q", v))
		return def
	}
	return b
}

func (r *reader) oneOf(name, def string, allowed ...string) string {
	v := r.str(name, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.fail(name, fmt.Sprintf("must be one of %s, got %q", strings.Join(allowed, ", "), v))
	return def
}

// prefixes reads a comma list of CIDR prefixes or addresses ("none": an empty list).
func (r *reader) prefixes(name, def string) []netip.Prefix {
	v := r.str(name, def)
	if strings.TrimSpace(v) == "none" {
		return nil
	}
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				r.fail(name, "must be a comma list of addresses or CIDR prefixes (or none), got "+strconv.Quote(f))
				return nil
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

func (r *reader) list(name string) []string {
	var out []string
	for _, p := range strings.Split(r.getenv(name), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// LocalIssuer is the iss of the tokens built-in identity issues, when PUBLIC_URL fixes it; empty when
// each request's own URL decides.
func (c Config) LocalIssuer() string {
	if c.PublicURL == "" {
		return ""
	}
	return c.PublicURL + "/auth/v1"
}
