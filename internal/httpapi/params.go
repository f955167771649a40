package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
)

// Reading a request's parameters. The OpenAPI document has validated them before the handler runs (types,
// ranges, UUID formats), so these only convert and apply defaults.

// page is a validated page request.
type page struct {
	Page  int
	Limit int
}

func (p page) offset() int32 { return int32((p.Page - 1) * p.Limit) }

// pageOf reads page and limit with defaults.
func pageOf(r *http.Request, defaultLimit int) page {
	return page{Page: queryInt(r, "page", 1), Limit: queryInt(r, "limit", defaultLimit)}
}

func queryInt(r *http.Request, name string, def int) int {
	if n, err := strconv.Atoi(r.URL.Query().Get(name)); err == nil {
		return n
	}
	return def
}

// queryUUID reads an optional UUID parameter; nil when absent.
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

// pathUUID reads a UUID path parameter.
func pathUUID(r *http.Request, name string) uuid.UUID {
	return uuid.MustParse(chi.URLParam(r, name))
}

// decodeBody decodes a JSON body that already passed validation; unknown fields are ignored, and an empty
// body (where the document allows one) leaves dst as it is.
func decodeBody(r *http.Request, dst any) error {
	if err := json.NewDecoder(r.Body).Decode(dst); err != nil && !errors.Is(err, io.EOF) {
		return errInvalid("Invalid JSON body", nil)
	}
	return nil
}
