#!/usr/bin/env python3
"""fcgi-auth load test: mixed traffic at the machine's capacity.

Starts its own stack (harness.Stack: PostgreSQL, Redis, fcgi-auth, nginx as
shipped) and drives it through nginx for FA_LOAD_SECONDS (default 300) with
asyncio clients (FA_LOAD_PROCS processes, default 2), each running

  * "cycle" agents (FA_LOAD_CYCLERS per process, default 4):
        register -> login -> verify -> refresh -> verify -> logout ->
        verify (must be 401) [-> a login with a wrong password, 1 in 4]
  * "session" agents (FA_LOAD_SESSIONS per process, default 12): register
        and log in once, then verify x8 + refresh, and every 40 rounds
        logout + verify (401) + login again.

Every answer is checked: the status of its kind, the identity headers of a
verify are the agent's own user, token pairs are token pairs.  Requests stop
at the deadline and the clients wait for the ones in flight, so the counts
are exact and can be compared with the audit log.

Figures printed at the end and the violations that make it exit 1:
  * requests by kind, statuses, req/s, p50/p99 per kind;
    any 5xx, any unexpected status, any client timeout (5 s) or broken
    connection -> violation;
  * fcgi-auth VmRSS at the end of the warm-up and at the end (medians of
    the samples of a 5 s window), growth %: > 10 % -> violation;
  * Redis DBSIZE over time; at the end every key (redis-cli --scan) must
    have a TTL, none longer than refresh_ttl;
  * auth.audit_log rows per event must equal the successful requests that
    write them (register, login.success, login.failure, refresh, logout,
    and zero of the others); auth.outbox likewise (user.registered,
    user.logged_in, user.logged_out), all published at the end.

Environment: FA_LOAD_SECONDS, FA_LOAD_WARMUP (default 20 % of the run,
10..60 s, at most a third of it), FA_LOAD_PROCS, FA_LOAD_CYCLERS, FA_LOAD_SESSIONS, FA_LOAD_COST
("default": the shipped Argon2id cost, or "test": the e2e suite's cheap
one), plus the harness's FA_BIN, FA_SRCDIR, FA_BUILDDIR, FA_KEEP.
Run: tests/load/run.sh  (make load runs 300 s; CI runs 30 s).
"""

import asyncio
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402

SECONDS = int(os.environ.get("FA_LOAD_SECONDS", "300"))
WARMUP = int(os.environ.get("FA_LOAD_WARMUP",
                            str(min(max(10, min(60, SECONDS // 5)), max(1, SECONDS // 3)))))
PROCS = int(os.environ.get("FA_LOAD_PROCS", "2"))
CYCLERS = int(os.environ.get("FA_LOAD_CYCLERS", "4"))
SESSIONS = int(os.environ.get("FA_LOAD_SESSIONS", "12"))
COST = os.environ.get("FA_LOAD_COST", "default")
CLIENT_TIMEOUT = 5.0
RSS_WINDOW = 5.0               # seconds; the largest sample of the window counts
RSS_MAX_GROWTH = 10.0          # percent
# Short token lifetimes so that the keys a run creates expire within it and
# the Redis key count levels off: refresh_ttl is a fifth of the run.
REFRESH_TTL = max(6, min(120, SECONDS // 5))
ACCESS_TTL = max(3, REFRESH_TTL // 2)
JWT_LEEWAY = 30                 # the default
REVOKE_SLACK = 60               # STORE_REVOKE_SLACK (app/extern.h)
# The longest any key may live: sessions refresh_ttl, revocation markers
# (bl:, srev:, used: of a revoked session) access_ttl + leeway + slack.
KEY_TTL_MAX = max(REFRESH_TTL, ACCESS_TTL + JWT_LEEWAY + REVOKE_SLACK)
PASSWORD = "load-password-1"

EXPECT = {                      # kind -> the one status it must get
    "register": 201, "login": 200, "login_bad": 401, "refresh": 200,
    "verify": 204, "verify_revoked": 401, "logout": 204,
}
KINDS = list(EXPECT)


# ------------------------------------------------------------ HTTP client

class HttpError(Exception):
    pass


class Conn:
    """One kept-alive HTTP/1.1 connection to nginx."""

    def __init__(self, port):
        self.port = port
        self.r = self.w = None

    def close(self):
        if self.w is not None:
            try:
                self.w.close()
            except Exception:
                pass
        self.r = self.w = None

    async def _request(self, method, path, body, token):
        if self.w is None:
            self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)
        head = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1",
                "User-Agent: fa-load"]
        data = b""
        if token:
            head.append("Authorization: Bearer " + token)
        if body is not None:
            data = json.dumps(body).encode()
            head.append("Content-Type: application/json")
            head.append("Content-Length: %d" % len(data))
        self.w.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        await self.w.drain()
        raw = await self.r.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        if "content-length" in hdrs:
            rbody = await self.r.readexactly(int(hdrs["content-length"]))
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            rbody = b""
            while True:
                n = int((await self.r.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.r.readexactly(n + 2)
                if n == 0:
                    break
                rbody += chunk[:-2]
        elif status in (204, 304) or method == "HEAD":
            rbody = b""
        else:
            rbody = await self.r.read()
            self.close()
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, hdrs, rbody

    async def request(self, method, path, body=None, token=None):
        try:
            return await asyncio.wait_for(self._request(method, path, body, token),
                                          CLIENT_TIMEOUT)
        except asyncio.TimeoutError:
            self.close()
            raise HttpError("timeout")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError, IndexError) as e:
            self.close()
            raise HttpError("connection: %s" % type(e).__name__)


# ------------------------------------------------------------------ agents

class Stats:
    def __init__(self):
        self.counts = {}            # (kind, status) -> n ; status may be "timeout"
        self.lat = {k: [] for k in KINDS}
        self.bad = []               # first few unexpected answers, for the report
        self.nbad = 0
        self.wrong_identity = 0

    def add(self, kind, status, elapsed):
        self.counts[(kind, status)] = self.counts.get((kind, status), 0) + 1
        if isinstance(status, int):
            self.lat[kind].append(elapsed)

    def unexpected(self, kind, status, body):
        self.nbad += 1
        if len(self.bad) < 10:
            self.bad.append("%s -> %s %s" % (kind, status, (body or b"")[:200].decode("utf-8", "replace")))


class Agent:
    def __init__(self, port, stats, deadline, tag):
        self.conn = Conn(port)
        self.stats = stats
        self.deadline = deadline
        self.tag = tag
        self.n = 0

    async def call(self, kind, method, path, body=None, token=None):
        t0 = time.monotonic()
        try:
            status, hdrs, rbody = await self.conn.request(method, path, body, token)
        except HttpError as e:
            self.stats.add(kind, str(e).split(":")[0], time.monotonic() - t0)
            self.stats.unexpected(kind, e, b"")
            return None, None, None
        self.stats.add(kind, status, time.monotonic() - t0)
        if status != EXPECT[kind]:
            self.stats.unexpected(kind, status, rbody)
            return None, hdrs, rbody
        return status, hdrs, rbody

    def email(self):
        self.n += 1
        return "load-%s-%d-%s@example.test" % (self.tag, self.n, os.urandom(4).hex())

    async def register(self):
        email = self.email()
        st, _, body = await self.call("register", "POST", "/auth/register",
                                      {"email": email, "password": PASSWORD})
        if st is None:
            return None, None
        return email, json.loads(body)["id"]

    async def login(self, email):
        st, _, body = await self.call("login", "POST", "/auth/login",
                                      {"email": email, "password": PASSWORD})
        if st is None:
            return None
        j = json.loads(body)
        if not j.get("accessToken") or not j.get("refreshToken"):
            self.stats.unexpected("login", "no token pair", body)
            return None
        return j

    async def verify(self, uid, access, kind="verify"):
        st, hdrs, _ = await self.call(kind, "GET", "/auth/verify", token=access)
        if st == 204 and hdrs.get("x-auth-user-id") != uid:
            self.stats.wrong_identity += 1
            self.stats.unexpected(kind, "identity %r, want %r" % (hdrs.get("x-auth-user-id"), uid), b"")
            return False
        return st is not None

    async def refresh(self, pair):
        st, _, body = await self.call("refresh", "POST", "/auth/refresh",
                                      {"refreshToken": pair["refreshToken"]})
        if st is None:
            return None
        j = json.loads(body)
        if not j.get("accessToken") or j.get("refreshToken") == pair["refreshToken"]:
            self.stats.unexpected("refresh", "not rotated", body)
            return None
        return j

    async def logout(self, pair):
        st, _, _ = await self.call("logout", "POST", "/auth/logout", token=pair["accessToken"])
        return st is not None

    def over(self):
        return time.monotonic() >= self.deadline

    async def run_cycle(self):
        i = 0
        while not self.over():
            i += 1
            email, uid = await self.register()
            if email is None or self.over():
                continue
            pair = await self.login(email)
            if pair is None or self.over():
                continue
            if not await self.verify(uid, pair["accessToken"]) or self.over():
                continue
            pair2 = await self.refresh(pair)
            if pair2 is None or self.over():
                continue
            if not await self.verify(uid, pair2["accessToken"]) or self.over():
                continue
            if not await self.logout(pair2) or self.over():
                continue
            await self.verify(uid, pair2["accessToken"], kind="verify_revoked")
            if i % 4 == 0 and not self.over():
                await self.call("login_bad", "POST", "/auth/login",
                                {"email": email, "password": "wrong-" + PASSWORD})

    async def run_session(self):
        uid = pair = email = None
        rounds = 0
        while not self.over():
            if email is None:
                email, uid = await self.register()
                continue
            if pair is None:
                pair = await self.login(email)
                continue
            for _ in range(8):
                if self.over():
                    return
                await self.verify(uid, pair["accessToken"])
            if self.over():
                return
            new = await self.refresh(pair)
            if new is None:
                pair = None         # start a new session
                continue
            pair = new
            rounds += 1
            if rounds % 40 == 0 and not self.over():
                if await self.logout(pair) and not self.over():
                    await self.verify(uid, pair["accessToken"], kind="verify_revoked")
                pair = None


async def client_main(port, deadline, idx):
    stats = Stats()
    agents = []
    tasks = []
    for i in range(CYCLERS):
        a = Agent(port, stats, deadline, "p%dc%d" % (idx, i))
        agents.append(a)
        tasks.append(asyncio.ensure_future(a.run_cycle()))
    for i in range(SESSIONS):
        a = Agent(port, stats, deadline, "p%ds%d" % (idx, i))
        agents.append(a)
        tasks.append(asyncio.ensure_future(a.run_session()))
    await asyncio.gather(*tasks)
    for a in agents:
        a.conn.close()
    return stats


def client_proc(port, deadline_wall, idx, q):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        deadline = time.monotonic() + (deadline_wall - time.time())
        stats = asyncio.new_event_loop().run_until_complete(client_main(port, deadline, idx))
        q.put({"counts": {"%s|%s" % k: v for k, v in stats.counts.items()},
               "lat": {k: sorted(v) for k, v in stats.lat.items()},
               "bad": stats.bad, "nbad": stats.nbad, "wrong_identity": stats.wrong_identity})
    except BaseException as e:
        q.put({"error": "%s: %s" % (type(e).__name__, e)})


# ---------------------------------------------------------------- monitors

def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def resp_cmds(port, cmds, timeout=30):
    """Send RESP commands in one pipeline; returns the replies (int/str/None)."""
    out = b"".join(b"*%d\r\n" % len(c) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a), a) for a in (x if isinstance(x, bytes) else str(x).encode()
                                                for x in c)) for c in cmds)
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    f = s.makefile("rb")
    try:
        s.sendall(out)
        replies = []
        for _ in cmds:
            line = f.readline()
            t, rest = line[:1], line[1:-2]
            if t == b":":
                replies.append(int(rest))
            elif t == b"+":
                replies.append(rest.decode())
            elif t == b"$":
                n = int(rest)
                replies.append(None if n < 0 else f.read(n + 2)[:-2].decode(errors="replace"))
            elif t == b"-":
                replies.append(harness.HarnessError(rest.decode()))
            else:
                raise harness.HarnessError("unexpected RESP reply %r" % line)
        return replies
    finally:
        f.close()
        s.close()


class Monitor(threading.Thread):
    def __init__(self, stack, t0):
        super().__init__(daemon=True)
        self.stack, self.t0 = stack, t0
        self.rss = []               # (t, kib)
        self.dbsize = []            # (t, n)
        self.stop = threading.Event()

    def run(self):
        pid = self.stack.app_pid
        last_db = -10
        while not self.stop.is_set():
            t = time.monotonic() - self.t0
            k = rss_kib(pid)
            if k:
                self.rss.append((t, k))
            if t - last_db >= max(1, SECONDS / 30):
                try:
                    self.dbsize.append((t, resp_cmds(self.stack.redis_port, [["DBSIZE"]], 3)[0]))
                except OSError:
                    pass
                last_db = t
            self.stop.wait(0.25)


def cpu_times():
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


def proc_cpu(pid):
    """utime + stime jiffies of pid (all its threads)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return int(v[11]) + int(v[12])
    except OSError:
        return 0


def window(samples, t0, t1):
    """(max, median) of the samples taken in [t0, t1]."""
    xs = [v for t, v in samples if t0 <= t <= t1]
    return (max(xs), statistics.median(xs)) if xs else (None, None)


def pct(xs, p):
    if not xs:
        return 0.0
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000


# --------------------------------------------------------------- the stack

class LoadStack(harness.Stack):
    """The shipped nginx config; the access log keeps only 5xx answers."""

    def nginx_conf(self):
        d, conf = super().nginx_conf()
        main = open(conf).read()
        main = main.replace("access_log %s/nginx-access.log;" % self.logs,
                            "map $status $fa_5xx { ~^5 1; default 0; }\n"
                            "    access_log %s/nginx-access.log combined if=$fa_5xx;" % self.logs)
        main = main.replace("worker_processes 1;", "worker_processes 2;")
        open(conf, "w").write(main)
        return d, conf


def main():
    harness.install_cleanup()
    # The machine runs at 100 % here by design; a statement can then wait
    # past the 1 s default deadline and get the fast 503 that is right for
    # a failed backend (test_faults checks that).  This test is about leaks,
    # bounds and audit equality at capacity, so its deadline is longer.
    config = {"log_level": "warn", "ratelimit": "off", "backend_timeout_ms": 5000,
              "access_ttl": ACCESS_TTL, "refresh_ttl": REFRESH_TTL, "jwt_leeway": JWT_LEEWAY}
    if COST == "default":       # the shipped Argon2id cost
        config.update({"password_opslimit": 2, "password_memlimit": 19922944})
    st = LoadStack(name="load", lighttpd=False, echo=False, config=config)
    violations = []
    try:
        st.start()
        pid = st.app_pid
        print("load: %d s (warm-up %d s), %d client processes x (%d cycle + %d session agents), "
              "password cost %s, access_ttl %d, refresh_ttl %d, fcgi-auth pid %d"
              % (SECONDS, WARMUP, PROCS, CYCLERS, SESSIONS, COST, ACCESS_TTL, REFRESH_TTL, pid),
              flush=True)
        print("load: idle VmRSS %d KiB, DBSIZE %s" % (rss_kib(pid), st.redis_cli("DBSIZE")), flush=True)
        cpu0, app0 = cpu_times(), proc_cpu(pid)
        t0 = time.monotonic()
        mon = Monitor(st, t0)
        mon.start()
        ctx = multiprocessing.get_context("fork")
        q = ctx.Queue()
        deadline_wall = time.time() + SECONDS
        procs = [ctx.Process(target=client_proc, args=(st.nginx_port, deadline_wall, i, q))
                 for i in range(PROCS)]
        for p in procs:
            p.start()
        results = []
        try:
            for _ in procs:
                results.append(q.get(timeout=SECONDS + 60))
        finally:
            for p in procs:
                p.join(10)
                if p.is_alive():
                    p.kill()
        elapsed = time.monotonic() - t0
        cpu1, app1 = cpu_times(), proc_cpu(pid)
        mon.stop.set()
        mon.join()
        if st.app_pid != pid:
            violations.append("fcgi-auth is not running any more (or was restarted)")
        for r in results:
            if "error" in r:
                violations.append("client process failed: %s" % r["error"])
        results = [r for r in results if "error" not in r]

        # ---- requests
        counts, lat = {}, {k: [] for k in KINDS}
        bad, nbad, wrong_identity = [], 0, 0
        for r in results:
            for key, v in r["counts"].items():
                kind, status = key.split("|")
                counts[(kind, status)] = counts.get((kind, status), 0) + v
            for k, xs in r["lat"].items():
                lat[k].extend(xs)
            bad += r["bad"]
            nbad += r["nbad"]
            wrong_identity += r["wrong_identity"]
        total = sum(counts.values())
        print("\n== requests (%.1f s, %d in all, %.0f req/s)" % (elapsed, total, total / elapsed))
        print("%-15s %9s %9s %8s %8s  %s" % ("kind", "requests", "req/s", "p50 ms", "p99 ms", "statuses"))
        ok = {}
        for k in KINDS:
            by = {s: n for (kk, s), n in counts.items() if kk == k}
            n = sum(by.values())
            xs = sorted(lat[k])
            ok[k] = by.get(str(EXPECT[k]), 0)
            print("%-15s %9d %9.1f %8.1f %8.1f  %s" % (
                k, n, n / elapsed, pct(xs, 0.5), pct(xs, 0.99),
                " ".join("%s:%d" % (s, by[s]) for s in sorted(by))))
        n5xx = sum(n for (k, s), n in counts.items() if s.isdigit() and s.startswith("5"))
        nerr = sum(n for (k, s), n in counts.items() if not s.isdigit())
        print("5xx: %d   timeouts/connection errors: %d   unexpected answers: %d   "
              "verify with another user's identity: %d" % (n5xx, nerr, nbad, wrong_identity))
        for b in bad[:10]:
            print("  unexpected: %s" % b)
        hz = os.sysconf("SC_CLK_TCK")
        ncpu = os.cpu_count()
        print("CPU: machine %.0f %% busy (%d cores), fcgi-auth %.0f %% of one core"
              % (100.0 * (cpu1[0] - cpu0[0]) / max(1, cpu1[1] - cpu0[1]), ncpu,
                 100.0 * (app1 - app0) / hz / elapsed))
        if n5xx:
            violations.append("%d answers 5xx" % n5xx)
        if nerr:
            violations.append("%d requests timed out (%.0f s) or lost their connection" % (nerr, CLIENT_TIMEOUT))
        if nbad:
            violations.append("%d unexpected answers" % nbad)
        if wrong_identity:
            violations.append("%d verify answers carried another user's identity" % wrong_identity)
        try:
            with open(os.path.join(st.logs, "nginx-access.log")) as f:
                n5 = sum(1 for _ in f)
            print("nginx access log (5xx only): %d lines" % n5)
        except OSError:
            pass

        # ---- RSS
        # Argon2id takes 19 MiB per hash thread for each login and gives
        # it back, so single samples swing by ~40 MiB: compare the largest
        # sample of a 5 s window (both hash threads busy, as they are all
        # the time under this load) after the warm-up and at the end.
        warm, warm_med = window(mon.rss, WARMUP, WARMUP + RSS_WINDOW)
        end, end_med = window(mon.rss, elapsed - RSS_WINDOW, elapsed)
        peak = max(k for _, k in mon.rss)
        print("\n== fcgi-auth VmRSS (KiB; max / median of the samples of a %.0f s window)" % RSS_WINDOW)
        print("after warm-up (%d-%d s): %d / %d   end (%.0f-%.0f s): %d / %d   peak: %d   growth: %+.1f %%"
              % (WARMUP, WARMUP + RSS_WINDOW, warm, warm_med, elapsed - RSS_WINDOW, elapsed,
                 end, end_med, peak, 100.0 * (end - warm) / warm))
        step = max(1, len(mon.rss) // 12)
        print("samples: " + " ".join("%.0fs:%d" % (t, k) for t, k in mon.rss[::step]))
        if 100.0 * (end - warm) / warm > RSS_MAX_GROWTH:
            violations.append("RSS grew %.1f %% after warm-up (limit %.0f %%)"
                              % (100.0 * (end - warm) / warm, RSS_MAX_GROWTH))

        # ---- Redis
        print("\n== Redis")
        print("DBSIZE over time: " + " ".join("%.0fs:%d" % (t, n) for t, n in mon.dbsize))
        keys = [k for k in subprocess.run(
            [harness.which("redis-cli") or "redis-cli", "-h", "127.0.0.1", "-p", str(st.redis_port),
             "--scan"], capture_output=True, text=True, timeout=120).stdout.splitlines() if k]
        ttls = []
        for i in range(0, len(keys), 5000):
            ttls += resp_cmds(st.redis_port, [["TTL", k] for k in keys[i:i + 5000]])
        no_ttl = [k for k, t in zip(keys, ttls) if t == -1]
        too_long = [k for k, t in zip(keys, ttls) if isinstance(t, int) and t > KEY_TTL_MAX]
        by_type = {}
        for k in keys:
            part = k.split("}:", 1)[1].split(":")[0] if "}:" in k else k.split(":")[0]
            by_type[part] = by_type.get(part, 0) + 1
        print("keys at the end (redis-cli --scan): %d  %s" % (
            len(keys), " ".join("%s:%d" % kv for kv in sorted(by_type.items()))))
        print("keys without a TTL: %d   keys with a TTL over %d s: %d   max TTL: %s"
              % (len(no_ttl), KEY_TTL_MAX, len(too_long),
                 max([t for t in ttls if isinstance(t, int)] or [None])))
        if no_ttl:
            violations.append("%d Redis keys without a TTL, e.g. %s" % (len(no_ttl), no_ttl[:5]))
        if too_long:
            violations.append("%d Redis keys live longer than %d s, e.g. %s" % (len(too_long), KEY_TTL_MAX, too_long[:5]))
        # Bounded: past KEY_TTL_MAX every key from before has expired, so at
        # a steady request rate the count levels off.  Compare the two
        # halves of what follows (needs a run of > 2 x KEY_TTL_MAX + 20 s).
        split = (KEY_TTL_MAX + elapsed) / 2
        first = [n for t, n in mon.dbsize if KEY_TTL_MAX <= t < split]
        second = [n for t, n in mon.dbsize if t >= split]
        if elapsed >= 2 * KEY_TTL_MAX + 20 and first and second:
            print("DBSIZE max in %.0f-%.0f s / in %.0f-%.0f s: %d / %d" % (
                KEY_TTL_MAX, split, split, elapsed, max(first), max(second)))
            if max(second) > 1.25 * max(first):
                violations.append("Redis key count keeps growing: %d, then %d"
                                  % (max(first), max(second)))
        else:
            print("level-off check needs a run over %d s (2 x the longest key life + 20 s); "
                  "bounded here by the TTLs alone" % (2 * KEY_TTL_MAX + 20))

        # ---- audit log and outbox
        print("\n== audit log (rows vs successful requests)")
        rows = {e: int(n) for e, n in st.psql("SELECT event, count(*) FROM auth.audit_log GROUP BY event")}
        want = {"register": ok["register"], "login.success": ok["login"],
                "login.failure": ok["login_bad"], "refresh": ok["refresh"],
                "logout": ok["logout"], "refresh.reuse_detected": 0, "logout_all": 0,
                "password.change": 0, "session.revoke": 0, "role.change": 0}
        for e in sorted(set(want) | set(rows)):
            flag = "" if rows.get(e, 0) == want.get(e, 0) else "   <-- MISMATCH"
            print("%-24s rows %8d  expected %8d%s" % (e, rows.get(e, 0), want.get(e, 0), flag))
            if flag:
                violations.append("audit %s: %d rows, %d expected" % (e, rows.get(e, 0), want.get(e, 0)))
        print("\n== outbox (events vs successful requests)")
        want_ev = {"user.registered": ok["register"], "user.logged_in": ok["login"],
                   "user.logged_out": ok["logout"]}
        end_t = time.time() + 15
        while True:
            pending = int(st.psql_value("SELECT count(*) FROM auth.outbox WHERE published_at IS NULL"))
            if pending == 0 or time.time() > end_t:
                break
            time.sleep(0.5)
        evs = {e: int(n) for e, n in st.psql("SELECT event, count(*) FROM auth.outbox GROUP BY event")}
        for e in sorted(set(want_ev) | set(evs)):
            flag = "" if evs.get(e, 0) == want_ev.get(e, 0) else "   <-- MISMATCH"
            print("%-24s rows %8d  expected %8d%s" % (e, evs.get(e, 0), want_ev.get(e, 0), flag))
            if flag:
                violations.append("outbox %s: %d rows, %d expected" % (e, evs.get(e, 0), want_ev.get(e, 0)))
        print("unpublished outbox rows after the run: %d" % pending)
        if pending:
            violations.append("%d outbox rows still unpublished 15 s after the run" % pending)

        # ---- the service is still fine
        r = st.get("/auth/health", timeout=5)
        if r.status != 200:
            violations.append("health after the run: %d %r" % (r.status, r.body[:200]))
        with open(os.path.join(st.logs, "fcgi-auth.log"), "rb") as f:
            log = f.read().decode(errors="replace").splitlines()
        warns = [l for l in log if " warn" in l.lower() or "error" in l.lower()]
        print("\nfcgi-auth log: %d lines at warn/error%s" % (len(warns), "" if not warns else ", e.g.:"))
        for l in warns[:5]:
            print("  " + l[:200])
    except Exception:
        import traceback
        traceback.print_exc()
        violations.append("load test crashed")
        try:
            print(st.tail_logs(20))
        except Exception:
            pass
    finally:
        st.stop()
    print()
    if violations:
        for v in violations:
            print("VIOLATION: " + v)
        print("load: FAIL (%d violations)" % len(violations))
        return 1
    print("load: OK")
    return 0


if __name__ == "__main__":
    sys.modules.setdefault("harness", harness)
    sys.exit(main())
