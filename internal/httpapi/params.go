package httpapi

import (
	"bytes"
	"cmp"
	"encoding"
	"encoding/json"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

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
// "URL": null}), a value the validation never looked at, so such keys are dropped first. Telling whether
// a body has one is a scan of its bytes; only a body that has (or might have) one pays for the dropping.
func decodeBody(r *http.Request, dst any) error {
	body, err := readBody(r)
	if err != nil {
		return errInvalid("Invalid JSON body", nil)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if !hasInexactKey(body, namesOf(reflect.TypeOf(dst))) {
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(dst); err != nil {
			return errInvalid("Invalid JSON body", nil)
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
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

// fieldNames are the JSON names of the fields of a type and of the structs inside it: exactly, and in
// lower case.
type fieldNames struct {
	exact, lower map[string]bool
	longest      int
}

var fieldNamesCache sync.Map // reflect.Type -> *fieldNames

func namesOf(t reflect.Type) *fieldNames {
	if n, ok := fieldNamesCache.Load(t); ok {
		return n.(*fieldNames)
	}
	n := &fieldNames{exact: map[string]bool{}, lower: map[string]bool{}}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for _, f := range reflect.VisibleFields(t) {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.IsExported() && !f.Anonymous && name != "-" {
				name = cmp.Or(name, f.Name)
				n.exact[name], n.lower[strings.ToLower(name)] = true, true
				n.longest = max(n.longest, len(name))
				walk(f.Type)
			}
		}
	}
	walk(t)
	fieldNamesCache.Store(t, n)
	return n
}

// hasInexactKey reports whether a valid JSON text has an object key that encoding/json could match to one
// of names in another case, or one it cannot judge cheaply (a key with escapes or non-ASCII bytes, which
// encoding/json folds too: "ſ" matches "s").
func hasInexactKey(b []byte, names *fieldNames) bool {
	var lower [64]byte
	for i := 0; i < len(b); i++ {
		if b[i] != '"' {
			continue
		}
		j, plain := i+1, true
		for ; j < len(b) && b[j] != '"'; j++ {
			switch {
			case b[j] == '\\':
				plain = false
				j++
			case b[j] >= 0x80:
				plain = false
			}
		}
		k := j + 1
		for k < len(b) && (b[k] == ' ' || b[k] == '\t' || b[k] == '\n' || b[k] == '\r') {
			k++
		}
		if k < len(b) && b[k] == ':' { // a key
			key := b[i+1 : min(j, len(b))]
			if !plain {
				return true
			}
			if len(key) <= names.longest && len(key) <= len(lower) && !names.exact[string(key)] {
				for x, c := range key {
					if 'A' <= c && c <= 'Z' {
						c += 'a' - 'A'
					}
					lower[x] = c
				}
				if names.lower[string(lower[:len(key)])] {
					return true
				}
			}
		}
		i = j
	}
	return false
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
