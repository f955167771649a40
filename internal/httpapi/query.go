package httpapi

import (
	"context"
	"net/http"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/db"
)

// How handlers reach Postgres: every statement runs in a transaction under the caller's claims (db.InTx).
// A handler that reads or writes one thing makes one call of one; a handler with several statements that
// must see each other uses s.tx; a list uses fetchPage.

// claimsOf is what Postgres policies read of the request's caller, and what app.check_caller checks.
func claimsOf(r *http.Request) db.Claims {
	info := infoOf(r.Context())
	id := identityOf(r)
	c := db.Claims{OrgID: id.OrgID, Role: string(id.Role), EmployeeID: id.EmployeeID, SessionID: id.SessionID,
		APIKeyID: id.APIKeyID, Scope: info.scope, JWT: id.Claims}
	if id.AuthType == auth.AuthTypeJWT {
		c.UserID.UUID, c.UserID.Valid = id.UserID, true
	}
	return c
}

// txOptions are a request's transaction options: READ ONLY for GET and HEAD, the configured timeouts, and
// COMMIT in the first round trip when the transaction is a single statement.
func (s *Server) txOptions(r *http.Request, single bool) db.TxOptions {
	return db.TxOptions{
		ReadOnly:         r.Method == http.MethodGet || r.Method == http.MethodHead,
		StatementTimeout: s.cfg.StatementTimeout,
		AcquireTimeout:   s.cfg.DBAcquireTimeout,
		SingleStatement:  single,
	}
}

// tx runs fn, any number of statements, in one transaction under the caller's claims.
func (s *Server) tx(r *http.Request, fn func(db.DBTX) error) error {
	return db.InTx(r.Context(), s.pool, claimsOf(r), s.txOptions(r, false), fn)
}

// one runs query with its argument alone in a transaction under the caller's claims: BEGIN, the claims,
// the statement and COMMIT travel to Postgres in one round trip. It returns the query's result or error.
func one[A, T any](s *Server, r *http.Request, query func(context.Context, db.DBTX, A) (T, error), arg A) (T, error) {
	ctx := r.Context()
	return db.Do(ctx, s.pool, claimsOf(r), s.txOptions(r, true), func(tx db.DBTX) (T, error) {
		return query(ctx, tx, arg)
	})
}

// fetchPage runs a list query for one page (limit rows after offset) and returns the rows with the exact
// number the whole list matched, which every row carries (db.Counted). A page past the end has no row to
// carry it: then the first row of the same query tells.
func fetchPage[T db.Counted](s *Server, r *http.Request, limit, offset int32,
	fetch func(ctx context.Context, tx db.DBTX, limit, offset int32) ([]T, error)) ([]T, int64, error) {
	ctx := r.Context()
	page := func(limit, offset int32) ([]T, error) {
		return db.Do(ctx, s.pool, claimsOf(r), s.txOptions(r, true), func(tx db.DBTX) ([]T, error) {
			return fetch(ctx, tx, limit, offset)
		})
	}
	rows, err := page(limit, offset)
	if err != nil || len(rows) > 0 || offset == 0 {
		return rows, total(rows), err
	}
	first, err := page(1, 0)
	return rows, total(first), err
}

func total[T db.Counted](rows []T) int64 {
	if len(rows) == 0 {
		return 0
	}
	return rows[0].ListTotal()
}

// respondList answers a paged list of the rows of a list query (see fetchPage).
func respondList[T db.Counted](s *Server, w http.ResponseWriter, r *http.Request, defaultLimit int,
	fetch func(ctx context.Context, tx db.DBTX, limit, offset int32) ([]T, error)) error {
	p := pageOf(r, defaultLimit)
	rows, n, err := fetchPage(s, r, int32(p.Limit), p.offset(), fetch)
	if err != nil {
		return err
	}
	return respondPage(w, rows, p, n)
}
