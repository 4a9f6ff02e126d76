"""Access-token forgery through nginx: every tampered, mis-signed,
wrong-algorithm, wrong-issuer/audience, expired or incomplete JWT is a 401
invalid_token with WWW-Authenticate on /auth/me, a 401 on /auth/verify and
{"active": false} (and nothing else) from /auth/introspect; and the
introspection answer for a live token."""

import os
import time

from authlib import (User, assert_access_alive, assert_bearer_401, assert_validation, b64u,
                     introspect, jwt_hs, jwt_parts, show, stack_secret, verify)

STACK_CONFIG = {}


def assert_rejected(stack, token, what):
    assert_bearer_401(stack.get("/auth/me", token=token), what + ": GET /auth/me")
    r = verify(stack, token)
    assert r.status == 401, "%s: GET /auth/verify want 401, got %s" % (what, show(r))
    r = introspect(stack, token)
    assert r.status == 200 and r.json == {"active": False}, \
        "%s: introspect want 200 {\"active\": false}, got %s" % (what, show(r))


def fresh(claims):
    c = dict(claims)
    c["jti"] = b64u(os.urandom(16))
    return c


def test_resigned_token_with_the_secret_is_accepted(stack):
    # control: the forging below is right, so its rejections mean something
    u = User(stack, "control")
    hdr, claims, _ = jwt_parts(u.access)
    tok = jwt_hs(hdr, fresh(claims), stack_secret(stack))
    assert_access_alive(stack, tok, "a token re-signed with the server secret")


def test_forged_tokens_401_invalid_token(stack):
    u = User(stack, "forge")
    hdr, claims, sig = jwt_parts(u.access)
    h64, p64, s64 = u.access.split(".")
    secret = stack_secret(stack)
    now = int(time.time())
    admin_claims = dict(claims, roles=["user", "admin"])
    flipped = s64[:10] + ("A" if s64[10] != "A" else "B") + s64[11:]

    def without(k):
        c = fresh(claims)
        del c[k]
        return c

    cases = [
        ("tampered payload (roles admin), original signature",
         "%s.%s.%s" % (h64, b64u(_dumps(admin_claims)), s64)),
        ("tampered payload (other sub), original signature",
         "%s.%s.%s" % (h64, b64u(_dumps(dict(claims, sub="00000000-0000-4000-8000-000000000001"))), s64)),
        ("tampered signature", "%s.%s.%s" % (h64, p64, flipped)),
        ("signature of zeros", "%s.%s.%s" % (h64, p64, b64u(b"\0" * 32))),
        ("no signature", "%s.%s." % (h64, p64)),
        ("two parts", "%s.%s" % (h64, p64)),
        ("alg none, empty signature",
         "%s.%s." % (b64u(_dumps({"alg": "none", "typ": "JWT"})), b64u(_dumps(admin_claims)))),
        ("alg None, empty signature",
         "%s.%s." % (b64u(_dumps({"alg": "None", "typ": "JWT"})), p64)),
        ("alg none with the original signature",
         "%s.%s.%s" % (b64u(_dumps({"alg": "none", "typ": "JWT"})), p64, s64)),
        ("HS512 with the right secret", jwt_hs({"alg": "HS512", "typ": "JWT"}, fresh(claims), secret, "HS512")),
        ("HS384 with the right secret", jwt_hs({"alg": "HS384", "typ": "JWT"}, fresh(claims), secret, "HS384")),
        ("header alg HS512, HS256 signature",
         jwt_hs({"alg": "HS512", "typ": "JWT"}, fresh(claims), secret, "HS256")),
        ("wrong iss", jwt_hs(hdr, dict(fresh(claims), iss="evil"), secret)),
        ("wrong aud", jwt_hs(hdr, dict(fresh(claims), aud="other-service"), secret)),
        ("aud list without ours", jwt_hs(hdr, dict(fresh(claims), aud=["other-service"]), secret)),
        ("expired", jwt_hs(hdr, dict(fresh(claims), iat=now - 1200, exp=now - 300), secret)),
        ("exp as a string", jwt_hs(hdr, dict(fresh(claims), exp=str(now + 600)), secret)),
        ("missing exp", jwt_hs(hdr, without("exp"), secret)),
        ("missing sid", jwt_hs(hdr, without("sid"), secret)),
        ("missing jti", jwt_hs(hdr, without("jti"), secret)),
        ("missing sub", jwt_hs(hdr, without("sub"), secret)),
        ("signed with a different secret", jwt_hs(hdr, fresh(claims), os.urandom(32).hex())),
        ("signed with the secret plus a byte", jwt_hs(hdr, fresh(claims), secret + b"x")),
        ("payload not JSON", "%s.%s.%s" % (h64, b64u(b"not json"), s64)),
        ("header not JSON", "%s.%s.%s" % (b64u(b"{"), p64, s64)),
        ("garbage", "garbage"),
        ("three dots", "a.b.c.d"),
        ("7000 chars", "a" * 7000),     # nginx's header buffer is 8k
        ("padded base64", u.access.replace(".", "=.", 1)),
    ]
    for what, tok in cases:
        assert_rejected(stack, tok, what)
    # the real token is still fine
    assert_access_alive(stack, u.access, "the real token after the forgeries")


def test_bearer_header_variants_401(stack):
    u = User(stack, "hdr")
    for what, value in (("no token", "Bearer"), ("empty token", "Bearer "), ("Basic", "Basic dXNlcjpwdw=="),
                        ("token without scheme", u.access), ("two tokens", "Bearer %s %s" % (u.access, u.access))):
        r = stack.get("/auth/me", headers={"Authorization": value})
        assert_bearer_401(r, "Authorization: %s" % what)
    assert_bearer_401(stack.get("/auth/me"), "no Authorization header")


def _dumps(o):
    import json
    return json.dumps(o, separators=(",", ":"))


# ---------------------------------------------------------------- introspect

def test_introspect_active_token(stack):
    u = User(stack, "intro")
    _, claims, _ = jwt_parts(u.access)
    r = introspect(stack, u.access)
    assert r.status == 200, show(r)
    want = {"active", "sub", "email", "roles", "sid", "jti", "iat", "exp", "iss", "aud", "token_type",
            "aal", "amr"}
    assert set(r.json) == want, "introspect keys %s, want %s" % (sorted(r.json), sorted(want))
    j = r.json
    assert j["active"] is True and j["token_type"] == "access_token", j
    assert j["sub"] == u.id and j["email"] == u.email and j["roles"] == ["user"], j
    for k in ("sid", "jti", "iat", "exp", "iss"):
        assert j[k] == claims[k], "introspect %s %r, token %r" % (k, j[k], claims[k])
    assert j["aud"] in (claims["aud"], [claims["aud"]]), j
    assert "no-store" in r.headers.get("cache-control", ""), r.headers


def test_introspect_inactive_and_bad_requests(stack):
    u = User(stack, "intro2")
    for what, tok in (("garbage", "garbage"), ("empty", ""), ("refresh token", u.refresh_token),
                      ("JWT-looking", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA")):
        r = introspect(stack, tok)
        assert r.status == 200 and r.json == {"active": False}, "introspect %s: %s" % (what, show(r))
    assert_validation(stack.post("/auth/introspect", {}), "token", what="introspect without token")
    assert_validation(stack.post("/auth/introspect", {"token": 5}), "token", what="introspect token a number")
    r = stack.post("/auth/introspect", raw_body=b"token=x", headers={"Content-Type": "text/plain"})
    assert r.status == 415, show(r)
