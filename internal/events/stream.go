package events

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

const (
	// Publication covers inserts into webhook_events only. The permanent slot the leader consumes is
	// named by app.outbox_slot() (fieldtrack_events_<database>: slot names are cluster-wide).
	Publication = "fieldtrack_events"
	// standbyInterval bounds the time between status updates to the server, also when idle.
	standbyInterval = 10 * time.Second
	// Committed transactions received back to back are handed off together, in one transaction, and
	// acknowledged: when no further message is already on its way (none within handOffIdle), or when
	// the batch is handOffMaxAge old. So a lone commit is handed off at once, and what arrives during a
	// hand-off forms the next batch (batches grow with the load, not with a timer). Events are handed
	// off handOffMaxEvents at a time as they arrive (a large transaction in parts), acknowledged with
	// the batch.
	handOffIdle      = 200 * time.Microsecond
	handOffMaxAge    = 10 * time.Millisecond
	handOffMaxEvents = 1000
)

// stream consumes the slot on a replication connection until an error or ctx ends. lockConn is the
// connection holding the leader lock: leadership lasts as long as it does.
func (l *Listener) stream(ctx context.Context, lockConn *pgx.Conn) error {
	conn, err := replicationConnect(ctx, l.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	slot, err := l.ensureSlot(ctx, conn, lockConn)
	if err != nil {
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
	st, err := l.q.SlotState(ctx, lockConn)
	if err != nil {
		return fmt.Errorf("slot position: %w", err)
	}
	confirmed, err := pglogrepl.ParseLSN(st.ConfirmedLsn)
	if err != nil {
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

// replicationConnect opens a replication connection (database mode: it may also run SQL) as
// databaseURL's login, which needs the REPLICATION attribute. It returns an error naming the connection
// when databaseURL does not parse or the connection fails.
func replicationConnect(ctx context.Context, databaseURL string) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(databaseURL)
	if err != nil {
		// pgconn's parse errors never repeat the password; url.Parse's would.
		return nil, fmt.Errorf("replication connection: %w", err)
	}
	// A replication connection of this name must never be listed in synchronous_standby_names: a producer
	// would wait for the listener's acknowledgement while the hand-off waits for the producer to finish.
	cfg.RuntimeParams["replication"] = "database"
	cfg.RuntimeParams["application_name"] = "fieldtrack_listener"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("replication connection: %w", err)
	}
	return conn, nil
}

// handOff makes the batch's events durable downstream: stream positions and deliveries, in one
// transaction. Its span joins the trace of every traced event in the batch (see handOffSpans). Once it
// committed, this process's hub and notifier hear of it at once (see Listener.FanOut), and its worker
// gets the deliveries it claimed for it (see Listener.ClaimFor).
func (s *session) handOff(ctx context.Context) error {
	ctx, spans := s.l.handOffSpans(ctx, s.traces)
	if s.l.notifier != nil {
		s.l.notifier.BeginHandOff()
	}
	// Senders for the deliveries this hand-off claims, one per event at most (the workers claim the rest
	// as before). Only a small hand-off claims: senders wait for the hand-off they are reserved for, and
	// a big one (a backlog) would keep them from the worker's own claims, which take a backlog in batches.
	reserved, lease := 0, time.Duration(0)
	if d := s.l.deliverer; d != nil && len(s.ids) <= maxClaimingHandOff {
		reserved, lease = d.Reserve(len(s.ids)), d.Lease()
	}
	rows, err := db.Do(ctx, s.l.pool, db.Claims{}, workerWrite, func(tx db.DBTX) ([]db.EventHandOffRow, error) {
		return s.l.q.EventHandOff(ctx, tx, db.EventHandOffParams{OrganizationIds: s.orgs, EventIds: s.ids,
			Xids: s.xids, Claims: int32(reserved), LeaseSeconds: lease.Seconds()})
	})
	rows, claims, left := splitClaims(rows)
	last := int64(0)
	if len(rows) > 0 {
		last = rows[len(rows)-1].StreamID
	}
	if reserved > 0 {
		upTo := int64(0)
		switch {
		case err != nil:
			claims = nil // rolled back (or not known to have committed: then their leases end)
		case !left:
			upTo = last // nothing left for a worker to claim: this hand-off need not wake it
		}
		s.l.deliverer.Deliver(claims, reserved, upTo)
	}
	endSpans(spans, last, err)
	if err == nil && s.l.hub != nil {
		s.l.hub.HandedOff(rows)
	}
	if s.l.notifier != nil {
		s.l.notifier.EndHandOff(last)
	}
	if err != nil {
		return fmt.Errorf("hand-off: %w", err)
	}
	s.l.handoffs.Add(int64(len(s.ids)))
	return nil
}

// maxClaimingHandOff is the most events a hand-off claims deliveries for (see handOff).
const maxClaimingHandOff = 64

// splitClaims parts a hand-off's answer into its events (stream_id set, in stream order: they sort
// first), the deliveries it claimed (claim_id set) and whether it left deliveries for the workers (a row
// of zeros). The last two kinds both sort after the events, in no given order between them.
func splitClaims(rows []db.EventHandOffRow) (events []db.EventHandOffRow, claims []db.DeliveryClaimRow, left bool) {
	n := 0
	for n < len(rows) && rows[n].StreamID != 0 {
		n++
	}
	for _, r := range rows[n:] {
		if r.ClaimID == uuid.Nil {
			left = true
			continue
		}
		c := db.DeliveryClaimRow{OrganizationID: r.OrganizationID, ID: r.ClaimID, WebhookID: r.ClaimWebhookID,
			EventID: r.ClaimEventID, EventType: r.ClaimEventType, AttemptCount: 1, Url: r.ClaimUrl,
			Secret: r.ClaimSecret, Payload: r.ClaimPayload}
		if r.ClaimTraceContext != "" {
			c.TraceContext = &r.ClaimTraceContext
		}
		claims = append(claims, c)
	}
	return rows[:n], claims, left
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
