#!/usr/bin/env bash
# A Citus cluster on loopback: a coordinator and two workers, each a scripts/pg.sh cluster with citus
# preloaded (loopback only, trust auth: never use these settings for anything reachable from outside).
#
# Usage:
#   scripts/citus.sh check                 exit 0 when the Citus extension is installed for PostgreSQL 15
#   scripts/citus.sh start DIR             start (creating on first use) the three nodes under DIR
#   scripts/citus.sh stop DIR              stop them; fine if not running
#   scripts/citus.sh url DIR               print the coordinator's connection URL
#   scripts/citus.sh test [go test args]   throwaway cluster: migrate, run the tests against the
#                                          coordinator, stop and remove it (default: the Citus tests,
#                                          internal/e2e/citus_test.go, built with -tags citus)
#
# Citus is not a Debian package here and is not downloaded by this script: install it from its source
# first (its own README says how); `make test-citus` only checks that it is there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PG="$ROOT/scripts/pg.sh"
PGSHARE=/usr/share/postgresql/15
PGBIN=/usr/lib/postgresql/15/bin
NODES=(coordinator worker1 worker2)

say() { echo "citus.sh: $*" >&2; }
die() { echo "citus.sh: error: $*" >&2; exit 1; }

cmd_check() {
	local sharedir
	sharedir="$(pg_config --sharedir 2>/dev/null || echo "$PGSHARE")"
	[ -f "$sharedir/extension/citus.control" ] || [ -f "$PGSHARE/extension/citus.control" ] ||
		die "the Citus extension is not installed for PostgreSQL 15 (no citus.control in $PGSHARE/extension); build and install it from Citus's source (v13.2.2 is the tested version), then run this again"
}

# psql_node PORT SQL: run SQL as the clusters' superuser in database fieldtrack.
psql_node() {
	PGCONNECT_TIMEOUT=5 "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -tA \
		-h 127.0.0.1 -p "$1" -U fieldtrack -d fieldtrack -c "$2"
}

port_of() { # DIR NODE
	sed -n "s/^$2=//p" "$1/ports"
}

cmd_start() { # DIR
	[ $# -eq 1 ] || die "usage: scripts/citus.sh start DIR"
	cmd_check
	local dir="$1" node port
	mkdir -p "$dir"
	if [ ! -f "$dir/ports" ]; then
		for node in "${NODES[@]}"; do
			echo "$node=$("$PG" free-port)"
		done >"$dir/ports"
	fi
	for node in "${NODES[@]}"; do
		port="$(port_of "$dir" "$node")"
		PG_CITUS=1 "$PG" start "$dir/$node" "$port" fast
		psql_node "$port" "CREATE EXTENSION IF NOT EXISTS citus"
	done
	local coord
	coord="$(port_of "$dir" coordinator)"
	psql_node "$coord" "SELECT citus_set_coordinator_host('127.0.0.1', $coord)" >/dev/null
	for node in worker1 worker2; do
		port="$(port_of "$dir" "$node")"
		psql_node "$coord" "SELECT citus_add_node('127.0.0.1', $port) WHERE NOT EXISTS (
			SELECT FROM pg_dist_node WHERE nodename = '127.0.0.1' AND nodeport = $port)" >/dev/null
	done
	say "coordinator on 127.0.0.1:$coord, workers on $(port_of "$dir" worker1) and $(port_of "$dir" worker2)"
}

cmd_stop() { # DIR
	[ $# -eq 1 ] || die "usage: scripts/citus.sh stop DIR"
	local node
	for node in "${NODES[@]}"; do
		[ ! -d "$1/$node" ] || "$PG" stop "$1/$node"
	done
}

cmd_url() { # DIR
	[ $# -eq 1 ] || die "usage: scripts/citus.sh url DIR"
	"$PG" url "$(port_of "$1" coordinator)"
}

cmd_test() { # [go test args]
	cmd_check
	[ $# -gt 0 ] || set -- -tags citus -run '^TestCitus' ./internal/e2e/
	local dir status=0
	dir="$("$PG" tempdir fieldtrack-citus)"
	# shellcheck disable=SC2064
	trap "cmd_stop '$dir' || true; rm -rf -- '$dir'" EXIT
	cmd_start "$dir"
	DATABASE_URL="$(cmd_url "$dir")"
	CITUS_WORKER_URLS="$("$PG" url "$(port_of "$dir" worker1)") $("$PG" url "$(port_of "$dir" worker2)")"
	JWT_SECRET="test-secret-not-for-production"
	export DATABASE_URL CITUS_WORKER_URLS JWT_SECRET
	cd "$ROOT"
	say "migrating $DATABASE_URL"
	go run ./cmd/fieldtrack migrate up
	say "go test -count=1 $* (against the coordinator)"
	go test -count=1 "$@" || status=$?
	[ "$status" -eq 0 ] || say "go test failed (exit $status)"
	return "$status"
}

main() {
	[ $# -ge 1 ] || die "usage: scripts/citus.sh check|start DIR|stop DIR|url DIR|test [args]"
	local cmd="$1"
	shift
	case "$cmd" in
	check) cmd_check "$@" ;;
	start) cmd_start "$@" ;;
	stop) cmd_stop "$@" ;;
	url) cmd_url "$@" ;;
	test) cmd_test "$@" ;;
	*) die "unknown command '$cmd'" ;;
	esac
}

main "$@"
