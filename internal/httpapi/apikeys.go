package httpapi

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/db"
)

// apiKey is a key's public form (original-api §3.15); the key itself is shown only when it is created.
type apiKey struct {
	ID           uuid.UUID  `json:"id"`
	Name         string     `json:"name"`
	Scopes       []string   `json:"scopes"`
	CreatedAt    time.Time  `json:"created_at"`
	LastUsedAt   *time.Time `json:"last_used_at"`
	Active       bool       `json:"active"`
	RequestCount int64      `json:"request_count"`
	ErrorCount   int64      `json:"error_count"`
	KeyPreview   string     `json:"key_preview"`
	RevokedAt    *time.Time `json:"revoked_at"`
}

func publicKey(k db.ApiKey) apiKey {
	return apiKey{ID: k.ID, Name: k.Name, Scopes: k.Scopes, CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt,
		Active: k.Active, RequestCount: k.RequestCount, ErrorCount: k.ErrorCount,
		KeyPreview: auth.APIKey{Prefix: k.KeyPrefix, Last4: k.KeyLast4}.Preview(), RevokedAt: k.RevokedAt}
}

// apiKeyBody is the body of create and update; validation (lengths, the scope enum) already ran.
type apiKeyBody struct {
	Name   *string  `json:"name"`
	Scopes []string `json:"scopes"`
	Active *bool    `json:"active"`
}

// checkScopes drops repeated scopes and refuses admin:all beside another one (400, not the original's 500).
func checkScopes(scopes []string) ([]string, error) {
	if scopes == nil {
		return nil, nil
	}
	var out []string
	for _, sc := range scopes {
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if slices.Contains(out, scopeAdminAll) && len(out) > 1 {
		msg := "admin:all cannot be combined with other scopes"
		return nil, errInvalid(msg, map[string]any{"fields": []fieldError{{Field: "scopes", Message: msg}}})
	}
	return out, nil
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request) error {
	var body apiKeyBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	scopes, err := checkScopes(body.Scopes)
	if err != nil {
		return err
	}
	id := identityOf(r)
	text, key := auth.NewAPIKey()
	row, err := one(s, r, s.q.APIKeyCreate, db.APIKeyCreateParams{OrgID: id.OrgID, Name: *body.Name,
		KeyHash: key.Hash[:], KeyPrefix: key.Prefix, KeyLast4: key.Last4, Scopes: scopes, CreatedBy: &id.UserID})
	if err != nil {
		return err
	}
	return respond(w, http.StatusCreated, map[string]any{"key": text, "record": publicKey(row)})
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request) error {
	rows, err := one(s, r, s.q.APIKeyList, identityOf(r).OrgID)
	if err != nil {
		return err
	}
	out := make([]apiKey, len(rows))
	for i, k := range rows {
		out[i] = publicKey(k)
	}
	return respond(w, http.StatusOK, out)
}

// updateAPIKey renames a key, changes its scopes, or revokes (active false) or restores it; the change
// counts on every server process from the next request on.
func (s *Server) updateAPIKey(w http.ResponseWriter, r *http.Request) error {
	var body apiKeyBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if body.Name == nil && body.Scopes == nil && body.Active == nil {
		return errInvalid("At least one field must be provided", nil)
	}
	scopes, err := checkScopes(body.Scopes)
	if err != nil {
		return err
	}
	row, err := one(s, r, s.q.APIKeyUpdate, db.APIKeyUpdateParams{Name: body.Name, Scopes: scopes,
		Active: body.Active, OrgID: identityOf(r).OrgID, ID: pathUUID(r, "id")})
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound("API key not found")
	}
	if err != nil {
		return err
	}
	return respond(w, http.StatusOK, publicKey(row))
}

func (s *Server) deleteAPIKey(w http.ResponseWriter, r *http.Request) error {
	n, err := one(s, r, s.q.APIKeyDelete, db.APIKeyDeleteParams{OrgID: identityOf(r).OrgID, ID: pathUUID(r, "id")})
	if err != nil {
		return err
	}
	if n == 0 {
		return errNotFound("API key not found")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// auditLog lists the organization's audit rows, newest first, before the `before` cursor (the created_at
// of the last row of the previous page).
func (s *Server) auditLog(w http.ResponseWriter, r *http.Request) error {
	p := db.AuditListParams{OrgID: identityOf(r).OrgID, Event: queryString(r, "event"),
		RowLimit: int32(queryInt(r, "limit", 50))}
	if v := r.URL.Query().Get("before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return errInvalid("before: must be an ISO 8601 date-time with an offset",
				map[string]any{"fields": []fieldError{{Field: "before", Message: "must be a date-time"}}})
		}
		p.Before = &t
	}
	rows, err := one(s, r, s.q.AuditList, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": rows, "count": len(rows)})
	return nil
}
