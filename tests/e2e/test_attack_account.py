"""Abuse cases of the account lifecycle (docs/SECURITY.md 10.11), one test
per case: token guessing and purpose confusion, parallel use of one token,
link scanners, mail bombs of one inbox (known or not), enumeration by 429,
email change onto a victim's address, header injection through names, and
deleting or re-addressing an account with a stolen access token."""

import os
import secrets
import time

from authlib import (PASSWORD, User, assert_error, assert_validation, login, login_raw, parallel,
                     register, show, uniq_email)
from harness import SRCDIR, free_port
from mailsink import MailSink, headers_of, token_of

SINK = MailSink(free_port()).start()
MAIL_PER_IP = 30
STACK_CONFIG = {
    "smtp_url": "smtp://127.0.0.1:%d" % SINK.port,
    "mail_template_dir": os.path.join(SRCDIR, "conf", "mail"),
    "mail_from": "noreply@auth.test",
    "ratelimit": "on",
    "mail_per_email": 3,
    "mail_per_ip": MAIL_PER_IP,
    "login_fail_per_email": 3,
}
NEW = "a brand new passphrase 7"


def forgot(stack, email):
    return stack.post("/auth/password/forgot", {"email": email})


def reset_token(stack, u, n):
    assert forgot(stack, u.email).status == 202
    return token_of(SINK.wait_mail(u.email, n=n))


def test_token_guessing_changes_nothing(stack):
    u = User(stack, "guess", login_now=False)
    for _ in range(50):
        assert_error(stack.post("/auth/password/reset", {"token": secrets.token_urlsafe(32), "newPassword": NEW}),
                     401, "invalid_token", "a guessed reset token")
        assert_error(stack.post("/auth/email/verify", {"token": secrets.token_urlsafe(32)}),
                     401, "invalid_token", "a guessed verify token")
    for bad in ("", "A" * 42, "A" * 44, "A" * 42 + "=", "A" * 42 + "B", {"t": 1}, None):
        r = stack.post("/auth/password/reset", {"token": bad, "newPassword": NEW})
        assert_validation(r, "token", what="malformed token %r" % (bad,))
    login(stack, u.email)


def test_token_of_one_purpose_not_accepted_for_another(stack):
    u = User(stack, "purpose", login_now=False)
    verify_tok = token_of(SINK.wait_mail(u.email))
    reset_tok = reset_token(stack, u, 2)
    assert_error(stack.post("/auth/password/reset", {"token": verify_tok, "newPassword": NEW}),
                 401, "invalid_token", "a verification token used to reset")
    assert_error(stack.post("/auth/email/verify", {"token": reset_tok}),
                 401, "invalid_token", "a reset token used to verify")
    login(stack, u.email)


def test_parallel_use_of_one_token_applies_once(stack):
    u = User(stack, "race", login_now=False)
    SINK.wait_mail(u.email)
    t = reset_token(stack, u, 2)
    rs = parallel(8, lambda i: stack.post("/auth/password/reset", {"token": t, "newPassword": NEW + str(i)}))
    st = sorted(r.status for r in rs)
    assert st.count(204) == 1 and st.count(401) == 7, "parallel resets with one token: %s" % st


def test_link_scanner_get_changes_nothing(stack):
    u = User(stack, "scanner", login_now=False)
    vt = token_of(SINK.wait_mail(u.email))
    for path in ("/auth/password/reset?token=%s" % vt, "/auth/email/verify?token=%s" % vt,
                 "/auth/email/verify/resend?email=%s" % u.email, "/auth/password/forgot?email=%s" % u.email):
        r = stack.get(path)
        assert_error(r, 405, "method_not_allowed", "GET " + path.split("?")[0])
        r = stack.request("HEAD", path)
        assert r.status == 405, "HEAD %s: %s" % (path, show(r))
    assert stack.post("/auth/email/verify", {"token": vt}).status == 204, "the token after the scanner's GETs"


def test_mail_bomb_of_one_inbox_capped(stack):
    u = User(stack, "bomb", login_now=False)
    SINK.wait_mail(u.email)
    st = [forgot(stack, u.email) for _ in range(6)]
    assert [r.status for r in st[:3]] == [202] * 3, [show(r) for r in st]
    for r in st[3:]:
        assert_error(r, 429, "too_many_requests", "forgot past mail_per_email")
        assert int(r.headers.get("retry-after", "0")) > 0, r.headers
    r = stack.post("/auth/email/verify/resend", {"email": u.email})
    assert_error(r, 429, "too_many_requests", "resend shares the inbox's limit")
    time.sleep(1.0)
    assert len(SINK.mails_to(u.email)) == 1 + 3, "mails to one inbox: %d" % len(SINK.mails_to(u.email))


def test_429_tells_nothing_about_existence(stack):
    known = User(stack, "enum", login_now=False).email
    unknown = uniq_email("enum-nobody")
    seq = {}
    for email in (known, unknown):
        seq[email] = [(r.status, r.body) for r in (forgot(stack, email) for _ in range(5))]
    assert seq[known] == seq[unknown], "known %r vs unknown %r" % (seq[known], seq[unknown])


def test_stolen_access_token_cannot_delete_or_readdress(stack):
    u = User(stack, "stolen")
    for i in range(3):
        assert_error(stack.request("DELETE", "/auth/me", body={"password": "guess %d guess" % i}, token=u.access),
                     401, "invalid_credentials", "delete with a guessed password")
    r = stack.request("DELETE", "/auth/me", body={"password": PASSWORD}, token=u.access)
    assert_error(r, 429, "too_many_requests", "delete past login_fail_per_email, even the right password")
    r = stack.post("/auth/email", {"newEmail": uniq_email("thief"), "password": PASSWORD}, token=u.access)
    assert_error(r, 429, "too_many_requests", "email change shares the guess counter")
    assert stack.psql_value("SELECT count(*) FROM auth.users WHERE id = '%s'" % u.id) == "1"
    assert_error(login_raw(stack, u.email), 429, "too_many_requests", "login from this network after the guesses")


def test_email_change_onto_a_victims_address(stack):
    victim = User(stack, "victim", login_now=False)
    SINK.wait_mail(victim.email)
    a = User(stack, "attacker")
    r = stack.post("/auth/email", {"newEmail": victim.email, "password": PASSWORD}, token=a.access)
    assert_error(r, 409, "email_taken", "email change onto a registered address")
    time.sleep(0.5)
    assert len(SINK.mails_to(victim.email)) == 1, "the victim got mail from the attacker's request"
    # an unregistered victim inbox is capped like forgot's
    inbox = uniq_email("inbox")
    st = [stack.post("/auth/email", {"newEmail": inbox, "password": PASSWORD}, token=a.access).status
          for _ in range(5)]
    assert st == [202, 202, 202, 429, 429], st


def test_crlf_in_names_never_becomes_a_mail_header(stack):
    email = uniq_email("crlf")
    register(stack, email, firstName="Eve\r\nBcc: thief@evil.test", lastName="X\nSubject: pwned")
    m = SINK.wait_mail(email)
    h = headers_of(m)
    assert "bcc" not in h and h["subject"] == "Confirm your email address", h
    assert m["rcpts"] == [email], m["rcpts"]
    assert_validation(stack.post("/auth/password/forgot", {"email": "a@b.test\r\nBcc: c@d.test"}), "email")


def test_mail_per_ip_capped(stack):
    # last: every mail request of this module came from 127.0.0.1
    got = []
    for i in range(MAIL_PER_IP + 2):
        r = forgot(stack, uniq_email("ip%d" % i))
        got.append(r.status)
        if r.status == 429:
            break
    assert got[-1] == 429 and len(got) <= MAIL_PER_IP + 1, got
    assert_error(forgot(stack, uniq_email("ip-fresh")), 429, "too_many_requests", "a fresh address past mail_per_ip")
