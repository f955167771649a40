#!/usr/bin/env bash
# Local PostgreSQL 15 clusters for development and tests (loopback only,
# trust auth: never use these settings for anything reachable from outside).
#
# Usage:
#   scripts/pg.sh ensure-packages          install server + pg_cron + PostGIS if missing
#   scripts/pg.sh init DATADIR PORT [fast] initdb if needed, (re)write our settings
#   scripts/pg.sh start DATADIR PORT [fast] init if needed, start, create db "fieldtrack"
#   scripts/pg.sh stop DATADIR             fast shutdown; fine if not running
#   scripts/pg.sh remove DATADIR           stop, then delete DATADIR and its log
#   scripts/pg.sh status DATADIR           exit 0 if running (prints the port)
#   scripts/pg.sh url PORT                 print the connection URL
#   scripts/pg.sh free-port                print a free TCP port on 127.0.0.1 below the ephemeral range
#   scripts/pg.sh devdir                   print the dev data directory
#   scripts/pg.sh tempdir NAME             make and print a temporary directory the server user can use
#
# PostgreSQL refuses to run as root: when invoked as root, the server tools run
# as the OS user "postgres" (runuser) and data directories must be reachable by
# that user; the dev cluster then lives under /var/tmp instead of .local/pg.
set -euo pipefail

PG_MAJOR=15
PGBIN="/usr/lib/postgresql/$PG_MAJOR/bin"
PGSHARE="/usr/share/postgresql/$PG_MAJOR"
SERVER_USER=postgres
DB_USER=fieldtrack
DB_NAME=fieldtrack

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PROG="pg.sh"

say() { echo "$PROG: $*" >&2; }
die() { echo "$PROG: error: $*" >&2; exit 1; }
bad_args() { die "usage: scripts/pg.sh $*"; }
# one_datadir CMD ARGS...: the absolute path of CMD's one DATADIR argument (or a usage error).
one_datadir() {
	[ $# -eq 2 ] || bad_args "$1 DATADIR"
	abs_path "$2"
}

is_root() { [ "$(id -u)" -eq 0 ]; }

usage() { # [exit status]
	sed -n "5,14p" "${BASH_SOURCE[0]}" | sed "s/^# \{0,1\}//" >&2
	exit "${1:-2}"
}

# Run a server-side command (initdb, pg_ctl, file edits inside DATADIR) as the
# user that owns the cluster. From "/" so an unreadable cwd does not matter.
as_server() {
	if is_root; then
		(cd / && runuser -u "$SERVER_USER" -- "$@")
	else
		"$@"
	fi
}

check_port_arg() {
	[[ "${1:-}" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ] ||
		die "invalid port '${1:-}' (expected 1-65535)"
}

abs_path() { realpath -m -- "$1"; }

log_file() { echo "$(dirname "$1")/$(basename "$1").log"; }

require_server() {
	[ -x "$PGBIN/postgres" ] ||
		die "PostgreSQL $PG_MAJOR server not found in $PGBIN; run: scripts/pg.sh ensure-packages"
	if is_root; then
		id -u "$SERVER_USER" >/dev/null 2>&1 ||
			die "running as root but OS user '$SERVER_USER' does not exist (it comes with the postgresql-$PG_MAJOR package)"
	fi
}

# Something accepting TCP connections on 127.0.0.1:PORT?
port_in_use() {
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

is_running() { # DATADIR
	[ -f "$1/PG_VERSION" ] || return 1
	as_server "$PGBIN/pg_ctl" status -D "$1" >/dev/null 2>&1
}

running_port() { # DATADIR -> port from postmaster.pid (4th line)
	as_server sed -n '4p' "$1/postmaster.pid" 2>/dev/null || true
}

psql_admin() { # PORT ARGS...
	local port="$1"
	shift
	PGCONNECT_TIMEOUT=5 "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 \
		-h 127.0.0.1 -p "$port" -U "$DB_USER" -d postgres "$@"
}

cmd_ensure_packages() {
	local pkgs=() cron_found=0 libdir
	[ -x "$PGBIN/postgres" ] || pkgs+=("postgresql-$PG_MAJOR")
	for libdir in "$(pg_config --pkglibdir 2>/dev/null || true)" "/usr/lib/postgresql/$PG_MAJOR/lib"; do
		if [ -n "$libdir" ] && [ -f "$libdir/pg_cron.so" ]; then cron_found=1; fi
	done
	if [ "$cron_found" -eq 0 ] || [ ! -f "$PGSHARE/extension/postgis.control" ]; then
		pkgs+=("postgresql-$PG_MAJOR-cron" "postgresql-$PG_MAJOR-postgis-3")
	fi
	if [ "${#pkgs[@]}" -eq 0 ]; then
		return 0
	fi

	local cmd="apt-get update && apt-get install -y ${pkgs[*]}"
	say "missing packages: ${pkgs[*]}"
	if is_root; then
		say "running: $cmd"
		apt-get update -q >&2 || die "apt-get update failed"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >&2 ||
			die "apt-get install ${pkgs[*]} failed"
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		say "running with sudo: $cmd"
		sudo -n apt-get update -q >&2 || die "sudo apt-get update failed"
		sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >&2 ||
			die "sudo apt-get install ${pkgs[*]} failed"
	else
		echo "$cmd" >&2
		die "required packages are missing; run the command above as root"
	fi

	[ -x "$PGBIN/postgres" ] || die "postgresql-$PG_MAJOR installed but $PGBIN/postgres is still missing"
	[ -f "$PGSHARE/extension/postgis.control" ] || die "PostGIS still missing after install"
	say "packages installed"
}

# As root: make DATADIR (and its log file) usable by the server user.
prepare_dirs_as_root() { # DATADIR
	local datadir="$1" parent log
	parent="$(dirname "$datadir")"
	log="$(log_file "$datadir")"
	if [ ! -d "$parent" ]; then
		install -d -o "$SERVER_USER" -g "$SERVER_USER" -m 700 "$parent"
	fi
	[ ! -L "$datadir" ] || die "$datadir is a symlink; refusing to use it as root"
	if [ -d "$datadir" ]; then
		local owner
		owner="$(stat -c %U "$datadir")"
		case "$owner" in
		"$SERVER_USER") ;;
		root) chown "$SERVER_USER:$SERVER_USER" "$datadir" ;;
		*) die "$datadir is owned by '$owner'; as root it must belong to '$SERVER_USER' or root" ;;
		esac
	else
		mkdir -p "$datadir"
		chown "$SERVER_USER:$SERVER_USER" "$datadir"
	fi
	chmod 700 "$datadir"
	runuser -u "$SERVER_USER" -- test -w "$datadir" -a -x "$datadir" 2>/dev/null ||
		die "user '$SERVER_USER' cannot reach $datadir (a parent directory is not traversable); use a directory under /var/tmp or /tmp"
	if [ ! -L "$log" ]; then
		[ -e "$log" ] || install -m 640 -o "$SERVER_USER" -g "$SERVER_USER" /dev/null "$log"
		chown "$SERVER_USER:$SERVER_USER" "$log"
	fi
}

cmd_init() { # DATADIR PORT [fast]
	[ $# -ge 2 ] && [ $# -le 3 ] || bad_args "init DATADIR PORT [fast]"
	local datadir port fast="${3:-}"
	datadir="$(abs_path "$1")"
	port="$2"
	check_port_arg "$port"
	[ -z "$fast" ] || [ "$fast" = fast ] || die "unknown option '$fast' (expected 'fast')"
	require_server

	if is_running "$datadir"; then
		die "cluster in $datadir is running; stop it before re-initialising its settings"
	fi

	if is_root; then
		prepare_dirs_as_root "$datadir"
	else
		mkdir -p "$datadir"
		chmod 700 "$datadir"
	fi

	if [ ! -f "$datadir/PG_VERSION" ]; then
		local locale_opt=(--no-locale)
		if locale -a 2>/dev/null | grep -ix 'c\.utf-\{0,1\}8' >/dev/null; then
			locale_opt=(--locale=C.UTF-8)
		fi
		say "initdb $datadir"
		local out
		if ! out="$(as_server "$PGBIN/initdb" -D "$datadir" -U "$DB_USER" --auth=trust \
			-E UTF8 "${locale_opt[@]}" 2>&1)"; then
			echo "$out" >&2
			die "initdb failed for $datadir"
		fi
	fi

	# Our settings live in a marked block that is rewritten on every init, so
	# port/fast changes take effect on the next start.
	local conf="$datadir/postgresql.conf" settings preload=pg_cron
	# PG_STAT_STATEMENTS=1 (bench.sh's BENCH_PG_STATEMENTS) also loads pg_stat_statements, counting the
	# statements inside functions and their planning too.
	if [ "${PG_STAT_STATEMENTS:-0}" = 1 ]; then
		preload=pg_cron,pg_stat_statements
	fi
	# PG_CITUS=1 (scripts/citus.sh) makes the node of a Citus cluster: citus must come first.
	if [ "${PG_CITUS:-0}" = 1 ]; then
		preload="citus,$preload"
	fi
	settings="# BEGIN fieldtrack (managed by scripts/pg.sh; rewritten on start)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
max_slot_wal_keep_size = '2GB'
shared_preload_libraries = '$preload'
cron.database_name = '$DB_NAME'
max_connections = 200
log_min_messages = warning
logging_collector = off"
	if [ "${PG_CITUS:-0}" = 1 ]; then
		settings+="
# a Citus node (see the README's \"Scaling past one Postgres\"): shard inserts decoded under their
# table's name, SET LOCAL (the claims) sent on to the workers
citus.enable_change_data_capture = on
citus.propagate_set_commands = 'local'"
	fi
	if [[ "$preload" == *pg_stat_statements* ]]; then
		settings+="
pg_stat_statements.track = all
pg_stat_statements.track_planning = on
track_functions = pl"
	fi
	if [ "$fast" = fast ]; then
		settings+="
# throwaway test cluster: durability off
fsync = off
synchronous_commit = off
full_page_writes = off"
	fi
	settings+="
# END fieldtrack"
	# shellcheck disable=SC2016
	printf '%s\n' "$settings" | as_server bash -c '
		set -e
		sed -i "/^# BEGIN fieldtrack/,/^# END fieldtrack/d" "$1"
		cat >>"$1"
		printf "%s\n" \
			"# managed by scripts/pg.sh: loopback only, dev/test clusters; analysts log in with their password" \
			"host all +fieldtrack_analyst 127.0.0.1/32 scram-sha-256" \
			"host all all 127.0.0.1/32 trust" \
			"host replication all 127.0.0.1/32 trust" >"$2"
	' _ "$conf" "$datadir/pg_hba.conf" || die "could not write settings into $datadir"
}

ensure_database() { # PORT
	local port="$1" exists
	exists="$(psql_admin "$port" -tAc "select 1 from pg_database where datname = '$DB_NAME'")" ||
		die "cannot connect to 127.0.0.1:$port as $DB_USER"
	if [ "$exists" != 1 ]; then
		psql_admin "$port" -c "create database $DB_NAME" || die "could not create database $DB_NAME"
		say "created database $DB_NAME"
	fi
}

cmd_start() { # DATADIR PORT [fast]
	[ $# -ge 2 ] && [ $# -le 3 ] || bad_args "start DATADIR PORT [fast]"
	local datadir port
	datadir="$(abs_path "$1")"
	port="$2"
	check_port_arg "$port"
	require_server

	if is_running "$datadir"; then
		local rport
		rport="$(running_port "$datadir")"
		if [ -n "$rport" ] && [ "$rport" != "$port" ]; then
			die "cluster in $datadir is already running on port $rport, not $port; stop it first"
		fi
		say "already running: $datadir (port $port)"
		ensure_database "$port"
		return 0
	fi

	if port_in_use "$port"; then
		die "port $port on 127.0.0.1 is already in use by another process (not the cluster in $datadir)"
	fi

	cmd_init "$datadir" "$port" ${3:+"$3"}

	local log
	log="$(log_file "$datadir")"
	say "starting postgres on 127.0.0.1:$port (data: $datadir, log: $log)"
	if ! as_server "$PGBIN/pg_ctl" start -D "$datadir" -l "$log" -w -t 60 -s; then
		tail -n 20 "$log" >&2 2>/dev/null || true
		die "postgres failed to start (see $log)"
	fi
	ensure_database "$port"
}

cmd_stop() { # DATADIR
	local datadir
	datadir="$(one_datadir stop "$@")"
	if [ ! -f "$datadir/PG_VERSION" ]; then
		say "no cluster in $datadir (nothing to stop)"
		return 0
	fi
	if ! is_running "$datadir"; then
		say "not running: $datadir"
		return 0
	fi
	as_server "$PGBIN/pg_ctl" stop -D "$datadir" -m fast -w -t 60 -s ||
		die "pg_ctl stop failed for $datadir"
	say "stopped: $datadir"
}

cmd_remove() { # DATADIR
	local datadir
	datadir="$(one_datadir remove "$@")"
	[ "$datadir" != / ] && [ "$datadir" != "$ROOT" ] || die "refusing to remove $datadir"
	if [ -e "$datadir" ] && [ ! -f "$datadir/PG_VERSION" ] && [ -n "$(ls -A "$datadir" 2>/dev/null)" ]; then
		die "$datadir is not a PostgreSQL data directory; not removing it"
	fi
	cmd_stop "$datadir"
	rm -rf -- "$datadir" "$(log_file "$datadir")"
	# The root-mode dev wrapper directory (/var/tmp/fieldtrack-pg-*) goes too
	# once empty.
	case "$(basename "$(dirname "$datadir")")" in
	fieldtrack-pg-*) rmdir -- "$(dirname "$datadir")" 2>/dev/null || true ;;
	esac
	say "removed: $datadir"
}

cmd_status() { # DATADIR
	local datadir
	datadir="$(one_datadir status "$@")"
	if is_running "$datadir"; then
		echo "running on port $(running_port "$datadir")"
	else
		echo "not running"
		return 3
	fi
}

cmd_url() { # PORT
	[ $# -eq 1 ] || bad_args "url PORT"
	check_port_arg "$1"
	echo "postgres://$DB_USER@127.0.0.1:$1/$DB_NAME?sslmode=disable"
}

cmd_free_port() {
	[ $# -eq 0 ] || bad_args "free-port"
	# Below the kernel's ephemeral range (where the tests' own client connections take their local
	# ports, which a listening socket cannot bind): 20000 up to it, at most 32767.
	local i p low=32768 hi
	if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
		read -r low _ </proc/sys/net/ipv4/ip_local_port_range || low=32768
	fi
	hi=$((low - 1 < 32767 ? low - 1 : 32767))
	[ "$hi" -gt 21000 ] || hi=32767
	for i in $(seq 1 200); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % (hi - 20000 + 1)))
		if ! port_in_use "$p"; then
			echo "$p"
			return 0
		fi
	done
	die "no free port found in 20000-$hi"
}

cmd_devdir() {
	[ $# -eq 0 ] || bad_args "devdir"
	if ! is_root; then
		echo "$ROOT/.local/pg"
		return 0
	fi
	# Root: the checkout may sit in a directory the postgres user cannot enter,
	# so keep the cluster under /var/tmp and remember where in .local/.
	local record="$ROOT/.local/pg-datadir" dir=""
	if [ -f "$record" ]; then
		dir="$(head -n 1 "$record")"
	fi
	if [ -z "$dir" ]; then
		local hash
		hash="$(printf '%s' "$ROOT" | sha256sum | cut -c1-10)"
		dir="/var/tmp/fieldtrack-pg-$hash/data"
		mkdir -p "$ROOT/.local"
		printf '%s\n' "$dir" >"$record"
	fi
	echo "$dir"
}

cmd_tempdir() { # NAME
	[ $# -eq 1 ] || bad_args "tempdir NAME"
	local dir
	if is_root; then
		# The server runs as "postgres": a directory that user can reach, whatever the checkout's parents.
		dir="$(mktemp -d "/tmp/$1.XXXXXX")"
		chown postgres:postgres "$dir"
	else
		dir="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
	fi
	echo "$dir"
}

main() {
	[ $# -ge 1 ] || usage 2
	local cmd="$1"
	shift
	case "$cmd" in
	ensure-packages) [ $# -eq 0 ] || bad_args "ensure-packages"; cmd_ensure_packages ;;
	init) cmd_init "$@" ;;
	start) cmd_start "$@" ;;
	stop) cmd_stop "$@" ;;
	remove) cmd_remove "$@" ;;
	status) cmd_status "$@" ;;
	url) cmd_url "$@" ;;
	free-port) cmd_free_port "$@" ;;
	devdir) cmd_devdir "$@" ;;
	tempdir) cmd_tempdir "$@" ;;
	-h | --help | help) usage 0 ;;
	*) die "unknown command '$cmd' (try: scripts/pg.sh help)" ;;
	esac
}

main "$@"
