#!/bin/sh
# The benchmark (see bench.py): starts its own stack on loopback, runs wrk
# against nginx, prints the table and ratios.  Needs root and wrk.
here=$(cd "$(dirname "$0")" && pwd)
: "${FA_SRCDIR:=$(cd "$here/../.." && pwd)}"
: "${FA_BUILDDIR:=$FA_SRCDIR}"
: "${FA_BIN:=$FA_BUILDDIR/fcgi-auth}"
export FA_SRCDIR FA_BUILDDIR FA_BIN PYTHONDONTWRITEBYTECODE=1
exec python3 "$here/bench.py" "$@"
