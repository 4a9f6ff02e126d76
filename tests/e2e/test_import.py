"""Migration without loss (`fcgi-auth import-users`): a CSV (RFC 4180,
header row, columns in any order) and a JSON-lines export of a NestJS
`users` table with bcryptjs hashes keep their ids, createdAt, names with
quotes and commas, roles and inactive state; users log in through nginx
with their old passwords, an inactive one cannot; a hash that could never
verify, a malformed id or date, a clash or a malformed CSV line is refused
by its line number and then nothing is imported (all or nothing, rc 1);
--dry-run writes nothing; unknown fields are reported once each.
Fixtures: tests/e2e/fixtures/nest_users.{csv,jsonl}, made once with
bcryptjs by fixtures/nest_users.js."""

import json
import os

from harness import SRCDIR
from authlib import assert_error, audit_rows, login_raw, show

STACK_CONFIG = {}
FIXTURES = os.path.join(SRCDIR, "tests", "e2e", "fixtures")
PASSWORDS = {"one": "nest password one", "two": "nest password two", "three": "nest password three",
             "admin": "nest password six"}
# lines of the fixtures that must be refused: the bad hash, the bad uuid
CSV_BAD = {5: "password hash", 6: "id"}
JSONL_BAD = {4: "password hash", 5: "id"}


def fixture(name):
    with open(os.path.join(FIXTURES, name), newline="") as f:
        return f.read()


def write(stack, name, text):
    path = os.path.join(stack.state, name)
    with open(path, "w", newline="") as f:
        f.write(text)
    return path


def users_count(stack):
    return int(stack.psql_value("SELECT count(*) FROM auth.users"))


def user_row(stack, email):
    rows = stack.psql("SELECT row_to_json(u)::text FROM (SELECT id, email, first_name, last_name, "
                      "disabled, roles, to_char(created_at AT TIME ZONE 'UTC', "
                      "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS created_at FROM auth.users "
                      "WHERE email = '%s') u" % email.replace("'", "''"))
    return json.loads(rows[0][0]) if rows else None


def drop_lines(text, numbers, sep):
    lines = text.split(sep)
    return sep.join(l for i, l in enumerate(lines, 1) if i not in numbers)


def refused_lines(stderr):
    out = {}
    for line in stderr.splitlines():
        if line.startswith("line ") and line.endswith(", refused"):
            n, rest = line[5:].split(":", 1)
            out[int(n)] = rest.strip()
    return out


def check_refused(stack, path, bad):
    before = users_count(stack)
    audits = len(audit_rows(stack, "event = 'user.import'"))
    r = stack.run_cli("import-users", path)
    got = refused_lines(r.stderr)
    assert r.returncode == 1, "import with bad lines: rc %d\n%s%s" % (r.returncode, r.stdout, r.stderr)
    assert set(got) == set(bad), "refused lines %s, want %s\n%s" % (sorted(got), sorted(bad), r.stderr)
    for n, what in bad.items():
        assert got[n].startswith(what), "line %d: %r does not name %r" % (n, got[n], what)
    assert "nothing imported" in r.stdout, r.stdout
    assert users_count(stack) == before, "a refused import wrote users"
    assert len(audit_rows(stack, "event = 'user.import'")) == audits, "a refused import wrote audit rows"


def check_imported(stack, prefix, id_digit):
    """The good rows of the fixture: ids, dates, names, roles, disabled, login."""
    one = user_row(stack, "%s.one@example.com" % prefix)
    assert one is not None, "%s.one not imported (email lower-cased)" % prefix
    assert one["id"] == "3f2b8c1e-5d4a-4e7b-9c10-1a2b3c4d5e%s1" % id_digit, one
    assert one["created_at"] == "2021-03-04T05:06:07.123Z", one
    two = user_row(stack, "%s.two@example.com" % prefix)
    assert two["first_name"] == 'Two "Tee"' and two["last_name"] == "O'Brien, Jr.", two
    assert two["roles"] == ["user", "editor"], two
    assert two["created_at"] == "2020-02-29T23:59:59.999Z", two
    three = user_row(stack, "%s.three@example.com" % prefix)
    assert three["disabled"] is True and one["disabled"] is False, (one, three)
    admin = user_row(stack, "%s.admin@example.com" % prefix)
    assert admin["roles"] == ["user", "admin"], admin
    for tag in ("one", "two", "admin"):
        email = "%s.%s@example.com" % (prefix, tag)
        r = login_raw(stack, email, PASSWORDS[tag])
        assert r.status == 200, "login %s with its NestJS password: %s" % (email, show(r))
        sub = json.loads(__import__("base64").urlsafe_b64decode(
            r.json["accessToken"].split(".")[1] + "==="))["sub"]
        assert sub == user_row(stack, email)["id"], "sub is not the imported id"
    r = login_raw(stack, "%s.three@example.com" % prefix, PASSWORDS["three"])
    assert r.status in (401, 403) and r.status != 200, "inactive user logged in: %s" % show(r)
    # like any other disabled account
    assert_error(r, r.status, r.json.get("error"), "inactive user")
    rows = audit_rows(stack, "event = 'user.import' AND email LIKE %s", ("%s.%%" % prefix,))
    assert len(rows) == 4, "want 4 user.import audit rows, got %r" % rows
    assert all(a["detail"].get("by") == "cli" for a in rows), rows


def test_csv_fixture_bad_lines_refuse_everything(stack):
    check_refused(stack, os.path.join(FIXTURES, "nest_users.csv"), CSV_BAD)


def test_csv_fixture_dry_run_writes_nothing(stack):
    path = write(stack, "good.csv", drop_lines(fixture("nest_users.csv"), CSV_BAD, "\r\n"))
    before = users_count(stack)
    r = stack.run_cli("import-users", "--dry-run", path)
    assert r.returncode == 0, "dry run: rc %d\n%s%s" % (r.returncode, r.stdout, r.stderr)
    assert "would import 4 users (1 disabled)" in r.stdout, r.stdout
    assert "gets roles user,admin" in r.stderr, "a role grant is not shown: %s" % r.stderr
    assert users_count(stack) == before, "--dry-run wrote users"


def test_csv_fixture_imports_ids_dates_quotes_and_inactive(stack):
    path = write(stack, "good.csv", drop_lines(fixture("nest_users.csv"), CSV_BAD, "\r\n"))
    r = stack.run_cli("import-users", path)
    assert r.returncode == 0, "import: rc %d\n%s%s" % (r.returncode, r.stdout, r.stderr)
    assert "imported 4 users (1 disabled)" in r.stdout, r.stdout
    check_imported(stack, "nest", "0")
    # again: every id and email clashes now, each line refused, nothing written
    check_refused(stack, path, {2: "id", 3: "id", 4: "id", 5: "id"})


def test_jsonl_fixture_imports_and_reports_unknown_fields(stack):
    check_refused(stack, os.path.join(FIXTURES, "nest_users.jsonl"), JSONL_BAD)
    lines = drop_lines(fixture("nest_users.jsonl"), JSONL_BAD, "\n").splitlines()
    extra = []
    for l in lines:
        o = json.loads(l)
        o["avatarUrl"] = "https://example.com/a.png"
        o["isAdmin"] = True                 # not a field: must not grant anything
        extra.append(json.dumps(o))
    path = write(stack, "good.jsonl", "\n".join(extra) + "\n")
    r = stack.run_cli("import-users", path)
    assert r.returncode == 0, "import: rc %d\n%s%s" % (r.returncode, r.stdout, r.stderr)
    for name in ("avatarUrl", "isAdmin"):
        warned = [l for l in r.stderr.splitlines() if "'%s'" % name in l]
        assert len(warned) == 1, "want one warning for %s, got %r" % (name, r.stderr)
    check_imported(stack, "json", "1")
    one = user_row(stack, "json.one@example.com")
    assert one["roles"] == ["user"], "isAdmin granted something: %r" % one


def test_clash_with_an_existing_id_or_email_is_refused(stack):
    victim = stack.psql_value("INSERT INTO auth.users (email, password_hash) VALUES "
                              "('victim@example.com', 'x') RETURNING id")
    h = "$2b$10$azJtAHD6x7VIxJoO9xRQJulV8/x92pQ85bRQ0dU2.gkc4aeRNBLi."
    text = ("id,email,password\r\n"
            "%s,taker@example.com,%s\r\n"                       # the victim's id
            "3f2b8c1e-5d4a-4e7b-9c10-aaaaaaaaaaa1,VICTIM@example.com,%s\r\n"
            "3f2b8c1e-5d4a-4e7b-9c10-aaaaaaaaaaa2,dup@example.com,%s\r\n"
            "3f2b8c1e-5d4a-4e7b-9c10-aaaaaaaaaaa3,dup@example.com,%s\r\n") % (victim, h, h, h, h)
    check_refused(stack, write(stack, "clash.csv", text), {2: "id", 3: "email", 5: "email"})
    assert stack.psql_value("SELECT password_hash FROM auth.users WHERE id = '%s'" % victim) == "x"


def test_malformed_input_is_refused_by_line(stack):
    h = "$2b$10$azJtAHD6x7VIxJoO9xRQJulV8/x92pQ85bRQ0dU2.gkc4aeRNBLi."
    cases = [
        # unterminated quote: refused at the line the record starts
        ("email,password,lastName\r\nq1@example.com,%s,\"open\r\n" % h, {2: ""}),
        # text after a closing quote
        ("email,password,lastName\nq2@example.com,%s,\"a\"b\n" % h, {2: ""}),
        # a NUL byte
        ("email,password\nq3@example.com,%s\x00\n" % h, {2: ""}),
        # bad dates, a bad boolean, a role outside the grammar, a hash that verifies nothing
        ("email,password,createdAt,isActive,roles\n"
         "q4@example.com,%s,2021-02-29T00:00:00Z,true,user\n"
         "q5@example.com,%s,2021-01-01T00:00:00Z,maybe,user\n"
         "q6@example.com,%s,2021-01-01T00:00:00Z,true,\"user,Admin\"\n"
         "q7@example.com,\"$argon2id$v=19$m=65536,t=2,p=1$$\",,,\n"
         "q8@example.com,%s,,,\n" % (h, h, h, h), {2: "createdAt", 3: "isActive", 4: "roles",
                                                  5: "password hash"}),
        # a huge line
        ("email,password,lastName\nq9@example.com,%s,%s\n" % (h, "x" * 70000), {2: ""}),
        # more fields than columns
        ("email,password\nq10@example.com,%s,extra\n" % h, {2: ""}),
    ]
    for i, (text, bad) in enumerate(cases):
        before = users_count(stack)
        r = stack.run_cli("import-users", write(stack, "bad%d.csv" % i, text))
        got = refused_lines(r.stderr)
        assert r.returncode == 1 and set(got) == set(bad), \
            "case %d: rc %d, refused %s, want %s\n%s" % (i, r.returncode, sorted(got), sorted(bad), r.stderr)
        for n, what in bad.items():
            assert got[n].startswith(what), "case %d line %d: %r" % (i, n, got[n])
        assert users_count(stack) == before, "case %d wrote users" % i


def test_legacy_headerless_csv_still_imports(stack):
    h = "$2b$10$azJtAHD6x7VIxJoO9xRQJulV8/x92pQ85bRQ0dU2.gkc4aeRNBLi."
    path = write(stack, "legacy.csv", "legacy@example.com,%s,Leg,\"Acy, Sr.\"\n" % h)
    r = stack.run_cli("import-users", path)
    assert r.returncode == 0, r.stderr
    row = user_row(stack, "legacy@example.com")
    assert row["last_name"] == "Acy, Sr.", row
    r = login_raw(stack, "legacy@example.com", PASSWORDS["one"])
    assert r.status == 200, show(r)
