package httpapi

import (
	"context"
	"encoding/base64"
	"errors"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/webhook"
)

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

// listWebhooks answers the organization's webhooks in their public form (never the secret).
func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) error {
	hooks, err := one(s, r, s.q.WebhookList, identityOf(r).OrgID)
	if err != nil {
		return err
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
	hook, err := one(s, r, s.q.WebhookCreate, db.WebhookCreateParams{
		OrgID: identityOf(r).OrgID, Url: *body.URL, Secret: *body.Secret, Events: body.Events})
	if err != nil {
		return err
	}
	return respond(w, http.StatusCreated, hook)
}

// farFuture stands for "whenever it was due": the bound that wakes every waiting delivery.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// updateWebhook changes a webhook. Re-activating it or giving it a new URL forgets its failures (closes
// the circuit), and the deliveries that were waiting for that become due now.
func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request) error {
	org, id := identityOf(r).OrgID, pathUUID(r, "id")
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
	err := s.tx(r, func(tx db.DBTX) error {
		ctx := r.Context()
		old, err := s.q.WebhookLockState(ctx, tx, db.WebhookLockStateParams{OrgID: org, ID: id})
		if err != nil {
			return err
		}
		if body.Secret != nil {
			if _, err := s.q.WebhookSetSecret(ctx, tx, db.WebhookSetSecretParams{Secret: *body.Secret, OrgID: org, ID: id}); err != nil {
				return err
			}
		}
		hook, err = s.q.WebhookUpdate(ctx, tx, db.WebhookUpdateParams{
			Url: body.URL, Events: body.Events, IsActive: body.IsActive, ResetCircuit: reactivate || body.URL != nil,
			OrgID: org, ID: id,
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
		return s.q.DeliveryWake(ctx, tx, db.DeliveryWakeParams{OrganizationID: org, WebhookID: id, WaitUntil: wake})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound("Webhook not found")
	}
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, hook)
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) error {
	n, err := one(s, r, s.q.WebhookDelete, db.WebhookDeleteParams{OrgID: identityOf(r).OrgID, ID: pathUUID(r, "id")})
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
	org, id := identityOf(r).OrgID, pathUUID(r, "id")
	var d db.DeliveryInsertRow
	err := s.tx(r, func(tx db.DBTX) error {
		ctx := r.Context()
		exists, err := s.q.WebhookExists(ctx, tx, db.WebhookExistsParams{OrgID: org, ID: id})
		if err != nil {
			return err
		}
		if !exists {
			return errNotFound("Webhook not found")
		}
		event, err := s.q.WebhookTestEvent(ctx, tx, db.WebhookTestEventParams{OrgID: org, WebhookID: id})
		if err != nil {
			return err
		}
		d, err = s.q.DeliveryInsert(ctx, tx, db.DeliveryInsertParams{
			OrgID: org, WebhookID: id, EventID: event, EventType: "webhook.test"})
		return err
	})
	if err != nil {
		return err
	}
	return respond(w, http.StatusAccepted, map[string]any{"delivery_id": d.ID, "event_id": d.EventID, "status": d.Status})
}

// listDeliveries is the delivery log, newest first.
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	org, hook, status := identityOf(r).OrgID, queryUUID(r, "webhook_id"), queryString(r, "status")
	return respondList(s, w, r, 20, func(ctx context.Context, tx db.DBTX, limit, offset int32) ([]db.DeliveryListRow, error) {
		return s.q.DeliveryList(ctx, tx, db.DeliveryListParams{
			OrgID: org, WebhookID: hook, Status: status, RowLimit: limit, RowOffset: offset})
	})
}

// retryDelivery queues a dead-lettered delivery for another attempt now.
func (s *Server) retryDelivery(w http.ResponseWriter, r *http.Request) error {
	d, err := s.retry(r)
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, d)
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
func (s *Server) retry(r *http.Request) (db.DeliveryRetryRow, error) {
	org, id := identityOf(r).OrgID, pathUUID(r, "id")
	var d db.DeliveryRetryRow
	err := s.tx(r, func(tx db.DBTX) error {
		cur, err := s.q.DeliveryGetForUpdate(r.Context(), tx, db.DeliveryGetForUpdateParams{OrgID: org, ID: id})
		if err != nil {
			return err
		}
		switch cur.Status {
		case "success":
			return errInvalid("Delivery already succeeded — retry not needed", nil)
		case "pending":
			return errInvalid("Delivery is already pending — retry not needed", nil)
		}
		d, err = s.q.DeliveryRetry(r.Context(), tx, db.DeliveryRetryParams{OrgID: org, ID: id})
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return d, errNotFound("Delivery not found")
	}
	return d, err
}

// listDeadLetters is the DLQ: failed deliveries, most recently failed first, with limit/offset paging and
// the original's meta block instead of pagination.
func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) error {
	org, hook, eventType := identityOf(r).OrgID, queryUUID(r, "webhook_id"), queryString(r, "event_type")
	limit, offset := queryInt(r, "limit", 50), queryInt(r, "offset", 0)
	items, total, err := fetchPage(s, r, int32(limit), int32(min(offset, math.MaxInt32)), // unbounded: past the end
		func(ctx context.Context, tx db.DBTX, limit, offset int32) ([]db.DeliveryDeadLetterListRow, error) {
			return s.q.DeliveryDeadLetterList(ctx, tx, db.DeliveryDeadLetterListParams{
				OrgID: org, WebhookID: hook, EventType: eventType, RowLimit: limit, RowOffset: offset})
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"success": true, "data": items, "meta": map[string]any{"limit": limit, "offset": offset, "count": total}})
	return nil
}
