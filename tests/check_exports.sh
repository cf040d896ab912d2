#!/bin/sh
# check_exports.sh LIB -- fails when the shared library exports a symbol
# whose name does not start with dm_ (the public API prefix).
set -eu
lib=$1
bad=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' |
      grep -v '^dm_' | grep -v '^_init$' | grep -v '^_fini$' || true)
if [ -n "$bad" ]; then
    echo "exported symbols without the dm_ prefix:" >&2
    echo "$bad" >&2
    exit 1
fi
n=$(nm -D --defined-only "$lib" | awk '$3 ~ /^dm_/' | wc -l)
[ "$n" -gt 0 ] || { echo "no dm_ symbols exported" >&2; exit 1; }
echo "ok: $n dm_* symbols, nothing else"
