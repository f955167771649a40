// Package auth verifies the bearer JWTs presented to the HTTP API and mints
// HS256 development tokens.
//
// Tokens come from this server's built-in identity (ES256, its own keys) or
// from an external issuer (Supabase Auth, Auth0, Keycloak through JWKS, or an
// HS256 secret); either way they carry the top-level claims role, org_id and
// (for employees) employee_id that the API relies on. Verification failures
// are reported as *Error values whose Message and Code are part of the public
// API contract.
package auth

import (
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Role is the caller's role inside its organisation.
type Role string

// The roles the API knows. Any other role claim is rejected.
const (
	RoleAdmin    Role = "ADMIN"
	RoleEmployee Role = "EMPLOYEE"
)

// Identity is the verified caller of one request.
type Identity struct {
	Subject    string          // JWT sub (a UUID string); for API keys "api_key:<id>"
	UserID     uuid.UUID       // parsed sub (zero for API keys)
	Email      string          // optional email claim
	Role       Role            // ADMIN or EMPLOYEE (an API key acts as ADMIN)
	OrgID      uuid.UUID       // organisation the caller acts in
	EmployeeID uuid.NullUUID   // Valid only when the token carries employee_id
	AuthType   string          // AuthTypeJWT or AuthTypeAPIKey
	SessionID  uuid.NullUUID   // the session of a token this server issued (built-in identity)
	APIKeyID   uuid.NullUUID   // the key of an API-key caller
	Scopes     []string        // the key's scopes (API keys only)
	ExpiresAt  time.Time       // when the token expires (zero for API keys: they last until revoked)
	Claims     json.RawMessage // the whole verified claim set as JSON (sent to Postgres as request.jwt.claims)
}

// The values of Identity.AuthType.
const (
	AuthTypeJWT    = "jwt"
	AuthTypeAPIKey = "api_key"
)

// Error is an authentication failure carrying the public message and code of
// the API contract.
type Error struct {
	Message string
	Code    string         // e.g. "UNAUTHORIZED", "AUTH_HOOK_MISSING"
	Details map[string]any // optional, nil when absent
}

// Error returns the public message.
func (e *Error) Error() string { return e.Message }

// Error codes used by this package.
const (
	CodeUnauthorized    = "UNAUTHORIZED"
	CodeAuthHookMissing = "AUTH_HOOK_MISSING"
)

// Every cryptographic or registered-claim failure maps to this one error on
// purpose: telling callers *why* a token was rejected helps attackers more
// than it helps clients.
func errInvalidToken() *Error {
	return &Error{Message: "Invalid or missing authentication token", Code: CodeUnauthorized}
}

// Defaults applied by NewVerifier and Mint.
const (
	DefaultAudience = "authenticated"
	defaultLeeway   = 5 * time.Second
	defaultTimeout  = 5 * time.Second
)

// LocalKeys are the public keys of this server's own signing keys (built-in identity).
type LocalKeys interface {
	// VerificationKey is the key of kid, when it is one of ours that still verifies.
	VerificationKey(ctx context.Context, kid string) (*ecdsa.PublicKey, bool)
}

// LocalIssuerSuffix ends the iss of every token this server issues: <public URL>/auth/v1.
const LocalIssuerSuffix = "/auth/v1"

// Config configures a Verifier.
type Config struct {
	Secret  []byte    // HS256 shared secret; empty disables HS256
	JWKSURL string    // ES256/RS256 keys; empty disables JWKS
	Issuer  string    // when non-empty, iss of external tokens must equal it exactly
	Local   LocalKeys // this server's own keys; nil disables built-in identity
	// LocalIssuer, when non-empty, is the exact iss of our own tokens; otherwise any ending in
	// LocalIssuerSuffix (the signature by our key is what proves them ours).
	LocalIssuer string
	Audience    string           // required aud value; empty -> DefaultAudience
	HTTPClient  *http.Client     // for JWKS; nil -> a client with a 5 s timeout
	Leeway      time.Duration    // clock skew tolerance for exp/nbf/iat; <= 0 -> 5 s
	Now         func() time.Time // nil -> time.Now (tests)
}

// Verifier verifies bearer tokens. It is safe for concurrent use.
type Verifier struct {
	secret      []byte
	jwks        *jwksCache // nil when JWKS is disabled
	local       LocalKeys  // nil when built-in identity is off
	localIssuer string
	issuer      string
	audience    string
	parser      *jwt.Parser
	cache       *verifiedCache
	now         func() time.Time
}

// NewVerifier builds a Verifier. It fails when none of Secret, JWKSURL and
// Local is set, or when JWKSURL is not an absolute http(s) URL.
func NewVerifier(cfg Config) (*Verifier, error) {
	if len(cfg.Secret) == 0 && cfg.JWKSURL == "" && cfg.Local == nil {
		return nil, errors.New("auth: configure a JWT secret, a JWKS URL or built-in identity")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	leeway := cfg.Leeway
	if leeway <= 0 {
		leeway = defaultLeeway
	}
	audience := cfg.Audience
	if audience == "" {
		// An empty audience would silently disable the aud check; fall back
		// to what Supabase puts in user tokens instead.
		audience = DefaultAudience
	}

	v := &Verifier{secret: cfg.Secret, local: cfg.Local, localIssuer: cfg.LocalIssuer, issuer: cfg.Issuer,
		audience: audience, cache: newVerifiedCache(10_000, 5*time.Minute), now: now}
	var methods []string
	if len(cfg.Secret) > 0 {
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.Local != nil {
		methods = append(methods, jwt.SigningMethodES256.Alg())
	}
	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("auth: JWKS URL must be an absolute http(s) URL")
		}
		client := cfg.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: defaultTimeout}
		}
		v.jwks = newJWKSCache(u.String(), client, now)
		methods = append(methods, jwt.SigningMethodES256.Alg(), jwt.SigningMethodRS256.Alg())
	}

	// The audience is checked after the key is chosen (audienceOK): our own tokens always carry
	// "authenticated", as supabase-js expects, whatever JWT_AUDIENCE external tokens must have.
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), // reject tokens minted in the future (beyond leeway)
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// BearerToken extracts the token from an Authorization header value
// ("Bearer <t>", scheme case-insensitive, surrounding space trimmed).
func BearerToken(header string) (string, error) {
	fields := strings.Fields(header)
	if len(fields) != 2 || !strings.EqualFold(fields[0], "Bearer") {
		return "", &Error{Message: "Missing or malformed Authorization header", Code: CodeUnauthorized}
	}
	return fields[1], nil
}

// Verify checks the token's signature and registered claims, then the
// application claims injected by the Auth Hook. Failures are *Error.
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, error) {
	if id, ok := v.cache.get(token, v.now()); ok {
		return id, nil
	}
	id, exp, err := v.verifyClaims(ctx, token)
	if err != nil {
		return Identity{}, err
	}
	v.cache.put(token, id, exp, v.now())
	return id, nil
}

// verifyClaims checks one token fully and returns its identity and expiry.
func (v *Verifier) verifyClaims(ctx context.Context, token string) (Identity, time.Time, error) {
	claims := jwt.MapClaims{}
	var local bool // signed by one of our keys
	parsed, err := v.parser.ParseWithClaims(token, claims, v.keyFunc(ctx, &local))
	if err != nil || !parsed.Valid || !v.issuerOK(claims, local) || !v.audienceOK(claims, local) {
		return Identity{}, time.Time{}, errInvalidToken()
	}
	// Keep the payload exactly as signed: re-encoding MapClaims would turn
	// large integers into floats before they reach Postgres.
	raw, err := payloadJSON(token)
	if err != nil {
		return Identity{}, time.Time{}, errInvalidToken()
	}

	sub, _ := claims["sub"].(string)
	userID, ok := parseUUID(sub)
	if !ok {
		return Identity{}, time.Time{}, &Error{Message: "Invalid user id in token", Code: CodeUnauthorized}
	}

	role, roleSet := claims["role"]
	orgID, orgSet := claims["org_id"]
	if !roleSet || isBlank(role) || !orgSet || isBlank(orgID) {
		return Identity{}, time.Time{}, &Error{
			Message: "JWT missing required claims",
			Code:    CodeAuthHookMissing,
			Details: map[string]any{"hint": "Check Supabase Auth Hook: the access token must carry top-level role and org_id claims"},
		}
	}
	employeeID, empSet := claims["employee_id"]
	if empSet && isBlank(employeeID) {
		// The hook may emit null/"" for users without an employee row; that
		// is the same as not carrying the claim.
		empSet = false
	}
	if role == string(RoleEmployee) && !empSet {
		return Identity{}, time.Time{}, &Error{
			Message: "JWT missing employee_id claim for EMPLOYEE role",
			Code:    CodeAuthHookMissing,
			Details: map[string]any{"hint": "The Auth Hook injects employee_id only for an active employee linked to the user"},
		}
	}

	id := Identity{Subject: sub, UserID: userID, AuthType: AuthTypeJWT, Claims: raw}
	if s, _ := claims["session_id"].(string); local && s != "" {
		// Only our sessions are ours to check; an external issuer's session_id names its own.
		u, ok := parseUUID(s)
		if !ok {
			return Identity{}, time.Time{}, errInvalidToken()
		}
		id.SessionID = uuid.NullUUID{UUID: u, Valid: true}
	}
	var problems []string
	if r, _ := role.(string); r == string(RoleAdmin) || r == string(RoleEmployee) {
		id.Role = Role(r)
	} else {
		problems = append(problems, "Role must be ADMIN or EMPLOYEE")
	}
	if s, _ := orgID.(string); s != "" {
		id.OrgID, ok = parseUUID(s)
	} else {
		ok = false
	}
	if !ok {
		problems = append(problems, "org_id must be a valid UUID")
	}
	if empSet {
		s, _ := employeeID.(string)
		if u, ok := parseUUID(s); ok {
			id.EmployeeID = uuid.NullUUID{UUID: u, Valid: true}
		} else {
			problems = append(problems, "employee_id must be a valid UUID")
		}
	}
	if email, set := claims["email"]; set && !isBlank(email) {
		// Supabase sends "email": "" for phone-only users, hence isBlank above.
		s, _ := email.(string)
		if validEmail(s) {
			id.Email = s
		} else {
			problems = append(problems, "email must be a valid email")
		}
	}
	if len(problems) > 0 {
		return Identity{}, time.Time{}, &Error{Message: "Invalid token claims: " + strings.Join(problems, "; "), Code: CodeUnauthorized}
	}
	if e, err := claims.GetExpirationTime(); err == nil && e != nil {
		id.ExpiresAt = e.Time
	}
	return id, id.ExpiresAt, nil
}

// issuerOK checks iss: our tokens' must be our issuer; an external token's the configured one, if any.
func (v *Verifier) issuerOK(claims jwt.MapClaims, local bool) bool {
	iss, _ := claims["iss"].(string)
	switch {
	case local && v.localIssuer != "":
		return iss == v.localIssuer
	case local:
		return strings.HasSuffix(iss, LocalIssuerSuffix)
	case v.issuer != "":
		return iss == v.issuer
	}
	return true
}

// audienceOK checks aud: DefaultAudience for our tokens, the configured audience for external ones.
func (v *Verifier) audienceOK(claims jwt.MapClaims, local bool) bool {
	want := v.audience
	if local {
		want = DefaultAudience
	}
	aud, err := claims.GetAudience()
	return err == nil && slices.Contains(aud, want)
}

// keyFunc picks the verification key for one token, and reports through local whether it is one of our
// own. The parser has already rejected algorithms outside WithValidMethods; the switch repeats the check
// so a key can never be used with an algorithm it was not configured for.
func (v *Verifier) keyFunc(ctx context.Context, local *bool) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg := t.Method.Alg()
		switch alg {
		case jwt.SigningMethodHS256.Alg():
			if len(v.secret) == 0 {
				return nil, errors.New("HS256 disabled")
			}
			return v.secret, nil
		case jwt.SigningMethodES256.Alg(), jwt.SigningMethodRS256.Alg():
			kid, _ := t.Header["kid"].(string)
			if kid == "" {
				return nil, errors.New("token has no kid")
			}
			if v.local != nil && alg == jwt.SigningMethodES256.Alg() {
				if key, ok := v.local.VerificationKey(ctx, kid); ok {
					*local = true
					return key, nil
				}
			}
			if v.jwks == nil {
				return nil, errors.New("no key for this kid")
			}
			return v.jwks.key(ctx, kid, alg)
		default:
			return nil, fmt.Errorf("algorithm %q not accepted", alg)
		}
	}
}

// payloadJSON returns the decoded payload segment of a compact JWS.
func payloadJSON(token string) (json.RawMessage, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("token is not a compact JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, errors.New("payload is not JSON")
	}
	return json.RawMessage(b), nil
}

// parseUUID accepts only the canonical 36-character form; uuid.Parse would
// also take urn:uuid:, braced and hyphen-less spellings, which no issuer we
// talk to produces.
func parseUUID(s string) (uuid.UUID, bool) {
	if len(s) != 36 {
		return uuid.UUID{}, false
	}
	u, err := uuid.Parse(s)
	return u, err == nil
}

// isBlank reports whether a claim value counts as absent: JSON null or "".
func isBlank(v any) bool {
	if v == nil {
		return true
	}
	s, ok := v.(string)
	return ok && s == ""
}

// validEmail requires a bare address: net/mail also accepts display names
// and comments ("Bob <b@x.io>"), which must not pass as an email claim.
func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s
}
