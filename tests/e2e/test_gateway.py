"""The service as a gateway: nginx auth_request and lighttpd's FastCGI
authorizer, both from the shipped deploy/ configs, in front of a stand-in
application (the harness's echo app, or lighttpd's static files); the
identity headers and their presets; fail-closed 503 when Redis is down;
CR/LF never reaching a header; the JWKS route and RS256/ES256 signing with
keys made by `fcgi-auth keygen`, including key rotation and algorithm
confusion."""

import os
import subprocess
import time

from authlib import (PASSWORD, CgiLighttpd, User, assert_access_alive, assert_access_dead, assert_error,
                     assert_validation, b64u, b64u_dec, es256_verify, grant, jwt_hs, jwt_parts,
                     keygen, login, openssl_ec_point, openssl_rsa_modulus, rs256_verify, show,
                     uniq_email, verify)
from harness import FA_BIN, fcgi_request

STACK_CONFIG = {}


def app_get(stack, token=None, path="/app/resource", via="nginx", headers=None):
    return stack.get(path, token=token, via=via, headers=headers)


def echo_headers(r, what):
    assert r.status == 200, "%s: want 200 from the upstream, got %s" % (what, show(r))
    assert isinstance(r.json, dict) and "headers" in r.json, "%s: not the echo app: %s" % (what, show(r))
    return r.json["headers"]


def assert_gateway_error(r, status, code, what):
    assert_error(r, status, code, what)


def make_admin(stack):
    a = User(stack, "gwadmin")
    grant(stack, a.email, "admin")
    a.pair = login(stack, a.email)
    return a


# ------------------------------------------------------------- auth_request

def test_protected_location_401_without_token(stack):
    r = app_get(stack)
    assert_gateway_error(r, 401, "invalid_token", "GET /app/ without a token")
    assert "Bearer" in r.headers.get("www-authenticate", ""), \
        "GET /app/ 401 without WWW-Authenticate: %r" % r.headers
    r = app_get(stack, token="garbage.token.here")
    assert_gateway_error(r, 401, "invalid_token", "GET /app/ with a garbage token")
    # the verify subrequest location is internal
    r = stack.get("/_fcgi_auth_verify")
    assert r.status == 404, "internal verify location reachable: %s" % show(r)


def test_protected_location_200_upstream_sees_identity(stack):
    u = User(stack, "gw")
    sid = jwt_parts(u.access)[1]["sid"]
    r = app_get(stack, u.access, path="/app/some/page?x=1")
    h = echo_headers(r, "GET /app/ with a token")
    assert r.json["path"] == "/app/some/page?x=1", r.json
    assert h.get("x-auth-user-id") == u.id, h
    assert h.get("x-auth-email") == u.email, h
    assert h.get("x-auth-roles") == "user", h
    assert h.get("x-auth-session-id") == sid, h
    # a POST with a body goes through too (the subrequest carries no body)
    r = stack.post("/app/upload", {"data": "x" * 1000}, token=u.access)
    h = echo_headers(r, "POST /app/upload")
    assert r.json["method"] == "POST" and r.json["body_length"] > 1000, r.json
    assert h.get("x-auth-user-id") == u.id, h


def test_client_cannot_forge_identity_headers(stack):
    u = User(stack, "forger")
    forged = {"X-Auth-User-Id": "00000000-0000-4000-8000-000000000000", "X-Auth-Email": "root@example.test",
              "X-Auth-Roles": "admin", "X-Auth-Session-Id": "forged"}
    h = echo_headers(app_get(stack, u.access, headers=forged), "GET /app/ with forged identity headers")
    assert h.get("x-auth-user-id") == u.id and h.get("x-auth-roles") == "user", \
        "client-sent identity headers reached the upstream: %r" % h
    assert h.get("x-auth-email") == u.email, h
    r = app_get(stack, None, headers=forged)
    assert r.status == 401, "forged identity headers without a token: %s" % show(r)


def test_role_protected_location_403_without_role(stack):
    u = User(stack, "norole")
    r = app_get(stack, u.access, path="/app-admin/panel")
    assert_gateway_error(r, 403, "forbidden", "GET /app-admin/ as a plain user")
    assert_gateway_error(app_get(stack, None, path="/app-admin/panel"), 401, "invalid_token",
                         "GET /app-admin/ without a token")
    a = make_admin(stack)
    h = echo_headers(app_get(stack, a.access, path="/app-admin/panel"), "GET /app-admin/ as admin")
    assert set(h.get("x-auth-roles", "").split(",")) == {"user", "admin"}, h


def test_protected_location_401_right_after_logout(stack):
    u = User(stack, "gwlogout")
    echo_headers(app_get(stack, u.access), "before logout")
    r = stack.post("/auth/logout", token=u.access)
    assert r.status == 204, show(r)
    assert_gateway_error(app_get(stack, u.access), 401, "invalid_token", "GET /app/ right after logout")
    v = User(stack, "gwlogoutall")
    p2 = v.login()
    assert stack.post("/auth/logout-all", token=v.access).status == 204
    for tok in (v.access, p2["accessToken"]):
        assert_gateway_error(app_get(stack, tok), 401, "invalid_token", "GET /app/ right after logout-all")


def test_verify_role_query(stack):
    u = User(stack, "vrole")
    r = verify(stack, u.access, role="admin")
    assert_error(r, 403, "forbidden", "GET /auth/verify?role=admin as a plain user")
    r = verify(stack, u.access, role="user")
    assert r.status == 204, "GET /auth/verify?role=user: %s" % show(r)
    r = verify(stack, u.access)
    assert r.status == 204 and r.body == b"", show(r)
    assert r.headers.get("x-auth-user-id") == u.id and r.headers.get("x-auth-email") == u.email, r.headers
    assert r.headers.get("x-auth-roles") == "user", r.headers
    assert r.headers.get("x-auth-session-id") == jwt_parts(u.access)[1]["sid"], r.headers
    r = verify(stack, None)
    assert r.status == 401, show(r)


def test_crlf_never_reaches_a_header(stack):
    # an email with CR/LF is not an email: 400
    for what, body in (
            ("email with CRLF", {"email": "eve\r\nx-injected: 1@example.test"}),
            ("email with LF in domain", {"email": "eve@example.test\nX-Injected: 1"})):
        b = {"email": uniq_email("crlf"), "password": PASSWORD}
        b.update(body)
        r = stack.post("/auth/register", b)
        assert_validation(r, "email", what="register, " + what)
    # names are client text: stored with CR and LF replaced (API.md, stored
    # client text), so they are one line wherever they are shown
    for what, body, field in (
            ("firstName with CRLF", {"firstName": "Eve\r\nX-Injected: 1"}, "firstName"),
            ("lastName with LF", {"lastName": "Eve\nX-Injected: 1"}, "lastName"),
            ("firstName with CR", {"firstName": "Eve\rX-Injected: 1"}, "firstName")):
        b = {"email": uniq_email("crlf"), "password": PASSWORD}
        b.update(body)
        r = stack.post("/auth/register", b)
        assert r.status == 201, "register, %s: %s" % (what, show(r))
        v = r.json[field]
        assert "\r" not in v and "\n" not in v and "X-Injected: 1" in v, "register, %s: %r" % (what, v)
    # whatever a user could put in, the upstream sees no injected header
    u = User(stack, "crlf", firstName="Eve", lastName="Smith")
    h = echo_headers(app_get(stack, u.access), "GET /app/")
    assert not any(k.startswith("x-injected") for k in h), "injected header reached the upstream: %r" % h
    for k, v in h.items():
        assert "\r" not in v and "\n" not in v, "header %s has CR/LF: %r" % (k, v)
    r = verify(stack, u.access)
    for k, v in r.header_list:
        assert "\r" not in v and "\n" not in v and k.lower() != "x-injected", (k, v)


def test_redis_down_protected_location_503_json(stack):
    u = User(stack, "gwredis")
    echo_headers(app_get(stack, u.access), "before Redis stops")
    stack.stop_redis()
    try:
        t0 = time.monotonic()
        r = app_get(stack, u.access)
        took = time.monotonic() - t0
        assert_gateway_error(r, 503, "unavailable", "GET /app/ with Redis down")
        assert took < 2.5, "GET /app/ with Redis down took %.2fs" % took
        r = verify(stack, u.access)
        assert_error(r, 503, "unavailable", "GET /auth/verify with Redis down")
        r = app_get(stack, None)
        assert r.status in (401, 503), "GET /app/ without token, Redis down: %s" % show(r)
        assert r.status != 200
    finally:
        stack.start_redis()
    end = time.time() + 5
    while time.time() < end and app_get(stack, u.access).status != 200:
        time.sleep(0.2)
    echo_headers(app_get(stack, u.access), "after Redis came back")


def test_verify_headers_authelia(stack):
    stack.start_app(verify_headers="authelia")
    u = User(stack, "authelia")
    r = verify(stack, u.access)
    assert r.status == 204, show(r)
    assert r.headers.get("remote-user") == u.id, r.headers
    assert r.headers.get("remote-email") == u.email, r.headers
    assert r.headers.get("remote-groups") == "user", r.headers
    assert "x-auth-user-id" not in r.headers, "default header alongside the authelia preset: %r" % r.headers


def test_verify_headers_oauth2_proxy(stack):
    stack.start_app(verify_headers="oauth2-proxy")
    u = User(stack, "o2p")
    r = verify(stack, u.access)
    assert r.status == 204, show(r)
    assert r.headers.get("x-auth-request-user") == u.id, r.headers
    assert r.headers.get("x-auth-request-email") == u.email, r.headers
    assert r.headers.get("x-auth-request-groups") == "user", r.headers
    assert "x-auth-user-id" not in r.headers, r.headers


# ----------------------------------------------------------------- keys

def test_jwks_empty_for_hs256(stack):
    r = stack.get("/auth/.well-known/jwks.json")
    assert r.status == 200 and r.json == {"keys": []}, "JWKS under HS256: %s" % show(r)
    cc = r.headers.get("cache-control", "")
    assert "max-age=300" in cc, "JWKS Cache-Control %r, want max-age=300 (jwks_max_age default)" % cc
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    stack.start_app(jwks_max_age=60)
    r = stack.get("/auth/.well-known/jwks.json")
    assert "max-age=60" in r.headers.get("cache-control", ""), r.headers


def _keydir(stack):
    d = os.path.join(stack.state, "keys-" + os.urandom(3).hex())
    os.makedirs(d)
    return d


def _jwk(stack, kid):
    r = stack.get("/auth/.well-known/jwks.json")
    assert r.status == 200 and isinstance(r.json, dict) and isinstance(r.json.get("keys"), list), show(r)
    ks = [k for k in r.json["keys"] if k.get("kid") == kid]
    assert len(ks) == 1, "JWKS has %d keys with kid %r: %r" % (len(ks), kid, r.json)
    return ks[0], r.json["keys"]


def test_keygen_documented_argument_order(stack):
    # API/usage: `fcgi-auth keygen rs256|es256 --kid ID [--dir DIR]`
    d = _keydir(stack)
    for alg, kid in (("rs256", "doc-rsa"), ("es256", "doc-ec")):
        r = subprocess.run([FA_BIN, "keygen", alg, "--kid", kid, "--dir", d], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, "`fcgi-auth keygen %s --kid %s --dir DIR`: rc %d, %s" % (
            alg, kid, r.returncode, (r.stdout + r.stderr).strip())
        assert os.path.exists(os.path.join(d, kid + ".pem")) and os.path.exists(os.path.join(d, kid + ".pub.pem"))
    # and it never overwrites a key
    r = subprocess.run([FA_BIN, "keygen", "--kid", "doc-rsa", "--dir", d, "rs256"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, "keygen overwrote an existing key"


def test_rs256_token_kid_jwks_and_gateway(stack):
    d = _keydir(stack)
    priv, pub = keygen(stack, "rs256", "rsa-1", d)
    assert oct(os.stat(priv).st_mode & 0o777) == "0o600", "private key mode %o" % (os.stat(priv).st_mode & 0o777)
    stack.start_app(jwt_alg="RS256", jwt_private_key_file=priv, jwt_kid="rsa-1")
    u = User(stack, "rsa")
    hdr, claims, sig = jwt_parts(u.access)
    assert hdr.get("alg") == "RS256" and hdr.get("kid") == "rsa-1" and hdr.get("typ") == "JWT", hdr
    assert_access_alive(stack, u.access, "RS256 token")
    h = echo_headers(app_get(stack, u.access), "GET /app/ with an RS256 token")
    assert h.get("x-auth-user-id") == u.id, h
    jwk, keys = _jwk(stack, "rsa-1")
    assert jwk.get("kty") == "RSA" and jwk.get("alg") == "RS256" and jwk.get("use") == "sig", jwk
    assert "d" not in jwk and "p" not in jwk, "private parts in the JWKS: %r" % sorted(jwk)
    n = int.from_bytes(b64u_dec(jwk["n"]), "big")
    assert n == openssl_rsa_modulus(pub), "JWKS n differs from `openssl rsa -modulus` of rsa-1.pub.pem"
    assert n.bit_length() >= 2048, n.bit_length()
    assert int.from_bytes(b64u_dec(jwk["e"]), "big") == 65537, jwk["e"]
    assert rs256_verify(jwk, u.access), "the JWKS key does not verify the issued RS256 token"


def test_es256_token_kid_jwks_and_gateway(stack):
    d = _keydir(stack)
    priv, pub = keygen(stack, "es256", "ec-1", d)
    stack.start_app(jwt_alg="ES256", jwt_private_key_file=priv, jwt_kid="ec-1")
    u = User(stack, "ec")
    hdr, claims, sig = jwt_parts(u.access)
    assert hdr.get("alg") == "ES256" and hdr.get("kid") == "ec-1" and hdr.get("typ") == "JWT", hdr
    assert len(sig) == 64, "ES256 signature of %d bytes (want raw r||s, 64)" % len(sig)
    assert_access_alive(stack, u.access, "ES256 token")
    echo_headers(app_get(stack, u.access), "GET /app/ with an ES256 token")
    jwk, _ = _jwk(stack, "ec-1")
    assert jwk.get("kty") == "EC" and jwk.get("crv") == "P-256" and jwk.get("alg") == "ES256", jwk
    assert "d" not in jwk, "private key in the JWKS"
    assert len(b64u_dec(jwk["x"])) == 32 and len(b64u_dec(jwk["y"])) == 32, jwk
    curve, x, y = openssl_ec_point(pub)
    assert curve in ("prime256v1", "P-256"), curve
    assert int.from_bytes(b64u_dec(jwk["x"]), "big") == x and int.from_bytes(b64u_dec(jwk["y"]), "big") == y, \
        "JWKS x/y differ from `openssl ec -pubin -text` of ec-1.pub.pem"
    assert es256_verify(jwk, u.access), "the JWKS key does not verify the issued ES256 token"


def test_key_rotation_old_key_verifies_until_removed(stack):
    d = _keydir(stack)
    priv_a, pub_a = keygen(stack, "rs256", "key-a", d)
    priv_b, pub_b = keygen(stack, "rs256", "key-b", d)
    stack.start_app(jwt_alg="RS256", jwt_private_key_file=priv_a, jwt_kid="key-a")
    u = User(stack, "rotate")
    tok_a = u.access
    assert jwt_parts(tok_a)[0]["kid"] == "key-a"
    # B signs, A still verifies
    stack.start_app(jwt_alg="RS256", jwt_private_key_file=priv_b, jwt_kid="key-b",
                    jwt_public_keys="key-a=%s" % pub_a)
    assert_access_alive(stack, tok_a, "token of key A while A is a verification key")
    echo_headers(app_get(stack, tok_a), "GET /app/ with key A's token during rotation")
    tok_b = login(stack, u.email)["accessToken"]
    assert jwt_parts(tok_b)[0]["kid"] == "key-b", jwt_parts(tok_b)[0]
    ja, keys = _jwk(stack, "key-a")
    jb, _ = _jwk(stack, "key-b")
    assert rs256_verify(ja, tok_a) and rs256_verify(jb, tok_b)
    # A removed: its tokens are dead, B's live on
    stack.start_app(jwt_alg="RS256", jwt_private_key_file=priv_b, jwt_kid="key-b")
    assert_access_dead(stack, tok_a, "token of key A after A was removed")
    assert_error(app_get(stack, tok_a), 401, "invalid_token", "GET /app/ with key A's token after removal")
    assert_access_alive(stack, tok_b, "token of key B")
    r = stack.get("/auth/.well-known/jwks.json")
    assert [k["kid"] for k in r.json["keys"]] == ["key-b"], r.json


def test_rs256_algorithm_confusion_rejected(stack):
    d = _keydir(stack)
    priv, pub = keygen(stack, "rs256", "conf-1", d)
    stack.start_app(jwt_alg="RS256", jwt_private_key_file=priv, jwt_kid="conf-1")
    u = User(stack, "confuse")
    hdr, claims, _ = jwt_parts(u.access)
    with open(pub, "rb") as f:
        pem = f.read()
    fresh = dict(claims, jti=b64u(os.urandom(16)))
    cases = [
        ("HS256 keyed with the public key PEM", jwt_hs({"alg": "HS256", "typ": "JWT", "kid": "conf-1"}, fresh, pem)),
        ("HS256 keyed with the PEM without newline",
         jwt_hs({"alg": "HS256", "typ": "JWT", "kid": "conf-1"}, fresh, pem.rstrip(b"\n"))),
        ("HS256 without kid keyed with the PEM", jwt_hs({"alg": "HS256", "typ": "JWT"}, fresh, pem)),
        ("HS256 keyed with the JWT secret", jwt_hs({"alg": "HS256", "typ": "JWT"}, fresh,
                                                   open(stack.secret_file, "rb").read().rstrip(b"\n"))),
        ("alg none", "%s.%s." % (b64u(b'{"alg":"none","typ":"JWT","kid":"conf-1"}'), u.access.split(".")[1])),
        ("ES256 header on an RS256 signature",
         "%s.%s.%s" % (b64u(b'{"alg":"ES256","typ":"JWT","kid":"conf-1"}'), *u.access.split(".")[1:])),
    ]
    # RS256 signed by another key under the same kid
    other_dir = _keydir(stack)
    other_priv, _ = keygen(stack, "rs256", "conf-1", other_dir)
    h = b64u(b'{"alg":"RS256","typ":"JWT","kid":"conf-1"}')
    p = b64u(__import__("json").dumps(fresh).encode())
    msg = os.path.join(other_dir, "msg")
    with open(msg, "w") as f:
        f.write("%s.%s" % (h, p))
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", other_priv, msg], capture_output=True,
                         timeout=30).stdout
    assert len(sig) == 256, "openssl dgst -sign gave %d bytes" % len(sig)
    cases.append(("RS256 signed by another key with the same kid", "%s.%s.%s" % (h, p, b64u(sig))))
    for what, tok in cases:
        assert_access_dead(stack, tok, what)
    assert_access_alive(stack, u.access, "the real RS256 token")


# ------------------------------------------------------------------ lighttpd

def test_lighttpd_authorizer_protects_app(stack):
    u = User(stack, "lt")
    r = app_get(stack, None, path="/app/hello.txt", via="lighttpd")
    assert r.status == 401, "lighttpd /app/ without a token: %s" % show(r)
    if r.json is not None:
        assert r.json.get("error") == "invalid_token", r.json
    r = app_get(stack, u.access, path="/app/hello.txt", via="lighttpd")
    assert r.status == 200 and r.body == b"hello from /app/\n", "lighttpd /app/ with a token: %s" % show(r)
    r = app_get(stack, u.access, path="/app-admin/hello.txt", via="lighttpd")
    assert r.status == 403, "lighttpd /app-admin/ as a plain user: %s" % show(r)
    if r.json is not None:
        assert r.json.get("error") == "forbidden", r.json
    a = make_admin(stack)
    r = app_get(stack, a.access, path="/app-admin/hello.txt", via="lighttpd")
    assert r.status == 200 and r.body == b"hello from /app-admin/\n", "lighttpd /app-admin/ as admin: %s" % show(r)
    # revoked at once
    r = stack.post("/auth/logout", token=u.access)
    assert r.status == 204, show(r)
    r = app_get(stack, u.access, path="/app/hello.txt", via="lighttpd")
    assert r.status == 401, "lighttpd /app/ right after logout: %s" % show(r)


def test_lighttpd_backend_sees_auth_variables(stack):
    # a CGI backend behind the shipped authorizer config (authlib.CgiLighttpd)
    u = User(stack, "ltcgi")
    sid = jwt_parts(u.access)[1]["sid"]
    lt = CgiLighttpd(stack)
    try:
        r = lt.get("/app/env.cgi")
        assert r.status == 401, "lighttpd CGI /app/ without a token: %s" % show(r)
        r = lt.get("/app/env.cgi", u.access)
        assert r.status == 200 and isinstance(r.json, dict), "lighttpd CGI /app/ with a token: %s" % show(r)
        env = r.json
        assert env.get("AUTH_USER_ID") == u.id, env
        assert env.get("AUTH_EMAIL") == u.email, env
        assert env.get("AUTH_ROLES") == "user", env
        assert env.get("AUTH_SESSION_ID") == sid, env
        r = lt.get("/app-admin/env.cgi", u.access)
        assert r.status == 403, "lighttpd CGI /app-admin/ as a plain user: %s" % show(r)
    finally:
        lt.stop()


def test_authorizer_role_answers_variables(stack):
    # What lighttpd hands on to a backend (AUTH_USER_ID, ...) are the
    # Variable-* headers of the authorizer answer; lighttpd's own static
    # handler does not show them, so ask the service as lighttpd does.
    u = User(stack, "authz")
    sid = jwt_parts(u.access)[1]["sid"]
    r = fcgi_request(stack.app_addr, "GET", "/app/hello.txt", headers={"Authorization": "Bearer " + u.access},
                     role=2)
    assert r.status == 200, "FastCGI authorizer with a token: %s" % show(r)
    h = r.headers
    assert h.get("variable-auth_user_id") == u.id, h
    assert h.get("variable-auth_email") == u.email, h
    assert h.get("variable-auth_roles") == "user", h
    assert h.get("variable-auth_session_id") == sid, h
    r = fcgi_request(stack.app_addr, "GET", "/app/hello.txt", role=2)
    assert r.status == 401, "FastCGI authorizer without a token: %s" % show(r)
    r = fcgi_request(stack.app_addr, "GET", "/app-admin/hello.txt",
                     headers={"Authorization": "Bearer " + u.access},
                     params={"AUTH_REQUIRED_ROLE": "admin"}, role=2)
    assert r.status == 403, "FastCGI authorizer, AUTH_REQUIRED_ROLE admin, plain user: %s" % show(r)
