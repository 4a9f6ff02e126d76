#!/usr/bin/env python3
"""fcgi-auth benchmark: one run, one nginx, the same wrk connections and
duration for every case.

  1. nginx `return 204`                 (the web server's ceiling)
  2. a minimal libfcgi responder (204)  (the FastCGI transport's ceiling),
     and again with verify's bytes (a diagnostic, "libfcgi+id"): the same
     bearer token in the request, verify's headers in the answer, so what
     nginx and the kernel spend on them is in that baseline too
  3. GET /auth/verify with a valid token
  4. POST /auth/refresh, each token chained forward
  5. POST /auth/login at the default password cost, and one hash alone

Prints req/s, p50, p99 for each, the ratios against the targets, and the
RSS of fcgi-auth idle and under load.  Cases 1-4 run interleaved in
FA_BENCH_ROUNDS rounds (default 3) and report their median round; each
case starts once the machine is quiet (settle).  Run: tests/bench/run.sh
(FA_BENCH_SECONDS, FA_BENCH_CONNECTIONS, FA_BENCH_THREADS to change).
PostgreSQL runs with its defaults (fsync, synchronous_commit), as users run
it.  Exits non-zero only on an invalid run (a non-2xx answer or a socket
error), never on a missed target.
"""
import json
import os
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402

SECONDS = int(os.environ.get("FA_BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("FA_BENCH_ROUNDS", "3"))
CONNS = int(os.environ.get("FA_BENCH_CONNECTIONS", "64"))
THREADS = int(os.environ.get("FA_BENCH_THREADS", "2"))
SETTLE_S = 15                    # the longest wait for a quiet machine
SETTLE_BUSY = 0.05               # quiet: under 5 % of all cores busy
WORKERS = 64                     # fcgi-auth's default, and fcgi-min's
OPSLIMIT, MEMLIMIT = 2, 19922944  # the default password cost
BUILD = os.environ.get("FA_BUILDDIR", os.path.join(HERE, "..", ".."))


class BenchStack(harness.Stack):
    """The shipped nginx config plus the two baselines in the same server."""

    min_port = 0
    idmin_port = 0
    pg_durable = True

    def nginx_conf(self):
        d, conf = super().nginx_conf()
        p = os.path.join(d, "fcgi-auth.conf")
        text = open(p).read()
        for name, port in (("fcgi_min", self.min_port),
                           ("fcgi_min_identity", self.idmin_port)):
            text = text.replace("upstream fcgi_auth {", (
                "upstream %s {\n    server 127.0.0.1:%d;\n"
                "    keepalive 16;\n    keepalive_requests 10000;\n"
                "    keepalive_timeout 60s;\n}\n\nupstream fcgi_auth {")
                % (name, port), 1)
            text = text.replace("    location /auth/ {", (
                "    location = /bench/%s {\n"
                "        fastcgi_pass %s;\n        fastcgi_keep_conn on;\n"
                "        include snippets/fcgi-auth-params.conf;\n    }\n\n"
                "    location /auth/ {") % (name.replace("_", "-"), name), 1)
        text = text.replace("    location /auth/ {", (
            "    location = /bench/nginx204 { return 204; }\n\n"
            "    location /auth/ {"), 1)
        open(p, "w").write(text)
        main = open(conf).read()
        main = main.replace("worker_processes 1;", "worker_processes auto;")
        main = re.sub(r"access_log [^;]*;", "access_log off;", main)
        open(conf, "w").write(main)
        return d, conf


def cc(src, out, libs):
    os.makedirs(os.path.dirname(out), exist_ok=True)
    subprocess.run(["cc", "-O2", "-Wall", "-o", out, src] + libs, check=True)


def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_busy(window):
    """The machine's busy fraction (all cores) over window seconds."""
    def sample():
        f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return sum(f), f[3] + f[4]     # total, idle + iowait
    t0, i0 = sample()
    time.sleep(window)
    t1, i1 = sample()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def settle(limit=SETTLE_S):
    """Wait (at most limit seconds) until the machine is quiet: what the
    previous case left running (PostgreSQL's autovacuum and checkpoint after
    tens of thousands of audit rows, the outbox relay after logins) is not
    charged to the next case.  Seconds waited, or None if never quiet."""
    t0 = time.time()
    while time.time() - t0 < limit:
        if cpu_busy(0.5) < SETTLE_BUSY:
            return time.time() - t0
    return None


def wrk(url, script=None, headers=(), env=None, timeout=5):
    if settle() is None:
        print("bench: the machine did not settle within %ds before %s"
              % (SETTLE_S, url), file=sys.stderr)
    cmd = ["wrk", "-t%d" % THREADS, "-c%d" % CONNS, "-d%ds" % SECONDS,
           "--latency", "--timeout", "%ds" % timeout]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True,
                         env=dict(os.environ, **(env or {}))).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": to_ms(lat.get("50", "0ms")),
            "p99": to_ms(lat.get("99", "0ms")),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errors.group(1) if errors else "", "raw": out}


def to_ms(s):
    v, unit = re.match(r"([\d.]+)(\w+)", s).groups()
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def main():
    harness.install_cleanup()
    if not harness.which("wrk"):
        print("bench: wrk not found (apt-get install wrk)")
        return 1
    fmin = os.path.join(BUILD, "tests", "bench", "fcgi-min")
    htime = os.path.join(BUILD, "tests", "bench", "hash-time")
    cc(os.path.join(HERE, "fcgi-min.c"), fmin, ["-lfcgi", "-pthread"])
    cc(os.path.join(HERE, "hash-time.c"), htime, ["-lsodium"])
    st = BenchStack(name="bench", lighttpd=False, echo=False, config={
        "log_level": "info", "workers": WORKERS,
        "password_opslimit": OPSLIMIT, "password_memlimit": MEMLIMIT,
        "max_sessions_per_user": 10000, "ratelimit": "off"})
    st.min_port = harness.free_port()
    minp = harness.Proc("fcgi-min", [fmin, "127.0.0.1:%d" % st.min_port,
                        str(WORKERS)], os.path.join(st.logs, "fcgi-min.log"))
    st.idmin_port = harness.free_port()
    idminp = harness.Proc("fcgi-min-identity", [
        fmin, "127.0.0.1:%d" % st.idmin_port, str(WORKERS), "identity"],
        os.path.join(st.logs, "fcgi-min-identity.log"))
    try:
        minp.start()
        idminp.start()
        st.start()
        base = st.url("nginx")
        pid = st.app_pid
        time.sleep(1)
        idle = rss_kib(pid)
        email, pw = "bench@example.com", "bench-password-1"
        r = st.post("/auth/register", {"email": email, "password": pw})
        assert r.status == 201, r
        per = 2 * (CONNS // THREADS + 1)
        tokfile = os.path.join(st.state, "refresh-tokens")

        def login_tokens():
            # fresh sessions per round: tokens in flight when wrk stopped
            # were rotated unseen, and reusing one is a reuse (401)
            tokens, acc = [], None
            for _ in range(per * THREADS):
                r = st.post("/auth/login", {"email": email, "password": pw})
                assert r.status == 200, r
                tokens.append(r.json["refreshToken"])
                acc = r.json["accessToken"]
            open(tokfile, "w").write("\n".join(tokens) + "\n")
            return acc
        access = login_tokens()

        peak = [idle]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kib(pid))
                time.sleep(0.2)
        threading.Thread(target=sample, daemon=True).start()

        # The cases compared by ratio run interleaved, ROUNDS times,
        # and each reports its median round: the machine's drift between
        # sequential runs moves them all alike.
        rounds = {"nginx 204": [], "libfcgi 204": [], "libfcgi+id": [],
                  "verify": [], "refresh": []}
        for i in range(ROUNDS):
            if i > 0:
                access = login_tokens()
            rounds["nginx 204"].append(wrk(base + "/bench/nginx204"))
            rounds["libfcgi 204"].append(wrk(base + "/bench/fcgi-min"))
            # verify's bytes both ways: its request (the bearer token) and
            # its answer's headers, with nothing of fcgi-auth's in between
            rounds["libfcgi+id"].append(wrk(
                base + "/bench/fcgi-min-identity",
                headers=["Authorization: Bearer " + access]))
            rounds["verify"].append(wrk(base + "/auth/verify",
                                    headers=["Authorization: Bearer " + access]))
            rounds["refresh"].append(wrk(
                base + "/auth/refresh", script=os.path.join(HERE, "refresh.lua"),
                env={"FA_TOKENS": tokfile, "FA_PER_THREAD": str(per)}))
        res = {k: sorted(v, key=lambda x: x["rps"])[len(v) // 2]
               for k, v in rounds.items()}
        per_round = list(zip(*(
            [x["rps"] for x in rounds[k]]
            for k in ("nginx 204", "libfcgi 204", "libfcgi+id", "verify",
                      "refresh"))))
        res["login"] = wrk(base + "/auth/login",
                           script=os.path.join(HERE, "login.lua"),
                           env={"FA_EMAIL": email, "FA_PASSWORD": pw},
                           # CONNS logins queue behind cores hashes each:
                           # seconds of waiting by design, not a failure
                           timeout=60)
        stop.set()
        hash_ms = float(subprocess.run([htime, str(OPSLIMIT), str(MEMLIMIT), "10"],
                        capture_output=True, text=True).stdout)
    finally:
        st.stop()
        minp.stop()
        idminp.stop()

    cores = os.cpu_count()
    print("fcgi-auth benchmark: wrk -t%d -c%d -d%ds, %d workers, %d cores, "
          "%d interleaved rounds of the first five (medians below)"
          % (THREADS, CONNS, SECONDS, WORKERS, cores, ROUNDS))
    for i, (n, t, ti, v, f) in enumerate(per_round):
        print("  round %d: nginx %.0f, libfcgi %.0f, libfcgi+id %.0f, verify %.0f, "
              "refresh %.0f req/s: verify/transport %.3f (/+id %.3f), "
              "refresh/transport %.3f"
              % (i + 1, n, t, ti, v, f, v / t, v / ti, f / t))
    print("%-12s %10s %9s %9s %8s" % ("case", "req/s", "p50 ms", "p99 ms", "non-2xx"))
    for k, v in res.items():
        print("%-12s %10.0f %9.2f %9.2f %8d %s" % (k, v["rps"], v["p50"], v["p99"],
              v["non2xx"], v["errors"]))
    t, n = res["libfcgi 204"]["rps"], res["nginx 204"]["rps"]
    login_ceiling = cores / (hash_ms / 1000.0)
    ratios = [
        ("verify / transport", res["verify"]["rps"] / t, 0.9),
        ("verify / transport+id", res["verify"]["rps"] / res["libfcgi+id"]["rps"],
         None),
        ("verify / nginx", res["verify"]["rps"] / n, None),
        ("refresh / transport", res["refresh"]["rps"] / t, 0.3),
        ("login / (cores / hash)", res["login"]["rps"] / login_ceiling, 0.8),
    ]
    print("single hash: %.1f ms (opslimit %d, memlimit %d) -> ceiling %.1f logins/s"
          % (hash_ms, OPSLIMIT, MEMLIMIT, login_ceiling))
    for name, v, target in ratios:
        print("%-24s %6.3f%s" % (name, v, "   (target >= %.1f: %s)" % (
            target, "met" if v >= target else "NOT met") if target else ""))
    print("verify p99 %.2f ms (target < 5 ms at %d connections; libfcgi "
          "204's own p99 %.2f ms)" % (res["verify"]["p99"], CONNS,
                                     res["libfcgi 204"]["p99"]))
    print("refresh p99 %.2f ms (target < 50 ms)" % res["refresh"]["p99"])
    print("RSS idle %.1f MiB, peak under load %.1f MiB (target < 16 / < %.0f MiB)"
          % (idle / 1024.0, peak[0] / 1024.0,
             64 + WORKERS * 0 + cores * MEMLIMIT / 1048576.0))
    out = {k: {kk: vv for kk, vv in v.items() if kk != "raw"} for k, v in res.items()}
    out.update({"hash_ms": hash_ms, "rss_idle_kib": idle, "rss_peak_kib": peak[0],
                "ratios": {n: v for n, v, _ in ratios}})
    with open(os.path.join(BUILD, "bench-results.json"), "w") as f:
        json.dump(out, f, indent=1)
    # a missed target is a finding, not a failure; an invalid run is
    bad = ["%s round %d: %d non-2xx%s" % (k, i + 1, x["non2xx"],
           ", socket errors " + x["errors"] if x["errors"] else "")
           for k, v in list(rounds.items()) + [("login", [res["login"]])]
           for i, x in enumerate(v) if x["non2xx"] or x["errors"]]
    for b in bad:
        print("bench: invalid run: " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
