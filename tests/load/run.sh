#!/bin/sh
# The mixed-traffic load test (see load.py): starts its own stack on
# loopback, drives it through nginx for FA_LOAD_SECONDS (default 300), prints
# the figures and exits non-zero on any violation.  Needs root (PostgreSQL
# runs as the postgres user).  `make load` runs the full 5 minutes; CI runs
# FA_LOAD_SECONDS=30 tests/load/run.sh.
here=$(cd "$(dirname "$0")" && pwd)
: "${FA_SRCDIR:=$(cd "$here/../.." && pwd)}"
: "${FA_BUILDDIR:=$FA_SRCDIR}"
: "${FA_BIN:=$FA_BUILDDIR/fcgi-auth}"
export FA_SRCDIR FA_BUILDDIR FA_BIN PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
exec python3 "$here/load.py" "$@"
