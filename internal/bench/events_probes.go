package bench

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/config"
)

// serverSettings describes the server under test from its environment (/proc/PID/environ, read through
// the server's own config.Load), so the report states the worker's and the listener's effective settings.
type serverSettings struct {
	known bool
	cfg   config.Config
	err   string
}

func readServerSettings(pid int) serverSettings {
	if pid <= 0 {
		return serverSettings{err: "no server pid given"}
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		return serverSettings{err: err.Error()}
	}
	env := map[string]string{}
	for kv := range strings.SplitSeq(string(b), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	c, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		return serverSettings{err: err.Error()}
	}
	return serverSettings{known: true, cfg: c}
}

// waitArrivals waits until every committed event in [lo, hi) has reached both consumers (or the SSE
// client has stopped and only its events are missing), for at most limit. It returns how long it waited.
func waitArrivals(ctx context.Context, tr *tracker, sse *sseClient, lo, hi int64, limit time.Duration) time.Duration {
	start := time.Now()
	for {
		s, h := tr.outstanding(lo, hi)
		select {
		case <-sse.done:
			s = 0
		default:
		}
		if (s == 0 && h == 0) || time.Since(start) > limit || ctx.Err() != nil {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pipelineMonitor samples, once a second while the measured production runs, the outbox backlog (events
// not yet handed off by the listener) and the organization's pending deliveries.
type pipelineMonitor struct {
	maxBacklog, maxPending int64
	samples                int
	err                    string
}

func monitorPipeline(ctx context.Context, pool *pgxpool.Pool, org uuid.UUID) *pipelineMonitor {
	m := &pipelineMonitor{}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return m
		case <-t.C:
		}
		var backlog, pending int64
		err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM webhook_events WHERE stream_id IS NULL),
			(SELECT count(*) FROM webhook_deliveries WHERE organization_id = $1 AND status = 'pending')`, org).
			Scan(&backlog, &pending)
		if err != nil {
			if ctx.Err() == nil && m.err == "" {
				m.err = err.Error()
			}
			continue
		}
		m.samples++
		m.maxBacklog, m.maxPending = max(m.maxBacklog, backlog), max(m.maxPending, pending)
	}
}

// listenerStatus is what /metrics says about the server's listener at the end ("" when unknown).
type listenerStatus struct {
	handedOff string
	lastError string
	err       string
}

// readListenerStatus scrapes the server's /metrics with its METRICS_SCRAPE_TOKEN: the tenants'
// operations endpoints show nothing of the shared pipeline.
func readListenerStatus(ctx context.Context, base, scrapeToken string) listenerStatus {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return listenerStatus{err: err.Error()}
	}
	if scrapeToken != "" {
		req.Header.Set("Authorization", "Bearer "+scrapeToken)
	}
	resp, err := newHTTPClient(1).Do(req)
	if err != nil {
		return listenerStatus{err: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4*maxBody))
	if resp.StatusCode != http.StatusOK {
		return listenerStatus{err: httpError(resp.StatusCode, b).Error()}
	}
	values := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if name, value, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
			if v, err := strconv.ParseFloat(value, 64); err == nil {
				values[name] = v
			}
		}
	}
	handedOff, ok := values["fieldtrack_listener_events_handed_off"]
	if !ok {
		return listenerStatus{err: "no fieldtrack_listener_events_handed_off in /metrics"}
	}
	st := listenerStatus{handedOff: strconv.FormatFloat(handedOff, 'f', -1, 64)}
	if at := values["fieldtrack_listener_last_error_timestamp_seconds"]; at > 0 {
		st.lastError = "at " + time.Unix(int64(at), 0).UTC().Format(time.RFC3339) + " (the message is in the server's log)"
	}
	return st
}

// deliveryStats is the organization's webhook_deliveries at the end.
type deliveryStats struct {
	total, success, failed, pending, attempts int64
	lastError                                 string
}

func readDeliveryStats(ctx context.Context, pool *pgxpool.Pool, org uuid.UUID) (deliveryStats, error) {
	var s deliveryStats
	var lastErr *string
	err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'success'),
		count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'pending'),
		coalesce(sum(attempt_count), 0),
		(SELECT last_error FROM webhook_deliveries WHERE organization_id = $1 AND last_error IS NOT NULL LIMIT 1)
		FROM webhook_deliveries WHERE organization_id = $1`, org).
		Scan(&s.total, &s.success, &s.failed, &s.pending, &s.attempts, &lastErr)
	if lastErr != nil {
		s.lastError = *lastErr
	}
	return s, err
}

// readHandoffs returns, per sequence number, when the listener handed the event off (dispatched_at, the
// start of its hand-off transaction) as an offset of tr; 0 when it has not.
func readHandoffs(ctx context.Context, pool *pgxpool.Pool, org uuid.UUID, tr *tracker) ([]time.Duration, error) {
	out := make([]time.Duration, len(tr.commit))
	rows, err := pool.Query(ctx, `SELECT (payload #>> '{data,seq}')::bigint, dispatched_at FROM webhook_events
		WHERE organization_id = $1 AND event_type = $2 AND dispatched_at IS NOT NULL`, org, eventsType)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var at time.Time
		if err := rows.Scan(&seq, &at); err != nil {
			return nil, err
		}
		if seq >= 0 && seq < int64(len(out)) {
			out[seq] = tr.offset(at)
			if out[seq] == 0 {
				out[seq] = 1
			}
		}
	}
	return out, rows.Err()
}
