package httpapi

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// adminEmployeeToken is an ADMIN token that also carries an employee (an admin who is one of the staff).
func adminEmployeeToken(t *testing.T, e testfactory.Employee) string {
	t.Helper()
	tok, err := auth.Mint([]byte(testfactory.Secret), auth.MintOptions{Subject: e.UserID.String(), Role: auth.RoleAdmin,
		OrgID: e.OrgID, EmployeeID: uuid.NullUUID{UUID: e.ID, Valid: true}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func fileExpense(t *testing.T, h *harness, tok string, amount any, description string) map[string]any {
	t.Helper()
	r := h.call("POST", "/expenses", tok, map[string]any{"amount": amount, "description": description})
	expect(t, r, http.StatusCreated)
	return r.data()
}

func TestExpenses_FileReturnsThePendingExpenseWithTheOriginalsFields(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	emp := testfactory.NewEmployee(t, org, "Filer")
	tok := testfactory.EmployeeToken(t, emp)
	r := h.call("POST", "/expenses", tok, map[string]any{"amount": 12.5, "description": "Taxi to site",
		"receipt_url": "https://receipts.example.com/r/1.jpg", "extension": "jpg"})
	expect(t, r, http.StatusCreated)
	d := r.data()
	if d["amount"] != 12.5 || d["description"] != "Taxi to site" || d["status"] != "PENDING" ||
		d["employee_id"] != emp.ID.String() || d["organization_id"] != org.ID.String() || d["reviewed_at"] != nil ||
		d["reviewed_by"] != nil || d["receipt_url"] != "https://receipts.example.com/r/1.jpg" ||
		d["employee_code"] != emp.Code || d["employee_name"] != "Filer" {
		t.Fatalf("filed %s", r.Raw)
	}
	if r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("a first filing says it was replayed")
	}
	mine := h.call("GET", "/expenses/my?page=1&limit=10&status=all", tok, nil)
	expect(t, mine, http.StatusOK)
	if mine.total() != 1 || mine.list()[0]["id"] != d["id"] {
		t.Fatalf("my expenses %s", mine.Raw)
	}
}

func TestExpenses_BadInputIsA400NamingTheField(t *testing.T) {
	t.Parallel()
	h := setup(t)
	emp := testfactory.NewEmployee(t, testfactory.NewOrg(t), "Sloppy")
	tok := testfactory.EmployeeToken(t, emp)
	for name, c := range map[string]struct {
		body  any
		field string
	}{
		"three decimals":    {map[string]any{"amount": 1.005, "description": "Lunch"}, "amount"},
		"zero":              {map[string]any{"amount": 0, "description": "Lunch"}, "amount"},
		"negative":          {map[string]any{"amount": -3, "description": "Lunch"}, "amount"},
		"a string amount":   {map[string]any{"amount": "12", "description": "Lunch"}, "amount"},
		"short description": {map[string]any{"amount": 5, "description": "ab"}, "description"},
		"long description":  {map[string]any{"amount": 5, "description": strings.Repeat("x", 501)}, "description"},
		"a NUL in the text": {map[string]any{"amount": 5, "description": "Lunch\x00"}, "description"},
		"http receipt":      {map[string]any{"amount": 5, "description": "Lunch", "receipt_url": "http://x.example.com/a"}, "receipt_url"},
		"not a URL":         {map[string]any{"amount": 5, "description": "Lunch", "receipt_url": "receipt.jpg"}, "receipt_url"},
		"someone else's receipt": {map[string]any{"amount": 5, "description": "Lunch",
			"receipt_url": h.url + "/receipts/" + uuid.NewString()}, "receipt_url"},
		"our path elsewhere over http": {map[string]any{"amount": 5, "description": "Lunch",
			"receipt_url": "http://elsewhere.example/receipts/" + uuid.NewString()}, "receipt_url"},
	} {
		r := h.call("POST", "/expenses", tok, c.body)
		expectError(t, r, http.StatusBadRequest, "VALIDATION_ERROR", "")
		if !strings.Contains(string(r.Raw), c.field) {
			t.Errorf("%s: %s does not name %s", name, r.Raw, c.field)
		}
	}
	if n := h.call("GET", "/expenses/my", tok, nil).total(); n != 0 {
		t.Fatalf("refused filings stored %d expenses", n)
	}
	// Two decimals exactly, written either way, are fine.
	fileExpense(t, h, tok, 19.99, "Parking")
	fileExpense(t, h, tok, 20.1, "Parking")
}

func TestExpenses_OnlyAnEmployeeFilesItsOwn(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	emp := testfactory.NewEmployee(t, org, "Staff")
	body := map[string]any{"amount": 3, "description": "Coffee"}
	expectError(t, h.call("POST", "/expenses", testfactory.AdminToken(t, org), body), http.StatusForbidden, "FORBIDDEN",
		"Employee context required. This endpoint is for employees only.")
	expectError(t, h.call("POST", "/expenses", adminEmployeeToken(t, emp), body), http.StatusForbidden, "FORBIDDEN",
		"Admin users cannot create expenses.")
	expectError(t, h.call("POST", "/expenses", "", body), http.StatusUnauthorized, "UNAUTHORIZED", "")
}

func TestExpenses_IdempotencyKeyAnswersTheFirstFilingAndRefusesAnotherBody(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	emp, other := testfactory.NewEmployee(t, org, "Retry"), testfactory.NewEmployee(t, org, "Other")
	tok := testfactory.EmployeeToken(t, emp)
	body := map[string]any{"amount": 42.1, "description": "Hotel", "idempotency_key": "k-1"}
	first := h.call("POST", "/expenses", tok, body)
	expect(t, first, http.StatusCreated)
	again := h.call("POST", "/expenses", tok, body)
	expect(t, again, http.StatusCreated)
	if again.data()["id"] != first.data()["id"] || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the repeat answered %s (replayed %q), want the first expense", again.Raw, again.Header.Get("Idempotent-Replayed"))
	}
	// The same key in the header, with the same body (and 42.10 is the same amount).
	header := h.call("POST", "/expenses", tok, map[string]any{"amount": "42.10", "description": "Hotel"}, "Idempotency-Key", "k-1")
	expectError(t, header, http.StatusBadRequest, "VALIDATION_ERROR", "") // a string amount is not a number
	header = h.call("POST", "/expenses", tok, map[string]any{"amount": 42.10, "description": "Hotel"}, "Idempotency-Key", "k-1")
	expect(t, header, http.StatusCreated)
	if header.data()["id"] != first.data()["id"] {
		t.Fatalf("the header's key answered %s", header.Raw)
	}
	expectError(t, h.call("POST", "/expenses", tok, map[string]any{"amount": 43, "description": "Hotel", "idempotency_key": "k-1"}),
		http.StatusUnprocessableEntity, "IDEMPOTENCY_KEY_REUSED", "")
	expectError(t, h.call("POST", "/expenses", tok, map[string]any{"amount": 1, "description": "Snack", "idempotency_key": "k-2"},
		"Idempotency-Key", "k-3"), http.StatusBadRequest, "VALIDATION_ERROR", "idempotency_key must match the Idempotency-Key header")
	// Keys are per employee.
	theirs := h.call("POST", "/expenses", testfactory.EmployeeToken(t, other), body)
	expect(t, theirs, http.StatusCreated)
	if theirs.data()["id"] == first.data()["id"] {
		t.Fatal("another employee's filing with the same key answered the first one's expense")
	}
	if n := h.call("GET", "/expenses/my", tok, nil).total(); n != 1 {
		t.Fatalf("%d expenses after repeats, want 1", n)
	}
}

func TestExpenses_ListsFilterByStatusAndEmployeeAndHideOtherOrganizations(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org, other := testfactory.NewOrg(t), testfactory.NewOrg(t)
	a, b := testfactory.NewEmployee(t, org, "A"), testfactory.NewEmployee(t, org, "B")
	admin := testfactory.AdminToken(t, org)
	ids := []string{
		fileExpense(t, h, testfactory.EmployeeToken(t, a), 1, "One")["id"].(string),
		fileExpense(t, h, testfactory.EmployeeToken(t, a), 2, "Two")["id"].(string),
		fileExpense(t, h, testfactory.EmployeeToken(t, b), 3, "Three")["id"].(string),
	}
	fileExpense(t, h, testfactory.EmployeeToken(t, testfactory.NewEmployee(t, other, "Elsewhere")), 9, "Theirs")
	expect(t, h.call("PATCH", "/admin/expenses/"+ids[0], admin, map[string]any{"status": "APPROVED"}), http.StatusOK)
	expect(t, h.call("PATCH", "/admin/expenses/"+ids[1], admin, map[string]any{"status": "REJECTED", "rejection_comment": "No receipt"}), http.StatusOK)

	for q, want := range map[string]int{"": 3, "?status=all": 3, "?status=PENDING": 1, "?status=APPROVED": 1,
		"?status=REJECTED": 1, "?status=processed": 2, "?employee_id=" + a.ID.String(): 2,
		"?employee_id=" + a.ID.String() + "&status=PENDING": 0, "?page=2&limit=2": 3} {
		r := h.call("GET", "/admin/expenses"+q, admin, nil)
		expect(t, r, http.StatusOK)
		if r.total() != want {
			t.Errorf("/admin/expenses%s: total %d, want %d", q, r.total(), want)
		}
		for _, e := range r.list() {
			if e["organization_id"] != org.ID.String() || e["employee_name"] == nil {
				t.Errorf("/admin/expenses%s listed %v", q, e)
			}
		}
	}
	if r := h.call("GET", "/admin/expenses?page=2&limit=2", admin, nil); len(r.list()) != 1 {
		t.Errorf("the second page of 2 holds %d rows, want 1", len(r.list()))
	}
	mine := h.call("GET", "/expenses/my?status=processed", testfactory.EmployeeToken(t, a), nil)
	if mine.total() != 2 || mine.list()[0]["rejection_comment"] == nil && mine.list()[1]["rejection_comment"] == nil {
		t.Fatalf("a's processed expenses %s", mine.Raw)
	}
	if r := h.call("GET", "/expenses/my", admin, nil); r.Status != http.StatusOK || r.total() != 0 {
		t.Fatalf("an admin's own expenses %s, want an empty page", r.Raw)
	}
	expectError(t, h.call("GET", "/admin/expenses?status=bogus", admin, nil), http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectError(t, h.call("GET", "/admin/expenses", testfactory.EmployeeToken(t, a), nil), http.StatusForbidden, "FORBIDDEN", "")
}

func TestExpenseReview_OncePendingOnlyWithACommentToRejectAndNeverOwn(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	staff := testfactory.NewEmployee(t, org, "Staff")
	boss := testfactory.NewEmployee(t, org, "Boss")
	admin := testfactory.AdminToken(t, org)
	id := fileExpense(t, h, testfactory.EmployeeToken(t, staff), 30, "Train")["id"].(string)
	path := "/admin/expenses/" + id

	expectError(t, h.call("PATCH", path, admin, map[string]any{"status": "REJECTED"}), http.StatusBadRequest,
		"VALIDATION_ERROR", "rejection_comment is required when rejecting an expense")
	expectError(t, h.call("PATCH", path, admin, map[string]any{"status": "REJECTED", "rejection_comment": "  "}),
		http.StatusBadRequest, "VALIDATION_ERROR", "rejection_comment is required when rejecting an expense")
	expectError(t, h.call("PATCH", path, admin, map[string]any{"status": "PENDING"}), http.StatusBadRequest, "VALIDATION_ERROR", "")
	expectError(t, h.call("PATCH", path, testfactory.AdminToken(t, testfactory.NewOrg(t)), map[string]any{"status": "APPROVED"}),
		http.StatusNotFound, "NOT_FOUND", "Expense not found")
	expectError(t, h.call("PATCH", "/admin/expenses/"+uuid.NewString(), admin, map[string]any{"status": "APPROVED"}),
		http.StatusNotFound, "NOT_FOUND", "Expense not found")
	expectError(t, h.call("PATCH", path, testfactory.EmployeeToken(t, staff), map[string]any{"status": "APPROVED"}),
		http.StatusForbidden, "FORBIDDEN", "")

	r := h.call("PATCH", path, admin, map[string]any{"status": "APPROVED", "rejection_comment": "dropped"})
	expect(t, r, http.StatusOK)
	d := r.data()
	if d["status"] != "APPROVED" || d["reviewed_by"] != org.AdminUserID.String() || d["reviewed_at"] == nil ||
		d["rejection_comment"] != nil || d["employee_name"] != "Staff" {
		t.Fatalf("approved %s", r.Raw)
	}
	expectError(t, h.call("PATCH", path, admin, map[string]any{"status": "REJECTED", "rejection_comment": "late"}),
		http.StatusBadRequest, "VALIDATION_ERROR", "Expense has already been approved. Only PENDING expenses can be actioned.")

	// An admin who is also an employee reviews others' expenses, never its own.
	own := fileExpense(t, h, testfactory.EmployeeToken(t, boss), 99, "Own dinner")["id"].(string)
	bossAdmin := adminEmployeeToken(t, boss)
	expectError(t, h.call("PATCH", "/admin/expenses/"+own, bossAdmin, map[string]any{"status": "APPROVED"}),
		http.StatusForbidden, "FORBIDDEN", "You cannot review your own expense.")
	other := fileExpense(t, h, testfactory.EmployeeToken(t, staff), 5, "Bus")["id"].(string)
	expect(t, h.call("PATCH", "/admin/expenses/"+other, bossAdmin, map[string]any{"status": "REJECTED",
		"rejection_comment": "Personal trip"}), http.StatusOK)

	// Each review emitted its event with the original's data.
	var approved, rejected int
	if err := testfactory.Pool(t).QueryRow(t.Context(), `SELECT
		count(*) FILTER (WHERE event_type = 'expense.approved' AND payload->'data'->>'approved_by' = $2),
		count(*) FILTER (WHERE event_type = 'expense.rejected' AND payload->'data'->>'rejection_comment' = 'Personal trip')
		FROM webhook_events WHERE organization_id = $1`, org.ID, org.AdminUserID.String()).Scan(&approved, &rejected); err != nil {
		t.Fatal(err)
	}
	if approved != 1 || rejected != 1 {
		t.Fatalf("events: %d approved, %d rejected; want 1 each", approved, rejected)
	}
}

func TestExpenseSummary_PerEmployeePendingFirstPagedWithTheTotal(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	busy, calm, idle := testfactory.NewEmployee(t, org, "Busy"), testfactory.NewEmployee(t, org, "Calm"), testfactory.NewEmployee(t, org, "Idle")
	_ = idle
	fileExpense(t, h, testfactory.EmployeeToken(t, busy), 10.25, "One")
	fileExpense(t, h, testfactory.EmployeeToken(t, busy), 4.75, "Two")
	done := fileExpense(t, h, testfactory.EmployeeToken(t, calm), 7, "Three")["id"].(string)
	expect(t, h.call("PATCH", "/admin/expenses/"+done, admin, map[string]any{"status": "APPROVED"}), http.StatusOK)
	fileExpense(t, h, testfactory.EmployeeToken(t, testfactory.NewEmployee(t, testfactory.NewOrg(t), "Elsewhere")), 5, "Theirs")

	r := h.call("GET", "/admin/expenses/summary?page=1&limit=1", admin, nil)
	expect(t, r, http.StatusOK)
	if r.total() != 2 || len(r.list()) != 1 {
		t.Fatalf("summary page 1 of 1: %s", r.Raw)
	}
	top := r.list()[0]
	if top["employeeId"] != busy.ID.String() || top["pendingCount"] != 2.0 || top["pendingAmount"] != 15.0 ||
		top["totalCount"] != 2.0 || top["totalAmount"] != 15.0 || top["employeeCode"] != busy.Code {
		t.Fatalf("top of the summary %v", top)
	}
	second := h.call("GET", "/admin/expenses/summary?page=2&limit=1", admin, nil).list()
	if len(second) != 1 || second[0]["employeeId"] != calm.ID.String() || second[0]["pendingCount"] != 0.0 ||
		second[0]["totalAmount"] != 7.0 {
		t.Fatalf("second of the summary %v", second)
	}
}

func TestExpenseExport_EveryRowAsCSVWithCommentsAndFormulasEscaped(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	admin := testfactory.AdminToken(t, org)
	emp := testfactory.NewEmployee(t, org, "=HYPERLINK(\"http://evil\")")
	tok := testfactory.EmployeeToken(t, emp)
	const n = 2105 // more than two batches of the cursor
	_, err := testfactory.Pool(t).Exec(t.Context(), `INSERT INTO expenses (organization_id, employee_id, amount, description)
		SELECT $1, $2, (i % 500) + 0.5, 'Item, "quoted" ' || i FROM generate_series(1, $3) AS i`, org.ID, emp.ID, n)
	if err != nil {
		t.Fatal(err)
	}
	formula := fileExpense(t, h, tok, 1, "-2+3 cmd")["id"].(string)
	rejected := fileExpense(t, h, tok, 2, "@SUM(A1)")["id"].(string)
	expect(t, h.call("PATCH", "/admin/expenses/"+rejected, admin, map[string]any{"status": "REJECTED",
		"rejection_comment": "+no receipt"}), http.StatusOK)
	fileExpense(t, h, testfactory.EmployeeToken(t, testfactory.NewEmployee(t, testfactory.NewOrg(t), "Elsewhere")), 5, "Theirs")

	r := h.call("GET", "/admin/expenses/export", admin, nil)
	expect(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") ||
		!strings.Contains(r.Header.Get("Content-Disposition"), "expenses-"+time.Now().UTC().Format("2006-01-02")+".csv") {
		t.Fatalf("headers %v", r.Header)
	}
	if !strings.Contains(string(r.Raw), "\r\n") {
		t.Fatal("lines do not end in CRLF")
	}
	records, err := csv.NewReader(strings.NewReader(string(r.Raw))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(records[0], ",") != "id,employee_code,employee_name,amount,description,status,rejection_comment,submitted_at,reviewed_at" {
		t.Fatalf("header %v", records[0])
	}
	if len(records) != 1+n+2 {
		t.Fatalf("%d rows, want %d: every expense of the organization and none of another", len(records)-1, n+2)
	}
	byID := map[string][]string{}
	for _, rec := range records[1:] {
		byID[rec[0]] = rec
		if rec[2] != `'=HYPERLINK("http://evil")` {
			t.Fatalf("employee name cell %q, want the formula escaped", rec[2])
		}
	}
	if got := byID[formula]; got[4] != "'-2+3 cmd" || got[3] != "1.00" || got[5] != "PENDING" {
		t.Fatalf("formula expense row %v", got)
	}
	if got := byID[rejected]; got[4] != "'@SUM(A1)" || got[6] != "'+no receipt" || got[5] != "REJECTED" || got[8] == "" {
		t.Fatalf("rejected expense row %v", got)
	}
	only := h.call("GET", "/admin/expenses/export?employee_id="+uuid.NewString(), admin, nil)
	expect(t, only, http.StatusOK)
	if lines := strings.Count(string(only.Raw), "\r\n"); lines != 1 {
		t.Fatalf("an unknown employee's export has %d lines, want the header alone", lines)
	}
	expectError(t, h.call("GET", "/admin/expenses/export", tok, nil), http.StatusForbidden, "FORBIDDEN", "")
}

func TestExpenses_DeactivatedEmployeeCannotFile(t *testing.T) {
	t.Parallel()
	h := setup(t)
	org := testfactory.NewOrg(t)
	emp := testfactory.NewEmployee(t, org, "Leaver")
	expect(t, h.call("PATCH", fmt.Sprintf("/admin/employees/%s/status", emp.ID), testfactory.AdminToken(t, org),
		map[string]any{"is_active": false}), http.StatusOK)
	expectError(t, h.call("POST", "/expenses", testfactory.EmployeeToken(t, emp), map[string]any{"amount": 1, "description": "Late claim"}),
		http.StatusUnauthorized, "EMPLOYEE_DEACTIVATED", "This employee is deactivated.")
}

func TestExpenseExport_AtMostAQuarterOfThePoolExportsAtOnce(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.DBMaxConns = 8
	h := setupWith(t, cfg, testfactory.Pool(t))
	admin := testfactory.AdminToken(t, testfactory.NewOrg(t))
	if cap(h.server.exports) != 2 {
		t.Fatalf("%d export slots for 8 connections, want 2", cap(h.server.exports))
	}
	h.server.exports <- struct{}{} // two exports running
	h.server.exports <- struct{}{}
	r := h.call("GET", "/admin/expenses/export", admin, nil)
	expectError(t, r, http.StatusTooManyRequests, "RATE_LIMITED", "Too many exports are running; try again in a few seconds")
	if r.Header.Get("Retry-After") == "" || r.Header.Get("Content-Disposition") != "" {
		t.Fatalf("refusal headers %v", r.Header)
	}
	<-h.server.exports // one ends
	expect(t, h.call("GET", "/admin/expenses/export", admin, nil), http.StatusOK)
}
