// Package identity is the server's built-in identity: accounts with Argon2id passwords, sessions with
// rotating refresh tokens, and the ES256 keys that sign access tokens in the form the original's
// Supabase tokens had (top-level role, org_id, employee_id). What only the issuing side may see lives in
// Postgres, in schema app, and is reached as fieldtrack_issuer (sql/000012_identity.up.sql); the HTTP
// side, which speaks Supabase Auth's protocol, is in internal/httpapi.
package identity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/config"
	"github.com/fieldtrack/fieldtrack/internal/db"
)

// Config tunes the service.
type Config struct {
	AccessTTL  time.Duration // life of an access token
	RefreshTTL time.Duration // life of a refresh token (each refresh starts a new one)
	ReuseGrace time.Duration // a rotated refresh token presented again this soon gets the same child
	// Attempt limits: failed logins per account per AccountWindow, logins per client address per minute;
	// 0 disables the limit.
	FailuresPerAccount int
	AccountWindow      time.Duration
	AttemptsPerIP      int
}

// Service signs people in and keeps their sessions.
type Service struct {
	pool    *pgxpool.Pool
	q       *db.Queries
	keys    *KeyRing
	cfg     Config
	limits  *limiter
	Metrics Observer
}

// Observer counts attempts by kind (password, refresh) and outcome, for /metrics.
type Observer func(kind, outcome string)

// New returns the service over keys.
func New(pool *pgxpool.Pool, keys *KeyRing, cfg Config) *Service {
	return &Service{pool: pool, q: db.New(), keys: keys, cfg: cfg, limits: newLimiter(), Metrics: func(string, string) {}}
}

// Keys are the service's signing keys.
func (s *Service) Keys() *KeyRing { return s.keys }

// Account is a user as the tokens and the Supabase user object show it.
type Account struct {
	ID           uuid.UUID
	OrgID        uuid.UUID
	Email        string
	Role         auth.Role
	EmployeeID   uuid.NullUUID // an active employee linked to the user
	CreatedAt    time.Time
	LastSignInAt *time.Time
}

// Session is what a login or a refresh hands the client.
type Session struct {
	AccessToken  string
	ExpiresIn    time.Duration
	ExpiresAt    time.Time
	RefreshToken string
	ID           uuid.UUID
	Account      Account
}

// Errors of the flows, for the HTTP side to word.
var (
	// ErrInvalidCredentials: unknown email or wrong password (one answer for both, on purpose).
	ErrInvalidCredentials = errors.New("invalid login credentials")
	// ErrRefused: the account exists and the password is right, but it may not sign in (disabled, or a
	// deactivated employee).
	ErrRefused = errors.New("account may not sign in")
	// ErrNoSigningKey: the signing keys are not loaded yet (the database was unreachable at start-up).
	ErrNoSigningKey = errors.New("signing keys not loaded yet")
	// ErrSessionEnded: the refresh token is unknown, expired, already used, or its session ended.
	ErrSessionEnded = errors.New("refresh token not valid")
)

// RateLimitedError says how long to wait before trying again.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string { return "too many attempts" }

// Client is where a login comes from: its address (for the per-address limit) and user agent.
type Client struct {
	IP        string
	UserAgent string
	// Issuer is the iss of the tokens: <public URL>/auth/v1.
	Issuer string
}

// PasswordLogin checks email and password and opens a session. An unknown email costs the same time as
// a wrong password and gets the same error.
func (s *Service) PasswordLogin(ctx context.Context, email, password string, c Client) (Session, error) {
	if s.keys.signer().priv == nil {
		return Session{}, ErrNoSigningKey
	}
	email = strings.TrimSpace(email)
	// Per address first (every attempt counts), then per account: a token is taken before the password
	// is checked and given back when it was right, so only failures count and concurrent guesses cannot
	// all pass one look at the bucket.
	if wait := s.limits.take("login-ip:"+c.IP, s.cfg.AttemptsPerIP, time.Minute); wait > 0 {
		s.Metrics("password", "rate_limited")
		return Session{}, &RateLimitedError{RetryAfter: wait}
	}
	account := "account:" + strings.ToLower(email)
	if wait := s.limits.take(account, s.cfg.FailuresPerAccount, s.cfg.AccountWindow); wait > 0 {
		s.Metrics("password", "rate_limited")
		return Session{}, &RateLimitedError{RetryAfter: wait}
	}
	a, err := db.Do(ctx, s.pool, db.Claims{}, issuer, func(tx db.DBTX) (db.AuthAccountByEmailRow, error) {
		return s.q.AuthAccountByEmail(ctx, tx, email)
	})
	if err != nil {
		return Session{}, err
	}
	hash := decoyHash()
	if a.PasswordHash != nil {
		hash = *a.PasswordHash
	}
	var ok bool
	err = withHashSlot(ctx, func() { ok, err = checkPassword(hash, password) })
	if err != nil {
		return Session{}, err
	}
	if !ok || a.PasswordHash == nil {
		s.Metrics("password", "invalid_credentials")
		return Session{}, ErrInvalidCredentials
	}
	s.limits.refund(account, s.cfg.FailuresPerAccount, s.cfg.AccountWindow)
	if *a.Disabled || (*a.Role != string(auth.RoleAdmin) && !*a.EmployeeActive) {
		s.Metrics("password", "refused")
		return Session{}, ErrRefused
	}
	acct := Account{ID: *a.UserID, OrgID: *a.OrganizationID, Email: *a.Email, Role: auth.Role(*a.Role),
		CreatedAt: *a.CreatedAt, LastSignInAt: a.LastSignInAt}
	if a.EmployeeID != nil && *a.EmployeeActive {
		acct.EmployeeID = uuid.NullUUID{UUID: *a.EmployeeID, Valid: true}
	}
	opened, err := db.Do(ctx, s.pool, db.Claims{}, issuer, func(tx db.DBTX) (db.AuthOpenSessionRow, error) {
		return s.q.AuthOpenSession(ctx, tx, db.AuthOpenSessionParams{OrgID: acct.OrgID, UserID: acct.ID,
			TtlSeconds: int64(s.cfg.RefreshTTL.Seconds()), UserAgent: c.UserAgent})
	})
	if err != nil {
		return Session{}, err
	}
	now := time.Now()
	acct.LastSignInAt = &now
	s.Metrics("password", "success")
	return s.session(*opened.SessionID, *opened.RefreshToken, acct, c.Issuer)
}

// Refresh exchanges a refresh token for a new session state (a new access token and the token's child).
func (s *Service) Refresh(ctx context.Context, token string, c Client) (Session, error) {
	if s.keys.signer().priv == nil {
		return Session{}, ErrNoSigningKey
	}
	// A refresh token cannot be guessed; the per-address limit (a bucket of its own, so failed logins
	// cannot stop a dashboard's refreshes) only bounds the work junk tokens cost.
	if wait := s.limits.take("refresh-ip:"+c.IP, s.cfg.AttemptsPerIP*10, time.Minute); wait > 0 {
		s.Metrics("refresh", "rate_limited")
		return Session{}, &RateLimitedError{RetryAfter: wait}
	}
	r, err := db.Do(ctx, s.pool, db.Claims{}, issuer, func(tx db.DBTX) (db.AuthRefreshRow, error) {
		return s.q.AuthRefresh(ctx, tx, db.AuthRefreshParams{Token: token,
			TtlSeconds: int64(s.cfg.RefreshTTL.Seconds()), GraceSeconds: int64(math.Ceil(s.cfg.ReuseGrace.Seconds()))})
	})
	if err != nil {
		return Session{}, err
	}
	outcome := *r.Outcome
	s.Metrics("refresh", outcome)
	switch outcome {
	case "rotated", "replayed":
	case "refused":
		return Session{}, ErrRefused
	default: // ended, reused
		return Session{}, ErrSessionEnded
	}
	acct := Account{ID: *r.UserID, OrgID: *r.OrganizationID, Email: *r.Email, Role: auth.Role(*r.Role),
		CreatedAt: *r.CreatedAt, LastSignInAt: r.LastSignInAt}
	if r.EmployeeID != nil {
		acct.EmployeeID = uuid.NullUUID{UUID: *r.EmployeeID, Valid: true}
	}
	return s.session(*r.SessionID, *r.RefreshToken, acct, c.Issuer)
}

// SignOut ends the caller's session ("local"), all its user's sessions ("global", the default) or all
// but the caller's ("others").
func (s *Service) SignOut(ctx context.Context, id auth.Identity, scope string) error {
	_, err := db.Do(ctx, s.pool, db.Claims{}, issuer, func(tx db.DBTX) (int32, error) {
		return s.q.AuthSignOut(ctx, tx, db.AuthSignOutParams{OrgID: id.OrgID, UserID: id.UserID,
			SessionID: nullUUID(id.SessionID), Scope: scope})
	})
	return err
}

// AccountOf is the caller's account (pgx.ErrNoRows-free: a zero Account when the user has no row).
func (s *Service) AccountOf(ctx context.Context, org, user uuid.UUID) (Account, bool, error) {
	a, err := db.Do(ctx, s.pool, db.Claims{}, issuer, func(tx db.DBTX) (db.AuthAccountRow, error) {
		return s.q.AuthAccount(ctx, tx, db.AuthAccountParams{OrgID: org, UserID: user})
	})
	if err != nil || a.UserID == nil {
		return Account{}, false, err
	}
	acct := Account{ID: *a.UserID, OrgID: *a.OrganizationID, Email: *a.Email, Role: auth.Role(*a.Role),
		CreatedAt: *a.CreatedAt, LastSignInAt: a.LastSignInAt}
	if a.EmployeeID != nil && *a.EmployeeActive {
		acct.EmployeeID = uuid.NullUUID{UUID: *a.EmployeeID, Valid: true}
	}
	return acct, true, nil
}

// session signs the access token of a session state.
func (s *Service) session(id uuid.UUID, refresh string, a Account, iss string) (Session, error) {
	key := s.keys.signer()
	if key.priv == nil {
		return Session{}, errors.New("no signing key")
	}
	now := time.Now()
	exp := now.Add(s.cfg.AccessTTL)
	appMeta := map[string]any{"provider": "email", "providers": []string{"email"}, "role": string(a.Role),
		"org_id": a.OrgID.String()}
	claims := jwt.MapClaims{
		"iss": iss, "sub": a.ID.String(), "aud": auth.DefaultAudience,
		"exp": exp.Unix(), "iat": now.Unix(),
		"email": a.Email, "phone": "",
		"role": string(a.Role), "org_id": a.OrgID.String(),
		"app_metadata": appMeta, "user_metadata": map[string]any{},
		"aal": "aal1", "amr": []map[string]any{{"method": "password", "timestamp": now.Unix()}},
		"session_id": id.String(), "is_anonymous": false,
	}
	if a.EmployeeID.Valid {
		claims["employee_id"] = a.EmployeeID.UUID.String()
		appMeta["employee_id"] = a.EmployeeID.UUID.String()
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"] = key.kid
	signed, err := t.SignedString(key.priv)
	if err != nil {
		return Session{}, fmt.Errorf("sign access token: %w", err)
	}
	return Session{AccessToken: signed, ExpiresIn: s.cfg.AccessTTL, ExpiresAt: time.Unix(exp.Unix(), 0),
		RefreshToken: refresh, ID: id, Account: a}, nil
}

func nullUUID(u uuid.NullUUID) *uuid.UUID {
	if !u.Valid {
		return nil
	}
	return &u.UUID
}

// FromConfig is the service's configuration from the server's: token lives, and the login limits
// (none with RATE_LIMIT_DISABLED).
func FromConfig(c config.Config) Config {
	// Each of RATE_LIMIT_PROCESSES processes enforces its share of the limits.
	share := func(limit int) int {
		if limit <= 0 {
			return limit
		}
		return max(1, limit/max(1, c.RateLimitProcesses))
	}
	out := Config{AccessTTL: c.AuthAccessTokenTTL, RefreshTTL: c.AuthRefreshTokenTTL, ReuseGrace: c.AuthRefreshReuseGrace,
		FailuresPerAccount: share(c.RateLimitLoginPerAccount), AccountWindow: 15 * time.Minute,
		AttemptsPerIP: share(c.RateLimitLoginPerIP)}
	if c.RateLimitDisabled {
		out.FailuresPerAccount, out.AttemptsPerIP = 0, 0
	}
	return out
}
