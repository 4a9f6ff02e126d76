"""Attack suite, guessing (docs/SECURITY.md 10.3): password guesses are
reserved before they are checked, in two scopes per account (one client
network: login_fail_per_email; all networks: login_fail_per_account) and one
per network (login_fail_per_ip); an IPv6 client network is a /64.  Also the
other credential routes as an attacker sees them: register, refresh, logout.

Requests "from a network" go straight to the FastCGI port with REMOTE_ADDR
set, as nginx would set it for that client; the rest go through nginx
(REMOTE_ADDR 127.0.0.1)."""

import json
import os

from authlib import (PASSWORD, User, assert_access_alive, assert_error, assert_token_pair,
                     audit_rows, b64u, b64u_dec, login, login_raw, median, parallel, refresh,
                     show, uniq_email)
from harness import fcgi_request

PER_NET = 10        # login_fail_per_email
PER_ACCOUNT = 25    # login_fail_per_account
WINDOW = 60
STACK_CONFIG = {"ratelimit": "on", "ratelimit_window": str(WINDOW),
                "login_fail_per_email": str(PER_NET),
                "login_fail_per_account": str(PER_ACCOUNT),
                "login_fail_per_ip": "1000", "register_per_ip": "1000"}
NEW = "brand new passphrase 42"


def fresh_counters(stack):
    stack.redis_cli("FLUSHALL")


def from_net(stack, ip, method, path, body=None, token=None):
    """A request as nginx would pass it for a client at ip."""
    hdrs = {"Content-Type": "application/json"}
    if token:
        hdrs["Authorization"] = "Bearer " + token
    data = json.dumps(body).encode() if body is not None else b""
    return fcgi_request(stack.app_addr, method, path, data, hdrs, params={"REMOTE_ADDR": ip})


def login_from(stack, ip, email, password):
    return from_net(stack, ip, "POST", "/auth/login", {"email": email, "password": password})


def assert_429(r, what):
    assert_error(r, 429, "too_many_requests", what)
    ra = r.headers.get("retry-after", "")
    assert ra.isdigit() and 1 <= int(ra) <= WINDOW, "%s: Retry-After %r" % (what, ra)


def checked(stack, email):
    """Guesses that reached the real hash: audit rows with reason bad_password."""
    return len(audit_rows(stack, "event = 'login.failure' AND email = %s AND detail->>'reason' = 'bad_password'",
                          (email,)))


def statuses(rs):
    out = {}
    for r in rs:
        k = r.status if hasattr(r, "status") else repr(r)
        out[k] = out.get(k, 0) + 1
    return out


def fail_from(stack, ip, email, n, what):
    for i in range(n):
        r = login_from(stack, ip, email, "wrong-guess-%d" % i)
        assert_error(r, 401, "invalid_credentials", "%s: wrong guess #%d from %s" % (what, i + 1, ip))


# ------------------------------------------------------------------ login

def test_parallel_wrong_guesses_checked_at_most_limit(stack):
    fresh_counters(stack)
    u = User(stack, "att-par", login_now=False)
    rs = parallel(30, lambda i: login_raw(stack, u.email, "wrong-guess-%d" % i))
    st = statuses(rs)
    n = checked(stack, u.email)
    print("30 parallel wrong guesses, login_fail_per_email=%d: %d checked, answers %r" % (PER_NET, n, st))
    assert n <= PER_NET, "%d of 30 parallel guesses were checked against the hash, limit %d" % (n, PER_NET)
    assert st.get(401, 0) == n and st.get(429, 0) == 30 - n, "answers %r, checked %d" % (st, n)
    for r in rs:
        if r.status == 429:
            assert_429(r, "a parallel guess past the limit")


def test_right_password_from_locked_network_429(stack):
    fresh_counters(stack)
    u = User(stack, "att-lock", login_now=False)
    fail_from(stack, "198.51.100.7", u.email, PER_NET, "lock one network")
    assert_429(login_from(stack, "198.51.100.7", u.email, PASSWORD),
               "the right password from the locked network")
    assert checked(stack, u.email) == PER_NET


def test_other_network_still_logs_in(stack):
    fresh_counters(stack)
    u = User(stack, "att-other", login_now=False)
    fail_from(stack, "198.51.100.8", u.email, PER_NET, "lock one network")
    assert_429(login_from(stack, "198.51.100.8", u.email, "another guess"), "the locked network")
    r = login_from(stack, "203.0.113.9", u.email, PASSWORD)
    assert_token_pair(r, "the owner from another network while one network is locked out")
    # and through nginx (127.0.0.1, another network again)
    login(stack, u.email)


def test_account_limit_from_all_networks_429_everywhere(stack):
    fresh_counters(stack)
    u = User(stack, "att-acct", login_now=False)
    per = PER_NET - 2
    nets = ["192.0.2.%d" % i for i in range(1, 1 + PER_ACCOUNT // per)]
    for ip in nets:
        fail_from(stack, ip, u.email, per, "spread guesses")
    fail_from(stack, "192.0.2.200", u.email, PER_ACCOUNT - per * len(nets), "the last allowed guesses")
    assert checked(stack, u.email) == PER_ACCOUNT
    for ip in ("192.0.2.250", "2001:db8:77::1"):
        assert_429(login_from(stack, ip, u.email, PASSWORD),
                   "the right password from a fresh network past login_fail_per_account")
    assert_429(login_raw(stack, u.email, PASSWORD), "through nginx past login_fail_per_account")
    assert checked(stack, u.email) == PER_ACCOUNT


def test_ipv6_addresses_of_one_64_share_the_account_counter(stack):
    fresh_counters(stack)
    u = User(stack, "att-v6", login_now=False)
    addrs = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff:ffff:ffff:fffe"]
    for i in range(PER_NET):
        r = login_from(stack, addrs[i % 3], u.email, "wrong-%d" % i)
        assert_error(r, 401, "invalid_credentials", "guess #%d from %s" % (i + 1, addrs[i % 3]))
    assert_429(login_from(stack, "2001:db8:1:2::99", u.email, PASSWORD),
               "a fourth address of the same /64")
    assert_token_pair(login_from(stack, "2001:db8:1:3::1", u.email, PASSWORD), "the next /64")


def test_ipv6_addresses_of_one_64_share_the_ip_counter(stack):
    stack.start_app(login_fail_per_ip=3)
    fresh_counters(stack)
    us = [User(stack, "att-v6ip-%d" % i, login_now=False) for i in range(4)]
    addrs = ["2001:db8:9:9::1", "2001:db8:9:9::a", "2001:db8:9:9:1:2:3:4"]
    for i, ip in enumerate(addrs):
        assert_error(login_from(stack, ip, us[i].email, "wrong"), 401, "invalid_credentials",
                     "one wrong guess from %s" % ip)
    assert_429(login_from(stack, "2001:db8:9:9::ff", us[3].email, PASSWORD),
               "a fourth account from the same /64 past login_fail_per_ip=3")
    assert_token_pair(login_from(stack, "2001:db8:9:8::1", us[3].email, PASSWORD), "another /64")


def test_ipv4_mapped_address_is_its_ipv4(stack):
    fresh_counters(stack)
    u = User(stack, "att-mapped", login_now=False)
    for i in range(PER_NET):
        ip = "::ffff:198.51.100.33" if i % 2 else "198.51.100.33"
        assert_error(login_from(stack, ip, u.email, "wrong-%d" % i), 401, "invalid_credentials", ip)
    assert_429(login_from(stack, "198.51.100.33", u.email, PASSWORD), "IPv4 after mapped guesses")
    assert_429(login_from(stack, "::ffff:198.51.100.33", u.email, PASSWORD), "mapped after mixed guesses")
    assert_token_pair(login_from(stack, "198.51.100.34", u.email, PASSWORD), "the next address")


def test_unknown_email_limited_like_known(stack):
    fresh_counters(stack)
    known = User(stack, "att-known", login_now=False)
    unknown = uniq_email("att-unknown")
    answers = {}
    for email in (known.email, unknown):
        rs = parallel(PER_NET + 5, lambda i, e=email: login_raw(stack, e, "wrong-%d" % i))
        answers[email] = statuses(rs)
    assert answers[known.email] == answers[unknown] == {401: PER_NET, 429: 5}, \
        "known and unknown email answered differently: %r" % answers
    a, b = login_raw(stack, known.email, "x" * 12), login_raw(stack, unknown, "x" * 12)
    assert_429(a, "known email past the limit")
    assert_429(b, "unknown email past the limit")
    assert a.json == b.json and set(a.headers) == set(b.headers), \
        "429 tells known from unknown: %r %r / %r %r" % (a.headers, a.body, b.headers, b.body)


def test_unknown_email_and_wrong_password_same_timing_with_limits_on(stack):
    # the reservation is taken before the user is looked up: no branch of
    # its own for unknown emails (limits high, so every answer is a 401)
    stack.start_app(login_fail_per_email=10000, login_fail_per_account=10000, login_fail_per_ip=10000)
    fresh_counters(stack)
    u = User(stack, "att-timing", login_now=False)
    unknown = uniq_email("att-timing-unknown")
    for _ in range(3):
        login_raw(stack, u.email, "warm-up-wrong")
    tu, tw = [], []
    for i in range(20):
        a, b = login_raw(stack, unknown, "wrong-%d" % i), login_raw(stack, u.email, "wrong-%d" % i)
        assert a.status == b.status == 401 and a.json == b.json, "%s / %s" % (show(a), show(b))
        tu.append(a.elapsed)
        tw.append(b.elapsed)
    mu, mw = median(tu), median(tw)
    ratio = max(mu, mw) / min(mu, mw)
    print("limits on, N=20: median unknown email %.2f ms, wrong password %.2f ms, ratio %.3f"
          % (mu * 1000, mw * 1000, ratio))
    assert ratio < 1.25, "medians differ by %.0f%% (unknown %.2f ms, wrong %.2f ms)" % (
        (ratio - 1) * 100, mu * 1000, mw * 1000)


def test_spoofed_forwarded_headers_choose_no_network(stack):
    fresh_counters(stack)
    u = User(stack, "att-xff", login_now=False)
    for i in range(PER_NET):
        h = {"X-Forwarded-For": "10.0.%d.1" % i, "X-Real-IP": "10.1.%d.1" % i}
        r = login_raw(stack, u.email, "wrong-%d" % i, headers=h)
        assert_error(r, 401, "invalid_credentials", "guess #%d" % (i + 1))
    r = login_raw(stack, u.email, PASSWORD, headers={"X-Forwarded-For": "10.9.9.9", "X-Real-IP": "10.9.9.9"})
    assert_429(r, "a client-chosen X-Forwarded-For/X-Real-IP after the limit")


def test_right_password_clears_the_network_counter_only(stack):
    fresh_counters(stack)
    u = User(stack, "att-clear", login_now=False)
    fail_from(stack, "198.51.100.50", u.email, PER_NET - 1, "the owner's typos")
    assert_token_pair(login_from(stack, "198.51.100.50", u.email, PASSWORD), "the owner at last")
    # the owner's typos from there are forgiven...
    fail_from(stack, "198.51.100.50", u.email, PER_NET - 1, "more typos after a login")
    # ...but they still count against the account from everywhere
    left = PER_ACCOUNT - 2 * (PER_NET - 1)
    fail_from(stack, "198.51.100.51", u.email, left, "guesses from another network")
    assert_429(login_from(stack, "198.51.100.52", u.email, PASSWORD), "past login_fail_per_account")


def test_oversize_and_odd_emails_are_400_or_counted_never_503(stack):
    fresh_counters(stack)
    # malformed: refused before anything is looked up or counted
    for email in ("a" * 300 + "@example.test", "not an email", "x@" + "b" * 5000 + ".test"):
        r = login_raw(stack, email, "wrong")
        assert_error(r, 400, "validation_failed", "%r" % email[:20])
    # the longest well-formed address is counted like any other
    email = "a" * 64 + "@" + ".".join(["b" * 60] * 3) + ".test"
    for i in range(PER_NET):
        r = login_raw(stack, email, "wrong-%d" % i)
        assert_error(r, 401, "invalid_credentials", "long address guess #%d" % (i + 1))
    assert_429(login_raw(stack, email, "wrong"), "long address past the limit")


def test_redis_down_no_guess_is_checked(stack):
    fresh_counters(stack)
    u = User(stack, "att-down", login_now=False)
    stack.stop_redis()
    try:
        for i in range(3):
            r = login_raw(stack, u.email, "wrong-%d" % i)
            assert_error(r, 503, "unavailable", "a guess while Redis is down")
            assert r.elapsed < 3, "503 took %.1fs" % r.elapsed
    finally:
        stack.start_redis()
    assert checked(stack, u.email) == 0, "guesses were checked while the counters were unreachable"


# -------------------------------------------------------- password change

def change_from(stack, ip, token, current):
    return from_net(stack, ip, "POST", "/auth/password",
                    {"currentPassword": current, "newPassword": NEW}, token=token)


def test_password_change_parallel_guesses_limited(stack):
    fresh_counters(stack)
    u = User(stack, "att-pwpar")
    other = u.login(ua="the owner's other device")
    rs = parallel(30, lambda i: change_from(stack, "198.51.100.60", u.access, "wrong-%d" % i))
    st = statuses(rs)
    print("30 parallel wrong currentPassword, limit %d: answers %r" % (PER_NET, st))
    assert st == {401: PER_NET, 429: 30 - PER_NET}, "answers %r" % st
    r = change_from(stack, "198.51.100.60", u.access, PASSWORD)
    assert_429(r, "the right currentPassword past the limit")
    # nothing changed: the owner's sessions live, the password is the old one
    assert_access_alive(stack, other["accessToken"], "the owner's other session")
    assert_token_pair(refresh(stack, other["refreshToken"]), "the owner's other refresh token")
    assert_token_pair(login_from(stack, "203.0.113.60", u.email, PASSWORD), "the old password elsewhere")


def test_password_change_guesses_count_with_logins(stack):
    fresh_counters(stack)
    u = User(stack, "att-pwmix")
    half = PER_NET // 2
    for i in range(half):
        r = change_from(stack, "198.51.100.70", u.access, "wrong-%d" % i)
        assert_error(r, 401, "invalid_credentials", "wrong currentPassword #%d" % (i + 1))
    fail_from(stack, "198.51.100.70", u.email, PER_NET - half, "logins after password guesses")
    assert_429(login_from(stack, "198.51.100.70", u.email, PASSWORD), "login after mixed guesses")
    assert_429(change_from(stack, "198.51.100.70", u.access, PASSWORD), "password change after mixed guesses")


def test_password_change_right_password_still_works(stack):
    fresh_counters(stack)
    u = User(stack, "att-pwok")
    for i in range(PER_NET - 1):
        assert change_from(stack, "198.51.100.80", u.access, "wrong-%d" % i).status == 401
    r = change_from(stack, "198.51.100.80", u.access, PASSWORD)
    assert r.status == 204, "the right currentPassword under the limit: %s" % show(r)
    login(stack, u.email, NEW)


# --------------------------------------------------------------- register

def test_register_flood_from_one_64_is_limited(stack):
    stack.start_app(register_per_ip=3)
    fresh_counters(stack)
    for i in range(3):
        r = from_net(stack, "2001:db8:5:5::%x" % (i + 1), "POST", "/auth/register",
                     {"email": uniq_email("att-reg"), "password": PASSWORD})
        assert r.status == 201, "registration #%d: %s" % (i + 1, show(r))
    email = uniq_email("att-reg4")
    r = from_net(stack, "2001:db8:5:5:abcd::1", "POST", "/auth/register", {"email": email, "password": PASSWORD})
    assert_429(r, "a fourth registration from the same /64")
    assert stack.psql_value("SELECT count(*) FROM auth.users WHERE email = '%s'" % email) == "0"
    r = from_net(stack, "2001:db8:5:6::1", "POST", "/auth/register", {"email": email, "password": PASSWORD})
    assert r.status == 201, "another /64: %s" % show(r)


def test_register_email_probing_is_bounded(stack):
    stack.start_app(register_per_ip=3)
    fresh_counters(stack)
    taken = [User(stack, "att-probe-%d" % i, login_now=False).email for i in range(3)]
    fresh_counters(stack)
    for e in taken:
        assert_error(from_net(stack, "198.51.100.90", "POST", "/auth/register", {"email": e, "password": PASSWORD}),
                     409, "email_taken", "probe %s" % e)
    r = from_net(stack, "198.51.100.90", "POST", "/auth/register", {"email": taken[0], "password": PASSWORD})
    assert_429(r, "a fourth probe from one network: 429, not 409")


# ----------------------------------------------------- refresh and logout

def forged_refresh(victim_rt):
    """The victim's user and session ids with 32 random bytes of our own."""
    raw = b64u_dec(victim_rt)
    return b64u(raw[:32] + os.urandom(32))


def test_refresh_forged_random_and_oversize_tokens_change_nothing(stack):
    fresh_counters(stack)
    v = User(stack, "att-rt")
    for t in (forged_refresh(v.refresh_token), b64u(os.urandom(64)), v.refresh_token + "A",
              v.refresh_token[:-1], "x" * 5000, v.refresh_token.upper()):
        assert_error(refresh(stack, t), 401, "invalid_token", "refresh with %r..." % t[:20])
    # no reuse alarm, the victim's session unharmed
    assert not audit_rows(stack, "event = 'refresh.reuse_detected' AND user_id = %s", (v.id,))
    assert_token_pair(refresh(stack, v.refresh_token), "the victim's own refresh token")


def test_logout_with_forged_or_foreign_refresh_token_revokes_nothing(stack):
    fresh_counters(stack)
    v, a = User(stack, "att-lo-victim"), User(stack, "att-lo-attacker")
    r = stack.post("/auth/logout", {"refreshToken": forged_refresh(v.refresh_token)})
    assert_error(r, 401, "invalid_token", "logout with the victim's ids and random bytes")
    # the attacker's Bearer with the victim's token in the body: only the
    # attacker's own session ends
    r = stack.post("/auth/logout", {"refreshToken": v.refresh_token}, token=a.access)
    assert r.status == 204, show(r)
    r = stack.post("/auth/logout-all", {"refreshToken": v.refresh_token})
    assert_error(r, 401, "invalid_token", "logout-all with a refresh token and no Bearer")
    assert_access_alive(stack, v.access, "the victim's access token")
    assert_token_pair(refresh(stack, v.refresh_token), "the victim's refresh token")
