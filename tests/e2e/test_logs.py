"""Logs people can search: log_format = json writes lines that parse
whatever the client sent; each request has an id (nginx's $request_id, or
one of ours), answered as X-Request-Id and written on the access line and
on every other line of that request; the access line carries the route
pattern, status, latency, client IP, user id and bytes; under systemd
(JOURNAL_STREAM) text lines carry no time of their own.  Security 10.13."""

import json
import os
import re
import time

from authlib import User, b64u, jwt_hs, jwt_parts, stack_secret, wait_for

STACK_CONFIG = {}

GENERATED = re.compile(r"^[0-9a-f]{8}-[0-9a-f]+-[0-9a-f]+$")

HOSTILE_AGENTS = [
    'quote " and backslash \\ and "}, {"injected": true',
    "newline\nfake 2026-01-01T00:00:00Z error - forged line",
    "tab\there, cr\rthere, nul-less ctrl \x01\x1f\x7f",
    b"invalid utf-8 \xff\xfe \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 end",
    "unicode \u202e rtl \u2028 ls \U0001F600 ok",
    "A" * 8192,
]

ODD_PATHS = [
    "/auth/%22%5C%0A",
    "/auth/\"quoted\"",
    "/auth/sessions/%ff%fe",
    "/auth/" + "x" * 4000,
    "/auth/login?a=\"b\\c",
]


def app_log(stack):
    return os.path.join(stack.logs, "fcgi-auth.log")


def lines_since(stack, mark):
    with open(app_log(stack), "rb") as f:
        f.seek(mark)
        data = f.read()
    return [ln for ln in data.split(b"\n") if ln and not ln.startswith(b"--- ")]


def test_json_lines_parse_with_hostile_input(stack):
    """log_format = json: after hostile user agents (quotes, backslashes,
    newlines, control characters, invalid UTF-8, 8 KB) and odd paths, every
    line the service wrote parses as a JSON object, and the access lines
    carry the fields."""
    stack.stop_app()
    mark = os.path.getsize(app_log(stack))
    stack.start_app(log_format="json")
    try:
        u = User(stack, "jsonlog")
        sent = 0
        for ua in HOSTILE_AGENTS:
            r = stack.get("/auth/me", token=u.access, via="fcgi", headers={"User-Agent": ua})
            assert r.status == 200, r
            sent += 1
        for p in ODD_PATHS:
            stack.get(p, via="fcgi", headers={"User-Agent": HOSTILE_AGENTS[0]})
            sent += 1
        r = stack.get("/auth/verify", token=u.access, headers={"User-Agent": "nginx \"ua\""})
        assert r.status == 204
        sent += 1
        # every access line, the verify one included: lines reach the file
        # a flush tick after their answer, and the start's health probe
        # adds a line of its own, so a count alone can be reached first
        assert wait_for(lambda: len([ln for ln in lines_since(stack, mark)
                                     if b'"access"' in ln]) >= sent + 2 and
                        any(b'"access"' in ln and b'"/verify"' in ln
                            for ln in lines_since(stack, mark)))
        lines = lines_since(stack, mark)
        objs = []
        for ln in lines:
            try:
                o = json.loads(ln.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise AssertionError("not a JSON line (%s): %r" % (e, ln[:300]))
            assert isinstance(o, dict), ln[:200]
            objs.append(o)
        access = [o for o in objs if o.get("type") == "access"]
        assert any("serving with" in o.get("msg", "") and o["level"] == "info" for o in objs), \
            "the start line is not a JSON line"
        print("      %d lines parsed, %d access lines" % (len(objs), len(access)))
        me = [o for o in access if o["route"] == "/me"]
        assert len(me) >= len(HOSTILE_AGENTS)
        for o in me:
            assert o["method"] == "GET" and o["status"] == 200 and o["user"] == u.id, o
            assert o["ip"] == "127.0.0.1" and o["bytes"] > 0 and o["latency_us"] >= 0, o
            assert "time" in o and o["id"], o
        agents = [o["ua"] for o in me]
        assert any(a.startswith('quote " and backslash \\') for a in agents), agents[:2]
        assert any("\n" in a and "forged line" in a for a in agents), "newline not kept escaped"
        assert any("\ufffd" in a for a in agents), "invalid UTF-8 not replaced"
        assert any("\U0001F600" in a for a in agents), "valid UTF-8 not kept"
        odd = [o for o in access if o["status"] == 404]
        assert odd and all(o["route"] == "-" for o in odd), "a raw path in the route field"
        v = [o for o in access if o["route"] == "/verify"]
        assert v and v[-1]["status"] == 204 and v[-1]["user"] == u.id, v[-1:]
    finally:
        stack.start_app()


def test_request_id_from_nginx_echoed(stack):
    """Through nginx the id is nginx's $request_id (32 hex): answered as
    X-Request-Id and on the access line; through lighttpd (no such
    variable) it is one we made."""
    mark = os.path.getsize(app_log(stack))
    r = stack.get("/auth/health")
    rid = r.headers.get("x-request-id")
    assert rid and re.fullmatch(r"[0-9a-f]{32}", rid), r.headers
    r2 = stack.get("/auth/health", via="lighttpd")
    rid2 = r2.headers.get("x-request-id")
    assert rid2 and GENERATED.match(rid2), r2.headers
    assert wait_for(lambda: any(rid.encode() in ln and b" access " in ln
                                for ln in lines_since(stack, mark))), "nginx's id not on the access line"
    line = [ln for ln in lines_since(stack, mark) if rid.encode() in ln][0].decode()
    assert " access %s GET /health 200 " % rid in line, line
    assert wait_for(lambda: any(rid2.encode() in ln for ln in lines_since(stack, mark)))


def test_request_id_generated_when_absent_or_malformed(stack):
    """No REQUEST_ID, or one that is not [A-Za-z0-9-]{1,64} (a newline, a
    space, 65 chars): we make one (prefix-thread-counter, distinct per
    request); a well-formed one is used as given."""
    seen = set()
    for given in (None, "", "bad id", "x\nforged", "a" * 65, "{\"json\":1}"):
        params = {} if given is None else {"REQUEST_ID": given}
        r = stack.get("/auth/health", via="fcgi") if given is None else \
            _fcgi_get(stack, "/auth/health", params)
        rid = r.headers.get("x-request-id")
        assert rid and GENERATED.match(rid), (given, r.headers)
        assert rid not in seen
        seen.add(rid)
    r = _fcgi_get(stack, "/auth/health", {"REQUEST_ID": "Trace-0123-abc"})
    assert r.headers.get("x-request-id") == "Trace-0123-abc", r.headers
    r = _fcgi_get(stack, "/auth/health", {"REQUEST_ID": "a" * 64})
    assert r.headers.get("x-request-id") == "a" * 64


def _fcgi_get(stack, path, params, headers=None):
    from harness import fcgi_request
    return fcgi_request(stack.app_addr, "GET", path, b"", headers or {}, params=params)


def test_error_line_carries_the_request_id(stack):
    """A warning logged while handling a request (verify refusing an
    identity that is not visible ASCII) carries that request's id, as its
    access line does."""
    u = User(stack, "errid")
    hdr, claims, _ = jwt_parts(u.access)
    claims = dict(claims, email="caf\u00e9@example.com", jti=b64u(os.urandom(16)))
    tok = jwt_hs(hdr, claims, stack_secret(stack))
    mark = os.path.getsize(app_log(stack))
    r = _fcgi_get(stack, "/auth/verify", {"REQUEST_ID": "err-line-42"},
                  headers={"Authorization": "Bearer " + tok})
    assert r.status == 401, r
    assert r.headers.get("x-request-id") == "err-line-42"
    assert wait_for(lambda: sum(b"err-line-42" in ln for ln in lines_since(stack, mark)) >= 2)
    mine = [ln.decode() for ln in lines_since(stack, mark) if b"err-line-42" in ln]
    assert any(" warn err-line-42 verify: identity" in ln for ln in mine), mine
    assert any(" access err-line-42 GET /verify 401 " in ln for ln in mine), mine


def test_journal_stream_text_lines_without_time(stack):
    """JOURNAL_STREAM naming the service's stderr (as systemd sets it): text
    lines start with the level or "access", not a second timestamp; a
    JOURNAL_STREAM naming another file changes nothing."""
    log = app_log(stack)
    st = os.stat(log)
    stack.start_app(env={"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})
    try:
        mark = os.path.getsize(log)
        r = stack.get("/auth/health")
        rid = r.headers.get("x-request-id")
        assert wait_for(lambda: any(rid.encode() in ln for ln in lines_since(stack, mark)))
        line = [ln for ln in lines_since(stack, mark) if rid.encode() in ln][0].decode()
        assert line.startswith("access %s GET /health 200 " % rid), line
        assert not re.match(r"^\d{4}-\d\d-\d\dT", line), line
    finally:
        stack.start_app(env={"JOURNAL_STREAM": "1:1"})
    mark = os.path.getsize(log)
    rid = stack.get("/auth/health").headers.get("x-request-id")
    assert wait_for(lambda: any(rid.encode() in ln for ln in lines_since(stack, mark)))
    line = [ln for ln in lines_since(stack, mark) if rid.encode() in ln][0].decode()
    assert re.match(r"^\d{4}-\d\d-\d\dT[0-9:.]+Z access ", line), line
    stack.start_app()
    time.sleep(0.1)
