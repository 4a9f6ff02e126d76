#!/bin/sh
# The end-to-end suite: throwaway PostgreSQL, Redis, fcgi-auth, nginx and
# lighttpd on free 127.0.0.1 ports (see harness.py).  Run by `make check`
# (TESTS) with FA_BIN, FA_SRCDIR and FA_BUILDDIR set; by hand:
#     FA_BIN=./fcgi-auth tests/e2e/run.sh [test_module | test_name ...]
# or `make e2e E2E=test_name`.  Prints one line "N passed, N failed" at the
# end and exits non-zero if any test failed, 77 (skipped) when python3,
# PostgreSQL, Redis, nginx or lighttpd is missing.  FA_KEEP=1 keeps the state
# directories (logs, configs) of the run; FA_VERBOSE=1 narrates.
here=$(cd "$(dirname "$0")" && pwd)
: "${FA_SRCDIR:=$(cd "$here/../.." && pwd)}"
: "${FA_BUILDDIR:=$FA_SRCDIR}"
: "${FA_BIN:=$FA_BUILDDIR/fcgi-auth}"
export FA_SRCDIR FA_BUILDDIR FA_BIN
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
if [ "$(id -u)" != 0 ] && ! command -v runuser >/dev/null 2>&1; then
	echo "run.sh: needs root (PostgreSQL runs as the postgres user)" >&2
fi
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 not installed"; exit 77; }
exec python3 "$here/harness.py" run "$@"
