package auth

import (
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// MintOptions describes a development token.
type MintOptions struct {
	Subject    string        // default: a random UUID
	Role       Role          // written as given, not validated (to mint bad tokens in tests)
	OrgID      uuid.UUID     // written as given
	EmployeeID uuid.NullUUID // written only when Valid
	Email      string        // written only when non-empty
	Audience   string        // default "authenticated"
	Issuer     string        // optional
	TTL        time.Duration // default 1h; negative mints an already expired token
}

const defaultMintTTL = time.Hour

// Mint signs an HS256 token with the secret, with top-level claims sub, role,
// org_id, employee_id (when valid), email (when set), aud, iss (when set),
// iat, exp — the same shape the Supabase Auth Hook produces.
func Mint(secret []byte, o MintOptions) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("auth: mint needs a non-empty secret")
	}
	if o.Subject == "" {
		o.Subject = uuid.NewString()
	}
	if o.Audience == "" {
		o.Audience = DefaultAudience
	}
	if o.TTL == 0 {
		o.TTL = defaultMintTTL
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"sub":    o.Subject,
		"role":   string(o.Role),
		"org_id": o.OrgID.String(),
		"aud":    o.Audience,
		"iat":    now.Unix(),
		"exp":    now.Add(o.TTL).Unix(),
	}
	if o.EmployeeID.Valid {
		claims["employee_id"] = o.EmployeeID.UUID.String()
	}
	if o.Email != "" {
		claims["email"] = o.Email
	}
	if o.Issuer != "" {
		claims["iss"] = o.Issuer
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}
