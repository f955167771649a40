package db

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The first statement of a transaction travels in one batch with the pending BEGIN and claims: the
// server runs them in order and answers them together, so the transaction costs one round trip less.
// If BEGIN or the claims fail, the statement's answer is their error (the server skips the rest).

// flush sends the pending BEGIN and claims on their own (for operations that cannot join the batch).
func (t *connTx) flush(ctx context.Context) error {
	if t.pending == nil {
		return nil
	}
	b := t.pending
	t.pending = nil
	if err := t.conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	return nil
}

// send queues sql after the pending statements (and COMMIT after it in a single-statement transaction),
// sends the batch and consumes the BEGIN and claims results, returning the batch positioned at sql's
// result.
func (t *connTx) send(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	if t.pending == nil && t.single {
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

// done finishes the batch of the first statement. In a single-statement transaction it reads COMMIT's
// answer: the transaction is then over (a statement that failed made the server skip COMMIT, and InTx
// rolls back).
func (t *connTx) done(br pgx.BatchResults, stmtErr error) error {
	if stmtErr == nil && t.single {
		tag, err := br.Exec()
		if err == nil && tag.String() == "ROLLBACK" {
			err = pgx.ErrTxCommitRollback
		}
		if err != nil {
			_ = br.Close()
			return fmt.Errorf("commit: %w", err)
		}
		t.closed = true
	}
	if err := br.Close(); stmtErr == nil {
		return err
	}
	return stmtErr
}

func (t *connTx) execFirst(ctx context.Context, sql string, args []any) (pgconn.CommandTag, error) {
	br, err := t.send(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	return tag, t.done(br, err)
}

func (t *connTx) queryFirst(ctx context.Context, sql string, args []any) (pgx.Rows, error) {
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
	if err := r.tx.done(r.br, r.Rows.Err()); err != nil && r.Rows.Err() == nil {
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

// errBatchResults answers every call with the error that kept a batch from being sent.
type errBatchResults struct{ err error }

func (e errBatchResults) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, e.err }
func (e errBatchResults) Query() (pgx.Rows, error)         { return nil, e.err }
func (e errBatchResults) QueryRow() pgx.Row                { return errRow(e) }
func (e errBatchResults) Close() error                     { return e.err }
func (e errBatchResults) Tx() pgx.Tx                       { return nil }
