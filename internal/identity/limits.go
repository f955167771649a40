package identity

import (
	"context"
	"sync"
	"time"
)

// limiter keeps a token bucket per key (an account, a client address): n tokens, refilled over window.
// Per process, like the API's other limits.
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter() *limiter { return &limiter{buckets: map[string]*bucket{}} }

// allow reports how long to wait before key may try again (0: it may now), taking a token when take is
// set. n <= 0 means no limit.
func (l *limiter) allow(_ context.Context, key string, n int, window time.Duration, take bool) time.Duration {
	if n <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(key, n, window)
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) * float64(window) / float64(n))
	}
	if take {
		b.tokens--
	}
	return 0
}

// spend takes a token from key's bucket (a failed attempt).
func (l *limiter) spend(key string, n int, window time.Duration) {
	if n <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(key, n, window)
	b.tokens = max(0, b.tokens-1)
}

func (l *limiter) refill(key string, n int, window time.Duration) *bucket {
	now := time.Now()
	if now.Sub(l.swept) > 10*time.Minute { // forget keys that are full again
		for k, b := range l.buckets {
			if now.Sub(b.at) > time.Hour { // windows are shorter: such a bucket is full
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: float64(n), at: now}
		l.buckets[key] = b
	}
	b.tokens = min(float64(n), b.tokens+now.Sub(b.at).Seconds()*float64(n)/window.Seconds())
	b.at = now
	return b
}
