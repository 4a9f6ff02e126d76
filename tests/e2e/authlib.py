"""Shared helpers of the core-auth and gateway end-to-end tests
(test_register_login, test_refresh, test_logout_sessions, test_tokens,
test_admin_audit, test_gateway).  Python standard library only.

Everything here talks to a harness.Stack through nginx unless told
otherwise; assertions name the request and what came back, so that a failure
line is enough to reproduce it."""

import base64
import hashlib
import hmac
import json
import os
import math
import re
import socket
import statistics
import subprocess
import threading
import time

from harness import FA_BIN, http_request

PASSWORD = "correct horse battery"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")
B64URL_RE = re.compile(r"^[A-Za-z0-9_-]+$")


# ------------------------------------------------------------------ basics

def uniq_email(tag="user"):
    return "%s-%s@example.test" % (tag, os.urandom(6).hex())


def show(r):
    """Short text of a Response for assertion messages."""
    if r is None:
        return "None"
    return "%d %s" % (r.status, r.body[:400].decode(errors="replace"))


def assert_error(r, status, code, what=""):
    """The API.md error shape: status, {"error": code, "message": str}, JSON."""
    pre = (what + ": ") if what else ""
    assert r.status == status, "%swant %d %s, got %s" % (pre, status, code, show(r))
    assert isinstance(r.json, dict), "%serror body is not a JSON object: %r" % (pre, r.body[:300])
    assert r.json.get("error") == code, "%swant error %r, got %r" % (pre, code, r.json)
    assert isinstance(r.json.get("message"), str) and r.json["message"], \
        "%serror without a message: %r" % (pre, r.json)
    ct = r.headers.get("content-type", "")
    assert ct.startswith("application/json"), "%serror content-type %r" % (pre, ct)


def assert_validation(r, *fields, what=""):
    """400 validation_failed naming (at least) these fields."""
    assert_error(r, 400, "validation_failed", what)
    f = r.json.get("fields")
    assert isinstance(f, dict), "%s: validation error without \"fields\" object: %r" % (what, r.json)
    for name in fields:
        assert name in f, "%s: \"fields\" does not name %r: %r" % (what, name, r.json)
        assert isinstance(f[name], str) and f[name], "%s: fields.%s not a text: %r" % (what, name, f)


def assert_bearer_401(r, what=""):
    """401 invalid_token with WWW-Authenticate: Bearer error="invalid_token"."""
    assert_error(r, 401, "invalid_token", what)
    www = r.headers.get("www-authenticate", "")
    assert www.startswith("Bearer") and 'error="invalid_token"' in www, \
        "%s: WWW-Authenticate is %r" % (what, www)


def assert_no_store(r, what=""):
    cc = r.headers.get("cache-control", "")
    assert "no-store" in cc, "%s: Cache-Control %r lacks no-store" % (what, cc)


def median(xs):
    return statistics.median(xs)


def percentile(xs, p):
    """The nearest-rank p-quantile of xs, p from 0 to 1 (0.99: p99); 0.0
    for no samples."""
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[max(0, min(len(xs) - 1, math.ceil(p * len(xs)) - 1))]


def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_dec(s):
    s = s + "=" * (-len(s) % 4)
    return base64.urlsafe_b64decode(s.encode())


def jwt_parts(tok):
    """(header dict, claims dict, signature bytes) without verifying."""
    h, p, s = tok.split(".")
    return json.loads(b64u_dec(h)), json.loads(b64u_dec(p)), b64u_dec(s)


def jwt_hs(header, claims, key, alg="HS256"):
    """Sign a JWT with HMAC (HS256/384/512) under key (bytes or str)."""
    if isinstance(key, str):
        key = key.encode()
    h = b64u(json.dumps(header, separators=(",", ":")))
    p = b64u(json.dumps(claims, separators=(",", ":")))
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    sig = hmac.new(key, ("%s.%s" % (h, p)).encode(), digest).digest()
    return "%s.%s.%s" % (h, p, b64u(sig))


def stack_secret(stack):
    """The JWT secret as the service reads it (file content minus newline)."""
    with open(stack.secret_file, "rb") as f:
        data = f.read()
    if data.endswith(b"\n"):
        data = data[:-1]
    if data.endswith(b"\r"):
        data = data[:-1]
    return data


# --------------------------------------------------------------- API calls

def register(stack, email=None, password=PASSWORD, via="nginx", **fields):
    """POST /auth/register; asserts 201; returns the user object."""
    body = {"email": email or uniq_email(), "password": password}
    body.update(fields)
    r = stack.post("/auth/register", body, via=via)
    assert r.status == 201, "register %r: want 201, got %s" % (body.get("email"), show(r))
    return r.json


def login_raw(stack, email, password=PASSWORD, ua=None, via="nginx", headers=None):
    hdrs = dict(headers or {})
    if ua:
        hdrs["User-Agent"] = ua
    return stack.post("/auth/login", {"email": email, "password": password},
                      headers=hdrs, via=via)


def login(stack, email, password=PASSWORD, ua=None, via="nginx"):
    """POST /auth/login; asserts 200; returns the token pair."""
    r = login_raw(stack, email, password, ua=ua, via=via)
    assert r.status == 200, "login %s: want 200, got %s" % (email, show(r))
    assert r.json and r.json.get("accessToken") and r.json.get("refreshToken"), show(r)
    return r.json


class User:
    """A registered user and its first session."""

    def __init__(self, stack, tag="user", password=PASSWORD, login_now=True, **fields):
        self.stack = stack
        self.email = uniq_email(tag)
        self.password = password
        self.user = register(stack, self.email, password, **fields)
        self.id = self.user["id"]
        self.pair = login(stack, self.email, password) if login_now else None

    @property
    def access(self):
        return self.pair["accessToken"]

    @property
    def refresh_token(self):
        return self.pair["refreshToken"]

    def login(self, ua=None):
        return login(self.stack, self.email, self.password, ua=ua)


def refresh(stack, rt, via="nginx"):
    return stack.post("/auth/refresh", {"refreshToken": rt}, via=via)


def me(stack, token, via="nginx"):
    return stack.get("/auth/me", token=token, via=via)


def verify(stack, token, role=None, via="nginx"):
    path = "/auth/verify" + ("?role=" + role if role else "")
    return stack.get(path, token=token, via=via)


def introspect(stack, token, via="nginx"):
    return stack.post("/auth/introspect", {"token": token}, via=via)


def sessions(stack, token):
    r = stack.get("/auth/sessions", token=token)
    assert r.status == 200, "GET /auth/sessions: %s" % show(r)
    assert isinstance(r.json, dict) and isinstance(r.json.get("sessions"), list), show(r)
    return r.json["sessions"]


def assert_access_alive(stack, token, what="access token"):
    r = me(stack, token)
    assert r.status == 200, "%s: GET /auth/me want 200, got %s" % (what, show(r))
    r = verify(stack, token)
    assert r.status == 204, "%s: GET /auth/verify want 204, got %s" % (what, show(r))
    r = introspect(stack, token)
    assert r.status == 200 and r.json and r.json.get("active") is True, \
        "%s: introspect want active true, got %s" % (what, show(r))


def assert_access_dead(stack, token, what="access token"):
    """Rejected by /auth/me (401 + WWW-Authenticate), /auth/verify (401) and
    /auth/introspect ({"active": false} and nothing else)."""
    assert_bearer_401(me(stack, token), what + ": GET /auth/me")
    r = verify(stack, token)
    assert r.status == 401, "%s: GET /auth/verify want 401, got %s" % (what, show(r))
    r = introspect(stack, token)
    assert r.status == 200 and r.json == {"active": False}, \
        "%s: introspect want 200 {\"active\": false}, got %s" % (what, show(r))


def assert_refresh_dead(stack, rt, what="refresh token"):
    assert_error(refresh(stack, rt), 401, "invalid_token", what + ": POST /auth/refresh")


def assert_token_pair(r, what="token pair", access_ttl=900, refresh_ttl=604800):
    assert r.status == 200, "%s: want 200, got %s" % (what, show(r))
    j = r.json
    assert isinstance(j, dict), "%s: body not an object: %r" % (what, r.body[:300])
    want = {"accessToken", "refreshToken", "tokenType", "expiresIn", "refreshExpiresIn"}
    assert want <= set(j), "%s: keys %s, want %s" % (what, sorted(j), sorted(want))
    assert j["tokenType"] == "Bearer", "%s: tokenType %r" % (what, j["tokenType"])
    if access_ttl is not None:
        assert j["expiresIn"] == access_ttl, "%s: expiresIn %r, want %d" % (what, j["expiresIn"], access_ttl)
    if refresh_ttl is not None:
        assert j["refreshExpiresIn"] == refresh_ttl, \
            "%s: refreshExpiresIn %r, want %d" % (what, j["refreshExpiresIn"], refresh_ttl)
    rt = j["refreshToken"]
    assert isinstance(rt, str) and len(rt) == 86 and B64URL_RE.match(rt), \
        "%s: refreshToken not 86 base64url chars: %r" % (what, rt)
    assert isinstance(j["accessToken"], str) and j["accessToken"].count(".") == 2, \
        "%s: accessToken not a JWT: %r" % (what, j["accessToken"])
    assert_no_store(r, what)
    return j


# ------------------------------------------------------------ PostgreSQL

def audit_rows(stack, where="true", params=()):
    """auth.audit_log rows as dicts (oldest first).  where is SQL; values
    in params are quoted and substituted for %s."""
    q = where % tuple(sql_quote(p) for p in params)
    rows = stack.psql("SELECT row_to_json(a)::text FROM auth.audit_log a WHERE %s ORDER BY id" % q)
    return [json.loads(r[0]) for r in rows]


def outbox_rows(stack, event, where="true", params=()):
    q = where % tuple(sql_quote(p) for p in params)
    rows = stack.psql("SELECT row_to_json(o)::text FROM auth.outbox o WHERE event = %s AND (%s) ORDER BY id"
                      % (sql_quote(event), q))
    return [json.loads(r[0]) for r in rows]


def sql_quote(v):
    return "'" + str(v).replace("'", "''") + "'"


def wait_for(fn, timeout=3.0, step=0.05):
    """Poll fn() until it returns something truthy; returns the last value."""
    end = time.time() + timeout
    v = fn()
    while not v and time.time() < end:
        time.sleep(step)
        v = fn()
    return v


# ------------------------------------------------------------------- CLI

def grant(stack, email, role):
    r = stack.run_cli("user", "grant", email, role)
    assert r.returncode == 0, "fcgi-auth user grant %s %s: rc %d\n%s%s" % (
        email, role, r.returncode, r.stdout, r.stderr)
    return r


def keygen(stack, alg, kid, directory):
    """`fcgi-auth keygen`.  Options come before the algorithm: that order
    works whatever getopt does (test_gateway checks the documented order,
    `keygen rs256 --kid ID --dir DIR`, separately)."""
    os.makedirs(directory, exist_ok=True)
    r = subprocess.run([FA_BIN, "keygen", "--kid", kid, "--dir", directory, alg],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "fcgi-auth keygen %s --kid %s: rc %d\n%s%s" % (
        alg, kid, r.returncode, r.stdout, r.stderr)
    priv = os.path.join(directory, kid + ".pem")
    pub = os.path.join(directory, kid + ".pub.pem")
    assert os.path.exists(priv) and os.path.exists(pub), "keygen wrote %s" % os.listdir(directory)
    return priv, pub


# -------------------------------------------------------------- threads

def parallel(n, fn, timeout=30):
    """Run fn(i) in n threads released together; returns the results (or
    the exceptions) in order."""
    barrier = threading.Barrier(n)
    out = [None] * n

    def run(i):
        try:
            barrier.wait(timeout)
            out[i] = fn(i)
        except Exception as e:          # reported to the caller
            out[i] = e
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout)
    return out


class Background:
    """Load in the background: n daemon threads, thread i calling step(i)
    in a loop until stopped.  A step keeps what it saw with add(t, rec), t
    its monotonic time; lock also guards a user's own shared state.  Start
    and stop with `with` or start()/stop(); a thread is waited for at most
    join_timeout seconds (None: until its step returns)."""

    def __init__(self, n, step, join_timeout=None):
        self.n = n
        self.step = step
        self.join_timeout = join_timeout
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []
        self._recs = []             # (t, rec), in the order added

    def _run(self, i):
        while not self.stopping.is_set():
            self.step(i)

    def add(self, t, rec):
        with self.lock:
            self._recs.append((t, rec))

    def start(self):
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(self.n)]
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(self.join_timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def records(self):
        with self.lock:
            return [rec for _, rec in self._recs]

    def between(self, t0, t1=None):
        """The records whose time is in [t0, t1) (t1 None: no end)."""
        with self.lock:
            return [rec for t, rec in self._recs if t >= t0 and (t1 is None or t < t1)]


def raw_http(stack, method, path, body=None, headers=None, via="nginx", timeout=10.0):
    """A request with exactly these headers (stack.request adds a JSON
    Content-Type to every body; this does not)."""
    port = {"nginx": stack.nginx_port, "lighttpd": stack.lighttpd_port}[via]
    return http_request("127.0.0.1", port, method, path, body, headers or {}, timeout)


# --------------------------------------------- RS256 / ES256 verification
# Pure-Python signature checks, so a test can prove that the key published
# at the JWKS route really verifies the tokens the service issues.

def _int(b64):
    return int.from_bytes(b64u_dec(b64), "big")


def rs256_verify(jwk, token):
    """True if token's RS256 signature verifies under the JWK {"n","e"}."""
    h, p, s = token.split(".")
    n, e = _int(jwk["n"]), _int(jwk["e"])
    k = (n.bit_length() + 7) // 8
    sig = b64u_dec(s)
    if len(sig) != k:
        return False
    m = pow(int.from_bytes(sig, "big"), e, n).to_bytes(k, "big")
    di = bytes.fromhex("3031300d060960864801650304020105000420") + \
        hashlib.sha256(("%s.%s" % (h, p)).encode()).digest()
    return m == b"\x00\x01" + b"\xff" * (k - 3 - len(di)) + b"\x00" + di


_P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffff
_A = _P - 3
_B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b
_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551
_G = (0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296,
      0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5)


def _ec_add(P, Q):
    if P is None:
        return Q
    if Q is None:
        return P
    if P[0] == Q[0] and (P[1] + Q[1]) % _P == 0:
        return None
    if P == Q:
        lam = (3 * P[0] * P[0] + _A) * pow(2 * P[1], -1, _P) % _P
    else:
        lam = (Q[1] - P[1]) * pow(Q[0] - P[0], -1, _P) % _P
    x = (lam * lam - P[0] - Q[0]) % _P
    return (x, (lam * (P[0] - x) - P[1]) % _P)


def _ec_mul(k, P):
    R = None
    while k:
        if k & 1:
            R = _ec_add(R, P)
        P = _ec_add(P, P)
        k >>= 1
    return R


def p256_on_curve(x, y):
    return (y * y - (x * x * x + _A * x + _B)) % _P == 0


def es256_verify(jwk, token):
    """True if token's ES256 (r||s) signature verifies under the JWK {"x","y"}."""
    h, p, s = token.split(".")
    Q = (_int(jwk["x"]), _int(jwk["y"]))
    if not p256_on_curve(*Q):
        return False
    sig = b64u_dec(s)
    if len(sig) != 64:
        return False
    r, s_ = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    if not (0 < r < _N and 0 < s_ < _N):
        return False
    e = int.from_bytes(hashlib.sha256(("%s.%s" % (h, p)).encode()).digest(), "big")
    w = pow(s_, -1, _N)
    X = _ec_add(_ec_mul(e * w % _N, _G), _ec_mul(r * w % _N, Q))
    return X is not None and X[0] % _N == r


def openssl_rsa_modulus(pub_pem):
    r = subprocess.run(["openssl", "rsa", "-pubin", "-in", pub_pem, "-modulus", "-noout"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, "openssl rsa: %s" % r.stderr
    return int(r.stdout.strip().split("=", 1)[1], 16)


def openssl_ec_point(pub_pem):
    """(curve name, x, y) of an EC public key, from `openssl ec -text`."""
    r = subprocess.run(["openssl", "ec", "-pubin", "-in", pub_pem, "-text", "-noout"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, "openssl ec: %s" % r.stderr
    hexs, curve, inpub = "", None, False
    for line in r.stdout.splitlines():
        t = line.strip()
        if t.startswith("pub:"):
            inpub = True
            continue
        if inpub and re.match(r"^[0-9a-f:]+$", t):
            hexs += t.replace(":", "")
            continue
        inpub = False
        if t.startswith("NIST CURVE:") or t.startswith("ASN1 OID:"):
            curve = curve or t.split(":", 1)[1].strip()
    pt = bytes.fromhex(hexs)
    assert pt[0] == 4 and len(pt) == 65, "unexpected EC point %s" % hexs
    return curve, int.from_bytes(pt[1:33], "big"), int.from_bytes(pt[33:], "big")


# ------------------------------------------- lighttpd with a CGI backend
# The harness's lighttpd serves static files behind the authorizer, which
# cannot show what a backend receives.  This starts a second lighttpd on the
# same shipped deploy/lighttpd/fcgi-auth.conf (as the harness renders it)
# plus mod_cgi, and an env.cgi under /app/ and /app-admin/ that answers
# with the AUTH_* variables it was given.

CGI_SCRIPT = """#!%s
import json, os
out = json.dumps({k: v for k, v in os.environ.items() if k.startswith("AUTH_") or k == "HTTP_AUTHORIZATION"})
print("Content-Type: application/json")
print("Content-Length: %%d" %% len(out))
print()
print(out, end="")
"""


class CgiLighttpd:
    def __init__(self, stack):
        import sys
        from harness import Proc, free_port, which
        self.stack = stack
        self.port = free_port()
        main = stack.lighttpd_conf()            # renders the shipped file
        d = os.path.dirname(main)
        www = os.path.join(stack.state, "www")
        for sub in ("app", "app-admin"):
            p = os.path.join(www, sub, "env.cgi")
            with open(p, "w") as f:
                f.write(CGI_SCRIPT % sys.executable)
            os.chmod(p, 0o755)
        with open(main) as f:
            text = f.read()
        text = re.sub(r"server\.port = \d+", "server.port = %d" % self.port, text)
        text = text.replace("lighttpd.pid", "lighttpd-cgi.pid")
        text = text.replace("lighttpd-error.log", "lighttpd-cgi-error.log")
        text = text.replace("lighttpd-access.log", "lighttpd-cgi-access.log")
        text += 'server.modules += ( "mod_cgi" )\ncgi.assign = ( ".cgi" => "" )\n'
        self.conf = os.path.join(d, "lighttpd-cgi.conf")
        with open(self.conf, "w") as f:
            f.write(text)
        exe = which("lighttpd")
        t = subprocess.run([exe, "-tt", "-f", self.conf], capture_output=True, text=True)
        assert t.returncode == 0, "lighttpd -tt (shipped config + mod_cgi): %s%s" % (t.stdout, t.stderr)
        self.proc = Proc("lighttpd-cgi", [exe, "-D", "-f", self.conf],
                         os.path.join(stack.logs, "lighttpd-cgi.out")).start()
        stack._wait_port(self.proc, self.port)

    def get(self, path, token=None):
        hdrs = {"Authorization": "Bearer " + token} if token else {}
        return http_request("127.0.0.1", self.port, "GET", path, None, hdrs)

    def stop(self):
        self.proc.stop()


# ------------------------------------------------------------ RESP client

class RedisError(Exception):
    pass


class Resp:
    """One Redis connection speaking RESP2 (enough for commands and pub/sub)."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("redis closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bulk(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._bulk(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RedisError("unexpected RESP line %r" % line[:80])

    def call(self, *args):
        self.send(*args)
        return self.read()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def redis_call(stack, *args):
    c = Resp(stack.redis_port)
    try:
        return c.call(*args)
    finally:
        c.close()
