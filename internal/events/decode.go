package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
)

// session is one replication stream's decoding state: pgoutput messages in, batches of committed
// transactions' events out (handed off by flush).
type session struct {
	l         *Listener
	conn      *pgconn.PgConn
	relations map[uint32]*pglogrepl.RelationMessage
	inTx      bool
	xid       int64 // of the transaction being decoded
	// The events of the committed transactions not yet handed off, in commit order, each with its
	// transaction's id and trace context (the traceparent of the request that emitted it, "" when it was
	// not traced), and where the last of those transactions ends in the WAL.
	orgs       []uuid.UUID
	ids        []uuid.UUID
	xids       []int64
	traces     []string
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
		s.inTx, s.xid = true, int64(m.Xid)
	case *pglogrepl.InsertMessage:
		org, id, traceparent, err := s.eventKey(m)
		if err != nil {
			return err
		}
		s.orgs, s.ids, s.xids = append(s.orgs, org), append(s.ids, id), append(s.xids, s.xid)
		s.traces = append(s.traces, traceparent)
		// pgoutput (proto_version 1) sends a transaction only once it committed, so a large one can be
		// handed off in parts as it arrives, each part a transaction of its own; only its commit is
		// acknowledged (flush), and a replay after a crash skips the parts already handed off.
		if len(s.ids) >= handOffMaxEvents {
			if err := s.handOff(ctx); err != nil {
				return err
			}
			s.orgs, s.ids, s.xids, s.traces = s.orgs[:0], s.ids[:0], s.xids[:0], s.traces[:0]
		}
	case *pglogrepl.CommitMessage:
		s.inTx = false
		if s.batched == 0 {
			s.batchSince = time.Now()
		}
		s.batched++
		s.batchEnd = m.TransactionEndLSN
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
	s.orgs, s.ids, s.xids, s.traces, s.batched = s.orgs[:0], s.ids[:0], s.xids[:0], s.traces[:0], 0
	return s.sendStatus(ctx)
}

// eventKey reads (organization_id, id) and the trace context from an inserted outbox row.
func (s *session) eventKey(m *pglogrepl.InsertMessage) (org, id uuid.UUID, traceparent string, err error) {
	rel, ok := s.relations[m.RelationID]
	if !ok {
		return org, id, "", fmt.Errorf("insert for unknown relation %d", m.RelationID)
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
		case "trace_context":
			traceparent = string(col.Data)
		}
		if err != nil {
			return org, id, "", fmt.Errorf("outbox row: %w", err)
		}
	}
	if org == uuid.Nil || id == uuid.Nil {
		return org, id, "", errors.New("outbox row without organization_id or id")
	}
	return org, id, traceparent, nil
}
