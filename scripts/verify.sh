#!/usr/bin/env bash
# Static checks (make verify / make lint):
#   1. sqlc diff   generated code matches sql/ + queries/ (skipped without a sqlc config)
#   2. gofmt -l    prints nothing for the tracked .go files
#   3. go vet ./...
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "verify.sh: $*" >&2; }
die() { echo "verify.sh: error: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "go not found on PATH"

echo "==> sqlc diff"
if [ -f sqlc.yaml ] || [ -f sqlc.yml ] || [ -f sqlc.json ]; then
	scripts/sqlc.sh diff || die "generated sqlc code is stale; run 'make generate' and commit the result"
else
	say "no sqlc.yaml/sqlc.yml/sqlc.json yet; skipping sqlc diff"
fi

echo "==> gofmt -l"
files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	while IFS= read -r -d '' f; do
		[ -f "$f" ] && files+=("$f")
	done < <(git ls-files -z -- '*.go')
else
	say "not a git work tree (or git refused it); checking every .go file"
	while IFS= read -r -d '' f; do
		files+=("$f")
	done < <(find . -name '*.go' -not -path './.local/*' -not -path './.git/*' -print0)
fi
if [ "${#files[@]}" -gt 0 ]; then
	unformatted="$(gofmt -l -- "${files[@]}")"
	if [ -n "$unformatted" ]; then
		echo "$unformatted" >&2
		die "files above need gofmt (run: gofmt -w <file>)"
	fi
fi

echo "==> go vet ./..."
go vet ./...
