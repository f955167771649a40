package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/app"
	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/config"
	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/events"
	"github.com/fieldtrack/fieldtrack/internal/identity"
	"github.com/fieldtrack/fieldtrack/internal/migration"
	"github.com/fieldtrack/fieldtrack/internal/seed"
)

func serve(ctx context.Context) error {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	if err := cfg.ValidateServe(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return err
	}
	return app.Run(ctx, cfg, ln, app.NewLogger(cfg))
}

func databaseURL() (string, error) {
	u := os.Getenv("DATABASE_URL")
	if u == "" {
		return "", errors.New("DATABASE_URL is required (make run and make test set it for the local cluster)")
	}
	return u, nil
}

func migrateCmd(args []string) error {
	if len(args) == 0 {
		return errors.New("migrate needs up, down N or version")
	}
	url, err := databaseURL()
	if err != nil {
		return err
	}
	m, err := migration.Open(url)
	if err != nil {
		return err
	}
	defer m.Close()
	switch args[0] {
	case "up":
		before, _, err := m.Version()
		if err != nil {
			return err
		}
		if err := m.Up(); err != nil {
			return err
		}
		after, _, err := m.Version()
		if err != nil {
			return err
		}
		if before < snapshotsVersion && after >= snapshotsVersion {
			if err := buildSnapshots(context.Background(), url); err != nil {
				return fmt.Errorf("build the snapshots of existing rows (run `fieldtrack reconcile` again): %w", err)
			}
		}
		// The outbox slot must exist before anything writes events, or those events would sit outside
		// the WAL the listener reads (the listener would hand them off from the table when it creates
		// the slot itself, but only then). It is created as the listener logs in (LISTENER_DATABASE_URL,
		// default DATABASE_URL): that login has REPLICATION, an owner usually has not.
		if err := ensureSlot(); err != nil {
			fmt.Fprintln(os.Stderr, "fieldtrack: warning: could not create the outbox replication slot now "+
				"(the listener creates it when it starts):", err)
		}
	case "down":
		if len(args) != 2 {
			return errors.New("migrate down needs a count (or all)")
		}
		n := 0
		if args[1] != "all" {
			if n, err = strconv.Atoi(args[1]); err != nil || n < 1 {
				return fmt.Errorf("migrate down: %q is not a positive count", args[1])
			}
		}
		if err := m.Down(n); err != nil {
			return err
		}
	case "version":
	default:
		return fmt.Errorf("migrate: unknown action %q", args[0])
	}
	v, dirty, err := m.Version()
	if err != nil {
		return err
	}
	fmt.Printf("migration version %d (dirty=%v)\n", v, dirty)
	return nil
}

// ensureSlot creates the outbox slot with the listener's login (LISTENER_DATABASE_URL, which defaults to
// DATABASE_URL). It returns the configuration's error when the environment does not load.
func ensureSlot() error {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	return events.EnsureSlot(context.Background(), cfg.ListenerDatabaseURL)
}

func tokenCmd(args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	org := fs.String("org", "", "organization id (required)")
	role := fs.String("role", "", "ADMIN or EMPLOYEE (required)")
	employee := fs.String("employee", "", "employee id (required for EMPLOYEE)")
	sub := fs.String("sub", "", "user id (default: random)")
	email := fs.String("email", "", "email claim")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	if len(cfg.JWTSecret) == 0 {
		return errors.New("token needs JWT_SECRET")
	}
	orgID, err := uuid.Parse(*org)
	if err != nil {
		return errors.New("--org must be a UUID")
	}
	if *role != "ADMIN" && *role != "EMPLOYEE" {
		return errors.New("--role must be ADMIN or EMPLOYEE")
	}
	o := auth.MintOptions{Subject: *sub, Role: auth.Role(*role), OrgID: orgID, Email: *email, TTL: *ttl,
		Audience: cfg.JWTAudience, Issuer: cfg.JWTIssuer}
	if *employee != "" {
		if o.EmployeeID.UUID, err = uuid.Parse(*employee); err != nil {
			return errors.New("--employee must be a UUID")
		}
		o.EmployeeID.Valid = true
	} else if *role == "EMPLOYEE" {
		return errors.New("--employee is required for EMPLOYEE tokens")
	}
	tok, err := auth.Mint(cfg.JWTSecret, o)
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}

func seedCmd(ctx context.Context) error {
	url, err := databaseURL()
	if err != nil {
		return err
	}
	if err := seed.Load(ctx, url); err != nil {
		return err
	}
	fmt.Println("Demo organization ready: Demo Field Services (" + seed.DemoOrgID.String() + ")")
	if pw := os.Getenv("DEMO_PASSWORD"); pw != "" {
		if err := demoLogins(ctx, url, pw); err != nil {
			return err
		}
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil || len(cfg.JWTSecret) == 0 {
		fmt.Println("Set JWT_SECRET to have tokens printed here.")
		return err
	}
	mint := func(o auth.MintOptions) (string, error) {
		o.OrgID, o.TTL, o.Audience, o.Issuer = seed.DemoOrgID, 12*time.Hour, cfg.JWTAudience, cfg.JWTIssuer
		return auth.Mint(cfg.JWTSecret, o)
	}
	admin, err := mint(auth.MintOptions{Subject: seed.DemoAdminUserID.String(), Role: auth.RoleAdmin,
		Email: "admin@demo.fieldtrack.test"})
	if err != nil {
		return err
	}
	employee, err := mint(auth.MintOptions{Subject: seed.DemoEmployeeUID.String(), Role: auth.RoleEmployee,
		EmployeeID: uuid.NullUUID{UUID: seed.DemoEmployeeID, Valid: true}, Email: "asha.rao@demo.fieldtrack.test"})
	if err != nil {
		return err
	}
	port := strconv.Itoa(cfg.Port)
	fmt.Printf(`
ADMIN token (12 h):
  %s

EMPLOYEE token for Asha Rao (12 h):
  %s

Try:
  curl -s -X POST -H "Authorization: Bearer $EMPLOYEE_TOKEN" http://localhost:%s/attendance/check-in
  curl -s -H "Authorization: Bearer $ADMIN_TOKEN" "http://localhost:%s/admin/sessions?status=active"

with:
  export ADMIN_TOKEN=%s
  export EMPLOYEE_TOKEN=%s
`, admin, employee, port, port, admin, employee)
	return nil
}

// demoLogins gives the demo accounts the password pw and prints them.
func demoLogins(ctx context.Context, url, pw string) error {
	pool, err := db.NewPool(ctx, db.PoolConfig{URL: url, MaxConns: 2})
	if err != nil {
		return err
	}
	defer pool.Close()
	fmt.Println("\nLogins (the dashboard, or POST /auth/v1/token?grant_type=password), password " + pw + ":")
	for _, email := range seed.DemoLogins {
		if err := identity.EnsurePassword(ctx, pool, email, pw); err != nil {
			return err
		}
		fmt.Println("  " + email)
	}
	return nil
}
