package auth

import (
	"sync"
	"time"
)

// verifiedCache remembers identities of tokens that verified, until the token expires (at most maxAge),
// so the signature and claims of a phone's token are checked once, not on every GPS upload. It is bounded:
// when full, an arbitrary entry makes room.
type verifiedCache struct {
	mu      sync.Mutex
	entries map[string]cachedIdentity
	max     int
	maxAge  time.Duration
}

type cachedIdentity struct {
	id      Identity
	expires time.Time
}

func newVerifiedCache(max int, maxAge time.Duration) *verifiedCache {
	return &verifiedCache{entries: make(map[string]cachedIdentity, max), max: max, maxAge: maxAge}
}

func (c *verifiedCache) get(token string, now time.Time) (Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[token]
	if !ok {
		return Identity{}, false
	}
	if !now.Before(e.expires) {
		delete(c.entries, token)
		return Identity{}, false
	}
	return e.id, true
}

func (c *verifiedCache) put(token string, id Identity, exp, now time.Time) {
	expires := now.Add(c.maxAge)
	if exp.Before(expires) {
		expires = exp
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[token] = cachedIdentity{id: id, expires: expires}
}
