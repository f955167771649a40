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

// pipeline is the organization's view of the asynchronous work, read in one transaction.
type pipeline struct {
	distance  db.OpsDistanceCountsRow
	webhook   db.OpsWebhookCountsRow
	recent    db.OpsWebhookRecentStatsRow
	backlog   int64
	handedOff int64
	slot      db.ReplicationSlotStatusRow
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
		p.slot, err = s.q.ReplicationSlotStatus(ctx, tx)
		return err
	})
	return p, err
}

// listenerStatus combines this process's listener state with the slot as Postgres sees it (the leader
// may be another process).
func (s *Server) listenerStatus(p pipeline) map[string]any {
	out := map[string]any{"slot": p.slot.SlotName, "slotActive": p.slot.Active, "slotLagBytes": p.slot.LagBytes,
		"outboxBacklog": p.backlog, "thisProcessLeads": false}
	if l := s.bg.Listener; l != nil {
		st := l.Status()
		out["thisProcessLeads"] = st.Leader
		out["ackedLsn"] = st.AckedLSN
		out["handedOff"] = st.Handoffs
		if st.LastError != "" {
			out["lastError"], out["lastErrorAt"] = st.LastError, st.LastErrorAt
		}
	}
	if h := s.bg.Hub; h != nil {
		out["streamPosition"] = h.Position()
		out["sseStreams"] = h.Subscribers()
	}
	return out
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
		"events": s.listenerStatus(p),
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
// of them are live right now, backlogs, the webhook success rate over the organization's latest 500
// deliveries, and the listener's state.
func (s *Server) systemHealth(w http.ResponseWriter, r *http.Request) error {
	p, err := s.readPipeline(r)
	if err != nil {
		return err
	}
	expected, active := 0, 0
	for _, part := range s.bg.parts() {
		expected++
		if part.Live() {
			active++
		}
	}
	rate := 100.0
	if done := p.recent.Succeeded + p.recent.Failed; done > 0 {
		rate = math.Round(float64(p.recent.Succeeded)/float64(done)*1000) / 10
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"success":   true,
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"workers":   map[string]any{"active": active, "expected": expected, "healthy": active == expected && p.slot.Active},
		"queues": map[string]any{
			"webhook":   map[string]int64{"backlog": p.webhook.Waiting + p.webhook.Active + p.webhook.Delayed, "dlq": p.webhook.Failed},
			"analytics": map[string]int64{"backlog": p.backlog},
			"distance":  map[string]int64{"backlog": p.distance.Waiting + p.distance.Active},
		},
		"webhooks": map[string]any{"successRatePct": rate, "failureCount": p.recent.Failed,
			"retryCount": p.recent.Retried, "totalDeliveries": p.recent.Total},
		"listener": s.listenerStatus(p),
	})
	return nil
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
