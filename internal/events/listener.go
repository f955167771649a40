// Package events carries committed events from the outbox to their consumers. The Listener (one leader
// among all server processes) reads the outbox's inserts from a logical replication slot in commit order
// and hands each committed transaction off durably (stream positions stamped, webhook deliveries
// recorded) before acknowledging it. The Hub (every process) tails the stamped stream and fans it out to
// the SSE clients of each organization.
package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

const (
	// Publication covers inserts into webhook_events only. The permanent slot the leader consumes is
	// named by app.outbox_slot() (fieldtrack_events_<database>: slot names are cluster-wide).
	Publication = "fieldtrack_events"
	// leaderLockKey is the advisory lock that elects the one active consumer.
	leaderLockKey = 0x6654_6576_656e_7473 // "fTevents"
	// standbyInterval bounds the time between status updates to the server, also when idle.
	standbyInterval = 10 * time.Second
	// Committed transactions received back to back are handed off together, in one transaction: the
	// batch is handed off when no further message arrives within handOffIdle, when it is handOffMaxAge
	// old, or when it holds handOffMaxEvents events.
	handOffIdle      = 2 * time.Millisecond
	handOffMaxAge    = 50 * time.Millisecond
	handOffMaxEvents = 1000
)

// Listener is the outbox consumer. Run it in every process: one becomes leader, the others wait to take
// over when the leader's session ends.
type Listener struct {
	url  string
	pool *pgxpool.Pool
	q    *db.Queries
	log  *slog.Logger

	leader   atomic.Bool
	acked    atomic.Uint64 // last LSN acknowledged to the server
	handoffs atomic.Int64
	mu       sync.Mutex
	lastErr  string
	lastErrT time.Time
}

// NewListener returns a listener that connects with databaseURL (which needs the REPLICATION attribute)
// and hands off through pool.
func NewListener(databaseURL string, pool *pgxpool.Pool, log *slog.Logger) *Listener {
	return &Listener{url: databaseURL, pool: pool, q: db.New(), log: log.With("component", "listener")}
}

// Status is the listener's state for the operations endpoints.
type Status struct {
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
	return Status{Leader: l.leader.Load(), AckedLSN: pglogrepl.LSN(l.acked.Load()).String(),
		Handoffs: l.handoffs.Load(), LastError: l.lastErr, LastErrorAt: l.lastErrT}
}

// Run competes for leadership and, while leading, consumes the slot. It returns only when ctx ends;
// every failure (lost connection, Postgres restart) is logged and retried with backoff, resuming from the
// slot's confirmed position, so nothing is skipped.
func (l *Listener) Run(ctx context.Context) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		started := time.Now()
		err := l.lead(ctx)
		l.leader.Store(false)
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
	for {
		var got bool
		if err := lockConn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", int64(leaderLockKey)).Scan(&got); err != nil {
			return fmt.Errorf("leader lock: %w", err)
		}
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

func (l *Listener) stream(ctx context.Context, lockConn *pgx.Conn) error {
	u, err := url.Parse(l.url)
	if err != nil {
		return err
	}
	qv := u.Query()
	qv.Set("replication", "database")
	u.RawQuery = qv.Encode()
	conn, err := pgconn.Connect(ctx, u.String())
	if err != nil {
		return fmt.Errorf("replication connection: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var slot string
	if err := lockConn.QueryRow(ctx, "SELECT app.outbox_slot()").Scan(&slot); err != nil {
		return fmt.Errorf("slot name: %w", err)
	}
	if err := l.ensureSlot(ctx, conn, lockConn, slot); err != nil {
		return err
	}
	// Start position 0: the server resumes from the slot's confirmed_flush_lsn.
	err = pglogrepl.StartReplication(ctx, conn, slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + Publication + "'"},
	})
	if err != nil {
		return fmt.Errorf("start replication: %w", err)
	}

	// Acknowledge nothing below what the slot already confirmed (a previous leader may have got further).
	var confirmed pglogrepl.LSN
	if err := lockConn.QueryRow(ctx, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1",
		slot).Scan(&confirmed); err != nil {
		return fmt.Errorf("slot position: %w", err)
	}
	l.acked.Store(uint64(confirmed))
	s := &session{l: l, conn: conn, relations: map[uint32]*pglogrepl.RelationMessage{}, received: confirmed}
	nextStatus := time.Now().Add(standbyInterval)
	nextLockCheck := time.Now().Add(5 * time.Second)
	for {
		if time.Now().After(nextStatus) {
			if err := s.sendStatus(ctx); err != nil {
				return err
			}
			nextStatus = time.Now().Add(standbyInterval)
		}
		if time.Now().After(nextLockCheck) {
			// Leadership is only as good as the lock's connection.
			if err := lockConn.Ping(ctx); err != nil {
				return fmt.Errorf("leader lock connection lost: %w", err)
			}
			nextLockCheck = time.Now().Add(5 * time.Second)
		}
		deadline := nextStatus
		if s.batched > 0 {
			deadline = minTime(deadline, minTime(time.Now().Add(handOffIdle), s.batchSince.Add(handOffMaxAge)))
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		raw, err := conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if pgconn.Timeout(err) {
				if err := s.flush(ctx); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("receive: %w", err)
		}
		switch m := raw.(type) {
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("replication error: %s (%s)", m.Message, m.Code)
		case *pgproto3.CopyData:
			replyNow, err := s.handle(ctx, m.Data)
			if err != nil {
				return err
			}
			if replyNow {
				nextStatus = time.Time{}
			}
		}
	}
}

// ensureSlot makes sure the slot exists and can still stream. A slot that max_slot_wal_keep_size
// invalidated is dropped and created anew. Whenever the slot is (re)created, events written while there
// was no usable slot are not in the WAL it will read: they are handed off from the table, oldest first
// (they are exactly the events without a stream position).
func (l *Listener) ensureSlot(ctx context.Context, conn *pgconn.PgConn, lockConn *pgx.Conn, slot string) error {
	var walStatus *string
	err := lockConn.QueryRow(ctx, "SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&walStatus)
	switch {
	case err == nil && walStatus != nil && *walStatus == "lost":
		l.log.Warn("the outbox slot was invalidated (max_slot_wal_keep_size); recreating it")
		if err := pglogrepl.DropReplicationSlot(ctx, conn, slot, pglogrepl.DropReplicationSlotOptions{}); err != nil {
			return fmt.Errorf("drop invalidated slot: %w", err)
		}
	case err == nil:
		return nil // the slot exists and streams
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("slot status: %w", err)
	}
	_, err = pglogrepl.CreateReplicationSlot(ctx, conn, slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication})
	var pgErr *pgconn.PgError
	if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42710") { // 42710: created meanwhile
		return fmt.Errorf("create slot: %w", err)
	}
	err = db.InTx(ctx, l.pool, db.Claims{}, db.TxOptions{Role: db.WorkerRole}, func(tx pgx.Tx) error {
		_, err := l.q.EventDispatchUnstamped(ctx, tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("hand off events written before the slot: %w", err)
	}
	l.log.Info("created the outbox slot", "slot", slot)
	return nil
}

// EnsureSlot creates the outbox slot when it is missing, so events written from now on (for example by
// `fieldtrack seed` right after the migrations) are in the WAL the listener reads. It needs the REPLICATION
// attribute; without it the listener creates the slot on first start instead.
func EnsureSlot(ctx context.Context, databaseURL string) error {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, `SELECT pg_create_logical_replication_slot(app.outbox_slot(), 'pgoutput')
		WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = app.outbox_slot())`)
	return err
}

// session is one replication stream's decoding state.
type session struct {
	l         *Listener
	conn      *pgconn.PgConn
	relations map[uint32]*pglogrepl.RelationMessage
	inTx      bool
	// The events of the committed transactions not yet handed off, in commit order, and where the last of
	// those transactions ends in the WAL.
	orgs       []uuid.UUID
	ids        []uuid.UUID
	batched    int // committed transactions in the batch
	batchSince time.Time
	batchEnd   pglogrepl.LSN
	received   pglogrepl.LSN // everything up to here has been received and handled
}

// handle processes one CopyData message; it reports whether the server asked for an immediate reply.
func (s *session) handle(ctx context.Context, data []byte) (bool, error) {
	if len(data) == 0 {
		return false, nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		k, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return false, err
		}
		// With no transaction open or waiting for its hand-off, every change before ServerWALEnd that
		// concerns us has been handled: confirming it lets the server recycle WAL of unrelated tables.
		if !s.inTx && s.batched == 0 && k.ServerWALEnd > s.received {
			s.received = k.ServerWALEnd
			s.l.acked.Store(uint64(s.received))
		}
		return k.ReplyRequested, nil
	case pglogrepl.XLogDataByteID:
		x, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return false, err
		}
		return false, s.decode(ctx, x.WALData)
	}
	return false, nil
}

func (s *session) decode(ctx context.Context, wal []byte) error {
	msg, err := pglogrepl.Parse(wal)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		s.relations[m.RelationID] = m
	case *pglogrepl.BeginMessage:
		s.inTx = true
	case *pglogrepl.InsertMessage:
		org, id, err := s.eventKey(m)
		if err != nil {
			return err
		}
		s.orgs, s.ids = append(s.orgs, org), append(s.ids, id)
	case *pglogrepl.CommitMessage:
		s.inTx = false
		if s.batched == 0 {
			s.batchSince = time.Now()
		}
		s.batched++
		s.batchEnd = m.TransactionEndLSN
		if len(s.ids) >= handOffMaxEvents {
			return s.flush(ctx)
		}
	}
	return nil
}

// flush hands off the batch of committed transactions, then acknowledges the end of the last one: a
// crash before the acknowledgement replays them, and the hand-off skips what it already did.
func (s *session) flush(ctx context.Context) error {
	if s.batched == 0 {
		return nil
	}
	if len(s.ids) > 0 {
		if err := s.handOff(ctx); err != nil {
			return err
		}
	}
	s.received = s.batchEnd
	s.l.acked.Store(uint64(s.batchEnd))
	s.orgs, s.ids, s.batched = s.orgs[:0], s.ids[:0], 0
	return s.sendStatus(ctx)
}

// eventKey reads (organization_id, id) from an inserted outbox row.
func (s *session) eventKey(m *pglogrepl.InsertMessage) (org, id uuid.UUID, err error) {
	rel, ok := s.relations[m.RelationID]
	if !ok {
		return org, id, fmt.Errorf("insert for unknown relation %d", m.RelationID)
	}
	for i, col := range m.Tuple.Columns {
		if i >= len(rel.Columns) || col.DataType != 't' {
			continue
		}
		switch rel.Columns[i].Name {
		case "organization_id":
			org, err = uuid.ParseBytes(col.Data)
		case "id":
			id, err = uuid.ParseBytes(col.Data)
		}
		if err != nil {
			return org, id, fmt.Errorf("outbox row: %w", err)
		}
	}
	if org == uuid.Nil || id == uuid.Nil {
		return org, id, errors.New("outbox row without organization_id or id")
	}
	return org, id, nil
}

// handOff makes the batch's events durable downstream: stream positions and deliveries, in one
// transaction.
func (s *session) handOff(ctx context.Context) error {
	err := db.InTx(ctx, s.l.pool, db.Claims{}, db.TxOptions{Role: db.WorkerRole}, func(tx pgx.Tx) error {
		_, err := s.l.q.EventDispatch(ctx, tx, db.EventDispatchParams{OrganizationIds: s.orgs, EventIds: s.ids})
		return err
	})
	if err != nil {
		return fmt.Errorf("hand-off: %w", err)
	}
	s.l.handoffs.Add(int64(len(s.ids)))
	return nil
}

func (s *session) sendStatus(ctx context.Context) error {
	pos := pglogrepl.LSN(s.l.acked.Load())
	if err := pglogrepl.SendStandbyStatusUpdate(ctx, s.conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: pos}); err != nil {
		return fmt.Errorf("standby status: %w", err)
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
