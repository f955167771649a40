// Command ftbench measures GPS ingest against a running FieldTrack server and its database, and prints a
// Markdown report (see internal/bench). `make bench` (scripts/bench.sh) starts everything it needs:
//
//	ftbench -url http://127.0.0.1:PORT -server-pid PID
//
// DATABASE_URL (the owner's connection) and JWT_SECRET (the server's) come from the environment;
// BENCH_SECONDS, BENCH_CONCURRENCY, BENCH_EMPLOYEES and BENCH_WARMUP_SECONDS give the flags' defaults.
// It exits 1 when set-up fails or a phase has more than 1% errors, 2 on bad usage, 0 otherwise (also
// when a target is missed: the report says so).
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
	pid := fs.Int("server-pid", 0, "server process id, for its CPU and memory")
	seconds := fs.Int("seconds", envInt("BENCH_SECONDS", 10), "measured seconds per phase")
	warmup := fs.Int("warmup", envInt("BENCH_WARMUP_SECONDS", 2), "uncounted warm-up seconds before each phase")
	conc := fs.Int("concurrency", envInt("BENCH_CONCURRENCY", 16), "workers per phase")
	employees := fs.Int("employees", envInt("BENCH_EMPLOYEES", 200), "employees, each with an open session")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	cfg := bench.Config{
		ServerURL:   *url,
		ServerPID:   *pid,
		DatabaseURL: os.Getenv("DATABASE_URL"),
		Secret:      []byte(os.Getenv("JWT_SECRET")),
		Phase:       time.Duration(*seconds) * time.Second,
		Warmup:      time.Duration(*warmup) * time.Second,
		Concurrency: *conc,
		Employees:   *employees,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := bench.Run(ctx, cfg, os.Stdout, os.Stderr)
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
