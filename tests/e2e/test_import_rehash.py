"""Users migrated from a bcrypt system: `fcgi-auth import-users` takes their
existing hashes (JSON lines or CSV), such a user logs in with the old
password, and the first successful login replaces the bcrypt hash with an
Argon2id one.  Likewise an Argon2id hash of an older cost is rehashed at the
configured cost on the next successful login."""

import json
import os
import warnings

from authlib import assert_error, login_raw, register, uniq_email

STACK_CONFIG = {}

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt                                    # libxcrypt, as fcgi-auth uses


def bcrypt(password, prefix="$2b$"):
    """A cost-10 bcrypt hash like the NestJS services make ($2a$/$2b$/$2y$
    differ only in the prefix for ASCII passwords)."""
    h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1024))
    assert h and h.startswith("$2b$10$"), h
    return prefix + h[4:]


def stored_hash(stack, email):
    return stack.psql_value("SELECT password_hash FROM auth.users WHERE email = '%s'"
                            % email.replace("'", "''"))


def test_imported_bcrypt_users_log_in_and_are_rehashed(stack):
    users = [(uniq_email("bc-json"), "old nest password 1", "$2b$"),
             (uniq_email("bc-csv"), "old nest password 2", "$2y$"),
             (uniq_email("bc-2a"), "old nest password 3", "$2a$")]
    path = os.path.join(stack.state, "users.jsonl")
    with open(path, "w") as f:
        f.write(json.dumps({"email": users[0][0], "passwordHash": bcrypt(users[0][1], users[0][2]),
                            "firstName": "Ada", "roles": ["user", "editor"]}) + "\n")
    csv_path = os.path.join(stack.state, "users.csv")
    with open(csv_path, "w") as f:
        f.write("%s,%s,Bob,Builder\n" % (users[1][0], bcrypt(users[1][1], users[1][2])))
        f.write("%s,%s\n" % (users[2][0], bcrypt(users[2][1], users[2][2])))
    r = stack.run_cli("import-users", path)
    assert r.returncode == 0, "import-users: rc %d\n%s%s" % (r.returncode, r.stdout, r.stderr)
    assert "imported 1 users" in r.stdout, r.stdout
    r = stack.run_cli("import-users", csv_path)
    assert r.returncode == 0, "import-users: rc %d\n%s%s" % (r.returncode, r.stdout, r.stderr)
    assert "imported 2 users" in r.stdout, r.stdout
    assert stored_hash(stack, users[0][0]).startswith("$2b$10$")

    for email, password, prefix in users:
        r = login_raw(stack, email, "wrong " + password)
        assert_error(r, 401, "invalid_credentials", "wrong password for an imported user")
        assert stored_hash(stack, email).startswith(prefix), "a failed login changed the hash"
        r = login_raw(stack, email, password)
        assert r.status == 200, "login with the imported %s hash: %r" % (prefix, r)
        h = stored_hash(stack, email)
        assert h.startswith("$argon2id$"), "not rehashed after the first login: %s" % h[:7]
        r = login_raw(stack, email, password)
        assert r.status == 200, "login after the rehash: %r" % (r,)
    r = login_raw(stack, users[0][0], users[0][1])
    claims = json.loads(__import__("base64").urlsafe_b64decode(
        r.json["accessToken"].split(".")[1] + "==="))
    assert claims["roles"] == ["user", "editor"], claims

    # an existing email is refused, not overwritten, and nothing is imported
    r = stack.run_cli("import-users", csv_path)
    assert r.returncode == 1 and "refused 2 lines, nothing imported" in r.stdout, (r.stdout, r.stderr)
    assert stored_hash(stack, users[1][0]).startswith("$argon2id$")


def test_outdated_argon2_cost_is_rehashed_on_login(stack):
    email, password = uniq_email("cost"), "a password of old cost"
    stack.restart_app(password_opslimit=1, password_memlimit=8388608)
    register(stack, email, password)
    old = stored_hash(stack, email)
    assert "m=8192,t=1" in old, old
    stack.restart_app(password_opslimit=2, password_memlimit=19922944)
    r = login_raw(stack, email, password)
    assert r.status == 200, r
    new = stored_hash(stack, email)
    assert new != old and "m=19456,t=2" in new, "not rehashed at the new cost: %s" % new
    stack.restart_app()
