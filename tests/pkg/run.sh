#!/bin/sh
# The Debian package, end to end (CI step): build the .deb from a clean copy
# of the tree, lintian (no E: or W:), install it, run the installed binary's
# check-config and doctor on the packaged /etc/fcgi-auth.conf against a
# throwaway stack (tests/e2e/harness.py up), systemd-analyze verify the
# units, purge, and check that nothing of the package is left.  Needs root.
# Prints "N passed, N failed" and exits non-zero on a failure.
#     sh tests/pkg/run.sh            (from anywhere; FA_PKG_KEEP=1 keeps $tmp)
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d /tmp/fcgi-auth-pkg.XXXXXX)
state=$tmp/stack
pass=0
fail=0
installed=0

ok() { pass=$((pass + 1)); echo "ok    $*"; }
nok() { fail=$((fail + 1)); echo "FAIL  $*"; }
check() {	# check NAME COMMAND...: ok when the command succeeds
	name=$1
	shift
	if "$@" >"$tmp/out" 2>&1; then ok "$name"; else nok "$name"; sed 's/^/  | /' "$tmp/out" | tail -30; fi
}

cleanup() {
	if [ -f "$state/stack.json" ]; then
		python3 "$src/tests/e2e/harness.py" down --state "$state" >/dev/null 2>&1
	fi
	if [ "$installed" = 1 ] && dpkg -s fcgi-auth >/dev/null 2>&1; then
		dpkg --purge fcgi-auth >/dev/null 2>&1
	fi
	[ "${FA_PKG_KEEP:-0}" = 1 ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

if [ "$(id -u)" != 0 ]; then
	echo "tests/pkg/run.sh: needs root (dpkg -i)" >&2
	exit 1
fi
if dpkg -s fcgi-auth >/dev/null 2>&1; then
	echo "tests/pkg/run.sh: fcgi-auth is installed already; remove it first" >&2
	exit 1
fi

# ---- one version: configure.ac's AC_INIT and debian/changelog
v_ac=$(sed -n 's/^AC_INIT(\[fcgi-auth\], *\[\([^]]*\)\].*/\1/p' "$src/configure.ac")
v_deb=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
check "version: configure.ac $v_ac = debian/changelog $v_deb" test -n "$v_ac" -a "$v_ac" = "$v_deb"

# ---- build from a clean copy (tracked and new files, no build trees)
mkdir -p "$tmp/src"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$src" && git ls-files -co --exclude-standard -z |
	    xargs -0 tar cf - 2>/dev/null) | tar xf - -C "$tmp/src"
else
	(cd "$src" && tar cf - --exclude='./build*' --exclude=./.git .) |
	    tar xf - -C "$tmp/src"
fi
arch=$(dpkg --print-architecture)
deb=$tmp/fcgi-auth_${v_deb}_$arch.deb
start=$(date +%s)
check "dpkg-buildpackage -us -uc -b" sh -c "cd '$tmp/src' && dpkg-buildpackage -us -uc -b"
echo "      build: $(($(date +%s) - start)) s"
if [ ! -f "$deb" ]; then
	nok "no $(basename "$deb")"
	echo "$pass passed, $fail failed"
	exit 1
fi
echo "      $(basename "$deb"): $(stat -c %s "$deb") bytes"

# ---- lintian: no error, no warning
lintian --info "$tmp"/fcgi-auth_*.changes >"$tmp/lintian" 2>&1
sed 's/^/      lintian: /' "$tmp/lintian"
check "lintian: no E: or W:" sh -c "! grep -Eq '^(E|W): ' '$tmp/lintian'"

# ---- install
if dpkg -i "$deb" >"$tmp/install" 2>&1 ||
    apt-get -f -y -q install >>"$tmp/install" 2>&1; then
	installed=1
	ok "dpkg -i"
else
	nok "dpkg -i"
	sed 's/^/  | /' "$tmp/install"
fi
check "postinst says why it did not start" grep -q "not started: /etc/fcgi-auth.conf has no database_url" "$tmp/install"
dpkg -L fcgi-auth | sort >"$tmp/files"
for f in /usr/sbin/fcgi-auth /usr/share/man/man8/fcgi-auth.8.gz \
    /usr/share/man/man5/fcgi-auth.conf.5.gz /usr/share/fcgi-auth/sql/001_init.sql \
    /usr/share/doc/fcgi-auth/examples/nginx/fcgi-auth.conf \
    /usr/share/doc/fcgi-auth/examples/lighttpd/fcgi-auth.conf \
    /usr/share/doc/fcgi-auth/examples/fcgi-auth.conf.example /etc/fcgi-auth.conf; do
	check "installs $f" grep -qx "$f" "$tmp/files"
done
check "installs the systemd socket and service" sh -c \
    "grep -Eq '/lib/systemd/system/fcgi-auth.socket$' '$tmp/files' && grep -Eq '/lib/systemd/system/fcgi-auth.service$' '$tmp/files'"
check "/etc/fcgi-auth.conf is a conffile" sh -c \
    "dpkg-query -W -f='\${Conffiles}' fcgi-auth | grep -q ' /etc/fcgi-auth.conf '"
check "man pages name /usr and /etc paths" sh -c \
    "zcat /usr/share/man/man8/fcgi-auth.8.gz | grep -q /etc/fcgi-auth.conf && ! zcat /usr/share/man/man8/fcgi-auth.8.gz /usr/share/man/man5/fcgi-auth.conf.5.gz | grep -q /usr/local"
check "/etc/fcgi-auth.conf is 640 root:fcgi-auth" test "$(stat -c '%a %U:%G' /etc/fcgi-auth.conf)" = "640 root:fcgi-auth"
check "the secret is 640 root:fcgi-auth" test "$(stat -c '%a %U:%G' /etc/fcgi-auth/jwt_secret)" = "640 root:fcgi-auth"
check "the secret is 64 random characters" test "$(wc -c </etc/fcgi-auth/jwt_secret)" -eq 64
sum=$(sha256sum /etc/fcgi-auth/jwt_secret)
check "installing again keeps the secret" sh -c \
    "dpkg -i '$deb' >/dev/null 2>&1 && test \"\$(sha256sum /etc/fcgi-auth/jwt_secret)\" = '$sum'"
check "the unit reads the config through the group" sh -c \
    "grep -q '^SupplementaryGroups=fcgi-auth' /lib/systemd/system/fcgi-auth.service /usr/lib/systemd/system/fcgi-auth.service 2>/dev/null"

# ---- the installed binary on the packaged configuration, against a stack
units=$(grep -E '/lib/systemd/system/fcgi-auth\.(service|socket)$' "$tmp/files" | tr '\n' ' ')
check "systemd-analyze verify" sh -c \
    "out=\$(systemd-analyze verify --man=no $units 2>&1); echo \"\$out\"; test -z \"\$out\""
if FA_BIN=/usr/sbin/fcgi-auth FA_SRCDIR="$src" FA_BUILDDIR="$tmp" \
    python3 "$src/tests/e2e/harness.py" up --state "$state" >"$tmp/up" 2>&1; then
	ok "test stack up"
	eval "$(python3 -c 'import json,sys; i=json.load(open(sys.argv[1])); print("pg=%d redis=%d" % (i["ports"]["postgres"], i["ports"]["redis"]))' "$state/stack.json")"
	export FCGI_AUTH_DATABASE_URL="host=127.0.0.1 port=$pg dbname=fcgi_auth user=postgres"
	export FCGI_AUTH_REDIS_PORT=$redis
	check "check-config on /etc/fcgi-auth.conf" /usr/sbin/fcgi-auth check-config
	/usr/sbin/fcgi-auth doctor >"$tmp/doctor" 2>&1
	rc=$?
	sed 's/^/      doctor: /' "$tmp/doctor"
	# every line ok, but smtp: the packaged config has no mailer yet
	check "doctor on /etc/fcgi-auth.conf: exit 0, every line ok (smtp: skip)" sh -c \
	    "test $rc = 0 && ! grep -v '^skip smtp: ' '$tmp/doctor' | grep -qv '^ok '"
	check "doctor does not print the secret" sh -c \
	    "! grep -qF \"\$(cat /etc/fcgi-auth/jwt_secret)\" '$tmp/doctor'"
	unset FCGI_AUTH_DATABASE_URL FCGI_AUTH_REDIS_PORT
	python3 "$src/tests/e2e/harness.py" down --state "$state" >/dev/null 2>&1
else
	nok "test stack up"
	tail -20 "$tmp/up" | sed 's/^/  | /'
fi

# ---- purge: nothing of the package is left
dpkg --purge fcgi-auth >"$tmp/purge" 2>&1
installed=0
check "dpkg --purge" sh -c "! dpkg -s fcgi-auth >/dev/null 2>&1"
left=
while read -r f; do
	# directories (and /lib, a link to one) may be shared with others
	[ -d "$f" ] && continue
	if [ -f "$f" ] || [ -L "$f" ]; then left="$left $f"; fi
done <"$tmp/files"
for f in /etc/fcgi-auth.conf /etc/fcgi-auth /usr/share/doc/fcgi-auth /usr/share/fcgi-auth; do
	[ -e "$f" ] && left="$left $f"
done
check "nothing left after purge${left:+:$left}" test -z "$left"
check "no permission override left" sh -c "! dpkg-statoverride --list /etc/fcgi-auth.conf"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
