package identity

import (
	"sync"
	"time"
)

// maxBuckets bounds the limiter's memory: beyond it, buckets that are full again are forgotten, and
// while it stays reached (a flood of distinct keys) new keys wait.
const maxBuckets = 100_000

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
	full   time.Duration // how long this bucket takes to refill from empty
}

func newLimiter() *limiter { return &limiter{buckets: map[string]*bucket{}} }

// take takes a token from key's bucket, or reports how long to wait before one is there. n <= 0 means
// no limit. Taking before the attempt (and refunding what should not count) keeps concurrent attempts
// from all passing one check.
func (l *limiter) take(key string, n int, window time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(key, n, window)
	if b == nil {
		return time.Second
	}
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) * float64(window) / float64(n))
	}
	b.tokens--
	return 0
}

// refund gives back a token taken for an attempt that does not count (a successful login).
func (l *limiter) refund(key string, n int, window time.Duration) {
	if n <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.bucket(key, n, window); b != nil {
		b.tokens = min(float64(n), b.tokens+1)
	}
}

// bucket is key's bucket, refilled to now; nil when the limiter is full of keys still in use.
func (l *limiter) bucket(key string, n int, window time.Duration) *bucket {
	now := time.Now()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxBuckets || now.Sub(l.swept) > 10*time.Minute {
			l.sweep(now)
		}
		if len(l.buckets) >= maxBuckets {
			return nil
		}
		b = &bucket{tokens: float64(n), at: now, full: window}
		l.buckets[key] = b
	}
	b.tokens = min(float64(n), b.tokens+now.Sub(b.at).Seconds()*float64(n)/window.Seconds())
	b.at = now
	return b
}

// sweep forgets the buckets that are full again: they are the same as none.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if now.Sub(b.at) >= b.full {
			delete(l.buckets, k)
		}
	}
	l.swept = now
}
