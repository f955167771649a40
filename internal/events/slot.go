package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// ensureSlot makes sure the slot exists and can still stream, and returns its name.
// A slot that max_slot_wal_keep_size invalidated is dropped and created anew. Whenever the slot is
// (re)created, events written while there was no usable slot are not in the WAL it will read: they are
// handed off from the table, oldest first (they are exactly the events without a stream position).
func (l *Listener) ensureSlot(ctx context.Context, conn *pgconn.PgConn, lockConn *pgx.Conn) (string, error) {
	st, err := l.q.SlotState(ctx, lockConn)
	if err != nil {
		return "", fmt.Errorf("slot state: %w", err)
	}
	switch {
	case st.WalStatus == "lost":
		l.log.Warn("the outbox slot was invalidated (max_slot_wal_keep_size); recreating it")
		if err := pglogrepl.DropReplicationSlot(ctx, conn, st.SlotName, pglogrepl.DropReplicationSlotOptions{}); err != nil {
			return "", fmt.Errorf("drop invalidated slot: %w", err)
		}
	case st.WalStatus != "":
		return st.SlotName, nil // the slot exists and streams
	}
	if err := createSlot(ctx, conn, st.SlotName); err != nil {
		return "", err
	}
	_, err = db.Do(ctx, l.pool, db.Claims{}, workerWrite, func(tx db.DBTX) (int64, error) {
		return l.q.EventDispatchUnstamped(ctx, tx)
	})
	if err != nil {
		return "", fmt.Errorf("hand off events written before the slot: %w", err)
	}
	l.log.Info("created the outbox slot", "slot", st.SlotName)
	return st.SlotName, nil
}

// createSlot creates the slot name on the replication connection conn; one created meanwhile (by another
// process) is as good.
func createSlot(ctx context.Context, conn *pgconn.PgConn, name string) error {
	_, err := pglogrepl.CreateReplicationSlot(ctx, conn, name, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication})
	var pgErr *pgconn.PgError
	if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42710") { // 42710: created meanwhile
		return fmt.Errorf("create slot: %w", err)
	}
	return nil
}

// EnsureSlot creates the outbox slot when it is missing, so events written from now on (for example by
// `fieldtrack seed` right after the migrations) are in the WAL the listener reads. databaseURL logs in as
// the listener does (fieldtrack_listener, or an owner with REPLICATION): it reads the slot's state as
// fieldtrack_worker and creates the slot on a replication connection. Without REPLICATION it fails, and the
// listener creates the slot on first start instead. A slot that exists but was invalidated is left to the
// listener, which hands off from the table what the lost slot held when it recreates it.
func EnsureSlot(ctx context.Context, databaseURL string) error {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	q := db.New()
	if err := q.ConnectionAsWorker(ctx, conn); err != nil {
		return err
	}
	st, err := q.SlotState(ctx, conn)
	if err != nil || st.WalStatus != "" {
		return err
	}
	rconn, err := replicationConnect(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer rconn.Close(context.WithoutCancel(ctx))
	return createSlot(ctx, rconn, st.SlotName)
}

// workerWrite is the listener's hand-off transaction: as the worker role, which sees every organization,
// bounded so that a hand-off that cannot finish fails and is retried rather than holding the stream.
var workerWrite = db.TxOptions{Role: db.WorkerRole, SingleStatement: true, StatementTimeout: 30 * time.Second}
