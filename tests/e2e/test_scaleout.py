"""Scale-out: several fcgi-auth instances behind one nginx upstream share
nothing but PostgreSQL and Redis, so a token issued by one is verified,
refreshed and revoked by any other at once; with Redis Sentinel the service
follows a new master after the old one is killed under load; with a
multi-host libpq conninfo (target_session_attrs=read-write) it follows a
promoted PostgreSQL standby.  In both failovers every registration that was
answered 201 is in auth.users afterwards, and no email is there twice.

The failover tests print the measured error window (first to last 503, in
seconds) on a line starting "measured:"; docs/DEPLOYMENT.md quotes them.
Each test builds its own deployment (harness.Stack for PostgreSQL, Redis and
the secret, plus the extra servers started here), stopped by PID in a
finally.  FA_SCALEOUT_SECONDS (default 6) is how long the load runs after a
failover has been triggered; FA_SCALEOUT_PROMOTE_DELAY (default 1) the
seconds between stopping the PostgreSQL primary and promoting the standby."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time

from harness import (FA_BIN, HarnessError, Proc, Skip, Stack, fcgi_request, free_port,
                     http_request, pg_bindir, tail, which)
from authlib import Background

PASSWORD = "correct horse battery"
INSTANCES = 3
MASTER = "mymaster"
LOAD_AFTER = float(os.environ.get("FA_SCALEOUT_SECONDS", "6"))
# Seconds between stopping the PostgreSQL primary and promoting the standby
# (a failover manager's detection time; 0: promote at once).
PROMOTE_DELAY = float(os.environ.get("FA_SCALEOUT_PROMOTE_DELAY", "1"))


def uniq_email(tag):
    return "%s-%s@example.test" % (tag, os.urandom(6).hex())


def show(r):
    return "None" if r is None else "%d %s" % (r.status, r.body[:300].decode(errors="replace"))


# ------------------------------------------------------------ the deployment

class Deployment:
    """A harness.Stack (PostgreSQL, Redis, the JWT secret, the schema) whose
    single fcgi-auth is replaced by INSTANCES of them on their own ports,
    all in one nginx upstream.  Extra processes go into stack.procs so that
    stack.stop() stops them by PID too."""

    def __init__(self, name, config=None):
        self.stack = Stack(name=name, config=config, nginx=False, lighttpd=False, echo=False)
        self.addrs = []
        self.overrides = {}
        self.cleanups = []          # run after the instances stopped

    def __enter__(self):
        try:
            self.stack.start()
            self.stack.stop_app()       # replaced by start_instances()
        except BaseException:
            self.stack.stop()
            raise
        return self

    def __exit__(self, *exc):
        st = self.stack
        for name in ["nginx"] + ["app%d" % (i + 1) for i in range(len(self.addrs))]:
            p = st.procs.get(name)
            if p:
                try:
                    p.stop()
                except Exception as e:
                    print("stop %s: %s" % (name, e))
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:
                print("cleanup: %s" % e)
        st.stop()
        return False

    # ---- fcgi-auth instances
    def start_instances(self, overrides=None, n=INSTANCES):
        st = self.stack
        self.overrides = dict(overrides or {})
        self.addrs = []
        for i in range(n):
            name = "app%d" % (i + 1)
            port = st.app_port if i == 0 else free_port()
            conf = st.write_config(self.overrides, path=os.path.join(st.state, name + ".conf"))
            p = Proc(name, [FA_BIN, "--config", conf, "serve", "--listen", "127.0.0.1:%d" % port],
                     os.path.join(st.logs, "fcgi-auth-%s.log" % name), env=st.app_env()).start()
            st.procs[name] = p
            self.addrs.append(("127.0.0.1", port))
        for i, addr in enumerate(self.addrs):
            st.wait_app(st.procs["app%d" % (i + 1)], addr)

    def instance_log(self, i):
        return os.path.join(self.stack.logs, "fcgi-auth-app%d.log" % (i + 1))

    # ---- nginx: the shipped config, its upstream holding every instance
    def start_nginx(self):
        st = self.stack
        d, conf = st.nginx_conf()
        path = os.path.join(d, "fcgi-auth.conf")
        with open(path) as f:
            text = f.read()
        one = "server 127.0.0.1:%d;" % st.app_port
        if text.count(one) != 1:
            raise HarnessError("rendered nginx config: expected one %r" % one)
        text = text.replace(one, "\n    ".join("server %s:%d;" % a for a in self.addrs))
        with open(path, "w") as f:
            f.write(text)
        exe = which("nginx")
        if not exe:
            raise Skip("nginx not installed")
        errlog = os.path.join(st.logs, "nginx-error.log")
        t = subprocess.run([exe, "-t", "-p", d + "/", "-c", conf, "-e", errlog],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if t.returncode != 0:
            raise HarnessError("nginx -t failed:\n" + t.stderr)
        p = Proc("nginx", [exe, "-p", d + "/", "-c", conf, "-e", errlog],
                 os.path.join(st.logs, "nginx.out")).start()
        st.procs["nginx"] = p
        st._wait_port(p, st.nginx_port)

    # ---- requests
    def http(self, method, path, body=None, token=None, timeout=5.0):
        hdrs = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if token:
            hdrs["Authorization"] = "Bearer " + token
        return http_request("127.0.0.1", self.stack.nginx_port, method, path, data, hdrs, timeout)

    def fcgi(self, i, method, path, body=None, token=None, timeout=5.0):
        """Straight to instance i over FastCGI, bypassing nginx."""
        hdrs = {}
        data = b""
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if token:
            hdrs["Authorization"] = "Bearer " + token
        return fcgi_request(self.addrs[i], method, path, data, hdrs, timeout=timeout)

    # ---- PostgreSQL on any port of this deployment
    def psql(self, sql, port=None):
        r = subprocess.run(
            [os.path.join(pg_bindir(), "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(port or self.stack.pg_port), "-U", "postgres",
             "-d", self.stack.dbname, "-c", sql],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise HarnessError("psql: %s" % r.stderr.strip())
        return [l for l in r.stdout.splitlines() if l]


def redis_cmd(port, *args, timeout=2.0):
    """One command through redis-cli --raw; None if the server is down."""
    try:
        r = subprocess.run([which("redis-cli") or "redis-cli", "-h", "127.0.0.1", "-p", str(port),
                            "--raw"] + [str(a) for a in args],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0 or r.stdout.startswith("Could not connect"):
        return None
    return r.stdout


def wait_until(fn, timeout, what, step=0.1):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:          # a server still starting
            last = e
        time.sleep(step)
    raise AssertionError("timed out after %.0fs waiting for %s (last: %r)" % (timeout, what, last))


# ------------------------------------------------------------------ the load

class Load:
    """Client threads through nginx: each round registers a new user, logs
    in the last user it registered, verifies and refreshes its current pair.
    Every answer is recorded with its time; a 201 registration with its id."""

    def __init__(self, dep, threads=4):
        self.dep = dep
        self.bg = Background(threads, self._round, join_timeout=20)
        self.lock = self.bg.lock
        self.registered = {}        # email -> id, every 201
        self.errors = []
        self.state = [(None, None)] * threads   # a thread's (last email, pair)

    def _call(self, op, method, path, body=None, token=None):
        try:
            r = self.dep.http(method, path, body=body, token=token, timeout=8.0)
        except OSError as e:
            with self.lock:
                self.errors.append("%s: %s" % (op, e))
            r = None
        t = time.monotonic()
        self.bg.add(t, (t, op, r.status if r is not None else 0))
        return r

    def _round(self, n):
        last_email, pair = self.state[n]
        email = uniq_email("load%d" % n)
        r = self._call("register", "POST", "/auth/register",
                       {"email": email, "password": PASSWORD})
        if r is not None and r.status == 201:
            with self.lock:
                self.registered[email] = r.json["id"]
            last_email = email
        if last_email:
            r = self._call("login", "POST", "/auth/login",
                           {"email": last_email, "password": PASSWORD})
            if r is not None and r.status == 200:
                pair = r.json
        if pair:
            self._call("verify", "GET", "/auth/verify", token=pair["accessToken"])
            r = self._call("refresh", "POST", "/auth/refresh",
                           {"refreshToken": pair["refreshToken"]})
            if r is not None and r.status == 200:
                pair = r.json
            elif r is not None and r.status == 401:
                pair = None
        self.state[n] = (last_email, pair)

    def start(self):
        self.bg.start()

    def stop(self):
        self.bg.stop()

    def since(self, t0):
        """(monotonic time, op, status) of every answer since t0."""
        return self.bg.between(t0)

    def ok_since(self, t0, ops=("register", "login", "verify", "refresh")):
        """Every op has succeeded at least twice since t0."""
        good = {"register": 201, "login": 200, "verify": 204, "refresh": 200}
        seen = {}
        for t, op, st in self.since(t0):
            if st == good.get(op):
                seen[op] = seen.get(op, 0) + 1
        return all(seen.get(op, 0) >= 2 for op in ops)

    def report(self, t_fail, what):
        """The error window around the failover triggered at t_fail."""
        ev = self.since(0)
        bad = [e for e in ev if e[2] == 503]
        other = {}
        for t, op, st in ev:
            if st not in (200, 201, 204, 401, 503):
                key = "%s %d" % (op, st)
                other[key] = other.get(key, 0) + 1
        by_op = {}
        for t, op, st in bad:
            by_op[op] = by_op.get(op, 0) + 1
        res = {
            "what": what,
            "requests": len(ev),
            "registered_201": len(self.registered),
            "n503": len(bad),
            "n503_by_op": by_op,
            "window_s": round(bad[-1][0] - bad[0][0], 2) if bad else 0.0,
            "first_503_after_s": round(bad[0][0] - t_fail, 2) if bad else None,
            "last_503_after_s": round(bad[-1][0] - t_fail, 2) if bad else None,
            "other_statuses": other,
            "client_errors": len(self.errors),
        }
        print("measured: %s" % json.dumps(res, sort_keys=True), flush=True)
        out = os.environ.get("FA_SCALEOUT_RESULTS")
        if out:
            with open(out, "a") as f:
                f.write(json.dumps(res, sort_keys=True) + "\n")
        return res


def check_registrations(dep, load, port=None):
    """Every 201 is in auth.users with the id it was answered with, once."""
    want = dict(load.registered)
    assert want, "no registration succeeded under load"
    rows = dep.psql("SELECT id::text || ' ' || email FROM auth.users", port=port)
    have = {}
    for line in rows:
        uid, email = line.split(" ", 1)
        have.setdefault(email, []).append(uid)
    lost = [e for e in want if e not in have]
    assert not lost, "%d registrations answered 201 are not in auth.users: %s" % (len(lost), lost[:5])
    wrong = [e for e in want if want[e] not in have[e]]
    assert not wrong, "201 ids differ from the stored ones: %s" % wrong[:5]
    dup = dep.psql("SELECT lower(email) FROM auth.users GROUP BY 1 HAVING count(*) > 1", port=port)
    assert not dup, "emails registered twice: %s" % dup[:5]
    return len(want)


def full_round(dep, i, what):
    """register, login, verify, refresh, logout on instance i (FastCGI)."""
    email = uniq_email("round%d" % i)
    r = dep.fcgi(i, "POST", "/auth/register", {"email": email, "password": PASSWORD})
    assert r.status == 201, "%s: register on instance %d: %s" % (what, i + 1, show(r))
    r = dep.fcgi(i, "POST", "/auth/login", {"email": email, "password": PASSWORD})
    assert r.status == 200, "%s: login on instance %d: %s" % (what, i + 1, show(r))
    pair = r.json
    r = dep.fcgi(i, "GET", "/auth/verify", token=pair["accessToken"])
    assert r.status == 204, "%s: verify on instance %d: %s" % (what, i + 1, show(r))
    r = dep.fcgi(i, "POST", "/auth/refresh", {"refreshToken": pair["refreshToken"]})
    assert r.status == 200, "%s: refresh on instance %d: %s" % (what, i + 1, show(r))
    return r.json


# --------------------------------------------------------- tokens cross over

def dead_within(dep, i, token, ms=100):
    """The token is refused by instance i within ms (API.md: revocation
    reaches every instance sharing the Redis within 100 ms); the delay."""
    t0 = time.monotonic()
    while True:
        r = dep.fcgi(i, "GET", "/auth/verify", token=token)
        if r.status == 401:
            return (time.monotonic() - t0) * 1000
        assert r.status == 204, "verify on instance %d: %s" % (i + 1, show(r))
        if (time.monotonic() - t0) * 1000 > ms:
            raise AssertionError("instance %d still accepts a revoked token after %d ms" % (i + 1, ms))
        time.sleep(0.005)


def test_three_instances_tokens_cross():
    with Deployment("scaleout") as dep:
        dep.start_instances({"refresh_reuse_grace": "0"})
        dep.start_nginx()
        A, B, C = 0, 1, 2
        email = uniq_email("cross")
        r = dep.fcgi(A, "POST", "/auth/register", {"email": email, "password": PASSWORD})
        assert r.status == 201, "register on 1: %s" % show(r)
        r = dep.fcgi(B, "POST", "/auth/register", {"email": email, "password": PASSWORD})
        assert r.status == 409, "the same email on 2: %s" % show(r)
        r = dep.fcgi(B, "POST", "/auth/login", {"email": email, "password": PASSWORD})
        assert r.status == 200, "login on 2: %s" % show(r)
        p1 = r.json
        for i in (A, B, C):
            r = dep.fcgi(i, "GET", "/auth/verify", token=p1["accessToken"])
            assert r.status == 204, "verify on %d of a token from 2: %s" % (i + 1, show(r))
            r = dep.fcgi(i, "GET", "/auth/me", token=p1["accessToken"])
            assert r.status == 200 and r.json["email"] == email, "me on %d: %s" % (i + 1, show(r))
        # refresh on 3; the old refresh token is then dead on 1 (reuse: the
        # session is revoked) and the new access token dies with it
        r = dep.fcgi(C, "POST", "/auth/refresh", {"refreshToken": p1["refreshToken"]})
        assert r.status == 200, "refresh on 3 of a pair from 2: %s" % show(r)
        p2 = r.json
        r = dep.fcgi(A, "GET", "/auth/verify", token=p2["accessToken"])
        assert r.status == 204, "verify on 1 of an access token refreshed on 3: %s" % show(r)
        r = dep.fcgi(A, "POST", "/auth/refresh", {"refreshToken": p1["refreshToken"]})
        assert r.status == 401, "reuse on 1 of a token rotated on 3: %s" % show(r)
        delays = [dead_within(dep, i, p2["accessToken"]) for i in (B, C)]
        # logout on 1 kills the token on 2 and 3
        r = dep.fcgi(B, "POST", "/auth/login", {"email": email, "password": PASSWORD})
        assert r.status == 200, show(r)
        p3 = r.json
        r = dep.fcgi(A, "POST", "/auth/logout", token=p3["accessToken"])
        assert r.status == 204, "logout on 1: %s" % show(r)
        delays += [dead_within(dep, i, p3["accessToken"]) for i in (B, C)]
        r = dep.fcgi(C, "POST", "/auth/refresh", {"refreshToken": p3["refreshToken"]})
        assert r.status == 401, "refresh on 3 after logout on 1: %s" % show(r)
        # logout-all on 3 kills every earlier token of the user on 1 and 2
        pairs = []
        for i in (A, B):
            r = dep.fcgi(i, "POST", "/auth/login", {"email": email, "password": PASSWORD})
            assert r.status == 200, show(r)
            pairs.append(r.json)
        r = dep.fcgi(C, "POST", "/auth/logout-all", token=pairs[0]["accessToken"])
        assert r.status == 204, "logout-all on 3: %s" % show(r)
        for p in pairs:
            delays += [dead_within(dep, i, p["accessToken"]) for i in (A, B)]
        # through nginx: every instance takes a share, and rounds made of
        # requests landing on different instances all work
        marks = [os.path.getsize(dep.instance_log(i)) for i in range(INSTANCES)]
        for n in range(12):
            e = uniq_email("lb%d" % n)
            r = dep.http("POST", "/auth/register", {"email": e, "password": PASSWORD})
            assert r.status == 201, "register via nginx: %s" % show(r)
            r = dep.http("POST", "/auth/login", {"email": e, "password": PASSWORD})
            assert r.status == 200, "login via nginx: %s" % show(r)
            pr = r.json
            r = dep.http("POST", "/auth/refresh", {"refreshToken": pr["refreshToken"]})
            assert r.status == 200, "refresh via nginx: %s" % show(r)
            pr = r.json
            for _ in range(3):
                r = dep.http("GET", "/auth/verify", token=pr["accessToken"])
                assert r.status == 204, "verify via nginx: %s" % show(r)
            r = dep.http("POST", "/auth/logout", token=pr["accessToken"])
            assert r.status == 204, "logout via nginx: %s" % show(r)
            # the next verify may land on another instance: API.md gives
            # those 100 ms (the revoking one rejects at once, tested above)
            time.sleep(0.1)
            for _ in range(3):
                r = dep.http("GET", "/auth/verify", token=pr["accessToken"])
                assert r.status == 401, "verify via nginx after logout: %s" % show(r)
        served = []
        for i in range(INSTANCES):
            with open(dep.instance_log(i), "rb") as f:
                f.seek(marks[i])
                served.append(f.read().count(b" access "))
        assert all(s > 0 for s in served), "nginx did not spread requests: %s" % served
        print("measured: %s" % json.dumps({"what": "cross-instance revocation",
                                           "max_delay_ms": round(max(delays), 1),
                                           "requests_per_instance": served}), flush=True)


test_three_instances_tokens_cross.timeout = 120


# ------------------------------------------------------- Redis with Sentinel

def start_redis(dep, name, port, *extra):
    st = dep.stack
    d = os.path.join(st.state, name)
    os.makedirs(d, exist_ok=True)
    p = Proc(name, [which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", d]
             + list(extra), os.path.join(st.logs, name + ".log")).start()
    st.procs[name] = p
    wait_until(lambda: redis_cmd(port, "PING") == "PONG\n", 15, "%s to answer" % name)
    return p


def start_sentinel(dep, n, port, master_port):
    st = dep.stack
    d = os.path.join(st.state, "sentinel%d" % n)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "sentinel.conf")
    with open(conf, "w") as f:       # sentinel rewrites this file
        f.write("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\n"
                "sentinel resolve-hostnames no\n"
                "sentinel monitor %s 127.0.0.1 %d 2\n"
                "sentinel down-after-milliseconds %s 1000\n"
                "sentinel failover-timeout %s 5000\n"
                "sentinel parallel-syncs %s 1\n"
                % (port, d, MASTER, master_port, MASTER, MASTER, MASTER))
    name = "sentinel%d" % n
    p = Proc(name, [which("redis-server"), conf, "--sentinel"],
             os.path.join(st.logs, name + ".log")).start()
    st.procs[name] = p
    return p


def sentinel_master_port(port):
    out = redis_cmd(port, "SENTINEL", "get-master-addr-by-name", MASTER)
    if not out:
        return None
    parts = out.split()
    return int(parts[1]) if len(parts) == 2 else None


def sentinels_ready(sports, replica_port):
    for s in sports:
        reps = redis_cmd(s, "SENTINEL", "replicas", MASTER) or ""
        if str(replica_port) not in reps:
            return False
        sen = redis_cmd(s, "SENTINEL", "sentinels", MASTER) or ""
        if sum(1 for p in sports if p != s and ("\n%d\n" % p) in "\n" + sen) < 2:
            return False
    return True


def test_redis_sentinel_failover_under_load():
    if not which("redis-server") or not which("redis-cli"):
        raise Skip("redis-server/redis-cli not installed")
    with Deployment("sentinel") as dep:
        st = dep.stack
        r = st.run_cli("check-config", overrides={"redis_sentinels": "not-an-address"})
        if r.returncode == 0:
            raise Skip("this build ignores redis_sentinels (docs/store-sentinel.patch "
                       "not applied yet)")
        primary = st.redis_port
        replica = free_port()
        start_redis(dep, "redis-replica", replica, "--replicaof", "127.0.0.1", str(primary))
        wait_until(lambda: "master_link_status:up" in (redis_cmd(replica, "INFO", "replication") or ""),
                   20, "the replica to sync")
        sports = [free_port() for _ in range(3)]
        for n, p in enumerate(sports):
            start_sentinel(dep, n + 1, p, primary)
        wait_until(lambda: sentinels_ready(sports, replica), 30,
                   "three sentinels that know the replica and each other", step=0.25)
        # redis_host/port name the replica on purpose: with sentinels set the
        # service must ask them (a write to the replica would be READONLY)
        dep.start_instances({
            "redis_sentinels": ",".join("127.0.0.1:%d" % p for p in sports),
            "redis_master_name": MASTER,
            "redis_host": "127.0.0.1",
            "redis_port": str(replica),
        })
        dep.start_nginx()
        for i in range(INSTANCES):
            full_round(dep, i, "before the failover")
        pre = full_round(dep, 0, "a pair that crosses the failover")
        time.sleep(0.2)                 # let the replica take it

        load = Load(dep)
        load.start()
        try:
            time.sleep(2.0)
            assert load.ok_since(0), "the load does not get through before the failover"
            t_kill = time.monotonic()
            st.procs["redis"].stop(signal.SIGKILL, timeout=5)
            wait_until(lambda: sentinel_master_port(sports[0]) == replica, 30,
                       "the sentinels to promote the replica")
            t_promoted = time.monotonic()
            wait_until(lambda: load.ok_since(t_promoted), 30,
                       "every operation to succeed again after the failover")
            t_back = time.monotonic()
            time.sleep(max(0.0, LOAD_AFTER - (t_back - t_kill)))
        finally:
            load.stop()
        res = load.report(t_kill, "redis sentinel failover (primary SIGKILL)")
        print("measured: %s" % json.dumps({
            "what": "redis sentinel timings",
            "kill_to_promoted_s": round(t_promoted - t_kill, 2),
            "kill_to_all_ops_ok_s": round(t_back - t_kill, 2)}), flush=True)
        assert not res["other_statuses"], "statuses other than 2xx/401/503: %s" % res["other_statuses"]
        assert res["window_s"] < 20, "error window %.1fs" % res["window_s"]
        n = check_registrations(dep, load)
        # every instance works on the new master, and found it by itself
        for i in range(INSTANCES):
            full_round(dep, i, "after the failover")
            with open(dep.instance_log(i), "rb") as f:
                log = f.read().decode(errors="replace")
            assert "127.0.0.1:%d" % replica in log and "sentinel: master" in log, \
                "instance %d did not log the new master:\n%s" % (i + 1, tail(dep.instance_log(i)))
        # revocation still reaches every instance at once, on the new master
        pair = full_round(dep, 1, "a pair after the failover")
        r = dep.fcgi(0, "POST", "/auth/logout", token=pair["accessToken"])
        assert r.status == 204, "logout on 1 after the failover: %s" % show(r)
        delays = [dead_within(dep, i, pair["accessToken"]) for i in (1, 2)]
        # a pair issued before the kill (replicated in time) still refreshes
        r = dep.http("POST", "/auth/refresh", {"refreshToken": pre["refreshToken"]})
        assert r.status == 200, "refresh of a pair issued before the failover: %s" % show(r)
        print("measured: %s" % json.dumps({"what": "redis failover registrations kept",
                                           "registered_201": n,
                                           "revocation_delay_ms_after": round(max(delays), 1)}),
              flush=True)


test_redis_sentinel_failover_under_load.timeout = 150


def test_redis_readonly_reply_reconnects():
    """A server that turns replica under our pooled connections answers
    READONLY: the service answers 503 at once (never a hang, never a 200)
    and, once a master is back at the address, works again."""
    if not which("redis-server") or not which("redis-cli"):
        raise Skip("redis-server/redis-cli not installed")
    with Deployment("readonly") as dep:
        st = dep.stack
        other = free_port()
        start_redis(dep, "redis-other", other)
        dep.start_instances(n=1)
        full_round(dep, 0, "before")
        assert redis_cmd(st.redis_port, "REPLICAOF", "127.0.0.1", other) is not None
        wait_until(lambda: "master_link_status:up" in
                   (redis_cmd(st.redis_port, "INFO", "replication") or ""), 20, "the demotion")
        email = uniq_email("ro")
        r = dep.fcgi(0, "POST", "/auth/register", {"email": email, "password": PASSWORD})
        assert r.status == 201, show(r)        # PostgreSQL only (rate limits off)
        t0 = time.monotonic()
        r = dep.fcgi(0, "POST", "/auth/login", {"email": email, "password": PASSWORD})
        took = time.monotonic() - t0
        assert r.status == 503, "login on a read-only Redis: %s" % show(r)
        assert took < 2.5, "503 took %.1fs" % took
        assert redis_cmd(st.redis_port, "REPLICAOF", "NO", "ONE") is not None
        r = None
        for _ in range(30):
            r = dep.fcgi(0, "POST", "/auth/login", {"email": email, "password": PASSWORD})
            if r.status == 200:
                break
            time.sleep(0.1)
        assert r.status == 200, "login once the server is a master again: %s" % show(r)
        with open(dep.instance_log(0), "rb") as f:
            assert b"READONLY" in f.read(), "READONLY not logged"


test_redis_readonly_reply_reconnects.timeout = 90


# ----------------------------------------------- PostgreSQL primary + standby

class Standby:
    """A streaming standby of the stack's PostgreSQL (pg_basebackup -R),
    run by pg_ctl as the postgres user and stopped by pg_ctl (or its
    postmaster PID) in stop()."""

    def __init__(self, dep):
        st = dep.stack
        self.dep = dep
        self.port = free_port()
        self.data = os.path.join(st.pg_root, "standby")
        self.sock = st.pg_sock
        self.log = os.path.join(st.pg_root, "standby.log")

    def _pg(self, argv, timeout=120):
        return subprocess.run(self.dep.stack._as_pg(argv), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)

    def start(self):
        st = self.dep.stack
        b = pg_bindir()
        r = self._pg([os.path.join(b, "pg_basebackup"), "-h", "127.0.0.1", "-p", str(st.pg_port),
                      "-U", "postgres", "-D", self.data, "-R", "-X", "stream", "-c", "fast",
                      "--no-sync"])
        if r.returncode != 0:
            raise HarnessError("pg_basebackup failed:\n" + r.stdout + r.stderr)
        opts = "-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off -c max_connections=200" \
            % (self.port, self.sock)
        r = self._pg([os.path.join(b, "pg_ctl"), "start", "-w", "-t", "60", "-D", self.data,
                      "-l", self.log, "-o", opts])
        if r.returncode != 0:
            raise HarnessError("standby start failed:\n%s%s\n%s" % (r.stdout, r.stderr, tail(self.log)))
        link = os.path.join(st.logs, "postgres-standby.log")
        if not os.path.lexists(link):
            os.symlink(self.log, link)

    def pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def in_recovery(self):
        return self.dep.psql("SELECT pg_is_in_recovery()", port=self.port) == ["t"]

    def promote(self):
        r = self._pg([os.path.join(pg_bindir(), "pg_ctl"), "promote", "-w", "-t", "60",
                      "-D", self.data])
        if r.returncode != 0:
            raise HarnessError("pg_ctl promote failed:\n" + r.stdout + r.stderr)

    def stop(self):
        pid = self.pid()
        if not pid:
            return
        r = self._pg([os.path.join(pg_bindir(), "pg_ctl"), "stop", "-w", "-t", "30", "-m", "fast",
                      "-D", self.data], timeout=60)
        if r.returncode != 0:
            try:
                os.kill(pid, signal.SIGQUIT)
            except ProcessLookupError:
                pass


def test_postgres_failover_to_promoted_standby():
    with Deployment("pgfailover") as dep:
        st = dep.stack
        sb = Standby(dep)
        dep.cleanups.append(sb.stop)
        sb.start()
        wait_until(lambda: dep.psql("SELECT count(*) FROM pg_stat_replication "
                                    "WHERE state = 'streaming'") == ["1"],
                   30, "the standby to stream")
        assert sb.in_recovery()
        dep.start_instances({
            "database_url": "host=127.0.0.1,127.0.0.1 port=%d,%d dbname=%s user=postgres "
                            "target_session_attrs=read-write" % (st.pg_port, sb.port, st.dbname),
        })
        dep.start_nginx()
        for i in range(INSTANCES):
            full_round(dep, i, "before the failover")

        load = Load(dep)
        load.start()
        try:
            time.sleep(2.0)
            assert load.ok_since(0), "the load does not get through before the failover"
            t_stop = time.monotonic()
            st.stop_postgres()          # pg_ctl stop -m fast: WAL reaches the standby first
            t_stopped = time.monotonic()
            if PROMOTE_DELAY:
                time.sleep(PROMOTE_DELAY)   # what a failover manager takes to decide
            sb.promote()
            t_promoted = time.monotonic()
            wait_until(lambda: load.ok_since(t_promoted), 30,
                       "every operation to succeed again after the promotion")
            t_back = time.monotonic()
            time.sleep(max(0.0, LOAD_AFTER - (t_back - t_stop)))
        finally:
            load.stop()
        res = load.report(t_stop, "postgresql failover (stop primary, promote standby)")
        late = [e for e in load.since(t_promoted) if e[2] == 503]
        print("measured: %s" % json.dumps({
            "what": "postgresql failover timings",
            "stop_s": round(t_stopped - t_stop, 2),
            "promote_delay_s": PROMOTE_DELAY,
            "promote_s": round(t_promoted - t_stopped - PROMOTE_DELAY, 2),
            "n503_after_promoted": len(late),
            "last_503_after_promoted_s": round(late[-1][0] - t_promoted, 2) if late else None,
            "stop_to_all_ops_ok_s": round(t_back - t_stop, 2)}), flush=True)
        assert not res["other_statuses"], "statuses other than 2xx/401/503: %s" % res["other_statuses"]
        assert res["window_s"] < 20 + PROMOTE_DELAY, "error window %.1fs" % res["window_s"]
        n = check_registrations(dep, load, port=sb.port)
        for i in range(INSTANCES):
            full_round(dep, i, "after the failover")
        r = dep.http("GET", "/auth/health")
        assert r.status == 200, "health after the failover: %s" % show(r)
        print("measured: %s" % json.dumps({"what": "postgresql failover registrations kept",
                                           "registered_201": n}), flush=True)


test_postgres_failover_to_promoted_standby.timeout = 150


# ------------------------------------------ PostgreSQL: retried once, safely

# Holds an EXCLUSIVE lock on auth.users until an fcgi-auth backend waits for
# it, terminates that backend (its INSERT was sent: the failure is
# ambiguous, as when a primary goes away mid-statement), then lets go.
KILL_WAITING_INSERT = """
BEGIN;
LOCK TABLE auth.users IN EXCLUSIVE MODE;
DO $$
DECLARE n int := 0;
BEGIN
  FOR i IN 1..800 LOOP
    PERFORM pg_stat_clear_snapshot();
    SELECT count(pg_terminate_backend(pid)) INTO n FROM pg_stat_activity
     WHERE application_name = 'fcgi-auth' AND wait_event_type = 'Lock';
    EXIT WHEN n > 0;
    PERFORM pg_sleep(0.005);
  END LOOP;
  RAISE NOTICE 'terminated %', n;
END $$;
COMMIT;
"""


def test_postgres_retry_once_never_registers_twice():
    """A registration whose connection dies while its INSERT runs is run
    once more on a new connection and answered 201, with one row; a
    statement refused as read-only (SQLSTATE 25006) is retried once on a new
    connection and then answered 503."""
    with Deployment("pgretry") as dep:
        st = dep.stack
        dep.start_instances({"backend_timeout_ms": "3000"}, n=1)
        full_round(dep, 0, "warm the pool")
        email = uniq_email("retry")
        psql = subprocess.Popen(
            [os.path.join(pg_bindir(), "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(st.pg_port), "-U", "postgres", "-d", st.dbname,
             "-c", KILL_WAITING_INSERT],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_until(lambda: dep.psql("SELECT count(*) FROM pg_locks l JOIN pg_class c "
                                        "ON c.oid = l.relation WHERE c.relname = 'users' "
                                        "AND l.mode = 'ExclusiveLock' AND l.granted") == ["1"],
                       10, "the lock", step=0.02)
            r = dep.fcgi(0, "POST", "/auth/register", {"email": email, "password": PASSWORD},
                         timeout=10)
            out, _ = psql.communicate(timeout=20)
        finally:
            if psql.poll() is None:
                psql.kill()
                psql.wait()
        assert "terminated 1" in out, "the INSERT was not caught waiting: %s" % out
        assert r.status == 201, "register whose connection died mid-INSERT: %s" % show(r)
        rows = dep.psql("SELECT id::text FROM auth.users WHERE email = '%s'" % email)
        assert rows == [r.json["id"]], "stored %r, answered %r" % (rows, r.json["id"])
        rows = dep.psql("SELECT count(*) FROM auth.audit_log WHERE email = '%s' "
                        "AND event = 'register'" % email)
        assert rows == ["1"], "register audit rows: %s" % rows
        with open(dep.instance_log(0), "rb") as f:
            log = f.read().decode(errors="replace")
        assert "fa_user_create: connection lost; once more" in log, tail(dep.instance_log(0))

        # read-only server: refused at once, retried once, then 503
        dep.psql("ALTER SYSTEM SET default_transaction_read_only = on")
        dep.psql("SELECT pg_reload_conf()")
        try:
            time.sleep(0.3)
            mark = os.path.getsize(dep.instance_log(0))
            e2 = uniq_email("ro")
            t0 = time.monotonic()
            r = dep.fcgi(0, "POST", "/auth/register", {"email": e2, "password": PASSWORD})
            took = time.monotonic() - t0
            assert r.status == 503, "register on a read-only server: %s" % show(r)
            assert took < 3.5, "503 took %.1fs" % took
            with open(dep.instance_log(0), "rb") as f:
                f.seek(mark)
                log = f.read().decode(errors="replace")
            assert log.count("read-only server; once more") == 1, log
        finally:
            dep.psql("ALTER SYSTEM RESET default_transaction_read_only")
            dep.psql("SELECT pg_reload_conf()")
        time.sleep(0.3)
        r = dep.fcgi(0, "POST", "/auth/register", {"email": e2, "password": PASSWORD})
        assert r.status == 201, "register once writable again: %s" % show(r)


test_postgres_retry_once_never_registers_twice.timeout = 90
