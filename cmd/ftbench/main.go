// Command ftbench measures a running FieldTrack server and its database — GPS ingest, the event pipeline
// from an outbox commit to SSE and to the first webhook attempt, the CSV export, the snapshots, what
// authentication costs and what tracing costs — and prints a report (see internal/bench). `make bench`
// (scripts/bench.sh) starts everything it needs:
//
//	ftbench -url http://127.0.0.1:PORT -server-pid PID [-sections gps,events,export,snapshots,auth,tracing,distance]
//	        [-receiver-cert FILE -receiver-key FILE]
//	        [-traced-url http://127.0.0.1:PORT2 -traced-pid PID2 -collector 127.0.0.1:PORT3]
//	ftbench -write-receiver-cert DIR
//
// The tracing section needs the last three flags: a second server on the same database that exports its
// spans over OTLP/HTTP to the collector ftbench runs on -collector.
//
// The second form only writes a self-signed certificate for 127.0.0.1 and its key into DIR (for the events
// section's https webhook receiver; the server trusts it through SSL_CERT_FILE) and prints the
// certificate's path.
//
// DATABASE_URL (the owner's connection) and JWT_SECRET (the server's) come from the environment;
// BENCH_SECONDS, BENCH_CONCURRENCY, BENCH_EMPLOYEES, BENCH_WARMUP_SECONDS, BENCH_SECTIONS,
// BENCH_EVENTS_RATE, BENCH_EVENTS_SECONDS, BENCH_EVENTS_PER_TX, BENCH_EXPORT_ROWS and BENCH_SNAPSHOT_*
// give the flags' defaults. It exits 1 when set-up fails or a section has more than 1% errors, 2 on bad
// usage, 0 otherwise (also when a target is missed: the report says so).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/bench"
)

func main() {
	fs := flag.NewFlagSet("ftbench", flag.ContinueOnError)
	url := fs.String("url", "", "base URL of the server under test (loopback only)")
	pid := fs.Int("server-pid", 0, "server process id, for its CPU, memory and settings")
	seconds := fs.Int("seconds", envInt("BENCH_SECONDS", 10), "GPS: measured seconds per phase")
	warmup := fs.Int("warmup", envInt("BENCH_WARMUP_SECONDS", 2), "uncounted warm-up seconds before each GPS phase and the events measurement")
	conc := fs.Int("concurrency", envInt("BENCH_CONCURRENCY", 16), "GPS: workers per phase")
	employees := fs.Int("employees", envInt("BENCH_EMPLOYEES", 200), "GPS: employees, each with an open session")
	sections := fs.String("sections", envStr("BENCH_SECTIONS", "gps,events,fanout,export,snapshots,auth,tracing,distance"),
		"sections to run: some of gps, events, fanout, export, snapshots, auth, tracing, distance, volume")
	evRate := fs.Int("events-rate", envInt("BENCH_EVENTS_RATE", 500), "events: events committed per second")
	evSeconds := fs.Int("events-seconds", envInt("BENCH_EVENTS_SECONDS", 60), "events: measured seconds")
	evPerTx := fs.Int("events-per-tx", envInt("BENCH_EVENTS_PER_TX", 1), "events: events per producer transaction")
	fanStreams := fs.Int("fanout-streams", envInt("BENCH_FANOUT_STREAMS", 1000), "fanout: SSE streams")
	fanOrgs := fs.Int("fanout-orgs", envInt("BENCH_FANOUT_ORGS", 50), "fanout: organizations the streams spread over")
	fanRate := fs.Int("fanout-rate", envInt("BENCH_FANOUT_RATE", 500), "fanout: events committed per second")
	fanSeconds := fs.Int("fanout-seconds", envInt("BENCH_FANOUT_SECONDS", 30), "fanout: measured seconds")
	cert := fs.String("receiver-cert", "", "events: PEM certificate of the https webhook receiver (none: plain http)")
	key := fs.String("receiver-key", "", "events: its PEM private key")
	exportRows := fs.Int("export-rows", envInt("BENCH_EXPORT_ROWS", 50_000), "export: expenses of the exported organization")
	snapEmployees := fs.Int("snapshot-employees", envInt("BENCH_SNAPSHOT_EMPLOYEES", 1000), "snapshots: employees")
	snapSessions := fs.Int("snapshot-sessions", envInt("BENCH_SNAPSHOT_SESSIONS", 1_000_000), "snapshots: closed sessions in all")
	snapPoints := fs.Int("snapshot-points", envInt("BENCH_SNAPSHOT_POINTS", 10_000_000), "snapshots: fixes at the second volume")
	volPoints := fs.Int("volume-points", envInt("BENCH_VOLUME_POINTS", 10_000_000), "volume: fixes bulk-loaded before ingest runs again")
	tracedURL := fs.String("traced-url", "", "tracing: base URL of a second server on the same database, exporting its spans to -collector")
	tracedPID := fs.Int("traced-pid", 0, "tracing: its process id, for its CPU and memory")
	collector := fs.String("collector", "", "tracing: host:port (loopback) for the OTLP/HTTP collector ftbench runs")
	writeCert := fs.String("write-receiver-cert", "", "only write a receiver certificate and key into this directory")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *writeCert != "" {
		certPath, _, err := bench.WriteReceiverCert(*writeCert)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ftbench:", err)
			os.Exit(1)
		}
		fmt.Println(certPath)
		return
	}
	secs, err := bench.ParseSections(*sections)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ftbench:", err)
		os.Exit(2)
	}
	cfg := bench.Config{
		ServerURL:    *url,
		ServerPID:    *pid,
		DatabaseURL:  os.Getenv("DATABASE_URL"),
		Secret:       []byte(os.Getenv("JWT_SECRET")),
		Issuer:       os.Getenv("JWT_ISSUER"),
		MetricsToken: os.Getenv("METRICS_SCRAPE_TOKEN"),
		Phase:        time.Duration(*seconds) * time.Second,
		Warmup:       time.Duration(*warmup) * time.Second,
		Concurrency:  *conc,
		Employees:    *employees,
		Sections:     secs,
		EventsRate:   *evRate,
		EventsPhase:  time.Duration(*evSeconds) * time.Second,
		EventsPerTx:  *evPerTx,
		ReceiverCert: *cert,
		ReceiverKey:  *key,
		ExportRows:   *exportRows,

		FanoutStreams: *fanStreams,
		FanoutOrgs:    *fanOrgs,
		FanoutRate:    *fanRate,
		FanoutPhase:   time.Duration(*fanSeconds) * time.Second,

		SnapshotEmployees: *snapEmployees,
		SnapshotSessions:  *snapSessions,
		SnapshotPoints:    *snapPoints,

		VolumePoints: *volPoints,

		TracedURL:     *tracedURL,
		TracedPID:     *tracedPID,
		CollectorAddr: *collector,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = bench.Run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ftbench:", err)
		os.Exit(1)
	}
}

// envInt reads an integer default from the environment; a malformed value stops the program.
func envInt(name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ftbench: %s=%q is not an integer\n", name, v)
		os.Exit(2)
	}
	return n
}

// envStr reads a string default from the environment.
func envStr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
