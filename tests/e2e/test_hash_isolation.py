"""Password hashing runs on its own bounded pool (cores-sized, below the
FastCGI workers' priority), so a flood of logins at the default Argon2id cost
does not stall the fast routes: verify and refresh keep being answered while
logins hash.  Asserted: every fast request is answered correctly while the
hash pool is saturated (logins queue: each takes longer than one hash), and
a verify does not wait in that queue: its median during the flood stays
well below a login's.  The absolute latencies are printed (the benchmark
measures speed)."""

import time

from authlib import Background, User, median, percentile, refresh, verify

STACK_CONFIG = {"password_opslimit": "2", "password_memlimit": "19922944",
                "max_sessions_per_user": "10000"}

FLOOD_SECONDS = 4
LOGIN_THREADS = 8        # four times the hash pool of a 2-core machine
VERIFY_VS_LOGIN = 0.5    # a verify's median during the flood, at most, of a login's


def test_verify_and_refresh_answer_while_logins_hash(stack):
    u = User(stack, "hashiso")
    token, rt = u.access, u.refresh_token

    idle = []
    for _ in range(50):
        t0 = time.monotonic()
        r = verify(stack, token)
        idle.append(time.monotonic() - t0)
        assert r.status == 204, r

    def login_once(_):
        t0 = time.monotonic()
        r = stack.post("/auth/login", {"email": u.email, "password": u.password})
        flood.add(t0, (r.status, time.monotonic() - t0))

    flood = Background(LOGIN_THREADS, login_once)
    flood.start()
    busy, refreshes = [], 0
    try:
        time.sleep(0.5)                 # let the pool fill up
        deadline = time.monotonic() + FLOOD_SECONDS
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            r = verify(stack, token)
            busy.append(time.monotonic() - t0)
            assert r.status == 204, "verify during the login flood: %r" % r
            r = refresh(stack, rt)
            assert r.status == 200, "refresh during the login flood: %r" % r
            rt = r.json["refreshToken"]
            refreshes += 1
    finally:
        flood.stop()
    errors = [st for st, _ in flood.records if st != 200]
    logins = [took for _, took in flood.records]
    assert not errors, "logins failed during the flood: %r" % errors[:5]
    print("      verify idle: median %.2f ms p99 %.2f ms; during %d logins in %ds "
          "(median %.2f ms each): median %.2f ms p99 %.2f ms over %d verifies, %d refreshes"
          % (median(idle) * 1e3, percentile(idle, 0.99) * 1e3, len(logins), FLOOD_SECONDS,
             median(logins) * 1e3, median(busy) * 1e3, percentile(busy, 0.99) * 1e3,
             len(busy), refreshes))
    assert len(logins) >= LOGIN_THREADS and refreshes > 0, \
        "no flood to measure: %d logins, %d refreshes" % (len(logins), refreshes)
    assert median(busy) <= VERIFY_VS_LOGIN * median(logins), \
        "verify waits behind the hashes: median %.2f ms during the flood, a login %.2f ms" \
        % (median(busy) * 1e3, median(logins) * 1e3)
