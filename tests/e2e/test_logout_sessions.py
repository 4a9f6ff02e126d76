"""Logout (Bearer or refresh token), logout-all, and the per-device session
list: what each revokes, that a revoked token is rejected by every route at
once, that unknown tokens change nothing, and the session cap."""

import os
import time
import uuid

from authlib import (RFC3339_RE, UUID_RE, User, assert_access_alive, assert_access_dead,
                     assert_bearer_401, assert_error, assert_refresh_dead, assert_token_pair,
                     audit_rows, b64u, b64u_dec, jwt_parts, me, outbox_rows, refresh, sessions,
                     show, wait_for)

STACK_CONFIG = {}
SESSION_KEYS = {"id", "createdAt", "lastUsedAt", "ip", "userAgent", "current"}


def sid_of(access):
    return jwt_parts(access)[1]["sid"]


# ------------------------------------------------------------------- logout

def test_logout_bearer_204_revokes_access_and_refresh(stack):
    u = User(stack, "logout")
    other = u.login()
    r = stack.post("/auth/logout", token=u.access)
    assert r.status == 204, "POST /auth/logout with Bearer: want 204, got %s" % show(r)
    assert r.body == b"", "204 with a body: %r" % r.body[:100]
    assert_access_dead(stack, u.access, "access token after logout")
    assert_refresh_dead(stack, u.refresh_token, "refresh token of the logged-out session")
    # a second logout with the same token is a 401
    assert_bearer_401(stack.post("/auth/logout", token=u.access), "logout twice")
    # the other session is untouched
    assert_access_alive(stack, other["accessToken"], "other session after logout")
    assert refresh(stack, other["refreshToken"]).status == 200
    rows = audit_rows(stack, "event = 'logout' AND user_id = %s", (u.id,))
    assert len(rows) == 1 and rows[0]["session_id"] == sid_of(u.access), rows
    ev = wait_for(lambda: outbox_rows(stack, "user.logged_out", "payload->'data'->>'userId' = %s", (u.id,)))
    assert ev and ev[0]["payload"]["data"].get("sessionId") == sid_of(u.access), ev


def test_logout_with_refresh_token_only(stack):
    u = User(stack, "logout-rt")
    r = stack.post("/auth/logout", {"refreshToken": u.refresh_token})
    assert r.status == 204, "logout with {refreshToken}: want 204, got %s" % show(r)
    assert_refresh_dead(stack, u.refresh_token, "refresh token after logout by refresh token")
    assert_access_dead(stack, u.access, "access token of a session logged out by refresh token")
    r = stack.post("/auth/logout", {"refreshToken": u.refresh_token})
    assert_error(r, 401, "invalid_token", "logout with the same refresh token again")


def test_logout_with_expired_access_token_via_refresh_token(stack):
    stack.start_app(access_ttl=1, jwt_leeway=0)
    u = User(stack, "logout-exp")
    time.sleep(2.2)
    assert_bearer_401(me(stack, u.access), "expired access token")
    r = stack.post("/auth/logout", {"refreshToken": u.refresh_token})
    assert r.status == 204, show(r)
    assert_refresh_dead(stack, u.refresh_token)


def test_logout_random_refresh_token_401_changes_nothing(stack):
    u = User(stack, "logout-rand")
    r = stack.post("/auth/logout", {"refreshToken": b64u(os.urandom(64))})
    assert_error(r, 401, "invalid_token", "logout with a random refresh token")
    raw = b64u_dec(u.refresh_token)
    forged = b64u(raw[:32] + os.urandom(len(raw) - 32))
    r = stack.post("/auth/logout", {"refreshToken": forged})
    assert_error(r, 401, "invalid_token", "logout with the real session id but a random secret")
    r = stack.post("/auth/logout", {"refreshToken": "short"})
    assert_error(r, 401, "invalid_token", "logout with a malformed refresh token")
    assert_access_alive(stack, u.access, "access token after logouts with unknown tokens")
    assert_token_pair(refresh(stack, u.refresh_token), "refresh after logouts with unknown tokens")


def test_logout_without_any_token_401(stack):
    r = stack.post("/auth/logout", {})
    assert r.status in (400, 401), show(r)
    r = stack.post("/auth/logout", token="not.a.jwt")
    assert_bearer_401(r, "logout with a garbage bearer")


def test_logout_all_revokes_every_session(stack):
    u = User(stack, "all")
    p2 = u.login(ua="device-2")
    p3 = u.login(ua="device-3")
    p3r = refresh(stack, p3["refreshToken"]).json
    r = stack.post("/auth/logout-all", token=p2["accessToken"])
    assert r.status == 204, "POST /auth/logout-all: want 204, got %s" % show(r)
    for what, pair in (("session 1", u.pair), ("session 2 (caller)", p2), ("session 3 refreshed", p3r)):
        assert_access_dead(stack, pair["accessToken"], "%s access after logout-all" % what)
        assert_refresh_dead(stack, pair["refreshToken"], "%s refresh after logout-all" % what)
    assert_access_dead(stack, p3["accessToken"], "session 3 first access after logout-all")
    rows = audit_rows(stack, "event = 'logout_all' AND user_id = %s", (u.id,))
    assert len(rows) == 1, rows


def test_login_right_after_logout_all_is_valid(stack):
    u = User(stack, "same-second")
    for i in range(3):          # same second as the cut-off, several times
        r = stack.post("/auth/logout-all", token=u.access)
        assert r.status == 204, show(r)
        u.pair = u.login()
        assert_access_alive(stack, u.access, "login right after logout-all (round %d)" % i)
        r = refresh(stack, u.refresh_token)
        assert r.status == 200, "refresh right after logout-all: %s" % show(r)
        u.pair = r.json
        assert_access_alive(stack, u.access, "refreshed right after logout-all (round %d)" % i)


def test_generation_never_reused_after_its_key_expired(stack):
    """The per-user revocation generation lives in a key with a TTL.  When
    it expires, the next cut-off must still be above every generation live
    tokens carry, or those tokens would survive it."""
    u = User(stack, "gen-expiry")
    assert stack.post("/auth/logout-all", token=u.access).status == 204
    u.pair = u.login()                        # carries the raised generation
    assert_access_alive(stack, u.access, "token issued after the first cut-off")
    key = "fa:{%s}:cutoff" % u.id
    g1 = int(stack.redis_cli("GET", key) or 0)
    assert g1 > 0, "no generation key %s" % key
    stack.redis_cli("DEL", key)               # as if it had expired
    assert stack.post("/auth/logout-all", token=u.access).status == 204
    g2 = int(stack.redis_cli("GET", key) or 0)
    assert g2 > g1, "generation went back down after its key expired: %d -> %d" % (g1, g2)
    assert_access_dead(stack, u.access, "token of the old generation after the key expired")


def test_logout_all_does_not_touch_other_users(stack):
    a = User(stack, "a")
    b = User(stack, "b")
    assert stack.post("/auth/logout-all", token=a.access).status == 204
    assert_access_alive(stack, b.access, "other user's token after logout-all")
    assert refresh(stack, b.refresh_token).status == 200


# ----------------------------------------------------------------- sessions

def test_sessions_list_shape_and_current(stack):
    u = User(stack, "list")
    p2 = u.login(ua="agent-two/2.0")
    lst = sessions(stack, p2["accessToken"])
    assert len(lst) == 2, "want 2 sessions, got %r" % lst
    for s in lst:
        assert set(s) == SESSION_KEYS, "session keys %s, want %s" % (sorted(s), sorted(SESSION_KEYS))
        assert UUID_RE.match(s["id"]), s
        assert RFC3339_RE.match(s["createdAt"]) and RFC3339_RE.match(s["lastUsedAt"]), s
        assert s["ip"] == "127.0.0.1", s
        assert isinstance(s["current"], bool), s
    cur = [s for s in lst if s["current"]]
    assert len(cur) == 1, "want exactly one current session: %r" % lst
    assert cur[0]["id"] == sid_of(p2["accessToken"]), "current is %s, token sid %s" % (
        cur[0]["id"], sid_of(p2["accessToken"]))
    assert cur[0]["userAgent"] == "agent-two/2.0", cur[0]
    assert {s["id"] for s in lst} == {sid_of(u.access), sid_of(p2["accessToken"])}
    # from the other token, the other one is current
    lst1 = sessions(stack, u.access)
    assert [s["id"] for s in lst1 if s["current"]] == [sid_of(u.access)], lst1
    assert_bearer_401(stack.get("/auth/sessions"), "GET /auth/sessions without a token")


def test_sessions_last_used_moves_on_refresh(stack):
    u = User(stack, "lastused")
    before = [s for s in sessions(stack, u.access) if s["current"]][0]
    time.sleep(1.1)
    p = refresh(stack, u.refresh_token).json
    after = [s for s in sessions(stack, p["accessToken"]) if s["current"]][0]
    assert after["id"] == before["id"]
    assert after["lastUsedAt"] > before["lastUsedAt"], (before, after)
    assert after["createdAt"] == before["createdAt"], (before, after)


def test_delete_own_other_session_204_revokes_it(stack):
    u = User(stack, "del")
    p2 = u.login()
    sid1 = sid_of(u.access)
    r = stack.request("DELETE", "/auth/sessions/" + sid1, token=p2["accessToken"])
    assert r.status == 204, "DELETE own other session: want 204, got %s" % show(r)
    assert_access_dead(stack, u.access, "access token of a deleted session")
    assert_refresh_dead(stack, u.refresh_token, "refresh token of a deleted session")
    assert_access_alive(stack, p2["accessToken"], "the caller's session")
    assert [s["id"] for s in sessions(stack, p2["accessToken"])] == [sid_of(p2["accessToken"])]
    rows = audit_rows(stack, "event = 'session.revoke' AND user_id = %s", (u.id,))
    assert len(rows) == 1 and rows[0]["session_id"] == sid1, rows
    # deleting it again: not the caller's (live) session any more
    r = stack.request("DELETE", "/auth/sessions/" + sid1, token=p2["accessToken"])
    assert_error(r, 404, "not_found", "DELETE an already revoked session")


def test_delete_another_users_session_404(stack):
    a = User(stack, "victim")
    b = User(stack, "attacker")
    r = stack.request("DELETE", "/auth/sessions/" + sid_of(a.access), token=b.access)
    assert_error(r, 404, "not_found", "DELETE another user's session")
    assert_access_alive(stack, a.access, "victim's session after a foreign DELETE")
    assert refresh(stack, a.refresh_token).status == 200


def test_delete_session_bad_ids_404(stack):
    u = User(stack, "badid")
    for sid in ("not-a-uuid", "12345", str(uuid.uuid4()), "%27%20OR%201%3D1--",
                sid_of(u.access).upper() + "0"):
        r = stack.request("DELETE", "/auth/sessions/" + sid, token=u.access)
        assert_error(r, 404, "not_found", "DELETE /auth/sessions/%s" % sid)
    assert_access_alive(stack, u.access)
    assert_bearer_401(stack.request("DELETE", "/auth/sessions/" + sid_of(u.access)),
                      "DELETE a session without a token")


def test_delete_current_session(stack):
    u = User(stack, "delcur")
    r = stack.request("DELETE", "/auth/sessions/" + sid_of(u.access), token=u.access)
    assert r.status == 204, show(r)
    assert_access_dead(stack, u.access, "access token of the session it deleted itself")
    assert_refresh_dead(stack, u.refresh_token)


def test_max_sessions_per_user_revokes_oldest(stack):
    stack.start_app(max_sessions_per_user=3)
    u = User(stack, "cap")          # session 1
    pairs = [u.pair]
    for i in range(3):              # sessions 2, 3, 4
        time.sleep(0.05)
        pairs.append(u.login(ua="dev-%d" % (i + 2)))
    assert_refresh_dead(stack, pairs[0]["refreshToken"], "the oldest session past max_sessions_per_user=3")
    assert_access_dead(stack, pairs[0]["accessToken"], "the oldest session's access token")
    lst = sessions(stack, pairs[3]["accessToken"])
    assert len(lst) == 3, "want 3 sessions, got %d: %r" % (len(lst), lst)
    assert {s["id"] for s in lst} == {sid_of(p["accessToken"]) for p in pairs[1:]}, lst
    for p in pairs[1:]:
        assert refresh(stack, p["refreshToken"]).status == 200
