package httpapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// The admin dashboard, summaries and leaderboards. They read the snapshots (sql/000014), whose cost is
// the organization's employee count and the days asked for, never its GPS volume. A range [from, to] of
// instants counts the organization's days (its time zone) they fall on.

// timeRange reads from and to (RFC 3339 with an offset; the document bounds their length). Without from,
// it is defaultDays before now (0: none); without to, now.
func timeRange(r *http.Request, defaultDays int) (from, to *time.Time, err error) {
	parse := func(name string) (*time.Time, error) {
		v := r.URL.Query().Get(name)
		if v == "" {
			return nil, nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, errInvalid(name+" must be a valid ISO-8601 date",
				[]fieldError{{Field: name, Message: "must be an ISO-8601 date-time with an offset, e.g. 2026-12-01T00:00:00Z"}})
		}
		return &t, nil
	}
	if from, err = parse("from"); err != nil {
		return nil, nil, err
	}
	if to, err = parse("to"); err != nil {
		return nil, nil, err
	}
	if from != nil && to != nil && from.After(*to) {
		return nil, nil, errInvalid("'from' date must not be later than 'to' date", []fieldError{{Field: "from", Message: "is after to"}})
	}
	if from == nil && defaultDays > 0 {
		f := time.Now().AddDate(0, 0, -defaultDays)
		from = &f
	}
	if to == nil && defaultDays > 0 {
		t := time.Now()
		to = &t
	}
	return from, to, nil
}

// leaderboardEntry is one employee's rank: expenses only when it has some, or they are the metric.
type leaderboardEntry struct {
	Rank         int32    `json:"rank"`
	EmployeeID   string   `json:"employeeId"`
	EmployeeCode *string  `json:"employeeCode"`
	EmployeeName string   `json:"employeeName"`
	Distance     float64  `json:"distance"`
	Sessions     int32    `json:"sessions"`
	Duration     int64    `json:"duration"`
	Expenses     *float64 `json:"expenses,omitempty"`
}

func leaderboardEntries(rows []db.LeaderboardRow, metric string) []leaderboardEntry {
	out := make([]leaderboardEntry, len(rows))
	for i, row := range rows {
		out[i] = leaderboardEntry{Rank: row.Rank, EmployeeID: row.EmployeeID.String(), EmployeeCode: &row.EmployeeCode,
			EmployeeName: row.EmployeeName, Distance: row.Distance, Sessions: row.Sessions, Duration: row.Duration}
		if row.Expenses > 0 || metric == "expenses" {
			out[i].Expenses = &row.Expenses
		}
	}
	return out
}

// trendPoint is one day of the organization.
type trendPoint struct {
	Date     string  `json:"date"`
	Sessions int32   `json:"sessions"`
	Distance float64 `json:"distance"`
	Duration int64   `json:"duration"`
}

func trendPoints(rows []db.SessionTrendRow) []trendPoint {
	out := make([]trendPoint, len(rows))
	for i, row := range rows {
		out[i] = trendPoint{Date: row.Date.Time.Format(time.DateOnly), Sessions: row.Sessions, Distance: row.Distance,
			Duration: row.Duration}
	}
	return out
}

// ranking reads the query of a leaderboard (metric, default distance; limit; the range, default the last
// 30 days) and ranks the organization's employees by it.
func (s *Server) ranking(r *http.Request) (rows []db.LeaderboardRow, metric string, err error) {
	from, to, err := timeRange(r, 30)
	if err != nil {
		return nil, "", err
	}
	metric = r.URL.Query().Get("metric")
	if metric == "" {
		metric = "distance"
	}
	rows, err = one(s, r, s.q.Leaderboard, db.LeaderboardParams{OrgID: identityOf(r).OrgID, FromAt: *from, ToAt: *to,
		Metric: metric, RowLimit: int32(queryInt(r, "limit", 10))})
	return rows, metric, err
}

// leaderboard is GET /leaderboard (any caller) and /admin/leaderboard.
func (s *Server) leaderboard(w http.ResponseWriter, r *http.Request) error {
	rows, metric, err := s.ranking(r)
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, leaderboardEntries(rows, metric))
}

// topPerformers is GET /admin/top-performers: the leaderboard's first, with only the metric's figure.
func (s *Server) topPerformers(w http.ResponseWriter, r *http.Request) error {
	rows, metric, err := s.ranking(r)
	if err != nil {
		return err
	}
	out := make([]map[string]any, len(rows))
	for i, row := range rows {
		e := map[string]any{"employeeId": row.EmployeeID, "employeeName": row.EmployeeName}
		switch metric {
		case "duration":
			e["totalDurationSeconds"] = row.Duration
		case "sessions":
			e["sessionsCount"] = row.Sessions
		default:
			e["totalDistanceKm"] = row.Distance
		}
		out[i] = e
	}
	return respond(w, http.StatusOK, out)
}

// sessionTrend is GET /admin/session-trend: the organization's days over the range (default 90 days).
func (s *Server) sessionTrend(w http.ResponseWriter, r *http.Request) error {
	from, to, err := timeRange(r, 90)
	if err != nil {
		return err
	}
	rows, err := one(s, r, s.q.SessionTrend, db.SessionTrendParams{OrgID: identityOf(r).OrgID, FromAt: *from, ToAt: *to})
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, trendPoints(rows))
}

// orgSummary is GET /admin/org-summary: the range's sessions and expenses (default 30 days), and who
// is checked in now.
func (s *Server) orgSummary(w http.ResponseWriter, r *http.Request) error {
	from, to, err := timeRange(r, 30)
	if err != nil {
		return err
	}
	sum, err := one(s, r, s.q.OrgSummary, db.OrgSummaryParams{OrgID: identityOf(r).OrgID, FromAt: *from, ToAt: *to})
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, sum)
}

// userSummary is GET /admin/user-summary: an employee's figures, named by its user (userId, default the
// caller), over the range (default all time); zeros for a user without an active employee.
func (s *Server) userSummary(w http.ResponseWriter, r *http.Request) error {
	from, to, err := timeRange(r, 0)
	if err != nil {
		return err
	}
	id := identityOf(r)
	user := id.UserID
	if u := queryUUID(r, "userId"); u != nil {
		user = *u
	}
	var sum db.UserSummaryRow
	err = s.tx(r, func(tx db.DBTX) error {
		employee, err := s.q.EmployeeOfUser(r.Context(), tx, db.EmployeeOfUserParams{OrgID: id.OrgID, UserID: &user})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		sum, err = s.q.UserSummary(r.Context(), tx, db.UserSummaryParams{OrgID: id.OrgID, EmployeeID: employee,
			FromAt: from, ToAt: to})
		return err
	})
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, sum)
}

// adminDashboard is GET /admin/dashboard: the figures now, the last 8 days and the top 5 by distance
// over 30 days, in one transaction.
func (s *Server) adminDashboard(w http.ResponseWriter, r *http.Request) error {
	org := identityOf(r).OrgID
	now := time.Now()
	var (
		figures db.DashboardFiguresRow
		trend   []db.SessionTrendRow
		top     []db.LeaderboardRow
	)
	err := s.tx(r, func(tx db.DBTX) (err error) {
		ctx := r.Context()
		if figures, err = s.q.DashboardFigures(ctx, tx, org); err != nil {
			return err
		}
		if trend, err = s.q.SessionTrend(ctx, tx, db.SessionTrendParams{OrgID: org, FromAt: now.AddDate(0, 0, -7), ToAt: now}); err != nil {
			return err
		}
		top, err = s.q.Leaderboard(ctx, tx, db.LeaderboardParams{OrgID: org, FromAt: now.AddDate(0, 0, -30), ToAt: now,
			Metric: "distance", RowLimit: 5})
		return err
	})
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, map[string]any{
		"activeEmployeeCount": figures.ActiveEmployeeCount, "recentEmployeeCount": figures.RecentEmployeeCount,
		"inactiveEmployeeCount": figures.InactiveEmployeeCount, "activeEmployeesToday": figures.ActiveEmployeesToday,
		"todaySessionCount": figures.TodaySessionCount, "todayDistanceKm": figures.TodayDistanceKm,
		"pendingExpenseCount": figures.PendingExpenseCount, "pendingExpenseAmount": figures.PendingExpenseAmount,
		"snapshotUpdatedAt": figures.UpdatedAt, "sessionTrend": trendPoints(trend), "leaderboard": leaderboardEntries(top, "distance"),
	})
}

// snapshotHealth is GET /internal/snapshot-health: per snapshot table of the organization its rows, its
// latest change, and what the latest reconciliation (the 5-minute job) found behind its sources; and
// whether the open sessions' measure keeps up. 503 when something was behind, the job's latest run is
// over 15 minutes old, or failed for this organization. It reads only what the job recorded: cheap,
// whatever the organization's size.
func (s *Server) snapshotHealth(w http.ResponseWriter, r *http.Request) error {
	org := identityOf(r).OrgID
	var (
		found    []db.AppSnapshotHealth
		rows     []db.SnapshotRowsRow
		measures db.OpenSessionMeasuresRow
	)
	err := s.tx(r, func(tx db.DBTX) (err error) {
		ctx := r.Context()
		if found, err = s.q.SnapshotHealth(ctx, tx); err != nil {
			return err
		}
		if rows, err = s.q.SnapshotRows(ctx, tx, org); err != nil {
			return err
		}
		measures, err = s.q.OpenSessionMeasures(ctx, tx, org)
		return err
	})
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	behind := map[string]int64{}
	var checked *time.Time
	var failure *string
	for _, f := range found {
		behind[f.TableName] = f.RowsBehind
		if at, ok := f.CheckedAt.(time.Time); ok {
			checked = &at
		}
		if f.Error != nil {
			failure = f.Error
		}
	}
	reconciled := failure == nil && (checked == nil || now.Sub(*checked) < 15*time.Minute)
	healthy := reconciled && measures.Behind == 0
	tables := map[string]any{}
	for _, t := range rows {
		stale := behind[t.TableName] > 0
		healthy = healthy && !stale
		tables[t.TableName] = map[string]any{"latestUpdateAt": t.LatestUpdateAt, "rowCount": t.RowCount, "stale": stale,
			"rowsBehind": behind[t.TableName]}
	}
	// The dashboard's figures are sums of three of them at read.
	dash := behind["employee_last_state"] + behind["employee_daily_metrics"] + behind["pending_expenses"]
	tables["org_dashboard_snapshot"] = map[string]any{"latestUpdateAt": now, "rowCount": 1, "stale": dash > 0, "rowsBehind": dash}
	status, code := "healthy", http.StatusOK
	if !healthy {
		status, code = "degraded", http.StatusServiceUnavailable
	}
	return respond(w, code, map[string]any{
		"status": status, "checkedAt": now, "reconciledAt": checked, "reconcileError": failure, "tables": tables,
		"workers": map[string]any{"healthy": reconciled && measures.Behind == 0, "lastProcessedAt": measures.LastMeasured,
			"openSessionsBehind": measures.Behind},
	})
}
