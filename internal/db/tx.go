package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// APIRole is the Postgres role every request transaction runs as: not the owner, no BYPASSRLS.
const APIRole = "fieldtrack_api"

// WorkerRole is the role of background work (listener hand-off, SSE fan-out, webhook delivery): it sees the
// webhook tables of every organization and nothing else.
const WorkerRole = "fieldtrack_worker"

// ErrUnavailable means no database connection could be had in time (pool exhausted or database down).
var ErrUnavailable = errors.New("database unavailable")

// ErrNotFound is returned when a row the caller asked for does not exist or is not visible to it.
var ErrNotFound = errors.New("not found")

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
}

// InTx is the only way a request reaches Postgres. It begins a transaction and sets the role, the claims
// and the statement timeout in the same round trip as BEGIN (set_config(..., true), so nothing outlives the
// transaction), runs fn, and commits. It rolls back when fn fails and returns fn's error unchanged; it
// returns ErrUnavailable (wrapped) when no connection could be acquired within AcquireTimeout.
func InTx(ctx context.Context, pool *pgxpool.Pool, c Claims, o TxOptions, fn func(pgx.Tx) error) (err error) {
	begin, err := beginQuery(c, o)
	if err != nil {
		return err
	}
	conn, err := acquire(ctx, pool, o.AcquireTimeout)
	if err != nil {
		return err
	}
	defer conn.Release()

	tx, err := conn.BeginTx(ctx, pgx.TxOptions{BeginQuery: begin})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			// The rollback must run even when ctx is already cancelled; a connection left mid-transaction
			// is destroyed by the pool on release.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = tx.Rollback(rctx)
			cancel()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(ctx); err != nil {
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

// beginQuery builds "BEGIN ...; SELECT set_config(...), ..." as one simple-protocol statement, so the
// transaction is open and the claims are set after a single round trip. Values are quoted as standard
// SQL string literals; NUL bytes (which Postgres text cannot hold) are refused.
func beginQuery(c Claims, o TxOptions) (string, error) {
	var b strings.Builder
	if o.ReadOnly {
		b.WriteString("BEGIN READ ONLY; ")
	} else {
		b.WriteString("BEGIN; ")
	}
	role := o.Role
	if role == "" {
		role = APIRole
	}
	settings := []struct{ name, value string }{
		{"role", role},
		{"request.jwt.claims", string(c.JWT)},
		{"app.org_id", nullableUUID(uuid.NullUUID{UUID: c.OrgID, Valid: c.OrgID != uuid.Nil})},
		{"app.user_id", nullableUUID(c.UserID)},
		{"app.role", c.Role},
		{"app.employee_id", nullableUUID(c.EmployeeID)},
	}
	if o.StatementTimeout > 0 {
		settings = append(settings, struct{ name, value string }{
			"statement_timeout", strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10),
		})
	}
	b.WriteString("SELECT ")
	for i, s := range settings {
		if strings.ContainsRune(s.value, 0) {
			return "", fmt.Errorf("claims: %s contains a NUL byte", s.name)
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "set_config('%s', %s, true)", s.name, quoteLiteral(s.value))
	}
	return b.String(), nil
}

func nullableUUID(u uuid.NullUUID) string {
	if !u.Valid {
		return ""
	}
	return u.UUID.String()
}

// quoteLiteral quotes s as a standard-conforming SQL string literal (the only escape is a doubled quote).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// NotFound turns pgx.ErrNoRows into ErrNotFound and leaves every other error as it is.
func NotFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
