#!/usr/bin/env bash
# Run the pinned sqlc version, installing it into $(go env GOPATH)/bin first
# when it is missing or a different version.
#
#   scripts/sqlc.sh generate
#   scripts/sqlc.sh diff
set -euo pipefail

SQLC_VERSION="v1.31.1"
SQLC_MODULE="github.com/sqlc-dev/sqlc/cmd/sqlc"

die() { echo "sqlc.sh: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "go not found on PATH"

gopath="$(go env GOPATH)"
gopath="${gopath%%:*}"
sqlc="$gopath/bin/sqlc"

have="$("$sqlc" version 2>/dev/null || true)"
if [ "$have" != "$SQLC_VERSION" ]; then
	echo "sqlc.sh: installing sqlc $SQLC_VERSION (found: ${have:-none}); this compiles cgo code and can take a few minutes" >&2
	# sqlc's PostgreSQL parser needs cgo.
	CGO_ENABLED=1 GOBIN="$gopath/bin" go install "$SQLC_MODULE@$SQLC_VERSION" ||
		die "go install $SQLC_MODULE@$SQLC_VERSION failed (needs network and a C compiler)"
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec "$sqlc" "$@"
