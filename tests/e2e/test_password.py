"""POST /auth/password: checks the current password, validates the new one,
revokes every other session and every access token issued before (the
caller's too), keeps the caller's refresh token, and records it in the audit
log and the outbox."""

import time

from authlib import (PASSWORD, User, assert_access_alive, assert_access_dead,
                     assert_bearer_401, assert_error, assert_refresh_dead,
                     assert_token_pair, assert_validation, audit_rows, login, login_raw,
                     outbox_rows, refresh, show, wait_for)

STACK_CONFIG = {}
NEW = "brand new passphrase 42"


def change(stack, token, current, new):
    return stack.post("/auth/password", {"currentPassword": current, "newPassword": new}, token=token)


def test_password_wrong_current_401(stack):
    u = User(stack, "pw-wrong")
    r = change(stack, u.access, PASSWORD + "x", NEW)
    assert_error(r, 401, "invalid_credentials", "password change with a wrong currentPassword")
    assert_access_alive(stack, u.access, "token after a refused password change")
    login(stack, u.email, PASSWORD)
    assert login_raw(stack, u.email, NEW).status == 401


def test_password_new_too_short_400(stack):
    u = User(stack, "pw-short")
    assert_validation(change(stack, u.access, PASSWORD, "1234567"), "newPassword",
                      what="newPassword of 7 bytes")
    assert_validation(change(stack, u.access, PASSWORD, "p" * 1025), "newPassword",
                      what="newPassword of 1025 bytes")
    assert_validation(stack.post("/auth/password", {"currentPassword": PASSWORD}, token=u.access),
                      "newPassword", what="no newPassword")
    assert_validation(stack.post("/auth/password", {"newPassword": NEW}, token=u.access),
                      "currentPassword", what="no currentPassword")
    assert_bearer_401(stack.post("/auth/password", {"currentPassword": PASSWORD, "newPassword": NEW}),
                      "password change without a token")
    login(stack, u.email, PASSWORD)


def test_password_change_204_revokes_others_keeps_current_refresh(stack):
    u = User(stack, "pw-ok")
    other = u.login(ua="other-device")
    time.sleep(0.01)
    r = change(stack, u.access, PASSWORD, NEW)
    assert r.status == 204, "password change: want 204, got %s" % show(r)
    # every access token issued before is rejected, the caller's too
    assert_access_dead(stack, u.access, "the caller's access token after password change")
    assert_access_dead(stack, other["accessToken"], "another session's access token after password change")
    # other sessions are revoked; the caller's session lives on
    assert_refresh_dead(stack, other["refreshToken"], "another session's refresh token after password change")
    p = assert_token_pair(refresh(stack, u.refresh_token), "the caller's refresh token after password change")
    assert_access_alive(stack, p["accessToken"], "access token refreshed after password change")
    # the passwords
    pair = login(stack, u.email, NEW)
    assert_access_alive(stack, pair["accessToken"], "login with the new password")
    assert_error(login_raw(stack, u.email, PASSWORD), 401, "invalid_credentials", "login with the old password")

    rows = audit_rows(stack, "event = 'password.change' AND user_id = %s", (u.id,))
    assert len(rows) == 1 and rows[0]["success"] is True, "password.change rows: %r" % rows
    for t in stack.psql("SELECT a::text FROM auth.audit_log a WHERE user_id = '%s'" % u.id):
        assert NEW not in t[0] and PASSWORD not in t[0], "audit row holds a password: %s" % t[0][:300]
    ev = wait_for(lambda: outbox_rows(stack, "user.password_changed", "payload->'data'->>'userId' = %s", (u.id,)))
    assert ev and len(ev) == 1, "outbox user.password_changed: %r" % ev
    p = ev[0]["payload"]
    assert p.get("pattern") == "user.password_changed" and set(p) == {"pattern", "data"}, p
    for k in ("eventId", "userId", "at"):
        assert k in p["data"], p
    assert NEW not in str(p) and PASSWORD not in str(p)


def test_second_password_change_revokes_token_refreshed_in_between(stack):
    # change, refresh the caller's session, change again (same second): the
    # access token from that refresh was issued before the second change
    u = User(stack, "pw-twice")
    assert change(stack, u.access, PASSWORD, NEW).status == 204
    p1 = assert_token_pair(refresh(stack, u.refresh_token), "refresh after the first change")
    assert_access_alive(stack, p1["accessToken"], "token refreshed after the first change")
    r = change(stack, p1["accessToken"], NEW, NEW + "2")
    assert r.status == 204, show(r)
    assert_access_dead(stack, p1["accessToken"],
                       "access token issued between two password changes in one second")
    p2 = assert_token_pair(refresh(stack, p1["refreshToken"]), "the caller's refresh after the second change")
    assert_access_alive(stack, p2["accessToken"])
