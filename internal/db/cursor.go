package db

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ExpenseExportEach runs ExpenseExport through a cursor and hands fn each row, fetching batch rows at a
// time, so memory stays flat however many rows the export has. It must run inside a transaction (the
// cursor lives until the transaction ends); each FETCH is a statement of its own, so the statement
// timeout bounds one batch, not the whole export. An error of fn stops the export and is returned.
func (q *Queries) ExpenseExportEach(ctx context.Context, db DBTX, arg ExpenseExportParams, batch int,
	fn func(ExpenseExportRow) error) error {
	if _, err := db.Exec(ctx, "DECLARE expense_export NO SCROLL CURSOR FOR "+expenseExport, arg.OrgID, arg.EmployeeID); err != nil {
		return fmt.Errorf("declare export cursor: %w", err)
	}
	fetch := fmt.Sprintf("FETCH %d FROM expense_export", batch)
	for {
		rows, err := db.Query(ctx, fetch)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			row, err := pgx.RowToStructByPos[ExpenseExportRow](rows)
			if err != nil {
				rows.Close()
				return err
			}
			n++
			if err := fn(row); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n < batch {
			_, err := db.Exec(ctx, "CLOSE expense_export")
			return err
		}
	}
}
