package events

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// Notifier holds the process's one LISTEN connection: app.dispatch_events notifies after every hand-off,
// and the notifier wakes each of its subscribers (the SSE hub, the webhook worker). A wake-up is a hint to
// look now; subscribers also look on a timer, so a lost connection costs latency, never an event.
type Notifier struct {
	url  string
	q    *db.Queries
	log  *slog.Logger
	live atomic.Bool

	mu   sync.Mutex
	subs []chan struct{}
}

// NewNotifier returns a notifier that listens on a connection of its own to databaseURL.
func NewNotifier(databaseURL string, log *slog.Logger) *Notifier {
	return &Notifier{url: databaseURL, q: db.New(), log: log.With("component", "notifier")}
}

// Subscribe returns a channel that receives a value after hand-offs. Wake-ups coalesce: a subscriber that
// is busy finds one waiting, however many hand-offs happened meanwhile.
func (n *Notifier) Subscribe() <-chan struct{} {
	c := make(chan struct{}, 1)
	n.mu.Lock()
	n.subs = append(n.subs, c)
	n.mu.Unlock()
	return c
}

// Live reports whether the LISTEN connection is up.
func (n *Notifier) Live() bool { return n.live.Load() }

// Run listens until ctx ends, reconnecting after failures. Every (re)connection wakes the subscribers too:
// notifications sent while it was down are gone.
func (n *Notifier) Run(ctx context.Context) {
	for ctx.Err() == nil {
		err := n.listen(ctx)
		n.live.Store(false)
		if ctx.Err() != nil {
			return
		}
		n.log.Warn("listening for hand-offs stopped; retrying", "error", err.Error())
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (n *Notifier) listen(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, n.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := n.q.ConnectionAsWorker(ctx, conn); err != nil {
		return err
	}
	if err := n.q.StreamListen(ctx, conn); err != nil {
		return err
	}
	n.live.Store(true)
	for {
		n.wake()
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
	}
}

func (n *Notifier) wake() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}
