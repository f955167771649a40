package httpapi

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/identity"
)

// Built-in identity over HTTP. Under /auth/v1 the server speaks the subset of Supabase Auth (GoTrue)
// that @supabase/supabase-js and @supabase/ssr use to sign in, refresh, read the user and sign out, with
// GoTrue's bodies and error shapes, so the original dashboard logs in by pointing its Supabase URL here;
// POST /auth/login is the same login in this API's envelope. The apikey header those clients send is
// accepted and ignored: the credentials are what counts.

// gotrueAPIVersion is the API version GoTrue answers with; from it supabase-js reads error codes from
// the body's "code".
const gotrueAPIVersion = "2024-01-01"

// gotrueError writes an error as GoTrue does: {code, message} (and msg, for clients of older versions).
func gotrueError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Supabase-Api-Version", gotrueAPIVersion)
	writeJSON(w, status, map[string]any{"code": code, "error_code": code, "message": msg, "msg": msg})
}

type tokenBody struct {
	Email        string `json:"email"`
	Password     string `json:"password"`
	RefreshToken string `json:"refresh_token"`
}

// gotrueToken is POST /auth/v1/token?grant_type=password|refresh_token.
func (s *Server) gotrueToken(w http.ResponseWriter, r *http.Request) error {
	var body tokenBody
	if err := decodeBody(r, &body); err != nil {
		gotrueError(w, http.StatusBadRequest, "bad_json", "Could not parse request body as JSON")
		return nil
	}
	var sess identity.Session
	var err error
	switch grant := r.URL.Query().Get("grant_type"); grant {
	case "password":
		if body.Email == "" || body.Password == "" {
			gotrueError(w, http.StatusBadRequest, "validation_failed", "Email and password are required")
			return nil
		}
		sess, err = s.identity.PasswordLogin(r.Context(), body.Email, body.Password, s.clientOf(r))
	case "refresh_token":
		if body.RefreshToken == "" {
			gotrueError(w, http.StatusBadRequest, "validation_failed", "refresh_token is required")
			return nil
		}
		sess, err = s.identity.Refresh(r.Context(), body.RefreshToken, s.clientOf(r))
	default:
		gotrueError(w, http.StatusBadRequest, "unsupported_grant_type",
			"grant_type must be password or refresh_token, not "+strconv.Quote(grant))
		return nil
	}
	if status, code, msg, ok := gotrueFailure(err); ok {
		if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", retryAfter(err))
		}
		gotrueError(w, status, code, msg)
		return nil
	}
	if err != nil {
		return err
	}
	w.Header().Set("X-Supabase-Api-Version", gotrueAPIVersion)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, sessionJSON(sess))
	return nil
}

// gotrueFailure words the flows' errors as GoTrue does.
func gotrueFailure(err error) (status int, code, msg string, ok bool) {
	var limited *identity.RateLimitedError
	switch {
	case errors.Is(err, identity.ErrInvalidCredentials):
		return http.StatusBadRequest, "invalid_credentials", "Invalid login credentials", true
	case errors.Is(err, identity.ErrRefused):
		return http.StatusBadRequest, "user_banned", "User is banned", true
	case errors.Is(err, identity.ErrSessionEnded):
		return http.StatusBadRequest, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found", true
	case errors.As(err, &limited):
		return http.StatusTooManyRequests, "over_request_rate_limit", "Request rate limit reached", true
	case errors.Is(err, identity.ErrNoSigningKey):
		// 5xx: supabase-js retries it and keeps the session.
		return http.StatusServiceUnavailable, "unexpected_failure", "Sign-in is starting up; try again", true
	}
	return 0, "", "", false
}

func retryAfter(err error) string {
	var limited *identity.RateLimitedError
	if !errors.As(err, &limited) {
		return "1"
	}
	return strconv.Itoa(max(1, int(math.Ceil(limited.RetryAfter.Seconds()))))
}

// gotrueUser is GET /auth/v1/user: the caller's user object.
func (s *Server) gotrueUser(w http.ResponseWriter, r *http.Request) error {
	id, ok := s.gotrueCaller(w, r)
	if !ok {
		return nil
	}
	acct, found, err := s.identity.AccountOf(r.Context(), id.OrgID, id.UserID)
	if err != nil {
		return err
	}
	if !found {
		gotrueError(w, http.StatusNotFound, "user_not_found", "User not found")
		return nil
	}
	w.Header().Set("X-Supabase-Api-Version", gotrueAPIVersion)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, userJSON(acct))
	return nil
}

// gotrueLogout is POST /auth/v1/logout?scope=global|local|others: it ends sessions (204).
func (s *Server) gotrueLogout(w http.ResponseWriter, r *http.Request) error {
	id, ok := s.gotrueCaller(w, r)
	if !ok {
		return nil
	}
	scope := r.URL.Query().Get("scope")
	switch scope {
	case "":
		scope = "global"
	case "global", "local", "others":
	default:
		gotrueError(w, http.StatusBadRequest, "validation_failed", "scope must be global, local or others")
		return nil
	}
	if err := s.identity.SignOut(r.Context(), id, scope); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// gotrueCaller authenticates the bearer token of a /auth/v1 route and checks, in the database, that its
// user, employee and session may still act; it writes GoTrue's error when not.
func (s *Server) gotrueCaller(w http.ResponseWriter, r *http.Request) (auth.Identity, bool) {
	id, err := s.authenticate(r)
	if err != nil {
		gotrueError(w, http.StatusUnauthorized, "no_authorization", "This endpoint requires a valid Bearer token")
		return auth.Identity{}, false
	}
	infoOf(r.Context()).identity = &id
	if err := s.callerActive(r); err != nil {
		e := toError(err)
		if e.Status != http.StatusUnauthorized {
			s.writeError(w, r, err)
			return auth.Identity{}, false
		}
		code := "session_not_found"
		if e.Code != "SESSION_ENDED" {
			code = "user_banned"
		}
		gotrueError(w, http.StatusForbidden, code, e.Message)
		return auth.Identity{}, false
	}
	return id, true
}

// callerActive runs the caller check (app.check_caller) on its own, for routes that otherwise do not
// reach the database in the caller's name.
func (s *Server) callerActive(r *http.Request) error { return s.callerActiveIn(r.Context(), r) }

// callerActiveIn is callerActive under ctx instead of the request's own.
func (s *Server) callerActiveIn(ctx context.Context, r *http.Request) error {
	_, err := db.Do(ctx, s.pool, claimsOf(r), s.txOptions(r, true), func(tx db.DBTX) (int32, error) {
		return s.q.CallerActive(ctx, tx)
	})
	return err
}

// jwks is GET /auth/v1/.well-known/jwks.json: the public keys of built-in identity.
func (s *Server) jwks(w http.ResponseWriter, _ *http.Request) error {
	keys := s.identity.Keys().JWKS()
	if keys == nil { // not loaded yet: an empty set must not be cached as the truth
		return &Error{Status: http.StatusServiceUnavailable, Code: "SERVICE_UNAVAILABLE",
			Message: "Signing keys are not loaded yet", RetryAfter: 1}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=600")
	_, _ = w.Write(keys)
	return nil
}

type loginBody struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// login is POST /auth/login: email and password for a session, in this API's envelope.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var body loginBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	sess, err := s.identity.PasswordLogin(r.Context(), body.Email, body.Password, s.clientOf(r))
	if status, code, msg, ok := gotrueFailure(err); ok {
		e := &Error{Status: status, Code: code, Message: msg}
		switch status {
		case http.StatusBadRequest:
			e.Status, e.Code = http.StatusUnauthorized, "INVALID_CREDENTIALS"
			if errors.Is(err, identity.ErrRefused) {
				e.Status, e.Code, e.Message = http.StatusForbidden, "ACCOUNT_DISABLED", "This account may not sign in"
			}
		case http.StatusTooManyRequests:
			e.Code = "RATE_LIMITED"
			e.RetryAfter, _ = strconv.Atoi(retryAfter(err))
		case http.StatusServiceUnavailable:
			e.Code, e.RetryAfter = "SERVICE_UNAVAILABLE", 1
		}
		return e
	}
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return respond(w, http.StatusOK, sessionJSON(sess))
}

// clientOf is a login's origin as built-in identity needs it.
func (s *Server) clientOf(r *http.Request) identity.Client {
	return identity.Client{IP: s.clientKey(r), UserAgent: r.UserAgent(), Issuer: s.publicURL(r) + auth.LocalIssuerSuffix}
}

// sessionJSON is a session as GoTrue answers it.
func sessionJSON(s identity.Session) map[string]any {
	return map[string]any{
		"access_token":  s.AccessToken,
		"token_type":    "bearer",
		"expires_in":    int(s.ExpiresIn.Seconds()),
		"expires_at":    s.ExpiresAt.Unix(),
		"refresh_token": s.RefreshToken,
		"user":          userJSON(s.Account),
		"weak_password": nil,
	}
}

// userJSON is GoTrue's user object; the API role and organization are in app_metadata, as the
// original's hook had them.
func userJSON(a identity.Account) map[string]any {
	meta := map[string]any{"provider": "email", "providers": []string{"email"}, "role": string(a.Role),
		"org_id": a.OrgID}
	if a.EmployeeID.Valid {
		meta["employee_id"] = a.EmployeeID.UUID
	}
	return map[string]any{
		"id": a.ID, "aud": auth.DefaultAudience, "role": "authenticated", "email": a.Email, "phone": "",
		"email_confirmed_at": a.CreatedAt, "confirmed_at": a.CreatedAt, "last_sign_in_at": a.LastSignInAt,
		"app_metadata": meta, "user_metadata": map[string]any{}, "identities": []any{},
		"created_at": a.CreatedAt, "updated_at": a.CreatedAt, "is_anonymous": false,
	}
}
