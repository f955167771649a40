package app

import (
	"context"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/httpapi"
	"github.com/fieldtrack/fieldtrack/internal/telemetry"
)

// registerPipelineMetrics adds the event pipeline's gauges, read at scrape time: replication slot lag and
// activity, outbox backlog (all organizations), this process's stream position and SSE streams, and its
// listener's state (leading, acknowledged position, hand-offs, last error). This shared state is for
// operators only: the tenants' operations endpoints show none of it.
func registerPipelineMetrics(m *telemetry.Metrics, pool *pgxpool.Pool, bg httpapi.Background) {
	q := db.New()
	read := func(f func(ctx context.Context, tx db.DBTX) (int64, error)) float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		v, err := db.Do(ctx, pool, db.Claims{}, db.TxOptions{Role: db.WorkerRole, ReadOnly: true, SingleStatement: true},
			func(tx db.DBTX) (int64, error) { return f(ctx, tx) })
		if err != nil {
			return -1
		}
		return float64(v)
	}
	m.GaugeFunc("fieldtrack_replication_slot_lag_bytes", "WAL bytes the outbox slot holds back (-1: unknown or no slot).",
		func() float64 {
			return read(func(ctx context.Context, tx db.DBTX) (int64, error) {
				st, err := q.ReplicationSlotStatus(ctx, tx)
				return st.LagBytes, err
			})
		})
	m.GaugeFunc("fieldtrack_replication_slot_active", "1 when a listener streams from the outbox slot (-1: unknown).",
		func() float64 {
			return read(func(ctx context.Context, tx db.DBTX) (int64, error) {
				st, err := q.ReplicationSlotStatus(ctx, tx)
				if st.Active {
					return 1, err
				}
				return 0, err
			})
		})
	m.GaugeFunc("fieldtrack_outbox_backlog", "Events committed but not yet handed off by the listener (-1: unknown).",
		func() float64 {
			return read(func(ctx context.Context, tx db.DBTX) (int64, error) { return q.OutboxBacklog(ctx, tx, nil) })
		})
	m.GaugeFunc("fieldtrack_webhook_dead_letters", "Dead-lettered webhook deliveries of every organization (-1: unknown).",
		func() float64 {
			return read(func(ctx context.Context, tx db.DBTX) (int64, error) { return q.DeadLetterCount(ctx, tx) })
		})
	registerPoolMetrics(m, pool)
	m.Registry.MustRegister(operatorCollector{pool: pool, q: q})
	m.CounterFunc("fieldtrack_sse_drops_total", "SSE streams this process dropped for falling behind (the client resumes).",
		func() float64 { return float64(bg.Hub.Drops()) })
	m.CounterFunc("fieldtrack_stream_reads_total", "Reads of the stamped outbox by this process's SSE hub "+
		"(woken by other processes' hand-offs, and once a second; this process's own need none).",
		func() float64 { return float64(bg.Hub.Reads()) })
	m.GaugeFunc("fieldtrack_stream_position", "Last stream position fanned out by this process.",
		func() float64 { return float64(bg.Hub.Position()) })
	m.GaugeFunc("fieldtrack_sse_streams", "Open SSE streams on this process.",
		func() float64 { return float64(bg.Hub.Subscribers()) })
	m.GaugeFunc("fieldtrack_listener_leader", "1 when this process consumes the outbox slot.",
		func() float64 {
			if bg.Listener != nil && bg.Listener.Status().Leader {
				return 1
			}
			return 0
		})
	if bg.Listener == nil {
		return
	}
	m.GaugeFunc("fieldtrack_listener_acked_lsn_bytes", "WAL position this process's listener last acknowledged (0: none).",
		func() float64 {
			lsn, err := pglogrepl.ParseLSN(bg.Listener.Status().AckedLSN)
			if err != nil {
				return 0
			}
			return float64(lsn)
		})
	m.GaugeFunc("fieldtrack_listener_events_handed_off", "Events this process's listener handed off since it started.",
		func() float64 { return float64(bg.Listener.Status().Handoffs) })
	m.GaugeFunc("fieldtrack_listener_last_error_timestamp_seconds", "When this process's listener last failed (0: never); the error is in the log.",
		func() float64 {
			if at := bg.Listener.Status().LastErrorAt; !at.IsZero() {
				return float64(at.UnixNano()) / 1e9
			}
			return 0
		})
}

// registerPoolMetrics reads the pgx pool's statistics at scrape time.
func registerPoolMetrics(m *telemetry.Metrics, pool *pgxpool.Pool) {
	gauge := func(name, help string, f func(*pgxpool.Stat) float64) {
		m.GaugeFunc(name, help, func() float64 { return f(pool.Stat()) })
	}
	counter := func(name, help string, f func(*pgxpool.Stat) float64) {
		m.CounterFunc(name, help, func() float64 { return f(pool.Stat()) })
	}
	gauge("fieldtrack_db_pool_connections", "Connections the pool holds (idle and in use).",
		func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) })
	gauge("fieldtrack_db_pool_acquired_connections", "Connections in use.",
		func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) })
	gauge("fieldtrack_db_pool_idle_connections", "Idle connections.",
		func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) })
	gauge("fieldtrack_db_pool_max_connections", "The pool's size (DB_MAX_CONNS).",
		func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) })
	counter("fieldtrack_db_pool_acquires_total", "Connections acquired from the pool.",
		func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) })
	counter("fieldtrack_db_pool_empty_acquires_total", "Acquisitions that had to wait for a connection.",
		func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) })
	counter("fieldtrack_db_pool_canceled_acquires_total", "Acquisitions given up (timeout, client gone).",
		func(s *pgxpool.Stat) float64 { return float64(s.CanceledAcquireCount()) })
	counter("fieldtrack_db_pool_acquire_seconds_total", "Time spent acquiring connections.",
		func(s *pgxpool.Stat) float64 { return s.AcquireDuration().Seconds() })
}

// operatorCollector reads app.operator_metrics at scrape time: the rows the last reconciliation repaired
// per snapshot table (drift the triggers missed), its failed organizations and when it ran, and each
// pg_cron job's failures of the last 24 hours. Nothing is reported when Postgres cannot answer.
type operatorCollector struct {
	pool *pgxpool.Pool
	q    *db.Queries
}

var (
	snapshotDriftDesc = prometheus.NewDesc("fieldtrack_snapshot_drift_rows",
		"Rows the last reconciliation repaired in a snapshot table (every organization).", []string{"table"}, nil)
	reconcileErrorsDesc = prometheus.NewDesc("fieldtrack_reconcile_errors",
		"Organizations whose last reconciliation failed.", nil, nil)
	reconcileLastRunDesc = prometheus.NewDesc("fieldtrack_reconcile_last_run_timestamp_seconds",
		"When the last reconciliation ran (0: never).", nil, nil)
	cronFailuresDesc = prometheus.NewDesc("fieldtrack_cron_job_failures_24h",
		"Failed runs of a pg_cron job in the last 24 hours.", []string{"job"}, nil)
)

func (operatorCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- snapshotDriftDesc
	ch <- reconcileErrorsDesc
	ch <- reconcileLastRunDesc
	ch <- cronFailuresDesc
}

func (c operatorCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := db.Do(ctx, c.pool, db.Claims{}, db.TxOptions{Role: db.WorkerRole, ReadOnly: true, SingleStatement: true},
		func(tx db.DBTX) ([]db.OperatorMetricsRow, error) { return c.q.OperatorMetrics(ctx, tx) })
	if err != nil {
		return
	}
	for _, r := range rows {
		switch r.Name {
		case "snapshot_drift_rows":
			ch <- prometheus.MustNewConstMetric(snapshotDriftDesc, prometheus.GaugeValue, r.Value, r.Label)
		case "reconcile_errors":
			ch <- prometheus.MustNewConstMetric(reconcileErrorsDesc, prometheus.GaugeValue, r.Value)
		case "reconcile_last_run":
			ch <- prometheus.MustNewConstMetric(reconcileLastRunDesc, prometheus.GaugeValue, r.Value)
		case "cron_failures_24h":
			ch <- prometheus.MustNewConstMetric(cronFailuresDesc, prometheus.GaugeValue, r.Value, r.Label)
		}
	}
}
