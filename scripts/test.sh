#!/usr/bin/env bash
# Run the Go tests against a throwaway PostgreSQL cluster.
#
#   scripts/test.sh [go test args...]      (default: ./...)
#
# Starts a fast (fsync=off) cluster on a free port in a temporary directory,
# applies migrations, runs `go test -count=1 -race`, then always stops the
# cluster and deletes the directory (also on failure or Ctrl-C). Exits with
# go test's status.
#
# Exported to the migration and to go test:
#   DATABASE_URL  postgres://fieldtrack@127.0.0.1:<port>/fieldtrack?sslmode=disable
#   JWT_SECRET    test-secret-not-for-production
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PG=scripts/pg.sh

say() { echo "test.sh: $*" >&2; }
die() { echo "test.sh: error: $*" >&2; exit 1; }

[ $# -gt 0 ] || set -- ./...

command -v go >/dev/null 2>&1 || die "go not found on PATH"

"$PG" ensure-packages

# shellcheck source=scripts/throwaway.sh
. scripts/throwaway.sh
throwaway_cluster fieldtrack-test fast

JWT_SECRET="test-secret-not-for-production"
export JWT_SECRET

say "migrating $DATABASE_URL"
go run ./cmd/fieldtrack migrate up

say "go test -count=1 -race $*"
status=0
go test -count=1 -race "$@" || status=$?
if [ "$status" -ne 0 ]; then
	say "go test failed (exit $status)"
fi
exit "$status"
