"""Second factor (TOTP, API.md "Second factor: TOTP"): enrol, confirm, the
mfa_required login, POST /auth/mfa/verify with a code or a recovery code,
amr/aal in tokens and sessions, the gateway's aal requirement (nginx
?aal=2 and the server's AUTH_REQUIRED_AAL under the lighttpd authorizer),
the aal 2 step-up for sensitive changes, disable and the mfa-reset CLI.
Codes are computed here (RFC 6238 with hmac/hashlib)."""

import os
import re
import shutil
import subprocess
import time
import urllib.parse

from authlib import (PASSWORD, User, assert_error, assert_no_store, assert_token_pair,
                     assert_validation, audit_rows, introspect, login, login_raw, me, median,
                     outbox_rows, parallel, refresh, sessions, show, wait_for)
from mfalib import MfaUser, claims, reset_last_step, steady, step_now, totp_at

TOKEN_TTL = 4
STACK_CONFIG = {"mfa_token_ttl": str(TOKEN_TTL), "mfa_issuer": "Acme Auth",
                "login_fail_per_ip": "100000", "login_fail_per_email": "50",
                "login_fail_per_account": "500"}
B32_RE = re.compile(r"^[A-Z2-7]{32}$")
RECOVERY_RE = re.compile(r"^[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}$")


def test_mfa_full_flow_nginx_and_lighttpd(stack):
    for via in ("nginx", "lighttpd"):
        u = MfaUser(stack, "mfa-flow-" + via, enable=False)
        r = u.enrol(via)
        assert_no_store(r, "enrol answer")
        assert B32_RE.match(u.secret), "secret %r is not 32 base32 chars" % u.secret
        want = "otpauth://totp/Acme%%20Auth:%s?secret=%s&issuer=Acme%%20Auth&algorithm=SHA1&digits=6&period=30" \
            % (urllib.parse.quote(u.email, safe=""), u.secret)
        assert u.uri == want, "otpauthUri %r, want %r" % (u.uri, want)
        r = u.confirm(via)
        assert_no_store(r, "confirm answer")
        assert len(u.recovery) == 10 and len(set(u.recovery)) == 10, u.recovery
        assert all(RECOVERY_RE.match(c) for c in u.recovery), u.recovery
        j = me(stack, u.access, via=via).json
        assert j["mfaEnabled"] is True and j["emailVerified"] is False, "GET /me: %r" % j
        n_sessions = len(sessions(stack, u.access))
        steady()
        r = login_raw(stack, u.email, PASSWORD, via=via)
        assert_error(r, 401, "mfa_required", "login of an MFA user via " + via)
        tok = r.json["mfaToken"]
        assert re.match(r"^[A-Za-z0-9_-]{43}$", tok) and r.json["expiresIn"] == TOKEN_TTL, show(r)
        assert_no_store(r, "mfa_required answer")
        assert len(sessions(stack, u.access)) == n_sessions, "mfa_required made a session"
        pair = assert_token_pair(u.verify_raw(tok, u.code(), via=via), "mfa verify via " + via)
        c = claims(pair["accessToken"])
        assert c["amr"] == ["pwd", "otp"] and c["aal"] == 2, "claims %r" % c
        i = introspect(stack, pair["accessToken"]).json
        assert i["active"] and i["aal"] == 2 and i["amr"] == ["pwd", "otp"], "introspect %r" % i
        assert len(sessions(stack, u.access)) == n_sessions + 1
        # audit and events
        assert audit_rows(stack, "event = 'mfa.enable' AND user_id = %s", (u.id,)), "no mfa.enable row"
        rows = audit_rows(stack, "event = 'login.success' AND user_id = %s", (u.id,))
        assert [r["detail"].get("amr") for r in rows] == [["pwd"], ["pwd", "otp"]], rows
        assert wait_for(lambda: outbox_rows(stack, "user.mfa_enabled", "payload->'data'->>'userId' = %s",
                                            (u.id,))), "no user.mfa_enabled event"


def test_mfa_wrong_password_invalid_credentials(stack):
    u = MfaUser(stack, "mfa-wrongpw")
    assert_error(login_raw(stack, u.email, PASSWORD + "x"), 401, "invalid_credentials",
                 "wrong password of an MFA user")


def test_mfa_replayed_code_invalid_code(stack):
    u = MfaUser(stack, "mfa-replay")
    steady()
    code = u.code()
    assert_token_pair(u.verify_raw(u.challenge(), code), "first use of a code")
    r = u.verify_raw(u.challenge(), code)
    assert_error(r, 401, "invalid_code", "the same code again (replay)")
    # an older step than the one used is a replay too
    assert_error(u.verify_raw(u.challenge(), u.code(-1)), 401, "invalid_code", "a step before the used one")


def test_mfa_window_one_step_each_side(stack):
    u = MfaUser(stack, "mfa-window")
    steady(5)
    tok = u.challenge()
    assert_error(u.verify_raw(tok, u.code(-2)), 401, "invalid_code", "a code two steps old")
    assert_token_pair(u.verify_raw(tok, u.code(-1)), "a code one step old")
    tok = u.challenge()
    assert_error(u.verify_raw(tok, u.code(+2)), 401, "invalid_code", "a code two steps ahead")
    assert_token_pair(u.verify_raw(tok, u.code(+1)), "a code one step ahead")


def test_mfa_five_wrong_codes_void_token(stack):
    u = MfaUser(stack, "mfa-five")
    steady(8)
    tok = u.challenge()
    good = u.code()
    wrong = "%06d" % ((int(good) + 1) % 1000000)
    for i in range(5):
        assert_error(u.verify_raw(tok, wrong), 401, "invalid_code", "wrong code #%d" % (i + 1))
    assert_error(u.verify_raw(tok, good), 401, "invalid_token", "the right code after 5 wrong ones")
    assert len(audit_rows(stack, "event = 'mfa.failure' AND user_id = %s", (u.id,))) == 5
    # a new login works
    assert_token_pair(u.verify_raw(u.challenge(), good), "a new mfaToken after a voided one")


def test_mfa_recovery_code_once(stack):
    u = MfaUser(stack, "mfa-recovery")
    code = u.recovery[3]
    typed = code.lower().replace("-", " ")
    pair = assert_token_pair(u.verify_raw(u.challenge(), recovery=typed), "a recovery code")
    assert claims(pair["accessToken"])["aal"] == 2
    assert_error(u.verify_raw(u.challenge(), recovery=code), 401, "invalid_code", "a used recovery code")
    assert_token_pair(u.verify_raw(u.challenge(), recovery=u.recovery[4]), "another recovery code")


def test_mfa_parallel_same_code_one_success(stack):
    u = MfaUser(stack, "mfa-par")
    steady(8)
    code = u.code()
    # one mfaToken, 8 parallel submissions
    tok = u.challenge()
    rs = parallel(8, lambda i: u.verify_raw(tok, code))
    ok = [r for r in rs if getattr(r, "status", None) == 200]
    assert len(ok) == 1, "same mfaToken and code in parallel: %r" % [getattr(r, "status", r) for r in rs]
    # 6 mfaTokens (6 logins), the same next code in parallel
    reset_last_step(stack, u.id)
    toks = [u.challenge() for _ in range(6)]
    rs = parallel(6, lambda i: u.verify_raw(toks[i], code))
    st = [getattr(r, "status", r) for r in rs]
    assert st.count(200) == 1, "one code on 6 mfaTokens in parallel: %r" % st


def test_mfa_token_expiry(stack):
    u = MfaUser(stack, "mfa-expiry")
    tok = u.challenge()
    time.sleep(TOKEN_TTL + 1.5)
    steady()
    assert_error(u.verify_raw(tok, u.code()), 401, "invalid_token", "an mfaToken past mfa_token_ttl")


def test_mfa_aal_in_claims_and_after_refresh(stack):
    plain = User(stack, "mfa-plain")
    c = claims(plain.access)
    assert c["amr"] == ["pwd"] and c["aal"] == 1, "claims of a password login %r" % c
    assert introspect(stack, plain.access).json["aal"] == 1
    p = assert_token_pair(refresh(stack, plain.refresh_token), "refresh aal 1")
    assert claims(p["accessToken"])["aal"] == 1
    u = MfaUser(stack, "mfa-refresh")
    pair = u.login2()
    p = assert_token_pair(refresh(stack, pair["refreshToken"]), "refresh of an aal 2 session")
    c = claims(p["accessToken"])
    assert c["aal"] == 2 and c["amr"] == ["pwd", "otp"], "claims after refresh %r" % c
    p2 = assert_token_pair(refresh(stack, p["refreshToken"]), "second refresh")
    assert claims(p2["accessToken"])["aal"] == 2
    # the session from before MFA stays aal 1 through refresh
    p = assert_token_pair(refresh(stack, u.refresh_token), "refresh of the pre-MFA session")
    assert claims(p["accessToken"])["aal"] == 1


def test_mfa_verify_aal_query(stack):
    u = MfaUser(stack, "mfa-verify")
    a1, a2 = u.access, u.login2()["accessToken"]
    for q, tok, want in (("?aal=2", a1, 403), ("?aal=1", a1, 204), ("?aal=2", a2, 204),
                         ("?aal=1", a2, 204), ("?aal=3", a2, 403), ("?aal=x", a2, 403),
                         ("?aal=", a2, 403), ("?aal=02", a2, 403), ("?aal=2&aal=2", a2, 403),
                         ("?aal=2%00", a2, 403), ("?role=user&aal=2", a2, 204),
                         ("?role=admin&aal=2", a2, 403)):
        r = stack.get("/auth/verify" + q, token=tok)
        assert r.status == want, "verify%s with aal %d: want %d, got %s" % (
            q, claims(tok)["aal"], want, show(r))
        if want == 403:
            assert_error(r, 403, "forbidden", "verify" + q)


def test_mfa_gateway_locations_nginx_and_lighttpd(stack):
    u = MfaUser(stack, "mfa-gw")
    a1, a2 = u.access, u.login2()["accessToken"]
    for via in ("nginx", "lighttpd"):
        r = stack.get("/app-mfa/hello.txt", token=a1, via=via)
        assert r.status == 403, "/app-mfa/ via %s with aal 1: want 403, got %s" % (via, show(r))
        r = stack.get("/app-mfa/hello.txt", token=a2, via=via)
        assert r.status == 200, "/app-mfa/ via %s with aal 2: want 200, got %s" % (via, show(r))
        r = stack.get("/app/hello.txt", token=a1, via=via)
        assert r.status == 200, "/app/ via %s with aal 1: want 200, got %s" % (via, show(r))
    # the authorizer never reads the client's URL as policy
    r = stack.get("/app-mfa/hello.txt?aal=1", token=a1, via="lighttpd")
    assert r.status == 403, "lighttpd /app-mfa/?aal=1 with aal 1: want 403, got %s" % show(r)


def _storage_dump(stack):
    """Every column of every table of schema auth, and every Redis key with
    its value."""
    out = []
    for (t,) in stack.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'auth'"):
        out += [r[0] for r in stack.psql("SELECT row_to_json(t)::text FROM auth.%s t" % t)]
    for k in stack.redis_cli("--scan").split("\n"):
        if not k:
            continue
        typ = stack.redis_cli("TYPE", k)
        cmd = {"string": ["GET"], "hash": ["HGETALL"], "set": ["SMEMBERS"],
               "zset": ["ZRANGE", "0", "-1", "WITHSCORES"], "list": ["LRANGE", "0", "-1"]}.get(typ)
        out.append(k)
        if cmd:
            out.append(stack.redis_cli(*(cmd[:1] + [k] + cmd[1:])))
    return "\n".join(out)


def test_mfa_no_plaintext_secret_or_codes_in_storage(stack):
    u = MfaUser(stack, "mfa-plain-store")
    pending = MfaUser(stack, "mfa-pending", enable=False)
    pending.enrol()
    tok = u.challenge()     # an mfaToken in Redis now
    dump = _storage_dump(stack).lower()
    import base64
    for who, secret in (("enabled", u.secret), ("pending", pending.secret)):
        raw = base64.b32decode(secret)
        for form in (secret.lower(), raw.hex(), base64.b64encode(raw).decode().lower()):
            assert form not in dump, "the %s TOTP secret is in storage as %r" % (who, form)
    for c in u.recovery:
        for form in (c.lower(), c.replace("-", "").lower()):
            assert form not in dump, "recovery code %r is in storage" % form
    assert tok.lower() not in dump, "the mfaToken is in Redis in plaintext"
    assert "mfa_secret" in dump and "code_hash" in dump, "the dump did not see the MFA columns"


def test_mfa_qr_svg_decodes_to_the_uri(stack):
    u = MfaUser(stack, "mfa-qr", enable=False)
    assert_error(stack.get("/auth/mfa/totp/qr.svg", token=u.access), 404, "not_found", "QR before enrol")
    u.enrol()
    r = stack.get("/auth/mfa/totp/qr.svg", token=u.access)
    assert r.status == 200, "GET qr.svg: %s" % show(r)
    assert r.headers.get("content-type", "").startswith("image/svg+xml"), r.headers
    assert_no_store(r, "qr.svg")
    assert r.body.startswith(b"<?xml") and b"<svg" in r.body
    rsvg, zbar = shutil.which("rsvg-convert"), shutil.which("zbarimg")
    if not rsvg or not zbar:
        print("SKIP decode: rsvg-convert %r zbarimg %r (apt-get install librsvg2-bin zbar-tools)" % (rsvg, zbar))
        return
    d = os.path.join(stack.state, "qr")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "qr.svg"), "wb") as f:
        f.write(r.body)
    subprocess.run([rsvg, "-o", os.path.join(d, "qr.png"), os.path.join(d, "qr.svg")], check=True)
    z = subprocess.run([zbar, "--raw", "-q", os.path.join(d, "qr.png")], capture_output=True, text=True)
    assert z.stdout.strip() == u.uri, "zbarimg decoded %r, want %r" % (z.stdout, u.uri)
    u.confirm()
    assert_error(stack.get("/auth/mfa/totp/qr.svg", token=u.access), 409, "mfa_already_enabled",
                 "QR with MFA on")


def test_mfa_password_change_needs_aal2(stack):
    u = MfaUser(stack, "mfa-pw")
    body = {"currentPassword": PASSWORD, "newPassword": "another passphrase 42"}
    r = stack.post("/auth/password", body, token=u.access)
    assert_error(r, 403, "forbidden", "password change from an aal 1 session of an MFA user")
    assert "second factor" in r.json["message"], r.json
    login_raw(stack, u.email, PASSWORD)     # still the old password
    a2 = u.login2()["accessToken"]
    r = stack.post("/auth/password", body, token=a2)
    assert r.status == 204, "password change from aal 2: %s" % show(r)
    # a user without MFA needs no second factor
    plain = User(stack, "mfa-pw-plain")
    assert stack.post("/auth/password", body, token=plain.access).status == 204


def test_mfa_disable(stack):
    u = MfaUser(stack, "mfa-off")
    steady()
    r = stack.request("DELETE", "/auth/mfa/totp", {"code": u.code()}, token=u.access)
    assert_error(r, 403, "forbidden", "disable from aal 1")
    a2 = u.login2()["accessToken"]
    assert_validation(stack.request("DELETE", "/auth/mfa/totp", {}, token=a2), "code", what="no code")
    good = u.code()
    wrong = "%06d" % ((int(good) + 7) % 1000000)
    assert_error(stack.request("DELETE", "/auth/mfa/totp", {"code": wrong}, token=a2), 401,
                 "invalid_code", "disable with a wrong code")
    r = stack.request("DELETE", "/auth/mfa/totp", {"code": good}, token=a2)
    assert r.status == 204, "disable: %s" % show(r)
    assert me(stack, a2).json["mfaEnabled"] is False
    login(stack, u.email)
    assert_error(stack.request("DELETE", "/auth/mfa/totp", {"code": good}, token=a2), 409,
                 "mfa_not_enabled", "disable twice")
    assert audit_rows(stack, "event = 'mfa.disable' AND user_id = %s", (u.id,))
    assert wait_for(lambda: outbox_rows(stack, "user.mfa_disabled", "payload->'data'->>'userId' = %s", (u.id,)))
    # with a recovery code
    v = MfaUser(stack, "mfa-off-rec")
    a2 = v.login2()["accessToken"]
    r = stack.request("DELETE", "/auth/mfa/totp", {"recoveryCode": v.recovery[0]}, token=a2)
    assert r.status == 204, "disable with a recovery code: %s" % show(r)


def test_mfa_reset_cli(stack):
    u = MfaUser(stack, "mfa-cli")
    r = stack.run_cli("user", "mfa-reset", u.email)
    assert r.returncode == 0, "user mfa-reset: rc %d\n%s%s" % (r.returncode, r.stdout, r.stderr)
    login(stack, u.email)
    rows = audit_rows(stack, "event = 'mfa.disable' AND user_id = %s", (u.id,))
    assert rows and rows[-1]["detail"] == {"by": "cli"}, rows
    assert wait_for(lambda: outbox_rows(stack, "user.mfa_disabled", "payload->'data'->>'userId' = %s", (u.id,)))
    r = stack.run_cli("user", "mfa-reset", u.email)
    assert r.returncode == 3, "mfa-reset without MFA: rc %d (want 3)" % r.returncode
    # enrol again
    u.enrol()
    u.confirm()
    u.challenge()


def test_mfa_enrol_rules(stack):
    u = MfaUser(stack, "mfa-rules", enable=False)
    u.enrol()
    old = u.secret
    u.enrol()               # replaces the pending secret
    assert u.secret != old
    steady()
    r = stack.post("/auth/mfa/totp/confirm", {"code": totp_at(old, step_now())}, token=u.access)
    assert_error(r, 401, "invalid_code", "confirm with the replaced secret's code")
    assert_validation(stack.post("/auth/mfa/totp/confirm", {}, token=u.access), "code", what="no code")
    u.confirm()
    assert_error(stack.post("/auth/mfa/totp", token=u.access), 409, "mfa_already_enabled", "enrol twice")
    assert_error(stack.post("/auth/mfa/totp/confirm", {"code": u.code()}, token=u.access), 409,
                 "mfa_already_enabled", "confirm with MFA on")


def test_mfa_latency_login_plus_verify(stack):
    n = 31
    plain = User(stack, "mfa-lat-plain", login_now=False)
    u = MfaUser(stack, "mfa-lat")
    t_plain, t_mfa, t_step = [], [], []
    for _ in range(n):      # interleaved: both see the same machine load
        t0 = time.monotonic()
        login(stack, plain.email)
        t_plain.append(time.monotonic() - t0)
        steady()
        code = u.code()
        t0 = time.monotonic()
        tok = u.challenge()
        t1 = time.monotonic()
        assert_token_pair(u.verify_raw(tok, code), "timed mfa login")
        t2 = time.monotonic()
        t_mfa.append(t2 - t0)
        t_step.append(t2 - t1)
        reset_last_step(stack, u.id)
    mp, mm, ms = median(t_plain) * 1000, median(t_mfa) * 1000, median(t_step) * 1000
    print("latency (median of %d): login %.1f ms; login + mfa/verify %.1f ms (added %.1f ms); "
          "mfa/verify alone %.1f ms" % (n, mp, mm, mm - mp, ms))
