// Package bench measures a running FieldTrack server and its database, and prints Markdown tables. Its
// sections:
//
//   - gps: GPS ingest, the same inserts written straight to Postgres (the ceiling) and sent through the
//     HTTP API (what phones get), on one machine in one run;
//   - events: the event pipeline at a steady rate, from an outbox insert's commit to its SSE frame on
//     GET /admin/events and to the first attempt of its webhook delivery (see events.go);
//   - fanout: many SSE streams over many organizations at a steady event rate, commit → frame over every
//     stream, and the server's memory meanwhile (see fanout.go);
//   - export: the CSV export of an organization's expenses, against COPY of the same rows, with the
//     server's peak memory during it (see export.go);
//   - snapshots: admin reads at two GPS volumes, reconciliation, the snapshot work's cost on ingest and
//     hot rows (see snapshots.go);
//   - auth: what authentication and the rate limits cost a request (see authcost.go);
//   - tracing: single-fix ingest with tracing off and on, against a second server that exports every span
//     to a collector in this process (see tracing.go);
//   - distance: check-out latency with the distance of long sessions (see distance.go);
//   - volume, asked for by name: single-fix ingest on an empty table and with 10M fixes stored (see
//     volume.go).
//
// scripts/bench.sh (make bench) starts a throwaway cluster and the servers and runs cmd/ftbench, which
// calls Run.
//
// Load goes to loopback addresses only, and every loop stops by itself: each phase is bounded in time
// and each worker in operations.
package bench

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// BatchSize is the number of fixes per batch: the most POST /locations/batch accepts.
const BatchSize = 100

// Config is one benchmark run.
type Config struct {
	ServerURL   string        // base URL of a running `fieldtrack serve`, loopback only
	ServerPID   int           // its process id, for CPU and RSS figures; 0 = unknown
	DatabaseURL string        // the server's database, as its owner (fixtures, raw phases, checks)
	Secret      []byte        // the server's JWT_SECRET, to mint employee tokens
	Phase       time.Duration // measured time per phase
	Warmup      time.Duration // uncounted time before each phase
	Concurrency int           // workers per phase (database connections or HTTP connections)
	Employees   int           // employees, each with one open session

	Issuer       string // the server's JWT_ISSUER (production requires one), written into the tokens minted
	MetricsToken string // the server's METRICS_SCRAPE_TOKEN: the listener's state is on /metrics only

	Sections []string // what to run, of allSections; empty = all (in that order)

	EventsRate   int           // events per second the events section commits
	EventsPhase  time.Duration // measured production time of the events section (its warm-up is Warmup)
	EventsPerTx  int           // events per producer transaction
	ReceiverCert string        // PEM certificate of the webhook receiver (https); "" = plain http (see events.go)
	ReceiverKey  string        // its PEM private key

	ExportRows int // expenses of the export section's organization

	SnapshotEmployees int // employees of the snapshots section's organization
	SnapshotSessions  int // its closed sessions, in all
	SnapshotPoints    int // its fixes at the second volume

	FanoutStreams int           // fanout: SSE streams, spread evenly over FanoutOrgs organizations
	FanoutOrgs    int           // fanout: organizations
	FanoutRate    int           // fanout: events per second, each to the next organization
	FanoutPhase   time.Duration // fanout: measured production time (its warm-up is Warmup)

	VolumePoints int // volume: the fixes bulk-loaded before single-fix ingest runs again

	TracedURL     string // tracing: a second server on the same database, exporting every span to CollectorAddr
	TracedPID     int    // its process id; 0 = unknown
	CollectorAddr string // tracing: host:port (loopback) of the local OTLP/HTTP collector ftbench runs
}

// Sections of a run.
const (
	SectionGPS       = "gps"
	SectionEvents    = "events"
	SectionExport    = "export"
	SectionSnapshots = "snapshots"
	SectionAuth      = "auth"
	SectionTracing   = "tracing"
	SectionDistance  = "distance"
	SectionFanout    = "fanout"
	SectionVolume    = "volume"
)

var allSections = []string{SectionGPS, SectionEvents, SectionFanout, SectionExport, SectionSnapshots, SectionAuth,
	SectionTracing, SectionDistance, SectionVolume}

// defaultSections are those a run without Sections runs: all but volume, which loads 10M fixes (minutes)
// and is asked for by name.
var defaultSections = allSections[:len(allSections)-1]

// runs reports whether the run includes section s.
func (c Config) runs(s string) bool {
	if len(c.Sections) == 0 {
		return slices.Contains(defaultSections, s)
	}
	return slices.Contains(c.Sections, s)
}

// ParseSections reads a comma-separated list such as "gps,events".
func ParseSections(s string) ([]string, error) {
	var out []string
	want := strings.Join(allSections, ", ")
	for _, p := range strings.Split(s, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		switch {
		case p == "":
		case !slices.Contains(allSections, p):
			return nil, fmt.Errorf("unknown section %q (want some of %s)", p, want)
		case !slices.Contains(out, p):
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no section in %q (want some of %s)", s, want)
	}
	return out, nil
}

// Limits on Config: a pool per side of Concurrency connections must fit max_connections (200) of the
// clusters scripts/pg.sh makes, and a run must stay a few minutes long at most.
const (
	maxConcurrency    = 90
	maxEmployees      = 100_000
	maxPhase          = 10 * time.Minute
	maxWarmup         = time.Minute
	maxEventsRate     = 5000
	maxEventsPerTx    = 100
	maxEvents         = 2_000_000 // per run, warm-up included: bounds the tracker's memory (3 x 8 bytes each)
	maxExportRows     = 1_000_000
	maxFanoutStreams  = 5_000
	maxSnapshotPoints = 50_000_000
	maxVolumePoints   = 50_000_000
)

// Validate checks ranges and that both targets are on this machine.
func (c Config) Validate() error {
	switch {
	case c.Concurrency < 1 || c.Concurrency > maxConcurrency:
		return fmt.Errorf("concurrency must be 1..%d, got %d", maxConcurrency, c.Concurrency)
	case c.Employees < c.Concurrency || c.Employees > maxEmployees:
		// Every worker owns at least one employee, so no two workers write the same session.
		return fmt.Errorf("employees must be %d (the concurrency)..%d, got %d", c.Concurrency, maxEmployees, c.Employees)
	case c.Phase < time.Second || c.Phase > maxPhase:
		return fmt.Errorf("phase duration must be 1s..%s, got %s", maxPhase, c.Phase)
	case c.Warmup < 0 || c.Warmup > maxWarmup:
		return fmt.Errorf("warm-up must be 0..%s, got %s", maxWarmup, c.Warmup)
	case len(c.Secret) < 16:
		return errors.New("the JWT secret must be at least 16 bytes (as the server requires)")
	case c.ServerPID < 0 || c.TracedPID < 0:
		return fmt.Errorf("server pids must be positive, got %d and %d", c.ServerPID, c.TracedPID)
	}
	for _, s := range c.Sections {
		if !slices.Contains(allSections, s) {
			return fmt.Errorf("unknown section %q", s)
		}
	}
	if c.runs(SectionSnapshots) && (c.SnapshotEmployees < 1 || c.SnapshotEmployees > maxEmployees ||
		c.SnapshotSessions < c.SnapshotEmployees || c.SnapshotSessions > 10_000_000 ||
		c.SnapshotPoints < 10*c.SnapshotEmployees || c.SnapshotPoints > maxSnapshotPoints) {
		return fmt.Errorf("snapshots: employees 1..%d, sessions employees..10000000, points 10 x employees..%d; got %d, %d, %d",
			maxEmployees, maxSnapshotPoints, c.SnapshotEmployees, c.SnapshotSessions, c.SnapshotPoints)
	}
	if c.runs(SectionVolume) && (c.VolumePoints < c.Employees || c.VolumePoints > maxVolumePoints) {
		return fmt.Errorf("volume: points must be employees (%d)..%d, got %d", c.Employees, maxVolumePoints, c.VolumePoints)
	}
	if c.runs(SectionExport) && (c.ExportRows < 1 || c.ExportRows > maxExportRows) {
		return fmt.Errorf("export rows must be 1..%d, got %d", maxExportRows, c.ExportRows)
	}
	if c.runs(SectionFanout) {
		switch {
		case c.FanoutOrgs < 1 || c.FanoutStreams < c.FanoutOrgs || c.FanoutStreams > maxFanoutStreams:
			return fmt.Errorf("fan-out: streams must be %d (the organizations, at least 1)..%d, got %d streams over %d organizations",
				max(1, c.FanoutOrgs), maxFanoutStreams, c.FanoutStreams, c.FanoutOrgs)
		case c.FanoutStreams%c.FanoutOrgs != 0:
			return fmt.Errorf("fan-out: %d streams do not spread evenly over %d organizations", c.FanoutStreams, c.FanoutOrgs)
		case c.FanoutRate < 1 || c.FanoutRate > maxEventsRate:
			return fmt.Errorf("fan-out rate must be 1..%d per second, got %d", maxEventsRate, c.FanoutRate)
		case c.FanoutPhase < time.Second || c.FanoutPhase > maxPhase:
			return fmt.Errorf("fan-out duration must be 1s..%s, got %s", maxPhase, c.FanoutPhase)
		case float64(c.FanoutRate)*(c.FanoutPhase+c.Warmup).Seconds() > maxEvents:
			return fmt.Errorf("fan-out rate x (duration + warm-up) must stay below %d events", maxEvents)
		}
	}
	if c.runs(SectionEvents) {
		switch {
		case c.EventsRate < 1 || c.EventsRate > maxEventsRate:
			return fmt.Errorf("events rate must be 1..%d per second, got %d", maxEventsRate, c.EventsRate)
		case c.EventsPhase < time.Second || c.EventsPhase > maxPhase:
			return fmt.Errorf("events duration must be 1s..%s, got %s", maxPhase, c.EventsPhase)
		case c.EventsPerTx < 1 || c.EventsPerTx > maxEventsPerTx:
			return fmt.Errorf("events per transaction must be 1..%d, got %d", maxEventsPerTx, c.EventsPerTx)
		case float64(c.EventsRate)*(c.EventsPhase+c.Warmup).Seconds() > maxEvents:
			return fmt.Errorf("events rate x (duration + warm-up) must stay below %d events", maxEvents)
		case (c.ReceiverCert == "") != (c.ReceiverKey == ""):
			return errors.New("give both the receiver certificate and its key, or neither")
		}
	}
	if err := checkServerURL(c.ServerURL); err != nil {
		return err
	}
	if c.runs(SectionTracing) {
		if err := checkServerURL(c.TracedURL); err != nil {
			return fmt.Errorf("traced server: %w", err)
		}
		if c.TracedURL == c.ServerURL {
			return errors.New("the traced server must be another process than the server (another port)")
		}
		host, _, err := net.SplitHostPort(c.CollectorAddr)
		if err != nil || !isLoopback(host) {
			return fmt.Errorf("collector address must be 127.0.0.1:PORT, got %q", c.CollectorAddr)
		}
	}
	pc, err := pgxpool.ParseConfig(c.DatabaseURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	if !isLoopback(pc.ConnConfig.Host) {
		return fmt.Errorf("DATABASE_URL host %q is not a loopback address", pc.ConnConfig.Host)
	}
	return nil
}

// checkServerURL accepts http://127.0.0.1:PORT (any loopback address).
func checkServerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("server URL must be http://127.0.0.1:PORT, got %q", s)
	}
	if !isLoopback(u.Hostname()) {
		return fmt.Errorf("server URL %q is not a loopback address: load tests target this machine only", s)
	}
	return nil
}

// isLoopback accepts "localhost" and literal loopback IPs; names are not resolved.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
