package httpapi

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The original's /internal/metrics and /internal/ready-deep (original-api §3.2), with tenant figures: what
// this process did for the caller's organization, and the organization's view of the system.

// recentRecalcs is how many recalculations the average covers, as the original's.
const recentRecalcs = 100

// orgCounters are this process's per-organization counts since it started. Ingest adds to them on every
// request, so a count is an atomic in a sync.Map (no lock shared by all requests); only the ring of
// recent recalculation times, written by recalculations alone, has a lock of its own.
type orgCounters struct{ m sync.Map } // uuid.UUID -> *orgCount

type orgCount struct {
	locations, recalcs atomic.Int64
	mu                 sync.Mutex
	recent             [recentRecalcs]time.Duration // a ring of the latest timed recalculations
	timed              int
}

func (c *orgCounters) of(org uuid.UUID) *orgCount {
	if n, ok := c.m.Load(org); ok {
		return n.(*orgCount)
	}
	n, _ := c.m.LoadOrStore(org, &orgCount{})
	return n.(*orgCount)
}

func (c *orgCounters) addLocations(org uuid.UUID, n int64) {
	if n > 0 {
		c.of(org).locations.Add(n)
	}
}

// addRecalcs counts n recalculations; took, when not zero, is the time of one of them.
func (c *orgCounters) addRecalcs(org uuid.UUID, n int64, took time.Duration) {
	o := c.of(org)
	o.recalcs.Add(n)
	if took > 0 {
		o.mu.Lock()
		o.recent[o.timed%recentRecalcs] = took
		o.timed++
		o.mu.Unlock()
	}
}

func (c *orgCounters) read(org uuid.UUID) (locations, recalcs int64, avg time.Duration) {
	o := c.of(org)
	o.mu.Lock()
	defer o.mu.Unlock()
	n := min(o.timed, recentRecalcs)
	var sum time.Duration
	for _, d := range o.recent[:n] {
		sum += d
	}
	if n > 0 {
		avg = sum / time.Duration(n)
	}
	return o.locations.Load(), o.recalcs.Load(), avg
}

// internalMetrics is GET /internal/metrics, not enveloped: this process's uptime, the organization's
// distance computations waiting (failed ones listed for replay), and what this process stored and
// recalculated for it since it started (the average over its latest 100 recalculations).
func (s *Server) internalMetrics(w http.ResponseWriter, r *http.Request) error {
	org := identityOf(r).OrgID
	counts, err := one(s, r, s.q.OpsDistanceCounts, org)
	if err != nil {
		return err
	}
	locations, recalcs, avg := s.orgs.read(org)
	writeJSON(w, http.StatusOK, map[string]any{
		"uptimeSeconds": int64(time.Since(s.started).Seconds()), "queueDepth": counts.Waiting,
		"totalRecalculations": recalcs, "totalLocationsInserted": locations,
		"avgRecalculationMs": avg.Round(time.Millisecond).Milliseconds(),
	})
	return nil
}

// readyDeep is GET /internal/ready-deep: the database (a fresh round trip, timed) and this process's
// background parts, with when the organization's last event was handed off; 503 when any is not ok.
// There is no Redis: the original's redis check is not part of the answer.
func (s *Server) readyDeep(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	last, err := one(s, r, s.q.OutboxLastHandedOff, identityOf(r).OrgID)
	if errors.Is(err, pgx.ErrNoRows) {
		last, err = nil, nil
	}
	database := map[string]any{"status": "ok", "latencyMs": time.Since(start).Milliseconds()}
	if err != nil {
		database["status"], database["error"] = "error", toError(err).Message
	}
	live, parts := s.bg.live()
	workers := map[string]any{"status": "ok", "healthy": live == parts, "lastProcessedAt": last}
	switch {
	case parts == 0:
		workers["status"] = "skipped"
	case live < parts:
		workers["status"] = "error"
	}
	status, code := "healthy", http.StatusOK
	if database["status"] != "ok" || workers["status"] == "error" {
		status, code = "degraded", http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"success": true, "data": map[string]any{
		"status": status, "checkedAt": time.Now().UTC(), "checks": map[string]any{"database": database, "workers": workers},
	}})
	return nil
}
