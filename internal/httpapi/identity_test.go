package httpapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/identity"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// signIn signs in with a password as supabase-js does and returns the session.
func signIn(t *testing.T, h *harness, l testfactory.Login) map[string]any {
	t.Helper()
	r := h.call("POST", "/auth/v1/token?grant_type=password", "", map[string]any{"email": l.Email, "password": l.Password,
		"gotrue_meta_security": map[string]any{}}, "apikey", "anon-key")
	if r.Status != http.StatusOK {
		t.Fatalf("sign in as %s: %d %s", l.Email, r.Status, r.Raw)
	}
	return r.Body
}

func refresh(h *harness, token string) response {
	return h.call("POST", "/auth/v1/token?grant_type=refresh_token", "", map[string]any{"refresh_token": token},
		"apikey", "anon-key")
}

// claimsOfToken decodes a token's payload (its signature is the server's to check).
func claimsOfToken(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(raw, dst) != nil {
			t.Fatalf("token part %d: %v", i, err)
		}
	}
	return header, claims
}

func gotrueCode(r response) string { s, _ := r.Body["code"].(string); return s }

func TestIdentity_PasswordAccessRefreshRotateReuseAndLogout(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	emp := testfactory.NewEmployee(t, org, "Signs In")
	login := testfactory.GivePassword(t, org.ID, emp.UserID)

	s := signIn(t, h, login)
	access, _ := s["access_token"].(string)
	first, _ := s["refresh_token"].(string)
	user, _ := s["user"].(map[string]any)
	meta, _ := user["app_metadata"].(map[string]any)
	if s["token_type"] != "bearer" || s["expires_in"] != 900.0 || first == "" || user["id"] != emp.UserID.String() ||
		user["email"] != login.Email || meta["role"] != "EMPLOYEE" || meta["org_id"] != org.ID.String() {
		t.Fatalf("session %v", s)
	}
	header, claims := claimsOfToken(t, access)
	if header["alg"] != "ES256" || header["kid"] == nil || claims["role"] != "EMPLOYEE" || claims["org_id"] != org.ID.String() ||
		claims["employee_id"] != emp.ID.String() || claims["aud"] != "authenticated" || claims["sub"] != emp.UserID.String() ||
		claims["email"] != login.Email || claims["iss"] != h.url+"/auth/v1" || claims["session_id"] == nil ||
		claims["exp"].(float64)-claims["iat"].(float64) != 900 {
		t.Fatalf("access token header %v claims %v", header, claims)
	}
	// The token works on the API as an externally issued one does.
	expect(t, h.call("POST", "/attendance/check-in", access, nil), http.StatusCreated)
	if me := h.call("GET", "/auth/me", access, nil).data(); me["id"] != emp.UserID.String() || me["email"] != login.Email {
		t.Fatalf("/auth/me %v", me)
	}
	u := h.call("GET", "/auth/v1/user", access, nil, "apikey", "anon-key")
	expect(t, u, http.StatusOK)
	if u.Body["id"] != emp.UserID.String() || u.Body["aud"] != "authenticated" {
		t.Fatalf("/auth/v1/user %s", u.Raw)
	}

	// Refreshing rotates the refresh token; the same token again within the grace period (two tabs at
	// once) gets the same child.
	r := refresh(h, first)
	expect(t, r, http.StatusOK)
	second, _ := r.Body["refresh_token"].(string)
	if second == "" || second == first || r.Body["access_token"] == access {
		t.Fatalf("refresh %s", r.Raw)
	}
	again := refresh(h, first)
	expect(t, again, http.StatusOK)
	if again.Body["refresh_token"] != second {
		t.Fatalf("a replay within the grace period got %v, want the same child %s", again.Body["refresh_token"], second)
	}
	fresh, _ := r.Body["access_token"].(string)
	expect(t, h.call("GET", "/attendance/my-sessions", fresh, nil), http.StatusOK)

	// The first token presented after the grace period is a stolen one: the whole session ends, the
	// refresh tokens and the access tokens of it.
	if _, err := testfactory.Pool(t).Exec(t.Context(), `UPDATE app.refresh_tokens SET rotated_at = now() - interval '1 minute'
		WHERE token_hash = digest($1, 'sha256')`, first); err != nil {
		t.Fatal(err)
	}
	reused := refresh(h, first)
	if reused.Status != http.StatusBadRequest || gotrueCode(reused) != "refresh_token_not_found" {
		t.Fatalf("reuse %d %s", reused.Status, reused.Raw)
	}
	if r := refresh(h, second); r.Status != http.StatusBadRequest {
		t.Fatalf("the session's newest refresh token after a reuse: %d %s", r.Status, r.Raw)
	}
	expectError(t, h.call("GET", "/attendance/my-sessions", fresh, nil), http.StatusUnauthorized, "SESSION_ENDED", "Session expired or signed out.")
	if u := h.call("GET", "/auth/v1/user", fresh, nil); u.Status != http.StatusForbidden || gotrueCode(u) != "session_not_found" {
		t.Fatalf("/auth/v1/user of an ended session: %d %s", u.Status, u.Raw)
	}
	if out := h.call("POST", "/auth/v1/logout", fresh, nil); out.Status != http.StatusForbidden || gotrueCode(out) != "session_not_found" {
		t.Fatalf("logout of an ended session: %d %s", out.Status, out.Raw)
	}
	var reason string
	if err := testfactory.Pool(t).QueryRow(t.Context(), `SELECT revoked_reason FROM app.auth_sessions WHERE id = $1`,
		claims["session_id"]).Scan(&reason); err != nil || reason != "reuse" {
		t.Fatalf("session revoked for %q (%v), want reuse", reason, err)
	}

	// Logging out ends the session at once.
	s = signIn(t, h, testfactory.Login{Email: strings.ToUpper(login.Email), Password: login.Password}) // any case
	access, _ = s["access_token"].(string)
	expect(t, h.call("GET", "/attendance/my-sessions", access, nil), http.StatusOK)
	out := h.call("POST", "/auth/v1/logout?scope=global", access, nil, "apikey", "anon-key")
	expect(t, out, http.StatusNoContent)
	expectError(t, h.call("GET", "/attendance/my-sessions", access, nil), http.StatusUnauthorized, "SESSION_ENDED", "")
	if r := refresh(h, s["refresh_token"].(string)); r.Status != http.StatusBadRequest {
		t.Fatalf("refresh after logout: %d %s", r.Status, r.Raw)
	}
}

func TestIdentity_UnknownEmailAndWrongPasswordGetTheSameAnswer(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	login := testfactory.GivePassword(t, org.ID, org.AdminUserID)
	wrong := h.call("POST", "/auth/v1/token?grant_type=password", "", map[string]any{"email": login.Email, "password": "not it at all"})
	unknown := h.call("POST", "/auth/v1/token?grant_type=password", "", map[string]any{"email": "nobody-" + uuid.NewString() + "@example.test",
		"password": "not it at all"})
	for _, r := range []response{wrong, unknown} {
		if r.Status != http.StatusBadRequest || gotrueCode(r) != "invalid_credentials" || r.Body["message"] != "Invalid login credentials" ||
			r.Header.Get("X-Supabase-Api-Version") != "2024-01-01" {
			t.Fatalf("failed login: %d %v %s", r.Status, r.Header, r.Raw)
		}
	}
	if string(wrong.Raw) != string(unknown.Raw) {
		t.Fatalf("an unknown email answered %s, a wrong password %s", unknown.Raw, wrong.Raw)
	}
	// The same login in this API's envelope.
	expectError(t, h.call("POST", "/auth/login", "", map[string]any{"email": login.Email, "password": "nope"}),
		http.StatusUnauthorized, "INVALID_CREDENTIALS", "Invalid login credentials")
	ok := h.call("POST", "/auth/login", "", map[string]any{"email": login.Email, "password": login.Password})
	expect(t, ok, http.StatusOK)
	if tok, _ := ok.data()["access_token"].(string); h.call("GET", "/admin/employees", tok, nil).Status != http.StatusOK {
		t.Fatalf("/auth/login's token on an admin route: %s", ok.Raw)
	}
	for name, r := range map[string]response{
		"no grant":   h.call("POST", "/auth/v1/token", "", map[string]any{"email": login.Email, "password": login.Password}),
		"odd grant":  h.call("POST", "/auth/v1/token?grant_type=magic", "", map[string]any{}),
		"no email":   h.call("POST", "/auth/v1/token?grant_type=password", "", map[string]any{"password": "x"}),
		"no refresh": h.call("POST", "/auth/v1/token?grant_type=refresh_token", "", map[string]any{}),
	} {
		if r.Status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, r.Status, r.Raw)
		}
	}
}

func TestIdentity_DisabledUsersAndDeactivatedEmployeesAreRefusedAtOnce(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	admin := testfactory.GivePassword(t, org.ID, org.AdminUserID)
	emp := testfactory.NewEmployee(t, org, "Will Leave")
	worker := testfactory.GivePassword(t, org.ID, emp.UserID)

	a := signIn(t, h, admin)
	e := signIn(t, h, worker)
	adminToken, empToken := a["access_token"].(string), e["access_token"].(string)
	expect(t, h.call("GET", "/attendance/my-sessions", empToken, nil), http.StatusOK)

	// Deactivating the employee: its outstanding access token stops working, its refresh and any new
	// login are refused.
	expect(t, h.call("PATCH", "/admin/employees/"+emp.ID.String()+"/status", adminToken, map[string]any{"is_active": false}), http.StatusOK)
	expectError(t, h.call("GET", "/attendance/my-sessions", empToken, nil), http.StatusUnauthorized, "EMPLOYEE_DEACTIVATED", "")
	// Deactivation ended its sessions.
	if r := refresh(h, e["refresh_token"].(string)); r.Status != http.StatusBadRequest || gotrueCode(r) != "refresh_token_not_found" {
		t.Fatalf("refresh of a deactivated employee: %d %s", r.Status, r.Raw)
	}
	r := h.call("POST", "/auth/v1/token?grant_type=password", "", map[string]any{"email": worker.Email, "password": worker.Password})
	if r.Status != http.StatusBadRequest || gotrueCode(r) != "user_banned" {
		t.Fatalf("login of a deactivated employee: %d %s", r.Status, r.Raw)
	}
	expectError(t, h.call("POST", "/auth/login", "", map[string]any{"email": worker.Email, "password": worker.Password}),
		http.StatusForbidden, "ACCOUNT_DISABLED", "This account may not sign in")

	// Disabling a user: the same, at once.
	expect(t, h.call("GET", "/admin/employees", adminToken, nil), http.StatusOK)
	if _, err := testfactory.Pool(t).Exec(t.Context(), `UPDATE users SET disabled_at = now() WHERE id = $1`, org.AdminUserID); err != nil {
		t.Fatal(err)
	}
	expectError(t, h.call("GET", "/admin/employees", adminToken, nil), http.StatusUnauthorized, "ACCOUNT_DISABLED", "This account is disabled.")
	if r := h.call("GET", "/auth/me", adminToken, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("/auth/me of a disabled user: %d %s", r.Status, r.Raw)
	}
	if r := refresh(h, a["refresh_token"].(string)); r.Status != http.StatusBadRequest {
		t.Fatalf("refresh of a disabled user: %d %s", r.Status, r.Raw)
	}
	r = h.call("POST", "/auth/v1/token?grant_type=password", "", map[string]any{"email": admin.Email, "password": admin.Password})
	if r.Status != http.StatusBadRequest || gotrueCode(r) != "user_banned" {
		t.Fatalf("login of a disabled user: %d %s", r.Status, r.Raw)
	}
	// Tokens of external issuers obey the same check (the user row decides, whoever signed).
	expectError(t, h.call("GET", "/admin/employees", testfactory.AdminToken(t, org), nil), http.StatusUnauthorized, "ACCOUNT_DISABLED", "")
}

func TestIdentity_JWKSServesTheSigningKeyBeforeAndAfterARotation(t *testing.T) {
	h := setup(t) // not parallel: a rotation changes the current key of every test's server
	org := testfactory.NewOrg(t)
	login := testfactory.GivePassword(t, org.ID, org.AdminUserID)
	before := signIn(t, h, login)["access_token"].(string)
	verifies := func(token string) bool {
		t.Helper()
		r := h.call("GET", "/auth/v1/.well-known/jwks.json", "", nil)
		expect(t, r, http.StatusOK)
		keys, _ := r.Body["keys"].([]any)
		header, _ := claimsOfToken(t, token)
		for _, k := range keys {
			m := k.(map[string]any)
			if m["kid"] != header["kid"] {
				continue
			}
			x, _ := base64.RawURLEncoding.DecodeString(m["x"].(string))
			y, _ := base64.RawURLEncoding.DecodeString(m["y"].(string))
			pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
			_, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return pub, nil },
				jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience("authenticated"))
			return err == nil
		}
		return false
	}
	if !verifies(before) {
		t.Fatal("the JWKS does not verify a token the server just issued")
	}
	kid, err := identity.Rotate(t.Context(), testfactory.Pool(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.server.identity.Keys().Load(t.Context()); err != nil { // what each process's reload does
		t.Fatal(err)
	}
	after := signIn(t, h, login)["access_token"].(string)
	if header, _ := claimsOfToken(t, after); header["kid"] != kid {
		t.Fatalf("after the rotation tokens are signed by %v, want %s", header["kid"], kid)
	}
	if !verifies(after) || !verifies(before) {
		t.Fatal("the JWKS lacks the new key or the retired one whose tokens have not expired")
	}
	for _, tok := range []string{before, after} {
		expect(t, h.call("GET", "/admin/employees", tok, nil), http.StatusOK)
	}
}

func TestIdentity_TokensWorkOnEveryRouteAsExternalOnesDo(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	emp := testfactory.NewEmployee(t, org, "Both Ways")
	ours := map[string]string{
		"ADMIN":    signIn(t, h, testfactory.GivePassword(t, org.ID, org.AdminUserID))["access_token"].(string),
		"EMPLOYEE": signIn(t, h, testfactory.GivePassword(t, org.ID, emp.UserID))["access_token"].(string),
	}
	external := map[string]string{"ADMIN": testfactory.AdminToken(t, org), "EMPLOYEE": testfactory.EmployeeToken(t, emp)}
	// Every GET route of the document, with a random id where it takes one: the same status whoever
	// issued the token.
	n := 0
	for path, item := range h.server.spec.doc.Paths.Map() {
		if item.Get == nil || item.Get.Security != nil && len(*item.Get.Security) == 0 || path == eventsPath ||
			strings.HasPrefix(path, "/auth/v1/") {
			continue
		}
		url := strings.NewReplacer("{id}", uuid.NewString(), "{sessionId}", uuid.NewString()).Replace(path)
		if path == "/locations/my-route" {
			url += "?sessionId=" + uuid.NewString()
		}
		if path == "/admin/search" {
			url += "?q=x"
		}
		for _, role := range []string{"ADMIN", "EMPLOYEE"} {
			a, b := h.call("GET", url, ours[role], nil), h.call("GET", url, external[role], nil)
			if a.Status != b.Status {
				t.Errorf("GET %s as %s: %d with a built-in token, %d with an external one (%s)", url, role, a.Status, b.Status, a.Raw)
			}
			if a.Status == http.StatusUnauthorized {
				t.Errorf("GET %s as %s: 401 %s", url, role, a.Raw)
			}
			n++
		}
	}
	if n < 40 {
		t.Fatalf("compared %d requests, want every GET route", n)
	}
	expect(t, h.call("POST", "/attendance/check-in", ours["EMPLOYEE"], nil), http.StatusCreated)
	expect(t, h.call("POST", "/attendance/check-out", ours["EMPLOYEE"], nil), http.StatusOK)
	expect(t, h.call("POST", "/expenses", ours["EMPLOYEE"], map[string]any{"amount": 3, "description": "Both ways"}), http.StatusCreated)
}

func TestIdentity_LoginAttemptsAreLimitedPerAccountAndPerAddress(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.RateLimitDisabled = false
	cfg.RateLimitLoginPerAccount, cfg.RateLimitLoginPerIP = 3, 8
	cfg.RateLimitUserPerMinute, cfg.RateLimitOrgPerMinute = 1000, 1000
	h := setupWith(t, cfg, testfactory.Pool(t))
	org := testfactory.NewOrg(t)
	login := testfactory.GivePassword(t, org.ID, org.AdminUserID)
	try := func(email, password string) response {
		return h.call("POST", "/auth/v1/token?grant_type=password", "", map[string]any{"email": email, "password": password})
	}
	for i := range 3 {
		if r := try(login.Email, "wrong "+string(rune('a'+i))); gotrueCode(r) != "invalid_credentials" {
			t.Fatalf("failure %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	// The account is locked now, even for its right password; another account from the same address
	// is not.
	r := try(strings.ToUpper(login.Email), login.Password)
	if r.Status != http.StatusTooManyRequests || gotrueCode(r) != "over_request_rate_limit" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("the 4th attempt: %d %v %s", r.Status, r.Header, r.Raw)
	}
	other := testfactory.GivePassword(t, org.ID, testfactory.NewEmployee(t, org, "Other").UserID)
	signIn(t, h, other)
	// Per address: 8 attempts a minute in all, whatever the account (5 made so far).
	for range 3 {
		try("nobody-"+uuid.NewString()+"@example.test", "x")
	}
	if r := try(other.Email, other.Password); r.Status != http.StatusTooManyRequests {
		t.Fatalf("the 9th attempt from one address: %d %s", r.Status, r.Raw)
	}
	m := h.call("GET", "/metrics", "", nil)
	for _, want := range []string{`fieldtrack_auth_attempts_total{kind="password",outcome="invalid_credentials"} 6`,
		`fieldtrack_auth_attempts_total{kind="password",outcome="rate_limited"} 2`} {
		if !strings.Contains(string(m.Raw), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// /auth/login is the same login, under the same limits, in this API's envelope.
	r = h.call("POST", "/auth/login", "", map[string]any{"email": login.Email, "password": login.Password})
	expectError(t, r, http.StatusTooManyRequests, "RATE_LIMITED", "Request rate limit reached")
	if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After %q", ra)
	}
}

// The GoTrue routes need a bearer token of a user who may act, and answer GoTrue's errors: 401 without
// one, 404 for a token (of another issuer) whose user this database does not have.
func TestIdentity_GoTrueRoutesRefuseMissingTokensAndUnknownUsers(t *testing.T) {
	t.Parallel()
	h := setup(t)
	for _, tok := range []string{"", "not-a-token"} {
		if r := h.call("GET", "/auth/v1/user", tok, nil); r.Status != http.StatusUnauthorized || gotrueCode(r) != "no_authorization" {
			t.Fatalf("/auth/v1/user with token %q: %d %s", tok, r.Status, r.Raw)
		}
		if r := h.call("POST", "/auth/v1/logout", tok, nil); r.Status != http.StatusUnauthorized || gotrueCode(r) != "no_authorization" {
			t.Fatalf("logout with token %q: %d %s", tok, r.Status, r.Raw)
		}
	}
	org := testfactory.NewOrg(t)
	stranger := testfactory.Employee{OrgID: org.ID, ID: uuid.New(), UserID: uuid.New()}
	if r := h.call("GET", "/auth/v1/user", testfactory.EmployeeToken(t, stranger), nil); r.Status != http.StatusNotFound ||
		gotrueCode(r) != "user_not_found" {
		t.Fatalf("/auth/v1/user of a user this database does not have: %d %s", r.Status, r.Raw)
	}
	if r := h.call("POST", "/auth/v1/logout?scope=everywhere", testfactory.AdminToken(t, org), nil); r.Status != http.StatusBadRequest ||
		gotrueCode(r) != "validation_failed" {
		t.Fatalf("logout with an unknown scope: %d %s", r.Status, r.Raw)
	}
}

func TestIdentity_AnswersTheBrowsersPreflight(t *testing.T) {
	t.Parallel()
	h := setup(t)
	r := h.call("OPTIONS", "/auth/v1/token?grant_type=password", "", nil, "Origin", "http://dashboard.test",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "apikey,authorization,content-type,x-client-info,x-supabase-api-version")
	if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "http://dashboard.test" ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "apikey") {
		t.Fatalf("preflight %d %v", r.Status, r.Header)
	}
}

// The per-account limit takes its token before the password is checked: guesses sent at once cannot
// all pass one look at the bucket.
func TestIdentity_ConcurrentGuessesCannotPassTheAccountLimit(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.RateLimitDisabled = false
	cfg.RateLimitLoginPerAccount, cfg.RateLimitLoginPerIP = 3, 10_000
	cfg.RateLimitUserPerMinute, cfg.RateLimitOrgPerMinute = 100_000, 100_000
	h := setupWith(t, cfg, testfactory.Pool(t))
	org := testfactory.NewOrg(t)
	login := testfactory.GivePassword(t, org.ID, org.AdminUserID)
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			r := h.call("POST", "/auth/v1/token?grant_type=password", "",
				map[string]any{"email": login.Email, "password": fmt.Sprintf("wrong guess %d", i)})
			mu.Lock()
			codes[gotrueCode(r)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes["invalid_credentials"] != 3 || codes["over_request_rate_limit"] != 37 {
		t.Fatalf("40 concurrent guesses against a limit of 3 failures: %v", codes)
	}
	// A right password does not count: signing in and out does not lock the account.
	other := testfactory.GivePassword(t, org.ID, testfactory.NewEmployee(t, org, "Often In").UserID)
	for range 5 {
		signIn(t, h, other)
	}
}

// Failed logins from an address cannot stop the refreshes from it (a dashboard behind the same proxy
// would be signed out), and behind a trusted proxy the address is the client's, not the proxy's.
func TestIdentity_AddressLimitsAreTheClientsAndKeepRefreshesApart(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.RateLimitDisabled = false
	cfg.RateLimitLoginPerAccount, cfg.RateLimitLoginPerIP = 1000, 3
	cfg.RateLimitUserPerMinute, cfg.RateLimitOrgPerMinute = 100_000, 100_000
	h := setupWith(t, cfg, testfactory.Pool(t)) // loopback is a trusted proxy by default
	org := testfactory.NewOrg(t)
	login := testfactory.GivePassword(t, org.ID, org.AdminUserID)
	from := func(addr string) []string { return []string{"X-Forwarded-For", "198.51.100.7, " + addr} }
	try := func(addr string) response {
		return h.call("POST", "/auth/v1/token?grant_type=password", "",
			map[string]any{"email": "nobody-" + uuid.NewString() + "@example.test", "password": "x"}, from(addr)...)
	}
	r := h.call("POST", "/auth/v1/token?grant_type=password", "",
		map[string]any{"email": login.Email, "password": login.Password}, from("203.0.113.5")...)
	expect(t, r, http.StatusOK)
	for range 2 {
		try("203.0.113.5")
	}
	if r := try("203.0.113.5"); r.Status != http.StatusTooManyRequests {
		t.Fatalf("the 4th login from one client: %d %s", r.Status, r.Raw)
	}
	// The client's refresh still works, and so do the logins of another client behind the same proxy
	// (the hop before the last is the client's own to write: it does not count).
	session := h.call("POST", "/auth/v1/token?grant_type=refresh_token", "",
		map[string]any{"refresh_token": signInFrom(t, h, login, "203.0.113.9")}, from("203.0.113.5")...)
	expect(t, session, http.StatusOK)
	if r := try("203.0.113.6"); gotrueCode(r) != "invalid_credentials" {
		t.Fatalf("another client behind the proxy: %d %s", r.Status, r.Raw)
	}
	// An IPv6 client is its /64.
	for range 3 {
		try("2001:db8:1:2::a")
	}
	if r := try("2001:db8:1:2::b"); r.Status != http.StatusTooManyRequests {
		t.Fatalf("a 4th login from the same /64: %d %s", r.Status, r.Raw)
	}

	// Without trusted proxies the header is nobody's word: every login counts for the connection.
	cfg.TrustedProxies = nil
	h = setupWith(t, cfg, testfactory.Pool(t))
	for i := range 3 {
		try(fmt.Sprintf("203.0.113.%d", 20+i))
	}
	if r := try("203.0.113.30"); r.Status != http.StatusTooManyRequests {
		t.Fatalf("X-Forwarded-For believed from an untrusted address: %d %s", r.Status, r.Raw)
	}
}

// signInFrom signs in from a client behind the proxy and returns the refresh token.
func signInFrom(t *testing.T, h *harness, l testfactory.Login, addr string) string {
	t.Helper()
	r := h.call("POST", "/auth/v1/token?grant_type=password", "", map[string]any{"email": l.Email, "password": l.Password},
		"X-Forwarded-For", addr)
	expect(t, r, http.StatusOK)
	return r.Body["refresh_token"].(string)
}

// Built-in identity's tokens carry aud=authenticated (what supabase-js expects) and are accepted whatever
// audience JWT_AUDIENCE requires of an external issuer's tokens.
func TestIdentity_OwnTokensWorkWhateverAudienceExternalOnesNeed(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.JWTAudience = "https://api.fieldtrack.example"
	h := setupWith(t, cfg, testfactory.Pool(t))
	org := testfactory.NewOrg(t)
	s := signIn(t, h, testfactory.GivePassword(t, org.ID, org.AdminUserID))
	expect(t, h.call("GET", "/auth/me", s["access_token"].(string), nil), http.StatusOK)
	// An external token with aud=authenticated is not enough under that setting.
	if r := h.call("GET", "/auth/me", testfactory.AdminToken(t, org), nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("an external token without the configured audience: %d %s", r.Status, r.Raw)
	}
}

// A new password ends the account's sessions; setting the same one again does not.
func TestIdentity_ANewPasswordEndsTheSessions(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	login := testfactory.GivePassword(t, org.ID, org.AdminUserID)
	s := signIn(t, h, login)
	expect(t, h.call("GET", "/auth/me", s["access_token"].(string), nil), http.StatusOK)
	if err := identity.SetPassword(t.Context(), testfactory.Pool(t), login.Email, "a new password 123"); err != nil {
		t.Fatal(err)
	}
	expectError(t, h.call("GET", "/auth/me", s["access_token"].(string), nil), http.StatusUnauthorized, "SESSION_ENDED", "")
	if r := refresh(h, s["refresh_token"].(string)); gotrueCode(r) != "refresh_token_not_found" {
		t.Fatalf("refresh after a password change: %d %s", r.Status, r.Raw)
	}
	// Setting the same password again (fieldtrack seed on every make run) ends nothing.
	login.Password = "a new password 123"
	s = signIn(t, h, login)
	if err := identity.EnsurePassword(t.Context(), testfactory.Pool(t), login.Email, login.Password); err != nil {
		t.Fatal(err)
	}
	expect(t, h.call("GET", "/auth/me", s["access_token"].(string), nil), http.StatusOK)
}

// Two clients refreshing the same token at once (a tab and the dashboard's server) get the same child.
func TestIdentity_ConcurrentRefreshesOfOneTokenGetOneChild(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	s := signIn(t, h, testfactory.GivePassword(t, org.ID, org.AdminUserID))
	var mu sync.Mutex
	children := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			r := refresh(h, s["refresh_token"].(string))
			c, _ := r.Body["refresh_token"].(string)
			mu.Lock()
			children[fmt.Sprint(r.Status, " ", c)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(children) != 1 {
		t.Fatalf("8 concurrent refreshes of one token: %v", children)
	}
	for k := range children {
		if !strings.HasPrefix(k, "200 ") {
			t.Fatalf("8 concurrent refreshes of one token: %v", children)
		}
	}
}
