"""Reload without restart (SIGHUP, as systemctl reload sends): the
configuration and keys are applied live, a broken file or key leaves the
running configuration, restart-only keys are kept and logged, and a
jwt_secret or RS256/ES256 key rotation logs nobody out.  Security 10.13."""

import os
import signal
import threading
import time

from authlib import (User, assert_access_alive, assert_access_dead, jwt_parts, keygen,
                     login, refresh, show, verify, wait_for)

STACK_CONFIG = {}

RELOADED = b"configuration and keys reloaded"


def app_log(stack):
    return os.path.join(stack.logs, "fcgi-auth.log")


def log_since(stack, mark):
    with open(app_log(stack), "rb") as f:
        f.seek(mark)
        return f.read()


def hup(stack, overrides, want=RELOADED, timeout=5.0):
    """Write the config with overrides, SIGHUP, wait for want in the log;
    returns the log text written since."""
    log = app_log(stack)
    mark = os.path.getsize(log)
    stack.write_config(dict(stack.cur_overrides, **overrides))
    os.kill(stack.app_pid, signal.SIGHUP)
    if want is None:            # e.g. log_level warn: the info line is not written
        time.sleep(0.2)
        return b""
    assert wait_for(lambda: want in log_since(stack, mark), timeout=timeout), \
        "no %r after SIGHUP:\n%s" % (want, log_since(stack, mark)[-1500:].decode(errors="replace"))
    time.sleep(0.05)            # the lines the reload writes after want
    return log_since(stack, mark)


def secret_file(stack, name, data):
    path = os.path.join(stack.state, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def restore(stack):
    stack.write_config(stack.cur_overrides)
    os.kill(stack.app_pid, signal.SIGHUP)
    time.sleep(0.3)


def test_reload_under_load_fails_no_verify(stack):
    """Verify through nginx from four threads while twelve SIGHUPs switch
    log_level and rotate jwt_secret back and forth (the other one always
    jwt_secret_previous): every answer is 2xx."""
    u = User(stack, "load")
    old = secret_file(stack, "load-a", open(stack.secret_file, "rb").read())
    new = secret_file(stack, "load-b", os.urandom(32).hex().encode())
    stop = threading.Event()
    bad, count = [], [0]
    lock = threading.Lock()

    def client():
        while not stop.is_set():
            try:
                r = verify(stack, u.access)
                ok = 200 <= r.status < 300
            except Exception as e:      # noqa: BLE001 -- counted as a failure
                ok, r = False, e
            with lock:
                count[0] += 1
                if not ok:
                    bad.append(str(r)[:200])

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(12):
            time.sleep(0.15)
            cur, prev = (new, old) if i % 2 == 0 else (old, new)
            level = "warn" if i % 3 == 0 else "info"
            hup(stack, {"log_level": level, "jwt_secret_file": cur,
                        "jwt_secret_previous_file": prev},
                want=RELOADED if level == "info" else None)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    print("      %d verify requests during 12 reloads, %d non-2xx" % (count[0], len(bad)))
    assert count[0] > 0
    assert not bad, "failed during reloads: %r" % bad[:5]
    restore(stack)
    assert_access_alive(stack, u.access)


def test_broken_config_keeps_running_configuration(stack):
    """A file that does not parse, and a key file that cannot be read: the
    service keeps serving with the old configuration (refresh_ttl, log
    level, keys), logs why, and check-config says the same."""
    u = User(stack, "broken")
    log = app_log(stack)
    mark = os.path.getsize(log)
    stack.write_config(dict(stack.cur_overrides, refresh_ttl="7777"))
    with open(stack.config_file, "a") as f:
        f.write("log_level = warn\nthis is not a key value line\n")
    os.kill(stack.app_pid, signal.SIGHUP)
    assert wait_for(lambda: b"running configuration kept" in log_since(stack, mark))
    text = log_since(stack, mark)
    assert b"line" in text, text[-500:]
    r = stack.run_cli("check-config", config=stack.config_file)
    assert r.returncode == 1 and "line" in r.stderr, (r.returncode, r.stderr)
    assert login(stack, u.email)["refreshExpiresIn"] == 604800, \
        "a half-applied reload: refresh_ttl changed"
    assert_access_alive(stack, u.access)

    # a key file that cannot be read: nothing applied either
    mark = os.path.getsize(log)
    missing = os.path.join(stack.state, "no-such-secret")
    hup(stack, {"refresh_ttl": "7777", "jwt_secret_previous_file": missing},
        want=b"running configuration kept")
    text = log_since(stack, mark)
    assert b"jwt_secret_previous_file: cannot read" in text, text[-500:]
    r = stack.run_cli("check-config", config=stack.config_file)
    assert r.returncode == 1 and "jwt_secret_previous_file: cannot read" in r.stderr, r.stderr
    assert login(stack, u.email)["refreshExpiresIn"] == 604800
    assert_access_alive(stack, u.access)
    assert stack.get("/auth/health", via="lighttpd").status == 200

    # a good file again: applied
    hup(stack, {"refresh_ttl": "7777"})
    assert login(stack, u.email)["refreshExpiresIn"] == 7777, "live key refresh_ttl not applied"
    restore(stack)


def test_restart_only_keys_logged_and_kept(stack):
    """workers, db_pool, redis_port and access_ttl (the revocation markers
    in Redis are sized by it) changed in the file: each logged as needing a
    restart, the running values kept (Redis still answers), while the live
    keys of the same file apply."""
    text = hup(stack, {"workers": "3", "db_pool": "2", "redis_port": "1",
                       "access_ttl": "60", "refresh_ttl": "1234"})
    for key in (b"workers", b"db_pool", b"redis_port", b"access_ttl"):
        assert b"SIGHUP: " + key + b" changed: restart needed" in text, text[-1500:]
    assert b"refresh_ttl changed" not in text
    u = User(stack, "restart-only")
    assert u.pair["refreshExpiresIn"] == 1234, u.pair
    assert u.pair["expiresIn"] == 900, "restart-only access_ttl applied live"
    r = refresh(stack, u.refresh_token)
    assert r.status == 200, show(r)     # Redis on the running port
    restore(stack)


def test_secret_rotation_walkthrough(stack):
    """jwt_secret -> new with jwt_secret_previous = old, reload: old access
    and refresh tokens keep working (the refresh rotates to a child under
    the new secret), new tokens use the new secret; jwt_secret_previous
    removed, reload: the old ones are refused, the new ones still work."""
    a = User(stack, "rot-a")           # refreshes during the overlap
    b = User(stack, "rot-b")           # kept unused until the end
    assert_access_alive(stack, b.access)        # now in the verify cache
    old = secret_file(stack, "rot-old", open(stack.secret_file, "rb").read())
    new_secret = os.urandom(32).hex().encode()
    new = secret_file(stack, "rot-new", new_secret)

    text = hup(stack, {"jwt_secret_file": new, "jwt_secret_previous_file": old})
    assert b"jwt_secret_previous is set" in text, "no reminder to remove the previous secret"
    assert_access_alive(stack, a.access, "access token of the old secret, previous set")
    assert stack.get("/auth/me", token=a.access).status == 200
    r = refresh(stack, a.refresh_token)
    assert r.status == 200, "refresh token of the old secret: %s" % show(r)
    child = r.json
    fresh = login(stack, a.email)
    for tok in (child["accessToken"], fresh["accessToken"]):
        assert_access_alive(stack, tok, "a token issued after the rotation")
        _check_hs256(tok, new_secret)
    r = refresh(stack, child["refreshToken"])
    assert r.status == 200, "the child refresh token: %s" % show(r)
    child = r.json

    text = hup(stack, {"jwt_secret_file": new, "jwt_secret_previous_file": None})
    assert b"jwt_secret_previous is set" not in text
    assert_access_dead(stack, b.access, "old access token after jwt_secret_previous removed")
    assert_access_dead(stack, a.access, "old access token after jwt_secret_previous removed")
    r = refresh(stack, b.refresh_token)
    assert r.status == 401, "old refresh token after jwt_secret_previous removed: %s" % show(r)
    assert_access_alive(stack, child["accessToken"], "new access token")
    assert refresh(stack, child["refreshToken"]).status == 200, "new refresh token"
    # back to the stack's own secret for the other tests
    restore(stack)


def test_secret_rotation_keeps_the_second_factor(stack):
    """Data at rest (sealed TOTP secrets, recovery-code hashes) is keyed by
    the secret the process started with (data_secret, else jwt_secret), not
    by the running jwt_secret: a rotation by reload leaves MFA working, and
    so does the restart after it with data_secret = the old jwt_secret."""
    from mfalib import MfaUser, assert_token_pair
    u = MfaUser(stack, "rot-mfa")
    old_secret = open(stack.secret_file, "rb").read()
    old = secret_file(stack, "rotm-old", old_secret)
    new = secret_file(stack, "rotm-new", os.urandom(32).hex().encode())
    hup(stack, {"jwt_secret_file": new, "jwt_secret_previous_file": old})
    u.login2()                  # the TOTP secret still opens
    try:
        # the restart after the rotation: previous gone, data_secret the old
        stack.start_app({"jwt_secret_file": new, "data_secret_file": old})
        u.login2()
        tok = u.challenge()
        r = u.verify_raw(tok, recovery=u.recovery[0])
        assert_token_pair(r, "a recovery code after the rotation")
    finally:
        stack.start_app({})


def _check_hs256(tok, secret):
    import hashlib
    import hmac
    from authlib import b64u
    h, p, s = tok.split(".")
    want = b64u(hmac.new(secret, ("%s.%s" % (h, p)).encode(), hashlib.sha256).digest())
    assert s == want, "not signed with the new jwt_secret"


def test_rs256_key_rotation_walkthrough(stack):
    """RS256 and ES256 through reloads, as docs/DEPLOYMENT.md says: add the
    new public key (both in the JWKS), switch the signer (old tokens still
    verify), drop the old key after access_ttl (old tokens refused)."""
    d = os.path.join(stack.state, "rotkeys")
    for alg in ("rs256", "es256"):
        k1, p1 = keygen(stack, alg, alg + "-k1", d)
        k2, p2 = keygen(stack, alg, alg + "-k2", d)
        stack.start_app(jwt_alg=alg.upper(), jwt_private_key_file=k1, jwt_kid=alg + "-k1")
        u = User(stack, "kid-" + alg)
        t1 = u.access
        assert jwt_parts(t1)[0]["kid"] == alg + "-k1"
        assert_access_alive(stack, t1)

        hup(stack, {"jwt_public_keys": "%s-k2=%s" % (alg, p2)})
        kids = sorted(k["kid"] for k in stack.get("/auth/.well-known/jwks.json").json["keys"])
        assert kids == [alg + "-k1", alg + "-k2"], kids
        assert jwt_parts(login(stack, u.email)["accessToken"])[0]["kid"] == alg + "-k1"

        hup(stack, {"jwt_private_key_file": k2, "jwt_kid": alg + "-k2",
                    "jwt_public_keys": "%s-k1=%s" % (alg, p1)})
        t2 = login(stack, u.email)["accessToken"]
        assert jwt_parts(t2)[0]["kid"] == alg + "-k2", jwt_parts(t2)[0]
        assert_access_alive(stack, t1, "k1 token after the signer switched")
        assert_access_alive(stack, t2, "k2 token")
        kids = sorted(k["kid"] for k in stack.get("/auth/.well-known/jwks.json").json["keys"])
        assert kids == [alg + "-k1", alg + "-k2"], kids

        hup(stack, {"jwt_private_key_file": k2, "jwt_kid": alg + "-k2", "jwt_public_keys": ""})
        assert_access_dead(stack, t1, "k1 token after k1 was dropped")
        assert_access_alive(stack, t2, "k2 token after k1 was dropped")
        kids = [k["kid"] for k in stack.get("/auth/.well-known/jwks.json").json["keys"]]
        assert kids == [alg + "-k2"], kids
        # an unreadable new key: the running keys stay
        hup(stack, {"jwt_private_key_file": os.path.join(d, "missing.pem"),
                    "jwt_kid": alg + "-k3"}, want=b"running configuration kept")
        assert_access_alive(stack, t2, "k2 token after a failed key reload")
    stack.start_app()


def test_conf5_marks_exactly_the_live_keys():
    """fcgi-auth.conf(5) says "Live." for exactly the keys config.c's table
    marks live (LIVE_*), the one place that decides it."""
    import re
    from harness import SRCDIR
    text = open(os.path.join(SRCDIR, "app", "config.c")).read()
    table = text[text.index("ckeys[] = {"):]
    table = table[:table.index("};")]
    live = set(re.findall(r"^\s*LIVE_[SXLB]\((\w+)", table, re.M))
    assert {"jwt_secret", "jwt_secret_previous", "log_level", "refresh_ttl"} <= live, live
    page = open(os.path.join(SRCDIR, "man", "fcgi-auth.conf.5")).read()
    marked = set()
    for entry in page.split("\n.It Ic ")[1:]:
        key = entry.split()[0]
        if "\nLive.\n" in entry.split("\n.It ")[0] + "\n":
            marked.add(key)
    assert marked == live, "conf.5 Live. %s, config.c LIVE_ %s" % (
        sorted(marked - live), sorted(live - marked))
