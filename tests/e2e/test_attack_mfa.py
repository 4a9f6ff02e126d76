"""Attack suite, second factor (docs/SECURITY.md 10.10): the abuse cases of
the MFA routes and of the aal requirement at the gateway, one test each.
The attacker here knows the victim's password (that is what MFA is for)."""

from authlib import (PASSWORD, User, assert_bearer_401, assert_error, assert_token_pair,
                     assert_validation, audit_rows, jwt_hs, jwt_parts, login_raw, parallel,
                     refresh, show, stack_secret)
from mfalib import MfaUser, claims, reset_last_step, steady

PER_NET = 8         # login_fail_per_email: guesses per account and network
STACK_CONFIG = {"ratelimit": "on", "ratelimit_window": "60",
                "login_fail_per_email": str(PER_NET), "login_fail_per_account": "100",
                "login_fail_per_ip": "100000", "register_per_ip": "100000"}


def wrong_of(code, k=1):
    return "%06d" % ((int(code) + k) % 1000000)


def test_attack_parallel_code_guesses_past_account_limit_429_unchecked(stack):
    u = MfaUser(stack, "att-mfa-par")
    steady(8)
    good = u.code()
    toks = [u.challenge() for _ in range(8)]    # 5 wrong codes void each
    rs = parallel(32, lambda i: u.verify_raw(toks[i % 8], wrong_of(good, i + 1)))
    st = [getattr(r, "status", r) for r in rs]
    checked = len(audit_rows(stack, "event = 'mfa.failure' AND user_id = %s", (u.id,)))
    print("32 parallel wrong codes, login_fail_per_email=%d: %d checked, answers %r"
          % (PER_NET, checked, {s: st.count(s) for s in set(st)}))
    assert checked <= PER_NET, "%d wrong codes checked past the limit %d" % (checked, PER_NET)
    assert st.count(429) >= 32 - PER_NET - 8, "want 429 past the limit: %r" % st
    assert 200 not in st
    # the limit holds for the right code too (from this network), and for
    # the password step
    r = u.verify_raw(toks[-1], good)
    assert r.status in (401, 429), "right code past the limit: %s" % show(r)
    assert_error(login_raw(stack, u.email, PASSWORD), 429, "too_many_requests",
                 "login past the limit that wrong codes filled")


def test_attack_mfa_token_of_a_with_code_of_b(stack):
    a, b = MfaUser(stack, "att-mfa-a"), MfaUser(stack, "att-mfa-b")
    steady()
    tok = a.challenge()
    assert_error(a.verify_raw(tok, b.code()), 401, "invalid_code", "A's mfaToken with B's code")
    assert_error(a.verify_raw(tok, recovery=b.recovery[0]), 401, "invalid_code",
                 "A's mfaToken with B's recovery code")
    pair = assert_token_pair(a.verify_raw(tok, a.code()), "A's mfaToken with A's code")
    assert claims(pair["accessToken"])["sub"] == a.id
    # B's recovery code was not used up by the attempt
    assert_token_pair(b.verify_raw(b.challenge(), recovery=b.recovery[0]), "B's own recovery code")


def test_attack_mfa_token_reused_after_success(stack):
    u = MfaUser(stack, "att-mfa-reuse")
    steady()
    tok = u.challenge()
    assert_token_pair(u.verify_raw(tok, u.code()), "first use")
    reset_last_step(stack, u.id)
    assert_error(u.verify_raw(tok, u.code()), 401, "invalid_token", "the mfaToken again")
    assert_error(u.verify_raw(tok, recovery=u.recovery[0]), 401, "invalid_token",
                 "the mfaToken again with a recovery code")


def test_attack_forged_or_malformed_mfa_token(stack):
    u = MfaUser(stack, "att-mfa-forge")
    steady()
    tok = u.challenge()
    for bad in ("", "x", tok[:-1], tok + "A", tok[:-1] + ("A" if tok[-1] != "A" else "B"),
                "A" * 43, tok + "=", "a" * 5000):
        assert_error(u.verify_raw(bad, u.code()), 401, "invalid_token", "mfaToken %r" % bad[:50])
    for body, field in (({"code": u.code()}, "mfaToken"), ({"mfaToken": 5, "code": u.code()}, "mfaToken"),
                        ({"mfaToken": tok}, "code"), ({"mfaToken": tok, "code": 123456}, "code"),
                        ({"mfaToken": tok, "code": u.code(), "recoveryCode": u.recovery[0]}, "code")):
        assert_validation(stack.post("/auth/mfa/verify", body), field, what="verify body %r" % body)
    # look-alike digits, padding, long input: a wrong code, never a crash
    for code in ("\uff11\uff12\uff13\uff14\uff15\uff16", " " + u.code(), u.code() + "0", "12345a",
                 "1" * 5000):
        assert_error(u.verify_raw(tok, code), 401, "invalid_code", "code %r" % code[:20])
    assert_error(u.verify_raw(tok, recovery="Z" * 5000), 401, "invalid_token",
                 "the 5 wrong codes above voided the mfaToken")


def test_attack_confirm_without_pending_secret(stack):
    u = MfaUser(stack, "att-mfa-nopending", enable=False)
    assert_error(stack.post("/auth/mfa/totp/confirm", {"code": "123456"}, token=u.access), 409,
                 "mfa_not_enabled", "confirm without a pending secret")
    assert_bearer_401(stack.post("/auth/mfa/totp/confirm", {"code": "123456"}), "confirm without a token")
    assert_bearer_401(stack.post("/auth/mfa/totp", {}), "enrol without a token")


def test_attack_qr_when_mfa_on(stack):
    u = MfaUser(stack, "att-mfa-qr")
    assert_error(stack.get("/auth/mfa/totp/qr.svg", token=u.access), 409, "mfa_already_enabled",
                 "QR of an enabled secret")
    assert_bearer_401(stack.get("/auth/mfa/totp/qr.svg"), "QR without a token")
    # enrolling again cannot replace the active secret
    assert_error(stack.post("/auth/mfa/totp", {}, token=u.access), 409, "mfa_already_enabled",
                 "enrol over an active secret")


def test_attack_aal1_token_at_aal2_location(stack):
    u = MfaUser(stack, "att-mfa-gw")
    a1 = u.access
    for via in ("nginx", "lighttpd"):
        for path in ("/app-mfa/hello.txt", "/app-mfa/hello.txt?aal=1", "/app-mfa/hello.txt?aal=0"):
            r = stack.get(path, token=a1, via=via)
            assert r.status == 403, "%s via %s with aal 1: want 403, got %s" % (path, via, show(r))
    r = stack.get("/auth/verify?aal=2", token=a1)
    assert_error(r, 403, "forbidden", "verify?aal=2 with aal 1")
    # refresh does not raise a session's aal
    p = assert_token_pair(refresh(stack, u.refresh_token), "refresh of an aal 1 session")
    assert claims(p["accessToken"])["aal"] == 1
    assert stack.get("/auth/verify?aal=2", token=p["accessToken"]).status == 403


def test_attack_forged_aal_claim_refused(stack):
    u = User(stack, "att-mfa-claim")
    h, c, _ = jwt_parts(u.access)
    key = stack_secret(stack)
    ok = jwt_hs(h, dict(c, aal=2), key)     # signed with the real key: a key leak, not a bypass
    assert stack.get("/auth/verify?aal=2", token=ok).status == 204
    for bad in (3, 0, "2", 2.0, True, None, [2]):
        t = jwt_hs(h, dict(c, aal=bad), key)
        r = stack.get("/auth/verify", token=t)
        assert r.status == 401, "a token with aal %r: want 401, got %s" % (bad, show(r))


def test_attack_step_up_password_change_and_disable(stack):
    u = MfaUser(stack, "att-mfa-stepup")
    steady()
    body = {"currentPassword": PASSWORD, "newPassword": "a stolen session's choice"}
    assert_error(stack.post("/auth/password", body, token=u.access), 403, "forbidden",
                 "password change with aal 1")
    assert_error(stack.request("DELETE", "/auth/mfa/totp", {"code": u.code()}, token=u.access), 403,
                 "forbidden", "disable with aal 1 and a right code")
    assert_error(stack.request("DELETE", "/auth/mfa/totp", {"recoveryCode": u.recovery[0]}, token=u.access),
                 403, "forbidden", "disable with aal 1 and a recovery code")
    # the refused attempts used nothing up
    assert_token_pair(u.verify_raw(u.challenge(), recovery=u.recovery[0]), "the recovery code still works")
