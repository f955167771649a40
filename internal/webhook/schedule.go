package webhook

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retryDelay is the wait after the attempt-th failed attempt: exponential backoff with full jitter, a
// uniform draw below the ceiling min(BackoffMax, BackoffBase·2^(attempt-1)), but at least min(BackoffBase,
// 1 s) so a failing endpoint is never hammered, and never earlier than the receiver's Retry-After.
// With the defaults (base 30 s, max 12 h, 16 attempts) the ceilings add up to about 65 h.
func (c Config) retryDelay(attempt int, retryAfter time.Duration, draw func(n int64) int64) time.Duration {
	ceiling := c.BackoffBase
	for i := 1; i < attempt && ceiling < c.BackoffMax; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, c.BackoffMax)
	floor := min(c.BackoffBase, time.Second)
	delay := floor
	if ceiling > floor {
		delay = floor + time.Duration(draw(int64(ceiling-floor)+1))
	}
	return max(delay, retryAfter)
}

// jitter is the random source of retryDelay.
func jitter(n int64) int64 { return rand.Int64N(n) }

// parseRetryAfter reads Retry-After as delay-seconds or an HTTP date, capped at maxRetryAfter; 0 when
// absent, malformed or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
