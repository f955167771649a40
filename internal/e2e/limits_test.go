package e2e

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// Two server processes on one database, as behind a load balancer, with RATE_LIMIT_PROCESSES=2: each
// enforces half of every limit, so an API key with 10 requests a minute gets 5 from each and never more
// than 10 in all; the SSE cap stays per process, so an organization holds its cap on each.
func TestLimits_TwoProcessesShareTheRatesAndEachCapsItsStreams(t *testing.T) {
	t.Parallel()
	env := map[string]string{"RATE_LIMIT_DISABLED": "false", "RATE_LIMIT_PROCESSES": "2",
		"RATE_LIMIT_API_KEY_PER_MIN": "10", "RATE_LIMIT_USER_PER_MIN": "100000", "RATE_LIMIT_ORG_PER_MIN": "100000",
		"RATE_LIMIT_IP_PER_MIN": "100000", "SSE_MAX_STREAMS_PER_ORG": "1"}
	a, b := startProcess(t, "A", env), startProcess(t, "B", env)
	org := testfactory.NewOrg(t)
	text, key := auth.NewAPIKey()
	if _, err := testfactory.Pool(t).Exec(context.Background(), `INSERT INTO api_keys
		(organization_id, name, key_hash, key_prefix, key_last4, scopes) VALUES ($1, 'limits', $2, $3, $4, '{admin:all}')`,
		org.ID, key.Hash[:], key.Prefix, key.Last4); err != nil {
		t.Fatal(err)
	}
	passed := map[string]int{}
	for i := range 30 {
		p := []*process{a, b}[i%2]
		req, err := http.NewRequest("GET", p.base+"/admin/employees", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-Key", text)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		switch res.StatusCode {
		case http.StatusOK:
			passed[p.name]++
		case http.StatusTooManyRequests:
			if res.Header.Get("Retry-After") == "" || res.Header.Get("X-RateLimit-Remaining") != "0" {
				t.Fatalf("429 without Retry-After or X-RateLimit-Remaining 0: %v", res.Header)
			}
		default:
			t.Fatalf("request %d: %d", i, res.StatusCode)
		}
	}
	if passed["A"] != 5 || passed["B"] != 5 {
		t.Fatalf("passed %v, want 5 on each process (10 a minute over 2)", passed)
	}

	admin := header(testfactory.AdminToken(t, org))
	onA, onB := openStream(t, adminStream(a.base), admin), openStream(t, adminStream(b.base), admin)
	onA.connected(t)
	onB.connected(t)
	_, err := connect(context.Background(), adminStream(a.base), admin)
	var st *httpStatus
	if !errors.As(err, &st) || st.Code != http.StatusTooManyRequests {
		t.Fatalf("a second stream on one process: %v, want 429", err)
	}
}
