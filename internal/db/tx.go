package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// APIRole is the Postgres role every request transaction runs as: not the owner, no BYPASSRLS.
const APIRole = "fieldtrack_api"

// WorkerRole is the role of background work (listener hand-off, SSE fan-out, webhook delivery): it sees the
// webhook tables of every organization and nothing else.
const WorkerRole = "fieldtrack_worker"

// ErrUnavailable means no database connection could be had in time (pool exhausted or database down).
var ErrUnavailable = errors.New("database unavailable")

// Claims are the facts about the caller that Postgres policies read through app.org_id(), app.user_id(),
// app.role() and app.employee_id(); JWT is the whole verified claim set, PostgREST-style.
type Claims struct {
	OrgID      uuid.UUID
	UserID     uuid.NullUUID
	Role       string
	EmployeeID uuid.NullUUID
	JWT        json.RawMessage
}

// TxOptions tune one transaction.
type TxOptions struct {
	Role             string // APIRole when empty
	ReadOnly         bool
	StatementTimeout time.Duration // 0 leaves the server default
	AcquireTimeout   time.Duration // 0 waits as long as ctx allows
	// AsyncCommit commits without waiting for the WAL flush: for work whose loss in a crash is redone
	// anyway (the webhook worker's claims and records), never for what is acknowledged to someone.
	AsyncCommit bool
	// SingleStatement sends COMMIT in the same batch as BEGIN, the claims and fn's one statement: the
	// whole transaction is one round trip. fn may run exactly one statement.
	SingleStatement bool
}

// InTx is the only way a request reaches Postgres. It begins a transaction and sets the role, the claims
// and the statement timeout with set_config(..., true) (so nothing outlives the transaction) in the same
// round trip as BEGIN, as one pipelined batch of cached prepared statements with the values as
// parameters; then it runs fn and commits. It rolls back when fn fails and returns fn's error unchanged;
// it returns ErrUnavailable (wrapped) when no connection could be acquired within AcquireTimeout.
func InTx(ctx context.Context, pool *pgxpool.Pool, c Claims, o TxOptions, fn func(pgx.Tx) error) (err error) {
	conn, err := acquire(ctx, pool, o.AcquireTimeout)
	if err != nil {
		return err
	}
	defer conn.Release() // the pool destroys a connection left inside a transaction

	tx := &connTx{conn: conn, single: o.SingleStatement}
	tx.prepare(c, o)
	if err = fn(tx); err != nil {
		tx.abort(ctx)
		return err
	}
	if err = tx.Commit(ctx); err != nil {
		tx.abort(ctx)
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func acquire(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration) (*pgxpool.Conn, error) {
	actx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	conn, err := pool.Acquire(actx)
	if err == nil {
		return conn, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err() // the request itself ended; not the database's fault
	}
	return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// setClaimsSQL sets the role, the claims and the statement timeout for the current transaction.
const setClaimsSQL = `SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true),
	set_config('app.org_id', $3, true), set_config('app.user_id', $4, true), set_config('app.role', $5, true),
	set_config('app.employee_id', $6, true),
	set_config('statement_timeout', coalesce(nullif($7, ''), current_setting('statement_timeout')), true),
	set_config('synchronous_commit', coalesce(nullif($8, ''), current_setting('synchronous_commit')), true)`

// connTx is a transaction on a pooled connection begun by InTx. It implements pgx.Tx so sqlc's queries
// and tests use it like any transaction; nested transactions are not supported.
type connTx struct {
	conn    *pgxpool.Conn
	pending *pgx.Batch // BEGIN and the claims, until the first statement carries them to the server
	single  bool       // COMMIT travels with the first statement (TxOptions.SingleStatement)
	closed  bool
}

// prepare queues BEGIN and the claims; they go to the server together with the transaction's first
// statement (see pipeline.go), so a one-statement request costs two round trips: that batch and COMMIT.
func (t *connTx) prepare(c Claims, o TxOptions) {
	role := o.Role
	if role == "" {
		role = APIRole
	}
	timeout := "" // keeps the session's
	if o.StatementTimeout > 0 {
		timeout = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	}
	claims := string(c.JWT)
	if claims == "" {
		claims = "{}"
	}
	b := &pgx.Batch{}
	if o.ReadOnly {
		b.Queue("BEGIN READ ONLY")
	} else {
		b.Queue("BEGIN")
	}
	b.Queue(setClaimsSQL, role, claims, nullableUUID(uuid.NullUUID{UUID: c.OrgID, Valid: c.OrgID != uuid.Nil}),
		nullableUUID(c.UserID), c.Role, nullableUUID(c.EmployeeID), timeout, map[bool]string{true: "off"}[o.AsyncCommit])
	t.pending = b
}

// abort rolls back after a failure. It must run even when ctx is already cancelled; a connection whose
// rollback fails is closed, so the pool never hands out a connection inside a transaction.
func (t *connTx) abort(ctx context.Context) {
	if t.closed {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := t.Rollback(rctx); err != nil {
		_ = t.conn.Conn().Close(rctx)
	}
}

// Begin is not supported: request transactions are flat.
func (t *connTx) Begin(context.Context) (pgx.Tx, error) {
	return nil, errors.New("nested transactions are not supported")
}

// Commit commits; a transaction that had failed reports ErrTxCommitRollback, as pgx does.
func (t *connTx) Commit(ctx context.Context) error {
	if t.closed && t.single {
		return nil // COMMIT went with the statement
	}
	if t.closed {
		return pgx.ErrTxClosed
	}
	if t.pending != nil { // no statement ran: the transaction never reached the server
		t.closed = true
		return nil
	}
	tag, err := t.conn.Exec(ctx, "COMMIT")
	t.closed = err == nil
	if err != nil {
		return err
	}
	if tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// Rollback rolls back; it is safe to call after Commit.
func (t *connTx) Rollback(ctx context.Context) error {
	if t.closed {
		return pgx.ErrTxClosed
	}
	if t.pending != nil {
		t.closed = true
		return nil
	}
	_, err := t.conn.Exec(ctx, "ROLLBACK")
	t.closed = err == nil
	return err
}

// CopyFrom, SendBatch, LargeObjects, Prepare, Exec, Query, QueryRow and Conn run on the connection, after
// the pending BEGIN (pipeline.go).
func (t *connTx) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	if err := t.flush(ctx); err != nil {
		return 0, err
	}
	return t.conn.CopyFrom(ctx, table, cols, src)
}

// SendBatch runs a batch inside the transaction.
func (t *connTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := t.flush(ctx); err != nil {
		return errBatchResults{err}
	}
	return t.conn.SendBatch(ctx, b)
}

// LargeObjects is not supported.
func (t *connTx) LargeObjects() pgx.LargeObjects { return pgx.LargeObjects{} }

// Prepare prepares a statement on the connection.
func (t *connTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.conn.Conn().Prepare(ctx, name, sql)
}

// Exec runs a statement inside the transaction.
func (t *connTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.pending != nil || t.single {
		return t.execFirst(ctx, sql, args)
	}
	return t.conn.Exec(ctx, sql, args...)
}

// Query runs a query inside the transaction.
func (t *connTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t.pending != nil || t.single {
		return t.queryFirst(ctx, sql, args)
	}
	return t.conn.Query(ctx, sql, args...)
}

// QueryRow runs a single-row query inside the transaction.
func (t *connTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if t.pending != nil || t.single {
		rows, err := t.queryFirst(ctx, sql, args)
		if err != nil {
			return errRow{err}
		}
		return firstRow{rows}
	}
	return t.conn.QueryRow(ctx, sql, args...)
}

// Conn is the underlying connection.
func (t *connTx) Conn() *pgx.Conn { return t.conn.Conn() }

func nullableUUID(u uuid.NullUUID) string {
	if !u.Valid {
		return ""
	}
	return u.UUID.String()
}
