package httpapi

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
)

func callerClaims(org uuid.UUID, user uuid.UUID) db.Claims {
	return db.Claims{OrgID: org, UserID: uuid.NullUUID{UUID: user, Valid: true}, Role: "ADMIN"}
}

// TestStreamChecks_OneCheckPerCallerAtATime: the streams of one caller that ask together share one
// check and its verdict; a later ask runs a new one.
func TestStreamChecks_OneCheckPerCallerAtATime(t *testing.T) {
	t.Parallel()
	sc := newStreamChecks()
	c := callerClaims(uuid.New(), uuid.New())
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	var runs atomic.Int32
	denied := errors.New("disabled")
	run := func() error {
		runs.Add(1)
		started <- struct{}{}
		<-release
		return denied
	}
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	wg.Add(1)
	go func() { defer wg.Done(); errs <- sc.check(c, run) }()
	<-started // the first check is running
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- sc.check(c, run) }()
	}
	// The four join the running check: wait until they are waiting on it.
	testfactory.Eventually(t, 5*time.Second, "four streams waiting on the running check", func() (bool, error) {
		return waiting(sc, c) == 4, nil
	})
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, denied) {
			t.Fatalf("a stream got %v, want the shared verdict %v", err, denied)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("%d checks ran for five streams of one caller asking together", n)
	}
	before := runs.Load()
	if err := sc.check(c, func() error { runs.Add(1); return nil }); err != nil || runs.Load() != before+1 {
		t.Fatalf("a later ask did not run a check of its own (err %v, runs %d -> %d)", err, before, runs.Load())
	}
}

// waiting is how many asks wait for the check of c on its way.
func waiting(sc *streamChecks, c db.Claims) int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if f, ok := sc.flights[keyOf(c)]; ok {
		return f.waiters
	}
	return 0
}

// TestStreamChecks_AFewAtOnce: checks of different callers run at most streamCheckSlots at a time.
func TestStreamChecks_AFewAtOnce(t *testing.T) {
	t.Parallel()
	sc := newStreamChecks()
	org := uuid.New()
	var now, most atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = sc.check(callerClaims(org, uuid.New()), func() error {
				n := now.Add(1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(2 * time.Millisecond) // holds its slot, so that others would overlap
				now.Add(-1)
				return nil
			})
		}()
	}
	wg.Wait()
	if m := most.Load(); m > streamCheckSlots || m < 1 {
		t.Fatalf("%d checks ran at once, want at most %d", m, streamCheckSlots)
	}
}

func TestFirstRecheck_NeverLaterThanNow(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for range 1000 {
		if at := firstRecheck(now); at.After(now) || now.Sub(at) > recheckEvery/2 {
			t.Fatalf("first recheck counted from %v, %v before now; want within half of %v before", at, now.Sub(at), recheckEvery)
		}
	}
}
