package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// handlerFunc is an endpoint: it writes a success itself and returns any failure for writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// writeJSON writes v with status. Encoding errors are not reported: the status line is already out.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// respond writes {"success":true,"data":data}.
func respond(w http.ResponseWriter, status int, data any) error {
	writeJSON(w, status, struct {
		Success bool `json:"success"`
		Data    any  `json:"data"`
	}{true, data})
	return nil
}

// respondPage writes a list with its pagination block; total is exact.
func respondPage(w http.ResponseWriter, data any, p page, total int64) error {
	totalPages := int64(0)
	if p.Limit > 0 {
		totalPages = (total + int64(p.Limit) - 1) / int64(p.Limit)
	}
	writeJSON(w, http.StatusOK, struct {
		Success    bool `json:"success"`
		Data       any  `json:"data"`
		Pagination any  `json:"pagination"`
	}{true, data, map[string]int64{
		"page": int64(p.Page), "limit": int64(p.Limit), "total": total, "totalPages": totalPages,
	}})
	return nil
}

// writeError writes the error envelope for err; 5xx are logged with the cause.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toError(err)
	info := infoOf(r.Context())
	if e.Status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "request_id", info.id, "error", err.Error())
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	body := map[string]any{"success": false, "error": e.Message, "code": e.Code, "requestId": info.id}
	if e.Details != nil {
		body["details"] = e.Details
	}
	writeJSON(w, e.Status, body)
}
