package auth

import (
	"crypto/sha256"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// apiKeyFormat is what ParseAPIKey accepts.
var apiKeyFormat = regexp.MustCompile(`^\s*[fF][tT]_[lL][iI][vV][eE]_[0-9a-fA-F]{48}\s*$`)

// FuzzParseAPIKey: ParseAPIKey accepts exactly the strings of apiKeyFormat, and hashes the trimmed key in
// lower case (so a key's case does not matter); anything else is the 401 *Error of a malformed key.
func FuzzParseAPIKey(f *testing.F) {
	key, _ := NewAPIKey()
	hex := strings.TrimPrefix(key, APIKeyPrefix)
	for _, s := range []string{
		key, strings.ToUpper(key), APIKeyPrefix + strings.ToUpper(hex), " \t" + key + "\r\n", "\f" + key,
		"\v" + key, "\u00a0" + key, key + "\u3000", "\u0085" + key, "ft_lİve_" + hex, "ft_live_" + strings.ReplaceAll(hex, "a", "Ａ"),
		key[:len(key)-1], key + "0", key + " x", APIKeyPrefix + strings.Repeat("g", 48), "ft_test_" + hex, "", " ",
		APIKeyPrefix + hex[:47] + "\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseAPIKey(s)
		if !apiKeyFormat.MatchString(s) {
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != CodeInvalidAPIKey || ae.Message != "Invalid API key format" {
				t.Fatalf("ParseAPIKey(%q) = %+v, %#v; want the malformed-key error", s, k, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseAPIKey(%q) refused a well-formed key: %v", s, err)
		}
		canonical := strings.ToLower(strings.TrimSpace(s))
		if k.Hash != sha256.Sum256([]byte(canonical)) || k.Prefix != canonical[:len(APIKeyPrefix)+8] ||
			k.Last4 != canonical[len(canonical)-4:] || k.Preview() != k.Prefix+"..."+k.Last4 {
			t.Fatalf("ParseAPIKey(%q) = %+v, want the hash and parts of %q", s, k, canonical)
		}
	})
}
