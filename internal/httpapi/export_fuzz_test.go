package httpapi

import (
	"bytes"
	"encoding/csv"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// writeExport writes rows as exportExpenses does: its csv.Writer settings, the header, exportRecord.
func writeExport(rows []db.ExpenseExportRow) ([]byte, error) {
	var buf bytes.Buffer
	out := csv.NewWriter(&buf)
	out.UseCRLF = true
	if err := out.Write(exportHeader); err != nil {
		return nil, err
	}
	for _, e := range rows {
		if err := out.Write(exportRecord(e)); err != nil {
			return nil, err
		}
	}
	out.Flush()
	return buf.Bytes(), out.Error()
}

// FuzzExportCSV writes expenses with arbitrary text and amounts as the CSV export does and reads the file
// back with encoding/csv: it parses, with the header and one record of 9 fields per expense; every text
// cell reads back as its value (with a quote in front when it starts like a formula, and without carriage
// returns: a CRLF writer writes a line break in a cell as CRLF, which reads back as LF, and drops a lone
// CR), and no text cell starts with = + - @, tab or CR, which a spreadsheet would run.
func FuzzExportCSV(f *testing.F) {
	f.Add("EMP0001", "Asha Rao", "Taxi to the client site", "", false, 12.5, "PENDING")
	f.Add("EMP0002", "Ravi, Kumar", "Lunch \"with\" client", "No receipt", true, 9999999999.99, "REJECTED")
	f.Add("=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", true, 1.0, "APPROVED")
	f.Add("\tEMP", "\rName", "line one\nline two", "line one\r\nline two\r", true, 0.01, "PENDING")
	f.Add("", " leading space", "trailing space ", "\"", true, 1e-9, "PENDING")
	f.Add("\\.", "#comment", "a\u2028b", "\xff\xfe invalid UTF-8", true, -0.0, "PENDING")
	f.Add("'already quoted", "=", "\r\n=1", "\r", true, 1e300, "=status")
	f.Fuzz(func(t *testing.T, code, name, description, comment string, hasComment bool, amount float64, status string) {
		submitted := time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.FixedZone("IST", 19800))
		reviewed := submitted.Add(time.Hour)
		rows := []db.ExpenseExportRow{
			{ID: uuid.New(), EmployeeCode: code, EmployeeName: name, Amount: amount, Description: description,
				Status: status, SubmittedAt: submitted},
			{ID: uuid.New(), EmployeeCode: comment, EmployeeName: description, Amount: amount, Description: name,
				Status: status, SubmittedAt: submitted, ReviewedAt: &reviewed},
		}
		if hasComment {
			rows[0].RejectionComment = &comment
			rows[1].RejectionComment = &code
		}
		raw, err := writeExport(rows)
		if err != nil {
			t.Fatalf("writing: %v", err)
		}
		records, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
		if err != nil {
			t.Fatalf("the export does not parse: %v\n%q", err, raw)
		}
		if len(records) != 1+len(rows) || !slices.Equal(records[0], exportHeader) {
			t.Fatalf("%d records (header %q), want %d\n%q", len(records), records[0], 1+len(rows), raw)
		}
		for i, e := range rows {
			rec := records[i+1]
			if len(rec) != len(exportHeader) {
				t.Fatalf("record %d has %d fields: %q", i, len(rec), rec)
			}
			reviewedAt := ""
			if e.ReviewedAt != nil {
				reviewedAt = e.ReviewedAt.UTC().Format(time.RFC3339Nano)
			}
			want := []string{e.ID.String(), "", "", strconv.FormatFloat(e.Amount, 'f', 2, 64), "", strings.ReplaceAll(e.Status, "\r", ""), "",
				e.SubmittedAt.UTC().Format(time.RFC3339Nano), reviewedAt}
			for col, v := range map[int]string{1: e.EmployeeCode, 2: e.EmployeeName, 4: e.Description, 6: deref(e.RejectionComment)} {
				want[col] = strings.ReplaceAll(cell(v), "\r", "")
				if got := rec[col]; got != "" && strings.ContainsRune("=+-@\t\r", rune(got[0])) {
					t.Fatalf("record %d column %s reads %q: a spreadsheet runs it", i, exportHeader[col], got)
				}
			}
			if !slices.Equal(rec, want) {
				t.Fatalf("record %d reads\n%q, want\n%q", i, rec, want)
			}
		}
	})
}
