package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// fuzzClaims is a claim set as the Auth Hook writes it, as JSON, at the fuzz clock's time; extra claims
// are added or replace the hook's.
func fuzzClaims(now time.Time, extra string) string {
	c := `{"sub":"` + testUser + `","role":"ADMIN","org_id":"` + testOrg + `","email":"admin@example.com",` +
		`"aud":"authenticated","iat":` + jsonInt(now.Unix()) + `,"exp":` + jsonInt(now.Add(time.Hour).Unix())
	if extra != "" {
		c += "," + extra
	}
	return c + "}"
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// signFuzz signs header and payload (JSON text, any bytes) as a compact HS256 JWS with secret.
func signFuzz(secret []byte, header, payload string) string {
	signing := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

const hs256Header = `{"alg":"HS256","typ":"JWT"}`

// checkVerified holds Verify to its contract for one token: a failure is an *Error with a public message
// and one of the package's codes; a success is a token HMAC-signed with the secret, whose identity is
// what its claims say, and that verifies again (from the cache) to the same identity.
func checkVerified(t *testing.T, v *Verifier, now time.Time, token string) {
	t.Helper()
	id, err := v.Verify(context.Background(), token)
	if err != nil {
		var ae *Error
		if !errors.As(err, &ae) || ae.Message == "" || (ae.Code != CodeUnauthorized && ae.Code != CodeAuthHookMissing) {
			t.Fatalf("Verify(%q) = %#v, want an *Error", token, err)
		}
		return
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("Verify accepted %q, which is not a compact JWS", token)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	mac := hmac.New(sha256.New, testSecret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		t.Fatalf("Verify accepted %q, whose signature is not the secret's", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || !bytes.Equal(id.Claims, payload) {
		t.Fatalf("Verify(%q): claims %q, want the payload %q", token, id.Claims, payload)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("Verify accepted the payload %q: %v", payload, err)
	}
	switch {
	case id.AuthType != AuthTypeJWT || (id.Role != RoleAdmin && id.Role != RoleEmployee) || claims["role"] != string(id.Role):
		t.Fatalf("Verify(%q): auth %q role %q from claims %s", token, id.AuthType, id.Role, payload)
	case id.Subject != claims["sub"] || !strings.EqualFold(id.UserID.String(), id.Subject):
		t.Fatalf("Verify(%q): subject %q user %s from claims %s", token, id.Subject, id.UserID, payload)
	case !strings.EqualFold(id.OrgID.String(), claims["org_id"].(string)):
		t.Fatalf("Verify(%q): org %s from claims %s", token, id.OrgID, payload)
	case id.Role == RoleEmployee && !id.EmployeeID.Valid:
		t.Fatalf("Verify(%q): an EMPLOYEE without employee_id, claims %s", token, payload)
	case id.ExpiresAt.Before(now.Add(-defaultLeeway)):
		t.Fatalf("Verify(%q): expired at %v (now %v)", token, id.ExpiresAt, now)
	case id.APIKeyID.Valid || id.Scopes != nil || id.SessionID.Valid:
		t.Fatalf("Verify(%q): %+v carries what an external HS256 token cannot", token, id)
	}
	again, err := v.Verify(context.Background(), token)
	if err != nil || again.Subject != id.Subject || again.Role != id.Role || again.OrgID != id.OrgID ||
		again.EmployeeID != id.EmployeeID || !bytes.Equal(again.Claims, id.Claims) {
		t.Fatalf("Verify(%q) again = %+v, %v; first %+v", token, again, err, id)
	}
}

func newFuzzVerifier(tb testing.TB) (*Verifier, time.Time) {
	tb.Helper()
	now := time.Unix(1_750_000_000, 0)
	v, err := NewVerifier(Config{Secret: testSecret, Audience: "authenticated", Now: func() time.Time { return now }})
	if err != nil {
		tb.Fatal(err)
	}
	return v, now
}

// FuzzVerify runs an HS256 verifier on arbitrary token strings (see checkVerified).
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_750_000_000, 0)
	admin := signFuzz(testSecret, hs256Header, fuzzClaims(now, ""))
	for _, s := range []string{
		admin,
		signFuzz(testSecret, hs256Header, fuzzClaims(now, `"role":"EMPLOYEE","employee_id":"`+testEmp+`"`)),
		signFuzz(testSecret, hs256Header, fuzzClaims(now, `"exp":`+jsonInt(now.Add(-time.Hour).Unix()))),
		signFuzz([]byte("another secret"), hs256Header, fuzzClaims(now, "")),
		signFuzz(testSecret, `{"alg":"none"}`, fuzzClaims(now, "")),
		signFuzz(testSecret, `{"alg":"HS512"}`, fuzzClaims(now, "")),
		signFuzz(testSecret, `{"alg":"RS256","kid":"k1"}`, fuzzClaims(now, "")),
		strings.TrimSuffix(admin, admin[strings.LastIndex(admin, ".")+1:]), // no signature
		admin + "=", admin + ".", "." + admin, strings.ReplaceAll(admin, "-", "+"),
		"", ".", "..", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..", strings.Repeat("A", 5000) + ".." + strings.Repeat("A", 43),
	} {
		f.Add(s)
	}
	v, now := newFuzzVerifier(f)
	f.Fuzz(func(t *testing.T, token string) {
		checkVerified(t, v, now, token)
	})
}

// FuzzVerifySignedClaims signs an arbitrary header and payload with the verifier's secret, so that inputs
// get past the signature to the checks of the registered and application claims (see checkVerified).
func FuzzVerifySignedClaims(f *testing.F) {
	now := time.Unix(1_750_000_000, 0)
	for _, p := range []string{
		fuzzClaims(now, ""),
		fuzzClaims(now, `"role":"EMPLOYEE","employee_id":"`+testEmp+`"`),
		fuzzClaims(now, `"role":"EMPLOYEE","employee_id":null`),
		fuzzClaims(now, `"role":"EMPLOYEE","employee_id":""`),
		fuzzClaims(now, `"role":"EMPLOYEE","employee_id":42`),
		fuzzClaims(now, `"role":"admin"`),
		fuzzClaims(now, `"role":["ADMIN"]`),
		fuzzClaims(now, `"org_id":"`+strings.ToUpper(testOrg)+`"`),
		fuzzClaims(now, `"org_id":"{`+testOrg+`}"`),
		fuzzClaims(now, `"sub":"urn:uuid:`+testUser+`"`),
		fuzzClaims(now, `"sub":12`),
		fuzzClaims(now, `"email":""`),
		fuzzClaims(now, `"email":"Bob <bob@example.com>"`),
		fuzzClaims(now, `"aud":["other","authenticated"]`),
		fuzzClaims(now, `"aud":"other"`),
		fuzzClaims(now, `"exp":"2026-01-01"`),
		fuzzClaims(now, `"exp":1e300`),
		fuzzClaims(now, `"exp":9.2e18`),
		fuzzClaims(now, `"exp":1750003600.5`),
		fuzzClaims(now, `"iat":`+jsonInt(now.Add(time.Hour).Unix())),
		fuzzClaims(now, `"nbf":`+jsonInt(now.Add(time.Hour).Unix())),
		fuzzClaims(now, `"role":"EMPLOYEE","role":"ADMIN"`),
		fuzzClaims(now, `"session_id":"not-a-uuid"`),
		fuzzClaims(now, `"iss":"https://evil.example/auth/v1"`),
		fuzzClaims(now, `"x":"\u0000"`),
		fuzzClaims(now, "") + " ", fuzzClaims(now, "") + "{}", `null`, `[]`, `"claims"`, ``,
	} {
		f.Add(hs256Header, p)
	}
	for _, h := range []string{`{"alg":"HS256"}`, `{"alg":"none"}`, `{"alg":"ES256","kid":"k1"}`, `{"alg":"HS256","crit":["exp"]}`,
		`{"alg":"HS256","kid":"../../etc/passwd"}`, `{"typ":"JWT"}`, `{"alg":"hs256"}`, `{"alg":"HS256","alg":"none"}`, `null`, ``} {
		f.Add(h, fuzzClaims(now, ""))
	}
	v, now := newFuzzVerifier(f)
	f.Fuzz(func(t *testing.T, header, payload string) {
		checkVerified(t, v, now, signFuzz(testSecret, header, payload))
	})
}

// FuzzBearerToken: BearerToken takes "Bearer" (any case) and one token, with any white space around;
// anything else is the 401 *Error of a malformed header.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc.def.ghi", "bearer abc", "BEARER  abc ", "\tBearer\tabc\n", "Bearer", "Bearer ",
		"Bearer a b", "Basic dXNlcjpwdw==", "Bearerabc", "", " ", "Bearer\u00a0abc", "Bearer\u3000abc", "Bearer \x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		token, err := BearerToken(header)
		fields := strings.Fields(header)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != CodeUnauthorized {
				t.Fatalf("BearerToken(%q) = %#v", header, err)
			}
			if len(fields) == 2 && strings.EqualFold(fields[0], "Bearer") {
				t.Fatalf("BearerToken(%q) refused a bearer header", header)
			}
			return
		}
		if len(fields) != 2 || !strings.EqualFold(fields[0], "Bearer") || token != fields[1] || token == "" {
			t.Fatalf("BearerToken(%q) = %q", header, token)
		}
	})
}
