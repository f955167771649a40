package httpapi

import (
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// A constraint's answer is the same whether Postgres names it in the error's fields or, as a Citus
// coordinator passing on a worker's error does, only in the message, with the shard's id on its name.
func TestPgError_ConstraintsAreKnownUnderTheirShardsNamesToo(t *testing.T) {
	want := constraintErrors["attendance_sessions_one_active"]
	for _, pg := range []*pgconn.PgError{
		{Code: "23505", ConstraintName: "attendance_sessions_one_active",
			Message: `duplicate key value violates unique constraint "attendance_sessions_one_active"`},
		{Code: "23505", ConstraintName: "attendance_sessions_one_active_102243"},
		{Code: "23505", Message: `duplicate key value violates unique constraint "attendance_sessions_one_active_102243"`},
	} {
		if got := pgError(pg); got != want {
			t.Errorf("%+v: %+v, want %+v", pg, got, want)
		}
	}
	check := pgError(&pgconn.PgError{Code: "23514",
		Message: `new row for relation "tracking_settings_102060" violates check constraint "tracking_settings_max_speed_range"`})
	if check.Status != http.StatusBadRequest || check.Message != "The values break a data rule (tracking_settings_max_speed_range)" {
		t.Errorf("check violation: %+v", check)
	}
	// Only integrity errors are read for a constraint; a name not ending in a shard's id is kept.
	if got := pgError(&pgconn.PgError{Code: "PT409", Message: `constraint "attendance_sessions_one_active"`,
		Hint: "CONFLICT"}); got == want {
		t.Errorf("a raised error was taken for a constraint's")
	}
	for name, table := range map[string]string{"expenses_rejection_needs_comment": "expenses_rejection_needs_comment",
		"employees_code_key_102029": "employees_code_key", "x1": "x1", "": ""} {
		if got := tableConstraint(name); got != table {
			t.Errorf("tableConstraint(%q) = %q, want %q", name, got, table)
		}
	}
}
