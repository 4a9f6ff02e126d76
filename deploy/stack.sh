#!/bin/bash
# deploy/stack.sh: a throwaway fcgi-auth deployment on this machine's loopback.
#
#   deploy/stack.sh up [--port 8080] [--state DIR] [--no-install] [--no-build]
#       as root on Debian 12: installs the packages (apt-get), builds
#       (autogen, configure, make), then starts PostgreSQL (a private cluster
#       run as the postgres user), Redis, fcgi-auth, nginx and lighttpd on
#       127.0.0.1, migrates, generates a random JWT secret, and prints where
#       to send requests.  State, logs and PIDs live in DIR (default ./state).
#   deploy/stack.sh down   [--state DIR]   stops exactly what `up` started (by PID)
#   deploy/stack.sh status [--state DIR]
#   deploy/stack.sh install | build        only the first steps of `up`
#
# The system services of the packages (postgresql, redis-server, nginx,
# lighttpd on ports 5432/6379/80) are neither used nor touched.  Starting
# and stopping is implemented once, in tests/e2e/harness.py (the test
# suite uses the same code).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-help}
[ $# -gt 0 ] && shift
state=$top/state
port=8080
install=1
build=1
while [ $# -gt 0 ]; do
	case $1 in
	--state) state=$2; shift 2 ;;
	--port) port=$2; shift 2 ;;
	--no-install) install=0; shift ;;
	--no-build) build=0; shift ;;
	*) echo "stack.sh: unknown option $1" >&2; exit 2 ;;
	esac
done

PACKAGES="autoconf automake libtool pkg-config make gcc
	libfcgi-dev libpq-dev libjwt-dev libsodium-dev libhiredis-dev
	libjansson-dev libssl-dev libcrypt-dev libidn2-dev libcmocka-dev
	libcurl4-openssl-dev python3-aiosmtpd
	postgresql redis-server nginx lighttpd spawn-fcgi
	liboath-dev libqrencode-dev oathtool zbar-tools librsvg2-bin
	curl jq python3 wrk openssl systemd iproute2"

install_packages() {
	if [ "$(id -u)" != 0 ]; then
		echo "stack.sh: run as root (apt-get, and PostgreSQL runs as user postgres)" >&2
		exit 1
	fi
	missing=
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		echo "== installing:$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		# policy-rc.d: do not start the packages' system services
		# (we run our own instances on other ports)
		rcd=/usr/sbin/policy-rc.d
		created=0
		if [ ! -e $rcd ]; then
			printf '#!/bin/sh\nexit 101\n' > $rcd && chmod +x $rcd && created=1
		fi
		# shellcheck disable=SC2086
		rc=0
		apt-get install -y -qq --no-install-recommends $missing || rc=$?
		if [ $created = 1 ]; then rm -f $rcd; fi
		if [ $rc != 0 ]; then exit $rc; fi
	fi
	return 0
}

build() {
	echo "== building"
	cd "$top"
	[ -x configure ] || ./autogen.sh
	[ -f Makefile ] || ./configure
	make -j"$(nproc)" fcgi-auth
}

harness() {
	FA_SRCDIR=$top FA_BUILDDIR=$top FA_BIN=${FA_BIN:-$top/fcgi-auth} \
		PYTHONDONTWRITEBYTECODE=1 python3 "$top/tests/e2e/harness.py" "$@"
}

case $cmd in
install)
	install_packages
	;;
build)
	build
	;;
up)
	if [ $install = 1 ]; then install_packages; fi
	if [ $build = 1 ]; then build; fi
	harness up --state "$state" --port "$port"
	;;
down)
	harness down --state "$state"
	;;
status)
	harness status --state "$state"
	;;
*)
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
	[ "$cmd" = help ] || exit 2
	;;
esac
