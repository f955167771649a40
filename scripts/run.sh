#!/usr/bin/env bash
# Run the API locally (called by `make run` after `make build`).
#
# DATABASE_URL: taken from the environment when set; otherwise the dev
#   cluster is started on DEV_PG_PORT (default 54329) and its URL used.
# JWT_SECRET: taken from the environment when set; otherwise read from
#   .local/jwt-secret, which is generated (mode 600) on first use.
# APP_ENV defaults to development, PORT to 8080.
#
# Then: bin/fieldtrack migrate up, bin/fieldtrack seed, exec bin/fieldtrack serve.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PG=scripts/pg.sh
BIN=bin/fieldtrack

say() { echo "run.sh: $*" >&2; }
die() { echo "run.sh: error: $*" >&2; exit 1; }

[ -x "$BIN" ] || die "$BIN not found; run 'make build' (or 'make run')"

if [ -n "${DATABASE_URL:-}" ]; then
	say "using DATABASE_URL from the environment; not starting a cluster"
else
	port="${DEV_PG_PORT:-54329}"
	"$PG" ensure-packages
	datadir="$("$PG" devdir)"
	"$PG" start "$datadir" "$port"
	DATABASE_URL="$("$PG" url "$port")"
fi
export DATABASE_URL

if [ -z "${JWT_SECRET:-}" ]; then
	secret_file=.local/jwt-secret
	if [ ! -s "$secret_file" ]; then
		mkdir -p .local
		(
			umask 077
			head -c 32 /dev/urandom | base64 >"$secret_file.tmp"
			mv -f "$secret_file.tmp" "$secret_file"
		)
		say "generated $secret_file"
	fi
	chmod 600 "$secret_file"
	JWT_SECRET="$(cat "$secret_file")"
fi
export JWT_SECRET

# The demo accounts' password: made once, kept in .local (ignored by git), printed by the seed.
if [ -z "${DEMO_PASSWORD:-}" ]; then
	pw_file=.local/demo-password
	if [ ! -s "$pw_file" ]; then
		mkdir -p .local
		(
			umask 077
			head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pw_file.tmp"
			mv -f "$pw_file.tmp" "$pw_file"
		)
	fi
	DEMO_PASSWORD="$(cat "$pw_file")"
fi
export DEMO_PASSWORD

export APP_ENV="${APP_ENV:-development}"
export PORT="${PORT:-8080}"

say "migrate up"
"$BIN" migrate up
say "seed"
"$BIN" seed
say "serving on :$PORT (APP_ENV=$APP_ENV)"
exec "$BIN" serve
