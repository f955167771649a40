# shellcheck shell=bash
# Sourced by test.sh and bench.sh (which define PG and say): a throwaway PostgreSQL cluster for one run.
#
#   throwaway_cluster NAME [fast]
#
# starts a cluster on a free port ($pg_port) in a new temporary directory ($tmp, data in $datadir) and
# exports DATABASE_URL. When the script exits, also on failure or Ctrl-C, the script's own before_exit
# STATUS runs first when it defines one, then the cluster is stopped and $tmp removed; the exit status is
# kept.

tmp=""
datadir=""

throwaway_cleanup() {
	local status=$?
	trap '' INT TERM
	if declare -F before_exit >/dev/null; then
		before_exit "$status"
	fi
	if [ -n "$datadir" ]; then
		"$PG" stop "$datadir" || say "warning: could not stop the cluster in $datadir"
	fi
	if [ -n "$tmp" ]; then
		rm -rf -- "$tmp" || say "warning: could not remove $tmp"
	fi
	exit "$status"
}

throwaway_cluster() {
	trap throwaway_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	tmp="$("$PG" tempdir "$1")"
	datadir="$tmp/pg"
	pg_port="$("$PG" free-port)"
	"$PG" start "$datadir" "$pg_port" ${2:+"$2"}
	DATABASE_URL="$("$PG" url "$pg_port")"
	export DATABASE_URL
}
