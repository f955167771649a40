package bench

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldtrack/fieldtrack/internal/auth"
)

// member is one benchmark employee: its open session, its token, and how many fixes it has handed out.
// During a phase a member belongs to exactly one worker (see owned), so next needs no lock; phases run
// one after another.
type member struct {
	employeeID uuid.UUID
	sessionID  uuid.UUID
	token      string
	checkinAt  time.Time
	index      int   // position in the fleet, spreads the members over the map
	next       int64 // fixes handed out so far, across all phases
}

// fleet is the benchmark organization.
type fleet struct {
	orgID   uuid.UUID
	members []*member
}

// fixStep separates consecutive fixes of a session: fix n is recorded at checkin + (n+1) * fixStep.
// Sessions start an hour ago, so a session has room for 3.6 million fixes, far more than a bounded run
// can send (the workers stop before a fix would reach the present).
const fixStep = time.Millisecond

// fix is one GPS fix.
type fix struct {
	recordedAt time.Time
	lat, lon   float64
	accuracy   float64
	seq        int32
}

// nextFix hands out the member's next fix: a unique recorded_at inside the session (after check-in,
// before now) and a slow walk near Bangalore, a different start per member.
func (m *member) nextFix(now time.Time) (fix, error) {
	n := m.next
	at := m.checkinAt.Add(time.Duration(n+1) * fixStep)
	if !at.Before(now) {
		return fix{}, fmt.Errorf("session %s has no room left for fixes before now", m.sessionID)
	}
	m.next++
	return fix{
		recordedAt: at,
		lat:        12.90 + 0.001*float64(m.index%200) + 0.00001*float64(n%2000),
		lon:        77.50 + 0.001*float64(m.index/200%200) + 0.00001*float64(n%2000),
		accuracy:   5 + float64(n%10),
		seq:        int32(n % math.MaxInt32),
	}, nil
}

// owned lists the members worker w of workers may write: every workers-th one, so workers never share
// a session and no two fixes of a session can collide.
func (f *fleet) owned(w, workers int) []*member {
	var out []*member
	for i := w; i < len(f.members); i += workers {
		out = append(out, f.members[i])
	}
	return out
}

// tokenTTL outlives any run Config.Validate allows.
const tokenTTL = 6 * time.Hour

// newFleet creates one organization with n employees, each with a user and a session checked in an
// hour ago, in one transaction through the owner pool, and mints an EMPLOYEE token for each.
func newFleet(ctx context.Context, pool *pgxpool.Pool, n int, secret []byte) (*fleet, error) {
	f := &fleet{orgID: uuid.New()}
	checkin := time.Now().Add(-time.Hour).Truncate(time.Second)
	users := make([]uuid.UUID, n)
	employees := make([]uuid.UUID, n)
	sessions := make([]uuid.UUID, n)
	for i := range n {
		users[i], employees[i], sessions[i] = uuid.New(), uuid.New(), uuid.New()
		tok, err := auth.Mint(secret, auth.MintOptions{
			Subject: users[i].String(), Role: auth.RoleEmployee, OrgID: f.orgID,
			EmployeeID: uuid.NullUUID{UUID: employees[i], Valid: true},
			Audience:   auth.DefaultAudience, TTL: tokenTTL,
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
