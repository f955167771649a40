package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/events"
)

// recheckEvery bounds how long a stream carrying events goes without checking its caller again.
const recheckEvery = 5 * time.Second

const (
	// maxReplay is the most missed events a reconnecting client is sent; beyond it, it gets reset.
	maxReplay = 10_000
	// defaultMaxLifetime caps a stream when the configuration does not say (SSE_MAX_LIFETIME_MS's default).
	defaultMaxLifetime = time.Hour
)

// The reasons of the reauth event, which ends a stream (the client reconnects with Last-Event-ID and a
// valid token, and misses nothing).
const (
	reauthTokenExpired = "token expired"
	reauthLifetime     = "stream lifetime reached"
)

// adminEvents streams the organization's events as Server-Sent Events: a `connected` event, then every
// event in commit order with an opaque id (streamid.go). A client that reconnects with Last-Event-ID (or
// ?last_event_id=) first receives exactly the events it missed, or a `reset` event when they are older
// than the retention, or when its id is not one of this organization's stream, and it must refetch.
// The stream ends with a `reauth` event when the caller's token expires or the stream has lasted
// SSE_MAX_LIFETIME_MS, and without one when the caller may no longer act (checked every heartbeat).
func (s *Server) adminEvents(w http.ResponseWriter, r *http.Request) error {
	if s.bg.Hub == nil {
		return errUnavailable("The event stream is not running")
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		return errInternal
	}
	if err := s.callerActive(r); err != nil { // looked at again with every heartbeat
		return err
	}
	id := identityOf(r)
	ids, err := s.streamIDsOf(r.Context(), id.OrgID)
	if err != nil {
		return err
	}
	resume, known, hasResume := lastEventID(r, ids)
	sub, pos, err := s.bg.Hub.Subscribe(id.OrgID)
	if errors.Is(err, events.ErrTooManyStreams) {
		return &Error{Status: http.StatusTooManyRequests, Code: "TOO_MANY_STREAMS", RetryAfter: 5,
			Message: fmt.Sprintf("SSE connection limit reached (max %d per organization).", s.cfg.SSEMaxStreamsPerOrg)}
	}
	if err != nil {
		return errUnavailable("The event stream is starting, please retry")
	}
	defer s.bg.Hub.Unsubscribe(sub)

	// What to replay is decided before the first byte, so a database error is still a proper answer. An
	// id that is not this organization's says nothing about what the client has: it refetches.
	var missed []db.EventReplayRow
	resetWhy := ""
	if hasResume && !known {
		resetWhy = "Your last event id is not one of this stream's; refetch your data."
	}
	if known && resume < pos {
		var pruned bool
		missed, pruned, err = s.replay(r, resume, pos)
		if err != nil {
			return err
		}
		if pruned {
			resetWhy = "The events after your last id are older than the retention; refetch your data."
		}
	}
	end, endWhy := s.streamEnd(id, time.Now())

	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	var buf bytes.Buffer
	fmt.Fprintf(&buf, "retry: 3000\n\n")
	orgJSON, _ := json.Marshal(map[string]string{"orgId": id.OrgID.String()})
	fmt.Fprintf(&buf, "event: connected\ndata: %s\n\n", orgJSON)
	if resetWhy != "" {
		// Its id is this process's position: resuming from it skips nothing that follows.
		fmt.Fprintf(&buf, "id: %s\nevent: reset\ndata: %s\n\n", ids.id(pos), controlData("reset", resetWhy))
	}
	for _, m := range missed {
		writeFrame(&buf, ids, &events.Event{StreamID: m.StreamID, Name: m.StreamEvent, Payload: m.StreamPayload, At: m.CreatedAt})
	}
	// A client that resumes from beyond this process's position (it was connected to a process further
	// ahead) must not see those events twice.
	floor := pos
	if known {
		floor = max(pos, resume)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return nil
	}
	flusher.Flush()

	every := s.cfg.SSEHeartbeat // keeps proxies and browsers from timing an idle stream out
	if every <= 0 {
		every = 15 * time.Second
	}
	heartbeat := time.NewTicker(every)
	defer heartbeat.Stop()
	ending := time.NewTimer(time.Until(end))
	defer ending.Stop()
	// A caller that may no longer act (disabled, deactivated, signed out, a revoked key or one without
	// admin:all now) loses its stream: it is checked every heartbeat, and when events flow and the last
	// check is older than recheckEvery. A check runs beside the stream (frames never wait for the
	// database); the stream ends when it says no. A database that cannot answer right now does not end it.
	checked, checking := firstRecheck(time.Now()), false
	verdicts := make(chan bool, 1)
	recheck := func(always bool) {
		if checking || (!always && time.Since(checked) < recheckEvery) {
			return
		}
		checked, checking = time.Now(), true
		go func() {
			err := s.streamChecks.check(claimsOf(r), func() error {
				// Not the stream's own context: the verdict is shared with the caller's other streams,
				// which must not take this one's closing for an answer.
				ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), recheckEvery)
				defer cancel()
				return s.callerActiveIn(ctx, r)
			})
			st := toError(err).Status
			verdicts <- err == nil || (st != http.StatusUnauthorized && st != http.StatusForbidden)
		}()
	}
	for {
		buf.Reset()
		select {
		case <-r.Context().Done():
			return nil
		case allowed := <-verdicts:
			checking = false
			if !allowed {
				return nil
			}
			continue
		case <-ending.C:
			// No id: the client's Last-Event-ID stays the last event it got, and events that were on
			// their way reach it in the replay of its next connection.
			fmt.Fprintf(&buf, "event: reauth\ndata: %s\n\n", controlData("reauth", endWhy))
			_, _ = w.Write(buf.Bytes())
			flusher.Flush()
			return nil
		case <-heartbeat.C:
			recheck(true)
			buf.WriteString(": ping\n\n")
		case ev, open := <-sub.Events():
			if !open {
				return nil // dropped for falling behind: the client reconnects with its last id
			}
			recheck(false)
			if ev.StreamID > floor {
				writeFrame(&buf, ids, ev)
			}
		drain:
			for {
				select {
				case ev, open := <-sub.Events():
					if !open {
						break drain
					}
					if ev.StreamID > floor {
						writeFrame(&buf, ids, ev)
					}
				default:
					break drain
				}
			}
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return nil
		}
		flusher.Flush()
	}
}

// streamEnd is when a stream of id opened at now must end, and why: when its token expires (never for a
// caller without expiry, an API key), and at the latest after the maximum lifetime, less up to a tenth
// so that streams opened together (after a deploy) do not all reconnect in the same second.
func (s *Server) streamEnd(id auth.Identity, now time.Time) (time.Time, string) {
	life := s.cfg.SSEMaxLifetime
	if life <= 0 {
		life = defaultMaxLifetime
	}
	end := now.Add(life - rand.N(life/10+1))
	if !id.ExpiresAt.IsZero() && id.ExpiresAt.Before(end) {
		return id.ExpiresAt, reauthTokenExpired
	}
	return end, reauthLifetime
}

// replay reads the organization's events in (after, upto]. pruned reports that some of them may have
// been deleted by retention, or that there are more than maxReplay: the client must refetch.
func (s *Server) replay(r *http.Request, after, upto int64) (rows []db.EventReplayRow, pruned bool, err error) {
	org := identityOf(r).OrgID
	err = s.tx(r, func(tx db.DBTX) error {
		through, err := s.q.StreamPrunedThrough(r.Context(), tx)
		if err != nil {
			return err
		}
		if after < through {
			pruned = true
			return nil
		}
		for {
			page, err := s.q.EventReplay(r.Context(), tx, db.EventReplayParams{
				OrgID: org, After: after, Upto: upto, MaxEvents: 1000})
			if err != nil {
				return err
			}
			rows = append(rows, page...)
			if len(page) < 1000 {
				return nil
			}
			if len(rows) >= maxReplay {
				// Refetching is cheaper for the client than this many frames, and it bounds our memory.
				rows, pruned = nil, true
				return nil
			}
			after = page[len(page)-1].StreamID
		}
	})
	return rows, pruned, err
}

// writeFrame appends one event frame: its opaque id, event name, and the dashboard's {type, payload, ts}
// data.
func writeFrame(buf *bytes.Buffer, ids streamIDs, ev *events.Event) {
	data, _ := json.Marshal(struct {
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload"`
		TS      time.Time       `json:"ts"`
	}{ev.Name, ev.Payload, ev.At.UTC()})
	fmt.Fprintf(buf, "id: %s\nevent: %s\ndata: %s\n\n", ids.id(ev.StreamID), ev.Name, data)
}

// controlData is the data of the stream's own events (reset, reauth) in the shape of every other frame.
func controlData(typ, reason string) []byte {
	data, _ := json.Marshal(struct {
		Type    string            `json:"type"`
		Payload map[string]string `json:"payload"`
		TS      time.Time         `json:"ts"`
	}{typ, map[string]string{"reason": reason}, time.Now().UTC()})
	return data
}

// lastEventID reads the resume id from Last-Event-ID or ?last_event_id=. has reports that the client sent
// one; known, that it is an id of this organization's stream (pos is its position). Any other value (an
// id of another organization, a numeric id of an older server, garbage) is not an error: the client
// cannot know its id went stale, and refetching is its way back.
func lastEventID(r *http.Request, ids streamIDs) (pos int64, known, has bool) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
	}
	if v == "" {
		return 0, false, false
	}
	pos, known = ids.position(v)
	return pos, known, true
}
