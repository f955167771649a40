package bench

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
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

// roundRobin is the work of worker w of a phase: each call handles the next of the members the worker
// owns, in turn, with do.
func (f *fleet) roundRobin(w, workers int, do func(ctx context.Context, m *member) (int, bool, error)) work {
	own, i := f.owned(w, workers), 0
	return func(ctx context.Context) (int, bool, error) {
		m := own[i%len(own)]
		i++
		return do(ctx, m)
	}
}
