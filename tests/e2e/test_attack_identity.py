"""Attacks on identity, through nginx (docs/SECURITY.md 10.4): one account per
address whatever the spelling (API.md "One canonical email"), and client
text that is stored and shown again without control characters ("Stored
client text").  Each test is one abuse case."""

import os
import shutil
import tempfile

from authlib import (PASSWORD, assert_error, assert_validation, audit_rows, jwt_parts,
                     login, login_raw, me, outbox_rows, register, sessions, show,
                     sql_quote, verify)
from harness import SRCDIR

STACK_CONFIG = {}

KELVIN = "\u212a"
R = "\ufffd"


def uniq(tag):
    return "%s-%s" % (tag, os.urandom(5).hex())


def look_alikes(local, domain="example.test"):
    """Spellings of local@domain that a person reads as the same address."""
    fw = "".join(chr(ord(c) + 0xfee0) if "a" <= c <= "z" else c for c in domain)
    return [
        ("Kelvin sign for k", KELVIN + local[1:] + "@" + domain),
        ("fullwidth local part", chr(ord(local[0]) + 0xfee0) + local[1:] + "@" + domain),
        ("fullwidth domain", local + "@" + fw),
        ("trailing NBSP", local + "@" + domain + "\u00a0"),
        ("leading NBSP", "\u00a0" + local + "@" + domain),
        ("U+2028 at the end", local + "@" + domain + "\u2028"),
        ("U+0085 at the end", local + "@" + domain + "\u0085"),
        ("ZWJ in the local part", local[:2] + "\u200d" + local[2:] + "@" + domain),
        ("ZWJ in the domain", local + "@ex\u200dample.test"),
        ("zero-width space", local[:1] + "\u200b" + local[1:] + "@" + domain),
        ("soft hyphen", local[:1] + "\u00ad" + local[1:] + "@" + domain),
    ]


def utf8_database(stack, name):
    """A database of the running cluster collated like the postgres image's
    default (UTF-8 ctype: lower() folds the Kelvin sign into k), migrated."""
    stack.psql("DROP DATABASE IF EXISTS %s" % name, db="postgres")
    stack.psql("CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8' "
               "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'" % name, db="postgres")
    url = "host=127.0.0.1 port=%d dbname=%s user=postgres" % (stack.pg_port, name)
    r = stack.run_cli("migrate", overrides={"database_url": url})
    assert r.returncode == 0, "migrate %s: %s%s" % (name, r.stdout, r.stderr)
    return url


def psql_db(stack, db, sql):
    return stack.psql(sql, db=db)


# ------------------------------------------------------------ one address

def test_kelvin_and_other_look_alikes_cannot_register_a_twin(stack):
    local = "k" + uniq("ate")
    victim = register(stack, local + "@example.test")
    for what, spelling in look_alikes(local):
        r = stack.post("/auth/register", {"email": spelling, "password": PASSWORD})
        assert_validation(r, "email", what="register %s (%r)" % (what, spelling))
    n = stack.psql_value("SELECT count(*) FROM auth.users WHERE email LIKE %s"
                         % sql_quote("%" + local[2:] + "%"))
    assert n == "1", "%s rows for %s after the look-alikes" % (n, victim["email"])


def test_case_and_space_twins_409(stack):
    local = uniq("Kate")
    register(stack, "%s@X.example.TEST" % local)
    for other in ("%s@x.example.test" % local.lower(), " %s@X.EXAMPLE.test\t" % local.upper(),
                  "%s@x.Example.test\r\n" % local):
        r = stack.post("/auth/register", {"email": other, "password": PASSWORD})
        assert_error(r, 409, "email_taken", "register %r" % other)


def test_unicode_domain_is_one_account_as_its_a_label(stack):
    local = uniq("kate")
    u = register(stack, "%s@B\u00fccher.example" % local)
    want = "%s@xn--bcher-kva.example" % local
    assert u["email"] == want, "stored %r, want the A-label %r" % (u["email"], want)
    for other in ("%s@xn--bcher-kva.example" % local, "%s@XN--BCHER-KVA.EXAMPLE" % local,
                  "%s@bu\u0308cher.example" % local):       # decomposed: NFC first
        r = stack.post("/auth/register", {"email": other, "password": PASSWORD})
        assert_error(r, 409, "email_taken", "register %r" % other)
    pair = login(stack, "%s@b\u00fccher.example" % local)
    assert jwt_parts(pair["accessToken"])[1]["email"] == want, "token email"
    r = verify(stack, pair["accessToken"])
    assert r.status == 204 and r.headers.get("x-auth-email") == want, \
        "X-Auth-Email %r, want %r" % (r.headers.get("x-auth-email"), want)
    ev = outbox_rows(stack, "user.registered", "payload->'data'->>'userId' = %s", (u["id"],))
    assert [e["payload"]["data"]["email"] for e in ev] == [want], ev


def test_malformed_and_ambiguous_addresses_400(stack):
    base = uniq("m")
    cases = [
        ("quoted local part", '"%s"@example.test' % base),
        ("quoted local part with @", '"%s@evil"@example.test' % base),
        ("IP literal", "%s@[127.0.0.1]" % base),
        ("bare IP", "%s@127.0.0.1" % base),
        ("trailing dot", "%s@example.test." % base),
        ("double dot", "%s..x@example.test" % base),
        ("non-ASCII local part", "%s\u00e9@example.test" % base),
        ("upper-case non-ASCII domain", "%s@B\u00dcCHER.example" % base),
        ("bad punycode", "%s@xn--zz.example" % base),
        ("underscore in domain", "%s@ex_ample.test" % base),
        ("10 KB address", "a" * 10000 + "@example.test"),
        ("local part of 65", "a" * 65 + "@example.test"),
    ]
    for what, email in cases:
        r = stack.post("/auth/register", {"email": email, "password": PASSWORD})
        assert_validation(r, "email", what="register, " + what)
        r = login_raw(stack, email)
        assert_validation(r, "email", what="login, " + what)
    assert stack.psql_value("SELECT count(*) FROM auth.users WHERE email LIKE %s"
                            % sql_quote("%" + base + "%")) == "0"


def test_lookalike_login_400_never_reaches_the_account(stack):
    local = "k" + uniq("ate")
    u = register(stack, local + "@example.test")
    for what, spelling in look_alikes(local):
        r = login_raw(stack, spelling)
        assert_validation(r, "email", what="login %s" % what)
    # nothing was looked up, counted or audited under a second spelling
    rows = audit_rows(stack, "event = 'login.failure' AND (user_id = %s OR email LIKE %s)",
                      (u["id"], "%" + local[1:] + "%"))
    assert rows == [], "audit rows for look-alike logins: %r" % rows


def test_spellings_share_one_lockout(stack):
    stack.start_app(ratelimit="on", login_fail_per_email=3, ratelimit_window=60)
    stack.redis_cli("FLUSHALL")
    local = uniq("lock")
    register(stack, "%s@b\u00fccher.example" % local)
    for spelling in ("%s@B\u00fccher.example" % local.upper(), "%s@XN--BCHER-KVA.example" % local,
                     " %s@bu\u0308cher.example" % local):
        r = login_raw(stack, spelling, "wrong password!")
        assert_error(r, 401, "invalid_credentials", "wrong password as %r" % spelling)
    r = login_raw(stack, "%s@xn--bcher-kva.example" % local)
    assert_error(r, 429, "too_many_requests", "right password after 3 failures in 3 spellings")


def test_lookalike_cannot_log_in_during_the_lockout_on_a_utf8_database(stack):
    url = utf8_database(stack, "fa_utf8")
    assert psql_db(stack, "fa_utf8", "SELECT lower(%s)" % sql_quote(KELVIN))[0][0] == "k", \
        "this database's lower() does not fold the Kelvin sign: the case proves nothing"
    stack.start_app(database_url=url, ratelimit="on", login_fail_per_email=3, ratelimit_window=60)
    stack.redis_cli("FLUSHALL")
    local = "k" + uniq("ate")
    email = local + "@example.test"
    register(stack, email)
    for i in range(3):
        r = login_raw(stack, email, "wrong-%d" % i)
        assert r.status == 401, show(r)
    assert_error(login_raw(stack, email), 429, "too_many_requests", "the victim during the lockout")
    twin = KELVIN + local[1:] + "@example.test"
    r = login_raw(stack, twin)
    assert r.status != 200, "the Kelvin-sign twin logged in during the lockout: %s" % show(r)
    assert_validation(r, "email", what="Kelvin-sign twin login")
    r = stack.post("/auth/register", {"email": twin, "password": PASSWORD})
    assert_validation(r, "email", what="Kelvin-sign twin register")
    n = psql_db(stack, "fa_utf8", "SELECT count(*) FROM auth.users")[0][0]
    assert n == "1", "%s users in the UTF-8 database" % n


# ------------------------------------------------------------ migration

def test_migration_canonicalises_and_refuses_collisions(stack):
    db = "fa_mig"
    stack.psql("DROP DATABASE IF EXISTS %s" % db, db="postgres")
    stack.psql("CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8' "
               "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'" % db, db="postgres")
    url = "host=127.0.0.1 port=%d dbname=%s user=postgres" % (stack.pg_port, db)
    old = tempfile.mkdtemp(prefix="fa-sql-")
    try:
        shutil.copy(os.path.join(SRCDIR, "sql", "001_init.sql"), old)
        r = stack.run_cli("migrate", overrides={"database_url": url, "sql_dir": old})
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        shutil.rmtree(old)
    rows = {
        "upper": "Upper.Case@Example.TEST",
        "space": " spaced@example.test\t",
        "ulabel": "kate@b\u00fccher.example",
        "alabel": "kate@xn--bcher-kva.example",      # the same address: collision
        "kelvin": KELVIN + "ate@example.test",        # no canonical form
        "fine": "fine@example.test",
    }
    ids = {}
    for k, e in rows.items():
        ids[k] = psql_db(stack, db, "INSERT INTO auth.users (email, password_hash) VALUES (%s, 'x')"
                         " RETURNING id" % sql_quote(e))[0][0]

    r = stack.run_cli("migrate", overrides={"database_url": url})
    out = r.stdout + r.stderr
    assert "Sanitizer" not in out, out
    assert r.returncode != 0, "migrate merged or ignored a collision:\n" + out
    assert "collision" in out and ids["ulabel"] in out and ids["alabel"] in out, out
    emails = dict(psql_db(stack, db, "SELECT id::text, email FROM auth.users"))
    assert emails[ids["upper"]] == rows["upper"], "a refused migration changed rows: %r" % emails
    assert psql_db(stack, db, "SELECT count(*) FROM auth.schema_migrations"
                   " WHERE version LIKE '002%'")[0][0] == "0"

    # the operator keeps one account of the two, then migrates again
    psql_db(stack, db, "DELETE FROM auth.users WHERE id = %s" % sql_quote(ids["alabel"]))
    r = stack.run_cli("migrate", overrides={"database_url": url})
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "Sanitizer" not in out, out
    assert ids["kelvin"] in out, "the row without a canonical form is not reported:\n" + out
    emails = dict(psql_db(stack, db, "SELECT id::text, email FROM auth.users"))
    assert emails[ids["upper"]] == "upper.case@example.test", emails
    assert emails[ids["space"]] == "spaced@example.test", emails
    assert emails[ids["ulabel"]] == "kate@xn--bcher-kva.example", emails
    assert emails[ids["kelvin"]] == rows["kelvin"], emails
    assert emails[ids["fine"]] == rows["fine"], emails
    # uniqueness is on the column now: no lower() index is left
    idx = psql_db(stack, db, "SELECT indexdef FROM pg_indexes WHERE indexname = 'users_email_key'")
    assert idx and "lower" not in idx[0][0], idx
    # and the service finds a rewritten row, by exact equality, from any spelling
    known = register(stack)
    h = stack.psql_value("SELECT password_hash FROM auth.users WHERE id = %s" % sql_quote(known["id"]))
    psql_db(stack, db, "UPDATE auth.users SET password_hash = %s WHERE id = %s"
            % (sql_quote(h), sql_quote(ids["ulabel"])))
    stack.start_app(database_url=url)
    pair = login(stack, "Kate@B\u00fccher.example")
    claims = jwt_parts(pair["accessToken"])[1]
    assert (claims["sub"], claims["email"]) == (ids["ulabel"], "kate@xn--bcher-kva.example"), claims


# ------------------------------------------------------------ stored client text

UA_HOSTILE = b"evil\x1b[2J\x1b]0;pwned\x07agent\x08\x08 \xc2\x85next \x7f/1.0"
UA_CLEAN = "evil" + R + "[2J" + R + "]0;pwned" + R + "agent" + R + R + " " + R + "next " + R + "/1.0"


def test_user_agent_control_characters_are_not_stored(stack):
    u = register(stack)
    r = stack.post("/auth/login", {"email": u["email"], "password": PASSWORD},
                   headers={"User-Agent": UA_HOSTILE})
    assert r.status == 200, show(r)
    sid = jwt_parts(r.json["accessToken"])[1]["sid"]
    listed = [s for s in sessions(stack, r.json["accessToken"]) if s["id"] == sid]
    assert len(listed) == 1, "session %s not listed" % sid
    assert listed[0]["userAgent"] == UA_CLEAN, "GET /sessions userAgent %r" % listed[0]["userAgent"]
    rows = audit_rows(stack, "event = 'login.success' AND session_id = %s", (sid,))
    assert [a["user_agent"] for a in rows] == [UA_CLEAN], "audit user_agent %r" % rows
    ev = outbox_rows(stack, "user.logged_in", "payload->'data'->>'sessionId' = %s", (sid,))
    assert [e["payload"]["data"]["userAgent"] for e in ev] == [UA_CLEAN], "event %r" % ev
    # a failed login's audit row too
    r = stack.post("/auth/login", {"email": u["email"], "password": "wrong password!"},
                   headers={"User-Agent": UA_HOSTILE})
    assert r.status == 401, show(r)
    rows = audit_rows(stack, "event = 'login.failure' AND email = %s", (u["email"],))
    assert rows and all(a["user_agent"] == UA_CLEAN for a in rows), rows


def test_names_with_control_characters_are_stored_replaced(stack):
    first = "Ada\x1b[31m\x07\u0085"
    last = "Love\u2028lace\x7f"
    r = stack.post("/auth/register", {"email": "n-%s@example.test" % os.urandom(5).hex(),
                                      "password": PASSWORD, "firstName": first, "lastName": last})
    assert r.status == 201, show(r)
    want_first, want_last = "Ada" + R + "[31m" + R + R, "Love" + R + "lace" + R
    assert (r.json["firstName"], r.json["lastName"]) == (want_first, want_last), r.json
    row = stack.psql("SELECT first_name, last_name FROM auth.users WHERE id = %s" % sql_quote(r.json["id"]))
    assert row == [[want_first, want_last]], row
    ev = outbox_rows(stack, "user.registered", "payload->'data'->>'userId' = %s", (r.json["id"],))
    data = [e["payload"]["data"] for e in ev]
    assert [(d["firstName"], d["lastName"]) for d in data] == [(want_first, want_last)], data
    pair = login(stack, r.json["email"])
    m = me(stack, pair["accessToken"])
    assert (m.json["firstName"], m.json["lastName"]) == (want_first, want_last), show(m)
    # still at most 100 characters, replaced ones included
    r = stack.post("/auth/register", {"email": "n-%s@example.test" % os.urandom(5).hex(),
                                      "password": PASSWORD, "firstName": "\x1b" * 101})
    assert_validation(r, "firstName", what="101 control characters")
