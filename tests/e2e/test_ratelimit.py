"""Rate limits (ratelimit = on) through nginx: failed logins per email and
registrations per IP answer 429 too_many_requests with Retry-After."""

from authlib import (PASSWORD, User, assert_error, audit_rows, login_raw, show, uniq_email)

STACK_CONFIG = {"ratelimit": "on", "ratelimit_window": "60", "login_fail_per_email": "3",
                "login_fail_per_ip": "1000", "register_per_ip": "1000"}


def fresh_counters(stack):
    # a module of its own: counters of earlier tests must not count
    stack.redis_cli("FLUSHALL")


def assert_429(r, what, window=60):
    assert_error(r, 429, "too_many_requests", what)
    ra = r.headers.get("retry-after", "")
    assert ra.isdigit() and 1 <= int(ra) <= window, "%s: Retry-After %r, want 1..%d seconds" % (what, ra, window)


def test_login_fail_per_email_429_on_the_4th(stack):
    fresh_counters(stack)
    u = User(stack, "rl", login_now=False)
    for i in range(3):
        r = login_raw(stack, u.email, "wrong-password-%d" % i)
        assert_error(r, 401, "invalid_credentials", "wrong password #%d" % (i + 1))
    r = login_raw(stack, u.email, "wrong-password-4")
    assert_429(r, "4th wrong password with login_fail_per_email=3")
    # the right password does not get through while limited (else the limit
    # would tell an attacker which guess was right)
    r = login_raw(stack, u.email, PASSWORD)
    assert_429(r, "right password while the email is limited")
    # another email from the same address is not limited
    v = User(stack, "rl-other", login_now=False)
    r = login_raw(stack, v.email, PASSWORD)
    assert r.status == 200, "another email while the first is limited: %s" % show(r)
    rows = audit_rows(stack, "event = 'login.failure' AND email = %s", (u.email,))
    reasons = [row["detail"].get("reason") for row in rows]
    assert reasons[:3] == ["bad_password"] * 3 and "rate_limited" in reasons[3:], \
        "login.failure reasons %r" % reasons


def test_login_fail_per_email_is_case_insensitive(stack):
    fresh_counters(stack)
    u = User(stack, "rlcase", login_now=False)
    for i, e in enumerate((u.email, u.email.upper(), " " + u.email)):
        r = login_raw(stack, e, "wrong-%d" % i)
        assert r.status == 401, show(r)
    assert_429(login_raw(stack, u.email.capitalize(), "wrong"), "4th failure in another spelling")


def test_register_per_ip_429_on_the_3rd(stack):
    stack.start_app(ratelimit="on", ratelimit_window=60, register_per_ip=2)
    fresh_counters(stack)
    for i in range(2):
        r = stack.post("/auth/register", {"email": uniq_email("reg"), "password": PASSWORD})
        assert r.status == 201, "register #%d: %s" % (i + 1, show(r))
    email = uniq_email("reg3")
    r = stack.post("/auth/register", {"email": email, "password": PASSWORD})
    assert_429(r, "3rd register from one IP with register_per_ip=2")
    n = stack.psql_value("SELECT count(*) FROM auth.users WHERE email = '%s'" % email)
    assert n == "0", "the limited registration created a user"


def test_ratelimit_off_no_429(stack):
    stack.start_app(ratelimit="off", login_fail_per_email=3)
    fresh_counters(stack)
    u = User(stack, "rloff", login_now=False)
    for i in range(6):
        r = login_raw(stack, u.email, "wrong-%d" % i)
        assert r.status == 401, "ratelimit=off, wrong password #%d: %s" % (i + 1, show(r))
    assert login_raw(stack, u.email, PASSWORD).status == 200
