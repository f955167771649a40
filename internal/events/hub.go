package events

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// Event is one streamed event: its position in commit order, organization, SSE name and payload.
type Event struct {
	StreamID int64
	OrgID    uuid.UUID
	Name     string
	Payload  json.RawMessage
	At       time.Time
}

// ErrTooManyStreams is returned by Subscribe when the organization already has the maximum number of
// streams on this process.
var ErrTooManyStreams = errors.New("too many event streams for this organization")

// Subscriber receives its organization's events after the position it subscribed at. Events is closed
// when the hub drops the subscriber (it fell behind) or the hub stops; the client then reconnects and
// resumes from its last id, so dropping loses nothing.
type Subscriber struct {
	org    uuid.UUID
	events chan *Event // shared by every subscriber of the event's organization: read only
	closed bool
}

// Events is the subscriber's channel.
func (s *Subscriber) Events() <-chan *Event { return s.events }

// Hub fans the stamped outbox stream out to the SSE subscribers of this process. It tails webhook_events
// by stream_id (when woken after a hand-off, and at least once a second), so every process sees every
// event, in commit order, whichever process leads the listener. In the leading process the listener
// hands it each hand-off's events as soon as they committed (HandedOff), which saves the read.
type Hub struct {
	pool       *pgxpool.Pool
	wake       <-chan struct{}
	q          *db.Queries
	log        *slog.Logger
	perOrg     int
	bufferSize int
	live       atomic.Bool
	drops      atomic.Int64
	reads      atomic.Int64

	mu    sync.Mutex
	pos   int64
	ready bool
	subs  map[uuid.UUID]map[*Subscriber]struct{}
}

// NewHub returns a hub allowing perOrg streams per organization on this process. It reads the stream on
// a timer until WakeOn gives it a wake-up.
func NewHub(pool *pgxpool.Pool, perOrg int, log *slog.Logger) *Hub {
	return &Hub{pool: pool, q: db.New(), log: log.With("component", "hub"), perOrg: perOrg,
		bufferSize: 1024, subs: map[uuid.UUID]map[*Subscriber]struct{}{}}
}

// WakeOn makes the hub read the stream whenever n announces a hand-off it has not seen. Call it before
// Run. It returns h.
func (h *Hub) WakeOn(n *Notifier) *Hub {
	h.wake = n.SubscribeAfter(h.Position)
	return h
}

// Subscribe registers a stream for org and returns the position it starts after: events up to it were
// already fanned out (replay them from the table), later ones arrive on the channel.
func (h *Hub) Subscribe(org uuid.UUID) (*Subscriber, int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ready {
		return nil, 0, errors.New("event stream not ready")
	}
	if len(h.subs[org]) >= h.perOrg {
		return nil, 0, ErrTooManyStreams
	}
	s := &Subscriber{org: org, events: make(chan *Event, h.bufferSize)}
	if h.subs[org] == nil {
		h.subs[org] = map[*Subscriber]struct{}{}
	}
	h.subs[org][s] = struct{}{}
	return s, h.pos, nil
}

// Reads is how many times this hub read the stream from the table since it started (its listener's own
// hand-offs need no read).
func (h *Hub) Reads() int64 { return h.reads.Load() }

// Drops is how many streams this hub dropped for falling behind since it started.
func (h *Hub) Drops() int64 { return h.drops.Load() }

// Unsubscribe removes s; it is safe to call after the hub dropped it.
func (h *Hub) Unsubscribe(s *Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.remove(s)
}

func (h *Hub) remove(s *Subscriber) {
	if set := h.subs[s.org]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(h.subs, s.org)
		}
	}
	if !s.closed {
		s.closed = true
		close(s.events)
	}
}

// Position is the last stream position fanned out by this process.
func (h *Hub) Position() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pos
}

// Subscribers counts the open streams of this process.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, set := range h.subs {
		n += len(set)
	}
	return n
}

// Live reports whether the hub is tailing the stream: it knows its position and its last read worked.
func (h *Hub) Live() bool { return h.live.Load() }

// Run tails the stream until ctx ends, retrying after failures, then closes every subscriber.
func (h *Hub) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		err := h.catchUp(ctx)
		h.live.Store(err == nil)
		if err != nil && ctx.Err() == nil {
			h.log.Warn("event tail failed; retrying", "error", err.Error())
		}
		select {
		case <-ctx.Done():
		case <-h.wake:
		case <-tick.C:
		}
	}
	h.mu.Lock()
	for _, set := range h.subs {
		for s := range set {
			h.remove(s)
		}
	}
	h.mu.Unlock()
}

// catchUp fans out every event after the current position. A new process starts at the head: its clients
// replay what they missed from the table.
func (h *Hub) catchUp(ctx context.Context) error {
	h.mu.Lock()
	ready := h.ready
	h.mu.Unlock()
	if !ready {
		head, err := db.Do(ctx, h.pool, db.Claims{}, workerRead, func(tx db.DBTX) (int64, error) {
			return h.q.EventStreamHead(ctx, tx)
		})
		if err != nil {
			return err
		}
		h.mu.Lock()
		h.pos, h.ready = head, true
		h.mu.Unlock()
	}
	for {
		pos := h.Position()
		h.reads.Add(1)
		rows, err := db.Do(ctx, h.pool, db.Claims{}, workerRead, func(tx db.DBTX) ([]db.EventStreamAfterRow, error) {
			return h.q.EventStreamAfter(ctx, tx, db.EventStreamAfterParams{After: pos, MaxEvents: 1000})
		})
		if err != nil {
			return err
		}
		h.publish(rows)
		if len(rows) < 1000 {
			return nil
		}
	}
}

// workerRead is the fan-out's transaction: one read as the worker role, which sees every organization.
var workerRead = db.TxOptions{Role: db.WorkerRole, ReadOnly: true, SingleStatement: true}

// HandedOff publishes a hand-off's events (in stream order) as the listener of this process committed
// them, when they hold the positions right after the hub's, one after another: then no other position
// can fall between. Otherwise (the hub is behind, or another hand-off took a position meanwhile) it
// leaves them to the next read of the table. It reports whether it published them.
func (h *Hub) HandedOff(rows []db.EventHandOffRow) bool {
	if len(rows) == 0 {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ready || h.pos != rows[0].PrevHead {
		return false
	}
	for i, r := range rows {
		if r.StreamID != rows[0].PrevHead+int64(i)+1 {
			return false
		}
	}
	for _, r := range rows {
		if r.StreamEvent != "" {
			h.fanOut(&Event{StreamID: r.StreamID, OrgID: r.OrganizationID, Name: r.StreamEvent, Payload: r.StreamPayload, At: r.CreatedAt})
		}
	}
	h.pos = rows[len(rows)-1].StreamID
	return true
}

// publish fans out events read from the table, but none the listener handed it meanwhile.
func (h *Hub) publish(rows []db.EventStreamAfterRow) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range rows {
		if r.StreamID <= h.pos {
			continue
		}
		h.fanOut(&Event{StreamID: r.StreamID, OrgID: r.OrganizationID, Name: r.StreamEvent, Payload: r.StreamPayload, At: r.CreatedAt})
		h.pos = r.StreamID
	}
}

// fanOut hands ev to its organization's subscribers without ever blocking: a subscriber whose buffer is
// full is dropped (its channel closed), so one slow client cannot hold up the others. h.mu is held.
func (h *Hub) fanOut(ev *Event) {
	for s := range h.subs[ev.OrgID] {
		select {
		case s.events <- ev:
		default:
			h.log.Warn("dropping a slow event stream", "org", ev.OrgID.String())
			h.drops.Add(1)
			h.remove(s)
		}
	}
}
