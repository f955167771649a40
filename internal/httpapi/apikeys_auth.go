package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/db"
)

// API-key callers. A key is looked up by its hash once, then remembered in the process for keyCacheTTL;
// what the cache holds (the key's organization and scopes) only decides the quick answers. Every request
// transaction checks the key again in Postgres (app.check_caller, with the route's scope), so a revoked
// key or a removed scope is refused at once on every process.

const (
	keyCacheTTL = time.Minute
	keyCacheMax = 10_000
	// keyRefreshAfter is how old a cached key must be before a scope it lacks sends authentication to
	// the database again (a key calling routes beyond its scopes must not cost a query each time).
	keyRefreshAfter = 2 * time.Second
	// keyMissTTL is how long an unknown key is remembered as unknown (a client retrying a wrong key
	// must not cost a query each time).
	keyMissTTL = 5 * time.Second
)

// Scopes of API keys (CONTRACT §3). admin:all holds every other one.
const (
	scopeReadEmployees = "read:employees"
	scopeReadSessions  = "read:sessions"
	scopeWriteExpenses = "write:expenses"
	scopeAdminAll      = "admin:all"
)

var apiKeyScopes = []string{scopeReadEmployees, scopeReadSessions, scopeWriteExpenses, scopeAdminAll}

// routeScope is the scope a key needs for a route, as the original maps them (original-api §1.7); ""
// means any valid key.
func routeScope(method, pattern string) string {
	switch {
	case pattern == "/auth/me", method == http.MethodGet && (pattern == "/leaderboard" || pattern == "/profile/me"):
		return ""
	case method == http.MethodGet && strings.HasPrefix(pattern, "/admin/employees"):
		return scopeReadEmployees
	case method == http.MethodGet && (strings.HasPrefix(pattern, "/admin/sessions") || pattern == "/attendance/my-sessions"):
		return scopeReadSessions
	case method == http.MethodGet && pattern == "/expenses/my",
		method == http.MethodPatch && strings.HasPrefix(pattern, "/admin/expenses/"):
		return scopeWriteExpenses
	}
	return scopeAdminAll
}

func hasScope(scopes []string, want string) bool {
	return want == "" || slices.Contains(scopes, want) || slices.Contains(scopes, scopeAdminAll)
}

// missingScope begins the refusal of a key without the route's scope, here and in app.check_caller.
const missingScope = "API key missing required scope: "

func errMissingScope(scope string) *Error { return errForbidden(missingScope + scope) }

// keyring authenticates API keys and counts their use.
type keyring struct {
	s   *Server
	now func() time.Time

	mu     sync.Mutex
	cache  map[[32]byte]cachedKey
	misses map[[32]byte]time.Time
	usage  map[uuid.UUID]*keyUsage
}

type cachedKey struct {
	id      auth.Identity
	fetched time.Time
}

type keyUsage struct {
	org              uuid.UUID
	requests, errors int64
	last             time.Time
}

func newKeyring(s *Server) *keyring {
	return &keyring{s: s, now: time.Now, cache: map[[32]byte]cachedKey{}, misses: map[[32]byte]time.Time{},
		usage: map[uuid.UUID]*keyUsage{}}
}

// authenticate finds the caller of an X-API-Key header. fresh looks in the database again unless the
// cached entry is only seconds old (a scope it lacks may have been granted since).
func (k *keyring) authenticate(ctx context.Context, header string, fresh bool) (auth.Identity, error) {
	key, err := auth.ParseAPIKey(header)
	if err != nil {
		return auth.Identity{}, err
	}
	now := k.now()
	k.mu.Lock()
	c, ok := k.cache[key.Hash]
	missed, unknown := k.misses[key.Hash]
	k.mu.Unlock()
	if age := now.Sub(c.fetched); ok && age < keyCacheTTL && (!fresh || age < keyRefreshAfter) {
		return c.id, nil
	}
	if unknown && now.Sub(missed) < keyMissTTL {
		return auth.Identity{}, auth.ErrAPIKeyUnknown()
	}
	row, err := db.Do(ctx, k.s.pool, db.Claims{}, db.TxOptions{ReadOnly: true, SingleStatement: true,
		AcquireTimeout: k.s.cfg.DBAcquireTimeout, StatementTimeout: k.s.cfg.StatementTimeout},
		func(tx db.DBTX) (db.APIKeyLookupRow, error) { return k.s.q.APIKeyLookup(ctx, tx, key.Hash[:]) })
	if errors.Is(err, pgx.ErrNoRows) {
		k.mu.Lock()
		if len(k.misses) >= keyCacheMax {
			for h, at := range k.misses {
				if now.Sub(at) >= keyMissTTL || len(k.misses) >= keyCacheMax {
					delete(k.misses, h)
				}
			}
		}
		k.misses[key.Hash] = now
		delete(k.cache, key.Hash)
		k.mu.Unlock()
		return auth.Identity{}, auth.ErrAPIKeyUnknown()
	}
	if err != nil {
		return auth.Identity{}, err
	}
	id := keyIdentity(row.ID, row.OrganizationID, row.Scopes)
	k.mu.Lock()
	if len(k.cache) >= keyCacheMax {
		for h := range k.cache {
			delete(k.cache, h)
			break
		}
	}
	k.cache[key.Hash] = cachedKey{id: id, fetched: now}
	delete(k.misses, key.Hash)
	k.mu.Unlock()
	return id, nil
}

// forget drops the cached entry of a key (of an X-API-Key header).
func (k *keyring) forget(header string) {
	if key, err := auth.ParseAPIKey(header); err == nil {
		k.mu.Lock()
		delete(k.cache, key.Hash)
		k.mu.Unlock()
	}
}

// keyIdentity is the caller an API key stands for: an ADMIN of its organization with no user and no
// employee. Its claims name the key, so the audit log can.
func keyIdentity(keyID, org uuid.UUID, scopes []string) auth.Identity {
	sub := "api_key:" + keyID.String()
	claims, _ := json.Marshal(map[string]any{"sub": sub, "role": auth.RoleAdmin, "org_id": org,
		"api_key_id": keyID, "auth_type": auth.AuthTypeAPIKey, "scopes": scopes})
	return auth.Identity{Subject: sub, Role: auth.RoleAdmin, OrgID: org, AuthType: auth.AuthTypeAPIKey,
		APIKeyID: uuid.NullUUID{UUID: keyID, Valid: true}, Scopes: scopes, Claims: claims}
}

// count notes one request of a key (an error when its status is 400 or above).
func (k *keyring) count(id auth.Identity, status int) {
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	u := k.usage[id.APIKeyID.UUID]
	if u == nil {
		u = &keyUsage{org: id.OrgID}
		k.usage[id.APIKeyID.UUID] = u
	}
	u.requests++
	if status >= 400 {
		u.errors++
	}
	u.last = now
}

// flush writes the counts gathered since the last flush, one statement for every key. Counts that
// could not be written are kept for the next flush.
func (k *keyring) flush(ctx context.Context) error {
	k.mu.Lock()
	pending := k.usage
	k.usage = map[uuid.UUID]*keyUsage{}
	k.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	var p db.APIKeyUsageParams
	for id, u := range pending {
		p.Orgs, p.Ids = append(p.Orgs, u.org), append(p.Ids, id)
		p.Requests, p.Errors, p.LastUsed = append(p.Requests, u.requests), append(p.Errors, u.errors), append(p.LastUsed, u.last)
	}
	err := db.InTx(ctx, k.s.pool, db.Claims{}, db.TxOptions{Role: db.WorkerRole, SingleStatement: true},
		func(tx db.DBTX) error { return k.s.q.APIKeyUsage(ctx, tx, p) })
	if err != nil {
		k.mu.Lock()
		for id, u := range pending {
			if now := k.usage[id]; now != nil {
				now.requests += u.requests
				now.errors += u.errors
				if u.last.After(now.last) {
					now.last = u.last
				}
			} else {
				k.usage[id] = u
			}
		}
		k.mu.Unlock()
	}
	return err
}

// runUsage flushes the keys' counts every interval until ctx ends.
func (k *keyring) runUsage(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.flush(ctx); err != nil && ctx.Err() == nil {
				log.Warn("API key usage not written; kept for the next flush", "error", err.Error())
			}
		}
	}
}

// RunKeyUsage writes API keys' request and error counts and last use every interval until ctx ends
// (FlushKeyUsage writes the rest at shutdown).
func (s *Server) RunKeyUsage(ctx context.Context) {
	s.keys.runUsage(ctx, s.cfg.APIKeyUsageFlush, s.log)
}

// FlushKeyUsage writes the API keys' counts gathered since the last flush.
func (s *Server) FlushKeyUsage(ctx context.Context) error { return s.keys.flush(ctx) }
