package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// API keys are "ft_live_" and 48 hex digits (24 random bytes), as the original. A key carries 192 random
// bits, so it is stored as its SHA-256: no guess can be tested offline faster than the key space allows,
// and a lookup is one index probe instead of a slow KDF per request.
const (
	APIKeyPrefix    = "ft_live_"
	apiKeyHexLen    = 48
	APIKeyLen       = len(APIKeyPrefix) + apiKeyHexLen
	apiKeyLookupLen = len(APIKeyPrefix) + 8 // the part listed as the key's preview (the original's key_prefix)
)

// APIKey is a parsed key: its canonical (lower-case) text, its hash and its public prefix.
type APIKey struct {
	Hash   [sha256.Size]byte
	Prefix string // ft_live_ and the first 8 hex digits
	Last4  string // the last 4 hex digits
}

// ParseAPIKey checks the format, ^\s*ft_live_[0-9a-f]{48}\s*$ in ASCII letters of either case (the
// original's /i; ASCII white space around), and hashes the key in lower case. A malformed key is 401
// "Invalid API key format", as the original. The check is on the bytes as given: Unicode spaces are not
// trimmed, and only ASCII letters are folded (strings.ToLower would turn "ft_lİve_" into "ft_live_").
func ParseAPIKey(s string) (APIKey, error) {
	s = strings.Trim(s, " \t\n\f\r")
	if len(s) != APIKeyLen {
		return APIKey{}, errAPIKeyFormat()
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
			b[i] = c
		}
		if i < len(APIKeyPrefix) {
			if c != APIKeyPrefix[i] {
				return APIKey{}, errAPIKeyFormat()
			}
		} else if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return APIKey{}, errAPIKeyFormat()
		}
	}
	s = string(b)
	return APIKey{Hash: sha256.Sum256([]byte(s)), Prefix: s[:apiKeyLookupLen], Last4: s[len(s)-4:]}, nil
}

// NewAPIKey makes a fresh random key: its text (shown once) and its parsed form (stored).
func NewAPIKey() (string, APIKey) {
	var b [apiKeyHexLen / 2]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	text := APIKeyPrefix + hex.EncodeToString(b[:])
	k, _ := ParseAPIKey(text)
	return text, k
}

// Preview is how a key is shown after creation: its prefix and last four digits.
func (k APIKey) Preview() string { return k.Prefix + "..." + k.Last4 }

// CodeInvalidAPIKey is the code of every API-key authentication failure.
const CodeInvalidAPIKey = "INVALID_API_KEY"

func errAPIKeyFormat() *Error {
	return &Error{Message: "Invalid API key format", Code: CodeInvalidAPIKey}
}

// ErrAPIKeyUnknown is the answer for a well-formed key that is unknown, inactive or revoked.
func ErrAPIKeyUnknown() *Error { return &Error{Message: "Invalid API key", Code: CodeInvalidAPIKey} }
