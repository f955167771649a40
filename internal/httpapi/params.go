package httpapi

import (
	"cmp"
	"encoding"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"

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

// offset is the OFFSET of the page's first row. The document bounds limit but not page: a page whose
// first row lies beyond what an int32 counts starts past the end of every list (an empty page), instead
// of wrapping around to a negative OFFSET or to the rows of another page.
func (p page) offset() int32 {
	if p.Page > 1 && p.Limit > 0 && p.Page-1 > math.MaxInt32/p.Limit {
		return math.MaxInt32
	}
	return int32((p.Page - 1) * p.Limit)
}

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
// body (where the document allows one) leaves dst as it is. Keys must name fields exactly, as the document
// validated them: encoding/json alone also fills a field from a key that differs in case ({"url": "…",
// "URL": null}), a value the validation never looked at, so such keys are dropped first.
func decodeBody(r *http.Request, dst any) error {
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return errInvalid("Invalid JSON body", nil)
	}
	exact, err := json.Marshal(exactFields(v, reflect.TypeOf(dst)))
	if err == nil {
		err = json.Unmarshal(exact, dst)
	}
	if err != nil {
		return errInvalid("Invalid JSON body", nil)
	}
	return nil
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// exactFields returns v, a decoded JSON value, keeping of each object decoded into a struct of t (at any
// depth) only the keys that are the JSON name of one of its fields.
func exactFields(v any, t reflect.Type) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if p := reflect.PointerTo(t); p.Implements(jsonUnmarshaler) || p.Implements(textUnmarshaler) {
		return v // decodes itself: time.Time, uuid.UUID, json.RawMessage
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return v
		}
		fields := map[string]reflect.Type{}
		for _, f := range reflect.VisibleFields(t) { // with the fields of embedded structs
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.IsExported() && !f.Anonymous && name != "-" {
				fields[cmp.Or(name, f.Name)] = f.Type
			}
		}
		out := make(map[string]any, len(obj))
		for k, val := range obj {
			if ft, ok := fields[k]; ok {
				out[k] = exactFields(val, ft)
			}
		}
		return out
	case reflect.Map:
		if obj, ok := v.(map[string]any); ok {
			for k, val := range obj {
				obj[k] = exactFields(val, t.Elem())
			}
		}
	case reflect.Slice, reflect.Array:
		if arr, ok := v.([]any); ok {
			for i, val := range arr {
				arr[i] = exactFields(val, t.Elem())
			}
		}
	}
	return v
}
