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
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"
)

// APIRole is the Postgres role every request transaction runs as: not the owner, no BYPASSRLS.
const APIRole = "fieldtrack_api"

// IssuerRole is the role of built-in identity's own transactions (logins, refreshes, signing keys): it
// runs the functions that read password hashes and refresh tokens, which fieldtrack_api cannot.
const IssuerRole = "fieldtrack_issuer"

// WorkerRole is the role of background work (listener hand-off, SSE fan-out, webhook delivery): it sees the
// webhook tables of every organization and nothing else.
const WorkerRole = "fieldtrack_worker"

// ErrUnavailable means no database connection could be had in time (pool exhausted or database down).
var ErrUnavailable = errors.New("database unavailable")

// Claims are the facts about the caller that Postgres policies read through app.org_id(), app.user_id(),
// app.role() and app.employee_id(); JWT is the whole verified claim set, PostgREST-style. SessionID is
// the session of a token this server issued.
type Claims struct {
	OrgID      uuid.UUID
	UserID     uuid.NullUUID
	Role       string
	EmployeeID uuid.NullUUID
	SessionID  uuid.NullUUID
	APIKeyID   uuid.NullUUID // an API-key caller's key, checked still active
	Scope      string        // the scope the key must hold for this request ("" for none)
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
	// SingleStatement sends COMMIT in the same batch as BEGIN, the settings and fn's one statement: the
	// whole transaction is one round trip. The statement commits as soon as it succeeds, so fn must be
	// that statement alone: an error fn returns after it does not roll it back. A second statement fails.
	SingleStatement bool
}

// InTx is the only way a request reaches Postgres. It begins a transaction, sets the role, the claims and
// the statement timeout with set_config(..., true), so nothing outlives the transaction, runs fn and
// commits. BEGIN and the settings (prepared statements with the values as parameters) travel to the server
// in one batch with fn's first statement, and with SingleStatement COMMIT joins that batch: a one-statement
// transaction is one round trip. InTx rolls back when fn fails and returns fn's error unchanged; it
// returns ErrUnavailable (wrapped) when no connection could be acquired within AcquireTimeout.
func InTx(ctx context.Context, pool *pgxpool.Pool, c Claims, o TxOptions, fn func(DBTX) error) error {
	conn, err := acquire(ctx, pool, o.AcquireTimeout)
	if err != nil {
		return err
	}
	defer conn.Release() // the pool destroys a connection left inside a transaction

	tx := &connTx{conn: conn, pending: begin(ctx, c, o, onCitus(conn.Conn())), single: o.SingleStatement}
	if err := fn(tx); err != nil {
		tx.rollback(ctx)
		return err
	}
	if err := tx.commit(ctx); err != nil {
		tx.rollback(ctx)
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Do is InTx for work that produces one value: fn's result once the transaction has committed.
func Do[T any](ctx context.Context, pool *pgxpool.Pool, c Claims, o TxOptions, fn func(DBTX) (T, error)) (T, error) {
	var out T
	err := InTx(ctx, pool, c, o, func(tx DBTX) (err error) {
		out, err = fn(tx)
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return out, nil
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

// settingsSQL sets the role, the claims, the statement timeout and the commit mode for the current
// transaction. An empty timeout or commit mode keeps the session's. settingsTracedSQL also sets
// app.trace_context, the traceparent app.append_event stores with every event the transaction emits, so
// the event's hand-off and webhook attempts join the request's trace: one statement either way.
const (
	settingsSQL = `SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true),
	set_config('app.org_id', $3, true), set_config('app.user_id', $4, true), set_config('app.role', $5, true),
	set_config('app.employee_id', $6, true),
	set_config('statement_timeout', coalesce(nullif($7, ''), current_setting('statement_timeout')), true),
	set_config('synchronous_commit', coalesce(nullif($8, ''), current_setting('synchronous_commit')), true)`
	settingsTracedSQL = settingsSQL + `, set_config('app.trace_context', $9, true)`
)

// checkCallerSQL refuses the transaction of a caller that may no longer act (a disabled user, a
// deactivated employee, a session that ended, a revoked API key or one without the route's scope): the
// claims are checked where the request runs, so no cache outlives the change. Its own statement, after the role is switched (the API role may call it).
const checkCallerSQL = `SELECT app.check_caller($1, $2, $3, $4, $5, nullif($6, ''))`

// shareClaimsSQL sends the claims on from a Citus coordinator to its workers (app.citus_share_claims).
const shareClaimsSQL = `SELECT app.citus_share_claims()`

// begin returns the batch that opens a transaction: BEGIN, the settings (with a sampled trace's context),
// on Citus their sharing with the workers, and, for a caller's request, the caller check, queued until
// the first statement carries them to the server.
func begin(ctx context.Context, c Claims, o TxOptions, citus bool) *pgx.Batch {
	role := o.Role
	if role == "" {
		role = APIRole
	}
	timeout := ""
	if o.StatementTimeout > 0 {
		timeout = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	}
	commit := ""
	if o.AsyncCommit {
		commit = "off"
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
	org := text(uuid.NullUUID{UUID: c.OrgID, Valid: c.OrgID != uuid.Nil})
	// The trace context only where events can be emitted (a request's writing transaction) and only under
	// a span this process records: with tracing off, a caller's own traceparent is not stored.
	if span := trace.SpanFromContext(ctx); role == APIRole && !o.ReadOnly && span.IsRecording() && span.SpanContext().IsSampled() {
		b.Queue(settingsTracedSQL, role, claims, org, text(c.UserID), c.Role, text(c.EmployeeID), timeout, commit,
			traceparent(span.SpanContext()))
	} else {
		b.Queue(settingsSQL, role, claims, org, text(c.UserID), c.Role, text(c.EmployeeID), timeout, commit)
	}
	if citus && role != WorkerRole {
		b.Queue(shareClaimsSQL)
	}
	if role == APIRole && (c.UserID.Valid || c.APIKeyID.Valid) {
		b.Queue(checkCallerSQL, c.OrgID, c.UserID, c.EmployeeID, c.SessionID, c.APIKeyID, c.Scope)
	}
	return b
}

// traceparent is the W3C traceparent header of sc (version 00).
func traceparent(sc trace.SpanContext) string {
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

func text(u uuid.NullUUID) string {
	if !u.Valid {
		return ""
	}
	return u.UUID.String()
}
