package httpapi

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"
)

// The response check covers every route and status: checkAgainstSpec records each (method, route
// pattern, status) it validated, and TestMain, after a run of the whole package, fails when a status
// openapi.yaml promises was never answered by a real request.
//
// The rule: every status written in openapi.yaml for an operation must be seen on that operation. The
// statuses documentMiddlewareAnswers adds (400, 401, 403, 413, 415, 429, 503 where an operation does
// not write them itself) come from one shared code path (admit, the rate limiter, validation, the
// database adapter), so each of them must be seen on at least one of the operations it was added to,
// not on every one. No operation may have a default response: it would let any status pass the check.

// specCoverage is what checkAgainstSpec saw in this test binary.
var specCoverage = &coverage{seen: map[string]bool{}}

type coverage struct {
	mu   sync.Mutex
	seen map[string]bool // "METHOD pattern status"
}

func (c *coverage) record(method, pattern string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[coverageKey(method, pattern, status)] = true
}

func (c *coverage) saw(method, pattern string, status int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[coverageKey(method, pattern, status)]
}

func coverageKey(method, pattern string, status int) string {
	return method + " " + pattern + " " + strconv.Itoa(status)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && wholePackageRan() {
		missing, err := specCoverage.missing()
		if err != nil {
			fmt.Fprintln(os.Stderr, "spec coverage:", err)
			code = 1
		} else if len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "spec coverage: %d answers openapi.yaml declares were never seen by checkAgainstSpec "+
				"(write a test that gets them through h.call, or remove a status the server cannot answer):\n  %s\n",
				len(missing), strings.Join(missing, "\n  "))
			code = 1
		}
	}
	os.Exit(code)
}

// wholePackageRan tells a run of every test: no -run or -skip filter, not -short, not a listing.
func wholePackageRan() bool {
	for _, name := range []string{"test.run", "test.skip", "test.list"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return !testing.Short()
}

// missing lists, sorted, the declared answers never seen: "METHOD pattern status" for a status the
// operation writes, "status (middleware, on any of N operations)" for one documentMiddlewareAnswers adds.
func (c *coverage) missing() ([]string, error) {
	declared, err := declaredStatuses()
	if err != nil {
		return nil, err
	}
	sp, err := loadSpec()
	if err != nil {
		return nil, err
	}
	var out []string
	added := map[int][]string{} // status → the operations documentMiddlewareAnswers added it to
	for path, item := range sp.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for key := range op.Responses.Map() {
				status, err := strconv.Atoi(key)
				if err != nil {
					return nil, fmt.Errorf("%s %s: response %q is not a status", method, path, key)
				}
				switch {
				case declared[method+" "+path][status]:
					if !c.saw(method, path, status) {
						out = append(out, coverageKey(method, path, status))
					}
				default:
					added[status] = append(added[status], method+" "+path)
				}
			}
		}
	}
	for status, ops := range added {
		if !slices.ContainsFunc(ops, func(op string) bool {
			method, path, _ := strings.Cut(op, " ")
			return c.saw(method, path, status)
		}) {
			out = append(out, fmt.Sprintf("%d (middleware, on any of %d operations, e.g. %s)", status, len(ops), slices.Min(ops)))
		}
	}
	slices.Sort(out)
	return out, nil
}

// declaredStatuses reads openapi.yaml as written, before documentMiddlewareAnswers: "METHOD path" → the
// statuses the document writes for that operation.
func declaredStatuses() (map[string]map[int]bool, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openapiYAML)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			statuses := map[int]bool{}
			for key := range op.Responses.Map() {
				if status, err := strconv.Atoi(key); err == nil {
					statuses[status] = true
				}
			}
			out[method+" "+path] = statuses
		}
	}
	return out, nil
}

func TestSpec_EveryOperationIsARouteAndEveryRouteAnOperation(t *testing.T) {
	t.Parallel()
	h := setup(t)
	var routes []string
	if err := chi.Walk(h.mux, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, method+" "+route)
		if item := h.server.spec.doc.Paths.Value(route); item == nil || item.GetOperation(method) == nil {
			t.Errorf("route %s %s has no operation in openapi.yaml", method, route)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for path, item := range h.server.spec.doc.Paths.Map() {
		for method, op := range item.Operations() {
			if !slices.Contains(routes, method+" "+path) {
				t.Errorf("openapi.yaml describes %s %s, which the route table does not serve", method, path)
			}
			if op.Responses.Default() != nil {
				t.Errorf("%s %s has a default response: it would let any status pass the response check", method, path)
			}
		}
	}
}
