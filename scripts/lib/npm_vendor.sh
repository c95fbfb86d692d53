# shellcheck shell=bash
# For the scripts that vendor an npm package (scripts/vendor_*.sh): sourced by them, not run.

# npm_pack_verified PACKAGE VERSION INTEGRITY DIR
# Downloads the package's tarball from the npm registry into DIR and prints its path; fails, printing nothing,
# unless the tarball's sha512 is INTEGRITY (the registry's `npm view PACKAGE@VERSION dist.integrity`), so that
# nothing is vendored or built from a tarball that was not checked.
npm_pack_verified() {
    local package="$1" version="$2" integrity="$3" dir="$4"
    command -v npm >/dev/null || { echo "npm is missing: apt-get install npm" >&2; return 1; }
    (cd "$dir" && npm pack --silent "$package@$version" >/dev/null) || return 1
    # npm names the tarball after the package without the scope's @ and with - for / (@a/b 1.0: a-b-1.0.tgz).
    local name="${package#@}"
    local tarball="$dir/${name//\//-}-$version.tgz"
    local actual
    actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
    if [[ "$actual" != "$integrity" ]]; then
        echo "$package@$version: integrity $actual, expected $integrity; not vendored" >&2
        return 1
    fi
    echo "$tarball"
}
