#!/usr/bin/env bash
# Benchmarks (make bench), on this machine: GPS ingest (raw SQL inserts vs the HTTP API), the event
# pipeline (commit -> SSE frame and commit -> first webhook attempt at a steady rate) and the CSV export
# of an organization's expenses (COPY vs the HTTP API, with the server's peak memory), and the snapshots
# (admin reads at 10k and 10M fixes, reconciliation time, the snapshot work's cost on ingest, hot rows).
#
#   scripts/bench.sh
#   BENCH_SECTIONS=events scripts/bench.sh      # one section only
#
# Starts a throwaway cluster on a free port in a temporary directory with the
# default durability settings (fsync and synchronous_commit on: honest numbers),
# migrates it, builds bin/fieldtrack and bin/ftbench, serves the API on another
# free port, waits for /ready, runs bin/ftbench, then always stops the server
# and the cluster and deletes the directory (also on failure or Ctrl-C).
# The Markdown report goes to stdout, progress to stderr. Exits with ftbench's
# status: non-zero on set-up failure or more than 1% errors in a phase or in
# the events producer, not for a missed target.
#
# The server runs with APP_ENV=production, the outbox listener (logging in as
# fieldtrack_listener: production refuses a listener login that may act as the
# API) and the webhook worker on, and WEBHOOK_ALLOW_PRIVATE_TARGETS=true so that
# it delivers to the receiver ftbench runs on loopback. Production sends
# webhooks over https only, so for the events section ftbench first writes a
# self-signed certificate for 127.0.0.1 into the temporary directory and the
# server trusts it through SSL_CERT_FILE (Go reads that variable; the system's
# certificate directories still count). Other WEBHOOK_* or EVENTS_* variables in
# the environment reach the server unchanged; the report states the effective
# worker settings.
#
# Knobs (environment):
#   BENCH_SECTIONS        some of gps,events,export,snapshots,auth (default all five)
#   BENCH_SECONDS         measured seconds per GPS phase  (default 10)
#   BENCH_CONCURRENCY     workers per GPS phase, 1-90     (default 16)
#   BENCH_EMPLOYEES       employees with open sessions    (default 200)
#   BENCH_WARMUP_SECONDS  uncounted warm-up per GPS phase and before the
#                         events measurement              (default 2)
#   BENCH_EVENTS_RATE     events committed per second     (default 500)
#   BENCH_EVENTS_SECONDS  measured seconds of events      (default 60)
#   BENCH_EVENTS_PER_TX   events per producer transaction (default 1)
#   BENCH_EXPORT_ROWS     expenses of the exported organization (default 50000)
#   BENCH_SNAPSHOT_EMPLOYEES  employees of the snapshots organization (default 1000)
#   BENCH_SNAPSHOT_SESSIONS   its closed sessions in all          (default 1000000)
#   BENCH_SNAPSHOT_POINTS     its GPS fixes at the second volume  (default 10000000)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PG=scripts/pg.sh

say() { echo "bench.sh: $*" >&2; }
die() { echo "bench.sh: error: $*" >&2; exit 1; }

int_knob() { # NAME DEFAULT MIN MAX -> value
	local v="${!1:-$2}"
	[[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -ge "$3" ] && [ "$v" -le "$4" ] ||
		die "$1 must be an integer in $3..$4, got '$v'"
	echo "$v"
}
seconds="$(int_knob BENCH_SECONDS 10 1 600)"
concurrency="$(int_knob BENCH_CONCURRENCY 16 1 90)"
employees="$(int_knob BENCH_EMPLOYEES 200 1 100000)"
warmup="$(int_knob BENCH_WARMUP_SECONDS 2 0 60)"
events_rate="$(int_knob BENCH_EVENTS_RATE 500 1 5000)"
events_seconds="$(int_knob BENCH_EVENTS_SECONDS 60 1 600)"
events_per_tx="$(int_knob BENCH_EVENTS_PER_TX 1 1 100)"
export_rows="$(int_knob BENCH_EXPORT_ROWS 50000 1 1000000)"
snap_employees="$(int_knob BENCH_SNAPSHOT_EMPLOYEES 1000 1 100000)"
snap_sessions="$(int_knob BENCH_SNAPSHOT_SESSIONS 1000000 1 10000000)"
snap_points="$(int_knob BENCH_SNAPSHOT_POINTS 10000000 10 50000000)"
sections="${BENCH_SECTIONS:-gps,events,export,snapshots,auth}"
sections="${sections// /}"
run_events=0
IFS=, read -ra section_list <<<"$sections"
[ "${#section_list[@]}" -gt 0 ] || die "BENCH_SECTIONS must name some of gps, events, export, snapshots, auth, got '$sections'"
for s in "${section_list[@]}"; do
	case "$s" in
	gps | export | snapshots | auth) ;;
	events) run_events=1 ;;
	*) die "BENCH_SECTIONS must be a comma-separated list of gps, events, export, snapshots and auth, got '$sections'" ;;
	esac
done
[ "$employees" -ge "$concurrency" ] ||
	die "BENCH_EMPLOYEES ($employees) must be at least BENCH_CONCURRENCY ($concurrency)"

command -v go >/dev/null 2>&1 || die "go not found on PATH"
command -v curl >/dev/null 2>&1 || die "curl not found on PATH"

"$PG" ensure-packages

say "building bin/fieldtrack and bin/ftbench"
mkdir -p bin
go build -o bin/fieldtrack ./cmd/fieldtrack
go build -o bin/ftbench ./cmd/ftbench

server_pid=""
# The server has exited (a zombie until we wait for it, or already reaped).
server_gone() {
	case "$(ps -o stat= -p "$server_pid" 2>/dev/null || true)" in
	"" | Z*) return 0 ;;
	esac
	return 1
}
# Stops the server before throwaway.sh stops the cluster (and shows its log's tail after a failure).
before_exit() { # STATUS
	if [ -n "$server_pid" ] && server_gone; then
		local server_status=0
		wait "$server_pid" 2>/dev/null || server_status=$?
		say "the server (pid $server_pid) exited before the end of the run (status $server_status)"
	elif [ -n "$server_pid" ]; then
		kill -TERM "$server_pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$server_pid" 2>/dev/null; then
			say "warning: server $server_pid ignored SIGTERM for 10 s; killing it"
			kill -KILL "$server_pid" 2>/dev/null || true
		fi
		wait "$server_pid" 2>/dev/null || true
	fi
	if [ "$1" -ne 0 ] && [ -n "$tmp" ] && [ -s "$tmp/server.log" ]; then
		say "last lines of the server log:"
		tail -n 20 "$tmp/server.log" >&2 || true
	fi
}
# shellcheck source=scripts/throwaway.sh
. scripts/throwaway.sh
throwaway_cluster fieldtrack-bench

JWT_SECRET="$(head -c 32 /dev/urandom | base64)"
export JWT_SECRET
# Production requires both: the issuer of the tokens ftbench mints, and the token of /metrics.
JWT_ISSUER="ftbench"
METRICS_SCRAPE_TOKEN="$(head -c 24 /dev/urandom | base64)"
export JWT_ISSUER METRICS_SCRAPE_TOKEN

say "migrating $DATABASE_URL"
bin/fieldtrack migrate up >&2

api_port="$("$PG" free-port)"
[ "$api_port" != "$pg_port" ] || api_port="$("$PG" free-port)"
server_url="http://127.0.0.1:$api_port"
receiver_args=()
cert_env=()
if [ "$run_events" -eq 1 ]; then
	cert="$(bin/ftbench -write-receiver-cert "$tmp/receiver")"
	receiver_args=(-receiver-cert "$cert" -receiver-key "$tmp/receiver/receiver-key.pem")
	cert_env=(SSL_CERT_FILE="$cert")
fi
say "starting the server on $server_url"
# The rate limits are on, as in production, but too high to refuse the load (the auth section measures
# their cost).
env "${cert_env[@]}" PORT="$api_port" APP_ENV=production LOG_LEVEL=warn \
	RATE_LIMIT_USER_PER_MIN=1000000 RATE_LIMIT_ORG_PER_MIN=10000000 RATE_LIMIT_API_KEY_PER_MIN=1000000 \
	RATE_LIMIT_IP_PER_MIN=10000000 RATE_LIMIT_LOCATIONS_PER_10S=100000 RATE_LIMIT_EXPENSES_PER_MIN=100000 \
	RATE_LIMIT_RECALCULATE_PER_MIN=100000 \
	DB_MAX_CONNS="$((concurrency + 4))" EVENTS_LISTENER_ENABLED=true RECEIPTS_DIR="$tmp/receipts" \
	LISTENER_DATABASE_URL="${DATABASE_URL/:\/\/*@/://fieldtrack_listener@}" \
	WEBHOOK_WORKER_ENABLED=true WEBHOOK_ALLOW_PRIVATE_TARGETS=true \
	bin/fieldtrack serve >"$tmp/server.log" 2>&1 &
server_pid=$!

ready=0
for _ in $(seq 1 150); do
	! server_gone || die "the server exited during start-up"
	if curl -fsS -o /dev/null --max-time 2 "$server_url/ready" 2>/dev/null; then
		ready=1
		break
	fi
	sleep 0.2
done
[ "$ready" -eq 1 ] || die "the server did not become ready within 30 s"

say "running ftbench ($sections): GPS ${seconds}s per phase, $concurrency workers, $employees employees;" \
	"events ${events_rate}/s for ${events_seconds}s, $events_per_tx per tx; export of $export_rows expenses;" \
	"snapshots of $snap_employees employees, $snap_sessions sessions, $snap_points fixes"
bin/ftbench -url "$server_url" -server-pid "$server_pid" -sections "$sections" \
	-seconds "$seconds" -warmup "$warmup" -concurrency "$concurrency" -employees "$employees" \
	-events-rate "$events_rate" -events-seconds "$events_seconds" -events-per-tx "$events_per_tx" \
	-export-rows "$export_rows" \
	-snapshot-employees "$snap_employees" -snapshot-sessions "$snap_sessions" -snapshot-points "$snap_points" \
	"${receiver_args[@]}"
