#!/usr/bin/env bash
# Vendors Swagger UI for the API docs page (/api/v1/docs) from its npm package, pinned by version and by the
# registry's integrity hash, into service/web/static/vendor/swagger-ui/. The page loads nothing from a CDN.
# Run it again after changing VERSION and INTEGRITY (`npm view swagger-ui-dist@<version> dist.integrity`).
set -euo pipefail

PACKAGE=swagger-ui-dist
VERSION=5.35.0
INTEGRITY='sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ=='
FILES=(swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE)

root="$(cd "$(dirname "$0")/.." && pwd)"
target="$root/service/web/static/vendor/swagger-ui"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# shellcheck source=lib/npm_vendor.sh
source "$root/scripts/lib/npm_vendor.sh"

tarball="$(npm_pack_verified "$PACKAGE" "$VERSION" "$INTEGRITY" "$work")"
tar -xzf "$tarball" -C "$work"
mkdir -p "$target"
for file in "${FILES[@]}"; do
    cp "$work/package/$file" "$target/$file"
done
echo "$VERSION" > "$target/VERSION"
# The bundle names its source map, which is not vendored: drop the comment so browsers do not ask for it.
sed -i '/^\/\/# sourceMappingURL=/d' "$target/swagger-ui-bundle.js"
sed -i 's|/\*# sourceMappingURL=[^*]*\*/||' "$target/swagger-ui.css"
echo "vendored $PACKAGE@$VERSION into ${target#"$root"/}: ${FILES[*]}"
