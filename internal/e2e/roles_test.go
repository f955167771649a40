package e2e

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// TestServe_InProductionTheListenerAsItsOwnLoginDeliversToStreamAndWebhooks runs `fieldtrack serve` with
// APP_ENV=production and the listener logging in as fieldtrack_listener. It starts (that login may not act
// as the API), and a check-in reaches the admin's stream and a webhook; the slot is consumed by
// fieldtrack_listener. The pool logs in as fieldtrack_authenticator, the production login that can only
// switch roles. Its own database: the listener must lead, and production delivers webhooks over https only (to a
// receiver whose certificate the server trusts through SSL_CERT_FILE).
func TestServe_InProductionTheListenerAsItsOwnLoginDeliversToStreamAndWebhooks(t *testing.T) {
	t.Parallel()
	ownerURL, owner := testfactory.MigratedDatabase(t, 4)

	type delivery struct{ event, id string }
	received := make(chan delivery, 16)
	receiver := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received <- delivery{r.Header.Get("X-FieldTrack-Event"), r.Header.Get("webhook-id")}
	}))
	t.Cleanup(receiver.Close)
	certFile := filepath.Join(t.TempDir(), "receiver.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: receiver.Certificate().Raw})
	if err := os.WriteFile(certFile, cert, 0o600); err != nil {
		t.Fatal(err)
	}

	org := testfactory.NewOrgIn(t, owner)
	emp := testfactory.NewEmployeeIn(t, owner, org, "Production")
	if _, err := owner.Exec(context.Background(), `INSERT INTO webhooks (organization_id, url, secret, events)
		VALUES ($1, $2, 'whsec-0123456789abcdef', '{session.checkin}')`, org.ID, receiver.URL); err != nil {
		t.Fatal(err)
	}

	const issuer = "https://issuer.e2e.test"
	p := startProcess(t, "production", map[string]string{"APP_ENV": "production",
		"JWT_ISSUER": issuer, "METRICS_SCRAPE_TOKEN": "e2e-scrape-token",
		"DATABASE_URL":           testfactory.LoginAs(t, ownerURL, "fieldtrack_authenticator"),
		"LISTENER_DATABASE_URL":  testfactory.LoginAs(t, ownerURL, "fieldtrack_listener"),
		"WEBHOOK_WORKER_ENABLED": "true", "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true", "SSL_CERT_FILE": certFile})
	// Creating the slot waits for every transaction running in the cluster (the other tests' too) and then
	// for the next running-transactions record: under load that takes a while, and the deliveries below
	// would wait for it as well.
	testfactory.Eventually(t, 90*time.Second, "the listener to stream from its slot", func() (bool, error) {
		var active bool
		err := owner.QueryRow(context.Background(), `SELECT app.slot_active()`).Scan(&active)
		return active, err
	})
	mint := func(o auth.MintOptions) string {
		o.Issuer = issuer
		tok, err := auth.Mint([]byte(testfactory.Secret), o)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	adminTok := mint(auth.MintOptions{Subject: org.AdminUserID.String(), Role: auth.RoleAdmin, OrgID: org.ID})
	empTok := mint(auth.MintOptions{Subject: emp.UserID.String(), Role: auth.RoleEmployee, OrgID: org.ID,
		EmployeeID: uuid.NullUUID{UUID: emp.ID, Valid: true}})
	stream := openStream(t, adminStream(p.base)+"?token="+url.QueryEscape(adminTok), nil)
	stream.connected(t)

	in := mustAttend(t, p.base, empTok, "check-in")
	expectFrames(t, stream.take(t, 1), []sent{in})
	select {
	case d := <-received:
		if d.event != "session.checkin" || d.id == "" {
			t.Fatalf("webhook delivery %+v, want session.checkin with a webhook-id", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no webhook delivery within 30 s of the check-in")
	}
	// The operators' view counts the attempt once it is recorded, and shows the pool and the dead letters.
	testfactory.Eventually(t, 30*time.Second, "the attempt in /metrics", func() (bool, error) {
		req, err := http.NewRequest(http.MethodGet, p.base+"/metrics", nil)
		if err != nil {
			return false, err
		}
		req.Header.Set("Authorization", "Bearer e2e-scrape-token")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		text := string(body)
		return strings.Contains(text, `fieldtrack_webhook_attempts_total{outcome="success"} 1`+"\n") &&
			strings.Contains(text, "\nfieldtrack_webhook_attempt_duration_seconds_count 1\n") &&
			strings.Contains(text, "\nfieldtrack_webhook_dead_letters 0\n") &&
			strings.Contains(text, "\nfieldtrack_db_pool_acquires_total ") &&
			strings.Contains(text, "\nfieldtrack_sse_drops_total 0\n"), err
	})

	var walsender string
	if err := owner.QueryRow(context.Background(), `SELECT a.usename FROM pg_replication_slots s
		JOIN pg_stat_activity a ON a.pid = s.active_pid WHERE s.database = current_database()`).Scan(&walsender); err != nil {
		t.Fatal(err)
	}
	if walsender != "fieldtrack_listener" {
		t.Fatalf("the slot is consumed by %q, want fieldtrack_listener", walsender)
	}
	if _, warned := p.logs.first("serve's pool login has REPLICATION"); warned {
		t.Fatal("a warning about REPLICATION of fieldtrack_authenticator, which has none")
	}
}

// TestServe_InProductionRefusesAListenerLoginThatMayActAsTheAPI: with one superuser login for everything
// (LISTENER_DATABASE_URL defaulting to DATABASE_URL), production serve stops at start-up with one line that
// names the fix.
func TestServe_InProductionRefusesAListenerLoginThatMayActAsTheAPI(t *testing.T) {
	t.Parallel()
	bin := fieldtrackBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve")
	cmd.Env = append(os.Environ(), "APP_ENV=production", "DATABASE_URL="+testfactory.URL(t), "LISTENER_DATABASE_URL=",
		"EVENTS_LISTENER_ENABLED=true", "JWT_SECRET="+testfactory.Secret, "JWT_ISSUER=https://issuer.e2e.test",
		"METRICS_SCRAPE_TOKEN=e2e-scrape-token", "PORT="+strconv.Itoa(freePort(t)),
		"RECEIPTS_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("serve ended with %v, want exit status 1; output:\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 {
		t.Fatalf("serve printed %d lines, want one:\n%s", len(lines), out)
	}
	for _, want := range []string{"fieldtrack: ", "is a superuser", "LISTENER_DATABASE_URL", "fieldtrack_listener"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("refusal %q does not say %q", lines[0], want)
		}
	}
}

// Outside production the same login is only warned about: make run and the tests log in as one superuser.
func TestServe_OutsideProductionWarnsAboutAListenerLoginThatMayActAsTheAPI(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	if _, ok := srv.logs.first("the listener's login would be refused with APP_ENV=production"); !ok {
		t.Fatal("no warning about the listener's superuser login")
	}
}
