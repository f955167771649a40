package httpapi

import (
	"context"
	"math"
	"net/http"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// The operations endpoints show the organization's asynchronous work as the original dashboard reads it,
// with the figures each kind of work really has: distance computations (pending, processing, done,
// failed), the event hand-off (waiting for the listener, handed off: it has no other states, so no other
// figures) and webhook deliveries (waiting, active, delayed, completed, dead-lettered).
//
// Every figure is the caller's organization's. The pipeline the organizations share (the listener's
// positions and errors, the slot's lag, the stream position, every organization's backlog) would let an
// admin watch the other tenants' activity: operators read it on /metrics.

// pipeline is the organization's view of the asynchronous work, read in one transaction; slotActive
// (a listener streams from the outbox slot) is a fact about the service, not about any tenant.
type pipeline struct {
	distance   db.OpsDistanceCountsRow
	webhook    db.OpsWebhookCountsRow
	recent     db.OpsWebhookRecentStatsRow
	backlog    int64
	handedOff  int64
	slotActive bool
}

func (s *Server) readPipeline(r *http.Request) (p pipeline, err error) {
	org := identityOf(r).OrgID
	err = s.tx(r, func(tx db.DBTX) (err error) {
		ctx := r.Context()
		if p.distance, err = s.q.OpsDistanceCounts(ctx, tx, org); err != nil {
			return err
		}
		if p.webhook, err = s.q.OpsWebhookCounts(ctx, tx, org); err != nil {
			return err
		}
		if p.recent, err = s.q.OpsWebhookRecentStats(ctx, tx, org); err != nil {
			return err
		}
		if p.backlog, err = s.q.OutboxBacklog(ctx, tx, &org); err != nil {
			return err
		}
		if p.handedOff, err = s.q.OutboxHandedOff(ctx, tx, org); err != nil {
			return err
		}
		slot, err := s.q.ReplicationSlotStatus(ctx, tx)
		p.slotActive = slot.Active
		return err
	})
	return p, err
}

// queues answers the dashboard's queue cards: distance computations, the event hand-off (shown where
// the original had its analytics queue) and webhook deliveries, for the caller's organization.
func (s *Server) queues(w http.ResponseWriter, r *http.Request) error {
	p, err := s.readPipeline(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "queues": map[string]any{
		"distance": map[string]int64{"waiting": p.distance.Waiting, "active": p.distance.Active,
			"completed": p.distance.Completed, "failed": p.distance.Failed},
		"analytics": map[string]int64{"waiting": p.backlog, "completed": p.handedOff},
		"webhook": map[string]int64{"waiting": p.webhook.Waiting, "active": p.webhook.Active,
			"delayed": p.webhook.Delayed, "completed": p.webhook.Completed, "failed": p.webhook.Failed,
			"dlq": p.webhook.Failed},
	}})
	return nil
}

// queueStatus is the internal probe's compact form of queues: depth is what waits to run now.
func (s *Server) queueStatus(w http.ResponseWriter, r *http.Request) error {
	p, err := s.readPipeline(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "queues": map[string]any{
		"distance":  map[string]int64{"depth": p.distance.Waiting, "active": p.distance.Active},
		"analytics": map[string]int64{"depth": p.backlog},
		"webhook":   map[string]int64{"depth": p.webhook.Waiting, "active": p.webhook.Active, "delayed": p.webhook.Delayed},
	}})
	return nil
}

// systemHealth answers the dashboard's health card: the background parts this process runs and how many
// of them are live right now (healthy: all of them, and a listener streams from the slot), the
// organization's backlogs and dead letters, and its webhook success rate over its latest 500 deliveries.
func (s *Server) systemHealth(w http.ResponseWriter, r *http.Request) error {
	p, err := s.readPipeline(r)
	if err != nil {
		return err
	}
	active, expected := s.bg.live()
	rate := 100.0
	if done := p.recent.Succeeded + p.recent.Failed; done > 0 {
		rate = math.Round(float64(p.recent.Succeeded)/float64(done)*1000) / 10
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"success":   true,
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"workers":   map[string]any{"active": active, "expected": expected, "healthy": active == expected && p.slotActive},
		"queues": map[string]any{
			"webhook":   map[string]int64{"backlog": p.webhook.Waiting + p.webhook.Active + p.webhook.Delayed, "dlq": p.webhook.Failed},
			"analytics": map[string]int64{"backlog": p.backlog},
			"distance":  map[string]int64{"backlog": p.distance.Waiting + p.distance.Active},
		},
		"webhooks": map[string]any{"successRatePct": rate, "failureCount": p.recent.Failed,
			"retryCount": p.recent.Retried, "totalDeliveries": p.recent.Total},
	})
	return nil
}

// live counts the background parts this process runs and those of them working right now.
func (b Background) live() (live, all int) {
	for _, p := range b.parts() {
		all++
		if p.Live() {
			live++
		}
	}
	return live, all
}

// part is a background part of the process that can say whether it is working.
type part interface{ Live() bool }

// parts lists the background parts this process runs.
func (b Background) parts() []part {
	var out []part
	if b.Notifier != nil {
		out = append(out, b.Notifier)
	}
	if b.Hub != nil {
		out = append(out, b.Hub)
	}
	if b.Listener != nil {
		out = append(out, b.Listener)
	}
	if b.Webhooks != nil {
		out = append(out, b.Webhooks)
	}
	if b.Janitor != nil {
		out = append(out, b.Janitor)
	}
	return out
}

// retryIntents lists the organization's failed or retrying asynchronous work (deliveries, distance).
func (s *Server) retryIntents(w http.ResponseWriter, r *http.Request) error {
	org, status := identityOf(r).OrgID, r.URL.Query().Get("status")
	if status == "" {
		status = "pending"
	}
	return respondList(s, w, r, 50, func(ctx context.Context, tx db.DBTX, limit, offset int32) ([]db.RetryIntentListRow, error) {
		return s.q.RetryIntentList(ctx, tx, db.RetryIntentListParams{OrgID: org, Status: status, RowLimit: limit, RowOffset: offset})
	})
}
