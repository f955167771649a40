package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/db"
)

type expenseBody struct {
	Amount         json.Number `json:"amount"`
	Description    string      `json:"description"`
	ReceiptURL     *string     `json:"receipt_url"`
	IdempotencyKey *string     `json:"idempotency_key"`
}

// fieldInvalid is a 400 naming one bad field.
func fieldInvalid(field, msg string) *Error {
	return errInvalid(msg, map[string]any{"fields": []fieldError{{Field: field, Message: msg}}})
}

// employeeContext is the caller's employee, for the routes that act as one (filing expenses, receipts).
func employeeContext(id auth.Identity) (uuid.UUID, error) {
	if !id.EmployeeID.Valid {
		return uuid.Nil, errForbidden("Employee context required. This endpoint is for employees only.")
	}
	if id.Role == auth.RoleAdmin {
		return uuid.Nil, errForbidden("Admin users cannot create expenses.")
	}
	return id.EmployeeID.UUID, nil
}

// createExpense files an expense of the calling employee. An idempotency key (the Idempotency-Key header
// or the idempotency_key field; both must agree) makes a repeated request answer the first expense
// (Idempotent-Replayed: true), and a different request with the same key a 422.
func (s *Server) createExpense(w http.ResponseWriter, r *http.Request) error {
	id := identityOf(r)
	employee, err := employeeContext(id)
	if err != nil {
		return err
	}
	var body expenseBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	amount, err := cents(body.Amount)
	if err != nil {
		return err
	}
	key, err := idempotencyKey(r, body.IdempotencyKey)
	if err != nil {
		return err
	}
	p := db.ExpenseFileParams{OrgID: id.OrgID, EmployeeID: employee, Amount: amount.float, Description: body.Description,
		IdempotencyKey: key}
	if body.ReceiptURL != nil && *body.ReceiptURL != "" {
		receipt, stored, err := receiptOf(*body.ReceiptURL, s.publicURL(r))
		if err != nil {
			return err
		}
		p.ReceiptID, p.ReceiptUrl = receipt, &stored
	}
	sum := sha256.Sum256([]byte(amount.text + "\x00" + body.Description + "\x00" + deref(p.ReceiptUrl)))
	p.Fingerprint = hex.EncodeToString(sum[:])
	e, err := one(s, r, s.q.ExpenseFile, p)
	if err != nil {
		return err
	}
	if !e.Created {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	return respond(w, http.StatusCreated, expenseOf(e))
}

// amount is an expense amount: its value and its text with two decimals (what a repeat must match).
type amount struct {
	float float64
	text  string
}

// cents checks an amount: greater than 0 with at most two decimals (the number's own digits, not a float
// approximation of them).
func cents(n json.Number) (amount, error) {
	v, ok := new(big.Rat).SetString(n.String())
	if !ok {
		return amount{}, fieldInvalid("amount", "amount must be a number")
	}
	if v.Sign() <= 0 {
		return amount{}, fieldInvalid("amount", "amount must be greater than 0")
	}
	if !new(big.Rat).Mul(v, big.NewRat(100, 1)).IsInt() {
		return amount{}, fieldInvalid("amount", "amount must have at most 2 decimal places")
	}
	f, _ := v.Float64()
	return amount{float: f, text: v.FloatString(2)}, nil
}

// idempotencyKey is the request's key: the header's or the field's, which must agree when both are given.
func idempotencyKey(r *http.Request, field *string) (*string, error) {
	header := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
	switch {
	case header == "":
		return field, nil
	case len(header) > 255:
		return nil, fieldInvalid("Idempotency-Key", "Idempotency-Key must be at most 255 characters")
	case field != nil && *field != header:
		return nil, fieldInvalid("idempotency_key", "idempotency_key must match the Idempotency-Key header")
	}
	return &header, nil
}

// receiptPath is the path of a receipt URL of this server.
var receiptPath = regexp.MustCompile(`^/receipts/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$`)

// receiptOf reads a receipt_url. One this server handed out (its host is this server's public one)
// names its receipt, attached with the expense and stored in its canonical form; any other must be an
// https URL, stored as given.
func receiptOf(raw, base string) (receipt *uuid.UUID, stored string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, "", fieldInvalid("receipt_url", "receipt_url must be a valid URL")
	}
	if self, err := url.Parse(base); err == nil && strings.EqualFold(u.Host, self.Host) {
		if m := receiptPath.FindStringSubmatch(u.Path); m != nil && u.RawQuery == "" && u.Fragment == "" {
			id := uuid.MustParse(m[1])
			return &id, base + "/receipts/" + id.String(), nil
		}
	}
	if u.Scheme != "https" {
		return nil, "", fieldInvalid("receipt_url", "receipt_url must use HTTPS")
	}
	return nil, raw, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// expenseOf is a filed expense as the API shows it.
func expenseOf(e db.ExpenseFileRow) db.AppExpenseRow {
	return db.AppExpenseRow{ID: e.ID, OrganizationID: e.OrganizationID, EmployeeID: e.EmployeeID, Amount: e.Amount,
		Description: e.Description, Status: e.Status, ReceiptUrl: e.ReceiptUrl, RejectionComment: e.RejectionComment,
		SubmittedAt: e.SubmittedAt, ReviewedAt: e.ReviewedAt, ReviewedBy: e.ReviewedBy, CreatedAt: e.CreatedAt,
		UpdatedAt: e.UpdatedAt, EmployeeCode: e.EmployeeCode, EmployeeName: e.EmployeeName}
}

// expenseStatus is the status filter (validated): a status, "processed" or "all".
func expenseStatus(r *http.Request) string {
	if v := r.URL.Query().Get("status"); v != "" {
		return v
	}
	return "all"
}

// myExpenses pages the caller's expenses; callers without an employee get an empty page.
func (s *Server) myExpenses(w http.ResponseWriter, r *http.Request) error {
	id := identityOf(r)
	if !id.EmployeeID.Valid {
		return respondPage(w, []db.ExpenseListRow{}, pageOf(r, 50), 0)
	}
	return s.expenses(w, r, &id.EmployeeID.UUID)
}

// orgExpenses pages the organization's expenses, optionally one employee's.
func (s *Server) orgExpenses(w http.ResponseWriter, r *http.Request) error {
	return s.expenses(w, r, queryUUID(r, "employee_id"))
}

func (s *Server) expenses(w http.ResponseWriter, r *http.Request, employee *uuid.UUID) error {
	org, status := identityOf(r).OrgID, expenseStatus(r)
	return respondList(s, w, r, 50, func(ctx context.Context, tx db.DBTX, limit, offset int32) ([]db.ExpenseListRow, error) {
		return s.q.ExpenseList(ctx, tx, db.ExpenseListParams{OrgID: org, EmployeeID: employee, Status: status,
			RowLimit: limit, RowOffset: offset})
	})
}

type reviewBody struct {
	Status           string  `json:"status"`
	RejectionComment *string `json:"rejection_comment"`
}

// reviewExpense approves or rejects a pending expense; the reviewer is recorded. Postgres decides what
// may happen: 404 for another organization's, 400 once reviewed or for a rejection without a comment,
// 403 for one's own expense.
func (s *Server) reviewExpense(w http.ResponseWriter, r *http.Request) error {
	var body reviewBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	id := identityOf(r)
	e, err := one(s, r, s.q.ExpenseReview, db.ExpenseReviewParams{OrgID: id.OrgID, ID: pathUUID(r, "id"),
		Status: body.Status, ReviewedBy: id.Subject, RejectionComment: body.RejectionComment})
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound("Expense not found")
	}
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, e)
}

// expenseSummary pages the per-employee summary of expenses, those with the most pending first.
func (s *Server) expenseSummary(w http.ResponseWriter, r *http.Request) error {
	org := identityOf(r).OrgID
	return respondList(s, w, r, 50, func(ctx context.Context, tx db.DBTX, limit, offset int32) ([]db.ExpenseSummaryByEmployeeRow, error) {
		return s.q.ExpenseSummaryByEmployee(ctx, tx, db.ExpenseSummaryByEmployeeParams{OrgID: org, RowLimit: limit, RowOffset: offset})
	})
}
