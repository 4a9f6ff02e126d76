"""Attack: Redis failover and the backend deadline (docs/SECURITY.md 10.6).

One test per abuse case.  An attacker who can stall the Redis master (a
noisy neighbour, a SIGSTOP, a long fork) wants a logout that was answered
204 to be undone by the failover's resync, so that a stolen refresh token
refreshes again; or wants workers held two backend timeouts per request
while a backend is frozen.  The deployments reuse test_scaleout's
(3 sentinels, a replica, instances behind nginx); each test prints what it
measured on a line starting "measured:".  FA_FAULTS_TIME_SCALE stretches
the time limits for slow builds, as in test_faults."""

import json
import os
import signal
import threading
import time

from harness import FA_BIN, Proc, Skip, fcgi_request, free_port, tail, which
from test_scaleout import (MASTER, PASSWORD, Deployment, redis_cmd, sentinels_ready, show,
                           start_redis, start_sentinel, uniq_email, wait_until)

TIME_SCALE = float(os.environ.get("FA_FAULTS_TIME_SCALE", "1"))
MAX_503_S = 1.3 * TIME_SCALE    # API.md: a failed backend is 503 in about 1 s
# A hash slow enough that logins are still hashing when Redis freezes; the
# rate limits on, as deployed: a login then makes three Redis calls.
SLOW_HASH = {"password_opslimit": "2", "password_memlimit": "16777216", "hash_threads": "4",
             "ratelimit": "on"}
LOGOUTS = 40                    # one every LOGOUT_SPACING_S from the master's return
LOGOUT_SPACING_S = 0.25
SPARE = 5                       # logged out after the failover settled
STALL_MAX_S = 8.0               # the master is continued once the failover began


def need_redis():
    if not which("redis-server") or not which("redis-cli"):
        raise Skip("redis-server/redis-cli not installed")


def sentinel_setup(dep, overrides=None, master_conf=(), instances=1):
    """The stack's Redis as master, a replica, 3 sentinels that know both,
    `instances` fcgi-auth behind nginx following them.  master_conf: CONFIG
    SET pairs for both servers.  (master port, replica port, sentinel ports)"""
    st = dep.stack
    primary = st.redis_port
    replica = free_port()
    start_redis(dep, "redis-replica", replica, "--replicaof", "127.0.0.1", str(primary))
    for port in (primary, replica):
        for k, v in master_conf:
            assert redis_cmd(port, "CONFIG", "SET", k, v) is not None
    wait_until(lambda: "master_link_status:up" in (redis_cmd(replica, "INFO", "replication") or ""),
               20, "the replica to sync")
    sports = [free_port() for _ in range(3)]
    for n, p in enumerate(sports):
        start_sentinel(dep, n + 1, p, primary)
    wait_until(lambda: sentinels_ready(sports, replica), 30,
               "three sentinels that know the replica and each other", step=0.25)
    conf = {"redis_sentinels": ",".join("127.0.0.1:%d" % p for p in sports),
            "redis_master_name": MASTER}
    conf.update(overrides or {})
    dep.start_instances(conf, n=instances)
    dep.start_nginx()
    return primary, replica, sports


def fresh_instance(dep):
    """One more fcgi-auth on the deployment's config: no cache, no pool."""
    st = dep.stack
    port = free_port()
    conf = st.write_config(dep.overrides, path=os.path.join(st.state, "fresh.conf"))
    p = Proc("app-fresh", [FA_BIN, "--config", conf, "serve", "--listen", "127.0.0.1:%d" % port],
             os.path.join(st.logs, "fcgi-auth-fresh.log"), env=st.app_env()).start()
    st.procs["app-fresh"] = p
    st.wait_app(p, ("127.0.0.1", port))
    return ("127.0.0.1", port)


def pairs_for(dep, n):
    """n users, each logged in once: [(email, pair)]."""
    out = []
    for i in range(n):
        email = uniq_email("dur%d" % i)
        r = dep.http("POST", "/auth/register", {"email": email, "password": PASSWORD})
        assert r.status == 201, "register: %s" % show(r)
        r = dep.http("POST", "/auth/login", {"email": email, "password": PASSWORD})
        assert r.status == 200, "login: %s" % show(r)
        out.append((email, r.json))
    return out


def role(port):
    out = redis_cmd(port, "ROLE") or ""
    return out.split("\n", 1)[0]


def failover_started(sports):
    """Some sentinel has a failover of MASTER in progress."""
    for s in sports:
        lines = (redis_cmd(s, "SENTINEL", "master", MASTER, timeout=1.0) or "").split("\n")
        flags = dict(zip(lines[0::2], lines[1::2])).get("flags", "")
        if "failover_in_progress" in flags:
            return True
    return False


def logout_durability(name, overrides, master_conf=()):
    """Issue 12's reproduction: the master SIGSTOPped until the sentinels
    begin a failover (about 2 s), continued, then LOGOUTS logouts through
    nginx while the replica is promoted and the old master demoted.
    Once the old master has resynced as a replica, every logout answered
    204 must still hold: its refresh token refused (401) and its access
    token refused by a freshly started instance."""
    need_redis()
    with Deployment(name) as dep:
        primary, replica, sports = sentinel_setup(dep, overrides, master_conf)
        pairs = pairs_for(dep, LOGOUTS + SPARE)
        pairs, spare = pairs[:LOGOUTS], pairs[LOGOUTS:]
        time.sleep(0.3)                 # the replica has them all
        mpid = dep.stack.procs["redis"].pid
        t_stop = time.monotonic()
        os.kill(mpid, signal.SIGSTOP)
        try:
            wait_until(lambda: failover_started(sports), STALL_MAX_S,
                       "the sentinels to begin a failover", step=0.05)
        finally:
            os.kill(mpid, signal.SIGCONT)
        t_cont = time.monotonic()
        answers = []                    # (seconds after SIGCONT, status, pair)
        for i, (_, pair) in enumerate(pairs):
            time.sleep(max(0.0, t_cont + i * LOGOUT_SPACING_S - time.monotonic()))
            try:
                r = dep.http("POST", "/auth/logout", token=pair["accessToken"], timeout=5.0)
                st = r.status
            except OSError:
                st = 0
            answers.append((time.monotonic() - t_cont, st, pair))
        # the failover is over: the replica is master, the old one its replica
        wait_until(lambda: role(replica) == "master" and role(primary) == "slave" and
                   "master_link_status:up" in (redis_cmd(primary, "INFO", "replication") or ""),
                   40, "the old master to resync as a replica", step=0.25)
        wait_until(lambda: all(redis_cmd(s, "SENTINEL", "get-master-addr-by-name", MASTER) ==
                               "127.0.0.1\n%d\n" % replica for s in sports),
                   20, "every sentinel to name the new master", step=0.25)
        # with min-replicas-to-write every logout during the failover may
        # be refused: the ones after it settled must be acknowledged again
        # (within the instance's own recovery) and hold like the others
        t_after = time.monotonic() - t_cont
        for _, pair in spare:
            deadline = time.monotonic() + 15
            while True:
                try:
                    st = dep.http("POST", "/auth/logout", token=pair["accessToken"], timeout=5.0).status
                except OSError:
                    st = 0
                if st == 204 or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
            answers.append((t_after, st, pair))
        addr = fresh_instance(dep)
        undone = []
        for t, st, pair in answers:
            if st != 204:
                continue
            r = fcgi_request(addr, "POST", "/auth/refresh",
                             json.dumps({"refreshToken": pair["refreshToken"]}).encode(),
                             {"Content-Type": "application/json"}, timeout=5)
            v = fcgi_request(addr, "GET", "/auth/verify", b"",
                             {"Authorization": "Bearer " + pair["accessToken"]}, timeout=5)
            if r.status != 401 or v.status != 401:
                undone.append((round(t, 2), r.status, v.status))
        ok = [a for a in answers if a[1] == 204]
        bad = [a for a in answers if a[1] == 503]
        other = [(round(a[0], 2), a[1]) for a in answers if a[1] not in (204, 503)]
        with open(dep.instance_log(0), "rb") as f:
            log = f.read().decode(errors="replace")
        print("measured: %s" % json.dumps({
            "what": name, "stalled_s": round(t_cont - t_stop, 2), "logouts": len(answers), "n204": len(ok), "n503": len(bad),
            "undone": len(undone),
            "first_503_after_cont_s": round(bad[0][0], 2) if bad else None,
            "last_503_after_cont_s": round(bad[-1][0], 2) if bad else None,
            "failover_announced": "redis: failover (+" in log}), flush=True)
        assert not other, "answers other than 204/503: %s" % other
        assert not undone, "%d of %d logouts answered 204 were undone by the failover: %s" % (
            len(undone), len(ok), undone[:5])
        assert ok, "no logout was acknowledged at all"
        assert "redis: failover (+" in log, \
            "the instance did not follow the sentinels' announcement:\n%s" % tail(dep.instance_log(0))


def test_stalled_master_logout_never_undone_with_wait():
    """Without min-replicas-to-write on the servers: redis_revoke_replicas=1
    makes each revocation WAIT for the replica; one written on the stalled
    master after the replica took over is answered 503, never 204."""
    logout_durability("durable-wait", {"redis_revoke_replicas": "1"})


test_stalled_master_logout_never_undone_with_wait.timeout = 120


def test_stalled_master_logout_never_undone_with_min_replicas():
    """With min-replicas-to-write 1 (max lag 1 s) on both servers, as
    docs/DEPLOYMENT.md requires: no logout answered 204 is undone."""
    logout_durability("durable-minrep", {},
                      (("min-replicas-to-write", "1"), ("min-replicas-max-lag", "1")))


test_stalled_master_logout_never_undone_with_min_replicas.timeout = 120


def freeze_logins(dep, n, freeze_pids):
    """n logins through nginx at once; half a login's time later (they are
    hashing) the
    processes freeze_pids are SIGSTOPped.  [(seconds after the stop, status)]
    for the logins answered after the stop."""
    users = []
    for i in range(n):
        email = uniq_email("frz%d" % i)
        r = dep.http("POST", "/auth/register", {"email": email, "password": PASSWORD})
        assert r.status == 201, show(r)
        users.append(email)
    # warm: every instance's pool holds live connections; a login's time
    # tells when the next ones are hashing
    took = []
    for e in users:
        t0 = time.monotonic()
        r = dep.http("POST", "/auth/login", {"email": e, "password": PASSWORD})
        took.append(time.monotonic() - t0)
        assert r.status == 200, show(r)
    delay = min(took) / 2
    res = [None] * n
    go = threading.Event()

    def one(i):
        go.wait()
        try:
            r = dep.http("POST", "/auth/login", {"email": users[i], "password": PASSWORD},
                         timeout=8.0)
            st = r.status
        except OSError:
            st = 0
        res[i] = (time.monotonic(), st)
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    go.set()
    time.sleep(delay)
    t_stop = time.monotonic()
    for pid in freeze_pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        for t in threads:
            t.join(10)
    finally:
        for pid in freeze_pids:
            os.kill(pid, signal.SIGCONT)
    print("measured: %s" % json.dumps({"what": "login before the freeze",
                                       "min_s": round(min(took), 3),
                                       "max_s": round(max(took), 3)}), flush=True)
    return [(round(t - t_stop, 3), st) for t, st in res if t > t_stop], max(took)


def check_frozen(after, what, hash_s):
    """Every login answered after the freeze is a 503 within MAX_503_S of
    its hash (hash_s: the longest login before the freeze, an upper bound
    of the hash it may still have had to finish)."""
    assert after, "every login was answered before the freeze: nothing measured"
    worst = max(a[0] for a in after)
    print("measured: %s" % json.dumps({"what": what, "logins_after_freeze": len(after),
                                       "max_503_s": worst,
                                       "statuses": sorted(set(a[1] for a in after))}), flush=True)
    assert all(a[1] == 503 for a in after), "logins in flight at the freeze: %s" % after
    assert worst <= MAX_503_S + hash_s, \
        "a login in flight waited %.2fs for its 503 (> %.1fs + a %.2fs hash): %s" % (
            worst, MAX_503_S, hash_s, after)


def test_frozen_redis_logins_hashing_503_within_one_deadline():
    """Redis SIGSTOPped while logins hash: each gets its 503 about one
    backend timeout later, not one per Redis call (issue 12, defect 13)."""
    need_redis()
    with Deployment("frozen-login", config=SLOW_HASH) as dep:
        dep.start_instances(n=1)
        dep.start_nginx()
        after, hash_s = freeze_logins(dep, 2, [dep.stack.procs["redis"].pid])
        check_frozen(after, "logins hashing when Redis froze", hash_s)


test_frozen_redis_logins_hashing_503_within_one_deadline.timeout = 90


def test_frozen_master_and_sentinels_503_within_one_deadline():
    """The master and every sentinel SIGSTOPped while logins hash: the
    Sentinel lookup of a new connection gets what is left of the request's
    deadline, not a deadline of its own (defect 11)."""
    need_redis()
    with Deployment("frozen-sentinel", config=SLOW_HASH) as dep:
        primary, replica, sports = sentinel_setup(dep)
        st = dep.stack
        pids = [st.procs["redis"].pid] + [st.procs["sentinel%d" % (n + 1)].pid
                                          for n in range(3)]
        after, hash_s = freeze_logins(dep, 2, pids)
        check_frozen(after, "logins hashing when master and sentinels froze", hash_s)


test_frozen_master_and_sentinels_503_within_one_deadline.timeout = 120


def test_replica_at_redis_host_refused():
    """redis_host naming a replica (a stale configuration, a sentinel's
    stale answer): ROLE on the new connection refuses it; no read of stale
    revocations, health says 503 and logins too."""
    need_redis()
    with Deployment("replica-host") as dep:
        replica = free_port()
        start_redis(dep, "redis-replica", replica, "--replicaof", "127.0.0.1",
                    str(dep.stack.redis_port))
        wait_until(lambda: "master_link_status:up" in
                   (redis_cmd(replica, "INFO", "replication") or ""), 20, "the replica to sync")
        dep.start_instances({"redis_port": str(replica)}, n=1)
        r = dep.fcgi(0, "GET", "/auth/health")
        assert r.status == 503, "health on a replica: %s" % show(r)
        email = uniq_email("rep")
        r = dep.fcgi(0, "POST", "/auth/register", {"email": email, "password": PASSWORD})
        assert r.status in (201, 503), show(r)
        r = dep.fcgi(0, "POST", "/auth/login", {"email": email, "password": PASSWORD})
        assert r.status == 503, "login with a replica as Redis: %s" % show(r)
        with open(dep.instance_log(0), "rb") as f:
            assert b"no master (ROLE)" in f.read(), tail(dep.instance_log(0))


test_replica_at_redis_host_refused.timeout = 60


def test_revocation_unreplicated_not_acknowledged():
    """redis_revoke_replicas=1 and no replica answers: logout is 503 within
    the deadline (the client retries), never a 204 a failover could undo;
    logins, which revoke nothing, still work."""
    need_redis()
    with Deployment("no-replica") as dep:
        dep.start_instances({"redis_revoke_replicas": "1"}, n=1)
        email = uniq_email("norep")
        r = dep.fcgi(0, "POST", "/auth/register", {"email": email, "password": PASSWORD})
        assert r.status == 201, show(r)
        r = dep.fcgi(0, "POST", "/auth/login", {"email": email, "password": PASSWORD})
        assert r.status == 200, show(r)
        pair = r.json
        t0 = time.monotonic()
        r = dep.fcgi(0, "POST", "/auth/logout", token=pair["accessToken"])
        took = time.monotonic() - t0
        assert r.status == 503, "logout no replica acknowledged: %s" % show(r)
        assert took <= MAX_503_S, "503 after %.2fs" % took
        # the revocation is in Redis, just not known to be durable: the
        # token is dead here; a new one for logout-all
        r = dep.fcgi(0, "POST", "/auth/login", {"email": email, "password": PASSWORD})
        assert r.status == 200, show(r)
        r = dep.fcgi(0, "POST", "/auth/logout-all", token=r.json["accessToken"])
        assert r.status == 503, "logout-all no replica acknowledged: %s" % show(r)
        with open(dep.instance_log(0), "rb") as f:
            assert b"reached 0 of 1 replicas" in f.read(), tail(dep.instance_log(0))
        print("measured: %s" % json.dumps({"what": "unreplicated logout", "503_s": round(took, 2)}),
              flush=True)


test_revocation_unreplicated_not_acknowledged.timeout = 60
