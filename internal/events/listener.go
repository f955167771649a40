// Package events carries committed events from the outbox to their consumers. The Listener (one leader
// among all server processes) reads the outbox's inserts from a logical replication slot in commit order
// and hands each committed transaction off durably (stream positions stamped, webhook deliveries
// recorded) before acknowledging it. The Notifier (one LISTEN connection per process) tells the process
// that a hand-off happened; the Hub (every process) then tails the stamped stream and fans it out to the
// SSE clients of each organization.
//
// The listener's files: listener.go (its life: leadership, retries, status), stream.go (the replication
// connection and the hand-off), decode.go (pgoutput messages to batches of events), slot.go (the slot),
// login.go (which logins may run it).
package events

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// leaderLockKey is the advisory lock that elects the one active consumer ("fTevents").
const leaderLockKey = 0x6654_6576_656e_7473

// Listener is the outbox consumer. Run it in every process: one becomes leader, the others wait to take
// over when the leader's session ends.
type Listener struct {
	url            string
	pool           *pgxpool.Pool
	q              *db.Queries
	log            *slog.Logger
	tracer         trace.Tracer
	refuseAPILogin bool
	hub            *Hub      // told of each hand-off's events (FanOut); nil: none
	notifier       *Notifier // told of each hand-off's last position (FanOut); nil: none
	deliverer      Deliverer // sends the deliveries each hand-off claims for it (ClaimFor); nil: none

	live     atomic.Bool // leading, or standing by on a working connection
	leader   atomic.Bool
	acked    atomic.Uint64 // last LSN acknowledged to the server
	handoffs atomic.Int64
	mu       sync.Mutex
	lastErr  string
	lastErrT time.Time
}

// NewListener returns a listener whose own connections log in with databaseURL (LISTENER_DATABASE_URL)
// and which hands off through pool.
//
// Its own connections are the replication connection, which creates the slot when it is missing and
// streams it (this is what needs REPLICATION), and the leader-lock connection, which acts as
// fieldtrack_worker to read the slot's state. So databaseURL's login needs REPLICATION and membership of
// fieldtrack_worker, nothing else: fieldtrack_listener. The hand-off stays on pool, as fieldtrack_worker in
// each transaction: serve's pool login switches to that role anyway (for the SSE hub and the webhook
// worker), so this grants it nothing new, and it never needs REPLICATION. Handing off through
// databaseURL's login instead would take a second pool, acting as the same role: no less privilege, more
// connections.
func NewListener(databaseURL string, pool *pgxpool.Pool, log *slog.Logger) *Listener {
	return &Listener{url: databaseURL, pool: pool, q: db.New(), log: log.With("component", "listener"),
		tracer: otel.Tracer(tracerName)}
}

// RefuseAPILogin, when refuse is set (production), makes the listener check its login on every leader-lock
// connection and refuse to lead while that login may switch to fieldtrack_api (CheckListenerLogin): the
// refusal is logged, kept as the last error, and retried with backoff. serve checks once at start-up too;
// this covers a database that was unreachable then. It returns l.
func (l *Listener) RefuseAPILogin(refuse bool) *Listener {
	l.refuseAPILogin = refuse
	return l
}

// FanOut makes every hand-off this listener commits reach hub and notifier (both of this process, either
// may be nil) as soon as it committed: hub publishes its events without reading them back from the table
// (when it is at the position they follow), and notifier wakes its other subscribers (the webhook worker)
// without waiting for Postgres's NOTIFY, which wakes nobody a second time. Other processes learn of the
// hand-off by that NOTIFY. It returns l.
func (l *Listener) FanOut(hub *Hub, notifier *Notifier) *Listener {
	l.hub, l.notifier = hub, notifier
	return l
}

// Deliverer is the webhook worker of this process, as the hand-off sees it (webhook.Worker).
type Deliverer interface {
	Reserve(n int) int                                              // takes up to n idle senders
	Deliver(claims []db.DeliveryClaimRow, reserved int, upTo int64) // sends the claims, gives back the rest
	Lease() time.Duration                                           // how long a claim lasts
}

// ClaimFor makes every hand-off claim the first attempts of its deliveries for d, as many as d has idle
// senders, and give them to d once it committed: they are sent without d claiming them in a transaction
// of its own (sql/000027). Deliveries beyond them, or of a webhook whose circuit is not closed, are left
// to the workers' claims as before. It returns l.
func (l *Listener) ClaimFor(d Deliverer) *Listener {
	l.deliverer = d
	return l
}

// Status is the listener's state for the operations endpoints.
type Status struct {
	Live        bool      `json:"live"`
	Leader      bool      `json:"leader"`
	AckedLSN    string    `json:"ackedLsn"`
	Handoffs    int64     `json:"handoffs"`
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
}

// Status reports whether this process leads, what it acknowledged and its last error.
func (l *Listener) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Status{Live: l.live.Load(), Leader: l.leader.Load(), AckedLSN: pglogrepl.LSN(l.acked.Load()).String(),
		Handoffs: l.handoffs.Load(), LastError: l.lastErr, LastErrorAt: l.lastErrT}
}

// Live reports whether the listener leads or stands by on a working connection.
func (l *Listener) Live() bool { return l.live.Load() }

// Run competes for leadership and, while leading, consumes the slot. It returns only when ctx ends;
// every failure (lost connection, Postgres restart) is logged and retried with backoff, resuming from the
// slot's confirmed position, so nothing is skipped.
func (l *Listener) Run(ctx context.Context) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		started := time.Now()
		err := l.lead(ctx)
		l.leader.Store(false)
		l.live.Store(false)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.recordError(err)
			l.log.Warn("listener stopped; retrying", "error", err.Error(), "in", backoff.String())
		}
		if time.Since(started) > time.Minute {
			backoff = 500 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (l *Listener) recordError(err error) {
	l.mu.Lock()
	l.lastErr, l.lastErrT = err.Error(), time.Now()
	l.mu.Unlock()
}

// lead waits for the leader lock, then streams until an error or ctx ends. The lock lives on its own
// connection: if this process dies, Postgres releases it and another process takes over.
func (l *Listener) lead(ctx context.Context) error {
	lockConn, err := pgx.Connect(ctx, l.url)
	if err != nil {
		return fmt.Errorf("lock connection: %w", err)
	}
	defer lockConn.Close(context.WithoutCancel(ctx))
	if l.refuseAPILogin {
		if err := CheckListenerLogin(ctx, lockConn); err != nil {
			return err
		}
	}
	if err := l.q.ConnectionAsWorker(ctx, lockConn); err != nil {
		return fmt.Errorf("lock connection: %w", err)
	}
	for {
		got, err := l.q.ListenerTryLead(ctx, lockConn, leaderLockKey)
		if err != nil {
			return fmt.Errorf("leader lock: %w", err)
		}
		l.live.Store(true)
		if got {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
	l.leader.Store(true)
	l.log.Info("leading: consuming the outbox slot")
	return l.stream(ctx, lockConn)
}
