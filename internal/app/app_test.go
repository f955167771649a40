package app

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/config"
	"github.com/fieldtrack/fieldtrack/internal/events"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// TestRun_ServesOnLoopbackAndStopsOnCancel starts the whole server as `fieldtrack serve` does and drives
// an employee's day through real HTTP.
func TestRun_ServesOnLoopbackAndStopsOnCancel(t *testing.T) {
	vars := map[string]string{"DATABASE_URL": testfactory.URL(t), "JWT_SECRET": testfactory.Secret, "APP_ENV": "test",
		"RECEIPTS_DIR": t.TempDir()}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, ln, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	base := "http://" + ln.Addr().String()

	emp := testfactory.NewEmployee(t, testfactory.NewOrg(t), "E2E")
	tok := testfactory.EmployeeToken(t, emp)
	for _, step := range []struct {
		path string
		want int
	}{{"/attendance/check-in", 201}, {"/attendance/check-out", 200}} {
		req, _ := http.NewRequest("POST", base+step.path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != step.want || body["success"] != true {
			t.Fatalf("%s: %d %v", step.path, res.StatusCode, body)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after cancel", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
	if _, err := http.Get(base + "/health"); err == nil {
		t.Fatal("server still answering after shutdown")
	}
}

func TestRun_InvalidConfigurationStopsStartup(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = Run(context.Background(), config.Config{DatabaseURL: testfactory.URL(t), JWTSecret: []byte("short")}, ln,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "JWT_SECRET") {
		t.Fatalf("Run with a 5-byte JWT_SECRET: %v, want it refused", err)
	}
}

// In production a listener login that may act as the API (here the test cluster's superuser, the default
// when LISTENER_DATABASE_URL is unset) stops start-up with the error naming the fix.
func TestRun_ProductionRefusesAListenerLoginThatMayActAsTheAPI(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	vars := map[string]string{"DATABASE_URL": testfactory.URL(t), "APP_ENV": "production", "RECEIPTS_DIR": t.TempDir(),
		"METRICS_SCRAPE_TOKEN": "scrape"}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), cfg, ln, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if !errors.Is(err, events.ErrLoginTooBroad) || !strings.Contains(err.Error(), "fieldtrack_listener") {
		t.Fatalf("Run in production as a superuser listener login: %v, want it refused naming fieldtrack_listener", err)
	}
}
