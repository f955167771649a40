package events

import (
	"context"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// Notifier holds the process's one LISTEN connection: app.dispatch_events notifies after every hand-off,
// with the last stream position it assigned, and the notifier wakes each of its subscribers (the SSE hub,
// the webhook worker). A wake-up is a hint to look now; subscribers also look on a timer, so a lost
// connection costs latency, never an event. The listener of this process tells it of its own hand-offs
// (BeginHandOff, EndHandOff): a notification arriving meanwhile, most likely the hand-off's own, is held
// until the hand-off ends, and the hub, which the listener handed the events directly, is not woken for
// what it has seen.
type Notifier struct {
	url  string
	q    *db.Queries
	log  *slog.Logger
	live atomic.Bool

	mu        sync.Mutex
	subs      []subscription
	announced int64 // the highest position subscribers were woken for
	handing   bool  // this process's listener is committing a hand-off
	held      int64 // the highest position notified while handing
}

// subscription is one subscriber's wake-up channel and, when it has one, the position it has seen.
type subscription struct {
	c    chan struct{}
	seen func() int64 // nil: woken for every hand-off
}

// unknownPosition wakes every subscriber: a (re)connection, or a notification without a position.
const unknownPosition = math.MaxInt64

// NewNotifier returns a notifier that listens on a connection of its own to databaseURL.
func NewNotifier(databaseURL string, log *slog.Logger) *Notifier {
	return &Notifier{url: databaseURL, q: db.New(), log: log.With("component", "notifier")}
}

// Subscribe returns a channel that receives a value after hand-offs. Wake-ups coalesce: a subscriber that
// is busy finds one waiting, however many hand-offs happened meanwhile.
func (n *Notifier) Subscribe() <-chan struct{} { return n.subscribe(nil) }

// SubscribeAfter is Subscribe for a subscriber that knows the stream position it has seen (the hub): it is
// not woken for a hand-off whose last position it has seen already (one the listener handed it directly).
func (n *Notifier) SubscribeAfter(seen func() int64) <-chan struct{} { return n.subscribe(seen) }

func (n *Notifier) subscribe(seen func() int64) <-chan struct{} {
	c := make(chan struct{}, 1)
	n.mu.Lock()
	n.subs = append(n.subs, subscription{c: c, seen: seen})
	n.mu.Unlock()
	return c
}

// BeginHandOff tells the notifier that this process's listener starts a hand-off: notifications that
// arrive before EndHandOff are held until then.
func (n *Notifier) BeginHandOff() {
	n.mu.Lock()
	n.handing = true
	n.mu.Unlock()
}

// EndHandOff ends the hand-off BeginHandOff announced, which assigned positions up to last (0: it failed
// or stamped nothing), and wakes the subscribers that have not seen last or a held notification's
// position.
func (n *Notifier) EndHandOff(last int64) {
	n.mu.Lock()
	last, n.handing, n.held = max(last, n.held), false, 0
	n.mu.Unlock()
	if last > 0 {
		n.wake(last)
	}
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
	n.wake(unknownPosition)
	for {
		msg, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		last, err := strconv.ParseInt(msg.Payload, 10, 64)
		if err != nil || last <= 0 {
			last = unknownPosition
		}
		n.notified(last)
	}
}

// notified handles a notification of a hand-off up to last: held while this process hands off, else a
// wake-up.
func (n *Notifier) notified(last int64) {
	n.mu.Lock()
	if n.handing && last != unknownPosition {
		n.held = max(n.held, last)
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()
	n.wake(last)
}

// wake wakes the subscribers for a hand-off up to last, unless they were woken for it already: each
// subscriber that has not seen last.
func (n *Notifier) wake(last int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if last != unknownPosition {
		if last <= n.announced {
			return
		}
		n.announced = last
	}
	for _, s := range n.subs {
		if s.seen != nil && last != unknownPosition && s.seen() >= last {
			continue
		}
		select {
		case s.c <- struct{}{}:
		default:
		}
	}
}
