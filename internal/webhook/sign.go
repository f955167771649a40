package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// signature is what one attempt carries so that receivers of either scheme can verify it.
type signature struct {
	msgID     string // the event id: the same on every attempt, the receiver's idempotency key
	timestamp time.Time
	body      []byte
}

// standardKey is the HMAC key of the Standard Webhooks scheme: for a "whsec_" secret the base64 bytes after
// the prefix (as the Standard Webhooks libraries read it), otherwise the secret's own bytes.
func standardKey(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if key, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return key
		}
	}
	return []byte(secret)
}

// standard returns "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>" (Standard Webhooks v1).
func (s signature) standard(secret string) string {
	mac := hmac.New(sha256.New, standardKey(secret))
	mac.Write([]byte(s.msgID + "." + strconv.FormatInt(s.timestamp.Unix(), 10) + "."))
	mac.Write(s.body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// legacy returns "sha256=<hex HMAC-SHA256(secret, timestamp.body)>" (the original API's scheme).
func (s signature) legacy(secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(s.timestamp.Unix(), 10) + "."))
	mac.Write(s.body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// setHeaders writes the headers of one attempt: Standard Webhooks' and the original API's.
func (s signature) setHeaders(h http.Header, secret, eventType, deliveryID string) {
	ts := strconv.FormatInt(s.timestamp.Unix(), 10)
	legacy := s.legacy(secret)
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", userAgent)
	h.Set("webhook-id", s.msgID) // header names are case-insensitive; Go sends Webhook-Id
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", s.standard(secret))
	h.Set("X-FieldTrack-Signature", legacy)
	h.Set("X-Webhook-Signature", legacy)
	h.Set("X-FieldTrack-Timestamp", ts)
	h.Set("X-Webhook-Timestamp", ts)
	h.Set("X-FieldTrack-Event", eventType)
	h.Set("X-FieldTrack-Delivery-Id", deliveryID)
}
