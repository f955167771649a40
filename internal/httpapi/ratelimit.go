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

// rateLimiter holds token buckets per key in this process. With several server processes behind a load
// balancer each enforces its share of every limit (RATE_LIMIT_PROCESSES = N: 1/N of each rate), so the
// sum over the processes never passes the limit, at no cost per request; a client whose requests all
// reach one process gets that process's share. Buckets are swept once they are full again, so idle
// callers cost nothing.
type rateLimiter struct {
	user, org, key, addr limit
	routes               map[string]limit // "METHOD pattern" -> per-user limit on that route
	now                  func() time.Time

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
	n := max(1, c.RateLimitProcesses)
	share := func(per int, period time.Duration) limit { return limit{max(1, per/n), period} }
	return &rateLimiter{
		user: share(c.RateLimitUserPerMinute, time.Minute),
		org:  share(c.RateLimitOrgPerMinute, time.Minute),
		key:  share(c.RateLimitAPIKeyPerMinute, time.Minute),
		addr: share(c.RateLimitIPPerMinute, time.Minute),
		routes: map[string]limit{
			"POST /locations":                          share(c.RateLimitLocationsPer10s, 10*time.Second),
			"POST /locations/batch":                    share(c.RateLimitLocationsPer10s, 10*time.Second),
			"POST /expenses":                           share(c.RateLimitExpensesPerMinute, time.Minute),
			"POST /expenses/receipt-upload-url":        share(c.RateLimitExpensesPerMinute, time.Minute),
			"POST /attendance/{sessionId}/recalculate": share(c.RateLimitRecalculatePerMinute, time.Minute),
		},
		now:     time.Now,
		buckets: map[string]*bucket{},
	}
}

// decision is the answer of the limiter: whether the request may go, and the figures of the bucket
// closest to empty for the x-ratelimit-* headers.
type decision struct {
	ok        bool
	limit     int
	remaining int
	reset     time.Duration // until the bucket is full again
	wait      time.Duration // until a request would pass (when !ok)
}

// setHeaders writes x-ratelimit-limit, -remaining and -reset (whole seconds).
func (d decision) setHeaders(h http.Header) {
	if d.limit == 0 {
		return
	}
	h.Set("X-RateLimit-Limit", strconv.Itoa(d.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(d.remaining))
	h.Set("X-RateLimit-Reset", strconv.Itoa(int(math.Ceil(d.reset.Seconds()))))
}

type take struct {
	key string
	l   limit
}

// allow takes one token from every bucket that applies to the caller on this route: the route's own
// limit, the caller's (a user, or an API key's own and its user-level one), and the organization's. When
// any is empty it takes nothing and says how long to wait.
func (rl *rateLimiter) allow(id auth.Identity, route string) decision {
	takes := []take{{"u:" + id.Subject, rl.user}, {"o:" + id.OrgID.String(), rl.org}}
	if id.APIKeyID.Valid {
		takes = append(takes, take{"k:" + id.APIKeyID.UUID.String(), rl.key})
	}
	if l, found := rl.routes[route]; found {
		takes = append(takes, take{"r:" + route + ":" + id.Subject, l})
	}
	return rl.takeAll(takes)
}

// allowAddr takes a token of the client address's bucket (every request, before authentication).
func (rl *rateLimiter) allowAddr(addr string) decision {
	return rl.takeAll([]take{{"a:" + addr, rl.addr}})
}

func (rl *rateLimiter) takeAll(takes []take) decision {
	now := rl.now()
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.sweep(now)
	bs := make([]*bucket, len(takes))
	d := decision{ok: true}
	var tightest *bucket
	for i, t := range takes {
		b := rl.buckets[t.key]
		if b == nil {
			b = &bucket{tokens: float64(t.l.n), at: now, l: t.l}
			rl.buckets[t.key] = b
		}
		b.refill(now)
		if b.tokens < 1 {
			d.ok = false
			d.wait = max(d.wait, b.until(1))
		}
		if tightest == nil || b.tokens < tightest.tokens {
			tightest = b
		}
		bs[i] = b
	}
	if d.ok {
		for _, b := range bs {
			b.tokens--
		}
	}
	d.limit = tightest.l.n
	d.remaining = max(0, int(tightest.tokens))
	d.reset = tightest.until(float64(tightest.l.n))
	return d
}

// until is how long the bucket takes to hold n tokens.
func (b *bucket) until(n float64) time.Duration {
	return time.Duration(max(0, n-b.tokens) / b.rate() * float64(time.Second))
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

// errRateLimited is the 429 answer (the original answered 500 here), with Retry-After.
func errRateLimited(d decision) *Error {
	secs := int(math.Ceil(d.wait.Seconds()))
	return &Error{Status: http.StatusTooManyRequests, Code: "RATE_LIMITED", RetryAfter: max(secs, 1),
		Message: "Too many requests, retry in " + strconv.Itoa(max(secs, 1)) + " seconds"}
}
