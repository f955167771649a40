package httpapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/db"
)

// Error is an answer other than success: the status, the public message and code of the envelope, and
// optional details (for validation, the bad fields).
type Error struct {
	Status     int
	Code       string
	Message    string
	Details    any
	RetryAfter int // seconds; sets Retry-After when > 0
}

func (e *Error) Error() string { return e.Message }

func errInvalid(msg string, details any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "VALIDATION_ERROR", Message: msg, Details: details}
}

func errNotFound(msg string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "NOT_FOUND", Message: msg}
}

func errForbidden(msg string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "FORBIDDEN", Message: msg}
}

func errUnavailable(msg string) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "SERVICE_UNAVAILABLE", Message: msg, RetryAfter: 1}
}

var errInternal = &Error{Status: http.StatusInternalServerError, Code: "INTERNAL_ERROR", Message: "Internal server error"}

// constraintErrors gives the public answer for violations of named constraints, where the generic
// SQLSTATE answer would be vaguer than what the original API said.
var constraintErrors = map[string]*Error{
	"attendance_sessions_one_active":    errInvalid("Cannot check in: you already have an active session. Check out first.", nil),
	"attendance_sessions_employee_fkey": errInvalid("Employee not found in this organization.", nil),
	"employees_code_key":                errInvalid("employee_code is already in use within this organization", map[string]any{"field": "employee_code"}),
	"employees_user_fkey":               errInvalid("user_id does not correspond to any registered user", map[string]any{"field": "user_id"}),
	"employees_user_key":                errInvalid("user_id is already linked to another employee", map[string]any{"field": "user_id"}),
	"expenses_rejection_needs_comment": errInvalid("rejection_comment is required when rejecting an expense",
		map[string]any{"fields": []fieldError{{Field: "rejection_comment", Message: "rejection_comment is required when rejecting an expense"}}}),
}

// toError maps any error to the answer the client gets. It is the one place where SQLSTATEs, auth
// failures, pool exhaustion and timeouts become HTTP statuses; anything unrecognised is a 500.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ae *auth.Error
	if errors.As(err, &ae) {
		e := &Error{Status: http.StatusUnauthorized, Code: ae.Code, Message: ae.Message}
		if len(ae.Details) > 0 {
			e.Details = ae.Details
		}
		return e
	}
	if errors.Is(err, pgx.ErrNoRows) { // a handler that did not name what was missing
		return errNotFound("Not found")
	}
	if errors.Is(err, db.ErrUnavailable) {
		return errUnavailable("Database unavailable, please retry")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Status: http.StatusServiceUnavailable, Code: "TIMEOUT", Message: "Request timed out", RetryAfter: 1}
	}
	if errors.Is(err, context.Canceled) { // the client went away: nobody reads this, and it is no fault of ours
		return &Error{Status: http.StatusServiceUnavailable, Code: "CANCELED", Message: "Request canceled", RetryAfter: 1}
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pgError(pg)
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) {
		return errUnavailable("Database unavailable, please retry")
	}
	return errInternal
}

func pgError(pg *pgconn.PgError) *Error {
	constraint := pg.ConstraintName
	if constraint == "" && strings.HasPrefix(pg.Code, "23") {
		constraint = messageConstraint(pg.Message)
	}
	constraint = tableConstraint(constraint)
	if e, ok := constraintErrors[constraint]; ok {
		return e
	}
	// Our functions and triggers raise PTnnn with the HTTP status in the code, the public message as the
	// message and the envelope code as the hint (PostgREST's convention).
	if strings.HasPrefix(pg.Code, "PT") {
		if status, err := strconv.Atoi(pg.Code[2:]); err == nil && status >= 400 && status < 600 {
			code := pg.Hint
			if code == "" {
				code = http.StatusText(status)
			}
			return &Error{Status: status, Code: code, Message: pg.Message}
		}
	}
	switch {
	case pg.Code == "23505":
		return &Error{Status: http.StatusConflict, Code: "CONFLICT", Message: "A conflicting row already exists"}
	case pg.Code == "23503":
		return errInvalid("A referenced row does not exist", nil)
	case pg.Code == "23514", pg.Code == "23502", pg.Code == "23P01":
		return errInvalid("The values break a data rule ("+constraint+")", nil)
	case strings.HasPrefix(pg.Code, "22"): // data exceptions: bad uuid, out of range, bad datetime
		return errInvalid("Invalid input value", nil)
	case pg.Code == "42501": // privilege or row-level security check
		return errForbidden("You are not allowed to change this row")
	case pg.Code == "57014": // statement timeout or cancel
		return &Error{Status: http.StatusServiceUnavailable, Code: "TIMEOUT", Message: "The database took too long", RetryAfter: 1}
	case pg.Code == "40001", pg.Code == "40P01", pg.Code == "55P03":
		return &Error{Status: http.StatusServiceUnavailable, Code: "RETRY", Message: "Concurrent update, please retry", RetryAfter: 1}
	case strings.HasPrefix(pg.Code, "08"), strings.HasPrefix(pg.Code, "53"), strings.HasPrefix(pg.Code, "57P"):
		return errUnavailable("Database unavailable, please retry")
	}
	return errInternal
}

// constraintInMessage finds the constraint an integrity error's message names: a Citus coordinator passes
// on a worker's error with its message, not its fields.
var constraintInMessage = regexp.MustCompile(`constraint "([^"]+)"`)

func messageConstraint(message string) string {
	if m := constraintInMessage.FindStringSubmatch(message); m != nil {
		return m[1]
	}
	return ""
}

// tableConstraint is the name of the constraint an error names as the table has it. On Citus a shard's
// constraints carry the shard's id (attendance_sessions_one_active_102243), and the error comes from the
// shard; no constraint of ours ends in digits.
func tableConstraint(name string) string {
	trimmed := strings.TrimRight(name, "0123456789")
	if trimmed != name && strings.HasSuffix(trimmed, "_") {
		return strings.TrimSuffix(trimmed, "_")
	}
	return name
}
