#!/bin/sh
# Leak check: a subset of the end-to-end suite with every fcgi-auth process
# (serve, and the CLI runs: migrate, check-config, keygen, ...) under
#     valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99
# then every valgrind log must say "definitely lost: 0 bytes" (or "no leaks
# are possible") and "ERROR SUMMARY: 0 errors", and every log must be
# complete (a process killed before its leak check fails the run).
#
# Builds nothing: FA_BIN names a normal (non-sanitizer) build, default
# $FA_BUILDDIR/fcgi-auth.  The harness starts the service via FA_BIN, so
# FA_BIN is pointed at a wrapper that execs valgrind with the real binary
# (same PID: SIGTERM reaches fcgi-auth).
#     tests/valgrind/run.sh                  the default subset (~2-3 min)
#     tests/valgrind/run.sh test_refresh     any harness selection instead
# FA_VALGRIND_LOGDIR keeps the logs there (default: a fresh directory under
# $FA_BUILDDIR/tmp, removed on success unless FA_KEEP=1).
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${FA_SRCDIR:=$(cd "$here/../.." && pwd)}"
: "${FA_BUILDDIR:=$FA_SRCDIR}"
: "${FA_BIN:=$FA_BUILDDIR/fcgi-auth}"
real=$(cd "$(dirname "$FA_BIN")" && pwd)/$(basename "$FA_BIN")

if ! command -v valgrind >/dev/null 2>&1; then
	echo "valgrind: not installed (apt-get install valgrind)" >&2
	exit 1
fi
if [ ! -x "$real" ]; then
	echo "valgrind: no binary at $real (build first, or set FA_BIN)" >&2
	exit 1
fi
if grep -q __asan_init "$real" 2>/dev/null; then
	echo "valgrind: $real is a sanitizer build; use a normal build" >&2
	exit 1
fi

mkdir -p "$FA_BUILDDIR/tmp"
if [ -n "${FA_VALGRIND_LOGDIR:-}" ]; then
	logdir=$FA_VALGRIND_LOGDIR
	mkdir -p "$logdir"
	keep=1
else
	logdir=$(mktemp -d "$FA_BUILDDIR/tmp/valgrind-XXXXXX")
	keep=${FA_KEEP:-0}
fi
chmod 755 "$logdir"
wrapper=$logdir/fcgi-auth
cat > "$wrapper" <<EOF
#!/bin/sh
exec valgrind --leak-check=full --errors-for-leak-kinds=definite \\
	--error-exitcode=99 --num-callers=40 --track-origins=no \\
	--log-file="$logdir/vg.%p.log" "$real" "\$@"
EOF
chmod 755 "$wrapper"

# The default subset (~2 min here): the core flows (register, login,
# refresh, logout, sessions, tokens, password change, admin, the gateway,
# events) and the error paths of a backend going away (alone and under
# load), minus the tests that measure time or memory, which valgrind's
# 20-50x slowdown breaks, the RSA key generations (a minute each under
# valgrind), and test_events' kill -9 (a killed process has no leak check).
if [ $# -eq 0 ]; then
	set -- \
	test_foundation.test_health_via_nginx \
	test_foundation.test_health_via_lighttpd \
	test_foundation.test_unknown_route_404 \
	test_foundation.test_wrong_method_405_with_allow \
	test_foundation.test_body_10mb_413_from_nginx_as_json \
	test_foundation.test_body_20kb_413_from_app \
	test_foundation.test_text_plain_415 \
	test_foundation.test_malformed_json_400 \
	test_foundation.test_json_not_an_object_400 \
	test_foundation.test_invalid_utf8_400 \
	test_foundation.test_nul_byte_400 \
	test_foundation.test_redis_down_503_then_recovers \
	test_foundation.test_postgres_down_503_then_recovers \
	test_foundation.test_app_down_nginx_answers_json_503 \
	test_foundation.test_sigterm_with_nginx_keepalive_exits_0 \
	test_foundation.test_check_config_masks_secrets \
	test_foundation.test_missing_secret_refuses_to_start \
	test_foundation.test_listen_unix_socket \
	test_register_login.test_register_201_user_shape_email_trimmed_lowercased \
	test_register_login.test_register_email_taken_409_case_insensitive \
	test_register_login.test_register_validation_failed_names_fields \
	test_register_login.test_register_hostile_json_400_invalid_json \
	test_register_login.test_login_200_token_pair_shape_and_claims \
	test_register_login.test_me_returns_the_user \
	test_register_login.test_login_audit_rows_without_secrets \
	test_refresh.test_refresh_rotates_and_returns_new_pair \
	test_refresh.test_refresh_random_token_401_changes_nothing \
	test_refresh.test_refresh_malformed_token_401 \
	test_refresh.test_grace_parent_again_returns_same_current_token \
	test_refresh.test_concurrent_refresh_with_grace_same_new_token \
	test_refresh.test_refresh_reuse_with_grace_off_is_immediate \
	test_logout_sessions.test_logout_bearer_204_revokes_access_and_refresh \
	test_logout_sessions.test_logout_with_refresh_token_only \
	test_logout_sessions.test_logout_all_revokes_every_session \
	test_logout_sessions.test_sessions_list_shape_and_current \
	test_logout_sessions.test_delete_own_other_session_204_revokes_it \
	test_tokens.test_forged_tokens_401_invalid_token \
	test_tokens.test_introspect_active_token \
	test_password \
	test_admin_audit \
	test_gateway.test_protected_location_200_upstream_sees_identity \
	test_gateway.test_client_cannot_forge_identity_headers \
	test_gateway.test_role_protected_location_403_without_role \
	test_gateway.test_protected_location_401_right_after_logout \
	test_gateway.test_crlf_never_reaches_a_header \
	test_gateway.test_redis_down_protected_location_503_json \
	test_gateway.test_es256_token_kid_jwks_and_gateway \
	test_gateway.test_lighttpd_authorizer_protects_app \
	test_gateway.test_authorizer_role_answers_variables \
	test_events.test_each_event_documented_message \
	test_events.test_redis_down_no_event_lost \
	test_faults.test_redis_killed_mid_load_503_then_recovers \
	test_faults.test_postgres_stopped_mid_load_503_then_recovers
fi

echo "valgrind: $real, logs in $logdir"
t0=$(date +%s)
FA_BIN=$wrapper FA_SRCDIR=$FA_SRCDIR FA_BUILDDIR=$FA_BUILDDIR \
	FA_TEST_TIMEOUT=${FA_TEST_TIMEOUT:-300} FA_FAULTS_TIME_SCALE=2 \
	"$FA_SRCDIR/tests/e2e/run.sh" "$@"
suite=$?
t1=$(date +%s)

# Parse the logs.
python3 - "$logdir" <<'EOF'
import os, re, sys
d = sys.argv[1]
logs = sorted(f for f in os.listdir(d) if f.startswith("vg.") and f.endswith(".log"))
bad = []
total = {"definitely": 0, "indirectly": 0, "possibly": 0, "still reachable": 0, "errors": 0}
serve = 0
for fn in logs:
    text = open(os.path.join(d, fn), errors="replace").read()
    cmd = re.search(r"^==\d+== Command: (.*)$", text, re.M)
    cmd = cmd.group(1) if cmd else "?"
    if " serve" in cmd:
        serve += 1
    es = re.search(r"ERROR SUMMARY: ([\d,]+) errors", text)
    if not es:
        bad.append("%s (%s): no ERROR SUMMARY: killed before its leak check?" % (fn, cmd[-80:]))
        continue
    nerr = int(es.group(1).replace(",", ""))
    total["errors"] += nerr
    lost = {}
    for kind in ("definitely", "indirectly", "possibly", "still reachable"):
        m = re.search(r"%s(?: lost)?: ([\d,]+) bytes" % kind, text)
        lost[kind] = int(m.group(1).replace(",", "")) if m else 0
        total[kind] += lost[kind]
    if "definitely lost" not in text and "no leaks are possible" not in text \
            and "LEAK SUMMARY" not in text:
        bad.append("%s (%s): no leak summary" % (fn, cmd[-80:]))
    if lost["definitely"] or nerr:
        bad.append("%s (%s): definitely lost %d bytes, %d errors" % (fn, cmd[-80:], lost["definitely"], nerr))
print("valgrind: %d fcgi-auth processes (%d serve), definitely lost %d bytes, "
      "indirectly %d, possibly %d, still reachable %d, errors %d"
      % (len(logs), serve, total["definitely"], total["indirectly"], total["possibly"],
         total["still reachable"], total["errors"]))
for b in bad:
    print("valgrind: FAIL %s" % b)
if not logs:
    print("valgrind: FAIL no valgrind logs: fcgi-auth never ran under valgrind")
sys.exit(1 if bad or not logs else 0)
EOF
parsed=$?
echo "valgrind: e2e subset exit $suite, log check exit $parsed, $((t1 - t0)) s"
if [ $suite -ne 0 ] || [ $parsed -ne 0 ]; then
	echo "valgrind: FAIL (logs kept in $logdir)"
	exit 1
fi
[ "$keep" = 1 ] || { rm -rf "$logdir"; rmdir "$FA_BUILDDIR/tmp" 2>/dev/null; }
echo "valgrind: OK"
exit 0
