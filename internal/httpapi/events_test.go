package httpapi

import (
	"testing"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/config"
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
