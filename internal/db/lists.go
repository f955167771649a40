package db

// Counted is a row of a list query: every row of a page carries the exact number of rows the whole list
// matched (count(*) OVER (), a column of type app.list_total that stays out of the row's JSON). Each list
// query's row type says so with one method below.
type Counted interface {
	ListTotal() int64
}

// ListTotal is the list's total (Counted).
func (r SessionListForEmployeeRow) ListTotal() int64 { return r.Total }

// ListTotal is the list's total (Counted).
func (r SessionListLatestRow) ListTotal() int64 { return r.Total }

// ListTotal is the list's total (Counted).
func (r RetryIntentListRow) ListTotal() int64 { return r.Total }

// ListTotal is the list's total (Counted).
func (r DeliveryListRow) ListTotal() int64 { return r.Total }

// ListTotal is the list's total (Counted).
func (r DeliveryDeadLetterListRow) ListTotal() int64 { return r.Total }

// ListTotal is the list's total (Counted).
func (r EmployeeListRow) ListTotal() int64 { return r.Total }

// ListTotal is the list's total (Counted).
func (r ExpenseListRow) ListTotal() int64 { return r.Total }

// ListTotal is the list's total (Counted).
func (r ExpenseSummaryByEmployeeRow) ListTotal() int64 { return r.Total }

// ListTotal is the list's total (Counted).
func (r MonitoringHistoryRow) ListTotal() int64 { return r.Total }
