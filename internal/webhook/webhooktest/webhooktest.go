// Package webhooktest is what webhook tests share: a receiver on loopback that records deliveries and
// answers as told, verifiers for both signature schemes written from their specifications (not from the
// sender's code), the listener's hand-off for a test's own organization, and a polling helper.
package webhooktest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// Request is one delivery as the receiver saw it.
type Request struct {
	Path   string
	Header http.Header
	Body   []byte
}

// Answer is how the receiver answers one request. Block holds the request open until the sender gives
// up (for timeouts) or the receiver closes.
type Answer struct {
	Status int
	Header map[string]string
	Body   string
	Block  bool
}

// Receiver is a webhook endpoint on loopback.
type Receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []Request
	answer   func(n int) Answer
	closing  chan struct{}
}

// NewReceiver starts a receiver that answers 200 until told otherwise; it stops when the test ends.
func NewReceiver(t testing.TB) *Receiver {
	t.Helper()
	rc := &Receiver{answer: func(int) Answer { return Answer{Status: http.StatusOK} }, closing: make(chan struct{})}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(func() {
		close(rc.closing)
		rc.Close()
	})
	return rc
}

func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.requests = append(rc.requests, Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	a := rc.answer(len(rc.requests))
	rc.mu.Unlock()
	if a.Block {
		select {
		case <-r.Context().Done():
		case <-rc.closing:
		}
		return
	}
	for k, v := range a.Header {
		w.Header().Set(k, v)
	}
	if a.Status == 0 {
		a.Status = http.StatusOK
	}
	w.WriteHeader(a.Status)
	_, _ = io.WriteString(w, a.Body)
}

// Answer sets how the receiver answers from now on; n counts every request received, from 1.
func (rc *Receiver) Answer(fn func(n int) Answer) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answer = fn
}

// Always makes the receiver answer every request with status.
func (rc *Receiver) Always(status int) {
	rc.Answer(func(int) Answer { return Answer{Status: status} })
}

// Requests returns what the receiver got so far.
func (rc *Receiver) Requests() []Request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Request(nil), rc.requests...)
}

// Count is len(Requests()).
func (rc *Receiver) Count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.requests)
}

// Dispatch hands the organization's events that nobody handed off yet to app.dispatch_events as the
// worker role, as the logical-replication listener does (a listener running elsewhere may have done it
// already: the hand-off is idempotent). It returns how many events it handed off. owner is a pool that
// logs in as the owner (testfactory.Pool).
func Dispatch(t testing.TB, owner *pgxpool.Pool, org uuid.UUID) int {
	t.Helper()
	ctx := context.Background()
	rows, err := owner.Query(ctx, `SELECT id FROM webhook_events WHERE organization_id = $1 AND stream_id IS NULL
		ORDER BY created_at, id`, org)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) == 0 {
		return 0
	}
	orgs := make([]uuid.UUID, len(ids))
	for i := range orgs {
		orgs[i] = org
	}
	_, err = db.Do(ctx, owner, db.Claims{}, db.TxOptions{Role: db.WorkerRole}, func(tx db.DBTX) (int64, error) {
		return db.New().EventDispatch(ctx, tx, db.EventDispatchParams{OrganizationIds: orgs, EventIds: ids})
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}

// Tolerance is how far a webhook-timestamp may be from the verifier's clock (Standard Webhooks: 5 min).
const Tolerance = 5 * time.Minute

// VerifyStandard checks a delivery as a Standard Webhooks v1 receiver does: the signed content is
// "<webhook-id>.<webhook-timestamp>.<body>", the key is the base64 after "whsec_" (or the secret's bytes
// when it has no prefix), webhook-signature is a space-separated list of "v1,<base64>" of which one must
// match (compared in constant time), and the timestamp must be within Tolerance of now.
func VerifyStandard(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	if err := checkTimestamp(ts, now); err != nil {
		return err
	}
	key := []byte(secret)
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		var err error
		if key, err = base64.StdEncoding.DecodeString(rest); err != nil {
			return fmt.Errorf("secret: %w", err)
		}
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching v1 signature")
}

// VerifyLegacy checks a delivery as a receiver of the original API does: X-FieldTrack-Signature (and
// X-Webhook-Signature) is "sha256=<hex HMAC-SHA256(secret, "<X-FieldTrack-Timestamp>.<body>")>".
func VerifyLegacy(secret string, h http.Header, body []byte, now time.Time) error {
	ts := h.Get("X-FieldTrack-Timestamp")
	if err := checkTimestamp(ts, now); err != nil {
		return err
	}
	if h.Get("X-Webhook-Timestamp") != ts {
		return errors.New("X-Webhook-Timestamp differs from X-FieldTrack-Timestamp")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	for _, name := range []string{"X-FieldTrack-Signature", "X-Webhook-Signature"} {
		if !hmac.Equal([]byte(h.Get(name)), []byte(want)) {
			return fmt.Errorf("%s does not match", name)
		}
	}
	return nil
}

func checkTimestamp(ts string, now time.Time) error {
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q: %w", ts, err)
	}
	if d := now.Sub(time.Unix(secs, 0)); d > Tolerance || d < -Tolerance {
		return fmt.Errorf("timestamp %s is %s away from now", ts, d)
	}
	return nil
}
