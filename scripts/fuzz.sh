#!/usr/bin/env bash
# Run every Go fuzz target with -fuzz, one after another, each for FUZZTIME.
#
#   scripts/fuzz.sh [packages...]     (default: every package with a func Fuzz…)
#
#   FUZZTIME          how long each target fuzzes (default 30s; go test's -fuzztime: 30s, 1m, 5000x)
#   FUZZMINIMIZETIME  how long minimizing one new input may take (default 5s: the default 60s eats
#                     most of a short run)
#
# go test fuzzes one target per package per invocation, so targets are listed with
# `go test -list '^Fuzz'` and run in turn. No database is needed. A failing input is written to
# <package>/testdata/fuzz/<Target>/: fix the bug and commit the file, it is then a regression test that
# `go test` (make test) runs with the seed corpus. Every target runs even after a failure; the exit
# status is 1 when any failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZTIME="${FUZZTIME:-30s}"
FUZZMINIMIZETIME="${FUZZMINIMIZETIME:-5s}"

say() { echo "fuzz.sh: $*" >&2; }

command -v go >/dev/null 2>&1 || { say "error: go not found on PATH"; exit 1; }

if [ $# -eq 0 ]; then
	# Only the packages that have fuzz targets: listing compiles and starts each package's tests.
	pkgs=()
	while read -r path dir; do
		if grep -qs '^func Fuzz' "$dir"/*_test.go; then
			pkgs+=("$path")
		fi
	done < <(go list -f '{{.ImportPath}} {{.Dir}}' ./...)
	[ "${#pkgs[@]}" -gt 0 ] || { say "no fuzz targets"; exit 0; }
	set -- "${pkgs[@]}"
fi

failed=()
for pkg in $(go list "$@"); do
	mapfile -t targets < <(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
	for target in "${targets[@]}"; do
		say "$pkg $target for $FUZZTIME"
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" "$pkg"; then
			failed+=("$pkg $target")
		fi
	done
done

if [ "${#failed[@]}" -gt 0 ]; then
	say "failed:"
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
say "every target ran $FUZZTIME without a failure"
