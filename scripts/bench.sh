#!/usr/bin/env bash
# Benchmarks (make bench), on this machine: GPS ingest (raw SQL inserts vs the HTTP API), the event
# pipeline (commit -> SSE frame and commit -> first webhook attempt at a steady rate) and the CSV export
# of an organization's expenses (COPY vs the HTTP API, with the server's peak memory), the snapshots
# (admin reads at 10k and 10M fixes, reconciliation time, the snapshot work's cost on ingest, hot rows),
# what authentication and the rate limits cost a request, what tracing costs single-fix ingest, the
# distance's cost at check-out, and (asked for by name) single-fix ingest with 10M fixes stored.
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
# For the tracing section a second server runs on another free port, the same way but with the listener
# and the webhook worker off (one process leads; that section has no events) and with every request
# traced: OTEL_EXPORTER_OTLP_ENDPOINT (http/protobuf) at the OTLP/HTTP collector ftbench runs on a third
# free port, OTEL_TRACES_SAMPLER=always_on. OTEL_* variables in the environment reach neither server (the
# first must be untraced), except OTEL_BSP_* (the batch span processor's queue, batch size and delay),
# which reach the traced one.
#
# Knobs (environment):
#   BENCH_SECTIONS        some of gps,events,fanout,export,snapshots,auth,tracing,distance,volume (default
#                         the first eight; volume, single-fix ingest on an empty table and again with
#                         BENCH_VOLUME_POINTS fixes stored, loads them in a few minutes and is asked for by name)
#   BENCH_SECONDS         measured seconds per GPS phase  (default 10)
#   BENCH_CONCURRENCY     workers per GPS phase, 1-90     (default 16)
#   BENCH_EMPLOYEES       employees with open sessions    (default 200)
#   BENCH_WARMUP_SECONDS  uncounted warm-up per GPS phase and before the
#                         events measurement              (default 2)
#   BENCH_EVENTS_RATE     events committed per second     (default 500)
#   BENCH_EVENTS_SECONDS  measured seconds of events      (default 60)
#   BENCH_EVENTS_PER_TX   events per producer transaction (default 1)
#   BENCH_FANOUT_STREAMS  SSE streams of the fan-out           (default 1000)
#   BENCH_FANOUT_ORGS     organizations they spread over       (default 50)
#   BENCH_FANOUT_RATE     fan-out events committed per second  (default 500)
#   BENCH_FANOUT_SECONDS  measured seconds of the fan-out      (default 30)
#   BENCH_EXPORT_ROWS     expenses of the exported organization (default 50000)
#   BENCH_SNAPSHOT_EMPLOYEES  employees of the snapshots organization (default 1000)
#   BENCH_SNAPSHOT_SESSIONS   its closed sessions in all          (default 1000000)
#   BENCH_SNAPSHOT_POINTS     its GPS fixes at the second volume  (default 10000000)
#   BENCH_VOLUME_POINTS   fixes the volume section loads      (default 10000000)
#   BENCH_PG_STATEMENTS   N > 0 loads pg_stat_statements (statements inside functions counted) and writes
#                         the N statements of most total time to stderr at the end (default 0: off; it
#                         costs a few percent)
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
fanout_streams="$(int_knob BENCH_FANOUT_STREAMS 1000 1 5000)"
fanout_orgs="$(int_knob BENCH_FANOUT_ORGS 50 1 5000)"
fanout_rate="$(int_knob BENCH_FANOUT_RATE 500 1 5000)"
fanout_seconds="$(int_knob BENCH_FANOUT_SECONDS 30 1 600)"
snap_employees="$(int_knob BENCH_SNAPSHOT_EMPLOYEES 1000 1 100000)"
snap_sessions="$(int_knob BENCH_SNAPSHOT_SESSIONS 1000000 1 10000000)"
snap_points="$(int_knob BENCH_SNAPSHOT_POINTS 10000000 10 50000000)"
volume_points="$(int_knob BENCH_VOLUME_POINTS 10000000 1 50000000)"
pg_statements="$(int_knob BENCH_PG_STATEMENTS 0 0 1000)"
if [ "$pg_statements" -gt 0 ]; then
	export PG_STAT_STATEMENTS=1
fi
sections="${BENCH_SECTIONS:-gps,events,fanout,export,snapshots,auth,tracing,distance}"
sections="${sections// /}"
run_events=0
run_tracing=0
IFS=, read -ra section_list <<<"$sections"
[ "${#section_list[@]}" -gt 0 ] || die "BENCH_SECTIONS must name some of gps, events, fanout, export, snapshots, auth, tracing, distance, volume, got '$sections'"
for s in "${section_list[@]}"; do
	case "$s" in
	gps | fanout | export | snapshots | auth | distance | volume) ;;
	events) run_events=1 ;;
	tracing) run_tracing=1 ;;
	*) die "BENCH_SECTIONS must be a comma-separated list of gps, events, fanout, export, snapshots, auth, tracing, distance and volume, got '$sections'" ;;
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

# The servers started (pids) and their logs, in start order.
server_pids=()
server_logs=()
# The process has exited (a zombie until we wait for it, or already reaped).
server_gone() { # PID
	case "$(ps -o stat= -p "$1" 2>/dev/null || true)" in
	"" | Z*) return 0 ;;
	esac
	return 1
}
# Stops a server: SIGTERM, SIGKILL after 10 s; says so when it had exited already.
stop_server() { # PID
	if server_gone "$1"; then
		local server_status=0
		wait "$1" 2>/dev/null || server_status=$?
		say "the server (pid $1) exited before the end of the run (status $server_status)"
		return
	fi
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$1" 2>/dev/null; then
		say "warning: server $1 ignored SIGTERM for 10 s; killing it"
		kill -KILL "$1" 2>/dev/null || true
	fi
	wait "$1" 2>/dev/null || true
}
# Stops the servers before throwaway.sh stops the cluster (and shows their logs' tails after a failure),
# then writes the top statements when BENCH_PG_STATEMENTS asks for them.
before_exit() { # STATUS
	local i
	for i in "${!server_pids[@]}"; do
		stop_server "${server_pids[$i]}"
		if [ "$1" -ne 0 ] && [ -s "${server_logs[$i]}" ]; then
			say "last lines of ${server_logs[$i]##*/}:"
			tail -n 20 "${server_logs[$i]}" >&2 || true
		fi
	done
	if [ "$pg_statements" -gt 0 ] && [ -n "${DATABASE_URL:-}" ]; then
		say "the $pg_statements statements of most total time (pg_stat_statements, whole run):"
		"${PGBIN:-/usr/lib/postgresql/15/bin}/psql" "$DATABASE_URL" -X -P pager=off -c "
			SELECT calls, round(total_exec_time)::bigint AS exec_ms,
			       round((1000 * total_exec_time / nullif(calls, 0))::numeric, 1) AS exec_us,
			       plans, round((1000 * total_plan_time / nullif(plans, 0))::numeric, 1) AS plan_us,
			       rows, left(regexp_replace(query, '\s+', ' ', 'g'), 100) AS query
			  FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT $pg_statements" >&2 || true
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
if [ "$pg_statements" -gt 0 ]; then
	"${PGBIN:-/usr/lib/postgresql/15/bin}/psql" "$DATABASE_URL" -X -q -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >&2
fi

# free_port VAR: sets VAR to a free port that nothing else of this run uses.
used_ports=("$pg_port")
free_port() {
	local p
	for _ in $(seq 1 20); do
		p="$("$PG" free-port)"
		if [[ " ${used_ports[*]} " != *" $p "* ]]; then
			used_ports+=("$p")
			printf -v "$1" %s "$p"
			return 0
		fi
	done
	die "no free port distinct from ${used_ports[*]}"
}

receiver_args=()
cert_env=()
if [ "$run_events" -eq 1 ]; then
	cert="$(bin/ftbench -write-receiver-cert "$tmp/receiver")"
	receiver_args=(-receiver-cert "$cert" -receiver-key "$tmp/receiver/receiver-key.pem")
	cert_env=(SSL_CERT_FILE="$cert")
fi

# The OTEL_* variables of the caller's environment: none reaches the untraced server; the batch span
# processor's reach the traced one.
bsp_env=()
while IFS= read -r v; do
	case "$v" in
	OTEL_BSP_*) bsp_env+=("$v=${!v}") ;;
	esac
	unset "$v"
done < <(compgen -e | grep '^OTEL_' || true)

# start_server LOG [VAR=VALUE...]: starts bin/fieldtrack serve on a free port with the bench's settings
# (the variables given override them), logging to LOG, and waits for /ready; sets server_pid and
# server_url.
start_server() {
	local log="$1" port
	shift
	free_port port
	server_url="http://127.0.0.1:$port"
	say "starting a server on $server_url ($log)"
	# The rate limits are on, as in production, but too high to refuse the load (the auth section
	# measures their cost).
	env "${cert_env[@]}" PORT="$port" APP_ENV=production LOG_LEVEL=warn \
		RATE_LIMIT_USER_PER_MIN=1000000 RATE_LIMIT_ORG_PER_MIN=10000000 RATE_LIMIT_API_KEY_PER_MIN=1000000 \
		RATE_LIMIT_IP_PER_MIN=10000000 RATE_LIMIT_LOCATIONS_PER_10S=100000 RATE_LIMIT_EXPENSES_PER_MIN=100000 \
		RATE_LIMIT_RECALCULATE_PER_MIN=100000 \
		DB_MAX_CONNS="$((concurrency + 4))" EVENTS_LISTENER_ENABLED=true RECEIPTS_DIR="$tmp/receipts" \
		LISTENER_DATABASE_URL="${DATABASE_URL/:\/\/*@/://fieldtrack_listener@}" \
		WEBHOOK_WORKER_ENABLED=true WEBHOOK_ALLOW_PRIVATE_TARGETS=true \
		"$@" bin/fieldtrack serve >"$log" 2>&1 &
	server_pid=$!
	server_pids+=("$server_pid")
	server_logs+=("$log")
	for _ in $(seq 1 150); do
		! server_gone "$server_pid" || die "the server on $server_url exited during start-up"
		if curl -fsS -o /dev/null --max-time 2 "$server_url/ready" 2>/dev/null; then
			return 0
		fi
		sleep 0.2
	done
	die "the server on $server_url did not become ready within 30 s"
}

start_server "$tmp/server.log"
main_url="$server_url" main_pid="$server_pid"
tracing_args=()
if [ "$run_tracing" -eq 1 ]; then
	free_port collector_port
	collector="127.0.0.1:$collector_port"
	start_server "$tmp/server-traced.log" "${bsp_env[@]}" \
		EVENTS_LISTENER_ENABLED=false WEBHOOK_WORKER_ENABLED=false \
		OTEL_EXPORTER_OTLP_ENDPOINT="http://$collector" OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
		OTEL_TRACES_SAMPLER=always_on OTEL_SERVICE_NAME=fieldtrack-bench
	tracing_args=(-traced-url "$server_url" -traced-pid "$server_pid" -collector "$collector")
fi

say "running ftbench ($sections): GPS ${seconds}s per phase, $concurrency workers, $employees employees;" \
	"events ${events_rate}/s for ${events_seconds}s, $events_per_tx per tx; export of $export_rows expenses;" \
	"snapshots of $snap_employees employees, $snap_sessions sessions, $snap_points fixes"
bin/ftbench -url "$main_url" -server-pid "$main_pid" -sections "$sections" \
	-seconds "$seconds" -warmup "$warmup" -concurrency "$concurrency" -employees "$employees" \
	-events-rate "$events_rate" -events-seconds "$events_seconds" -events-per-tx "$events_per_tx" \
	-fanout-streams "$fanout_streams" -fanout-orgs "$fanout_orgs" -fanout-rate "$fanout_rate" \
	-fanout-seconds "$fanout_seconds" -export-rows "$export_rows" \
	-snapshot-employees "$snap_employees" -snapshot-sessions "$snap_sessions" -snapshot-points "$snap_points" \
	-volume-points "$volume_points" \
	"${receiver_args[@]}" "${tracing_args[@]}"
