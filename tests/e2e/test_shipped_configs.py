"""The shipped files as an operator uses them: the example's RS256 block
uncommented, the systemd unit's syscall filter and the hash threads'
priority, `make install` with --prefix=/usr, the nginx identity snippet of
each verify_headers preset and lighttpd against forged identity headers,
the nginx server block inside a stock Debian /etc/nginx, loopback/unix-only
listening, the Status line's reason phrase and the metrics label of a
405/413 on a known route."""

import ctypes
import errno
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from authlib import CgiLighttpd, User, keygen, show
from harness import (BUILDDIR, FA_BIN, SRCDIR, Proc, Skip, Stack, fcgi_request, free_port, http_request,
                     which)

STACK_CONFIG = {}

EXAMPLE = os.path.join(SRCDIR, "conf", "fcgi-auth.conf.example")
FORGED = {"X-Auth-User-Id": "00000000-0000-4000-8000-000000000000", "X-Auth-Email": "root@example.test",
          "X-Auth-Roles": "admin", "X-Auth-Session-Id": "forged",
          "Remote-User": "forged-user", "Remote-Email": "root@example.test", "Remote-Groups": "admin",
          "Remote-Name": "root", "X-Auth-Request-User": "forged-user",
          "X-Auth-Request-Email": "root@example.test", "X-Auth-Request-Groups": "admin",
          "X-Auth-Request-Preferred-Username": "root", "X-Forwarded-User": "forged-user",
          "X-Forwarded-Email": "root@example.test", "X-Forwarded-Groups": "admin"}
# what the app must see per preset (verify_headers), from the verify answer
PRESETS = {
    "default": ("fcgi-auth-identity.conf",
                {"x-auth-user-id": "id", "x-auth-email": "email", "x-auth-roles": "roles",
                 "x-auth-session-id": "sid"}),
    "authelia": ("fcgi-auth-identity-authelia.conf",
                 {"remote-user": "id", "remote-email": "email", "remote-groups": "roles",
                  "remote-name": "email", "x-auth-session-id": "sid"}),
    "oauth2-proxy": ("fcgi-auth-identity-oauth2-proxy.conf",
                     {"x-auth-request-user": "id", "x-auth-request-email": "email",
                      "x-auth-request-groups": "roles", "x-auth-session-id": "sid"}),
}


def _ident(u):
    from authlib import jwt_parts
    return {"id": u.id, "email": u.email, "roles": "user", "sid": jwt_parts(u.access)[1]["sid"]}


# ------------------------------------------------------- RS256 example block

def _example_rs256(stack, keydir):
    """The example with its RS256 lines uncommented as they stand, the key
    directory where the example says /etc/fcgi-auth, plus the stack's
    backends and secret."""
    with open(EXAMPLE) as f:
        text = f.read()
    n = 0
    for key in ("jwt_private_key_file", "jwt_kid", "jwt_public_keys"):
        text, k = re.subn(r"^#(%s = .*)$" % key, r"\1", text, flags=re.M)
        n += k
    assert n == 3, "conf/fcgi-auth.conf.example: the RS256 lines are not where they were (%d found)" % n
    text = re.sub(r"^jwt_alg = HS256$", "jwt_alg = RS256", text, flags=re.M)
    text = text.replace("/etc/fcgi-auth/", keydir + "/")
    text += "\n# test\njwt_secret_file = %s\ndatabase_url = %s\nredis_port = %d\n" % (
        stack.secret_file, stack.database_url, stack.redis_port)
    path = os.path.join(stack.state, "example-rs256.conf")
    with open(path, "w") as f:
        f.write(text)
    m = re.search(r"^jwt_kid = (\S+)$", text, re.M)
    return path, m.group(1)


def test_example_rs256_block_passes_check_config(stack):
    keydir = os.path.join(stack.state, "keys-example")
    path, kid = _example_rs256(stack, keydir)
    keygen(stack, "rs256", kid, keydir)
    r = stack.run_cli("check-config", config=path)
    assert r.returncode == 0, "check-config of the example's RS256 block: rc %d\n%s%s" % (
        r.returncode, r.stdout, r.stderr)
    # and the service publishes the signing key once
    p = Proc("app-example", [FA_BIN, "--config", path, "serve", "--listen", "127.0.0.1:%d" % free_port()],
             os.path.join(stack.logs, "fcgi-auth-example.log"), env=stack.app_env())
    addr = ("127.0.0.1", int(p.argv[-1].rsplit(":", 1)[1]))
    p.start()
    try:
        stack.wait_app(p, addr)
        r = fcgi_request(addr, "GET", "/auth/.well-known/jwks.json")
        assert r.status == 200, show(r)
        import json
        kids = [k["kid"] for k in json.loads(r.body)["keys"]]
        assert kids == [kid], "JWKS kids %r, want the signing key once" % kids
    finally:
        p.stop()


def test_same_kid_with_another_key_refused(stack):
    keydir = os.path.join(stack.state, "keys-clash")
    path, kid = _example_rs256(stack, keydir)
    keygen(stack, "rs256", kid, keydir)
    other = os.path.join(stack.state, "keys-other")
    _, other_pub = keygen(stack, "rs256", kid, other)
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("%s/%s.pub.pem" % (keydir, kid), other_pub))
    r = stack.run_cli("check-config", config=path)
    assert r.returncode != 0 and "duplicate kid" in r.stderr, \
        "the signing kid listed with another key: rc %d %s" % (r.returncode, r.stderr)


# ----------------------------------------------------------- systemd unit

def _unit_dir():
    d = tempfile.mkdtemp(prefix="fa-units-")
    for fn in ("fcgi-auth.service", "fcgi-auth.socket"):
        with open(os.path.join(SRCDIR, "deploy", "systemd", fn)) as f:
            text = f.read()
        with open(os.path.join(d, fn), "w") as f:
            f.write(text.replace("/usr/local/sbin/fcgi-auth", FA_BIN))
    return d


def _syscalls(item):
    """Expand a SystemCallFilter item (@group or name) with systemd-analyze."""
    if not item.startswith("@"):
        return {item}
    r = subprocess.run(["systemd-analyze", "syscall-filter", item], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = set()
    for line in r.stdout.splitlines()[1:]:
        line = line.strip()
        if line and not line.startswith("#"):
            out |= _syscalls(line)
    return out


def test_systemd_unit_verifies_and_allows_setpriority():
    if not which("systemd-analyze"):
        raise Skip("systemd-analyze not installed (apt-get install systemd)")
    d = _unit_dir()
    try:
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", "fcgi-auth.service", "fcgi-auth.socket"],
                           cwd=d, capture_output=True, text=True)
        assert r.returncode == 0 and not r.stderr.strip(), "systemd-analyze verify: %s%s" % (r.stdout, r.stderr)
        with open(os.path.join(d, "fcgi-auth.service")) as f:
            lines = re.findall(r"^SystemCallFilter=(.*)$", f.read(), re.M)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    # systemd.exec(5): the first line decides allow-list mode; later lines
    # remove (~) or add back, in order.
    assert lines and not lines[0].startswith("~"), lines
    allowed = set()
    for line in lines:
        deny = line.startswith("~")
        names = set()
        for item in line.lstrip("~").split():
            names |= _syscalls(item)
        allowed = allowed - names if deny else allowed | names
    assert "setpriority" in allowed, "the unit's SystemCallFilter lines %r deny setpriority" % lines
    for bad in ("reboot", "mount", "setuid", "init_module", "setrlimit"):
        assert bad not in allowed, "the unit's filter now allows %s" % bad


# A seccomp filter like the unit's SystemCallErrorNumber=EPERM for one call,
# installed in the child before exec (libseccomp through ctypes).
def _deny_setpriority():
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(0x7fff0000)                      # SCMP_ACT_ALLOW
    nr = lib.seccomp_syscall_resolve_name(b"setpriority")
    if not ctx or nr < 0 or lib.seccomp_rule_add(ctx, 0x00050000 | errno.EPERM, nr, 0) != 0 \
            or lib.seccomp_load(ctx) != 0:
        os._exit(97)


def test_hash_priority_failure_warns_once(stack):
    try:
        ctypes.CDLL("libseccomp.so.2")
    except OSError:
        raise Skip("libseccomp.so.2 not installed")
    port = free_port()
    log = os.path.join(stack.logs, "fcgi-auth-seccomp.log")
    p = Proc("app-seccomp", [FA_BIN, "--config", stack.write_config({"hash_threads": 2}),
                             "serve", "--listen", "127.0.0.1:%d" % port],
             log, env=stack.app_env(), popen_kw={"preexec_fn": _deny_setpriority}).start()
    try:
        stack.wait_app(p, ("127.0.0.1", port))
        time.sleep(0.3)
    finally:
        p.stop()
    with open(log) as f:
        text = f.read()
    warns = [ln for ln in text.splitlines() if "priority" in ln]
    assert len(warns) == 1 and re.search(r"\bwarn", warns[0], re.I), \
        "setpriority denied: want one warn line about the priority, got %r" % warns
    stack.start_app()
    with open(os.path.join(stack.logs, "fcgi-auth.log")) as f:
        assert "cannot lower the hash" not in f.read(), "warned without a filter"


# ---------------------------------------------------------- make install

def test_install_with_prefix_usr_has_no_usr_local_paths():
    build = tempfile.mkdtemp(prefix="fa-prefix-")
    try:
        r = subprocess.run([os.path.join(SRCDIR, "configure"), "--prefix=/usr", "--sysconfdir=/etc"],
                           cwd=build, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError("configure --prefix=/usr: %s" % r.stderr[-2000:])
        stage = os.path.join(build, "stage")
        r = subprocess.run(["make", "install-man", "install-examplesDATA", "install-examples_lighttpdDATA",
                            "install-systemdunitDATA", "DESTDIR=" + stage],
                           cwd=build, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        files = {os.path.relpath(os.path.join(d, f), stage) for d, _, fs in os.walk(stage) for f in fs}
        want = {"usr/share/man/man8/fcgi-auth.8", "usr/share/man/man5/fcgi-auth.conf.5",
                "usr/share/doc/fcgi-auth/examples/fcgi-auth.conf.example",
                "usr/share/doc/fcgi-auth/examples/lighttpd/fcgi-auth.conf",
                "usr/lib/systemd/system/fcgi-auth.service"}
        assert want <= files, "installed %s" % sorted(files)
        for rel in sorted(files):
            with open(os.path.join(stage, rel)) as f:
                bad = [ln for ln in f.read().splitlines() if "/usr/local" in ln]
            assert not bad, "%s keeps /usr/local after --prefix=/usr: %s" % (rel, bad)
        with open(os.path.join(stage, "usr/share/man/man8/fcgi-auth.8")) as f:
            page = f.read()
        assert ".Pa /etc/fcgi-auth.conf" in page and "/usr/share/fcgi-auth/sql" in page, page[:0]
        with open(os.path.join(stage, "usr/share/doc/fcgi-auth/examples/lighttpd/fcgi-auth.conf")) as f:
            assert '"/usr/sbin/fcgi-auth --config /etc/fcgi-auth.conf serve"' in f.read()
    finally:
        shutil.rmtree(build, ignore_errors=True)


# ------------------------------------------------ identity presets (nginx)

def _nginx_with(stack, subs):
    """Restart the stack's nginx on the shipped file with subs applied (each
    old string must occur)."""
    orig = Stack.nginx_conf

    def conf():
        d, c = orig(stack)
        path = os.path.join(d, "fcgi-auth.conf")
        with open(path) as f:
            text = f.read()
        for old, new in subs:
            assert old in text, "deploy/nginx/fcgi-auth.conf: no %r" % old
            text = text.replace(old, new)
        with open(path, "w") as f:
            f.write(text)
        return d, c
    stack.nginx_conf = conf
    try:
        stack.stop_nginx()
        stack.start_nginx()
    finally:
        del stack.nginx_conf


def test_identity_presets_reach_app_and_forged_never(stack):
    try:
        for preset, (snippet, want) in PRESETS.items():
            stack.start_app(verify_headers=preset)
            _nginx_with(stack, [("include snippets/fcgi-auth-identity.conf;",
                                 "include snippets/%s;" % snippet)])
            u = User(stack, "preset")
            ident = _ident(u)
            for path in ("/app/x", "/app/"):
                r = stack.get(path, token=u.access, headers=FORGED)
                assert r.status == 200 and "headers" in (r.json or {}), "%s %s: %s" % (preset, path, show(r))
                h = r.json["headers"]
                for name, field in want.items():
                    assert h.get(name) == ident[field], "%s: %s = %r, want %r (%r)" % (
                        preset, name, h.get(name), ident[field], h)
                forged = {k: v for k, v in h.items()
                          if k in {n.lower() for n in FORGED} and k not in want}
                assert not forged, "%s: client-sent identity headers reached the app: %r" % (preset, forged)
                assert "authorization" not in h, "%s: the bearer token reached the app" % preset
            # an underscore spelling never passes nginx either
            r = stack.get("/app/x", token=u.access, headers={"Remote_User": "forged", "X_Auth_User_Id": "f"})
            h = r.json["headers"]
            assert not [k for k in h if "_" in k], "underscore headers reached the app: %r" % h
            r = stack.get("/app/x", headers=FORGED)
            assert r.status == 401, "%s: forged headers without a token: %s" % (preset, show(r))
    finally:
        stack.start_app()
        stack.stop_nginx()
        stack.start_nginx()


def test_internal_verify_location_not_reachable(stack):
    u = User(stack, "internal")
    for path in ("/_fcgi_auth_verify", "/_fcgi_auth_verify_admin", "/_fcgi_auth_error/401"):
        r = stack.get(path, token=u.access)
        assert r.status == 404, "GET %s from a client: %s" % (path, show(r))
        assert not any(k.lower().startswith("x-auth-") for k in r.headers), r.headers


def test_internal_routes_restricted_in_shipped_configs():
    # clients reach the stack from 127.0.0.1, which both configs allow; what
    # the shipped files say for everyone else
    with open(os.path.join(SRCDIR, "deploy", "nginx", "fcgi-auth.conf")) as f:
        nginx = f.read()
    for loc in (r"=\s+/auth/introspect", r"/auth/admin/", r"=\s+/auth/metrics"):
        m = re.search(r"location\s+%s\s*\{(.*?)\}" % loc, nginx, re.S)
        assert m and re.search(r"^\s*deny all;", m.group(1), re.M), "nginx: %s not restricted" % loc
        allows = re.findall(r"^\s*allow\s+(\S+);", m.group(1), re.M)
        assert allows and set(allows) <= {"127.0.0.1", "::1"}, "nginx %s allows %r" % (loc, allows)
    with open(os.path.join(SRCDIR, "deploy", "lighttpd", "fcgi-auth.conf")) as f:
        lt = f.read()
    assert re.search(r'\^/auth/\(introspect\$\|metrics\$\|admin/\)', lt) and "url.access-deny" in lt, \
        "lighttpd: introspect/metrics/admin not restricted"


CGI_ALL = """#!%s
import json, os
out = json.dumps({k: v for k, v in os.environ.items()
                  if k.startswith(("AUTH_", "HTTP_")) or k == "REMOTE_USER"})
print("Content-Type: application/json")
print("Content-Length: %%d" %% len(out))
print()
print(out, end="")
"""


def test_lighttpd_backend_never_sees_forged_identity(stack):
    # Behind lighttpd the identity is the AUTH_* variables of the authorizer
    # answer, which no client header can produce (headers become HTTP_*).
    # The preset names are removed as well, for backends that read them.
    import sys
    u = User(stack, "ltforge")
    lt = CgiLighttpd(stack)
    try:
        for sub in ("app", "app-admin"):
            with open(os.path.join(stack.state, "www", sub, "env.cgi"), "w") as f:
                f.write(CGI_ALL % sys.executable)
        hdrs = dict(FORGED, Authorization="Bearer " + u.access)
        hdrs.update({"Auth-User-Id": "forged", "Auth-Roles": "admin", "Variable-Auth-Roles": "admin"})
        r = http_request("127.0.0.1", lt.port, "GET", "/app/env.cgi", None, hdrs)
        assert r.status == 200 and isinstance(r.json, dict), show(r)
        env = r.json
        assert env.get("AUTH_USER_ID") == u.id and env.get("AUTH_ROLES") == "user", env
        assert env.get("AUTH_EMAIL") == u.email, env
        stripped = {"HTTP_" + n.upper().replace("-", "_") for n in FORGED}
        leaked = {k: v for k, v in env.items() if k in stripped}
        assert not leaked, "client-sent identity headers reached the lighttpd backend: %r" % leaked
        assert "REMOTE_USER" not in env, env
        r = http_request("127.0.0.1", lt.port, "GET", "/app/env.cgi", None, FORGED)
        assert r.status == 401, "lighttpd: forged headers without a token: %s" % show(r)
    finally:
        lt.stop()


# --------------------------------------------- stock Debian nginx layout

def _debian_nginx(stack):
    """A copy of this machine's stock Debian /etc/nginx (nginx.conf and
    sites-enabled/default), our server in conf.d/ and our snippets, ports
    and paths moved into a temp prefix."""
    if not os.path.exists("/etc/nginx/sites-available/default") or not os.path.exists("/etc/nginx/nginx.conf"):
        raise Skip("no stock Debian /etc/nginx on this machine")
    root = tempfile.mkdtemp(prefix="fa-debian-nginx-", dir=stack.state)
    etc = os.path.join(root, "etc")
    shutil.copytree("/etc/nginx", etc, symlinks=False,
                    ignore=shutil.ignore_patterns("modules-enabled"))
    os.makedirs(os.path.join(etc, "modules-enabled"), exist_ok=True)
    logs = os.path.join(root, "log")
    os.makedirs(logs)
    port = free_port()

    def edit(path, subs):
        with open(path) as f:
            text = f.read()
        for pat, new in subs:
            text, n = re.subn(pat, new, text, flags=re.M)
            assert n >= 1, "%s: no %r" % (path, pat)
        with open(path, "w") as f:
            f.write(text)
    edit(os.path.join(etc, "nginx.conf"), [
        (r"^user www-data;", "user root;"),
        (r"/run/nginx\.pid", os.path.join(root, "nginx.pid")),
        (r"/var/log/nginx", logs),
        (r"/etc/nginx", etc),
        (r"^http \{", "http {\n    client_body_temp_path %s/body;\n    fastcgi_temp_path %s/fcgi;\n"
                      "    proxy_temp_path %s/proxy;\n    uwsgi_temp_path %s/uwsgi;\n    scgi_temp_path %s/scgi;"
                      % ((root,) * 5)),
    ])
    site = os.path.join(etc, "sites-enabled", "default")
    if os.path.islink(site):
        os.unlink(site)
        shutil.copy(os.path.join(etc, "sites-available", "default"), site)
    edit(site, [(r"^\s*listen 80 default_server;", "\tlisten 127.0.0.1:%d default_server;" % port),
                (r"^\s*listen \[::\]:80 default_server;", "")])
    for fn in os.listdir(os.path.join(SRCDIR, "deploy", "nginx", "snippets")):
        shutil.copy(os.path.join(SRCDIR, "deploy", "nginx", "snippets", fn), os.path.join(etc, "snippets", fn))
    with open(os.path.join(SRCDIR, "deploy", "nginx", "fcgi-auth.conf")) as f:
        ours = f.read()
    upstream = "unix:" + stack.app_addr if isinstance(stack.app_addr, str) else "%s:%d" % stack.app_addr
    for old, new in (("server unix:/run/fcgi-auth/fcgi-auth.sock;", "server %s;" % upstream),
                     ("server 127.0.0.1:8081;", "server 127.0.0.1:%d;" % stack.echo_port),
                     ("listen 80;", "listen 127.0.0.1:%d;" % port)):
        assert ours.count(old) == 1, old
        ours = ours.replace(old, new)
    with open(os.path.join(etc, "conf.d", "fcgi-auth.conf"), "w") as f:
        f.write(ours)
    name = re.search(r"^\s*server_name\s+([^;\s]+)", ours, re.M).group(1)
    return root, etc, port, name, logs


def _get_host(port, path, host, headers=None):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        from harness import Response, _headers_dict
        pairs = r.getheaders()
        return Response(r.status, _headers_dict(pairs), r.read(), 0.0, pairs)
    finally:
        conn.close()


def test_server_block_in_stock_debian_nginx(stack):
    exe = which("nginx")
    root, etc, port, name, logs = _debian_nginx(stack)
    conf = os.path.join(etc, "nginx.conf")
    errlog = os.path.join(logs, "error.log")
    t = subprocess.run([exe, "-t", "-p", etc + "/", "-c", conf, "-e", errlog],
                       capture_output=True, text=True)
    assert t.returncode == 0, "nginx -t on the Debian layout: %s" % t.stderr
    assert "conflicting server name" not in t.stderr and "warn" not in t.stderr, t.stderr
    assert name != "_", "the shipped server block is not a named server"
    p = Proc("nginx-debian", [exe, "-p", etc + "/", "-c", conf, "-e", errlog, "-g", "daemon off;"],
             os.path.join(stack.logs, "nginx-debian.out")).start()
    try:
        stack._wait_port(p, port)
        r = _get_host(port, "/auth/health", name)
        assert r.status == 200 and isinstance(r.json, dict) and r.json.get("status") == "ok", \
            "/auth/health for %s through the Debian layout: %s" % (name, show(r))
        u = User(stack, "debian")
        r = _get_host(port, "/app/x", name, {"Authorization": "Bearer " + u.access})
        assert r.status == 200 and r.json["headers"].get("x-auth-user-id") == u.id, show(r)
        # other names still reach the default site
        r = _get_host(port, "/auth/health", "other.example")
        assert r.status == 404, "the default site lost its default_server role: %s" % show(r)
    finally:
        p.stop()


# --------------------------------------------- listen on unix/loopback only

def test_shipped_configs_listen_on_unix_socket_or_loopback():
    def read(*parts):
        with open(os.path.join(SRCDIR, *parts)) as f:
            return f.read()
    sock = "/run/fcgi-auth/fcgi-auth.sock"
    nginx = read("deploy", "nginx", "fcgi-auth.conf")
    ups = re.search(r"upstream fcgi_auth \{(.*?)\}", nginx, re.S).group(1)
    assert re.findall(r"^\s*server\s+(\S+);", ups, re.M) == ["unix:" + sock], ups
    lt = read("deploy", "lighttpd", "fcgi-auth.conf")
    active = "\n".join(ln for ln in lt.splitlines() if not ln.lstrip().startswith("#"))
    socks = re.findall(r'"socket" => "([^"]*)"', active)
    assert '"host"' not in active and len(socks) >= 3 and set(socks) == {sock}, active
    assert "ListenStream=%s" % sock in read("deploy", "systemd", "fcgi-auth.socket")
    docker = read("deploy", "Dockerfile")
    assert "0.0.0.0" not in docker and not re.search(r"^EXPOSE", docker, re.M), "Dockerfile listens on the network"
    assert re.search(r"^ENV FCGI_AUTH_LISTEN=%s" % re.escape(sock), docker, re.M), docker
    compose = read("deploy", "compose.yaml")
    assert "9000" not in compose, "compose.yaml still uses the FastCGI TCP port"
    for m in re.finditer(r"^\s*-\s*\"?([\d.]*:?\d+):\d+\"?\s*$", compose, re.M):
        assert m.group(1).startswith("127.0.0.1:"), "compose publishes %s beyond loopback" % m.group(0)
    for v in re.findall(r"^#?listen = (\S*)$", read("conf", "fcgi-auth.conf.example"), re.M):
        assert v == "" or v.startswith("/") or v.startswith("127.0.0.1:"), "example listen = %s" % v


def test_fastcgi_port_not_on_the_network_in_the_stack(stack):
    # the stack's own app socket is loopback (or unix): never a wildcard
    addr = stack.app_addr
    assert isinstance(addr, str) or addr[0] == "127.0.0.1", addr
    r = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True)
    if r.returncode != 0:
        raise Skip("ss not available")
    pid = stack.app_pid
    mine = [ln for ln in r.stdout.splitlines() if "pid=%d," % pid in ln]
    for ln in mine:
        local = ln.split()[3]
        assert local.startswith("127.0.0.1:") or local.startswith("[::1]:"), "fcgi-auth listens on %s" % local


# ------------------------------------------------------ Status reason phrase

def _status_line(port, path, headers=()):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n" % (
            path, "".join("%s: %s\r\n" % h for h in headers))
        s.sendall(req.encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0].decode()
    finally:
        s.close()


def test_status_line_has_reason_phrase(stack):
    for path, hdrs, want in (("/auth/health", (), "HTTP/1.1 200 OK"),
                             ("/auth/me", (), "HTTP/1.1 401 Unauthorized"),
                             ("/auth/nope", (), "HTTP/1.1 404 Not Found"),
                             ("/auth/login", (), "HTTP/1.1 405 Method Not Allowed")):
        line = _status_line(stack.nginx_port, path, hdrs)
        assert line == want, "GET %s through nginx: %r, want %r" % (path, line, want)


# ------------------------------------------------- metrics of 405 and 413

def _count(text, route, status):
    m = re.search(r'^fcgi_auth_requests_total\{route="%s",status="%s"\} (\d+)$' % (
        re.escape(route), status), text, re.M)
    return int(m.group(1)) if m else 0


def test_metrics_known_route_keeps_label_on_405_and_413(stack):
    def scrape():
        r = stack.get("/auth/metrics")
        assert r.status == 200, show(r)
        return r.body.decode()
    before = scrape()
    r = stack.request("PUT", "/auth/login", body={})
    assert r.status == 405, show(r)
    r = stack.post("/auth/login", raw_body=b'{"email":"' + b"a" * 20000 + b'"}')
    assert r.status == 413, show(r)
    r = stack.request("PATCH", "/auth/sessions/abc", body={})
    assert r.status == 405, show(r)
    after = scrape()
    assert _count(after, "/login", 405) == _count(before, "/login", 405) + 1, "405 on PUT /auth/login"
    assert _count(after, "/login", 413) == _count(before, "/login", 413) + 1, "413 on /auth/login"
    assert _count(after, "/sessions/{id}", 405) == _count(before, "/sessions/{id}", 405) + 1
    for st in (405, 413):
        assert _count(after, "other", st) == _count(before, "other", st), "counted under route=\"other\""


# ------------------------------------------ what stays up with backends down

def test_backend_down_only_backend_routes_fail(stack):
    u = User(stack, "down")
    stack.stop_redis()
    stack.stop_postgres()
    try:
        for path in ("/auth/.well-known/jwks.json", "/auth/openapi.json", "/auth/metrics"):
            r = stack.get(path)
            assert r.status == 200, "GET %s with PostgreSQL and Redis down: %s" % (path, show(r))
        r = stack.get("/auth/health")
        assert r.status == 503, "health with both backends down: %s" % show(r)
        for r, what in ((stack.get("/auth/me", token=u.access), "GET /auth/me"),
                        (stack.post("/auth/login", body={"email": u.email, "password": "x" * 12}), "login"),
                        (stack.get("/app/x", token=u.access), "GET /app/ (auth_request)")):
            assert r.status == 503, "%s with both backends down: %s" % (what, show(r))
    finally:
        stack.start_postgres()
        stack.start_redis()


# ------------------------------- docs/DEPLOYMENT.md: one host in production

def _guide_sql():
    with open(os.path.join(SRCDIR, "docs", "DEPLOYMENT.md")) as f:
        text = f.read()
    section = text[text.index("## 6. One host in production"):]
    blocks = re.findall(r"```sql\n(.*?)```", section, re.S)
    assert len(blocks) == 3, "docs/DEPLOYMENT.md section 6: %d sql blocks, want 3" % len(blocks)
    return [[st.strip() for st in b.split(";\n") if st.strip()] for b in blocks]


def _psql_as(stack, user, db, sql):
    from harness import pg_bindir
    return subprocess.run([os.path.join(pg_bindir(), "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                           "-h", "127.0.0.1", "-p", str(stack.pg_port), "-U", user, "-d", db, "-c", sql],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)


def test_production_guide_roles_and_grants(stack):
    db = "fcgi_auth_guide"
    superuser, in_db, grants = [[st.replace("DATABASE fcgi_auth ", "DATABASE %s " % db) for st in b]
                                for b in _guide_sql()]
    for st in superuser:
        r = _psql_as(stack, "postgres", "postgres", st.rstrip(";"))
        assert r.returncode == 0 or "already exists" in r.stderr, "%s: %s" % (st, r.stderr)
    for st in in_db:
        r = _psql_as(stack, "postgres", db, st)
        assert r.returncode == 0, "%s: %s" % (st, r.stderr)
    owner_url = "host=127.0.0.1 port=%d dbname=%s user=fcgi_auth_owner" % (stack.pg_port, db)
    app_url = "host=127.0.0.1 port=%d dbname=%s user=fcgi_auth_app" % (stack.pg_port, db)
    r = stack.run_cli("migrate", overrides={"database_url": owner_url})
    assert r.returncode == 0, "migrate as the owner role: %s%s" % (r.stdout, r.stderr)
    for st in grants:
        r = _psql_as(stack, "fcgi_auth_owner", db, st)
        assert r.returncode == 0, "as the owner: %s: %s" % (st, r.stderr)
    try:
        stack.start_app(database_url=app_url)
        u = User(stack, "guide")
        r = stack.post("/auth/refresh", body={"refreshToken": u.refresh_token})
        assert r.status == 200, "refresh under the runtime role: %s" % show(r)
        r = stack.get("/auth/me", token=r.json["accessToken"])
        assert r.status == 200, show(r)
        r = stack.get("/auth/health")
        assert r.status == 200, show(r)
        rows = _psql_as(stack, "fcgi_auth_owner", db, "SELECT count(*) FROM auth.audit_log")
        assert rows.returncode == 0 and int(rows.stdout.strip()) >= 2, rows
        end = time.time() + 10
        while time.time() < end:
            pend = _psql_as(stack, "fcgi_auth_owner", db,
                            "SELECT count(*) FROM auth.outbox WHERE published_at IS NULL").stdout.strip()
            if pend == "0":
                break
            time.sleep(0.2)
        assert pend == "0", "the outbox relay cannot publish under the runtime role (%s pending)" % pend
        log = os.path.join(stack.logs, "fcgi-auth.log")
        with open(log) as f:
            assert "permission denied" not in f.read(), "the service hit a missing GRANT (see %s)" % log
        r = stack.run_cli("user", "list", overrides={"database_url": app_url})
        assert r.returncode == 0 and u.email in r.stdout, "user list under the runtime role: %s" % r.stderr
        # and what the runtime role must not do
        # (it may delete a user: DELETE /auth/me; and erase that user's
        # audit rows, which the trigger alone allows)
        for st in ("UPDATE auth.audit_log SET event = event", "DELETE FROM auth.audit_log",
                   "UPDATE auth.audit_log SET email = NULL, ip = NULL, user_agent = NULL, event = 'x'",
                   "CREATE TABLE auth.x (i int)", "DROP TABLE auth.outbox",
                   "ALTER TABLE auth.audit_log DISABLE TRIGGER audit_log_no_update"):
            r = _psql_as(stack, "fcgi_auth_app", db, st)
            assert r.returncode != 0, "the runtime role may %s" % st
    finally:
        stack.start_app()
