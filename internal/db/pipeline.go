package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// connTx is the DBTX that InTx hands its callback: a transaction on one pooled connection. Its first
// statement travels in one batch with the pending BEGIN and settings (and, in a single-statement
// transaction, with COMMIT): the server runs them in order and answers them together. If BEGIN or the
// settings fail, the statement's answer is their error (the server skips the rest of the batch).
type connTx struct {
	conn    *pgxpool.Conn
	pending *pgx.Batch // BEGIN and the settings, until the first statement carries them
	single  bool       // COMMIT travels with the first statement (TxOptions.SingleStatement)
	ended   bool       // committed or rolled back
}

// Exec runs a statement inside the transaction.
func (t *connTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.pending == nil && !t.single {
		return t.conn.Exec(ctx, sql, args...)
	}
	br, err := t.send(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	return tag, t.finish(br, err)
}

// Query runs a query inside the transaction.
func (t *connTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t.pending == nil && !t.single {
		return t.conn.Query(ctx, sql, args...)
	}
	br, err := t.send(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, tx: t, br: br}, nil
}

// QueryRow runs a query expected to return at most one row inside the transaction.
func (t *connTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if t.pending == nil && !t.single {
		return t.conn.QueryRow(ctx, sql, args...)
	}
	rows, err := t.Query(ctx, sql, args...)
	if err != nil {
		return errRow{err}
	}
	return firstRow{rows}
}

// send queues sql after the pending statements (and COMMIT after it in a single-statement transaction),
// sends the batch and consumes the answers of BEGIN and the settings, returning the batch positioned at
// sql's answer.
func (t *connTx) send(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	if t.pending == nil {
		return nil, errors.New("a single-statement transaction ran a second statement")
	}
	b := t.pending
	t.pending = nil
	n := b.Len()
	b.Queue(sql, args...)
	if t.single {
		b.Queue("COMMIT")
	}
	br := t.conn.SendBatch(ctx, b)
	for range n {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return nil, fmt.Errorf("begin: %w", err)
		}
	}
	return br, nil
}

// finish closes the batch of the first statement. In a single-statement transaction it first reads
// COMMIT's answer: the transaction is then over (a statement that failed made the server skip COMMIT,
// and InTx rolls back). It returns stmtErr, or else the first error of the rest of the batch.
func (t *connTx) finish(br pgx.BatchResults, stmtErr error) error {
	if stmtErr == nil && t.single {
		tag, err := br.Exec()
		if err == nil && tag.String() == "ROLLBACK" {
			err = pgx.ErrTxCommitRollback
		}
		if err != nil {
			_ = br.Close()
			return fmt.Errorf("commit: %w", err)
		}
		t.ended = true
	}
	if err := br.Close(); stmtErr == nil {
		return err
	}
	return stmtErr
}

// commit ends the transaction, unless COMMIT already went with the statement or no statement ever
// reached the server (then there is no transaction to end). A transaction that had failed reports
// pgx.ErrTxCommitRollback.
func (t *connTx) commit(ctx context.Context) error {
	if t.ended || t.pending != nil {
		t.ended = true
		return nil
	}
	tag, err := t.conn.Exec(ctx, "COMMIT")
	if err != nil {
		return err
	}
	t.ended = true
	if tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// rollback ends a failed transaction. It runs even when ctx is already cancelled; a connection whose
// rollback fails is closed, so the pool never hands out a connection inside a transaction.
func (t *connTx) rollback(ctx context.Context) {
	if t.ended || t.pending != nil {
		t.ended = true
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := t.conn.Exec(rctx, "ROLLBACK"); err != nil {
		_ = t.conn.Conn().Close(rctx)
	}
	t.ended = true
}

// batchRows finishes the batch (and, in a single-statement transaction, the transaction) with the rows,
// and reports that error if the rows had none.
type batchRows struct {
	pgx.Rows
	tx     *connTx
	br     pgx.BatchResults
	closed bool
	err    error
}

func (r *batchRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	if err := r.tx.finish(r.br, r.Rows.Err()); err != nil && r.Rows.Err() == nil {
		r.err = err
	}
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// firstRow is QueryRow over batchRows: pgx.ErrNoRows when there is none, and the rows always closed.
type firstRow struct{ rows pgx.Rows }

func (r firstRow) Scan(dest ...any) error {
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
