"""Reload applies the mail and RPC settings (issue 18): a new smtp_url,
new templates (a set that does not load refuses the reload), a new RPC
pattern (resubscribed), rpc_enabled off and on; mail sent while reloads
come arrives once.  Security 10.13."""

import atexit
import os
import shutil
import tempfile
import threading
import time

from authlib import User, verify, wait_for
from harness import SRCDIR, free_port
from mailsink import MailSink, headers_of
from test_reload import hup
from test_rpc import Publisher, Replies
from authlib import redis_call

SINK_A = MailSink(free_port()).start()
SINK_B = MailSink(free_port()).start()
TMPL = tempfile.mkdtemp(prefix="fa-tmpl-")
atexit.register(shutil.rmtree, TMPL, True)
shutil.copytree(os.path.join(SRCDIR, "conf", "mail"), os.path.join(TMPL, "base"))
STACK_CONFIG = {
    "smtp_url": "smtp://127.0.0.1:%d" % SINK_A.port,
    "mail_template_dir": os.path.join(TMPL, "base"),
    "mail_from": "noreply@auth.test",
    "public_url": "https://app.test",
    "mail_per_email": 1000,
    "mail_per_ip": 100000,
    "mail_retry_min_seconds": 1,
    "smtp_timeout_ms": 1500,
    "smtp_connect_timeout_ms": 1000,
}
PATTERN = "auth.validate_token"
REFUSED = b"running configuration kept"


def forgot(stack, email):
    r = stack.post("/auth/password/forgot", {"email": email})
    assert r.status == 202, r.status
    return r


def subject(mail):
    return headers_of(mail)["subject"]


def resets(sink, addr):
    return [m for m in sink.mails_to(addr) if b"reset-password?token=" in m["data"]]


def template_dir(name, reset_subject):
    d = os.path.join(TMPL, name)
    shutil.copytree(os.path.join(TMPL, "base"), d)
    with open(os.path.join(d, "reset.txt"), "w") as f:
        f.write("Subject: %s\n\nReset: {link}\n" % reset_subject)
    return d


def numsub(stack, channel):
    return redis_call(stack, "PUBSUB", "NUMSUB", channel)[1]


def envelope(pattern, token, rid):
    import json
    return json.dumps({"pattern": pattern, "data": {"token": token}, "id": rid})


def ask(stack, pattern, token, rid, timeout):
    """Publish a request on pattern; its reply on pattern.reply or None."""
    with Replies(stack, pattern + ".reply") as rep:
        p = Publisher(stack)
        try:
            p.publish(envelope(pattern, token, rid), channel=pattern)
        finally:
            p.close()
        got = wait_for(lambda: rep.of(rid), timeout=timeout, step=0.01)
        return got[0][1] if got else None


def test_smtp_url_change_applies_on_reload(stack):
    """smtp_url moved to a second sink and SIGHUP: the next forgot mail
    arrives there, none at the old one."""
    u = User(stack, "movesink", login_now=False)
    try:
        hup(stack, {"smtp_url": "smtp://127.0.0.1:%d" % SINK_B.port})
        forgot(stack, u.email)
        m = SINK_B.wait_mail(u.email)
        assert b"reset-password?token=" in m["data"]
        time.sleep(0.5)
        assert resets(SINK_A, u.email) == [], "a reset mail went to the old sink"
    finally:
        hup(stack, {})
    forgot(stack, u.email)
    wait_for(lambda: resets(SINK_A, u.email), timeout=10)
    assert len(resets(SINK_A, u.email)) == 1


def test_smtp_url_off_then_on(stack):
    """smtp_url emptied by a reload: forgot answers 202 and sends nothing;
    set again: mail flows (the mailer thread idles, it is not gone)."""
    u = User(stack, "offon", login_now=False)
    try:
        hup(stack, {"smtp_url": ""})
        forgot(stack, u.email)
        time.sleep(1.5)
        assert resets(SINK_A, u.email) == [] and resets(SINK_B, u.email) == []
    finally:
        hup(stack, {})
    forgot(stack, u.email)
    assert wait_for(lambda: resets(SINK_A, u.email), timeout=10), "no mail after smtp_url came back"


def test_templates_reloaded_broken_dir_refused(stack):
    """A new template dir is read by the reload; a dir that does not load
    refuses the reload, and the running templates stay in use."""
    u = User(stack, "tmpl", login_now=False)
    d = template_dir("v2", "Reloaded reset subject")
    try:
        hup(stack, {"mail_template_dir": d})
        forgot(stack, u.email)
        assert wait_for(lambda: resets(SINK_A, u.email), timeout=10)
        assert subject(resets(SINK_A, u.email)[0]) == "Reloaded reset subject"
        log = hup(stack, {"mail_template_dir": os.path.join(TMPL, "missing")}, want=REFUSED)
        assert b"mail_template_dir" in log, log[-500:]
        broken = template_dir("broken", "x")
        with open(os.path.join(broken, "verify.txt"), "w") as f:
            f.write("no subject line\n")
        hup(stack, {"mail_template_dir": broken}, want=REFUSED)
        forgot(stack, u.email)
        assert wait_for(lambda: len(resets(SINK_A, u.email)) >= 2, timeout=10)
        assert subject(resets(SINK_A, u.email)[1]) == "Reloaded reset subject"
    finally:
        hup(stack, {})


def test_rpc_pattern_change_resubscribes(stack):
    """rpc_validate_pattern changed and SIGHUP: a request on the new
    pattern is answered on its .reply; the old pattern no longer is."""
    u = User(stack, "rpcpat")
    new = "auth.v2.validate"
    assert wait_for(lambda: numsub(stack, PATTERN) >= 1, timeout=10)
    try:
        hup(stack, {"rpc_validate_pattern": new})
        assert wait_for(lambda: numsub(stack, new) >= 1 and numsub(stack, PATTERN) == 0,
                        timeout=5), (numsub(stack, new), numsub(stack, PATTERN))
        v = ask(stack, new, u.access, "live-new-1", 5)
        assert v is not None and v["response"]["valid"] is True and \
            v["response"]["userId"] == u.id, v
        assert ask(stack, PATTERN, u.access, "live-old-1", 1.0) is None
    finally:
        hup(stack, {})
    assert wait_for(lambda: numsub(stack, PATTERN) >= 1, timeout=5)
    v = ask(stack, PATTERN, u.access, "live-back-1", 5)
    assert v is not None and v["response"]["valid"] is True, v


def test_rpc_disabled_by_reload_no_answer(stack):
    """rpc_enabled off by a reload: unsubscribed, no answer; on again:
    answered."""
    u = User(stack, "rpcoff")
    try:
        hup(stack, {"rpc_enabled": "off"})
        assert wait_for(lambda: numsub(stack, PATTERN) == 0, timeout=5), numsub(stack, PATTERN)
        assert ask(stack, PATTERN, u.access, "live-off-1", 1.0) is None
    finally:
        hup(stack, {})
    assert wait_for(lambda: numsub(stack, PATTERN) >= 1, timeout=5)
    v = ask(stack, PATTERN, u.access, "live-on-1", 5)
    assert v is not None and v["response"]["valid"] is True, v


def test_mail_under_reloads_arrives_once(stack):
    """Forgot mails sent from three threads while eight reloads move
    smtp_url between two sinks (and RPC answers and verifies go on): every
    mail arrives exactly once, at one of the sinks; the process lives."""
    users = [User(stack, "burst%d" % i, login_now=(i == 0)) for i in range(12)]
    per_user = 3
    stop = threading.Event()
    errors = []

    def sender(group):
        try:
            for _ in range(per_user):
                for u in group:
                    forgot(stack, u.email)
                time.sleep(0.1)
        except Exception as e:      # noqa: BLE001 -- reported below
            errors.append(repr(e))

    def rpc_and_verify():
        n = 0
        while not stop.is_set():
            n += 1
            try:
                r = verify(stack, users[0].access)
                assert 200 <= r.status < 300, r.status
                ask(stack, PATTERN, users[0].access, "live-burst-%d" % n, 0.5)
            except Exception as e:  # noqa: BLE001 -- reported below
                errors.append(repr(e))

    threads = [threading.Thread(target=sender, args=(users[i::3],)) for i in range(3)]
    side = threading.Thread(target=rpc_and_verify)
    for t in threads + [side]:
        t.start()
    try:
        for i in range(8):
            sink = SINK_B if i % 2 == 0 else SINK_A
            hup(stack, {"smtp_url": "smtp://127.0.0.1:%d" % sink.port,
                        "rpc_validate_pattern": PATTERN if i % 4 else "auth.burst"})
            time.sleep(0.2)
        for t in threads:
            t.join(60)
    finally:
        stop.set()
        side.join(30)
        hup(stack, {})
    assert not errors, errors[:5]

    def count():
        return [len(resets(SINK_A, u.email)) + len(resets(SINK_B, u.email)) for u in users]
    wait_for(lambda: all(c >= per_user for c in count()), timeout=30, step=0.2)
    time.sleep(2)           # a duplicate would come now
    assert count() == [per_user] * len(users), count()
    assert stack.procs["app"].alive()
