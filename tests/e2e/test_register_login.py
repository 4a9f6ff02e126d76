"""Register and login through nginx against real PostgreSQL and Redis:
the user and token-pair shapes of API.md, input validation, hostile JSON,
identical answers (and timing) for unknown email and wrong password, and
audit rows that never hold a secret."""

import json
import time

from authlib import (B64URL_RE, PASSWORD, RFC3339_RE, UUID_RE, User, assert_error,
                     assert_token_pair, assert_validation, audit_rows, jwt_parts, login,
                     login_raw, me, median, raw_http, register, show, sql_quote, uniq_email)

STACK_CONFIG = {}
USER_KEYS = {"id", "email", "firstName", "lastName", "roles", "createdAt", "emailVerified"}


def assert_user(u, email, first=None, last=None, roles=("user",), what="user"):
    assert isinstance(u, dict), "%s: not an object: %r" % (what, u)
    assert set(u) == USER_KEYS, "%s: keys %s, want %s" % (what, sorted(u), sorted(USER_KEYS))
    assert UUID_RE.match(u["id"] or ""), "%s: id %r is not a uuid" % (what, u["id"])
    assert u["email"] == email, "%s: email %r, want %r" % (what, u["email"], email)
    assert u["firstName"] == first, "%s: firstName %r, want %r" % (what, u["firstName"], first)
    assert u["lastName"] == last, "%s: lastName %r, want %r" % (what, u["lastName"], last)
    assert u["roles"] == list(roles), "%s: roles %r, want %r" % (what, u["roles"], list(roles))
    assert isinstance(u["createdAt"], str) and RFC3339_RE.match(u["createdAt"]), \
        "%s: createdAt %r is not RFC 3339 UTC" % (what, u["createdAt"])


# ----------------------------------------------------------------- register

def test_register_201_user_shape_email_trimmed_lowercased(stack):
    local = "Mixed.Case+Tag-" + uniq_email("x").split("@")[0]
    raw = "  %s@Example.TEST \t" % local
    r = stack.post("/auth/register", {"email": raw, "password": PASSWORD,
                                      "firstName": "Ada", "lastName": "Lovelace"})
    assert r.status == 201, "register: want 201, got %s" % show(r)
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    want = ("%s@example.test" % local).lower()
    assert_user(r.json, want, "Ada", "Lovelace")
    created = time.strptime(r.json["createdAt"][:19], "%Y-%m-%dT%H:%M:%S")
    assert abs(time.mktime(created) - time.mktime(time.gmtime())) < 120, \
        "createdAt %r is not now (UTC)" % r.json["createdAt"]
    row = stack.psql("SELECT email, roles::text FROM auth.users WHERE id = %s" % sql_quote(r.json["id"]))
    assert row == [[want, "{user}"]], "auth.users row %r" % row
    # the trimmed, lower-cased address logs in, in any case
    login(stack, want.upper())


def test_register_names_optional(stack):
    email = uniq_email()
    r = stack.post("/auth/register", {"email": email, "password": PASSWORD})
    assert r.status == 201, show(r)
    assert set(r.json) == USER_KEYS, "keys %s" % sorted(r.json)
    assert r.json["firstName"] in (None, "") and r.json["lastName"] in (None, ""), r.json


def test_register_email_taken_409_case_insensitive(stack):
    email = uniq_email("dup")
    register(stack, email)
    for other in (email, email.upper(), "  " + email.capitalize() + " "):
        r = stack.post("/auth/register", {"email": other, "password": PASSWORD})
        assert_error(r, 409, "email_taken", "register %r again" % other)
    n = stack.psql_value("SELECT count(*) FROM auth.users WHERE lower(email) = %s" % sql_quote(email))
    assert n == "1", "%s users with that email" % n


def test_register_validation_failed_names_fields(stack):
    ok = {"email": uniq_email(), "password": PASSWORD}
    cases = [
        ("missing email", {"password": PASSWORD}, "email"),
        ("missing password", {"email": uniq_email()}, "password"),
        ("email without @", dict(ok, email="no-at-sign.example.test"), "email"),
        ("email with two @", dict(ok, email="a@b@example.test"), "email"),
        ("email empty local part", dict(ok, email="@example.test"), "email"),
        ("email empty domain", dict(ok, email="someone@"), "email"),
        ("email empty", dict(ok, email=""), "email"),
        ("email 255 bytes", dict(ok, email="a" * (255 - len("@example.test")) + "@example.test"), "email"),
        ("password 7 bytes", dict(ok, password="1234567"), "password"),
        ("password 1025 bytes", dict(ok, password="p" * 1025), "password"),
        ("firstName 101 chars", dict(ok, firstName="n" * 101), "firstName"),
        ("lastName 101 chars", dict(ok, lastName="\u00e9" * 101), "lastName"),
        ("email a number", dict(ok, email=12345), "email"),
        ("password an array", dict(ok, password=["correct", "horse"]), "password"),
        ("password null", dict(ok, password=None), "password"),
        ("firstName a number", dict(ok, firstName=7), "firstName"),
    ]
    for what, body, field in cases:
        r = stack.post("/auth/register", body)
        assert_validation(r, field, what="register, " + what)
    n = stack.psql_value("SELECT count(*) FROM auth.users WHERE email = %s" % sql_quote(ok["email"]))
    assert n == "0", "a refused registration created a user"


def test_register_accepts_boundaries(stack):
    # 8 and 1024 bytes of password, 100 characters of (2-byte) name, 254-byte email
    register(stack, password="12345678")
    register(stack, password="p" * 1024)
    u = register(stack, firstName="\u00e9" * 100, lastName="n" * 100)
    assert u["firstName"] == "\u00e9" * 100, u
    local = "b" * 40
    domain = ("d" * 60 + ".") * 3
    domain += "x" * (254 - len(local) - 1 - len(domain) - len(".test")) + ".test"
    email = local + "@" + domain
    assert len(email) == 254
    u = register(stack, email=email)
    assert u["email"] == email, u
    # a multi-byte password is counted in bytes: 4 x 2 bytes = 8 bytes
    register(stack, password="\u00e9\u00e9\u00e9\u00e9")


def test_register_ignores_roles_and_unknown_fields(stack):
    email = uniq_email("roles")
    r = stack.post("/auth/register", {"email": email, "password": PASSWORD,
                                      "roles": ["admin"], "role": "admin", "isAdmin": True,
                                      "id": "00000000-0000-4000-8000-000000000000",
                                      "createdAt": "1999-01-01T00:00:00Z",
                                      "nested": {"roles": ["admin"]}})
    assert r.status == 201, show(r)
    assert r.json["roles"] == ["user"], "roles from the request were applied: %r" % r.json
    assert r.json["id"] != "00000000-0000-4000-8000-000000000000", r.json
    assert not r.json["createdAt"].startswith("1999"), r.json
    pair = login(stack, email)
    _, claims, _ = jwt_parts(pair["accessToken"])
    assert claims["roles"] == ["user"], claims
    r = stack.get("/auth/admin/audit", token=pair["accessToken"])
    assert_error(r, 403, "forbidden", "admin route for a self-declared admin")


def test_register_sql_looking_strings_stored_literally(stack):
    first = "Robert'); DROP TABLE auth.users;--"
    last = "O'Brien\"; SELECT pg_sleep(5); -- \\ $1 %s %n"
    email = "o'brien-%s@example.test" % uniq_email("").split("@")[0].strip("-")
    r = stack.post("/auth/register", {"email": email, "password": "pw'); DROP TABLE x;--",
                                      "firstName": first, "lastName": last})
    assert r.status == 201, show(r)
    assert r.json["firstName"] == first and r.json["lastName"] == last, r.json
    assert r.json["email"] == email, r.json
    pair = login(stack, email, "pw'); DROP TABLE x;--")
    r = me(stack, pair["accessToken"])
    assert r.status == 200 and r.json["firstName"] == first and r.json["lastName"] == last, show(r)
    row = stack.psql("SELECT first_name, last_name FROM auth.users WHERE id = %s" % sql_quote(r.json["id"]))
    assert row == [[first, last]], row
    assert int(stack.psql_value("SELECT count(*) FROM auth.users")) >= 1


def test_register_hostile_json_400_invalid_json(stack):
    email = uniq_email("hostile")
    cases = [
        # bodies stay under the 16 KiB limit (over it is a 413 before parsing)
        ("8k nested arrays", b"[" * 8000 + b"]" * 8000),
        ("10k unterminated arrays", b"[" * 10000),
        ("2500 nested objects", b'{"a":' * 2500 + b"1" + b"}" * 2500),
        ("duplicate keys", ('{"email":"%s","email":"other@example.test","password":"%s"}'
                            % (email, PASSWORD)).encode()),
        ("raw NUL in a string", ('{"email":"%s","password":"pass\x00word1"}' % email).encode()),
        ("escaped \\u0000", ('{"email":"%s","password":"pass\\u0000word1"}' % email).encode()),
        ("escaped \\u0000 in a key", ('{"email":"%s","password":"%s","x\\u0000":1}' % (email, PASSWORD)).encode()),
        ("invalid UTF-8 byte", ('{"email":"%s","password":"pass' % email).encode() + b"\xff" + b'word1"}'),
        ("overlong UTF-8", ('{"email":"%s","password":"pass' % email).encode() + b"\xc0\xaf" + b'word1"}'),
        ("UTF-8 surrogate", ('{"email":"%s","password":"pass' % email).encode() + b"\xed\xa0\x80" + b'word1"}'),
        ("lone surrogate escape", ('{"email":"%s","password":"pass\\ud800word1"}' % email).encode()),
        ("truncated", ('{"email":"%s","password":"%s"' % (email, PASSWORD)).encode()),
        ("trailing garbage", ('{"email":"%s","password":"%s"} x' % (email, PASSWORD)).encode()),
        ("two objects", ('{"email":"%s","password":"%s"}{}' % (email, PASSWORD)).encode()),
        ("huge number", ('{"email":"%s","password":"%s","n":1%s}' % (email, PASSWORD, "0" * 5000)).encode()),
    ]
    for what, raw in cases:
        r = stack.post("/auth/register", raw_body=raw)
        assert r.status != 500 and r.status < 500, "%s: got %s" % (what, show(r))
        if what in ("2500 nested objects", "huge number"):
            # well-formed objects: refused as too deep, or taken as JSON
            assert r.status in (400, 201), "%s: got %s" % (what, show(r))
            continue
        assert_error(r, 400, "invalid_json", what)
    n = stack.psql_value("SELECT count(*) FROM auth.users WHERE email = %s" % sql_quote(email))
    assert n == "0", "a hostile body created a user"
    r = stack.get("/auth/health")
    assert r.status == 200, "service unhealthy after hostile JSON: %s" % show(r)


def test_register_415_without_application_json(stack):
    body = json.dumps({"email": uniq_email(), "password": PASSWORD}).encode()
    for ct in (None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
               "application/jsonp"):
        hdrs = {"Content-Type": ct} if ct else {}
        r = raw_http(stack, "POST", "/auth/register", body, hdrs)
        assert_error(r, 415, "unsupported_media_type", "Content-Type %r" % ct)
    # parameters after the media type are fine
    r = raw_http(stack, "POST", "/auth/register", body, {"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 201, "application/json; charset=utf-8: %s" % show(r)


# -------------------------------------------------------------------- login

def test_login_200_token_pair_shape_and_claims(stack):
    u = User(stack, "shape", login_now=False)
    t0 = int(time.time())
    r = login_raw(stack, u.email.upper())
    j = assert_token_pair(r, "login")
    hdr, claims, sig = jwt_parts(j["accessToken"])
    assert hdr.get("typ") == "JWT" and hdr.get("alg") == "HS256", "JWT header %r" % hdr
    assert len(sig) == 32, "HS256 signature of %d bytes" % len(sig)
    want = {"iss", "aud", "sub", "email", "roles", "sid", "jti", "iat", "exp"}
    assert want <= set(claims), "claims %s, want %s" % (sorted(claims), sorted(want))
    assert claims["iss"] == "fcgi-auth", claims
    assert claims["aud"] in ("fcgi-auth", ["fcgi-auth"]), claims
    assert claims["sub"] == u.id, claims
    assert claims["email"] == u.email, claims
    assert claims["roles"] == ["user"], claims
    assert UUID_RE.match(claims["sid"]), "sid %r" % claims["sid"]
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 22 and B64URL_RE.match(claims["jti"]), \
        "jti %r: want >= 22 base64url chars (128 bits)" % claims["jti"]
    assert isinstance(claims["iat"], int) and abs(claims["iat"] - t0) <= 5, "iat %r, now %d" % (claims["iat"], t0)
    assert claims["exp"] == claims["iat"] + 900, "exp %r != iat + access_ttl" % claims["exp"]
    # two logins: distinct sessions, jtis and refresh tokens
    j2 = login(stack, u.email)
    _, c2, _ = jwt_parts(j2["accessToken"])
    assert c2["sid"] != claims["sid"] and c2["jti"] != claims["jti"], (claims, c2)
    assert j2["refreshToken"] != j["refreshToken"]


def test_login_ttl_follows_config(stack):
    stack.start_app(access_ttl=120, refresh_ttl=3600)
    u = User(stack, "ttl", login_now=False)
    r = login_raw(stack, u.email)
    j = assert_token_pair(r, "login with access_ttl=120", access_ttl=120, refresh_ttl=3600)
    _, claims, _ = jwt_parts(j["accessToken"])
    assert claims["exp"] - claims["iat"] == 120, claims


def test_login_unknown_email_and_wrong_password_identical_401(stack):
    u = User(stack, "cred", login_now=False)
    r1 = login_raw(stack, uniq_email("nobody"), PASSWORD)
    r2 = login_raw(stack, u.email, PASSWORD + "x")
    r3 = login_raw(stack, u.email, PASSWORD.upper())
    for what, r in (("unknown email", r1), ("wrong password", r2), ("wrong case password", r3)):
        assert_error(r, 401, "invalid_credentials", what)
        assert "www-authenticate" not in r.headers or "invalid_token" not in r.headers["www-authenticate"]
    assert r1.body == r2.body == r3.body, "bodies differ:\n%r\n%r\n%r" % (r1.body, r2.body, r3.body)
    assert r1.headers.get("content-type") == r2.headers.get("content-type")
    # validation errors of a login are still 400, not a credential probe
    r = stack.post("/auth/login", {"email": u.email})
    assert_validation(r, "password", what="login without password")


def _login_medians(stack, n, email):
    unknown, wrong = [], []
    for i in range(n):      # interleaved, so drift hits both alike
        r = login_raw(stack, uniq_email("ghost"), PASSWORD)
        assert r.status == 401, show(r)
        unknown.append(r.elapsed)
        r = login_raw(stack, email, PASSWORD + "-wrong")
        assert r.status == 401, show(r)
        wrong.append(r.elapsed)
    return median(unknown), median(wrong)


def test_login_timing_unknown_email_vs_wrong_password_test_cost(stack):
    u = User(stack, "timing", login_now=False)
    for _ in range(3):      # warm up connections and the hash pool
        login_raw(stack, u.email, "warm-up-wrong")
    mu, mw = _login_medians(stack, 20, u.email)
    ratio = max(mu, mw) / min(mu, mw)
    print("      test cost (opslimit 1, 8 MiB), N=20: median unknown email %.2f ms, "
          "wrong password %.2f ms, ratio %.3f" % (mu * 1000, mw * 1000, ratio))
    assert ratio < 1.25, "medians differ by %.0f%% (unknown %.2f ms, wrong %.2f ms)" % (
        (ratio - 1) * 100, mu * 1000, mw * 1000)


def test_login_timing_default_cost(stack):
    stack.start_app(password_opslimit=2, password_memlimit=19922944)
    u = User(stack, "timing-default", login_now=False)
    for _ in range(3):
        login_raw(stack, u.email, "warm-up-wrong")
    mu, mw = _login_medians(stack, 50, u.email)
    ratio = max(mu, mw) / min(mu, mw)
    print("      default cost (opslimit 2, 19 MiB), N=50: median unknown email %.2f ms, "
          "wrong password %.2f ms, ratio %.3f" % (mu * 1000, mw * 1000, ratio))
    assert ratio < 1.10, "medians differ by %.1f%% (unknown %.2f ms, wrong %.2f ms)" % (
        (ratio - 1) * 100, mu * 1000, mw * 1000)


test_login_timing_default_cost.timeout = 400


def test_me_returns_the_user(stack):
    u = User(stack, "me", firstName="Grace", lastName="Hopper")
    r = me(stack, u.access)
    assert r.status == 200, show(r)
    assert r.json == u.user, "GET /auth/me %r != register answer %r" % (r.json, u.user)
    r = stack.get("/auth/me")
    assert_error(r, 401, "invalid_token", "GET /auth/me without a token")
    assert 'Bearer' in r.headers.get("www-authenticate", ""), r.headers


def test_login_audit_rows_without_secrets(stack):
    password = "S3cret-pass-" + uniq_email("").split("@")[0]
    u = User(stack, "audit", password=password, login_now=False)
    ghost = uniq_email("ghost")
    pair = login(stack, u.email, password, ua="audit-agent/1.0")
    r = login_raw(stack, u.email, password + "-nope", ua="audit-agent/1.0")
    assert r.status == 401
    r = login_raw(stack, ghost, password, ua="audit-agent/1.0")
    assert r.status == 401
    _, claims, _ = jwt_parts(pair["accessToken"])

    ok = audit_rows(stack, "event = 'login.success' AND user_id = %s", (u.id,))
    assert len(ok) == 1, "login.success rows: %r" % ok
    row = ok[0]
    assert row["success"] is True and row["email"] == u.email, row
    assert row["session_id"] == claims["sid"], "session_id %r, sid %r" % (row["session_id"], claims["sid"])
    assert row["ip"] == "127.0.0.1" and row["user_agent"] == "audit-agent/1.0", row

    bad = audit_rows(stack, "event = 'login.failure' AND email = %s", (u.email,))
    assert len(bad) == 1, "login.failure rows for the wrong password: %r" % bad
    assert bad[0]["success"] is False and bad[0]["detail"].get("reason") == "bad_password", bad[0]
    assert bad[0]["user_id"] in (None, u.id), bad[0]
    unk = audit_rows(stack, "event = 'login.failure' AND email = %s", (ghost,))
    assert len(unk) == 1, "login.failure rows for the unknown email: %r" % unk
    assert unk[0]["detail"].get("reason") == "unknown_email" and unk[0]["user_id"] is None, unk[0]
    reg = audit_rows(stack, "event = 'register' AND user_id = %s", (u.id,))
    assert len(reg) == 1, reg

    # no column of any audit row holds the password, a token or a hash
    hashval = stack.psql_value("SELECT password_hash FROM auth.users WHERE id = %s" % sql_quote(u.id))
    secrets = [password, pair["accessToken"], pair["refreshToken"], pair["accessToken"].split(".")[2],
               pair["refreshToken"][:40], hashval, "$argon2"]
    for text in stack.psql("SELECT a::text FROM auth.audit_log a"):
        for s in secrets:
            assert s not in text[0], "audit row holds a secret (%r...): %s" % (s[:12], text[0][:300])
    for text in stack.psql("SELECT o::text FROM auth.outbox o"):
        for s in secrets:
            assert s not in text[0], "outbox row holds a secret (%r...): %s" % (s[:12], text[0][:300])
