"""Refresh tokens through nginx against real Redis: rotation, reuse
detection revoking the whole session, unknown tokens changing nothing, the
grace window for honest races (same child token, concurrent refreshes
rotating once), audit/outbox rows, and expiry of both token kinds."""

import json
import os
import time

from authlib import (User, assert_access_alive, assert_access_dead, assert_error,
                     assert_refresh_dead, assert_token_pair, assert_validation, audit_rows,
                     b64u, b64u_dec, jwt_parts, me, outbox_rows, parallel, refresh,
                     show, verify, wait_for)

STACK_CONFIG = {}


def rotate(stack, rt, what="refresh", **ttls):
    r = refresh(stack, rt)
    return assert_token_pair(r, what, **ttls)


# ----------------------------------------------------------------- rotation

def test_refresh_rotates_and_returns_new_pair(stack):
    u = User(stack, "rot")
    _, c0, _ = jwt_parts(u.access)
    p1 = rotate(stack, u.refresh_token)
    assert p1["refreshToken"] != u.refresh_token, "refresh did not rotate the refresh token"
    _, c1, _ = jwt_parts(p1["accessToken"])
    assert c1["sid"] == c0["sid"], "refresh changed the session: %s -> %s" % (c0["sid"], c1["sid"])
    assert c1["jti"] != c0["jti"] and c1["sub"] == u.id, (c0, c1)
    assert c1["exp"] == c1["iat"] + 900, c1
    assert_access_alive(stack, p1["accessToken"], "refreshed access token")
    # the chain goes on
    p2 = rotate(stack, p1["refreshToken"])
    assert p2["refreshToken"] not in (u.refresh_token, p1["refreshToken"])
    assert_access_alive(stack, p2["accessToken"])


def test_refresh_reuse_after_grace_revokes_session(stack):
    stack.start_app(refresh_reuse_grace=1)
    u = User(stack, "reuse")
    other = u.login()               # a second device of the same user
    _, c0, _ = jwt_parts(u.access)
    p1 = rotate(stack, u.refresh_token)
    time.sleep(1.6)                 # past the grace window
    r = refresh(stack, u.refresh_token)
    assert_error(r, 401, "invalid_token", "reused refresh token after the grace window")
    assert_refresh_dead(stack, p1["refreshToken"], "current refresh token of a session with reuse")
    assert_access_dead(stack, p1["accessToken"], "access token of the reused session (after refresh)")
    assert_access_dead(stack, u.access, "access token of the reused session (from login)")
    # the other session of the user is untouched
    assert_access_alive(stack, other["accessToken"], "other session's access token")
    rotate(stack, other["refreshToken"], "other session's refresh")

    rows = audit_rows(stack, "event = 'refresh.reuse_detected' AND user_id = %s", (u.id,))
    assert len(rows) == 1, "refresh.reuse_detected rows: %r" % rows
    assert rows[0]["session_id"] == c0["sid"] and rows[0]["success"] is False, rows[0]
    ev = wait_for(lambda: outbox_rows(stack, "token.reuse_detected",
                                      "payload->'data'->>'userId' = %s", (u.id,)))
    assert ev and len(ev) == 1, "outbox token.reuse_detected rows: %r" % ev
    p = ev[0]["payload"]
    assert p.get("pattern") == "token.reuse_detected" and "id" not in p, p
    d = p["data"]
    for k in ("eventId", "userId", "sessionId", "ip", "at"):
        assert k in d, "token.reuse_detected data lacks %r: %r" % (k, d)
    assert d["sessionId"] == c0["sid"] and d["ip"] == "127.0.0.1", d


def test_refresh_reuse_with_grace_off_is_immediate(stack):
    stack.start_app(refresh_reuse_grace=0)
    u = User(stack, "nograce")
    p1 = rotate(stack, u.refresh_token)
    assert_error(refresh(stack, u.refresh_token), 401, "invalid_token", "parent, grace 0")
    assert_refresh_dead(stack, p1["refreshToken"], "child after reuse, grace 0")
    assert_access_dead(stack, p1["accessToken"], "access token after reuse, grace 0")


def test_refresh_random_token_401_changes_nothing(stack):
    u = User(stack, "random")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # random 86 chars, with a byte length that decodes (64 bytes)
    random_tok = b64u(os.urandom(64))
    assert len(random_tok) == 86
    r = refresh(stack, random_tok)
    assert_error(r, 401, "invalid_token", "random 86-char refresh token")
    # same user and session as the real token, random secret part: unknown too
    raw = b64u_dec(u.refresh_token)
    forged = b64u(raw[:32] + os.urandom(len(raw) - 32))
    assert len(forged) == 86 and forged != u.refresh_token
    r = refresh(stack, forged)
    assert_error(r, 401, "invalid_token", "real user+session with random secret part")
    r = refresh(stack, "".join(alphabet[b % 64] for b in os.urandom(86)))
    assert r.status == 401, show(r)
    # nothing was revoked: the real session's tokens still work
    assert_access_alive(stack, u.access, "access token after unknown refresh tokens")
    rotate(stack, u.refresh_token, "the real refresh token after unknown ones")
    rows = audit_rows(stack, "event = 'refresh.reuse_detected' AND user_id = %s", (u.id,))
    assert rows == [], "an unknown token was taken as reuse: %r" % rows


def test_refresh_malformed_token_401(stack):
    u = User(stack, "malformed")
    tok = u.refresh_token
    cases = [
        ("short", "abc"),
        ("empty", ""),
        ("85 chars", tok[:85]),
        ("87 chars", tok + "A"),
        ("padding", tok[:84] + "=="),
        ("standard base64 alphabet", tok[:84] + "+/"),
        ("whitespace", " " + tok),
        ("a JWT", u.access),
        ("8 KiB", "A" * 8192),
        ("non-ASCII", tok[:84] + "\u00e9\u00e9"),
    ]
    for what, t in cases:
        assert_error(refresh(stack, t), 401, "invalid_token", "refresh with %s token" % what)
    assert_validation(stack.post("/auth/refresh", {}), "refreshToken", what="refresh without refreshToken")
    assert_validation(stack.post("/auth/refresh", {"refreshToken": 42}), "refreshToken",
                      what="refresh with a number")
    assert_error(stack.post("/auth/refresh", raw_body=b"{"), 400, "invalid_json")
    rotate(stack, tok, "the real refresh token after malformed ones")


# -------------------------------------------------------------------- grace

def test_grace_parent_again_returns_same_current_token(stack):
    stack.start_app(refresh_reuse_grace=10)
    u = User(stack, "grace")
    p1 = rotate(stack, u.refresh_token)
    p1b = rotate(stack, u.refresh_token, "parent again within grace")
    assert p1b["refreshToken"] == p1["refreshToken"], \
        "grace answer carries another refresh token (rotated twice)"
    _, c1, _ = jwt_parts(p1["accessToken"])
    _, c1b, _ = jwt_parts(p1b["accessToken"])
    assert c1b["jti"] != c1["jti"] and c1b["sid"] == c1["sid"], (c1, c1b)
    assert_access_alive(stack, p1b["accessToken"], "access token of the grace answer")
    assert_access_alive(stack, p1["accessToken"], "access token of the first refresh")
    # a third time, still the same
    p1c = rotate(stack, u.refresh_token, "parent a third time within grace")
    assert p1c["refreshToken"] == p1["refreshToken"]
    # the child is current and rotates normally
    p2 = rotate(stack, p1["refreshToken"], "child after grace answers")
    assert p2["refreshToken"] != p1["refreshToken"]
    rows = audit_rows(stack, "event = 'refresh.reuse_detected' AND user_id = %s", (u.id,))
    assert rows == [], "grace answers were audited as reuse: %r" % rows


def test_grace_ends_once_child_rotated(stack):
    stack.start_app(refresh_reuse_grace=10)
    u = User(stack, "grace2")
    p1 = rotate(stack, u.refresh_token)         # A -> B
    p2 = rotate(stack, p1["refreshToken"])      # B -> C
    # B, the parent of C, is within its window: same C back
    p2b = rotate(stack, p1["refreshToken"], "parent of the current token within grace")
    assert p2b["refreshToken"] == p2["refreshToken"]
    # A's child B has been rotated away: presenting A is reuse
    assert_error(refresh(stack, u.refresh_token), 401, "invalid_token", "grandparent within grace window")
    assert_refresh_dead(stack, p2["refreshToken"], "current token after grandparent reuse")
    assert_access_dead(stack, p2["accessToken"], "access token after grandparent reuse")
    rows = audit_rows(stack, "event = 'refresh.reuse_detected' AND user_id = %s", (u.id,))
    assert len(rows) == 1, rows


def test_grace_window_expires(stack):
    stack.start_app(refresh_reuse_grace=2)
    u = User(stack, "grace3")
    p1 = rotate(stack, u.refresh_token)
    p1b = rotate(stack, u.refresh_token, "parent within a 2 s window")
    assert p1b["refreshToken"] == p1["refreshToken"]
    time.sleep(2.6)
    assert_error(refresh(stack, u.refresh_token), 401, "invalid_token", "parent 2.6 s after, grace 2")
    assert_refresh_dead(stack, p1["refreshToken"], "child after reuse past the window")


def test_concurrent_refresh_with_grace_same_new_token(stack):
    stack.start_app(refresh_reuse_grace=10)
    u = User(stack, "conc")
    res = parallel(20, lambda i: refresh(stack, u.refresh_token))
    errs = [r for r in res if isinstance(r, Exception)]
    assert not errs, "requests failed: %r" % errs[:3]
    statuses = sorted(r.status for r in res)
    assert statuses == [200] * 20, "20 concurrent refreshes with grace 10: statuses %s; first non-200: %s" % (
        statuses, next((show(r) for r in res if r.status != 200), ""))
    tokens = {r.json["refreshToken"] for r in res}
    assert len(tokens) == 1, "20 concurrent refreshes gave %d different refresh tokens (rotated more than once)" \
        % len(tokens)
    new = tokens.pop()
    assert new != u.refresh_token
    jtis = {jwt_parts(r.json["accessToken"])[1]["jti"] for r in res}
    assert len(jtis) == 20, "access tokens share a jti"
    for r in res[:3]:
        assert_access_alive(stack, r.json["accessToken"], "access token of a concurrent refresh")
    rotate(stack, new, "the one new refresh token")


def test_concurrent_refresh_without_grace_exactly_one_wins(stack):
    stack.start_app(refresh_reuse_grace=0)
    u = User(stack, "conc0")
    res = parallel(20, lambda i: refresh(stack, u.refresh_token))
    errs = [r for r in res if isinstance(r, Exception)]
    assert not errs, "requests failed: %r" % errs[:3]
    ok = [r for r in res if r.status == 200]
    assert len(ok) == 1, "20 concurrent refreshes with grace 0: %d answered 200 (want exactly 1); statuses %s" % (
        len(ok), sorted(r.status for r in res))
    for r in res:
        if r.status != 200:
            assert_error(r, 401, "invalid_token", "a losing concurrent refresh")


def test_refresh_audit_rows(stack):
    u = User(stack, "raudit")
    _, c0, _ = jwt_parts(u.access)
    p1 = rotate(stack, u.refresh_token)
    rows = audit_rows(stack, "event = 'refresh' AND user_id = %s", (u.id,))
    assert len(rows) == 1, "refresh rows: %r" % rows
    assert rows[0]["success"] is True and rows[0]["session_id"] == c0["sid"], rows[0]
    assert rows[0]["ip"] == "127.0.0.1", rows[0]
    for t in stack.psql("SELECT a::text FROM auth.audit_log a WHERE user_id = %s" % ("'" + u.id + "'")):
        for s in (u.refresh_token, p1["refreshToken"], p1["accessToken"]):
            assert s not in t[0], "audit row holds a token: %s" % t[0][:200]



def test_concurrent_refreshes_each_own_user_and_audit_row(stack):
    """49 refreshes at once (six sessions of eight users, one token sent
    twice), gathered into batches by the group commit: each 200 carries its
    own user and session and has exactly one refresh audit row with its
    user, session, ip, user agent and detail (grace for the second of the
    twice-sent token); a refused one (user disabled before or while they
    run, user gone) has none."""
    stack.start_app(trusted_proxies="127.0.0.1", real_ip_header="X-Real-IP",
                    refresh_reuse_grace=10)
    users = [User(stack, "batch%d" % k) for k in range(8)]
    jobs = []                       # (user, session id, refresh token)
    for u in users:
        for s in range(6):
            pair = u.pair if s == 0 else u.login()
            jobs.append((u, jwt_parts(pair["accessToken"])[1]["sid"], pair["refreshToken"]))
    jobs.append(jobs[-1])           # rotated by one, a grace answer for the other
    disabled, gone, racing = users[0], users[1], users[2]
    # in the database only: their sessions still reach the refresh's lookup
    stack.psql("UPDATE auth.users SET disabled = true WHERE id = '%s'" % disabled.id)
    stack.psql("DELETE FROM auth.users WHERE id = '%s'" % gone.id)

    def ip(i):
        return "10.7.%d.%d" % (i // 200, i % 200 + 1)

    def agent(i):                   # escaped in the batch's JSON, back as sent
        return ("batch-agent/%d" if i % 2 else 'batch "agent" \\ \u00e9\u20ac/%d') % i

    def one(i):
        if i == len(jobs):          # disabled while the others run
            time.sleep(0.02)
            return stack.psql("UPDATE auth.users SET disabled = true WHERE id = '%s'" % racing.id)
        return stack.post("/auth/refresh", {"refreshToken": jobs[i][2]},
                          headers={"User-Agent": agent(i).encode(), "X-Real-IP": ip(i)})
    res = parallel(len(jobs) + 1, one)
    errs = [r for r in res if isinstance(r, Exception)]
    assert not errs, "requests failed: %r" % errs[:3]
    rows = audit_rows(stack, "event = 'refresh' AND session_id IN (%s)"
                      % ", ".join(["%s"] * len(jobs)), tuple(j[1] for j in jobs))
    by_call = {}
    for a in rows:
        by_call.setdefault((a["session_id"], a["ip"], a["user_agent"]), []).append(a)
    ok = 0
    for i, (u, sid, _) in enumerate(jobs):
        r, mine = res[i], by_call.get((sid, ip(i), agent(i)), [])
        if u in (disabled, gone) or (u is racing and r.status != 200):
            assert_error(r, 401, "invalid_token", "refresh %d of a disabled or deleted user" % i)
            assert mine == [], "refused refresh %d has audit rows: %r" % (i, mine)
            continue
        assert r.status == 200, "refresh %d: %s" % (i, show(r))
        _, c, _ = jwt_parts(r.json["accessToken"])
        assert (c["sub"], c["sid"]) == (u.id, sid), \
            "refresh %d answered for %s/%s, want %s/%s" % (i, c["sub"], c["sid"], u.id, sid)
        assert len(mine) == 1, "refresh %d: %d audit rows: %r" % (i, len(mine), mine)
        assert (mine[0]["user_id"], mine[0]["email"], mine[0]["success"]) == (u.id, u.email, True), \
            "refresh %d: %r" % (i, mine[0])
        ok += 1
    assert ok >= 30 and len(rows) == ok, "%d answered 200, %d refresh rows" % (ok, len(rows))
    details = sorted(json.dumps(a["detail"]) for a in rows if a["session_id"] == jobs[-1][1])
    assert details == ['{"grace": true}', "{}"], "the twice-sent token's rows: %s" % details

# ------------------------------------------------------------------- expiry

def test_access_token_expires(stack):
    stack.start_app(access_ttl=2, jwt_leeway=0)
    u = User(stack, "exp")
    assert u.pair["expiresIn"] == 2, u.pair
    assert_access_alive(stack, u.access, "fresh 2-second access token")
    time.sleep(3.2)
    assert_access_dead(stack, u.access, "access token 3.2 s after issue, access_ttl 2, leeway 0")
    # the refresh token is still good and gives a working token
    p = rotate(stack, u.refresh_token, "refresh after the access token expired", access_ttl=2)
    r = me(stack, p["accessToken"])
    assert r.status == 200, show(r)


def test_access_token_leeway(stack):
    stack.start_app(access_ttl=1, jwt_leeway=5)
    u = User(stack, "leeway")
    time.sleep(2.2)
    r = me(stack, u.access)
    assert r.status == 200, "expired 1 s ago, leeway 5: %s" % show(r)
    r = verify(stack, u.access)
    assert r.status == 204, show(r)


def test_refresh_token_expires(stack):
    stack.start_app(refresh_ttl=2, refresh_reuse_grace=0)
    u = User(stack, "rexp")
    assert u.pair["refreshExpiresIn"] == 2, u.pair
    p1 = rotate(stack, u.refresh_token, "refresh within refresh_ttl", refresh_ttl=None)
    time.sleep(3.2)
    assert_error(refresh(stack, p1["refreshToken"]), 401, "invalid_token", "refresh token 3.2 s old, ttl 2")
