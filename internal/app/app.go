// Package app wires the server: config -> pool -> auth -> router -> HTTP server. Run is what `fieldtrack
// serve` calls and what end-to-end tests start on a loopback listener.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/config"
	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/events"
	"github.com/fieldtrack/fieldtrack/internal/httpapi"
	"github.com/fieldtrack/fieldtrack/internal/identity"
	"github.com/fieldtrack/fieldtrack/internal/receipt"
	"github.com/fieldtrack/fieldtrack/internal/telemetry"
	"github.com/fieldtrack/fieldtrack/internal/webhook"
)

// NewLogger returns the JSON logger every component writes to; a line logged under a span names its
// trace and span ids.
func NewLogger(cfg config.Config) *slog.Logger {
	return slog.New(telemetry.TraceLogHandler(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel})))
}

// Run serves the API on ln until ctx is cancelled, then drains in-flight requests for up to the
// configured grace period. It returns an error when start-up fails or the server stops unexpectedly.
func Run(ctx context.Context, cfg config.Config, ln net.Listener, log *slog.Logger) error {
	if err := cfg.ValidateServe(); err != nil {
		return err
	}
	// Traces go where the OTEL_* variables say (nowhere when unset: a no-op tracer).
	stopTracing, err := telemetry.SetupTracing(ctx, os.Getenv)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = stopTracing(sctx)
	}()
	pool, err := db.NewPool(ctx, db.PoolConfig{URL: cfg.DatabaseURL, MaxConns: cfg.DBMaxConns})
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := checkLogins(ctx, cfg, pool, log); err != nil {
		return err
	}

	// Built-in identity signs with keys kept in Postgres (the first one is made on first start); its
	// tokens verify beside those of the external issuers configured.
	keys := identity.NewKeyRing(pool, cfg.AuthAccessTokenTTL, log)
	if err := keys.Load(ctx); err != nil { // the database may be down: serve 503s, keep trying (keys.Run)
		log.Warn("signing keys not loaded yet", "error", err.Error())
	}
	verifier, err := auth.NewVerifier(auth.Config{
		Secret: cfg.JWTSecret, JWKSURL: cfg.JWKSURL, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience,
		Local: keys, LocalIssuer: cfg.LocalIssuer(),
	})
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	api, err := httpapi.New(cfg, pool, verifier, identity.New(pool, keys, identity.FromConfig(cfg)), log)
	if err != nil {
		return err
	}
	if telemetry.TracingConfigured(os.Getenv) {
		api.WithTracerProvider(otel.GetTracerProvider())
	}

	// Background work: each runs until bg ends and retries its own failures. One LISTEN connection per
	// process wakes both the event stream and the webhook worker after each hand-off.
	notifier := events.NewNotifier(cfg.DatabaseURL, log)
	bgs := httpapi.Background{Notifier: notifier,
		Hub: events.NewHub(pool, cfg.SSEMaxStreamsPerOrg, log).WakeOn(notifier)}
	background := []func(context.Context){notifier.Run, bgs.Hub.Run, keys.Run, api.RunKeyUsage}
	if cfg.ListenerEnabled {
		bgs.Listener = events.NewListener(cfg.ListenerDatabaseURL, pool, log).RefuseAPILogin(cfg.Production()).
			FanOut(bgs.Hub, notifier)
		background = append(background, bgs.Listener.Run)
	}
	if cfg.WebhookWorkerEnabled {
		bgs.Webhooks = webhook.NewWorker(pool, webhook.FromConfig(cfg), log)
		// Woken after each hand-off, but those whose deliveries it was given already (see ClaimFor below).
		bgs.Webhooks.WakeOn(notifier.SubscribeAfter(bgs.Webhooks.Covered))
		bgs.Webhooks.Observe = func(outcome string, took time.Duration) {
			api.Metrics().WebhookAttempts.WithLabelValues(outcome).Inc()
			api.Metrics().WebhookAttemptSeconds.Observe(took.Seconds())
		}
		background = append(background, bgs.Webhooks.Run)
		if bgs.Listener != nil {
			bgs.Listener.ClaimFor(bgs.Webhooks) // this process's hand-offs claim first attempts for it
		}
	}
	if cfg.ReceiptJanitorEnabled {
		bgs.Janitor = receipt.NewJanitor(pool, api.Receipts(), time.Minute, log)
		background = append(background, bgs.Janitor.Run)
	}
	api.WithBackground(bgs)
	registerPipelineMetrics(api.Metrics(), pool, bgs)
	// On every return the background parts are stopped first, then waited for (deferred calls run last
	// first).
	var wg sync.WaitGroup
	defer wg.Wait()
	bg, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	for _, run := range background {
		wg.Add(1)
		go func() { defer wg.Done(); run(bg) }()
	}

	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       75 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.PprofAddr != "" { // before serving: a profiler that cannot listen fails the start-up
		stopPprof, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "env", cfg.AppEnv)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Stopping the hub ends the open event streams, which would otherwise keep Shutdown waiting.
	stopBackground()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownGracePeriod)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	// The API keys' counts of the last requests (the flusher stopped with the background).
	if err := api.FlushKeyUsage(shutdownCtx); err != nil {
		log.Warn("API key usage of the last requests not written", "error", err.Error())
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}
