package httpapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

func signHS256(t *testing.T, secret string, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAuth_BadTokensAre401WithTheirCode(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	valid := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": uuid.NewString(), "role": "ADMIN", "org_id": org.ID.String(),
			"aud": "authenticated", "exp": time.Now().Add(time.Hour).Unix()}
	}
	with := func(k string, v any) jwt.MapClaims { c := valid(); c[k] = v; return c }
	without := func(k string) jwt.MapClaims { c := valid(); delete(c, k); return c }

	cases := []struct {
		name, header, code, message string
	}{
		{"no header", "", "UNAUTHORIZED", "Missing or malformed Authorization header"},
		{"not bearer", "Basic abc", "UNAUTHORIZED", "Missing or malformed Authorization header"},
		{"malformed", "Bearer not.a.jwt", "UNAUTHORIZED", "Invalid or missing authentication token"},
		{"expired", "Bearer " + signHS256(t, testfactory.Secret, with("exp", time.Now().Add(-time.Hour).Unix())), "UNAUTHORIZED", "Invalid or missing authentication token"},
		{"wrong signature", "Bearer " + signHS256(t, "another-secret-0123456789abcdef", valid()), "UNAUTHORIZED", "Invalid or missing authentication token"},
		{"wrong audience", "Bearer " + signHS256(t, testfactory.Secret, with("aud", "anon")), "UNAUTHORIZED", "Invalid or missing authentication token"},
		{"no role claim", "Bearer " + signHS256(t, testfactory.Secret, without("role")), "AUTH_HOOK_MISSING", "JWT missing required claims"},
		{"no org claim", "Bearer " + signHS256(t, testfactory.Secret, without("org_id")), "AUTH_HOOK_MISSING", "JWT missing required claims"},
		{"employee without employee_id", "Bearer " + signHS256(t, testfactory.Secret, with("role", "EMPLOYEE")), "AUTH_HOOK_MISSING", "JWT missing employee_id claim for EMPLOYEE role"},
		{"bad role", "Bearer " + signHS256(t, testfactory.Secret, with("role", "ROOT")), "UNAUTHORIZED", "Invalid token claims: Role must be ADMIN or EMPLOYEE"},
		{"bad sub", "Bearer " + signHS256(t, testfactory.Secret, with("sub", "x")), "UNAUTHORIZED", "Invalid user id in token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.call("GET", "/admin/sessions", "", nil, "Authorization", c.header)
			expectError(t, r, http.StatusUnauthorized, c.code, c.message)
		})
	}
	expect(t, h.call("GET", "/admin/sessions", signHS256(t, testfactory.Secret, valid()), nil), http.StatusOK)
}

func TestAuth_APIKeyWithoutKeysConfiguredIs401(t *testing.T) {
	t.Parallel()
	h := setup(t)
	r := h.call("GET", "/admin/sessions", "", nil, "X-API-Key", "ft_live_"+"00112233445566778899aabbccddeeff0011223344556677")
	expectError(t, r, http.StatusUnauthorized, "INVALID_API_KEY", "")
}

// A token from an identity provider with asymmetric keys (Supabase Auth style: ES256 with kid, keys at a
// JWKS URL) verifies against a key server on loopback.
func TestAuth_ES256TokenVerifiesThroughJWKS(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": "key-1", "use": "sig", "alg": "ES256",
		"x": b64(key.X.FillBytes(make([]byte, 32))), "y": b64(key.Y.FillBytes(make([]byte, 32))),
	}}})
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	}))
	defer keys.Close()

	cfg := testConfig()
	cfg.JWTSecret = nil
	cfg.JWKSURL = keys.URL + "/auth/v1/.well-known/jwks.json"
	h := setupWith(t, cfg, testfactory.Pool(t))
	org := testfactory.NewOrg(t)
	emp := testfactory.NewEmployee(t, org, "Jwks")

	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"sub": emp.UserID.String(), "role": "EMPLOYEE", "org_id": org.ID.String(), "employee_id": emp.ID.String(),
		"aud": "authenticated", "exp": time.Now().Add(time.Hour).Unix(), "email": "jwks@example.test",
	})
	tok.Header["kid"] = "key-1"
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, h.call("POST", "/attendance/check-in", signed, nil), http.StatusCreated)
	// HS256 tokens are not accepted when only JWKS is configured.
	expectError(t, h.call("POST", "/attendance/check-out", testfactory.EmployeeToken(t, emp), nil),
		http.StatusUnauthorized, "UNAUTHORIZED", "Invalid or missing authentication token")
}
