"""Abuse cases of the operator CLI (docs/SECURITY.md 10.7): a migration file
is input from another system, so a line must not grant what its columns do
not say, take over an existing account, plant a hash that answers logins
faster (or never, or slowly enough to stall the hash pool), or get past the
parser with a huge line or a NUL.  Each refusal names the line and imports
nothing."""

import os

from authlib import PASSWORD, User, assert_error, login_raw, show
from test_import import check_refused, user_row, users_count, write

STACK_CONFIG = {}
# bcryptjs 3, cost 10, of "nest password one"
GOOD = "$2b$10$azJtAHD6x7VIxJoO9xRQJulV8/x92pQ85bRQ0dU2.gkc4aeRNBLi."
GOOD_PW = "nest password one"


def test_csv_line_cannot_grant_roles_it_does_not_name(stack):
    # unknown columns (isAdmin, role) grant nothing; a quoted comma or line
    # break cannot shift a value into the roles column or start a record
    text = ('email,password,lastName,isAdmin,role\r\n'
            'x1@example.com,%s,"Smith,admin",true,admin\r\n'
            'x2@example.com,%s,b,"true\r\nx3@example.com,%s,b,{admin}",admin\r\n') % (GOOD, GOOD, GOOD)
    r = stack.run_cli("import-users", write(stack, "roles.csv", text))
    assert r.returncode == 0, r.stderr
    assert "'isAdmin' is not imported" in r.stderr and "'role' is not imported" in r.stderr, r.stderr
    assert user_row(stack, "x1@example.com")["roles"] == ["user"]
    assert user_row(stack, "x1@example.com")["last_name"] == "Smith,admin"
    assert user_row(stack, "x2@example.com")["roles"] == ["user"]
    assert user_row(stack, "x3@example.com") is None, "a quoted line break started a record"
    # a roles column is honoured but shown line by line before anything else
    r = stack.run_cli("import-users", "--dry-run", write(stack, "admin.csv",
                      "email,password,roles\nx4@example.com,%s,\"user,admin\"\n" % GOOD))
    assert r.returncode == 0 and "line 2: x4@example.com gets roles user,admin" in r.stderr, r.stderr


def test_hash_that_never_verifies_or_verifies_anything_is_refused(stack):
    bad = ["", "*", "!", "x", "abJnggxhB/yWI",                           # DES crypt
           "$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0",                        # MD5 crypt
           "$6$salt$" + "a" * 86,                                       # SHA-512 crypt
           "$2b$10$short", "$2b$99$" + GOOD[7:], GOOD[:-1] + "j",         # bcrypt of no use
           "$argon2i$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$" + "A" * 43,
           "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$",               # no hash
           "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$" + "A" * 43,  # 4 GiB: stalls
           "$argon2id$v=19$m=65536,t=1000,p=1$c2FsdHNhbHQ$" + "A" * 43]
    lines = ["email,password"] + ['h%d@example.com,"%s"' % (i, h) for i, h in enumerate(bad)]
    check_refused(stack, write(stack, "hashes.csv", "\n".join(lines) + "\n"),
                  {i + 2: "password hash" for i in range(len(bad))})


def test_id_or_email_clash_cannot_take_over_an_account(stack):
    victim = User(stack, "victim")
    before = users_count(stack)
    for text in ("id,email,password\n%s,attacker@example.com,%s\n" % (victim.id, GOOD),
                 "email,password\n%s,%s\n" % (victim.email.upper(), GOOD),
                 '{"id": "%s", "email": "%s", "password": "%s"}\n' % (victim.id, victim.email, GOOD)):
        r = stack.run_cli("import-users", write(stack, "takeover", text))
        assert r.returncode == 1 and "nothing imported" in r.stdout, (r.stdout, r.stderr)
    assert users_count(stack) == before
    assert_error(login_raw(stack, victim.email, GOOD_PW), 401, "invalid_credentials",
                 "the attacker's password on the victim's account")
    r = login_raw(stack, victim.email, PASSWORD)
    assert r.status == 200, "the victim's own password: %s" % show(r)


def test_huge_line_nul_and_oversize_file_are_refused(stack):
    check_refused(stack, write(stack, "huge.csv", "email,password,lastName\nh@example.com,%s,%s\n"
                               % (GOOD, "x" * 70000)), {2: ""})
    check_refused(stack, write(stack, "huge.jsonl", '{"email": "h@example.com", "password": "%s", '
                               '"lastName": "%s"}\n' % (GOOD, "x" * 70000)), {1: ""})
    check_refused(stack, write(stack, "nul.csv", "email,password\nn@example.com,%s\x00\n" % GOOD), {2: ""})
    check_refused(stack, write(stack, "nul.jsonl", '{"email": "n@example.com", "password": "%s"}\x00\n'
                               % GOOD), {1: ""})
    path = os.path.join(stack.state, "big.csv")
    with open(path, "wb") as f:
        f.truncate(64 * 1024 * 1024 + 1)
    r = stack.run_cli("import-users", path)
    assert r.returncode == 1 and "larger than" in r.stderr, (r.returncode, r.stderr)
    os.unlink(path)
