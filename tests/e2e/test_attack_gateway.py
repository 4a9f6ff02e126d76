"""The gateway and the admin routes as an attacker sees them (docs/SECURITY.md
10.1 and 10.2): one test per abuse case.

The gateway's policy is the server's: the role a web server config requires
(AUTH_REQUIRED_ROLE) always applies, under lighttpd's FastCGI Authorizer the
client's URL is never policy input, and a requirement present but malformed
is a 403, never "no requirement".  Identity headers carry visible ASCII only.
A role change cuts tokens off before it commits; a malformed admin filter is
a 400.  Gateway cases run through nginx and through lighttpd (the shipped
deploy/ configs), and as raw FastCGI where a config would have to change."""

import uuid

from authlib import (User, assert_access_alive, assert_access_dead, assert_bearer_401, assert_error,
                     assert_validation, audit_rows, grant, jwt_hs, jwt_parts, login, me, show,
                     stack_secret, verify)
from harness import fcgi_request

STACK_CONFIG = {}

RESPONDER, AUTHORIZER = 1, 2


def make_admin(stack, tag="atkadmin"):
    a = User(stack, tag)
    grant(stack, a.email, "admin")
    a.pair = login(stack, a.email)
    return a


def fcgi_verify(stack, token, uri="/auth/verify", required=None, role=RESPONDER):
    """/auth/verify as a web server asks it: responder (nginx auth_request)
    or authorizer (lighttpd), AUTH_REQUIRED_ROLE as the server config sets it."""
    params = {"AUTH_REQUIRED_ROLE": required} if required is not None else {}
    hdrs = {"Authorization": "Bearer " + token} if token else {}
    return fcgi_request(stack.app_addr, "GET", uri, headers=hdrs, params=params, role=role)


def lt_get(stack, path, token):
    return stack.get(path, token=token, via="lighttpd")


def assert_403(r, what):
    assert r.status == 403, "%s: want 403, got %s" % (what, show(r))
    if r.json is not None:
        assert r.json.get("error") == "forbidden", "%s: %r" % (what, r.json)


def put_roles(stack, admin, uid, roles, token=None):
    body = {"roles": roles} if roles is not None else {}
    return stack.request("PUT", "/auth/admin/users/%s/roles" % uid, body, token=token or admin.access)


def db_roles(stack, uid):
    return stack.psql_value("SELECT array_to_string(roles, ',') FROM auth.users WHERE id = '%s'" % uid)


# ------------------------------------------------- 10.1 the gateway: defect 1

def test_role_query_ignored_in_authorizer(stack):
    u = User(stack, "authzq")
    for q in ("?role=user", "?role=user&role=user", "?%72ole=user", "?role=", "?x=1&role=user"):
        assert_403(lt_get(stack, "/app-admin/hello.txt" + q, u.access),
                   "lighttpd /app-admin/%s as a plain user" % q)
        assert_403(fcgi_verify(stack, u.access, "/app-admin/hello.txt" + q, required="admin", role=AUTHORIZER),
                   "FastCGI authorizer %s, AUTH_REQUIRED_ROLE admin, plain user" % q)
    # nor can the client's URL add a requirement the server did not set
    r = lt_get(stack, "/app/hello.txt?role=admin", u.access)
    assert r.status == 200 and r.body == b"hello from /app/\n", "lighttpd /app/?role=admin: %s" % show(r)
    r = fcgi_verify(stack, u.access, "/app/hello.txt?role=adm%zz", role=AUTHORIZER)
    assert r.status == 200, "authorizer with a malformed client query: %s" % show(r)
    a = make_admin(stack)
    r = lt_get(stack, "/app-admin/hello.txt?role=nosuchrole", a.access)
    assert r.status == 200 and r.body == b"hello from /app-admin/\n", "admin, lighttpd /app-admin/: %s" % show(r)


def test_server_role_and_query_role_both_hold(stack):
    # nginx auth_request with AUTH_REQUIRED_ROLE and a query in the
    # subrequest URI (a site's own config): both requirements apply.
    u = User(stack, "bothq")
    assert_403(fcgi_verify(stack, u.access, "/auth/verify?role=user", required="admin"),
               "verify ?role=user with AUTH_REQUIRED_ROLE admin, plain user")
    a = make_admin(stack, "bothadm")
    assert_403(fcgi_verify(stack, a.access, "/auth/verify?role=editor", required="admin"),
               "verify ?role=editor with AUTH_REQUIRED_ROLE admin, admin without editor")
    r = fcgi_verify(stack, a.access, "/auth/verify?role=user", required="admin")
    assert r.status == 204, "admin, ?role=user and AUTH_REQUIRED_ROLE admin: %s" % show(r)
    # the shipped nginx config pins the subrequest URI: the client's query
    # never reaches the service
    assert_403(stack.get("/app-admin/panel?role=user", token=u.access), "nginx /app-admin/?role=user, plain user")


ACL_PATH_TRICKS = ("//app-admin/F", "/app-admin//F", "///app-admin///F", "/./app-admin/F", "/app-admin/./F",
                   "/app/../app-admin/F", "/app/%2e%2e/app-admin/F", "/app/..%2fapp-admin/F", "/app-admin%2fF",
                   "/%61pp-admin/F", "/app-admin/F/", "/app-admin/F;x", "/App-Admin/F", "/app-admin\\F")


def test_acl_path_tricks_never_reach_admin(stack):
    # Path spellings of /app-admin/ that a web server might route past the
    # role check: both shipped configs normalise before they match.  (A
    # backslash is not a separator to either; "/app/..\\app-admin/" reaches
    # the /app/ upstream as is, see docs/SECURITY.md 10.1.)
    u = User(stack, "acl")
    for p in ACL_PATH_TRICKS:
        r = lt_get(stack, p.replace("F", "hello.txt"), u.access)
        assert r.status != 200, "lighttpd %s as a plain user: %s" % (p, show(r))
        r = stack.get(p.replace("F", "panel"), token=u.access)
        assert r.status != 200, "nginx %s as a plain user: %s" % (p, show(r))


# ------------------------------------------------- 10.1 the gateway: defect 2

MALFORMED_ROLE_QUERIES = (
    ("33 x a", "?role=" + "a" * 33),
    ("bad escape", "?role=adm%zz"),
    ("truncated escape", "?role=user%2"),
    ("empty", "?role="),
    ("no value", "?role"),
    ("capital", "?role=User"),
    ("comma list", "?role=user,admin"),
    ("NUL", "?role=user%00admin"),
    ("repeated", "?role=user&role=admin"),
    ("repeated, encoded name", "?role=user&%72ole=admin"),
    ("U+2028", "?role=user%E2%80%A8"),
)


def test_malformed_role_query_403_nginx(stack):
    u = User(stack, "malq")
    for what, q in MALFORMED_ROLE_QUERIES:
        assert_error(stack.get("/auth/verify" + q, token=u.access), 403, "forbidden",
                     "nginx GET /auth/verify, %s (%s)" % (what, q))
    r = verify(stack, u.access, role="user")
    assert r.status == 204, "a well-formed ?role=user: %s" % show(r)
    r = stack.get("/auth/verify?role=" + "u" * 32, token=u.access)
    assert_403(r, "32-char role the token lacks")


def test_malformed_role_query_403_lighttpd(stack):
    u = User(stack, "malqlt")
    for what, q in MALFORMED_ROLE_QUERIES:
        r = lt_get(stack, "/auth/verify" + q, u.access)
        if what == "NUL" and r.status == 400:
            continue                    # lighttpd itself refuses %00
        assert_error(r, 403, "forbidden", "lighttpd GET /auth/verify, %s (%s)" % (what, q))
    r = lt_get(stack, "/auth/verify?role=user", u.access)
    assert r.status == 204, "lighttpd ?role=user: %s" % show(r)


def test_malformed_server_role_403(stack):
    # AUTH_REQUIRED_ROLE present but malformed in the web server config:
    # the location fails closed, under both FastCGI roles.
    a = make_admin(stack, "malsrv")
    for role in (RESPONDER, AUTHORIZER):
        uri = "/auth/verify" if role == RESPONDER else "/app-admin/hello.txt"
        for what, v in (("empty", ""), ("capital", "Admin"), ("comma list", "admin,user"),
                        ("33 chars", "a" * 33), ("space", "admin ")):
            assert_403(fcgi_verify(stack, a.access, uri, required=v, role=role),
                       "AUTH_REQUIRED_ROLE %s (%r), FastCGI role %d" % (what, v, role))
        r = fcgi_verify(stack, a.access, uri, required="admin", role=role)
        assert r.status in (200, 204), "AUTH_REQUIRED_ROLE admin, FastCGI role %d: %s" % (role, show(r))


# ------------------------------------------------- 10.1 the gateway: defect 7b

def forged_email_token(stack, u, email):
    """u's own token, re-signed with the stack's HS256 secret and another
    email claim (a token minted before emails were canonical)."""
    hdr, claims, _ = jwt_parts(u.access)
    claims = dict(claims, email=email)
    return jwt_hs(hdr, claims, stack_secret(stack))


def test_identity_header_not_ascii_refused(stack):
    u = User(stack, "hdr")
    assert verify(stack, forged_email_token(stack, u, u.email)).status == 204, "re-signed token refused"
    for what, email in (("U+2028", "eve\u2028x@example.test"), ("U+0085", "eve\u0085x@example.test"),
                        ("Kelvin sign", "\u212aate@example.test"), ("DEL", "eve\x7f@example.test"),
                        ("TAB", "eve\t@example.test")):
        tok = forged_email_token(stack, u, email)
        r = verify(stack, tok)
        assert_error(r, 401, "invalid_token", "nginx /auth/verify, email with %s" % what)
        assert not any(k.lower() == "x-auth-email" for k, _ in r.header_list), r.header_list
        assert_error(stack.get("/app/x", token=tok), 401, "invalid_token", "nginx /app/, email with %s" % what)
        r = lt_get(stack, "/app/hello.txt", tok)
        assert r.status == 401, "lighttpd /app/, email with %s: %s" % (what, show(r))
        r = fcgi_verify(stack, tok, "/app/hello.txt", role=AUTHORIZER)
        assert r.status == 401, "FastCGI authorizer, email with %s: %s" % (what, show(r))
        assert "variable-auth_email" not in r.headers, r.headers
    # every header value the verify answer carries is visible ASCII
    r = verify(stack, u.access)
    for k, v in r.header_list:
        assert all(0x20 <= ord(ch) <= 0x7e for ch in v), (k, v)


# ----------------------------------------------- 10.1 the gateway: other cases

def test_verify_token_only_from_authorization_header(stack):
    u = User(stack, "tokq")
    for q in ("?access_token=", "?token="):
        r = stack.get("/auth/verify" + q + u.access)
        assert r.status == 401, "token in the query %s: %s" % (q, show(r))
    r = verify(stack, u.refresh_token)
    assert r.status == 401, "refresh token as a bearer: %s" % show(r)
    r = stack.get("/auth/verify", headers={"Authorization": "Bearer " + u.access + " " + u.access})
    assert r.status == 401, "two tokens in one header: %s" % show(r)


def test_introspect_abuse(stack):
    u = User(stack, "intro")
    for what, body in (("oversize token", {"token": "a" * 9000}), ("spaces", {"token": "a b"}),
                       ("CRLF", {"token": u.access + "\r\nX-Injected: 1"}),
                       ("refresh token", {"token": u.refresh_token})):
        r = stack.post("/auth/introspect", body)
        assert r.status == 200 and r.json == {"active": False}, "introspect %s: %s" % (what, show(r))
    for what, body in (("number", {"token": 1}), ("array", {"token": [u.access]}), ("missing", {})):
        assert_validation(stack.post("/auth/introspect", body), "token", what="introspect " + what)


def test_health_and_jwks_leak_nothing(stack):
    r = stack.get("/auth/health")
    assert r.status == 200 and set(r.json) == {"status", "postgres", "redis", "version"}, show(r)
    r = stack.get("/auth/.well-known/jwks.json")
    assert r.status == 200 and r.json == {"keys": []}, "HS256 JWKS publishes nothing: %s" % show(r)


def test_me_and_sessions_are_the_callers_own(stack):
    u = User(stack, "owner")
    v = User(stack, "victim")
    v_sid = jwt_parts(v.access)[1]["sid"]
    r = stack.request("DELETE", "/auth/sessions/" + v_sid, token=u.access)
    assert_error(r, 404, "not_found", "DELETE another user's session")
    assert_access_alive(stack, v.access, "victim's token after another user tried to revoke its session")
    for bad in ("not-a-uuid", v_sid.upper(), v_sid + "0", "%2e%2e", "..%2fsessions"):
        r = stack.request("DELETE", "/auth/sessions/" + bad, token=u.access)
        assert r.status == 404, "DELETE /auth/sessions/%s: %s" % (bad, show(r))
    r = stack.get("/auth/sessions", token=u.access)
    assert r.status == 200 and v_sid not in {s["id"] for s in r.json["sessions"]}, show(r)
    r = me(stack, u.access)
    assert r.status == 200 and r.json["id"] == u.id, show(r)


# --------------------------------------------- 10.2 admin routes: defect 9

def test_role_change_redis_fails_before_commit(stack):
    # The cut-off fails (its key made unusable): nothing may be committed,
    # or the old token would live on with the old roles.
    a = make_admin(stack, "d9adm")
    u = User(stack, "d9redis")
    key = "fa:{%s}:cutoff" % u.id
    stack.redis_cli("HSET", key, "blocked", "1")
    try:
        r = put_roles(stack, a, u.id, ["user", "admin"])
        assert_error(r, 503, "unavailable", "PUT roles while the cut-off fails")
    finally:
        stack.redis_cli("DEL", key)
    assert db_roles(stack, u.id) == "user", "roles committed although the cut-off failed: %s" % db_roles(
        stack, u.id)
    r = me(stack, u.access)
    assert r.status != 200 or r.json["roles"] == ["user"], \
        "old token alive after a failed role change, and the roles changed under it: %s" % show(r)
    # the PUT is idempotent: a retry finishes the job
    r = put_roles(stack, a, u.id, ["user", "admin"])
    assert r.status == 200 and r.json["roles"] == ["user", "admin"], show(r)
    assert_access_dead(stack, u.access, "token from before the role change")


def test_role_change_commit_fails_after_cutoff(stack):
    a = make_admin(stack, "d9adm2")
    u = User(stack, "d9pg")
    stack.psql("CREATE OR REPLACE FUNCTION public.fa_test_block() RETURNS trigger LANGUAGE plpgsql AS "
               "$$BEGIN RAISE EXCEPTION 'blocked by test'; END$$")
    stack.psql("CREATE TRIGGER fa_test_block BEFORE UPDATE ON auth.users FOR EACH ROW "
               "WHEN (NEW.id = '%s') EXECUTE FUNCTION public.fa_test_block()" % u.id)
    try:
        r = put_roles(stack, a, u.id, ["user", "admin"])
        assert_error(r, 503, "unavailable", "PUT roles while the commit fails")
    finally:
        stack.psql("DROP TRIGGER fa_test_block ON auth.users")
    assert db_roles(stack, u.id) == "user", db_roles(stack, u.id)
    # cut off first: the old token is dead, a new login has the old roles
    assert_access_dead(stack, u.access, "token from before the failed role change")
    tok = login(stack, u.email)["accessToken"]
    assert jwt_parts(tok)[1]["roles"] == ["user"]
    assert_access_alive(stack, tok, "login after the failed role change")
    assert not audit_rows(stack, "event = 'role.change' AND user_id = %s", (u.id,)), "audit of a failed change"


# --------------------------------------------- 10.2 admin routes: defect 10

def test_admin_audit_malformed_filter_400(stack):
    a = make_admin(stack, "d10adm")
    u = User(stack, "d10")
    cases = (
        ("userId", "?userId=" + "a" * 48),
        ("userId", "?userId=" + u.id + "0" * 12),
        ("userId", "?userId="),
        ("userId", "?userId=" + u.id + "&userId=" + a.id),
        ("userId", "?userId=%zz"),
        ("event", "?event=" + "a" * 70),
        ("event", "?event=Login.Success"),
        ("event", "?event=login%20success"),
        ("event", "?event="),
        ("event", "?event=register&event=login.success"),
        ("limit", "?limit=" + "9" * 30),
        ("limit", "?limit=10&limit=20"),
        ("limit", "?limit=%31%zz"),
        ("limit", "?limit="),
        ("limit", "?limit=+5"),
        ("before", "?before=" + "9" * 30),
        ("before", "?before=99999999999999999999"),
        ("before", "?before=0"),
        ("before", "?before=1&before=2"),
    )
    for field, q in cases:
        r = stack.get("/auth/admin/audit" + q, token=a.access)
        assert_validation(r, field, what="GET /auth/admin/audit" + q)
    # well-formed filters still work, unknown parameters are ignored
    r = stack.get("/auth/admin/audit?userId=%s&event=register&cachebust=1" % u.id, token=a.access)
    assert r.status == 200 and len(r.json["entries"]) == 1, show(r)
    r = stack.get("/auth/admin/audit?%75serId=" + u.id, token=a.access)
    assert r.status == 200 and all(e["userId"] == u.id for e in r.json["entries"]), show(r)


# -------------------------------------------- 10.2 admin routes: other cases

def test_admin_routes_refuse_non_admin_and_revoked_admin(stack):
    u = User(stack, "nonadm")
    assert_error(stack.get("/auth/admin/audit", token=u.access), 403, "forbidden", "audit as non-admin")
    assert_error(put_roles(stack, None, u.id, ["admin"], token=u.access), 403, "forbidden",
                 "a non-admin granting itself admin")
    assert db_roles(stack, u.id) == "user"
    a = make_admin(stack, "revadm")
    assert stack.post("/auth/logout", token=a.access).status == 204
    assert_bearer_401(stack.get("/auth/admin/audit", token=a.access), "audit with a logged-out admin token")
    assert_bearer_401(put_roles(stack, a, u.id, ["admin"]), "PUT roles with a logged-out admin token")
    # a token whose roles claim was edited does not verify
    hdr, claims, _ = jwt_parts(u.access)
    forged = jwt_hs(hdr, dict(claims, roles=["user", "admin"]), b"not the secret")
    assert_bearer_401(stack.get("/auth/admin/audit", token=forged), "audit with a self-signed admin claim")


def test_admin_role_change_of_unknown_user_404(stack):
    a = make_admin(stack, "unkadm")
    for uid in (str(uuid.uuid4()), "not-a-uuid", "00000000-0000-0000-0000-000000000000", "%2e%2e"):
        r = put_roles(stack, a, uid, ["user"])
        assert r.status == 404, "PUT roles of %s: %s" % (uid, show(r))


def test_admin_roles_array_abuse(stack):
    a = make_admin(stack, "arradm")
    u = User(stack, "arr")
    for what, roles in (("1000 entries", ["r%d" % i for i in range(1000)]),
                        ("17 distinct", ["r%d" % i for i in range(17)]),
                        ("17 duplicates", ["user"] * 17),
                        ("non-string", ["user", 1]),
                        ("null", ["user", None]),
                        ("nested", [["admin"]]),
                        ("object", {"0": "admin"}),
                        ("Unicode look-alike", ["\u0430dmin"]),
                        ("not an array", "admin"),
                        ("missing", None)):
        r = put_roles(stack, a, u.id, roles)
        assert_validation(r, "roles", what="PUT roles, " + what)
    r = put_roles(stack, a, u.id, ["user\u0000admin"])
    assert r.status == 400, "PUT roles, NUL inside a role: %s" % show(r)
    assert db_roles(stack, u.id) == "user", db_roles(stack, u.id)
    r = put_roles(stack, a, u.id, ["user", "editor", "user", "editor"])
    assert r.status == 200 and r.json["roles"] == ["user", "editor"], "duplicates: %s" % show(r)
    assert db_roles(stack, u.id) == "user,editor"
