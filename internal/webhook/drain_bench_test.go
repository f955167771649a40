package webhook

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/db"
	"github.com/fieldtrack/fieldtrack/internal/testfactory"
	"github.com/fieldtrack/fieldtrack/internal/webhook/webhooktest"
)

// BenchmarkRun_DrainsABacklog measures the worker alone: a backlog of deliveries to one https endpoint on
// loopback, handed off beforehand, drained by Run with the server's settings (32 senders, a pool of 20
// connections as make bench gives the server). It reports deliveries per second. Run it without the race
// detector against a cluster with the production durability settings:
//
//	DATABASE_URL=… go test -run '^$' -bench DrainsABacklog -benchtime 1x ./internal/webhook/
//
// WEBHOOK_DRAIN_N sets the backlog (default 10000). With WEBHOOK_DRAIN_POSTMASTER, the pid of the
// cluster's postmaster, it also reports the CPU its backends spent per delivery, which the other load
// on a shared machine disturbs less than the rate; the worker's own CPU per delivery is reported always.
func BenchmarkRun_DrainsABacklog(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("WEBHOOK_DRAIN_N")); err == nil && v > 0 {
		n = v
	}
	var got atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	b.Cleanup(srv.Close)
	// The worker's client trusts the system's roots only (as in production): add the test server's.
	cert := filepath.Join(b.TempDir(), "cert.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		b.Fatal(err)
	}
	b.Setenv("SSL_CERT_FILE", cert)

	owner := testfactory.Pool(b)
	ctx := context.Background()
	pool, err := db.NewPool(ctx, db.PoolConfig{URL: testfactory.URL(b), MaxConns: 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	for range b.N {
		org := testfactory.NewOrg(b)
		var hook string
		if err := owner.QueryRow(ctx, `INSERT INTO webhooks (organization_id, url, secret, events)
			VALUES ($1, $2, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '{employee.created}') RETURNING id`,
			org.ID, srv.URL+"/hook").Scan(&hook); err != nil {
			b.Fatal(err)
		}
		if _, err := owner.Exec(ctx, `SELECT count(app.emit($1, 'employee.created',
				jsonb_build_object('employee_id', gen_random_uuid(), 'name', 'Dee', 'seq', s)))
			FROM generate_series(1, $2) s`, org.ID, n); err != nil {
			b.Fatal(err)
		}
		webhooktest.Dispatch(b, owner, org.ID)
		if _, err := owner.Exec(ctx, "VACUUM ANALYZE webhook_deliveries"); err != nil {
			b.Fatal(err)
		}
		got.Store(0)
		w := NewWorker(pool, Config{OrganizationID: org.ID, AllowPrivateTargets: true, HTTPSOnly: true},
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		b.ResetTimer()
		pgBefore, selfBefore := postgresCPU(b), selfCPU()
		start := time.Now()
		go func() { defer close(done); w.Run(runCtx) }()
		var left int
		for got.Load() < int64(n) && time.Since(start) < 5*time.Minute {
			time.Sleep(10 * time.Millisecond)
		}
		testfactory.Eventually(b, 5*time.Minute, "the backlog to drain", func() (bool, error) {
			err := owner.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries
				WHERE organization_id = $1 AND status <> 'success'`, org.ID).Scan(&left)
			return left == 0, err
		})
		took := time.Since(start)
		pgAfter, selfAfter := postgresCPU(b), selfCPU()
		b.StopTimer()
		if pgBefore >= 0 {
			b.ReportMetric(float64((pgAfter-pgBefore).Microseconds())/float64(n), "pg-µs/delivery")
		}
		b.ReportMetric(float64((selfAfter-selfBefore).Microseconds())/float64(n), "go-µs/delivery")
		stop()
		<-done
		b.ReportMetric(float64(n)/took.Seconds(), "deliveries/s")
		b.ReportMetric(float64(got.Load()-int64(n)), "repeats")
	}
}

// postgresCPU is the CPU time of the backends of the postmaster WEBHOOK_DRAIN_POSTMASTER names (-1
// without it), from /proc.
func postgresCPU(b *testing.B) time.Duration {
	pm := os.Getenv("WEBHOOK_DRAIN_POSTMASTER")
	if pm == "" {
		return -1
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15), counted after the comm's closing parenthesis.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
		if len(f) < 13 || (f[1] != pm && e.Name() != pm) {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(u+s) * 10 * time.Millisecond // USER_HZ = 100
	}
	return total
}

// selfCPU is this process's CPU time (the worker and the receiver).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
