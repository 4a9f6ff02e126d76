"""fcgi-auth doctor: one line per check ("ok   what: ...", "FAIL what: ..."),
exit 0 on a healthy stack and 1 as soon as one check fails -- Redis down,
a secret file every user can read, a migration not applied -- and never a
secret in its output."""

import os
import re
import shutil
import stat

from harness import SRCDIR, free_port
from mailsink import MailSink

STACK_CONFIG = {}
STACK_OPTIONS = {"nginx": False, "lighttpd": False, "echo": False}

LINE = re.compile(r"^(ok  |warn|FAIL|skip) ([^:]+): .*$")


def doctor(stack, **overrides):
    r = stack.run_cli("doctor", overrides=overrides or None)
    lines = r.stdout.splitlines()
    for l in lines:
        assert LINE.match(l), "doctor printed a line of no known form: %r\n%s" % (l, r.stdout)
    checks = {LINE.match(l).group(2): LINE.match(l).group(1).strip() for l in lines}
    return r, checks


def secret_text(stack):
    with open(stack.secret_file) as f:
        return f.read().strip()


def assert_no_secret(stack, r):
    out = r.stdout + r.stderr
    assert secret_text(stack) not in out, "doctor printed the jwt secret"


def test_healthy_stack_every_line_ok(stack):
    r, checks = doctor(stack)
    assert r.returncode == 0, "doctor exit %d on a healthy stack:\n%s%s" % (r.returncode, r.stdout, r.stderr)
    for what in ("config", "postgres", "schema", "clock", "redis"):
        assert checks.get(what) == "ok", "no ok line for %s:\n%s" % (what, r.stdout)
    files = [w for w in checks if w.startswith("jwt_secret_file ")]
    assert files == ["jwt_secret_file " + stack.secret_file], r.stdout
    assert checks.get("smtp") == "skip", "no mailer configured, yet smtp is %r:\n%s" % (checks.get("smtp"), r.stdout)
    assert set(v for k, v in checks.items() if k != "smtp") == {"ok"}, "not every line is ok:\n%s" % r.stdout
    assert_no_secret(stack, r)


def test_smtp_reachable_ok_unreachable_failure(stack):
    sink = MailSink(free_port()).start()
    try:
        r, checks = doctor(stack, smtp_url="smtp://127.0.0.1:%d" % sink.port)
        assert r.returncode == 0 and checks.get("smtp") == "ok", "doctor with a live SMTP server:\n%s%s" % (
            r.stdout, r.stderr)
    finally:
        sink.stop()
    dead = free_port()
    r, checks = doctor(stack, smtp_url="smtp://127.0.0.1:%d" % dead)
    assert r.returncode == 1 and checks.get("smtp") == "FAIL", "doctor with no SMTP server:\n%s" % r.stdout
    assert not sink.messages, "doctor sent a mail"


def test_redis_stopped_is_a_failure(stack):
    stack.stop_redis()
    try:
        r, checks = doctor(stack)
    finally:
        stack.start_redis()
    assert r.returncode == 1, "doctor exit %d with Redis down:\n%s" % (r.returncode, r.stdout)
    assert checks.get("redis") == "FAIL", r.stdout
    assert checks.get("postgres") == "ok" and checks.get("schema") == "ok", r.stdout


def test_world_readable_secret_is_a_failure(stack):
    path = os.path.join(stack.state, "doctor_secret")
    shutil.copy(stack.secret_file, path)
    os.chmod(path, 0o644)
    r, checks = doctor(stack, jwt_secret_file=path)
    assert r.returncode == 1, "doctor exit %d with a 0644 secret:\n%s" % (r.returncode, r.stdout)
    assert checks.get("jwt_secret_file " + path) == "FAIL", r.stdout
    assert "0644" in r.stdout and "readable by every user" in r.stdout, r.stdout
    assert_no_secret(stack, r)
    os.chmod(path, 0o640)
    r, checks = doctor(stack, jwt_secret_file=path)
    assert r.returncode == 0 and checks.get("jwt_secret_file " + path) == "ok", r.stdout


def test_inline_secret_in_a_world_readable_config_is_a_failure(stack):
    secret = os.urandom(24).hex()
    r, checks = doctor(stack, jwt_secret_file=None, jwt_secret=secret)
    # run_cli writes the config with the default umask: 0644
    assert r.returncode == 1 and checks.get("config") == "FAIL", r.stdout
    assert secret not in r.stdout + r.stderr, "doctor printed the inline secret"


def test_unapplied_migration_is_a_failure(stack):
    d = os.path.join(stack.state, "doctor_sql")
    os.makedirs(d, exist_ok=True)
    for fn in os.listdir(os.path.join(SRCDIR, "sql")):
        if fn.endswith(".sql"):
            shutil.copy(os.path.join(SRCDIR, "sql", fn), d)
    with open(os.path.join(d, "999_doctor_pending.sql"), "w") as f:
        f.write("SELECT 1;\n")
    r, checks = doctor(stack, sql_dir=d)
    assert r.returncode == 1, "doctor exit %d with a pending migration:\n%s" % (r.returncode, r.stdout)
    assert checks.get("schema") == "FAIL" and "999_doctor_pending.sql" in r.stdout, r.stdout
    # doctor only looks: the migration is still pending
    assert stack.psql_value("SELECT count(*) FROM auth.schema_migrations"
                            " WHERE version = '999_doctor_pending.sql'") == "0"


def test_postgres_down_is_a_failure_and_no_password_printed(stack):
    url = "postgresql://fa:hunter2-doctor@127.0.0.1:1/nowhere"
    r, checks = doctor(stack, database_url=url)
    assert r.returncode == 1 and checks.get("postgres") == "FAIL", r.stdout
    assert checks.get("schema") == "skip" and checks.get("clock") == "skip", r.stdout
    assert "hunter2-doctor" not in r.stdout + r.stderr, "doctor printed the database password"


def test_man8_documents_doctor():
    with open(os.path.join(SRCDIR, "man", "fcgi-auth.8")) as f:
        page = f.read()
    assert re.search(r"^\.It Cm doctor", page, re.M), "fcgi-auth(8) has no entry for doctor"
