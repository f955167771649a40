#!/usr/bin/env bash
# Vendors Swagger UI (swagger-ui-dist from the npm registry, pinned) into internal/httpapi/docs, where the
# binary embeds it: GET /docs serves it with no CDN at run time. Run by `make docs-ui` when upgrading.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
version="${SWAGGER_UI_VERSION:-5.35.0}"
dest=internal/httpapi/docs
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "swagger-ui-dist@$version" >/dev/null && tar xzf "swagger-ui-dist-$version.tgz")
for f in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png LICENSE NOTICE; do
	cp "$tmp/package/$f" "$dest/$f"
done
echo "$version" >"$dest/VERSION"
echo "docs-ui.sh: swagger-ui-dist $version vendored into $dest"
