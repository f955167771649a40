package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// jwksTTL is how long a fetched key set is trusted before it is
	// refetched; rotation at the IdP shows up within this window.
	jwksTTL = 10 * time.Minute
	// jwksMinInterval spaces out fetches not driven by the TTL (unknown kid,
	// retry after failure) so tokens with made-up kids cannot turn us into a
	// request amplifier against the IdP.
	jwksMinInterval = 10 * time.Second
	// jwksMaxBody bounds the response we are willing to read.
	jwksMaxBody = 1 << 20
)

var errUnknownKid = errors.New("unknown kid")

// publicKey is one usable signing key from the set.
type publicKey struct {
	alg string // the JWK's alg, "" when the JWK does not pin one
	key any    // *ecdsa.PublicKey or *rsa.PublicKey
}

// jwksCache holds the IdP's key set, fetched lazily and shared by all
// requests.
type jwksCache struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu          sync.Mutex
	keys        map[string][]publicKey // by kid; nil until the first successful fetch
	fetchedAt   time.Time              // of the current keys
	lastAttempt time.Time              // start of the most recent fetch, successful or not
	inflight    *fetchCall             // non-nil while a fetch runs
}

// fetchCall lets concurrent callers wait for one shared fetch.
type fetchCall struct {
	done chan struct{}
	err  error // valid after done is closed
}

func newJWKSCache(url string, client *http.Client, now func() time.Time) *jwksCache {
	return &jwksCache{url: url, client: client, now: now}
}

// key returns the verification key for kid that may be used with alg,
// fetching or refetching the set when it is missing, stale or lacks kid.
func (c *jwksCache) key(ctx context.Context, kid, alg string) (any, error) {
	c.mu.Lock()
	now := c.now()
	fresh := c.keys != nil && now.Sub(c.fetchedAt) < jwksTTL
	if fresh {
		if k, ok := pick(c.keys[kid], alg); ok {
			c.mu.Unlock()
			return k, nil
		}
	}
	call := c.inflight
	if call == nil && now.Sub(c.lastAttempt) >= jwksMinInterval {
		call = c.startFetchLocked(ctx, now)
	}
	c.mu.Unlock()

	if call != nil {
		select {
		case <-call.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}

	// Whether or not a fetch ran (or succeeded), answer from what we hold:
	// a stale set is better than failing every request while the IdP is
	// unreachable.
	c.mu.Lock()
	k, ok := pick(c.keys[kid], alg)
	c.mu.Unlock()
	if ok {
		return k, nil
	}
	if call != nil && call.err != nil {
		return nil, call.err
	}
	return nil, errUnknownKid
}

// startFetchLocked starts a fetch in the background. The fetch is detached
// from the caller's cancellation because other requests may be waiting on
// it; the HTTP client's timeout (and defaultTimeout) still bound it.
func (c *jwksCache) startFetchLocked(ctx context.Context, now time.Time) *fetchCall {
	call := &fetchCall{done: make(chan struct{})}
	c.inflight = call
	c.lastAttempt = now
	go func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultTimeout)
		defer cancel()
		keys, err := c.fetch(fctx)

		c.mu.Lock()
		if err == nil {
			c.keys = keys
			c.fetchedAt = c.now()
		}
		call.err = err
		c.inflight = nil
		c.mu.Unlock()
		close(call.done)
	}()
	return call
}

// pick returns the first key under one kid that is allowed for alg.
func pick(keys []publicKey, alg string) (any, bool) {
	for _, k := range keys {
		if k.alg != "" && k.alg != alg {
			continue
		}
		switch k.key.(type) {
		case *ecdsa.PublicKey:
			if alg == jwt.SigningMethodES256.Alg() {
				return k.key, true
			}
		case *rsa.PublicKey:
			if alg == jwt.SigningMethodRS256.Alg() {
				return k.key, true
			}
		}
	}
	return nil, false
}

// fetch downloads and parses the key set.
func (c *jwksCache) fetch(ctx context.Context) (map[string][]publicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read JWKS: %w", err)
	}
	if len(body) > jwksMaxBody {
		return nil, errors.New("JWKS response exceeds 1 MiB")
	}
	return parseJWKS(body)
}

// jwk is the subset of RFC 7517/7518 members we understand.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// parseJWKS turns a JWKS document into usable keys by kid. Keys we cannot
// use (encryption keys, other curves or key types, no kid, malformed) are
// skipped rather than failing the whole set, since IdPs publish keys for
// other consumers too. A set with no usable key is an error so that a
// broken response never replaces a working cached set.
func parseJWKS(body []byte) (map[string][]publicKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	keys := make(map[string][]publicKey)
	for _, raw := range doc.Keys {
		var k jwk
		if json.Unmarshal(raw, &k) != nil || k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		var (
			key any
			err error
		)
		switch k.Kty {
		case "EC":
			key, err = ecKey(k)
		case "RSA":
			key, err = rsaKey(k)
		default:
			continue
		}
		if err != nil {
			continue
		}
		keys[k.Kid] = append(keys[k.Kid], publicKey{alg: k.Alg, key: key})
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS has no usable signing keys")
	}
	return keys, nil
}

// ecKey builds a P-256 key; ParseUncompressedPublicKey also checks the
// point is on the curve, which an invalid-curve attack would violate.
func ecKey(k jwk) (*ecdsa.PublicKey, error) {
	if k.Crv != "P-256" {
		return nil, fmt.Errorf("unsupported curve %q", k.Crv)
	}
	x, err := base64.RawURLEncoding.DecodeString(k.X)
	if err != nil {
		return nil, err
	}
	y, err := base64.RawURLEncoding.DecodeString(k.Y)
	if err != nil {
		return nil, err
	}
	// RFC 7518 §6.2.1.2: coordinates are full-length, big-endian.
	if len(x) != 32 || len(y) != 32 {
		return nil, errors.New("P-256 coordinates must be 32 bytes")
	}
	point := append(append([]byte{4}, x...), y...)
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
}

// rsaKey builds an RSA key from modulus and exponent.
func rsaKey(k jwk) (*rsa.PublicKey, error) {
	n, err := base64.RawURLEncoding.DecodeString(k.N)
	if err != nil {
		return nil, err
	}
	e, err := base64.RawURLEncoding.DecodeString(k.E)
	if err != nil {
		return nil, err
	}
	if len(n) == 0 || len(e) == 0 {
		return nil, errors.New("empty RSA modulus or exponent")
	}
	exp := new(big.Int).SetBytes(e)
	if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > math.MaxInt32 || exp.Bit(0) == 0 {
		return nil, errors.New("unsupported RSA exponent")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}, nil
}
