package httpapi

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// exportBatch is how many rows each FETCH of the export's cursor brings.
const exportBatch = 1000

// exportHeader is the original API's CSV header.
var exportHeader = []string{"id", "employee_code", "employee_name", "amount", "description", "status",
	"rejection_comment", "submitted_at", "reviewed_at"}

// exportWriteTimeout is how long one batch may take to reach a client that reads slowly; a client
// that stops reading loses the export, and its connection to Postgres goes back to the pool.
const exportWriteTimeout = 30 * time.Second

// exportExpenses streams every matching expense (the organization's, or one employee's) as CSV, read
// from a cursor a batch at a time, so memory stays flat however many there are. Cells a spreadsheet
// would run as a formula are escaped. At most a quarter of the pool's connections export at once (429
// beyond). Once the first row is out the status is sent: a failure after it ends the response early
// (the client sees a truncated file), and is logged.
func (s *Server) exportExpenses(w http.ResponseWriter, r *http.Request) error {
	select {
	case s.exports <- struct{}{}:
		defer func() { <-s.exports }()
	default:
		return &Error{Status: http.StatusTooManyRequests, Code: "RATE_LIMITED", RetryAfter: 5,
			Message: "Too many exports are running; try again in a few seconds"}
	}
	p := db.ExpenseExportParams{OrgID: identityOf(r).OrgID, EmployeeID: queryUUID(r, "employee_id")}
	rc := http.NewResponseController(w)
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }() // the connection may serve further requests
	out := csv.NewWriter(w)
	out.UseCRLF = true
	started, rows := false, 0
	start := func() error {
		started = true
		h := w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="expenses-`+time.Now().UTC().Format("2006-01-02")+`.csv"`)
		h.Set("Cache-Control", "no-store")
		_ = rc.SetWriteDeadline(time.Now().Add(exportWriteTimeout))
		w.WriteHeader(http.StatusOK)
		return out.Write(exportHeader)
	}
	err := s.tx(r, func(tx db.DBTX) error {
		return s.q.ExpenseExportEach(r.Context(), tx, p, exportBatch, func(e db.ExpenseExportRow) error {
			if !started {
				if err := start(); err != nil {
					return err
				}
			}
			rows++
			if err := out.Write(exportRecord(e)); err != nil {
				return err
			}
			if rows%exportBatch == 0 {
				out.Flush()
				_ = rc.SetWriteDeadline(time.Now().Add(exportWriteTimeout))
				return out.Error()
			}
			return nil
		})
	})
	if err != nil && !started {
		return err
	}
	if !started {
		err = start()
	}
	out.Flush()
	if err == nil {
		err = out.Error()
	}
	if err != nil {
		s.log.WarnContext(r.Context(), "expense export ended early", "request_id", infoOf(r.Context()).id,
			"rows", rows, "error", err.Error())
		panic(http.ErrAbortHandler) // the status is out: cut the response so the client sees it incomplete
	}
	return nil
}

func exportRecord(e db.ExpenseExportRow) []string {
	reviewed := ""
	if e.ReviewedAt != nil {
		reviewed = e.ReviewedAt.UTC().Format(time.RFC3339Nano)
	}
	return []string{e.ID.String(), cell(e.EmployeeCode), cell(e.EmployeeName),
		strconv.FormatFloat(e.Amount, 'f', 2, 64), cell(e.Description), e.Status, cell(deref(e.RejectionComment)),
		e.SubmittedAt.UTC().Format(time.RFC3339Nano), reviewed}
}

// cell escapes text a spreadsheet would take for a formula (OWASP's advice: a leading quote).
func cell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
