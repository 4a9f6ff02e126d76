"""Foundation: the service answers through nginx and lighttpd as shipped,
speaks the error contract for bad requests, fails closed and recovers when a
backend goes away, shuts down cleanly, stays small, refuses bad secrets, and
serves on every kind of listening socket.  See API.md for the contract."""

import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

from harness import (FA_BIN, Proc, Skip, fcgi_request, free_port, http_request,
                     short_path, tail, which)

# One stack for the module (harness.TEST_CONFIG: cheap hashing, no limits).
STACK_CONFIG = {}


def assert_error(r, status, code):
    assert r.status == status, "want %d %s, got %d: %r" % (status, code, r.status, r.body[:300])
    assert isinstance(r.json, dict), "error body is not a JSON object: %r" % r.body[:300]
    assert r.json.get("error") == code, "want error %r, got %r" % (code, r.json)
    assert isinstance(r.json.get("message"), str) and r.json["message"], \
        "error without a message: %r" % r.json
    ct = r.headers.get("content-type", "")
    assert ct.startswith("application/json"), "error content-type %r" % ct


def assert_healthy(r):
    assert r.status == 200, "health: %d %r" % (r.status, r.body[:300])
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    j = r.json
    assert isinstance(j, dict), r.body
    assert j.get("status") == "ok" and j.get("postgres") == "ok" and j.get("redis") == "ok", j
    assert isinstance(j.get("version"), str) and j["version"], "health without version: %r" % j


def wait_healthy(stack, timeout):
    end = time.time() + timeout
    r = None
    while time.time() < end:
        try:
            r = stack.get("/auth/health", timeout=3)
            if r.status == 200:
                return r
        except OSError:
            pass
        time.sleep(0.2)
    return r


# ------------------------------------------------------------------- routing

def test_health_via_nginx(stack):
    assert_healthy(stack.get("/auth/health"))


def test_health_via_lighttpd(stack):
    assert_healthy(stack.get("/auth/health", via="lighttpd"))


def test_unknown_route_404(stack):
    for path in ("/auth/nope", "/auth/login/extra", "/auth/admin/nothing-here"):
        assert_error(stack.get(path), 404, "not_found")
    assert_error(stack.get("/auth/nope", via="lighttpd"), 404, "not_found")


def test_wrong_method_405_with_allow(stack):
    r = stack.get("/auth/login")
    assert_error(r, 405, "method_not_allowed")
    allow = [m.strip() for m in r.headers.get("allow", "").split(",")]
    assert "POST" in allow, "Allow header %r does not list POST" % r.headers.get("allow")
    r = stack.request("DELETE", "/auth/health")
    assert_error(r, 405, "method_not_allowed")
    assert "GET" in r.headers.get("allow", ""), r.headers


# -------------------------------------------------------------- bad requests

def test_body_10mb_413_from_nginx_as_json(stack):
    body = b'{"email":"' + b"a" * (10 * 1024 * 1024) + b'"}'
    t0 = time.monotonic()
    r = stack.post("/auth/register", raw_body=body, timeout=30)
    took = time.monotonic() - t0
    assert_error(r, 413, "payload_too_large")
    assert took < 5, "10 MB body took %.1fs to refuse" % took
    assert stack.procs["app"].alive(), "fcgi-auth died"
    assert_healthy(stack.get("/auth/health"))


def test_body_20kb_413_from_app(stack):
    body = b'{"email":"' + b"a" * (20 * 1024) + b'","password":"x"}'
    for via in ("nginx", "lighttpd"):
        r = stack.post("/auth/register", raw_body=body, via=via)
        assert_error(r, 413, "payload_too_large")
        # nginx's own 413 is not the app's: the app's is not "Connection: close"d by nginx
        assert "nginx" not in r.body.decode(errors="replace")
    assert_healthy(stack.get("/auth/health"))


def test_text_plain_415(stack):
    r = stack.post("/auth/register", raw_body=b'{"email":"a@b.co","password":"password1"}',
                   headers={"Content-Type": "text/plain"})
    assert_error(r, 415, "unsupported_media_type")
    r = stack.post("/auth/login", raw_body=b'email=a@b.co',
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 415, "unsupported_media_type")


def test_malformed_json_400(stack):
    for raw in (b'{"email": "a@b.co", ', b"{email: 1}", b"", b"{} {}", b'{"a":1}x'):
        r = stack.post("/auth/register", raw_body=raw)
        assert_error(r, 400, "invalid_json")


def test_json_not_an_object_400(stack):
    for raw in (b'["a@b.co", "password1"]', b'"str"', b"42", b"null"):
        r = stack.post("/auth/register", raw_body=raw)
        assert_error(r, 400, "invalid_json")


def test_invalid_utf8_400(stack):
    r = stack.post("/auth/register", raw_body=b'{"email":"a\xff\xfe@b.co","password":"password1"}')
    assert_error(r, 400, "invalid_json")
    r = stack.post("/auth/register", raw_body=b'{"email":"a@b.co","password":"pass\xc3\x28word"}')
    assert_error(r, 400, "invalid_json")


def test_nul_byte_400(stack):
    r = stack.post("/auth/register", raw_body=b'{"email":"a\x00@b.co","password":"password1"}')
    assert_error(r, 400, "invalid_json")
    r = stack.post("/auth/register", raw_body=b'{"email":"a@b.co","password":"password1"}\x00')
    assert_error(r, 400, "invalid_json")


# ------------------------------------------------------- backends go away

def test_redis_down_503_then_recovers(stack):
    pid = stack.app_pid
    stack.stop_redis()
    for via in ("nginx", "lighttpd"):
        r = stack.get("/auth/health", via=via, timeout=10)
        assert r.elapsed < 1.5, "health took %.2fs with Redis down" % r.elapsed
        assert r.status == 503, "want 503 with Redis down, got %d %r" % (r.status, r.body)
        assert r.json and r.json.get("status") == "degraded" and r.json.get("redis") == "down", r.json
        assert r.json.get("postgres") == "ok", r.json
    stack.start_redis()
    r = wait_healthy(stack, 5)
    assert r is not None and r.status == 200, "not healthy 5s after Redis came back: %r" % r
    assert stack.app_pid == pid, "fcgi-auth was restarted"


def test_postgres_down_503_then_recovers(stack):
    pid = stack.app_pid
    stack.stop_postgres()
    for via in ("nginx", "lighttpd"):
        r = stack.get("/auth/health", via=via, timeout=10)
        assert r.elapsed < 1.5, "health took %.2fs with PostgreSQL down" % r.elapsed
        assert r.status == 503, "want 503 with PostgreSQL down, got %d %r" % (r.status, r.body)
        assert r.json and r.json.get("status") == "degraded" and r.json.get("postgres") == "down", r.json
        assert r.json.get("redis") == "ok", r.json
    stack.start_postgres()
    r = wait_healthy(stack, 10)
    assert r is not None and r.status == 200, "not healthy 10s after PostgreSQL came back: %r" % r
    assert stack.app_pid == pid, "fcgi-auth was restarted"


def test_app_down_nginx_answers_json_503(stack):
    stack.stop_app()
    r = stack.get("/auth/health")
    assert_error(r, 503, "unavailable")
    r = stack.get("/app/anything", token="x.y.z")      # auth_request cannot ask
    assert_error(r, 503, "unavailable")


# ------------------------------------------------------------- the process

def test_sigterm_with_nginx_keepalive_exits_0(stack):
    # Open several kept-alive FastCGI connections from nginx to the service.
    errors = []

    def hit():
        try:
            for _ in range(5):
                stack.get("/auth/health")
        except Exception as e:
            errors.append(e)
    ts = [threading.Thread(target=hit) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    app = stack.procs["app"]
    t0 = time.monotonic()
    os.kill(app.pid, signal.SIGTERM)
    rc = app.wait(5)
    took = time.monotonic() - t0
    assert rc is not None, "fcgi-auth still running 5s after SIGTERM (nginx holds keep-alive connections)"
    assert rc == 0, "fcgi-auth exited with %s after SIGTERM" % rc
    print("      exited %.2fs after SIGTERM" % took)


def _is_asan(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def test_idle_rss_workers_4(stack):
    stack.restart_app(workers=4)
    for _ in range(5):
        assert_healthy(stack.get("/auth/health"))
    time.sleep(0.5)
    with open("/proc/%d/status" % stack.app_pid) as f:
        rss_kb = int(next(l for l in f if l.startswith("VmRSS:")).split()[1])
    print("      idle VmRSS with workers=4: %.1f MiB" % (rss_kb / 1024))
    if _is_asan(FA_BIN):
        raise Skip("sanitizer build (VmRSS %.1f MiB not comparable)" % (rss_kb / 1024))
    assert rss_kb < 16 * 1024, "idle RSS %.1f MiB >= 16 MiB" % (rss_kb / 1024)


# ----------------------------------------------------------- configuration

def test_check_config_masks_secrets(stack):
    secret = os.urandom(24).hex()
    redis_pw = "rpw" + os.urandom(8).hex()
    r = stack.run_cli("check-config", overrides={"jwt_secret_file": None, "jwt_secret": secret,
                                                 "redis_password": redis_pw})
    out = r.stdout + r.stderr
    assert r.returncode == 0, "check-config rc %d: %s" % (r.returncode, out[-500:])
    assert "jwt_secret" in out, "check-config does not show jwt_secret:\n" + out
    assert secret not in out and secret[:16] not in out, "check-config prints the JWT secret"
    assert redis_pw not in out, "check-config prints the Redis password"
    # the file-based secret of the stack is not printed either
    with open(stack.secret_file) as f:
        file_secret = f.read().strip()
    r = stack.run_cli("check-config")
    assert r.returncode == 0, r.stderr
    assert file_secret[:16] not in r.stdout + r.stderr, "check-config prints the secret file's content"


def _refuses(stack, overrides, env=None):
    port = free_port()
    conf = stack.write_config(overrides, path=os.path.join(stack.state, "bad.conf"))
    try:
        r = subprocess.run([FA_BIN, "--config", conf, "serve", "--listen", "127.0.0.1:%d" % port],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           env=stack.app_env(env), timeout=10)
    except subprocess.TimeoutExpired:
        raise AssertionError("serve with %r kept running instead of refusing" % overrides)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode != 0, "serve with %r exited 0" % overrides
    assert len(lines) == 1, "want one error line, got:\n%s" % r.stderr
    assert "jwt_secret" in lines[0], "error does not name jwt_secret: %r" % lines[0]
    return lines[0]


def test_missing_secret_refuses_to_start(stack):
    print("      " + _refuses(stack, {"jwt_secret_file": None}))


def test_short_secret_refuses_to_start(stack):
    print("      " + _refuses(stack, {"jwt_secret_file": None, "jwt_secret": "x" * 31}))
    short = os.path.join(stack.state, "short_secret")
    with open(short, "w") as f:
        f.write("y" * 31)
    _refuses(stack, {"jwt_secret_file": short})
    # and through the environment override
    _refuses(stack, {"jwt_secret_file": None}, env={"FCGI_AUTH_JWT_SECRET": "z" * 31})


def test_env_override_secret_starts(stack):
    # FCGI_AUTH_<KEY> alone is enough: no secret in the file at all
    p = free_port()
    conf = stack.write_config({"jwt_secret_file": None}, path=os.path.join(stack.state, "env.conf"))
    proc = Proc("app-env", [FA_BIN, "--config", conf, "serve", "--listen", "127.0.0.1:%d" % p],
                os.path.join(stack.logs, "fcgi-auth-env.log"),
                env=stack.app_env({"FCGI_AUTH_JWT_SECRET": os.urandom(32).hex()})).start()
    try:
        stack.wait_app(proc, ("127.0.0.1", p))
        assert_healthy(fcgi_request(("127.0.0.1", p), "GET", "/auth/health"))
    finally:
        proc.stop()


# ------------------------------------------------------------ socket kinds

def test_listen_unix_socket(stack):
    path = short_path(os.path.join(stack.state, "u.sock"), "u.sock")
    conf = stack.write_config({"listen_mode": "0660"}, path=os.path.join(stack.state, "unix.conf"))
    proc = Proc("app-unix", [FA_BIN, "--config", conf, "serve", "--listen", path],
                os.path.join(stack.logs, "fcgi-auth-unix.log"), env=stack.app_env()).start()
    try:
        stack.wait_app(proc, path)
        assert_healthy(fcgi_request(path, "GET", "/auth/health"))
        mode = os.stat(path).st_mode & 0o777
        assert mode == 0o660, "socket mode %o, listen_mode says 0660" % mode
        rc = proc.stop(timeout=5)
        assert rc == 0, "exit %s after SIGTERM" % rc
    finally:
        proc.stop()


def test_inherited_fd0_spawn_fcgi(stack):
    exe = which("spawn-fcgi")
    if not exe:
        raise Skip("spawn-fcgi not installed")
    path = short_path(os.path.join(stack.state, "s.sock"), "s.sock")
    conf = stack.write_config(path=os.path.join(stack.state, "fd0.conf"))
    # -n: no fork; spawn-fcgi binds the socket, puts it on fd 0 and execs us
    proc = Proc("app-fd0", [exe, "-n", "-s", path, "-M", "0600", "--", FA_BIN, "--config", conf, "serve"],
                os.path.join(stack.logs, "fcgi-auth-fd0.log"), env=stack.app_env()).start()
    try:
        stack.wait_app(proc, path)
        assert_healthy(fcgi_request(path, "GET", "/auth/health"))
        assert "fcgi-auth" in open("/proc/%d/cmdline" % proc.pid).read(), "spawn-fcgi did not exec"
        rc = proc.stop(timeout=5)
        assert rc == 0, "exit %s after SIGTERM" % rc
    finally:
        proc.stop()


def test_systemd_listen_fds(stack):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    port = s.getsockname()[1]
    fd = s.fileno()
    conf = stack.write_config(path=os.path.join(stack.state, "sd.conf"))
    # what systemd does: the socket on fd 3, LISTEN_FDS=1, LISTEN_PID=<our pid>
    move = "" if fd == 3 else "exec 3<&%d %d<&-; " % (fd, fd)
    script = move + 'LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=fcgi-auth.socket; ' \
        'export LISTEN_PID LISTEN_FDS LISTEN_FDNAMES; exec "$0" "$@"'
    proc = Proc("app-sd", ["/bin/sh", "-c", script, FA_BIN, "--config", conf, "serve"],
                os.path.join(stack.logs, "fcgi-auth-systemd.log"), env=stack.app_env(),
                popen_kw={"pass_fds": (fd,)}).start()
    s.close()
    try:
        stack.wait_app(proc, ("127.0.0.1", port))
        assert_healthy(fcgi_request(("127.0.0.1", port), "GET", "/auth/health"))
        rc = proc.stop(timeout=5)
        assert rc == 0, "exit %s after SIGTERM" % rc
    finally:
        proc.stop()


def test_example_config_parses(stack):
    # conf/fcgi-auth.conf.example is what users copy: it must load as is
    # (given a secret) and document every key check-config knows.
    from harness import SRCDIR
    example = os.path.join(SRCDIR, "conf", "fcgi-auth.conf.example")
    r = subprocess.run([FA_BIN, "--config", example, "check-config"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30,
                       env=stack.app_env({"FCGI_AUTH_JWT_SECRET": os.urandom(32).hex()}))
    assert r.returncode == 0, "check-config of the example: rc %d %s" % (r.returncode, r.stderr)
    with open(example) as f:
        text = f.read()
    keys = set()
    for line in r.stdout.splitlines():
        k = line.split("=", 1)[0].strip()
        if "=" in line and k and not k.startswith("#") and " " not in k:
            keys.add(k)
    assert keys, "check-config printed no keys:\n" + r.stdout
    missing = sorted(k for k in keys if not re.search(r"^#?%s\s*=" % re.escape(k), text, re.M))
    assert not missing, "keys not documented in conf/fcgi-auth.conf.example: %s" % missing
