"""Admin routes through nginx: the first admin made with the CLI
(`fcgi-auth user grant`), the audit listing (newest first, filters, paging,
limits) and the role change (validation, 404, revoking the target's old
tokens, new roles in the next login, an audit row)."""

import time
import uuid

from authlib import (RFC3339_RE, User, assert_access_alive, assert_access_dead,
                     assert_bearer_401, assert_error, assert_validation, audit_rows, grant,
                     jwt_parts, login, show)

STACK_CONFIG = {}
USER_KEYS = {"id", "email", "firstName", "lastName", "roles", "createdAt", "emailVerified", "mfaEnabled"}


def make_admin(stack):
    a = User(stack, "admin")
    grant(stack, a.email, "admin")
    a.pair = login(stack, a.email)
    _, claims, _ = jwt_parts(a.access)
    assert "admin" in claims["roles"], "login after `user grant ... admin`: roles %r" % claims["roles"]
    return a


def audit(stack, token, query=""):
    return stack.get("/auth/admin/audit" + query, token=token)


def test_admin_audit_403_without_admin(stack):
    u = User(stack, "plain")
    assert_error(audit(stack, u.access), 403, "forbidden", "GET /auth/admin/audit as a plain user")
    assert_bearer_401(audit(stack, None), "GET /auth/admin/audit without a token")
    r = stack.request("PUT", "/auth/admin/users/%s/roles" % u.id, {"roles": ["user", "admin"]}, token=u.access)
    assert_error(r, 403, "forbidden", "PUT roles as a plain user (on itself)")
    r = login(stack, u.email)
    assert jwt_parts(r["accessToken"])[1]["roles"] == ["user"]


def test_cli_grant_revokes_old_token_and_next_login_is_admin(stack):
    a = User(stack, "granted")
    old = a.access
    grant(stack, a.email, "admin")
    time.sleep(0.1)     # API.md: another process's revocation within 100 ms
    assert_access_dead(stack, old, "access token issued before `user grant`")
    a.pair = login(stack, a.email)
    claims = jwt_parts(a.access)[1]
    assert sorted(claims["roles"]) == ["admin", "user"], claims["roles"]
    r = audit(stack, a.access)
    assert r.status == 200, "GET /auth/admin/audit as admin: %s" % show(r)
    r = stack.get("/auth/me", token=a.access)
    assert sorted(r.json["roles"]) == ["admin", "user"], show(r)


def test_admin_audit_list_newest_first_and_shape(stack):
    a = make_admin(stack)
    r = audit(stack, a.access)
    assert r.status == 200, show(r)
    assert "no-store" in r.headers.get("cache-control", ""), r.headers
    assert isinstance(r.json, dict) and isinstance(r.json.get("entries"), list), show(r)
    entries = r.json["entries"]
    assert 0 < len(entries) <= 50, "default limit 50: got %d" % len(entries)
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids), "not newest first: %r" % ids
    want = {"id", "occurredAt", "event", "userId", "email", "sessionId", "ip", "userAgent", "success", "detail"}
    for e in entries:
        assert want <= set(e), "audit entry keys %s, want at least %s" % (sorted(e), sorted(want))
        assert RFC3339_RE.match(e["occurredAt"]), e
        assert isinstance(e["success"], bool) and isinstance(e["detail"], dict), e
    # the newest entry is the admin's own login
    assert entries[0]["event"] == "login.success" and entries[0]["userId"] == a.id, entries[0]
    # it matches the table
    top = stack.psql_value("SELECT max(id) FROM auth.audit_log")
    assert str(ids[0]) == top, "newest id %s, table max %s" % (ids[0], top)


def test_admin_audit_filters_and_paging(stack):
    a = make_admin(stack)
    u = User(stack, "target")
    for _ in range(4):
        login(stack, u.email)
    # userId
    r = audit(stack, a.access, "?userId=" + u.id)
    assert r.status == 200, show(r)
    es = r.json["entries"]
    assert es and all(e["userId"] == u.id for e in es), es
    assert {e["event"] for e in es} == {"register", "login.success"}, {e["event"] for e in es}
    assert len(es) == 6, "want 1 register + 5 logins, got %d" % len(es)
    # event
    r = audit(stack, a.access, "?event=login.success&userId=" + u.id)
    es = r.json["entries"]
    assert len(es) == 5 and all(e["event"] == "login.success" for e in es), es
    r = audit(stack, a.access, "?event=register")
    assert r.json["entries"] and all(e["event"] == "register" for e in r.json["entries"]), show(r)
    r = audit(stack, a.access, "?event=no.such.event")
    assert r.status == 200 and r.json["entries"] == [], show(r)
    # limit
    r = audit(stack, a.access, "?limit=2")
    assert r.status == 200 and len(r.json["entries"]) == 2, show(r)
    r = audit(stack, a.access, "?limit=500")
    assert r.status == 200, show(r)
    # paging with before
    all_ids = [e["id"] for e in audit(stack, a.access, "?userId=%s&limit=500" % u.id).json["entries"]]
    p1 = audit(stack, a.access, "?userId=%s&limit=4" % u.id).json["entries"]
    p2 = audit(stack, a.access, "?userId=%s&limit=4&before=%d" % (u.id, p1[-1]["id"])).json["entries"]
    got = [e["id"] for e in p1 + p2]
    assert got == all_ids, "paging with before: %r, want %r" % (got, all_ids)
    assert all(e["id"] < p1[-1]["id"] for e in p2), p2
    r = audit(stack, a.access, "?before=1")
    assert r.status == 200 and r.json["entries"] == [], show(r)


def test_admin_audit_bad_query_400(stack):
    a = make_admin(stack)
    for q, field in (("?limit=501", "limit"), ("?limit=0", "limit"), ("?limit=-1", "limit"),
                     ("?limit=abc", "limit"), ("?before=xyz", "before"), ("?userId=not-a-uuid", "userId")):
        assert_validation(audit(stack, a.access, q), field, what="GET /auth/admin/audit" + q)


def test_admin_set_roles(stack):
    a = make_admin(stack)
    u = User(stack, "editor", firstName="Ed")
    old = u.access
    r = stack.request("PUT", "/auth/admin/users/%s/roles" % u.id, {"roles": ["user", "editor"]}, token=a.access)
    assert r.status == 200, "PUT roles: want 200, got %s" % show(r)
    assert set(r.json) == USER_KEYS, "user keys %s" % sorted(r.json)
    assert r.json["id"] == u.id and r.json["email"] == u.email and r.json["firstName"] == "Ed", r.json
    assert r.json["roles"] == ["user", "editor"], r.json
    assert_access_dead(stack, old, "target's access token issued before the role change")
    pair = login(stack, u.email)
    assert jwt_parts(pair["accessToken"])[1]["roles"] == ["user", "editor"], jwt_parts(pair["accessToken"])[1]
    assert_access_alive(stack, pair["accessToken"], "target's token after the role change")
    r = stack.get("/auth/verify?role=editor", token=pair["accessToken"])
    assert r.status == 204, "verify ?role=editor with the new role: %s" % show(r)
    # the admin's own token is untouched
    assert_access_alive(stack, a.access, "the admin's token")
    rows = audit_rows(stack, "event = 'role.change' AND user_id = %s", (u.id,))
    assert len(rows) == 1, "role.change rows: %r" % rows
    d = rows[0]["detail"]
    assert d.get("before") == ["user"] and d.get("after") == ["user", "editor"], d
    # and the listing shows it
    r = stack.get("/auth/admin/audit?event=role.change&userId=" + u.id, token=a.access)
    assert len(r.json["entries"]) == 1, show(r)


def test_admin_role_removal_revokes_token_issued_since_last_change(stack):
    # Two role changes within one second, a login between them: the token
    # of that login was issued before the second change, so it must die
    # with it (API.md: "revokes the user's access tokens issued before").
    a = make_admin(stack)
    u = User(stack, "unrole")
    r = stack.request("PUT", "/auth/admin/users/%s/roles" % u.id, {"roles": ["user", "editor"]}, token=a.access)
    assert r.status == 200, show(r)
    pair = login(stack, u.email)
    assert jwt_parts(pair["accessToken"])[1]["roles"] == ["user", "editor"]
    r = stack.request("PUT", "/auth/admin/users/%s/roles" % u.id, {"roles": ["user"]}, token=a.access)
    assert r.status == 200 and r.json["roles"] == ["user"], show(r)
    assert_access_dead(stack, pair["accessToken"],
                       "token carrying the removed role 'editor' (issued between two role changes in one second)")
    r = stack.get("/auth/verify?role=editor", token=pair["accessToken"])
    assert r.status == 401, "verify ?role=editor with a token from before the removal: %s" % show(r)
    fresh = login(stack, u.email)["accessToken"]
    assert jwt_parts(fresh)[1]["roles"] == ["user"]
    assert_access_alive(stack, fresh, "login after the removal")


def test_admin_set_roles_bad_role_400(stack):
    a = make_admin(stack)
    u = User(stack, "badrole")
    for what, body in (("space and capitals", {"roles": ["Bad Role"]}),
                       ("capital", {"roles": ["Admin"]}),
                       ("leading digit", {"roles": ["1abc"]}),
                       ("empty name", {"roles": [""]}),
                       ("33 chars", {"roles": ["a" * 33]}),
                       ("CR/LF", {"roles": ["user\r\nx-injected"]}),
                       ("comma", {"roles": ["user,admin"]}),
                       ("not a list", {"roles": "admin"}),
                       ("number in list", {"roles": [1]}),
                       ("missing", {})):
        r = stack.request("PUT", "/auth/admin/users/%s/roles" % u.id, body, token=a.access)
        assert_validation(r, "roles", what="PUT roles, " + what)
    r = stack.request("PUT", "/auth/admin/users/%s/roles" % u.id, {"roles": ["a" * 32, "x-1_y"]}, token=a.access)
    assert r.status == 200, "roles of 32 chars and [a-z0-9_-]: %s" % show(r)
    assert_access_alive(stack, login(stack, u.email)["accessToken"])


def test_admin_set_roles_unknown_user_404(stack):
    a = make_admin(stack)
    for uid in (str(uuid.uuid4()), "not-a-uuid"):
        r = stack.request("PUT", "/auth/admin/users/%s/roles" % uid, {"roles": ["user"]}, token=a.access)
        assert_error(r, 404, "not_found", "PUT roles of user %s" % uid)
