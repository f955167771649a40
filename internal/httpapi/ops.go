package httpapi

import (
	"math"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// pipeline is the organization's view of the asynchronous work, read in one transaction.
type pipeline struct {
	distance db.OpsDistanceCountsRow
	webhook  db.OpsWebhookCountsRow
	recent   db.OpsWebhookRecentStatsRow
	backlog  int64
	slot     db.ReplicationSlotStatusRow
}

func (s *Server) readPipeline(r *http.Request) (p pipeline, err error) {
	err = s.tx(r, func(tx pgx.Tx) (err error) {
		ctx := r.Context()
		if p.distance, err = s.q.OpsDistanceCounts(ctx, tx); err != nil {
			return err
		}
		if p.webhook, err = s.q.OpsWebhookCounts(ctx, tx); err != nil {
			return err
		}
		if p.recent, err = s.q.OpsWebhookRecentStats(ctx, tx); err != nil {
			return err
		}
		if p.backlog, err = s.q.OutboxBacklog(ctx, tx); err != nil {
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
	if s.listener != nil {
		st := s.listener.Status()
		out["thisProcessLeads"] = st.Leader
		out["ackedLsn"] = st.AckedLSN
		out["handedOff"] = st.Handoffs
		if st.LastError != "" {
			out["lastError"], out["lastErrorAt"] = st.LastError, st.LastErrorAt
		}
	}
	if s.hub != nil {
		out["streamPosition"] = s.hub.Position()
		out["sseStreams"] = s.hub.Subscribers()
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
		"analytics": map[string]any{"waiting": p.backlog, "active": 0, "completed": 0, "failed": 0,
			"dlq": map[string]int64{"waiting": 0, "failed": 0}},
		"webhook": map[string]any{"waiting": p.webhook.Waiting, "active": p.webhook.Active,
			"completed": p.webhook.Completed, "failed": p.webhook.Failed,
			"dlq": map[string]int64{"waiting": 0, "failed": p.webhook.Failed}},
		"events": s.listenerStatus(p),
	}})
	return nil
}

// queueStatus is the internal probe's compact form of queues.
func (s *Server) queueStatus(w http.ResponseWriter, r *http.Request) error {
	p, err := s.readPipeline(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "queues": map[string]any{
		"distance":  map[string]int64{"depth": p.distance.Waiting, "active": p.distance.Active, "delayed": 0},
		"analytics": map[string]int64{"depth": p.backlog, "active": 0, "delayed": 0},
		"webhook":   map[string]int64{"depth": p.webhook.Waiting, "active": p.webhook.Active, "delayed": 0},
	}})
	return nil
}

// systemHealth answers the dashboard's health card: background workers of this process, backlogs and the
// webhook success rate over the organization's latest 500 deliveries, plus the listener's state.
func (s *Server) systemHealth(w http.ResponseWriter, r *http.Request) error {
	p, err := s.readPipeline(r)
	if err != nil {
		return err
	}
	expected, active := 0, 0
	for _, running := range []bool{s.hub != nil, s.listener != nil, s.cfg.WebhookWorkerEnabled} {
		expected++
		if running {
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
			"webhook":   map[string]int64{"backlog": p.webhook.Waiting + p.webhook.Active, "dlq": p.webhook.Failed},
			"analytics": map[string]int64{"backlog": p.backlog},
			"distance":  map[string]int64{"backlog": p.distance.Waiting + p.distance.Active},
		},
		"webhooks": map[string]any{"successRatePct": rate, "failureCount": p.recent.Failed,
			"retryCount": p.recent.Retried, "totalDeliveries": p.recent.Total},
		"listener": s.listenerStatus(p),
	})
	return nil
}

// retryIntents lists the organization's failed or retrying asynchronous work (deliveries, distance).
func (s *Server) retryIntents(w http.ResponseWriter, r *http.Request) error {
	pg := pageOf(r, 50)
	status := r.URL.Query().Get("status")
	if status == "" {
		status = "pending"
	}
	var items []db.RetryIntentListRow
	var total int64
	err := s.tx(r, func(tx pgx.Tx) (err error) {
		items, err = s.q.RetryIntentList(r.Context(), tx, db.RetryIntentListParams{
			Status: status, RowLimit: int32(pg.Limit), RowOffset: pg.offset()})
		if err != nil {
			return err
		}
		total, err = s.q.RetryIntentCount(r.Context(), tx, status)
		return err
	})
	if err != nil {
		return err
	}
	if items == nil {
		items = []db.RetryIntentListRow{}
	}
	return respondPage(w, items, pg, total)
}
