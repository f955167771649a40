package auth

import (
	"context"
	"testing"
	"time"
)

// A verified token is served from the cache, but never past its own expiry.
func TestVerifyCachesUntilTheTokenExpires(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)
	claims := adminClaims(clk.Now())
	claims["exp"] = clk.Now().Add(time.Minute).Unix()
	tok := signHS256(t, testSecret, claims)

	first, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if _, ok := v.cache.get(tok, clk.Now()); !ok {
		t.Fatal("a verified token was not cached")
	}
	again, err := v.Verify(context.Background(), tok)
	if err != nil || again.Subject != first.Subject || string(again.Claims) != string(first.Claims) {
		t.Fatalf("cached Verify = %+v, %v", again, err)
	}
	clk.Advance(2 * time.Minute)
	_, err = v.Verify(context.Background(), tok)
	wantError(t, err, "Invalid or missing authentication token", CodeUnauthorized)
}

func TestVerifiedCacheStaysBounded(t *testing.T) {
	t.Parallel()
	c := newVerifiedCache(3, time.Hour)
	now := time.Now()
	for _, tok := range []string{"a", "b", "c", "d", "e"} {
		c.put(tok, Identity{Subject: tok}, now.Add(time.Hour), now)
	}
	if len(c.entries) != 3 {
		t.Fatalf("cache holds %d entries, want 3", len(c.entries))
	}
	if id, ok := c.get("e", now); !ok || id.Subject != "e" {
		t.Fatal("the newest entry was evicted")
	}
}
