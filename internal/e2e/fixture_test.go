package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// sent is an event the test caused and expects on the stream: its name and its session.
type sent struct {
	event   string
	session string
}

// call sends an API request with a bearer token and returns the status and the decoded envelope.
func call(method, url, token string) (int, map[string]any, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := quick.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, nil, err
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return res.StatusCode, nil, fmt.Errorf("%s %s: %d %q: %w", method, url, res.StatusCode, raw, err)
	}
	return res.StatusCode, body, nil
}

// attend checks in or out (path "check-in" or "check-out") through base and returns the session id and
// the event it causes.
func attend(base, token, path string) (sent, error) {
	want := map[string]int{"check-in": http.StatusCreated, "check-out": http.StatusOK}[path]
	status, body, err := call(http.MethodPost, base+"/attendance/"+path, token)
	if err != nil {
		return sent{}, err
	}
	data, _ := body["data"].(map[string]any)
	id, _ := data["id"].(string)
	if status != want || id == "" {
		return sent{}, fmt.Errorf("POST /attendance/%s: %d %v", path, status, body)
	}
	return sent{event: map[string]string{"check-in": "session.checkin", "check-out": "session.checkout"}[path],
		session: id}, nil
}

// cycles checks in and out n times through base and returns the 2n events in the order they committed.
func cycles(t testing.TB, base, token string, n int) []sent {
	t.Helper()
	out := make([]sent, 0, 2*n)
	for range n {
		for _, path := range []string{"check-in", "check-out"} {
			s, err := attend(base, token, path)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
	}
	return out
}

func mustAttend(t testing.TB, base, token, path string) sent {
	t.Helper()
	s, err := attend(base, token, path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// expectFrames checks that frames are exactly want, in order, each with an opaque id of its own. Ids
// carry no order a client could read: the order is the frames'.
func expectFrames(t testing.TB, frames []frame, want []sent) {
	t.Helper()
	if len(frames) != len(want) {
		t.Fatalf("%d frames, want %d", len(frames), len(want))
	}
	seen := map[string]int{}
	for i, f := range frames {
		expectOpaqueID(t, f)
		if j, dup := seen[f.ID]; dup {
			t.Fatalf("frames %d and %d have the same id %s", j, i, f.ID)
		}
		seen[f.ID] = i
		p := decodeSession(t, f)
		if f.Event != want[i].event || p.SessionID != want[i].session {
			t.Fatalf("frame %d is %s of session %s, want %s of session %s", i, f.Event, p.SessionID,
				want[i].event, want[i].session)
		}
	}
}

// opaqueID is what an SSE id looks like: one AES block in unpadded base64url, nothing a client can count.
var opaqueID = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

// expectOpaqueID fails the test unless the frame has an opaque id.
func expectOpaqueID(t testing.TB, f frame) {
	t.Helper()
	if !opaqueID.MatchString(f.ID) {
		t.Fatalf("frame %s %q: want an opaque id (22 characters of base64url)", f.Event, f.ID)
	}
}

// streamID is the stream position the listener gave the event of a session.
func streamID(t testing.TB, p *pgxpool.Pool, org uuid.UUID, s sent) int64 {
	t.Helper()
	var id *int64
	err := p.QueryRow(context.Background(), `SELECT stream_id FROM webhook_events
		WHERE organization_id = $1 AND stream_event = $2 AND stream_payload->>'sessionId' = $3`,
		org, s.event, s.session).Scan(&id)
	if err != nil || id == nil {
		t.Fatalf("stream position of %s of session %s: %v %v", s.event, s.session, id, err)
	}
	return *id
}

// handedOff reports how many of the organization's events have a stream position, and how many exist.
func handedOff(ctx context.Context, p *pgxpool.Pool, org uuid.UUID) (stamped, total int, err error) {
	err = p.QueryRow(ctx, `SELECT count(stream_id), count(*) FROM webhook_events WHERE organization_id = $1`,
		org).Scan(&stamped, &total)
	return stamped, total, err
}

// waitHandedOff waits until the organization has want events, all with a stream position.
func waitHandedOff(t testing.TB, p *pgxpool.Pool, org uuid.UUID, want int, timeout time.Duration) {
	t.Helper()
	testfactory.Eventually(t, timeout, fmt.Sprintf("%d handed-off events", want), func() (bool, error) {
		stamped, total, err := handedOff(context.Background(), p, org)
		if err != nil {
			return false, err
		}
		if total > want {
			t.Fatalf("%d events of the organization, want %d", total, want)
		}
		return stamped == want && total == want, fmt.Errorf("%d of %d events handed off", stamped, total)
	})
}

// newWebhook subscribes a webhook of org to events (as the owner; where it points does not matter to
// these tests: they count the deliveries the hand-off records).
func newWebhook(t testing.TB, p *pgxpool.Pool, org uuid.UUID, events ...string) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := p.QueryRow(context.Background(), `INSERT INTO webhooks (organization_id, url, secret, events)
		VALUES ($1, 'http://127.0.0.1:1/x', 'whsec-0123456789abcdef', $2) RETURNING id`, org, events).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// expectOneDeliveryPerSubscription checks every (event, webhook) pair of org: exactly one delivery when
// the webhook subscribes to the event's type, none otherwise. It returns the number of deliveries.
func expectOneDeliveryPerSubscription(t testing.TB, p *pgxpool.Pool, org uuid.UUID) int {
	t.Helper()
	rows, err := p.Query(context.Background(), `
		SELECT e.id, e.event_type, w.id, e.event_type = ANY (w.events),
		       (SELECT count(*) FROM webhook_deliveries d
		         WHERE d.organization_id = e.organization_id AND d.event_id = e.id AND d.webhook_id = w.id
		           AND d.event_type = e.event_type)
		  FROM webhook_events e JOIN webhooks w ON w.organization_id = e.organization_id
		 WHERE e.organization_id = $1`, org)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	pairs, deliveries, wrong := 0, 0, 0
	for rows.Next() {
		var event, hook uuid.UUID
		var typ string
		var subscribed bool
		var n int
		if err := rows.Scan(&event, &typ, &hook, &subscribed, &n); err != nil {
			t.Fatal(err)
		}
		pairs++
		deliveries += n
		want := 0
		if subscribed {
			want = 1
		}
		if n != want {
			wrong++
			if wrong <= 5 {
				t.Errorf("event %s (%s) has %d deliveries to webhook %s, want %d", event, typ, n, hook, want)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if wrong > 0 {
		t.Fatalf("%d of %d (event, webhook) pairs have the wrong number of deliveries", wrong, pairs)
	}
	if pairs == 0 {
		t.Fatal("no (event, webhook) pairs to check")
	}
	return deliveries
}

func adminStream(base string) string { return base + "/admin/events" }
