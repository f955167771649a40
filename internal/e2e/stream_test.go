package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// frame is one dispatched Server-Sent Event: the fields of one block (comments and retry-only blocks
// are not dispatched, as in a browser).
type frame struct {
	ID    string
	Event string
	Data  string
}

// streams have no client timeout: they end when the test closes them or the server does.
var streamClient = &http.Client{}

// stream is one open SSE response read by a background parser.
type stream struct {
	Header   http.Header
	body     io.ReadCloser
	cancel   context.CancelFunc
	frames   chan frame
	closed   chan struct{}
	once     sync.Once
	comments atomic.Int64 // ": ping" heartbeats and other comment lines
	mu       sync.Mutex
	retry    string
	err      error // why reading stopped
}

// header is the request's header; "Authorization: Bearer" is set from token when token is not empty.
func header(token string, kv ...string) http.Header {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// connect opens url as a stream. A response other than 200 is returned as an *httpStatus error.
func connect(ctx context.Context, url string, h http.Header) (*stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	if h != nil {
		req.Header = h.Clone()
	}
	req.Header.Set("Accept", "text/event-stream")
	res, err := streamClient.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		cancel()
		return nil, &httpStatus{Code: res.StatusCode, Header: res.Header, Body: body}
	}
	s := &stream{Header: res.Header, body: res.Body, cancel: cancel, frames: make(chan frame, 4096),
		closed: make(chan struct{})}
	go s.read()
	return s, nil
}

// httpStatus is a non-200 answer to a stream request.
type httpStatus struct {
	Code   int
	Header http.Header
	Body   []byte
}

func (e *httpStatus) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Code, e.Body) }

// openStream connects and fails the test unless the answer is 200. 503 (the hub of a server that just
// started does not know its position yet) is retried for a while. The test's cleanup closes the stream.
func openStream(t testing.TB, url string, h http.Header) *stream {
	t.Helper()
	var s *stream
	testfactory.Eventually(t, 20*time.Second, "the event stream "+url+" to open", func() (bool, error) {
		var err error
		s, err = connect(context.Background(), url, h)
		var st *httpStatus
		if errors.As(err, &st) && st.Code != http.StatusServiceUnavailable {
			t.Fatalf("GET %s: %v", url, err)
		}
		return err == nil, err
	})
	t.Cleanup(s.close)
	return s
}

// read parses the body into frames until it ends or the stream is closed.
func (s *stream) read() {
	defer close(s.frames)
	r := bufio.NewReader(s.body)
	var f frame
	var data []string
	dispatch := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if dispatch {
				f.Data = strings.Join(data, "\n")
				select {
				case s.frames <- f:
				case <-s.closed:
					return
				}
			}
			f, data, dispatch = frame{}, nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			s.comments.Add(1)
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			f.ID, dispatch = value, true
		case "event":
			f.Event, dispatch = value, true
		case "data":
			data, dispatch = append(data, value), true
		case "retry":
			s.mu.Lock()
			s.retry = value
			s.mu.Unlock()
		}
	}
}

// next returns the next frame, or an error when none arrives within timeout or the stream ended.
func (s *stream) next(timeout time.Duration) (frame, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case f, open := <-s.frames:
		if !open {
			s.mu.Lock()
			defer s.mu.Unlock()
			return frame{}, fmt.Errorf("stream ended: %w", s.err)
		}
		return f, nil
	case <-timer.C:
		return frame{}, fmt.Errorf("no frame within %s", timeout)
	}
}

// must returns the next frame or fails the test.
func (s *stream) must(t testing.TB) frame {
	t.Helper()
	f, err := s.next(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// connected reads the first frame and fails the test unless it is the `connected` event.
func (s *stream) connected(t testing.TB) {
	t.Helper()
	if f := s.must(t); f.Event != "connected" || f.ID != "" {
		t.Fatalf("first frame %+v, want the connected event", f)
	}
}

// take reads n frames.
func (s *stream) take(t testing.TB, n int) []frame {
	t.Helper()
	out := make([]frame, 0, n)
	for range n {
		f, err := s.next(30 * time.Second)
		if err != nil {
			t.Fatalf("after %d of %d frames: %v", len(out), n, err)
		}
		out = append(out, f)
	}
	return out
}

// close disconnects, as a client going away does.
func (s *stream) close() {
	s.once.Do(func() {
		close(s.closed)
		s.cancel()
		s.body.Close()
	})
}

func (s *stream) retryField() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retry
}

// eventData is the data of an event frame; decoding it fails on any other field.
type eventData struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
	TS      *time.Time      `json:"ts"`
}

func decodeData(t testing.TB, f frame) eventData {
	t.Helper()
	var d eventData
	dec := json.NewDecoder(strings.NewReader(f.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("frame %s data %q: %v", f.ID, f.Data, err)
	}
	if d.Type == "" || len(d.Payload) == 0 || d.TS == nil {
		t.Fatalf("frame %s data %q lacks type, payload or ts", f.ID, f.Data)
	}
	return d
}

// sessionPayload is the payload of session.checkin and session.checkout.
type sessionPayload struct {
	SessionID  string         `json:"sessionId"`
	EmployeeID string         `json:"employeeId"`
	Session    map[string]any `json:"session"`
}

func decodeSession(t testing.TB, f frame) sessionPayload {
	t.Helper()
	d := decodeData(t, f)
	if d.Type != f.Event {
		t.Fatalf("frame %s: event %q but data type %q", f.ID, f.Event, d.Type)
	}
	var p sessionPayload
	dec := json.NewDecoder(bytes.NewReader(d.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("frame %s payload %s: %v", f.ID, d.Payload, err)
	}
	if p.SessionID == "" || p.EmployeeID == "" || p.Session["id"] != p.SessionID {
		t.Fatalf("frame %s payload %s: want sessionId, employeeId and the session", f.ID, d.Payload)
	}
	return p
}

// follower is a client that stays subscribed like a browser's EventSource: whenever its stream ends or
// cannot be opened it reconnects, sending the last id it received as Last-Event-ID.
type follower struct {
	url   string
	token string

	mu         sync.Mutex
	frames     []frame // every event frame with an id, in arrival order
	lastID     string
	connects   int
	reauths    map[string]int // reauth events by reason: each ends a stream, and the follower reconnects
	problems   []string       // answers a browser would not retry, frames out of place
	current    *stream
	stop       context.CancelFunc
	terminated chan struct{}
}

func follow(t testing.TB, url, token string) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{url: url, token: token, stop: cancel, terminated: make(chan struct{}), reauths: map[string]int{}}
	go f.run(ctx)
	t.Cleanup(func() {
		cancel()
		f.drop()
		<-f.terminated
	})
	return f
}

func (f *follower) run(ctx context.Context) {
	defer close(f.terminated)
	for ctx.Err() == nil {
		h := header(f.token)
		f.mu.Lock()
		if f.lastID != "" {
			h.Set("Last-Event-ID", f.lastID)
		}
		f.mu.Unlock()
		s, err := connect(ctx, f.url, h)
		if err != nil {
			var st *httpStatus
			if errors.As(err, &st) && st.Code != http.StatusServiceUnavailable {
				f.problem("reconnect answered %v", err)
			}
			// A browser waits `retry` ms; a short pause is enough here.
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		f.mu.Lock()
		f.current = s
		f.connects++
		f.mu.Unlock()
		first := true
		for fr := range s.frames {
			switch {
			case first && fr.Event != "connected":
				f.problem("first frame %+v is not the connected event", fr)
			case !first && fr.Event == "reauth" && fr.ID == "":
				var d eventData
				_ = json.Unmarshal([]byte(fr.Data), &d)
				var p struct{ Reason string }
				_ = json.Unmarshal(d.Payload, &p)
				f.mu.Lock()
				f.reauths[p.Reason]++
				f.mu.Unlock()
			case !first && fr.ID == "":
				f.problem("frame without id %+v", fr)
			case !first:
				f.mu.Lock()
				f.frames = append(f.frames, fr)
				f.lastID = fr.ID
				f.mu.Unlock()
			}
			first = false
		}
		s.close()
	}
}

func (f *follower) problem(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.problems) < 20 {
		f.problems = append(f.problems, fmt.Sprintf(format, args...))
	}
}

// drop closes the current connection, as a network failure would; the follower reconnects.
func (f *follower) drop() {
	f.mu.Lock()
	s := f.current
	f.mu.Unlock()
	if s != nil {
		s.close()
	}
}

func (f *follower) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connects
}

// reauthsFor counts the reauth events with reason the follower received.
func (f *follower) reauthsFor(reason string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reauths[reason]
}

// wait returns the frames once there are n of them, failing the test after timeout or on any problem.
func (f *follower) wait(t testing.TB, n int, timeout time.Duration) []frame {
	t.Helper()
	var out []frame
	testfactory.Eventually(t, timeout, fmt.Sprintf("%d event frames on %s", n, f.url), func() (bool, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.problems) > 0 {
			t.Fatalf("stream follower: %s", strings.Join(f.problems, "; "))
		}
		out = append(out[:0], f.frames...)
		return len(out) >= n, fmt.Errorf("%d frames so far after %d connections", len(out), f.connects)
	})
	return out
}

// The stream looks at its caller again with every heartbeat: an admin disabled while watching loses the
// stream (and gets 401 on reconnecting), before any later event reaches it.
func TestStream_EndsWhenItsCallerMayNoLongerAct(t *testing.T) {
	t.Parallel()
	srv := startServer(t, map[string]string{"SSE_HEARTBEAT_MS": "200"})
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	s := openStream(t, adminStream(srv.base)+"?token="+url.QueryEscape(admin), nil)
	s.connected(t)
	if _, err := testfactory.Pool(t).Exec(t.Context(), `UPDATE users SET disabled_at = now() WHERE organization_id = $1 AND id = $2`,
		org.ID, org.AdminUserID); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := s.next(10 * time.Second)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "stream ended") {
				t.Fatalf("the disabled admin's stream: %v", err)
			}
			break
		}
		if f.Event != "" {
			t.Fatalf("the disabled admin's stream went on: %+v", f)
		}
	}
	if st, body, _ := call("GET", adminStream(srv.base)+"?token="+url.QueryEscape(admin), ""); st != http.StatusUnauthorized {
		t.Fatalf("reconnecting as the disabled admin: %d %v", st, body)
	}
}

// adminTokenFor mints an ADMIN token of org that expires after ttl (whole seconds, as exp is) and returns
// it with its expiry.
func adminTokenFor(t *testing.T, org testfactory.Org, ttl time.Duration) (string, time.Time) {
	t.Helper()
	tok, err := auth.Mint([]byte(testfactory.Secret), auth.MintOptions{Subject: org.AdminUserID.String(),
		Role: auth.RoleAdmin, OrgID: org.ID, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct{ Exp int64 }
	if err != nil || json.Unmarshal(raw, &claims) != nil || claims.Exp == 0 {
		t.Fatalf("minted token %s has no exp: %v", tok, err)
	}
	return tok, time.Unix(claims.Exp, 0)
}

// expectReauth reads the next frame and fails the test unless it is the reauth event with reason,
// followed by the end of the stream.
func expectReauth(t *testing.T, s *stream, reason string) {
	t.Helper()
	f, err := s.next(30 * time.Second)
	if err != nil {
		t.Fatalf("waiting for reauth (%s): %v", reason, err)
	}
	expectReauthFrame(t, f, reason)
	expectEnd(t, s)
}

// expectReauthFrame fails the test unless f is the reauth event with reason and without an id (the
// client's Last-Event-ID stays the last event it got).
func expectReauthFrame(t *testing.T, f frame, reason string) {
	t.Helper()
	d := decodeData(t, f)
	var payload struct{ Reason string }
	if err := json.Unmarshal(d.Payload, &payload); err != nil || f.Event != "reauth" || d.Type != "reauth" ||
		f.ID != "" || payload.Reason != reason {
		t.Fatalf("frame %+v, want a reauth event without id, reason %q", f, reason)
	}
}

// expectEnd fails the test unless the stream ends next.
func expectEnd(t *testing.T, s *stream) {
	t.Helper()
	if f, err := s.next(10 * time.Second); err == nil || !strings.HasPrefix(err.Error(), "stream ended") {
		t.Fatalf("after reauth: frame %+v, error %v; want the end of the stream", f, err)
	}
}

// A stream does not outlive its token: when the token expires the client gets reauth, then the end of the
// stream; reconnecting with a fresh token and its last id, it misses nothing.
func TestStream_ExpiringTokenGetsReauthThenEnds(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	org := testfactory.NewOrg(t)
	emp := testfactory.EmployeeToken(t, testfactory.NewEmployee(t, org, "Still live"))
	// An id to resume from, before the short-lived stream opens.
	first := openStream(t, adminStream(srv.base), header(testfactory.AdminToken(t, org)))
	first.connected(t)
	mustAttend(t, srv.base, emp, "check-in")
	last := first.take(t, 1)[0].ID
	first.close()

	tok, expires := adminTokenFor(t, org, 3*time.Second) // expires in 2 to 3 s
	s := openStream(t, adminStream(srv.base)+"?token="+url.QueryEscape(tok)+"&last_event_id="+url.QueryEscape(last), nil)
	s.connected(t)
	out := mustAttend(t, srv.base, emp, "check-out")
	// The event may come before the expiry or, on a busy machine, after it: then in the next stream.
	var got []frame
	for {
		f, err := s.next(30 * time.Second)
		if err != nil {
			t.Fatalf("waiting for reauth: %v", err)
		}
		if f.Event == "reauth" {
			expectReauthFrame(t, f, "token expired")
			break
		}
		got = append(got, f)
		last = f.ID
	}
	expectEnd(t, s)
	if late := time.Since(expires); late < 0 || late > 10*time.Second {
		t.Fatalf("the stream ended %s after its token expired, want at expiry", late)
	}

	again := openStream(t, adminStream(srv.base), header(testfactory.AdminToken(t, org), "Last-Event-ID", last))
	again.connected(t)
	if len(got) == 0 {
		got = again.take(t, 1)
	}
	expectFrames(t, got, []sent{out})
	closing := mustAttend(t, srv.base, emp, "check-in")
	expectFrames(t, again.take(t, 1), []sent{closing}) // and nothing twice before it
}

// Every stream ends after SSE_MAX_LIFETIME_MS with reauth; a client that reconnects with its last id (as
// EventSource does) misses nothing and gets nothing twice, however often that happens while events flow.
func TestStream_LifetimeCapEndsStreamsAndResumingMissesNothing(t *testing.T) {
	t.Parallel()
	srv := startServer(t, map[string]string{"SSE_MAX_LIFETIME_MS": "1000"})
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	tok := testfactory.EmployeeToken(t, testfactory.NewEmployee(t, org, "Capped"))

	opened := time.Now()
	s := openStream(t, adminStream(srv.base), header(admin))
	s.connected(t)
	expectReauth(t, s, "stream lifetime reached")
	if lived := time.Since(opened); lived < 900*time.Millisecond {
		t.Fatalf("the stream ended after %s, before its lifetime (at least 900 ms of 1000)", lived)
	}

	watcher := follow(t, adminStream(srv.base), admin)
	testfactory.Eventually(t, 20*time.Second, "the stream to connect", func() (bool, error) { return watcher.connections() > 0, nil })
	var want []sent
	testfactory.Eventually(t, 60*time.Second, "three streams to reach their lifetime while events flow", func() (bool, error) {
		want = append(want, cycles(t, srv.base, tok, 1)...)
		n := watcher.reauthsFor("stream lifetime reached")
		return n >= 3, fmt.Errorf("%d streams ended so far", n)
	})
	frames := watcher.wait(t, len(want), 30*time.Second)
	expectFrames(t, frames, want)
	t.Logf("%d events over %d connections, each ended by its lifetime", len(frames), watcher.connections())
}
