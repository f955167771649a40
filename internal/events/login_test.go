package events_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/events"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

// Roles are cluster-wide, so these tests change none: they log in as each role the migrations made.
func TestCheckLogins_ListenerMustNotBeAbleToActAsTheAPIAndThePoolNeedsNoReplication(t *testing.T) {
	t.Parallel()
	base := testfactory.URL(t)
	cases := []struct {
		name, login string // empty login: DATABASE_URL's own, the test cluster's superuser
		asWorker    bool   // switched to fieldtrack_worker first, as the leader-lock connection is
		listenerErr string // what CheckListenerLogin's refusal says; empty: accepted
		poolOK      bool
	}{
		{"the superuser make run and make test use", "", false, "is a superuser", false},
		{"fieldtrack_authenticator, serve's pool login", "fieldtrack_authenticator", false,
			"may switch to fieldtrack_api", true},
		{"fieldtrack_authenticator acting as fieldtrack_worker", "fieldtrack_authenticator", true,
			"may switch to fieldtrack_api", true},
		{"fieldtrack_listener", "fieldtrack_listener", false, "", false},
		{"fieldtrack_listener acting as fieldtrack_worker", "fieldtrack_listener", true, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			u := base
			if tc.login != "" {
				u = testfactory.LoginAs(t, base, tc.login)
			}
			conn, err := pgx.Connect(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if tc.asWorker {
				if err := db.New().ConnectionAsWorker(ctx, conn); err != nil {
					t.Fatal(err)
				}
			}

			err = events.CheckListenerLogin(ctx, conn)
			switch {
			case tc.listenerErr == "" && err != nil:
				t.Fatalf("CheckListenerLogin = %v, want the login accepted", err)
			case tc.listenerErr != "" && !errors.Is(err, events.ErrLoginTooBroad):
				t.Fatalf("CheckListenerLogin = %v, want ErrLoginTooBroad", err)
			case tc.listenerErr != "":
				msg := err.Error()
				for _, want := range []string{tc.listenerErr, "LISTENER_DATABASE_URL", "fieldtrack_listener"} {
					if !strings.Contains(msg, want) {
						t.Errorf("refusal %q does not say %q", msg, want)
					}
				}
				if strings.Contains(msg, "\n") {
					t.Errorf("refusal %q is more than one line", msg)
				}
			}

			err = events.CheckPoolLogin(ctx, conn)
			switch {
			case tc.poolOK && err != nil:
				t.Fatalf("CheckPoolLogin = %v, want the login accepted", err)
			case !tc.poolOK && !errors.Is(err, events.ErrLoginTooBroad):
				t.Fatalf("CheckPoolLogin = %v, want ErrLoginTooBroad (REPLICATION)", err)
			case !tc.poolOK && !strings.Contains(err.Error(), "fieldtrack_authenticator"):
				t.Fatalf("CheckPoolLogin = %v, want the fix named", err)
			}
		})
	}
}

// In production the listener checks its login on every connection: a login that may act as the API never
// leads, and the refusal is its status's last error.
func TestListener_RefusingAPILoginsNeverLeadsAsOne(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	l := events.NewListener(testfactory.URL(t), testfactory.Pool(t), slog.New(slog.NewTextHandler(io.Discard, nil))).
		RefuseAPILogin(true)
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	testfactory.Eventually(t, 10*time.Second, "the listener to refuse its login", func() (bool, error) {
		return strings.Contains(l.Status().LastError, "fieldtrack_listener"), nil
	})
	if st := l.Status(); st.Leader || st.Live {
		t.Fatalf("status %+v: a refused listener neither leads nor stands by", st)
	}
}

// Logging in as fieldtrack_listener, which may not act as the API, `migrate up`'s EnsureSlot creates the
// slot and the listener (refusing API logins, as in production) consumes it: the walsender runs as
// fieldtrack_listener, and the hand-off (through the owner's pool here) stamps the events.
//
// Not parallel: creating a logical slot waits for every transaction running in the cluster to end, and
// then for the next running-transactions record (every 15 s under load), so this test and the other
// tests that migrate a scratch database and create a slot there slow each other down past their timeouts.
func TestListener_RunsAsFieldtrackListener(t *testing.T) {
	ownerURL, pool := testfactory.MigratedDatabase(t, 4)
	listenerURL := testfactory.LoginAs(t, ownerURL, "fieldtrack_listener")

	if err := events.EnsureSlot(context.Background(), listenerURL); err != nil {
		t.Fatalf("EnsureSlot as fieldtrack_listener: %v", err)
	}
	if err := events.EnsureSlot(context.Background(), listenerURL); err != nil {
		t.Fatalf("EnsureSlot again (the slot exists): %v", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM pg_replication_slots WHERE database = current_database()`); n != 1 {
		t.Fatalf("%d slots after EnsureSlot, want 1", n)
	}
	org := testfactory.NewOrgIn(t, pool)
	testfactory.NewEmployeeIn(t, pool, org, "Written after the slot")

	ctx, cancel := context.WithCancel(context.Background())
	l := events.NewListener(listenerURL, pool, slog.New(slog.NewTextHandler(io.Discard, nil))).RefuseAPILogin(true)
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	testfactory.Eventually(t, 30*time.Second, "the event to be handed off through the slot", func() (bool, error) {
		return count(t, pool, `SELECT count(*) FROM webhook_events WHERE stream_id IS NOT NULL`) == 1, nil
	})
	var walsender string
	if err := pool.QueryRow(context.Background(), `SELECT a.usename FROM pg_replication_slots s
		JOIN pg_stat_activity a ON a.pid = s.active_pid WHERE s.database = current_database()`).Scan(&walsender); err != nil {
		t.Fatal(err)
	}
	if walsender != "fieldtrack_listener" {
		t.Fatalf("the slot is consumed by %q, want fieldtrack_listener", walsender)
	}
	if st := l.Status(); !st.Leader || st.LastError != "" {
		t.Fatalf("status %+v, want leading without errors", st)
	}
}
