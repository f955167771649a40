package httpapi

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// streamChecks runs the caller checks of open event streams (see adminEvents). A stream looks at its
// caller again every recheckEvery; a thousand streams opened together would look together, and their
// checks would take every pooled connection from the listener's hand-off and the requests for as long as
// they queue (a p99 of 150 ms for every frame of a 1,000-stream fan-out, against 55 ms without them).
// So a caller with several streams open (tabs, dashboards) is checked once for all of them: a check
// asked for while another of the same caller runs waits for that one's answer (begun at most one check's
// time before the ask). And at most a few checks run at once; the others wait for a slot, never a frame:
// with N callers due at once and a check taking L, the last is looked at N·L/streamCheckSlots late
// (1,000 callers at 5 ms: about a second).
type streamChecks struct {
	slots   chan struct{}
	mu      sync.Mutex
	flights map[callerKey]*checkFlight
}

// callerKey is what a caller check depends on (not the token's own times).
type callerKey struct {
	org, user, employee, session, apiKey [16]byte
	role, scope                          string
}

type checkFlight struct {
	done    chan struct{}
	err     error
	waiters int // the asks that joined it (under streamChecks.mu; the tests read it)
}

// streamCheckSlots is how many stream checks run at once in a process.
const streamCheckSlots = 4

func newStreamChecks() *streamChecks {
	return &streamChecks{slots: make(chan struct{}, streamCheckSlots), flights: map[callerKey]*checkFlight{}}
}

func keyOf(c db.Claims) callerKey {
	return callerKey{org: c.OrgID, user: c.UserID.UUID, employee: c.EmployeeID.UUID, session: c.SessionID.UUID,
		apiKey: c.APIKeyID.UUID, role: c.Role, scope: c.Scope}
}

// check answers run's verdict for the caller of c, running it unless a check of the same caller is on
// its way already, in which case that one's verdict is the answer.
func (sc *streamChecks) check(c db.Claims, run func() error) error {
	k := keyOf(c)
	sc.mu.Lock()
	if f, ok := sc.flights[k]; ok {
		f.waiters++
		sc.mu.Unlock()
		<-f.done
		return f.err
	}
	f := &checkFlight{done: make(chan struct{})}
	sc.flights[k] = f
	sc.mu.Unlock()

	sc.slots <- struct{}{}
	f.err = run()
	<-sc.slots
	sc.mu.Lock()
	delete(sc.flights, k)
	sc.mu.Unlock()
	close(f.done)
	return f.err
}

// firstRecheck is when a stream opened now counts its caller as last checked: up to half an interval
// earlier than now, so that streams opened together spread their checks instead of making them in the
// same instant every interval. Never later: a caller is still looked at within recheckEvery.
func firstRecheck(now time.Time) time.Time {
	return now.Add(-rand.N(recheckEvery / 2))
}
