"""A login races a change to the account it logs in to.

The login reads the user (password hash, roles) before the Argon2id hash
and takes the revocation generation from Redis after it.  A role change or a
password change that commits while the hash runs cuts off before it
commits, so the login's session gets the new generation: the token must
then carry the roles as they are now, and a password that stopped being the
user's must not open a session (route_login.c, login_recheck).

The stack hashes slowly (about half a second a login) so that the change
lands inside the hash every time; the CLI that changes the password hashes
at the fast test cost through its environment."""

import subprocess
import threading
import time

from authlib import (PASSWORD, User, assert_access_dead, assert_error, grant, jwt_parts, login, login_raw,
                     refresh, show, verify)
from harness import FA_BIN

STACK_CONFIG = {
    "password_opslimit": "4",
    "password_memlimit": str(128 * 1024 * 1024),
}
FAST_HASH = {"FCGI_AUTH_PASSWORD_OPSLIMIT": "1", "FCGI_AUTH_PASSWORD_MEMLIMIT": "8388608"}
IN_THE_HASH = 0.15      # seconds after the login starts: it is hashing then


def login_in_background(stack, email, password):
    out = {}

    def run():
        t0 = time.monotonic()
        out["r"] = login_raw(stack, email, password)
        out["elapsed"] = time.monotonic() - t0
    t = threading.Thread(target=run)
    t.start()
    return t, out


def test_role_removed_during_the_login_hash(stack):
    admin = User(stack, "race-admin", login_now=False)
    grant(stack, admin.email, "admin")
    admin.pair = login(stack, admin.email)
    victim = User(stack, "race-victim", login_now=False)
    grant(stack, victim.email, "admin")
    t, out = login_in_background(stack, victim.email, PASSWORD)
    time.sleep(IN_THE_HASH)
    r = stack.request("PUT", "/auth/admin/users/%s/roles" % victim.id, {"roles": ["user"]},
                      token=admin.access)
    assert r.status == 200, "role change: %s" % show(r)
    t.join(30)
    r = out["r"]
    assert out["elapsed"] > IN_THE_HASH, "the login was not hashing when the roles changed (%.2fs)" % out["elapsed"]
    if r.status == 200:
        tok = r.json["accessToken"]
        assert "admin" not in jwt_parts(tok)[1]["roles"] or verify(stack, tok).status == 401, \
            "a login that raced the role change holds a live token with the removed role: %r" % jwt_parts(tok)[1]
        assert verify(stack, tok, role="admin").status in (401, 403), "verify?role=admin passed after removal"
    else:
        assert_error(r, 401, "invalid_credentials", "login racing the role change")


def test_password_changed_during_the_login_hash(stack):
    u = User(stack, "race-pw", login_now=False)
    t, out = login_in_background(stack, u.email, PASSWORD)
    time.sleep(IN_THE_HASH)
    config = stack.write_config(path=stack.state + "/cli-race.conf")
    env = stack.app_env(FAST_HASH)
    c = subprocess.run([FA_BIN, "--config", config, "user", "set-password", u.email],
                       input="a brand new passphrase\n", capture_output=True, text=True, env=env, timeout=30)
    assert c.returncode == 0, "set-password: rc %d %s%s" % (c.returncode, c.stdout, c.stderr)
    t.join(30)
    r = out["r"]
    assert out["elapsed"] > IN_THE_HASH, "the login was not hashing when the password changed (%.2fs)" % out["elapsed"]
    if r.status == 200:
        assert_access_dead(stack, r.json["accessToken"], "token of a login with the replaced password")
        assert_error(refresh(stack, r.json["refreshToken"]), 401, "invalid_token",
                     "refresh token of a login with the replaced password")
        return
    assert_error(r, 401, "invalid_credentials", "login with the password replaced during its hash")
    rows = stack.psql("SELECT detail->>'reason' FROM auth.audit_log WHERE user_id = '%s' AND "
                      "event = 'login.failure'" % u.id)
    assert ["changed_during_login"] in rows, "no audit row for the login that lost the race: %r" % rows
