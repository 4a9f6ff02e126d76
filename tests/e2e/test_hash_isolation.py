"""Password hashing runs on its own bounded pool (cores-sized, below the
FastCGI workers' priority), so a flood of logins at the default Argon2id cost
does not stall the fast routes: verify and refresh keep being answered while
logins hash.  The latencies are printed, not asserted (the benchmark measures
speed); what is asserted is that every fast request is answered correctly
within the client timeout while the hash pool is saturated."""

import threading
import time

from authlib import User, median, refresh, verify

STACK_CONFIG = {"password_opslimit": "2", "password_memlimit": "19922944",
                "max_sessions_per_user": "10000"}

FLOOD_SECONDS = 4
LOGIN_THREADS = 8        # four times the hash pool of a 2-core machine


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else 0.0


def test_verify_and_refresh_answer_while_logins_hash(stack):
    u = User(stack, "hashiso")
    token, rt = u.access, u.refresh_token

    idle = []
    for _ in range(50):
        t0 = time.monotonic()
        r = verify(stack, token)
        idle.append(time.monotonic() - t0)
        assert r.status == 204, r

    stop = threading.Event()
    logins = []
    errors = []

    def flood():
        while not stop.is_set():
            r = stack.post("/auth/login", {"email": u.email, "password": u.password})
            if r.status != 200:
                errors.append(r.status)
            logins.append(1)

    threads = [threading.Thread(target=flood) for _ in range(LOGIN_THREADS)]
    for t in threads:
        t.start()
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
        stop.set()
        for t in threads:
            t.join()
    assert not errors, "logins failed during the flood: %r" % errors[:5]
    print("      verify idle: median %.2f ms p99 %.2f ms; during %d logins in %ds: "
          "median %.2f ms p99 %.2f ms over %d verifies, %d refreshes"
          % (median(idle) * 1e3, pct(idle, 0.99) * 1e3, len(logins), FLOOD_SECONDS,
             median(busy) * 1e3, pct(busy, 0.99) * 1e3, len(busy), refreshes))
