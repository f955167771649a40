package config

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env turns a map into the getenv Load reads through; missing keys are empty, like unset variables.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoad_DefaultsWhenNothingIsSet(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	if err != nil {
		t.Fatalf("Load(empty) = %v, want no error", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Port", c.Port, 8080},
		{"AppEnv", c.AppEnv, "development"},
		{"JWTAudience", c.JWTAudience, "authenticated"},
		{"BodyLimitBytes", c.BodyLimitBytes, int64(1_000_000)},
		{"LogLevel", c.LogLevel, slog.LevelInfo},
		{"RequestTimeout", c.RequestTimeout, 30 * time.Second},
		{"StatementTimeout", c.StatementTimeout, 10 * time.Second},
		{"DBMaxConns", c.DBMaxConns, int32(20)},
		{"DBAcquireTimeout", c.DBAcquireTimeout, 5 * time.Second},
		{"ShutdownGracePeriod", c.ShutdownGracePeriod, 10 * time.Second},
		{"WebhookAllowPrivateTargets", c.WebhookAllowPrivateTargets, false},
		{"RateLimitDisabled", c.RateLimitDisabled, false},
		{"Production()", c.Production(), false},
		{"CORSOrigins is empty", len(c.CORSOrigins), 0},
		{"DatabaseURL", c.DatabaseURL, ""},
		{"SSEMaxLifetime", c.SSEMaxLifetime, time.Hour},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLoad_ReadsValidValues(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{
		"DATABASE_URL":                  "postgres://u@h/db",
		"PORT":                          " 9090 ",
		"APP_ENV":                       "production",
		"LOG_LEVEL":                     "WARNING",
		"JWT_SECRET":                    "0123456789abcdef",
		"JWT_JWKS_URL":                  "https://idp.example.com/.well-known/jwks.json",
		"JWT_ISSUER":                    "https://idp.example.com",
		"JWT_AUDIENCE":                  "fieldtrack",
		"WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
		"RATE_LIMIT_DISABLED":           "1",
		"BODY_LIMIT_BYTES":              "2048",
		"REQUEST_TIMEOUT_MS":            "1500",
		"DB_STATEMENT_TIMEOUT_MS":       "250",
		"DB_MAX_CONNS":                  "7",
		"DB_ACQUIRE_TIMEOUT_MS":         "100",
		"SHUTDOWN_GRACE_MS":             "3000",
		"SSE_MAX_LIFETIME_MS":           "60000",
	}))
	if err != nil {
		t.Fatalf("Load = %v, want no error", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"DatabaseURL", c.DatabaseURL, "postgres://u@h/db"},
		{"Port", c.Port, 9090},
		{"AppEnv", c.AppEnv, "production"},
		{"Production()", c.Production(), true},
		{"LogLevel", c.LogLevel, slog.LevelWarn},
		{"JWTSecret", string(c.JWTSecret), "0123456789abcdef"},
		{"JWKSURL", c.JWKSURL, "https://idp.example.com/.well-known/jwks.json"},
		{"JWTIssuer", c.JWTIssuer, "https://idp.example.com"},
		{"JWTAudience", c.JWTAudience, "fieldtrack"},
		{"WebhookAllowPrivateTargets", c.WebhookAllowPrivateTargets, true},
		{"RateLimitDisabled", c.RateLimitDisabled, true},
		{"BodyLimitBytes", c.BodyLimitBytes, int64(2048)},
		{"RequestTimeout", c.RequestTimeout, 1500 * time.Millisecond},
		{"StatementTimeout", c.StatementTimeout, 250 * time.Millisecond},
		{"DBMaxConns", c.DBMaxConns, int32(7)},
		{"DBAcquireTimeout", c.DBAcquireTimeout, 100 * time.Millisecond},
		{"ShutdownGracePeriod", c.ShutdownGracePeriod, 3 * time.Second},
		{"SSEMaxLifetime", c.SSEMaxLifetime, time.Minute},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLoad_LogLevels(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn,
		"warning": slog.LevelWarn, "error": slog.LevelError, "DEBUG": slog.LevelDebug,
	} {
		c, err := Load(env(map[string]string{"LOG_LEVEL": in}))
		if err != nil {
			t.Errorf("LOG_LEVEL=%q: %v", in, err)
			continue
		}
		if c.LogLevel != want {
			t.Errorf("LOG_LEVEL=%q: level %v, want %v", in, c.LogLevel, want)
		}
	}
}

func TestLoad_InvalidValueIsAnErrorNamingTheVariable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"PORT not a number", map[string]string{"PORT": "abc"}, "PORT"},
		{"PORT zero", map[string]string{"PORT": "0"}, "PORT"},
		{"PORT above 65535", map[string]string{"PORT": "70000"}, "PORT"},
		{"APP_ENV unknown", map[string]string{"APP_ENV": "staging"}, "APP_ENV"},
		{"APP_ENV is case-sensitive", map[string]string{"APP_ENV": "Production"}, "APP_ENV"},
		{"LOG_LEVEL unknown", map[string]string{"LOG_LEVEL": "verbose"}, "LOG_LEVEL"},
		{"WEBHOOK_ALLOW_PRIVATE_TARGETS not a bool", map[string]string{"WEBHOOK_ALLOW_PRIVATE_TARGETS": "yes"}, "WEBHOOK_ALLOW_PRIVATE_TARGETS"},
		{"RATE_LIMIT_DISABLED not a bool", map[string]string{"RATE_LIMIT_DISABLED": "maybe"}, "RATE_LIMIT_DISABLED"},
		{"JWT_JWKS_URL ftp scheme", map[string]string{"JWT_JWKS_URL": "ftp://x"}, "JWT_JWKS_URL"},
		{"JWT_JWKS_URL without host", map[string]string{"JWT_JWKS_URL": "https://"}, "JWT_JWKS_URL"},
		{"JWT_JWKS_URL not a URL", map[string]string{"JWT_JWKS_URL": "idp.example.com/jwks"}, "JWT_JWKS_URL"},
		{"BODY_LIMIT_BYTES below 1024", map[string]string{"BODY_LIMIT_BYTES": "10"}, "BODY_LIMIT_BYTES"},
		{"DB_MAX_CONNS zero", map[string]string{"DB_MAX_CONNS": "0"}, "DB_MAX_CONNS"},
		{"REQUEST_TIMEOUT_MS negative", map[string]string{"REQUEST_TIMEOUT_MS": "-5"}, "REQUEST_TIMEOUT_MS"},
		{"DB_ACQUIRE_TIMEOUT_MS not a number", map[string]string{"DB_ACQUIRE_TIMEOUT_MS": "5s"}, "DB_ACQUIRE_TIMEOUT_MS"},
		{"LISTENER_DATABASE_URL key=value settings", map[string]string{"LISTENER_DATABASE_URL": "host=db user=fieldtrack_listener"}, "LISTENER_DATABASE_URL"},
		{"LISTENER_DATABASE_URL http scheme", map[string]string{"LISTENER_DATABASE_URL": "http://db/fieldtrack"}, "LISTENER_DATABASE_URL"},
		{"a limit below RATE_LIMIT_PROCESSES", map[string]string{"RATE_LIMIT_PROCESSES": "6"}, "RATE_LIMIT_RECALCULATE_PER_MIN"},
		{"RATE_LIMIT_PROCESSES zero", map[string]string{"RATE_LIMIT_PROCESSES": "0"}, "RATE_LIMIT_PROCESSES"},
		{"SSE_MAX_LIFETIME_MS below a second", map[string]string{"SSE_MAX_LIFETIME_MS": "10"}, "SSE_MAX_LIFETIME_MS"},
		{"SSE_MAX_LIFETIME_MS above a day", map[string]string{"SSE_MAX_LIFETIME_MS": "86400001"}, "SSE_MAX_LIFETIME_MS"},
		{"PPROF_ADDR on every interface", map[string]string{"PPROF_ADDR": ":6060"}, "PPROF_ADDR"},
		{"PPROF_ADDR on a public address", map[string]string{"PPROF_ADDR": "192.0.2.10:6060"}, "PPROF_ADDR"},
		{"PPROF_ADDR by name", map[string]string{"PPROF_ADDR": "localhost:6060"}, "PPROF_ADDR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(env(tc.env))
			if err == nil {
				t.Fatalf("Load(%v) = nil error, want an error naming %s", tc.env, tc.wantVar)
			}
			if !strings.Contains(err.Error(), tc.wantVar) {
				t.Errorf("error %q does not name %s", err, tc.wantVar)
			}
			if !reflect.DeepEqual(c, Config{}) {
				t.Errorf("Load returned a non-zero Config with its error: %+v", c)
			}
		})
	}
}

// The listener logs in on its own (it needs REPLICATION); with one login for everything, as make run and
// the tests have, it is DATABASE_URL's.
func TestLoad_ListenerDatabaseURLDefaultsToDatabaseURL(t *testing.T) {
	t.Parallel()
	const pool, listener = "postgres://fieldtrack_authenticator@db/fieldtrack", "postgresql://fieldtrack_listener@db/fieldtrack"
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unset", map[string]string{"DATABASE_URL": pool}, pool},
		{"blank", map[string]string{"DATABASE_URL": pool, "LISTENER_DATABASE_URL": "  "}, pool},
		{"set", map[string]string{"DATABASE_URL": pool, "LISTENER_DATABASE_URL": listener}, listener},
		{"set without DATABASE_URL", map[string]string{"LISTENER_DATABASE_URL": listener}, listener},
	} {
		c, err := Load(env(tc.env))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.ListenerDatabaseURL != tc.want || c.DatabaseURL != tc.env["DATABASE_URL"] {
			t.Errorf("%s: ListenerDatabaseURL %q, DatabaseURL %q; want %q and %q", tc.name, c.ListenerDatabaseURL,
				c.DatabaseURL, tc.want, tc.env["DATABASE_URL"])
		}
	}
}

func TestLoad_CORSOriginIsSplitTrimmedAndCompacted(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		"a, b,,c":               {"a", "b", "c"},
		"https://x.example":     {"https://x.example"},
		" , ,":                  nil,
		"":                      nil,
		"http://a:1 ,http://b ": {"http://a:1", "http://b"},
	}
	for in, want := range cases {
		c, err := Load(env(map[string]string{"CORS_ORIGIN": in}))
		if err != nil {
			t.Errorf("CORS_ORIGIN=%q: %v", in, err)
			continue
		}
		if !reflect.DeepEqual(c.CORSOrigins, want) {
			t.Errorf("CORS_ORIGIN=%q: origins %q, want %q", in, c.CORSOrigins, want)
		}
	}
}

func TestValidateServe(t *testing.T) {
	t.Parallel()
	const db = "postgres://u@h/db"
	cases := []struct {
		name    string
		cfg     Config
		wantErr string // substring; empty means valid
	}{
		{"valid with secret", Config{DatabaseURL: db, JWTSecret: []byte("0123456789abcdef")}, ""},
		{"valid with JWKS only", Config{DatabaseURL: db, JWKSURL: "https://idp.example/jwks"}, ""},
		{"valid with both", Config{DatabaseURL: db, JWTSecret: []byte("0123456789abcdef0"), JWKSURL: "https://idp.example/jwks"}, ""},
		{"missing DATABASE_URL", Config{JWTSecret: []byte("0123456789abcdef")}, "DATABASE_URL"},
		{"built-in identity alone (no JWT_SECRET, no JWT_JWKS_URL)", Config{DatabaseURL: db}, ""},
		{"secret of 15 bytes", Config{DatabaseURL: db, JWTSecret: []byte("0123456789abcde")}, "at least 16"},
		{"short secret even with JWKS", Config{DatabaseURL: db, JWTSecret: []byte("short"), JWKSURL: "https://idp.example/jwks"}, "JWT_SECRET"},
		{"listener without its URL", Config{DatabaseURL: db, ListenerEnabled: true}, "LISTENER_DATABASE_URL"},
		{"listener with its URL", Config{DatabaseURL: db, ListenerEnabled: true, ListenerDatabaseURL: db}, ""},
		{"development: /metrics may be open", Config{DatabaseURL: db, AppEnv: "development"}, ""},
		{"production without METRICS_SCRAPE_TOKEN", Config{DatabaseURL: db, AppEnv: "production"}, "METRICS_SCRAPE_TOKEN is required"},
		{"production, built-in identity alone", Config{DatabaseURL: db, AppEnv: "production", MetricsScrapeToken: "t"}, ""},
		{"production, JWT_SECRET without JWT_ISSUER", Config{DatabaseURL: db, AppEnv: "production", MetricsScrapeToken: "t",
			JWTSecret: []byte("0123456789abcdef")}, "JWT_ISSUER is required"},
		{"production, JWT_JWKS_URL without JWT_ISSUER", Config{DatabaseURL: db, AppEnv: "production", MetricsScrapeToken: "t",
			JWKSURL: "https://idp.example/jwks"}, "JWT_ISSUER is required"},
		{"production, external issuer named", Config{DatabaseURL: db, AppEnv: "production", MetricsScrapeToken: "t",
			JWTSecret: []byte("0123456789abcdef"), JWKSURL: "https://idp.example/jwks", JWTIssuer: "https://idp.example"}, ""},
		{"test: no issuer needed", Config{DatabaseURL: db, AppEnv: "test", JWTSecret: []byte("0123456789abcdef")}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.ValidateServe()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("ValidateServe = %v, want nil", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("ValidateServe = nil, want an error containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("ValidateServe = %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadThenValidateServe_FromEnvironment(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{"DATABASE_URL": "postgres://u@h/db", "JWT_SECRET": "0123456789abcdef"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateServe(); err != nil {
		t.Fatalf("ValidateServe = %v, want nil", err)
	}
	// Production needs the scrape token and, with an external issuer, its name; the error is one line.
	prod := map[string]string{"DATABASE_URL": "postgres://u@h/db", "JWT_SECRET": "0123456789abcdef", "APP_ENV": "production"}
	for _, step := range []struct{ set, value, wantErr string }{
		{"", "", "METRICS_SCRAPE_TOKEN"},
		{"METRICS_SCRAPE_TOKEN", "scrape-0123456789", "JWT_ISSUER"},
		{"JWT_ISSUER", "https://idp.example.com", ""},
	} {
		if step.set != "" {
			prod[step.set] = step.value
		}
		c, err := Load(env(prod))
		if err != nil {
			t.Fatal(err)
		}
		err = c.ValidateServe()
		switch {
		case step.wantErr == "" && err != nil:
			t.Fatalf("production with %s set: %v, want it valid", step.set, err)
		case step.wantErr != "" && (err == nil || !strings.Contains(err.Error(), step.wantErr) || strings.Contains(err.Error(), "\n")):
			t.Fatalf("production (%s set): %v, want one line naming %s", step.set, err, step.wantErr)
		}
	}
	c, err = Load(env(map[string]string{"JWT_SECRET": "0123456789abcdef"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateServe(); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("ValidateServe without DATABASE_URL = %v, want an error naming DATABASE_URL", err)
	}
}

func TestLoad_WebhookDeliveryKnobs(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	defaults := []struct {
		name      string
		got, want any
	}{
		{"WebhookWorkerEnabled", c.WebhookWorkerEnabled, true},
		{"WebhookConcurrency", c.WebhookConcurrency, 32},
		{"WebhookTimeout", c.WebhookTimeout, 15 * time.Second},
		{"WebhookMaxAttempts", c.WebhookMaxAttempts, 16},
		{"WebhookBackoffBase", c.WebhookBackoffBase, 30 * time.Second},
		{"WebhookBackoffMax", c.WebhookBackoffMax, 12 * time.Hour},
		{"WebhookPollInterval", c.WebhookPollInterval, 250 * time.Millisecond},
		{"WebhookCircuitThreshold", c.WebhookCircuitThreshold, 5},
		{"WebhookCircuitOpen", c.WebhookCircuitOpen, 10 * time.Minute},
	}
	for _, ch := range defaults {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("default %s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}

	c, err = Load(env(map[string]string{
		"WEBHOOK_WORKER_ENABLED": "false", "WEBHOOK_CONCURRENCY": "8", "WEBHOOK_TIMEOUT_MS": "5000",
		"WEBHOOK_MAX_ATTEMPTS": "3", "WEBHOOK_BACKOFF_BASE_MS": "10", "WEBHOOK_BACKOFF_MAX_MS": "1000",
		"WEBHOOK_POLL_INTERVAL_MS": "500", "WEBHOOK_CIRCUIT_THRESHOLD": "2", "WEBHOOK_CIRCUIT_OPEN_MS": "60000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.WebhookWorkerEnabled || c.WebhookConcurrency != 8 || c.WebhookTimeout != 5*time.Second || c.WebhookMaxAttempts != 3 ||
		c.WebhookBackoffBase != 10*time.Millisecond || c.WebhookBackoffMax != time.Second ||
		c.WebhookPollInterval != 500*time.Millisecond || c.WebhookCircuitThreshold != 2 || c.WebhookCircuitOpen != time.Minute {
		t.Errorf("webhook knobs not read: %+v", c)
	}

	// Test processes share a database: under APP_ENV=test the worker runs only when asked.
	if c, _ := Load(env(map[string]string{"APP_ENV": "test"})); c.WebhookWorkerEnabled {
		t.Error("worker enabled by default under APP_ENV=test")
	}
	if c, _ := Load(env(map[string]string{"APP_ENV": "test", "WEBHOOK_WORKER_ENABLED": "true"})); !c.WebhookWorkerEnabled {
		t.Error("WEBHOOK_WORKER_ENABLED=true ignored under APP_ENV=test")
	}

	for name, bad := range map[string]map[string]string{
		"WEBHOOK_CONCURRENCY":    {"WEBHOOK_CONCURRENCY": "0"},
		"WEBHOOK_MAX_ATTEMPTS":   {"WEBHOOK_MAX_ATTEMPTS": "0"},
		"WEBHOOK_TIMEOUT_MS":     {"WEBHOOK_TIMEOUT_MS": "15s"},
		"WEBHOOK_BACKOFF_MAX_MS": {"WEBHOOK_BACKOFF_BASE_MS": "60000", "WEBHOOK_BACKOFF_MAX_MS": "1000"},
		"WEBHOOK_WORKER_ENABLED": {"WEBHOOK_WORKER_ENABLED": "sometimes"},
	} {
		if _, err := Load(env(bad)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: error %v, want one naming %s", bad, err, name)
		}
	}
}
