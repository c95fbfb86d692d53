#!/usr/bin/env bash
# Vendors Bitcoin Connect (@getalby/bitcoin-connect: the "Connect wallet" button and modal, WebLN and Nostr Wallet
# Connect) for the checkout into service/web/static/vendor/bitcoin-connect/. The page loads nothing from a CDN.
#
# The package ships no self-contained browser build: its UMD and ES builds import @getalby/sdk, zustand,
# @getalby/lightning-tools and qrcode-generator by name (its README loads it from esm.sh, a CDN that bundles on
# the fly). So this script does what esm.sh does, here and pinned: it installs the package and its dependencies
# from the npm registry at the versions in package-lock.json (npm ci checks every tarball against the lock's
# integrity hash; the package itself is also checked against INTEGRITY below, by scripts/lib/npm_vendor.sh as
# for Swagger UI), and bundles them with esbuild (pinned too) into one IIFE that sets window.bitcoinConnect.
# Lightning Node Connect (@lightninglabs/lnc-web, a large WebAssembly client the checkout does not offer) is
# replaced by a stub that refuses; the checkout's modal shows only the NWC and browser-extension connectors.
#
# Run it again after changing VERSION and INTEGRITY (`npm view @getalby/bitcoin-connect@<version> dist.integrity`)
# with --update-lock, which resolves the dependencies afresh and writes the new package-lock.json; without it the
# lock is used as it is, so the bundle is the same from one run to the next.
set -euo pipefail

PACKAGE=@getalby/bitcoin-connect
VERSION=3.12.3
INTEGRITY='sha512-2d+tNHBCZBoImKJgZwTUOyK9ypXaTg/hwvtQ8EHbgSKKkuycOrks7SzlUc0iJHthD3JGFVMWZEgOgw4AQVVE4w=='
ESBUILD_VERSION=0.28.2

root="$(cd "$(dirname "$0")/.." && pwd)"
target="$root/service/web/static/vendor/bitcoin-connect"
lock="$target/package-lock.json"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# shellcheck source=lib/npm_vendor.sh
source "$root/scripts/lib/npm_vendor.sh"

# The package's own tarball, checked against the pinned integrity before anything is built from it.
npm_pack_verified "$PACKAGE" "$VERSION" "$INTEGRITY" "$work" >/dev/null

cat > "$work/package.json" <<EOF
{"name": "volta-bitcoin-connect-bundle", "private": true,
 "dependencies": {"$PACKAGE": "$VERSION", "esbuild": "$ESBUILD_VERSION"}}
EOF
if [[ "${1:-}" == "--update-lock" || ! -f "$lock" ]]; then
    (cd "$work" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
else
    cp "$lock" "$work/package-lock.json"
    (cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
fi
installed="$(node -p "require('$work/node_modules/$PACKAGE/package.json').version")"
[[ "$installed" == "$VERSION" ]] || { echo "npm installed $PACKAGE@$installed, not $VERSION" >&2; exit 1; }

mkdir -p "$work/src"
echo "export * from \"$PACKAGE\";" > "$work/src/entry.js"
echo 'export default class LNC { constructor() { throw new Error("Lightning Node Connect is not offered here"); } }' \
    > "$work/src/no-lnc.js"
# crypto: lightning-tools imports node's crypto only inside a server-side L402 helper the page never calls.
(cd "$work" && node_modules/.bin/esbuild src/entry.js --bundle --format=iife --global-name=bitcoinConnect \
    --minify --target=es2020 --legal-comments=eof --charset=utf8 --external:crypto \
    --alias:@lightninglabs/lnc-web=./src/no-lnc.js --metafile=meta.json --outfile=bitcoin-connect.js --log-level=warning)

mkdir -p "$target"
cp "$work/bitcoin-connect.js" "$target/bitcoin-connect.js"
cp "$work/package-lock.json" "$lock"
echo "$VERSION" > "$target/VERSION"
# The one inline style Bitcoin Connect writes: each connector tile's colour, as a style attribute
# (`style="background: <colour>;"`, a Lit binding: CSP blocks it, adoptedStyleSheets are not affected). The page's
# CSP allows exactly these attribute values by hash ('unsafe-hashes', service/web/security.py reads this file), no
# other inline style. The colours are the third argument of each connector's constructor, super(type, title, colour).
colours="$(grep -o 'super("[a-z.]*",[^,]*,"#[0-9a-fA-F]\{6\}"' "$target/bitcoin-connect.js" | grep -o '#[0-9a-fA-F]\{6\}' | sort -u)"
[[ -n "$colours" ]] || { echo "no connector colours found in the bundle: check its tiles' style attribute" >&2; exit 1; }
for colour in $colours; do
    printf "'sha256-%s'\n" "$(printf 'background: %s;' "$colour" | openssl dgst -sha256 -binary | base64 -w0)"
done > "$target/style-attr-hashes.txt"
# Every bundled package's licence, named by package and version (esbuild keeps only the legal comments).
(cd "$work" && node -e '
const fs = require("fs"), path = require("path");
const inputs = Object.keys(JSON.parse(fs.readFileSync("meta.json")).inputs);
const roots = new Set(inputs.map((p) => p.match(/^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//)).filter(Boolean).map((m) => m[1]));
for (const dir of [...roots].sort()) {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "package.json")));
  const licence = fs.readdirSync(dir).find((name) => /^(licen[cs]e|copying)/i.test(name));
  process.stdout.write(`== ${manifest.name}@${manifest.version} (${manifest.license || "see below"})\n\n`);
  process.stdout.write(licence ? fs.readFileSync(path.join(dir, licence), "utf8").trim() + "\n\n" : "(no licence file in the package)\n\n");
}
process.stdout.write("the build of @getalby/sdk has nostr-tools, @noble/* and @scure/* inside it; their notices are at the end of " +
  "bitcoin-connect.js (esbuild --legal-comments=eof).\n");' > "$target/LICENSES.txt")
echo "vendored $PACKAGE@$VERSION (bundled with esbuild@$ESBUILD_VERSION) into ${target#"$root"/}:" \
    "bitcoin-connect.js ($(wc -c < "$target/bitcoin-connect.js") bytes), LICENSES.txt, package-lock.json, VERSION," \
    "style-attr-hashes.txt ($(wc -l < "$target/style-attr-hashes.txt") tile colours)"
