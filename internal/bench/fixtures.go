package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/auth"
	"github.com/fieldtrack/fieldtrack/internal/db"
)

// The benchmark's fixtures, written through the owner pool: the GPS section's fleet of employees with
// open sessions, and the events section's organization with its webhook.

// tokenTTL outlives any run Config.Validate allows.
const tokenTTL = 6 * time.Hour

// minter signs the tokens of a run.
type minter func(auth.MintOptions) (string, error)

// mint signs a token the server under test accepts: its secret, audience and issuer, living the run.
func (c Config) mint(o auth.MintOptions) (string, error) {
	o.Audience, o.Issuer, o.TTL = auth.DefaultAudience, c.Issuer, tokenTTL
	return auth.Mint(c.Secret, o)
}

// newFleet creates one organization with n employees, each with a user and a session checked in an
// hour ago, in one transaction through the owner pool, and mints an EMPLOYEE token for each.
func newFleet(ctx context.Context, pool *pgxpool.Pool, n int, mint minter) (*fleet, error) {
	f := &fleet{orgID: uuid.New()}
	checkin := time.Now().Add(-time.Hour).Truncate(time.Second)
	users := make([]uuid.UUID, n)
	employees := make([]uuid.UUID, n)
	sessions := make([]uuid.UUID, n)
	for i := range n {
		users[i], employees[i], sessions[i] = uuid.New(), uuid.New(), uuid.New()
		tok, err := mint(auth.MintOptions{
			Subject: users[i].String(), Role: auth.RoleEmployee, OrgID: f.orgID,
			EmployeeID: uuid.NullUUID{UUID: employees[i], Valid: true},
		})
		if err != nil {
			return nil, fmt.Errorf("mint token: %w", err)
		}
		f.members = append(f.members, &member{employeeID: employees[i], sessionID: sessions[i],
			token: tok, checkinAt: checkin, index: i})
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		steps := []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO organizations (id, name) VALUES ($1, $2)`,
				[]any{f.orgID, "Benchmark " + strconv.FormatInt(time.Now().Unix(), 10)}},
			{`INSERT INTO users (organization_id, id, email, role)
			  SELECT $1, u, 'bench-' || u || '@example.test', 'EMPLOYEE' FROM unnest($2::uuid[]) AS u`,
				[]any{f.orgID, users}},
			{`INSERT INTO employees (organization_id, id, user_id, name, employee_code)
			  SELECT $1, e, u, 'Bench employee ' || i, 'BENCH' || lpad(i::text, 6, '0')
			  FROM unnest($2::uuid[], $3::uuid[]) WITH ORDINALITY AS x(e, u, i)`,
				[]any{f.orgID, employees, users}},
			{`INSERT INTO attendance_sessions (organization_id, id, employee_id, checkin_at)
			  SELECT $1, s, e, $4 FROM unnest($2::uuid[], $3::uuid[]) AS x(s, e)`,
				[]any{f.orgID, sessions, employees, checkin}},
		}
		for _, s := range steps {
			if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
				return fmt.Errorf("fixtures: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// eventsFixture is the section's organization: an admin (for the SSE stream) and one webhook subscribed
// to eventsType, pointing at the receiver.
type eventsFixture struct {
	orgID, adminID, webhookID uuid.UUID
	token                     string
}

func newEventsFixture(ctx context.Context, pool *pgxpool.Pool, mint minter, hookURL string) (eventsFixture, error) {
	f := eventsFixture{orgID: uuid.New(), adminID: uuid.New()}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return f, err
	}
	hookSecret := "whsec_" + base64.StdEncoding.EncodeToString(raw)
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO organizations (id, name) VALUES ($1, $2)`,
			f.orgID, "Benchmark events "+strconv.FormatInt(time.Now().Unix(), 10)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO users (organization_id, id, email, role) VALUES ($1, $2, $3, 'ADMIN')`,
			f.orgID, f.adminID, "bench-admin-"+f.adminID.String()+"@example.test"); err != nil {
			return err
		}
		// As the owner: the API would refuse an http:// or loopback URL in production.
		return tx.QueryRow(ctx, `INSERT INTO webhooks (organization_id, url, secret, events)
			VALUES ($1, $2, $3, ARRAY['`+eventsType+`']) RETURNING id`, f.orgID, hookURL, hookSecret).Scan(&f.webhookID)
	})
	if err != nil {
		return f, fmt.Errorf("events fixtures: %w", err)
	}
	f.token, err = mint(auth.MintOptions{Subject: f.adminID.String(), Role: auth.RoleAdmin, OrgID: f.orgID})
	return f, err
}

// org is the fixture's organization, for every event (produce's orgOf).
func (f eventsFixture) org(int64) uuid.UUID { return f.orgID }

// waitSlotActive waits until a listener streams from the outbox slot and returns the slot's name.
func waitSlotActive(ctx context.Context, pool *pgxpool.Pool, limit time.Duration) (string, error) {
	deadline := time.Now().Add(limit)
	for {
		st, err := db.New().ReplicationSlotStatus(ctx, pool)
		if err != nil {
			return "", fmt.Errorf("slot state: %w", err)
		}
		if st.Active {
			return st.SlotName, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no listener streams from slot %s after %s: is EVENTS_LISTENER_ENABLED off?",
				st.SlotName, limit)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
