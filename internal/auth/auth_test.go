package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

var (
	testSecret = []byte("test-secret-for-unit-tests-only-0123456789")
	testUser   = "6f1c2a4e-2d7b-4c55-9a57-1d2b3c4d5e6f"
	testOrg    = "0b8e7a52-6a0e-4f4b-8d3c-9a1b2c3d4e5f"
	testEmp    = "c3a1f0d2-1b2c-4d3e-8f4a-5b6c7d8e9f00"
)

const genericMsg = "Invalid or missing authentication token"

// clock is a settable time source shared by the verifier and the tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_750_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// adminClaims returns a valid ADMIN claim set relative to now.
func adminClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"sub":    testUser,
		"role":   "ADMIN",
		"org_id": testOrg,
		"email":  "admin@example.com",
		"aud":    "authenticated",
		"iat":    now.Unix(),
		"exp":    now.Add(time.Hour).Unix(),
	}
}

func employeeClaims(now time.Time) jwt.MapClaims {
	c := adminClaims(now)
	c["role"] = "EMPLOYEE"
	c["employee_id"] = testEmp
	c["email"] = "worker@example.com"
	return c
}

func signHS256(t *testing.T, secret []byte, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func signWithKid(t *testing.T, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func newHSVerifier(t *testing.T, clk *clock, mod func(*Config)) *Verifier {
	t.Helper()
	cfg := Config{Secret: testSecret, Audience: "authenticated", Now: clk.Now}
	if mod != nil {
		mod(&cfg)
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// wantError asserts err is an *Error with exactly the given message and code.
func wantError(t *testing.T, err error, msg, code string) *Error {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v (%T), want *Error", err, err)
	}
	if ae.Message != msg || ae.Code != code {
		t.Fatalf("error = {%q, %q}, want {%q, %q}", ae.Message, ae.Code, msg, code)
	}
	return ae
}

func wantHint(t *testing.T, ae *Error, hint string) {
	t.Helper()
	if got := ae.Details["hint"]; got != hint {
		t.Fatalf("hint = %v, want %q", got, hint)
	}
}

func TestVerifyAcceptsValidHS256AdminToken(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)

	id, err := v.Verify(context.Background(), signHS256(t, testSecret, adminClaims(clk.Now())))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if id.Subject != testUser || id.UserID != uuid.MustParse(testUser) {
		t.Errorf("subject = %q / %v", id.Subject, id.UserID)
	}
	if id.Role != RoleAdmin || id.OrgID != uuid.MustParse(testOrg) || id.Email != "admin@example.com" {
		t.Errorf("identity = %+v", id)
	}
	if id.EmployeeID.Valid || id.APIKeyID.Valid || id.AuthType != "jwt" {
		t.Errorf("identity = %+v", id)
	}
	var claims map[string]any
	if err := json.Unmarshal(id.Claims, &claims); err != nil || claims["org_id"] != testOrg || claims["role"] != "ADMIN" {
		t.Errorf("Claims = %s (%v)", id.Claims, err)
	}
}

func TestVerifyAcceptsValidHS256EmployeeToken(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)

	id, err := v.Verify(context.Background(), signHS256(t, testSecret, employeeClaims(clk.Now())))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := uuid.NullUUID{UUID: uuid.MustParse(testEmp), Valid: true}
	if id.Role != RoleEmployee || id.EmployeeID != want || id.Email != "worker@example.com" {
		t.Errorf("identity = %+v", id)
	}
	if len(id.Claims) == 0 || !json.Valid(id.Claims) {
		t.Errorf("Claims = %s", id.Claims)
	}
}

func TestVerifyKeepsEmployeeIDOnAdminToken(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)
	c := adminClaims(clk.Now())
	c["employee_id"] = testEmp

	id, err := v.Verify(context.Background(), signHS256(t, testSecret, c))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !id.EmployeeID.Valid || id.EmployeeID.UUID.String() != testEmp {
		t.Errorf("EmployeeID = %+v", id.EmployeeID)
	}
}

func TestVerifyTreatsEmptyEmailAsAbsent(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)
	c := adminClaims(clk.Now())
	c["email"] = "" // Supabase phone-only users

	id, err := v.Verify(context.Background(), signHS256(t, testSecret, c))
	if err != nil || id.Email != "" {
		t.Fatalf("Verify = %+v, %v", id, err)
	}
}

func TestVerifyRejectsMalformedToken(t *testing.T) {
	t.Parallel()
	v := newHSVerifier(t, newClock(), nil)
	for _, tok := range []string{"", "abc", "a.b.c", "a.b", "eyJhbGciOiJIUzI1NiJ9.!!!.sig"} {
		_, err := v.Verify(context.Background(), tok)
		wantError(t, err, genericMsg, "UNAUTHORIZED")
	}
}

func TestVerifyRejectsExpiredToken(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)
	c := adminClaims(clk.Now().Add(-2 * time.Hour)) // expired an hour ago

	_, err := v.Verify(context.Background(), signHS256(t, testSecret, c))
	wantError(t, err, genericMsg, "UNAUTHORIZED")
}

func TestVerifyToleratesClockSkewWithinLeeway(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)
	c := adminClaims(clk.Now())
	c["exp"] = clk.Now().Add(-3 * time.Second).Unix() // default leeway is 5 s

	if _, err := v.Verify(context.Background(), signHS256(t, testSecret, c)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestVerifyRejectsTokenWithoutExp(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)
	c := adminClaims(clk.Now())
	delete(c, "exp")

	_, err := v.Verify(context.Background(), signHS256(t, testSecret, c))
	wantError(t, err, genericMsg, "UNAUTHORIZED")
}

func TestVerifyRejectsTokenSignedWithOtherSecret(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)

	_, err := v.Verify(context.Background(), signHS256(t, []byte("some-other-secret-0123456789abcdef"), adminClaims(clk.Now())))
	wantError(t, err, genericMsg, "UNAUTHORIZED")
}

func TestVerifyRejectsWrongAudience(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)
	c := adminClaims(clk.Now())
	c["aud"] = "anon"

	_, err := v.Verify(context.Background(), signHS256(t, testSecret, c))
	wantError(t, err, genericMsg, "UNAUTHORIZED")
}

func TestVerifyRejectsWrongIssuerWhenIssuerConfigured(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, func(c *Config) { c.Issuer = "https://idp.example.com/auth/v1" })
	c := adminClaims(clk.Now())

	c["iss"] = "https://evil.example.com/auth/v1"
	_, err := v.Verify(context.Background(), signHS256(t, testSecret, c))
	wantError(t, err, genericMsg, "UNAUTHORIZED")

	delete(c, "iss")
	_, err = v.Verify(context.Background(), signHS256(t, testSecret, c))
	wantError(t, err, genericMsg, "UNAUTHORIZED")

	c["iss"] = "https://idp.example.com/auth/v1"
	if _, err := v.Verify(context.Background(), signHS256(t, testSecret, c)); err != nil {
		t.Fatalf("matching issuer: %v", err)
	}
}

func TestVerifyRejectsAlgNoneAndOtherAlgorithms(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)

	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, adminClaims(clk.Now())).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), none)
	wantError(t, err, genericMsg, "UNAUTHORIZED")

	hs512, err := jwt.NewWithClaims(jwt.SigningMethodHS512, adminClaims(clk.Now())).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), hs512)
	wantError(t, err, genericMsg, "UNAUTHORIZED")
}

func TestVerifyRejectsHS256WhenOnlyJWKSConfigured(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := newJWKSServer(t)
	v, err := NewVerifier(Config{JWKSURL: srv.URL, Audience: "authenticated", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}

	_, err = v.Verify(context.Background(), signHS256(t, testSecret, adminClaims(clk.Now())))
	wantError(t, err, genericMsg, "UNAUTHORIZED")
}

func TestVerifyRejectsMissingRoleOrOrgIDAsAuthHookMissing(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)
	cases := map[string]func(jwt.MapClaims){
		"no role":      func(c jwt.MapClaims) { delete(c, "role") },
		"empty role":   func(c jwt.MapClaims) { c["role"] = "" },
		"no org_id":    func(c jwt.MapClaims) { delete(c, "org_id") },
		"null org_id":  func(c jwt.MapClaims) { c["org_id"] = nil },
		"empty org_id": func(c jwt.MapClaims) { c["org_id"] = "" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := adminClaims(clk.Now())
			mutate(c)
			_, err := v.Verify(context.Background(), signHS256(t, testSecret, c))
			ae := wantError(t, err, "JWT missing required claims", "AUTH_HOOK_MISSING")
			wantHint(t, ae, "Check Supabase Auth Hook: the access token must carry top-level role and org_id claims")
		})
	}
}

func TestVerifyRejectsEmployeeWithoutEmployeeIDAsAuthHookMissing(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)
	for _, val := range []any{"absent", nil, ""} {
		c := employeeClaims(clk.Now())
		if val == "absent" {
			delete(c, "employee_id")
		} else {
			c["employee_id"] = val
		}
		_, err := v.Verify(context.Background(), signHS256(t, testSecret, c))
		ae := wantError(t, err, "JWT missing employee_id claim for EMPLOYEE role", "AUTH_HOOK_MISSING")
		wantHint(t, ae, "The Auth Hook injects employee_id only for an active employee linked to the user")
	}
}

func TestVerifyRejectsNonUUIDSubject(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)
	for _, sub := range []any{nil, "", "user-1", "6f1c2a4e2d7b4c559a571d2b3c4d5e6f", 42} {
		c := adminClaims(clk.Now())
		if sub == nil {
			delete(c, "sub")
		} else {
			c["sub"] = sub
		}
		_, err := v.Verify(context.Background(), signHS256(t, testSecret, c))
		wantError(t, err, "Invalid user id in token", "UNAUTHORIZED")
	}
}

func TestVerifyRejectsInvalidRoleValue(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)
	for _, role := range []any{"authenticated", "admin", 7} {
		c := adminClaims(clk.Now())
		c["role"] = role
		_, err := v.Verify(context.Background(), signHS256(t, testSecret, c))
		wantError(t, err, "Invalid token claims: Role must be ADMIN or EMPLOYEE", "UNAUTHORIZED")
	}
}

func TestVerifyRejectsNonUUIDOrgID(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)
	c := adminClaims(clk.Now())
	c["org_id"] = "acme"

	_, err := v.Verify(context.Background(), signHS256(t, testSecret, c))
	wantError(t, err, "Invalid token claims: org_id must be a valid UUID", "UNAUTHORIZED")
}

func TestVerifyRejectsInvalidEmail(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)
	for _, email := range []string{"not-an-email", "Bob <bob@example.com>"} {
		c := adminClaims(clk.Now())
		c["email"] = email
		_, err := v.Verify(context.Background(), signHS256(t, testSecret, c))
		wantError(t, err, "Invalid token claims: email must be a valid email", "UNAUTHORIZED")
	}
}

func TestVerifyReportsEveryClaimProblemAtOnce(t *testing.T) {
	t.Parallel()
	clk := newClock()
	v := newHSVerifier(t, clk, nil)
	c := adminClaims(clk.Now())
	c["role"] = "OWNER"
	c["org_id"] = "acme"
	c["employee_id"] = "e-1"
	c["email"] = "nope"

	_, err := v.Verify(context.Background(), signHS256(t, testSecret, c))
	wantError(t, err, "Invalid token claims: Role must be ADMIN or EMPLOYEE; org_id must be a valid UUID; "+
		"employee_id must be a valid UUID; email must be a valid email", "UNAUTHORIZED")
}

func TestBearerTokenParsesAuthorizationHeader(t *testing.T) {
	t.Parallel()
	ok := map[string]string{
		"Bearer abc.def.ghi":     "abc.def.ghi",
		"bearer abc":             "abc",
		"BEARER abc":             "abc",
		"  Bearer   abc  ":       "abc",
		"Bearer\tabc":            "abc",
		"bEaReR x.y.z\r\n":       "x.y.z",
		"Bearer eyJ.eyJ.sig-_x=": "eyJ.eyJ.sig-_x=",
	}
	for in, want := range ok {
		got, err := BearerToken(in)
		if err != nil || got != want {
			t.Errorf("BearerToken(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "   ", "Bearer", "Bearer ", "Basic abc", "abc", "Bearer a b", "Token abc", "Bearerabc"} {
		_, err := BearerToken(in)
		wantError(t, err, "Missing or malformed Authorization header", "UNAUTHORIZED")
	}
}

func TestNewVerifierRejectsIncompleteConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"nothing configured": {},
		"relative JWKS URL":  {JWKSURL: "/.well-known/jwks.json"},
		"non-http JWKS URL":  {JWKSURL: "file:///etc/jwks.json"},
		"JWKS URL w/o host":  {JWKSURL: "https:///jwks"},
	} {
		if _, err := NewVerifier(cfg); err == nil {
			t.Errorf("%s: NewVerifier succeeded", name)
		}
	}
}

func TestMintRoundTripsThroughVerify(t *testing.T) {
	t.Parallel()
	v, err := NewVerifier(Config{Secret: testSecret, Audience: "authenticated", Issuer: "fieldtrack-dev"})
	if err != nil {
		t.Fatal(err)
	}
	emp := uuid.NullUUID{UUID: uuid.MustParse(testEmp), Valid: true}
	tok, err := Mint(testSecret, MintOptions{
		Role: RoleEmployee, OrgID: uuid.MustParse(testOrg), EmployeeID: emp,
		Email: "worker@example.com", Issuer: "fieldtrack-dev",
	})
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	id, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if id.UserID == uuid.Nil || id.Subject != id.UserID.String() {
		t.Errorf("subject = %q / %v", id.Subject, id.UserID)
	}
	if id.Role != RoleEmployee || id.OrgID.String() != testOrg || id.EmployeeID != emp || id.Email != "worker@example.com" {
		t.Errorf("identity = %+v", id)
	}

	expired, err := Mint(testSecret, MintOptions{Role: RoleAdmin, OrgID: uuid.New(), Issuer: "fieldtrack-dev", TTL: -time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), expired)
	wantError(t, err, genericMsg, "UNAUTHORIZED")

	if _, err := Mint(nil, MintOptions{}); err == nil {
		t.Error("Mint with empty secret succeeded")
	}
}

// --- JWKS ---

// jwksServer serves a mutable key set and counts fetches.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int64

	mu     sync.Mutex
	keys   []map[string]string
	status int
	gate   chan struct{} // when non-nil, each request waits for it to close
}

func newJWKSServer(t *testing.T) *jwksServer {
	t.Helper()
	s := &jwksServer{status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		gate, status := s.gate, s.status
		body, _ := json.Marshal(map[string]any{"keys": s.keys})
		s.mu.Unlock()
		if gate != nil {
			<-gate
		}
		if status != http.StatusOK {
			http.Error(w, "unavailable", status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) publish(keys ...map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, keys...)
}

func (s *jwksServer) setStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = code
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func ecJWK(t *testing.T, kid string) (*ecdsa.PrivateKey, map[string]string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, map[string]string{
		"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
		"x": b64(k.X.FillBytes(make([]byte, 32))), "y": b64(k.Y.FillBytes(make([]byte, 32))),
	}
}

func rsaJWK(t *testing.T, kid string) (*rsa.PrivateKey, map[string]string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k, map[string]string{
		"kty": "RSA", "kid": kid, // no alg/use: both are optional in JWKs
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes()),
	}
}

func newJWKSVerifier(t *testing.T, srv *jwksServer, clk *clock) *Verifier {
	t.Helper()
	v, err := NewVerifier(Config{JWKSURL: srv.URL + "/auth/v1/.well-known/jwks.json", Audience: "authenticated", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifyAcceptsES256AndRS256TokensFromJWKS(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := newJWKSServer(t)
	ecPriv, ecPub := ecJWK(t, "ec-1")
	rsaPriv, rsaPub := rsaJWK(t, "rsa-1")
	encKey := map[string]string{"kty": "RSA", "kid": "enc-1", "use": "enc", "n": rsaPub["n"], "e": rsaPub["e"]}
	srv.publish(ecPub, rsaPub, encKey)
	v := newJWKSVerifier(t, srv, clk)

	id, err := v.Verify(context.Background(), signWithKid(t, jwt.SigningMethodES256, ecPriv, "ec-1", employeeClaims(clk.Now())))
	if err != nil {
		t.Fatalf("ES256: %v", err)
	}
	if id.Role != RoleEmployee || !id.EmployeeID.Valid {
		t.Errorf("identity = %+v", id)
	}
	if _, err := v.Verify(context.Background(), signWithKid(t, jwt.SigningMethodRS256, rsaPriv, "rsa-1", adminClaims(clk.Now()))); err != nil {
		t.Fatalf("RS256: %v", err)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1 (key set is cached)", n)
	}

	// A use:"enc" key is never a verification key.
	_, err = v.Verify(context.Background(), signWithKid(t, jwt.SigningMethodRS256, rsaPriv, "enc-1", adminClaims(clk.Now())))
	wantError(t, err, genericMsg, "UNAUTHORIZED")
	// A key pinned to ES256 cannot verify RS256, and kid-less tokens are refused.
	_, err = v.Verify(context.Background(), signWithKid(t, jwt.SigningMethodRS256, rsaPriv, "ec-1", adminClaims(clk.Now())))
	wantError(t, err, genericMsg, "UNAUTHORIZED")
	noKid, _ := jwt.NewWithClaims(jwt.SigningMethodES256, adminClaims(clk.Now())).SignedString(ecPriv)
	_, err = v.Verify(context.Background(), noKid)
	wantError(t, err, genericMsg, "UNAUTHORIZED")
}

func TestVerifyRefetchesJWKSOnUnknownKid(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := newJWKSServer(t)
	oldPriv, oldPub := ecJWK(t, "old")
	newPriv, newPub := ecJWK(t, "new")
	srv.publish(oldPub)
	v := newJWKSVerifier(t, srv, clk)

	if _, err := v.Verify(context.Background(), signWithKid(t, jwt.SigningMethodES256, oldPriv, "old", adminClaims(clk.Now()))); err != nil {
		t.Fatalf("old key: %v", err)
	}
	srv.publish(newPub)
	clk.Advance(jwksMinInterval) // unknown-kid refetches are rate limited

	if _, err := v.Verify(context.Background(), signWithKid(t, jwt.SigningMethodES256, newPriv, "new", adminClaims(clk.Now()))); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2 (initial + one refetch)", n)
	}
}

func TestVerifyRejectsKidThatNeverAppearsWithoutHammeringIdP(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := newJWKSServer(t)
	_, pub := ecJWK(t, "real")
	srv.publish(pub)
	rogue, _ := ecJWK(t, "unused")
	v := newJWKSVerifier(t, srv, clk)

	for i := range 5 {
		_, err := v.Verify(context.Background(), signWithKid(t, jwt.SigningMethodES256, rogue, "made-up", adminClaims(clk.Now())))
		wantError(t, err, genericMsg, "UNAUTHORIZED")
		if i == 2 {
			clk.Advance(jwksMinInterval)
		}
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2 (initial + one refetch per 10 s window)", n)
	}
}

func TestVerifyConcurrentJWKSVerificationsFetchOnce(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := newJWKSServer(t)
	priv, pub := ecJWK(t, "k1")
	srv.publish(pub)
	gate := make(chan struct{})
	srv.mu.Lock()
	srv.gate = gate
	srv.mu.Unlock()
	v := newJWKSVerifier(t, srv, clk)
	tok := signWithKid(t, jwt.SigningMethodES256, priv, "k1", adminClaims(clk.Now()))

	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), tok)
			errs <- err
		})
	}
	// Hold the first fetch open until it has arrived, so the other
	// verifications pile up behind it rather than finding a cached set.
	for srv.fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Errorf("fetches = %d, want 1", got)
	}
}

func TestVerifyKeepsServingCachedKeysWhenJWKSFetchFails(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := newJWKSServer(t)
	priv, pub := ecJWK(t, "k1")
	srv.publish(pub)
	v := newJWKSVerifier(t, srv, clk)
	verify := func() error {
		_, err := v.Verify(context.Background(), signWithKid(t, jwt.SigningMethodES256, priv, "k1", adminClaims(clk.Now())))
		return err
	}

	if err := verify(); err != nil {
		t.Fatal(err)
	}
	srv.setStatus(http.StatusServiceUnavailable)
	clk.Advance(jwksTTL + time.Second) // cache is stale, refresh fails
	if err := verify(); err != nil {
		t.Fatalf("stale set not used: %v", err)
	}
	if err := verify(); err != nil { // within the retry window: no fetch
		t.Fatal(err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2", n)
	}
}

func TestVerifyFailsGenericallyWhenJWKSUnavailable(t *testing.T) {
	t.Parallel()
	clk := newClock()
	srv := newJWKSServer(t)
	srv.setStatus(http.StatusInternalServerError)
	priv, _ := ecJWK(t, "k1")
	v := newJWKSVerifier(t, srv, clk)

	_, err := v.Verify(context.Background(), signWithKid(t, jwt.SigningMethodES256, priv, "k1", adminClaims(clk.Now())))
	wantError(t, err, genericMsg, "UNAUTHORIZED")
}

func TestParseJWKSSkipsUnusableKeys(t *testing.T) {
	t.Parallel()
	_, good := ecJWK(t, "good")
	offCurve := map[string]string{"kty": "EC", "crv": "P-256", "kid": "bad", "x": b64(make([]byte, 32)), "y": b64(make([]byte, 32))}
	p384 := map[string]string{"kty": "EC", "crv": "P-384", "kid": "p384", "x": good["x"], "y": good["y"]}
	noKid := map[string]string{"kty": "EC", "crv": "P-256", "x": good["x"], "y": good["y"]}
	evenE := map[string]string{"kty": "RSA", "kid": "rsa", "n": b64([]byte{1, 2, 3}), "e": b64([]byte{2})}
	body, _ := json.Marshal(map[string]any{"keys": []any{offCurve, p384, noKid, evenE, good, "junk"}})

	keys, err := parseJWKS(body)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for kid := range keys {
		kids = append(kids, kid)
	}
	if !reflect.DeepEqual(kids, []string{"good"}) {
		t.Errorf("kids = %v, want [good]", kids)
	}
	if _, err := parseJWKS([]byte(`{"keys":[]}`)); err == nil {
		t.Error("empty key set accepted")
	}
}
