package httpapi

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/go-chi/chi/v5"
)

// openapiYAML is the API's contract: requests are validated against it and it is served as
// /openapi.json, so the documentation and the validation cannot drift apart.
//
//go:embed openapi.yaml
var openapiYAML []byte

// spec is the loaded OpenAPI document.
type spec struct {
	doc     *openapi3.T
	json    []byte
	options *openapi3filter.Options
	formats map[string]openapi3.StringFormatValidator // string formats the document defines for itself
}

// loadSpec loads the embedded document; it fails when the document is not valid OpenAPI 3.0, or one of
// its examples does not match its schema.
func loadSpec() (*spec, error) { return parseSpec(openapiYAML) }

func parseSpec(yaml []byte) (*spec, error) {
	doc, err := openapi3.NewLoader().LoadFromData(yaml)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	// Examples are validated against their schemas (kin-openapi's default, said here so that it stays on):
	// a wrong example in openapi.yaml stops the server from starting, and so fails every test.
	if err := doc.Validate(context.Background(), openapi3.EnableSchemaFormatValidation(),
		openapi3.EnableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	if err := documentMiddlewareAnswers(doc); err != nil {
		return nil, err
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	// The formats of this document, beside kin-openapi's own (openapi3.SchemaStringFormats).
	formats := map[string]openapi3.StringFormatValidator{
		"uuid": openapi3.NewRegexpFormatValidator(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`),
	}
	opts := &openapi3filter.Options{
		MultiError:          true,
		AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc, // auth runs before validation
		SkipSettingDefaults: true,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{
			openapi3.EnableFormatValidation(),
			openapi3.WithStringFormatValidators(formats),
		},
	}
	return &spec{doc: doc, json: js, options: opts, formats: formats}, nil
}

// documentMiddlewareAnswers adds to every operation the answers that the middleware gives before a handler
// runs, so that openapi.yaml states each of them once, here, instead of on every route: on authenticated
// routes 401 and 403 (authentication, role guard), 429 (rate limits) and 503 (no database connection in
// time, database down); 400 where a request has parameters or a body; 413 and 415 where it has a body.
func documentMiddlewareAnswers(doc *openapi3.T) error {
	errRef := doc.Components.Responses["Error"]
	if errRef == nil {
		return errors.New("openapi.yaml: components.responses.Error is missing")
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			var statuses []int
			if op.Security == nil || len(*op.Security) > 0 {
				statuses = append(statuses, 401, 403, 429, 503)
			}
			if len(op.Parameters)+len(item.Parameters) > 0 || op.RequestBody != nil {
				statuses = append(statuses, 400)
			}
			if op.RequestBody != nil {
				statuses = append(statuses, 413, 415)
			}
			for _, status := range statuses {
				if op.Responses.Status(status) == nil {
					op.Responses.Set(strconv.Itoa(status), &openapi3.ResponseRef{Ref: "#/components/responses/Error", Value: errRef.Value})
				}
			}
		}
	}
	return nil
}

// operation returns the route of method+pattern (chi and OpenAPI write path parameters alike). A route
// missing from the document is a programming error: the server refuses to start.
func (s *spec) operation(method, pattern string) *routers.Route {
	item := s.doc.Paths.Value(pattern)
	if item == nil || item.GetOperation(method) == nil {
		panic(fmt.Sprintf("openapi.yaml has no operation for %s %s", method, pattern))
	}
	return &routers.Route{Spec: s.doc, Path: pattern, PathItem: item, Method: method, Operation: item.GetOperation(method)}
}

// validate checks r against its operation. Failures are 400 with every bad field named, 413 for an
// oversized body and 415 for a body that is not JSON. A body on an operation that takes none is ignored.
func (s *spec) validate(r *http.Request, route *routers.Route) error {
	_, err := s.check(r, route, nil)
	return err
}

// check is validate with the route's compiled body decoder, when it has one (fast, see gpsbody.go): it
// validates and decodes the body in one pass, and a body it takes is returned decoded without kin-openapi
// seeing it; any other body goes through kin-openapi (and is returned nil).
func (s *spec) check(r *http.Request, route *routers.Route, fast func([]byte) (any, bool)) (any, error) {
	input := &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: pathParams(r),
		Route:      route,
		Options:    s.options,
	}
	if route.Operation.RequestBody != nil {
		body, err := readBody(r)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: "PAYLOAD_TOO_LARGE", Message: "Request body is too large"}
			}
			return nil, errInvalid("Could not read the request body", nil)
		}
		if len(bytes.TrimSpace(body)) > 0 && !isJSON(r.Header.Get("Content-Type")) {
			return nil, &Error{Status: http.StatusUnsupportedMediaType, Code: "UNSUPPORTED_MEDIA_TYPE",
				Message: "Content-Type must be application/json"}
		}
		if len(bytes.TrimSpace(body)) == 0 {
			body = nil
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		// The body stays readable after the fast path too: a handler that does not find it decoded reads it.
		if fast != nil {
			if v, ok := fast(body); ok {
				return v, nil
			}
		}
		// kin-openapi picks the decoder by Content-Type; a JSON body always goes through the JSON one.
		r.Header.Set("Content-Type", "application/json")
	} else {
		opts := *s.options
		opts.ExcludeRequestBody = true
		input.Options = &opts
	}
	err := openapi3filter.ValidateRequest(r.Context(), input)
	if err == nil {
		return nil, nil
	}
	return nil, validationError(err)
}

// readBody reads r's body whole: in one allocation of the declared length when the client declared one
// (io.ReadAll grows its buffer from 512 bytes: a 15 kB batch was six copies), up to preallocBody, so that
// a length declared and never sent holds at most that (a GPS batch of 100 fixes fits); a longer body
// grows the buffer as it arrives. The body's reader still enforces the size limit, whatever the declared
// length says.
func readBody(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(int(min(max(r.ContentLength, 0), preallocBody)) + bytes.MinRead) // room for the read that sees the end
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

// preallocBody is the most readBody allocates before the bytes arrive.
const preallocBody = 32 << 10

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func pathParams(r *http.Request) map[string]string {
	rc := chi.RouteContext(r.Context())
	if rc == nil {
		return nil
	}
	out := make(map[string]string, len(rc.URLParams.Keys))
	for i, k := range rc.URLParams.Keys {
		out[k] = rc.URLParams.Values[i]
	}
	return out
}

// fieldError names one bad input field.
type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// validationError turns kin-openapi's errors into one 400 whose message lists "<part>/<field> <reason>"
// (the original API's format) and whose details list each field.
func validationError(err error) *Error {
	var fields []fieldError
	var parts []string
	add := func(part, field, msg string) {
		fields = append(fields, fieldError{Field: field, Message: msg})
		if field != "" {
			part += "/" + field
		}
		parts = append(parts, part+" "+msg)
	}
	for _, re := range requestErrors(err) {
		switch {
		case re.Parameter != nil:
			msg := re.Reason
			if se := schemaErrors(re.Err); len(se) > 0 {
				msg = schemaMessage(se[0])
			} else if msg == "" && re.Err != nil {
				msg = re.Err.Error()
			}
			in := map[string]string{"query": "querystring", "path": "params"}[re.Parameter.In]
			if in == "" {
				in = re.Parameter.In
			}
			add(in, re.Parameter.Name, msg)
		case re.RequestBody != nil:
			se := schemaErrors(re.Err)
			if len(se) == 0 {
				if re.Err == nil && strings.Contains(re.Reason, "required") {
					add("body", "", "Request body is required")
				} else {
					add("body", "", "Invalid JSON body")
				}
				continue
			}
			for _, e := range se {
				add("body", strings.Join(e.JSONPointer(), "."), schemaMessage(e))
			}
		default:
			add("request", "", re.Error())
		}
	}
	if len(fields) == 0 {
		return errInvalid("Invalid request", nil)
	}
	sort.SliceStable(fields, func(i, j int) bool { return fields[i].Field < fields[j].Field })
	sort.Strings(parts)
	return errInvalid(strings.Join(parts, ", "), map[string]any{"fields": fields})
}

// schemaMessage prefers the schema's own x-message (the original API's wording) over the generic reason.
func schemaMessage(e *openapi3.SchemaError) string {
	if e.Schema != nil && e.SchemaField != "required" {
		if m, ok := e.Schema.Extensions["x-message"].(string); ok && m != "" {
			return m
		}
	}
	return e.Reason
}

func requestErrors(err error) []*openapi3filter.RequestError {
	var out []*openapi3filter.RequestError
	var walk func(error)
	walk = func(err error) {
		// Type switches, not errors.As: a RequestError unwraps to the MultiError of its schema errors.
		switch e := err.(type) {
		case openapi3.MultiError:
			for _, inner := range e {
				walk(inner)
			}
		case *openapi3filter.RequestError:
			out = append(out, e)
		}
	}
	walk(err)
	return out
}

func schemaErrors(err error) []*openapi3.SchemaError {
	var out []*openapi3.SchemaError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		switch e := err.(type) {
		case openapi3.MultiError:
			for _, inner := range e {
				walk(inner)
			}
		case *openapi3.SchemaError:
			// A failed allOf (POST /locations) wraps the errors of its parts, which name the fields.
			if e.SchemaField == "allOf" && e.Origin != nil {
				if inner := schemaErrors(e.Origin); len(inner) > 0 {
					out = append(out, inner...)
					return
				}
			}
			out = append(out, e)
		default:
			if u := errors.Unwrap(err); u != nil {
				walk(u)
			}
		}
	}
	walk(err)
	return out
}
