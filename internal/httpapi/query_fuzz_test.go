package httpapi

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
)

// paramRoute is an operation of openapi.yaml with query or path parameters, and the caller to call it as.
type paramRoute struct {
	method, pattern string
	caller          string
	route           *routers.Route
	params          openapi3.Parameters
}

// employeeCallers are the routes with parameters that an employee calls (employee-only, or reading the
// parameters only for a caller with an employee); every other one is called as an admin.
var employeeCallers = []string{
	"GET /locations/my-route", "GET /attendance/my-sessions", "GET /expenses/my", "GET /leaderboard",
	"POST /attendance/{sessionId}/recalculate",
}

// paramRoutes lists the operations with query or path parameters, in a stable order.
func paramRoutes(sp *spec) []paramRoute {
	var out []paramRoute
	for path, item := range sp.doc.Paths.Map() {
		for method, op := range item.Operations() {
			params := append(slices.Clone(item.Parameters), op.Parameters...)
			if !slices.ContainsFunc(params, func(p *openapi3.ParameterRef) bool { return p.Value.In != "header" }) {
				continue
			}
			caller := "admin" // public routes ignore the token, or (under /auth/v1) check it themselves
			if slices.Contains(employeeCallers, method+" "+path) {
				caller = "employee"
			}
			out = append(out, paramRoute{method: method, pattern: path, caller: caller,
				route: sp.operation(method, path), params: params})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].method+out[i].pattern < out[j].method+out[j].pattern })
	return out
}

// key names the route in fuzz inputs: method and pattern.
func (pr paramRoute) key() string { return pr.method + " " + pr.pattern }

// target is the route's request target with id as every path parameter and the query.
func (pr paramRoute) target(id, query string) string {
	path := pr.pattern
	for _, p := range pr.params {
		if p.Value.In == "path" {
			path = strings.ReplaceAll(path, "{"+p.Value.Name+"}", id)
		}
	}
	if query != "" {
		path += "?" + query
	}
	return path
}

func (pr paramRoute) has(name string) bool {
	return slices.ContainsFunc(pr.params, func(p *openapi3.ParameterRef) bool { return p.Value.Name == name })
}

// sampleValues are values to try for a parameter of the schema s: its enum, and the edges of its type.
func sampleValues(s *openapi3.Schema) []string {
	var out []string
	for _, e := range s.Enum {
		if v, ok := e.(string); ok {
			out = append(out, v, strings.ToLower(v))
		}
	}
	switch {
	case s.Type.Is("integer"):
		out = append(out, "1", "2", "0", "-1", "50", "100", "101", "1.0", "1e2", "0x10", "+5", " 1", "",
			"2147483648", "9223372036854775807", "99999999999999999999")
	case s.Type.Is("number"):
		out = append(out, "0", "12.5", "-0", "1e400", "NaN", "Inf", "0x1p4", "1_0")
	case s.Format == "uuid":
		out = append(out, fuzzID, strings.ToUpper(fuzzID), "not-a-uuid", "{"+fuzzID+"}", "")
	default:
		out = append(out, "", "x", "weird", "2026-03-01T09:30:00Z", "2026-03-01", "2026-03-01T09:30:00",
			"9999-12-31T23:59:59.999999999+14:00", strings.Repeat("x", 300))
	}
	return out
}

// FuzzQueryParams sends arbitrary query strings, path ids and Last-Event-ID headers to every operation with
// parameters, through the real route table as the right caller: the answer is a 4xx in the error envelope
// that openapi.yaml lists, or the request reaches the database; never another 5xx or a panic. It also
// checks the readers the handlers use once the document has validated a request: pageOf (the OFFSET it
// sends is the page's first row, or past every row), timeRange and lastEventID (nil or a 400).
func FuzzQueryParams(f *testing.F) {
	sp, err := loadSpec()
	if err != nil {
		f.Fatal(err)
	}
	routes := paramRoutes(sp)
	keys := make([]string, len(routes))
	for i, pr := range routes {
		keys[i] = pr.key()
		f.Add(pr.key(), fuzzID, "", "")
		for _, p := range pr.params {
			if p.Value.In != "query" {
				continue
			}
			for _, v := range sampleValues(p.Value.Schema.Value) {
				f.Add(pr.key(), fuzzID, url.Values{p.Value.Name: {v}}.Encode(), "")
			}
		}
		if pr.has("page") {
			f.Add(pr.key(), fuzzID, "page=3&limit=20", "")
			f.Add(pr.key(), fuzzID, "page=1&page=2&limit=20", "")
		}
		if pr.has("from") {
			f.Add(pr.key(), fuzzID, "from=2026-03-01T00:00:00Z&to=2026-03-31T23:59:59%2B05:30", "")
			f.Add(pr.key(), fuzzID, "from=2026-03-31T00:00:00Z&to=2026-03-01T00:00:00Z", "")
		}
		if strings.Contains(pr.pattern, "{") {
			for _, id := range []string{"", "123", strings.ToUpper(fuzzID), "urn:uuid:" + fuzzID, fuzzID + "%0A", "%2F"} {
				f.Add(pr.key(), id, "", "")
			}
		}
		if pr.pattern == eventsPath {
			for _, h := range []string{"0", "42", "-1", "x", "9223372036854775808", "+7"} {
				f.Add(pr.key(), fuzzID, "", h)
				f.Add(pr.key(), fuzzID, "last_event_id="+url.QueryEscape(h), "")
			}
		}
	}
	f.Add(routes[0].key(), fuzzID, "a=1;b=2&%zz", "")
	fs := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, route, id, query, lastEventIDHeader string) {
		pr := routes[pick(route, keys)]
		header := http.Header{}
		if token := fs.token(pr.caller); token != "" {
			header.Set("Authorization", "Bearer "+token)
		}
		if lastEventIDHeader != "" {
			header.Set("Last-Event-ID", lastEventIDHeader)
		}
		r, ok := fuzzRequest(pr.method, pr.target(id, query), nil, header)
		if !ok {
			return
		}
		rctx := chi.NewRouteContext()
		if !fs.mux.Match(rctx, pr.method, r.URL.Path) || rctx.RoutePattern() != pr.pattern {
			return // the id made it another route (or none)
		}
		checkReaders(t, fs.server.spec, pr, r.Clone(context.WithValue(r.Context(), chi.RouteCtxKey, rctx)))
		fs.serve(t, r)
	})
}

// checkReaders validates r as the route table does and, when it passes, reads it as the handlers do.
func checkReaders(t *testing.T, sp *spec, pr paramRoute, r *http.Request) {
	t.Helper()
	if err := sp.validate(r, pr.route); err != nil {
		expect4xx(t, r, "validation", err)
		return
	}
	if pr.has("page") {
		p := pageOf(r, 50)
		want := int64(p.Page-1) * int64(p.Limit)
		if p.Page > 1 && p.Limit > 0 && int64(p.Page-1) > math.MaxInt32/int64(p.Limit) {
			want = math.MaxInt32 // past the end of every list
		}
		if p.Page < 1 || p.Limit < 1 || int64(p.offset()) != want {
			t.Fatalf("%s: validated page %+v gives OFFSET %d, want %d", r.URL.RequestURI(), p, p.offset(), want)
		}
	}
	if pr.has("from") {
		if _, _, err := timeRange(r, 30); err != nil {
			expect4xx(t, r, "timeRange", err)
		}
	}
	if pr.pattern == eventsPath {
		ids, err := newStreamIDs(make([]byte, 32), uuid.Nil)
		if err != nil {
			t.Fatal(err)
		}
		if n, known, _ := lastEventID(r, ids); known && ids.id(n) != r.Header.Get("Last-Event-ID") &&
			ids.id(n) != r.URL.Query().Get("last_event_id") {
			t.Fatalf("%s: lastEventID %d", r.URL.RequestURI(), n)
		}
	}
}

func expect4xx(t *testing.T, r *http.Request, what string, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Status < 400 || e.Status >= 500 {
		t.Fatalf("%s %s: %s failed with %#v, want a 4xx *Error", r.Method, r.URL.RequestURI(), what, err)
	}
}

// TestFuzzQueryParams_CallsEveryRouteAsItsCaller keeps the fuzz target's callers right: every operation with
// parameters, called with a valid id and no query, gets past authentication and the role guard.
func TestFuzzQueryParams_CallsEveryRouteAsItsCaller(t *testing.T) {
	t.Parallel()
	fs := newFuzzServer(t)
	routes := paramRoutes(fs.server.spec)
	if len(routes) < 20 {
		t.Fatalf("only %d operations with parameters", len(routes))
	}
	for _, pr := range routes {
		header := http.Header{}
		if token := fs.token(pr.caller); token != "" {
			header.Set("Authorization", "Bearer "+token)
		}
		r, _ := fuzzRequest(pr.method, pr.target(fuzzID, ""), nil, header)
		if res := fs.serve(t, r); res.Status == http.StatusUnauthorized || res.Status == http.StatusForbidden {
			t.Errorf("%s %s as %q: %d %s", pr.method, pr.pattern, pr.caller, res.Status, res.Raw)
		}
	}
}
