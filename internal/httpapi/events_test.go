package httpapi

import (
	"bufio"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/config"
	"github.com/fieldtrack/fieldtrack/internal/events"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
	"github.com/fieldtrack/fieldtrack/internal/webhook/webhooktest"
)

func TestStreamEnd_TokenExpiryOrLifetimeWhicheverComesFirst(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for _, c := range []struct {
		name     string
		lifetime time.Duration
		expires  time.Time
		why      string
		earliest time.Time
		latest   time.Time
	}{
		{"an API key (no expiry)", time.Hour, time.Time{}, reauthLifetime, now.Add(54 * time.Minute), now.Add(time.Hour)},
		{"a token outliving the cap", time.Hour, now.Add(2 * time.Hour), reauthLifetime, now.Add(54 * time.Minute), now.Add(time.Hour)},
		{"a token expiring first", time.Hour, now.Add(2 * time.Second), reauthTokenExpired, now.Add(2 * time.Second), now.Add(2 * time.Second)},
		{"an expired token", time.Hour, now.Add(-time.Second), reauthTokenExpired, now.Add(-time.Second), now.Add(-time.Second)},
		{"no cap configured", 0, time.Time{}, reauthLifetime, now.Add(54 * time.Minute), now.Add(time.Hour)},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &Server{cfg: config.Config{SSEMaxLifetime: c.lifetime}}
			end, why := s.streamEnd(auth.Identity{ExpiresAt: c.expires}, now)
			if why != c.why || end.Before(c.earliest) || end.After(c.latest) {
				t.Fatalf("stream end %s (%q), want %q in [%s, %s]", end.Sub(now), why, c.why, c.earliest.Sub(now), c.latest.Sub(now))
			}
		})
	}
}

// A process that runs no event hub answers the stream with 503 (a load balancer tries another); one that
// does refuses a stream over the organization's limit with 429 and Retry-After, and lets the other
// organizations' streams through.
func TestAdminEvents_NoHubIs503AndStreamsOverTheLimitAre429(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org, other := testfactory.NewOrg(t), testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	expectError(t, h.call("GET", eventsPath, admin, nil), http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE",
		"The event stream is not running")

	cfg := testConfig()
	cfg.SSEMaxStreamsPerOrg = 1
	h = setupWith(t, cfg, testfactory.Pool(t))
	hub := events.NewHub(testfactory.Pool(t), cfg.SSEMaxStreamsPerOrg, slog.New(slog.DiscardHandler))
	go hub.Run(t.Context())
	h.server.WithBackground(Background{Hub: hub})
	testfactory.Eventually(t, 10*time.Second, "the hub to tail the stream", func() (bool, error) { return hub.Live(), nil })
	open := func(tok string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "GET", h.url+eventsPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		if res.StatusCode != http.StatusOK {
			t.Fatalf("stream: %d", res.StatusCode)
		}
		return res
	}
	open(admin)
	r := h.call("GET", eventsPath, admin, nil)
	expectError(t, r, http.StatusTooManyRequests, "TOO_MANY_STREAMS", "SSE connection limit reached (max 1 per organization).")
	if r.Header.Get("Retry-After") != "5" {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	open(testfactory.AdminToken(t, other))
}

// A stream carrying events looks at its caller again at least every recheckEvery, without waiting for a
// heartbeat (an hour here): an admin disabled while events flow loses the stream, and the check never
// holds a frame back meanwhile.
func TestAdminEvents_ACallerDisabledWhileEventsFlowLosesTheStream(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.SSEHeartbeat = time.Hour
	pool := testfactory.Pool(t)
	h := setupWith(t, cfg, pool)
	hub := events.NewHub(pool, 10, slog.New(slog.DiscardHandler))
	go hub.Run(t.Context())
	h.server.WithBackground(Background{Hub: hub})
	testfactory.Eventually(t, 10*time.Second, "the hub to tail the stream", func() (bool, error) { return hub.Live(), nil })
	org := testfactory.NewOrg(t)
	req, err := http.NewRequestWithContext(t.Context(), "GET", h.url+eventsPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testfactory.AdminToken(t, org))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", res.StatusCode)
	}
	frames := make(chan string, 1024)
	ended := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				frames <- ev
			}
		}
		ended <- sc.Err()
	}()
	emit := func() {
		t.Helper()
		if _, err := pool.Exec(t.Context(), `SELECT app.emit($1, 'session.checkin', '{}', 'session.checkin', '{}')`, org.ID); err != nil {
			t.Fatal(err)
		}
		webhooktest.Dispatch(t, pool, org.ID)
	}
	emit()
	for ev := range frames {
		if ev == "session.checkin" {
			break // the stream carries events
		}
	}

	if _, err := pool.Exec(t.Context(), `UPDATE users SET disabled_at = now() WHERE organization_id = $1 AND id = $2`,
		org.ID, org.AdminUserID); err != nil {
		t.Fatal(err)
	}
	disabled := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-ended:
			if err != nil {
				t.Fatalf("the stream failed instead of ending: %v", err)
			}
			t.Logf("the stream ended %s after the admin was disabled", time.Since(disabled).Round(time.Millisecond))
			return
		case <-tick.C:
			if time.Since(disabled) > recheckEvery+10*time.Second {
				t.Fatalf("the disabled admin's stream still carries events %s later", time.Since(disabled).Round(time.Second))
			}
			emit()
		}
	}
}
