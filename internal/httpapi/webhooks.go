package httpapi

import (
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/webhook"
)

// webhookJSON is a webhook's public form. The secret is not in it, nor readable by the API role at all.
type webhookJSON = db.WebhookListRow

// deliveryJSON is a delivery as the log shows it; response_code repeats response_status (the original's).
type deliveryJSON struct {
	db.DeliveryListRow
	ResponseCode *int32 `json:"response_code"`
}

func deliveryOf(row db.DeliveryListRow) deliveryJSON {
	return deliveryJSON{DeliveryListRow: row, ResponseCode: row.ResponseStatus}
}

// webhookBody is the body of create and update; validation (types, lengths, the event enum) already ran.
type webhookBody struct {
	URL      *string  `json:"url"`
	Events   []string `json:"events"`
	Secret   *string  `json:"secret"`
	IsActive *bool    `json:"is_active"`
}

// check applies what the OpenAPI document cannot say: the URL rules of this environment and the secret's
// whsec_ form. It also drops repeated event types.
func (s *Server) check(b *webhookBody) error {
	if b.URL != nil {
		if err := webhook.CheckURL(*b.URL, s.cfg.Production(), s.cfg.WebhookAllowPrivateTargets); err != nil {
			return errInvalid(err.Error(), map[string]any{"fields": []fieldError{{Field: "url", Message: err.Error()}}})
		}
	}
	if b.Secret != nil {
		if rest, ok := strings.CutPrefix(*b.Secret, "whsec_"); ok {
			if key, err := base64.StdEncoding.DecodeString(rest); err != nil || len(key) < 16 {
				msg := "secret: a whsec_ secret must be the base64 of at least 16 bytes after the prefix"
				return errInvalid(msg, map[string]any{"fields": []fieldError{{Field: "secret", Message: msg}}})
			}
		}
	}
	if b.Events != nil {
		seen := make([]string, 0, len(b.Events))
		for _, e := range b.Events {
			if !slices.Contains(seen, e) {
				seen = append(seen, e)
			}
		}
		b.Events = seen
	}
	return nil
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) error {
	var hooks []webhookJSON
	err := s.tx(r, func(tx pgx.Tx) (err error) {
		hooks, err = s.q.WebhookList(r.Context(), tx)
		return err
	})
	if err != nil {
		return err
	}
	if hooks == nil {
		hooks = []webhookJSON{}
	}
	return respond(w, http.StatusOK, hooks)
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) error {
	var body webhookBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if err := s.check(&body); err != nil {
		return err
	}
	var hook db.WebhookCreateRow
	err := s.tx(r, func(tx pgx.Tx) (err error) {
		hook, err = s.q.WebhookCreate(r.Context(), tx, db.WebhookCreateParams{
			Url: *body.URL, Secret: *body.Secret, Events: body.Events})
		return err
	})
	if err != nil {
		return err
	}
	return respond(w, http.StatusCreated, webhookJSON(hook))
}

// farFuture stands for "whenever it was due": the bound that wakes every waiting delivery.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// updateWebhook changes a webhook. Re-activating it or giving it a new URL forgets its failures (closes
// the circuit), and the deliveries that were waiting for that become due now.
func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request) error {
	id := uuid.MustParse(chi.URLParam(r, "id")) // validated as a UUID by the OpenAPI document
	var body webhookBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if body.URL == nil && body.Events == nil && body.Secret == nil && body.IsActive == nil {
		return errInvalid("At least one field must be provided for update", nil)
	}
	if err := s.check(&body); err != nil {
		return err
	}
	reactivate := body.IsActive != nil && *body.IsActive
	var hook db.WebhookUpdateRow
	err := s.tx(r, func(tx pgx.Tx) error {
		old, err := s.q.WebhookLockState(r.Context(), tx, id)
		if err != nil {
			return err
		}
		if body.Secret != nil {
			if _, err := s.q.WebhookSetSecret(r.Context(), tx, db.WebhookSetSecretParams{Secret: *body.Secret, ID: id}); err != nil {
				return err
			}
		}
		hook, err = s.q.WebhookUpdate(r.Context(), tx, db.WebhookUpdateParams{
			Url: body.URL, Events: body.Events, IsActive: body.IsActive, ResetCircuit: reactivate || body.URL != nil, ID: id,
		})
		if err != nil {
			return err
		}
		wake := old.CircuitOpenUntil // parked behind the circuit just closed
		if !old.IsActive && hook.IsActive {
			wake = &farFuture // parked while the webhook was inactive
		} else if !reactivate && body.URL == nil {
			wake = nil
		}
		if wake == nil {
			return nil
		}
		return s.q.DeliveryWake(r.Context(), tx, db.DeliveryWakeParams{
			OrganizationID: hook.OrganizationID, WebhookID: id, WaitUntil: wake})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound("Webhook not found")
	}
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, webhookJSON(hook))
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) error {
	id := uuid.MustParse(chi.URLParam(r, "id"))
	var n int64
	err := s.tx(r, func(tx pgx.Tx) (err error) {
		n, err = s.q.WebhookDelete(r.Context(), tx, id)
		return err
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return errNotFound("Webhook not found")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// testWebhook queues a webhook.test event for one webhook, whatever its state and subscriptions: the event
// and its pending delivery commit together, and a worker sends it within a poll interval.
func (s *Server) testWebhook(w http.ResponseWriter, r *http.Request) error {
	id := uuid.MustParse(chi.URLParam(r, "id"))
	var d db.DeliveryInsertRow
	err := s.tx(r, func(tx pgx.Tx) error {
		if _, err := s.q.WebhookGet(r.Context(), tx, id); err != nil {
			return err
		}
		event, err := s.q.WebhookTestEventInsert(r.Context(), tx, id)
		if err != nil {
			return err
		}
		d, err = s.q.DeliveryInsert(r.Context(), tx, db.DeliveryInsertParams{
			WebhookID: id, EventID: event, EventType: "webhook.test"})
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound("Webhook not found")
	}
	if err != nil {
		return err
	}
	return respond(w, http.StatusAccepted, map[string]any{"delivery_id": d.ID, "event_id": d.EventID, "status": d.Status})
}

// listDeliveries is the delivery log, newest first.
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	p := pageOf(r, 20)
	params := db.DeliveryListParams{WebhookID: queryUUID(r, "webhook_id"), Status: queryString(r, "status"),
		RowLimit: int32(p.Limit), RowOffset: p.offset()}
	var items []deliveryJSON
	var total int64
	err := s.tx(r, func(tx pgx.Tx) error {
		rows, err := s.q.DeliveryList(r.Context(), tx, params)
		if err != nil {
			return err
		}
		items = make([]deliveryJSON, len(rows))
		for i, row := range rows {
			items[i] = deliveryOf(row)
		}
		total, err = s.q.DeliveryCount(r.Context(), tx, db.DeliveryCountParams{WebhookID: params.WebhookID, Status: params.Status})
		return err
	})
	if err != nil {
		return err
	}
	return respondPage(w, items, p, total)
}

// retryDelivery queues a dead-lettered delivery for another attempt now.
func (s *Server) retryDelivery(w http.ResponseWriter, r *http.Request) error {
	d, err := s.retry(r)
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, deliveryOf(d))
}

// retryDeadLetter is retryDelivery with the DLQ's shorter answer.
func (s *Server) retryDeadLetter(w http.ResponseWriter, r *http.Request) error {
	d, err := s.retry(r)
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, map[string]any{
		"id": d.ID, "status": d.Status, "attempt_count": d.AttemptCount, "next_retry_at": d.NextRetryAt})
}

// retry makes a failed delivery pending and due now; its attempt history stays. A delivery that succeeded
// or is still pending is not retried (a pending one may be in flight: retrying it could send it twice).
func (s *Server) retry(r *http.Request) (db.DeliveryListRow, error) {
	id := uuid.MustParse(chi.URLParam(r, "id"))
	var d db.DeliveryRetryRow
	err := s.tx(r, func(tx pgx.Tx) error {
		cur, err := s.q.DeliveryGetForUpdate(r.Context(), tx, id)
		if err != nil {
			return err
		}
		switch cur.Status {
		case "success":
			return errInvalid("Delivery already succeeded — retry not needed", nil)
		case "pending":
			return errInvalid("Delivery is already pending — retry not needed", nil)
		}
		d, err = s.q.DeliveryRetry(r.Context(), tx, id)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return db.DeliveryListRow{}, errNotFound("Delivery not found")
	}
	return db.DeliveryListRow(d), err
}

// deadLetterJSON is a dead-lettered delivery with its event's envelope (null once retention removed it).
type deadLetterJSON = db.DeliveryDeadLetterListRow

// listDeadLetters is the DLQ: failed deliveries, most recently failed first, with limit/offset paging.
func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) error {
	limit, offset := queryInt(r, "limit", 50), queryInt(r, "offset", 0)
	webhookID, eventType := queryUUID(r, "webhook_id"), queryString(r, "event_type")
	var items []deadLetterJSON
	var total int64
	err := s.tx(r, func(tx pgx.Tx) (err error) {
		items, err = s.q.DeliveryDeadLetterList(r.Context(), tx, db.DeliveryDeadLetterListParams{
			WebhookID: webhookID, EventType: eventType, RowLimit: int32(limit), RowOffset: int32(offset)})
		if err != nil {
			return err
		}
		total, err = s.q.DeliveryDeadLetterCount(r.Context(), tx, db.DeliveryDeadLetterCountParams{
			WebhookID: webhookID, EventType: eventType})
		return err
	})
	if err != nil {
		return err
	}
	if items == nil {
		items = []deadLetterJSON{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"success": true, "data": items, "meta": map[string]any{"limit": limit, "offset": offset, "count": total}})
	return nil
}

// queryUUID reads an optional UUID parameter (already validated); nil when absent.
func queryUUID(r *http.Request, name string) *uuid.UUID {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil
	}
	id := uuid.MustParse(v)
	return &id
}

// queryString reads an optional string parameter; nil when absent or empty.
func queryString(r *http.Request, name string) *string {
	if v := r.URL.Query().Get(name); v != "" {
		return &v
	}
	return nil
}
