package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/config"
)

// limit is one rate: n requests per period.
type limit struct {
	n      int
	period time.Duration
}

// rateLimiter holds token buckets per key in this process (limits apply per server process). Buckets are
// swept once they are full again, so idle callers cost nothing.
type rateLimiter struct {
	user, org limit
	routes    map[string]limit // "METHOD pattern" -> per-user limit on that route
	now       func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
	l      limit
}

func newRateLimiter(c config.Config) *rateLimiter {
	return &rateLimiter{
		user: limit{c.RateLimitUserPerMinute, time.Minute},
		org:  limit{c.RateLimitOrgPerMinute, time.Minute},
		routes: map[string]limit{
			"POST /locations":                          {c.RateLimitLocationsPer10s, 10 * time.Second},
			"POST /locations/batch":                    {c.RateLimitLocationsPer10s, 10 * time.Second},
			"POST /expenses":                           {c.RateLimitExpensesPerMinute, time.Minute},
			"POST /expenses/receipt-upload-url":        {c.RateLimitExpensesPerMinute, time.Minute},
			"POST /attendance/{sessionId}/recalculate": {c.RateLimitRecalculatePerMinute, time.Minute},
		},
		now:     time.Now,
		buckets: map[string]*bucket{},
	}
}

// allow takes one token from every bucket that applies to the caller on this route: the route's own
// limit, the caller's and the organization's. It answers how long to wait when any is empty (taking
// nothing then).
func (rl *rateLimiter) allow(id auth.Identity, route string) (ok bool, retryAfter time.Duration) {
	now := rl.now()
	type take struct {
		key string
		l   limit
	}
	takes := []take{{"u:" + id.Subject, rl.user}, {"o:" + id.OrgID.String(), rl.org}}
	if l, found := rl.routes[route]; found {
		takes = append(takes, take{"r:" + route + ":" + id.Subject, l})
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.sweep(now)
	bs := make([]*bucket, len(takes))
	for i, t := range takes {
		b := rl.buckets[t.key]
		if b == nil {
			b = &bucket{tokens: float64(t.l.n), at: now, l: t.l}
			rl.buckets[t.key] = b
		}
		b.refill(now)
		if b.tokens < 1 {
			wait := time.Duration((1 - b.tokens) / b.rate() * float64(time.Second))
			retryAfter = max(retryAfter, wait)
		}
		bs[i] = b
	}
	if retryAfter > 0 {
		return false, retryAfter
	}
	for _, b := range bs {
		b.tokens--
	}
	return true, 0
}

func (b *bucket) rate() float64 { return float64(b.l.n) / b.l.period.Seconds() }

func (b *bucket) refill(now time.Time) {
	b.tokens = math.Min(float64(b.l.n), b.tokens+now.Sub(b.at).Seconds()*b.rate())
	b.at = now
}

// sweep drops buckets that have refilled completely, at most once a minute.
func (rl *rateLimiter) sweep(now time.Time) {
	if now.Sub(rl.lastSweep) < time.Minute {
		return
	}
	rl.lastSweep = now
	for k, b := range rl.buckets {
		if b.refill(now); b.tokens >= float64(b.l.n) {
			delete(rl.buckets, k)
		}
	}
}

// errRateLimited is the 429 answer (the original answered 500 here).
func errRateLimited(wait time.Duration) *Error {
	secs := int(math.Ceil(wait.Seconds()))
	return &Error{Status: http.StatusTooManyRequests, Code: "RATE_LIMITED", RetryAfter: max(secs, 1),
		Message: "Too many requests, retry in " + strconv.Itoa(max(secs, 1)) + " seconds"}
}
