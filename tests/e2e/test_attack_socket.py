"""Attacks on the FastCGI socket itself (API.md "The FastCGI socket"), and
the process's signals: idle and trickling peers never hold a worker past
request_timeout, FCGI_WEB_SERVER_ADDRS refuses other peers, SIGTERM drains
without touching freed state or another's descriptor, and SIGHUP re-reads
log_level and reopens log_file without failing a request.

The peers here talk to the service's own TCP port, as an attacker on the
host (or the network, with a careless listen) would."""

import os
import signal
import socket
import struct
import threading
import time

from harness import _fcgi_nv, _fcgi_record
from authlib import show, wait_for

REQUEST_TIMEOUT = 2
STACK_CONFIG = {"request_timeout": str(REQUEST_TIMEOUT)}
STACK_OPTIONS = {"echo": False}

WORKERS = 64                    # the default
SLACK = 1.5                     # watch tick, scheduling on a loaded machine


def begin(keep=False, req_id=1):
    """FCGI_BEGIN_REQUEST, responder."""
    return _fcgi_record(1, struct.pack("!HB5x", 1, 1 if keep else 0), req_id)


def params(uri="/auth/health", method="GET", body_len=0):
    env = {"REQUEST_METHOD": method, "REQUEST_URI": uri, "DOCUMENT_URI": uri,
           "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1"}
    if body_len:
        env["CONTENT_LENGTH"] = str(body_len)
        env["CONTENT_TYPE"] = "application/json"
    return _fcgi_record(4, b"".join(_fcgi_nv(k, v) for k, v in env.items())) + _fcgi_record(4, b"")


def request_bytes(uri="/auth/health", keep=False, body=b"", method="GET"):
    msg = begin(keep) + params(uri, method, len(body))
    if body:
        msg += _fcgi_record(5, body)
    return msg + _fcgi_record(5, b"")


def read_answer(s, timeout=5.0):
    """Bytes up to and including FCGI_END_REQUEST; b"" if the peer closed
    first without a byte."""
    s.settimeout(timeout)
    buf = b""
    while True:
        off = 0
        while len(buf) - off >= 8:
            _, rtype, _, clen, plen, _ = struct.unpack("!BBHHBB", buf[off:off + 8])
            if len(buf) - off < 8 + clen + plen:
                break
            off += 8 + clen + plen
            if rtype == 3:
                return buf[:off]
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return buf
        if not chunk:
            return buf
        buf += chunk


def status_of(answer):
    i = answer.find(b"Status: ")
    return int(answer[i + 8:i + 11]) if i >= 0 else None


def closed_within(s, timeout):
    """Seconds until the server closed s (EOF or reset), or None."""
    t0 = time.monotonic()
    s.settimeout(timeout)
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return time.monotonic() - t0
    except ConnectionResetError:
        return time.monotonic() - t0
    except socket.timeout:
        return None


def health_timed(stack, via):
    t0 = time.monotonic()
    r = stack.get("/auth/health", via=via, timeout=REQUEST_TIMEOUT + 10)
    return r, time.monotonic() - t0


def connect_app(stack, source=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source:
        s.bind((source, 0))
    s.settimeout(5)
    s.connect(stack.app_addr)
    return s


# ------------------------------------------------------ idle and slow peers

def test_one_byte_sockets_do_not_stop_the_service(stack):
    """More one-byte connections than workers: health through nginx and
    through lighttpd still answers within a few seconds, and every such
    connection is closed after request_timeout."""
    socks = []
    try:
        for _ in range(WORKERS + 4):
            s = connect_app(stack)
            s.sendall(b"\x01")
            socks.append(s)
        t_sent = time.monotonic()
        time.sleep(0.3)
        for via in ("nginx", "lighttpd"):
            r, took = health_timed(stack, via)
            print("      health via %s with %d one-byte sockets open: %s in %.2fs"
                  % (via, len(socks), r.status, took))
            assert r.status == 200, "health via %s: %s" % (via, show(r))
            assert took < REQUEST_TIMEOUT + 3, "health via %s took %.2fs" % (via, took)
        # connections beyond the workers wait in the backlog for a worker,
        # then have their own request_timeout
        early, late = 0, []
        for s in socks:
            if closed_within(s, max(REQUEST_TIMEOUT + SLACK - (time.monotonic() - t_sent), 0.05)):
                early += 1
            elif closed_within(s, max(2 * REQUEST_TIMEOUT + SLACK - (time.monotonic() - t_sent), 0.05)) is None:
                late.append(s)
        print("      %d of %d one-byte sockets closed within %.1fs, the rest within %.1fs"
              % (early, len(socks), REQUEST_TIMEOUT + SLACK, 2 * REQUEST_TIMEOUT + SLACK))
        assert early >= WORKERS - 4, "only %d one-byte sockets closed after request_timeout" % early
        assert not late, "%d one-byte sockets still open after %.1fs" % (len(late), 2 * REQUEST_TIMEOUT + SLACK)
    finally:
        for s in socks:
            s.close()


def trickle(stack, data, interval, limit):
    """Send data one byte per interval; seconds until the server closed the
    connection (None if it never did within limit), and any answer bytes."""
    s = connect_app(stack)
    t0 = time.monotonic()
    got = b""
    try:
        s.setblocking(False)
        for i in range(len(data)):
            if time.monotonic() - t0 > limit:
                return None, got
            try:
                s.send(data[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - t0, got
            end = time.monotonic() + interval
            while time.monotonic() < end:
                try:
                    chunk = s.recv(4096)
                except BlockingIOError:
                    time.sleep(0.05)
                    continue
                except ConnectionResetError:
                    return time.monotonic() - t0, got
                if not chunk:
                    return time.monotonic() - t0, got
                got += chunk
        return None, got
    finally:
        s.close()


def test_slow_loris_params_closed_at_request_timeout(stack):
    """A peer that trickles its params a byte per second (each read well
    inside read_timeout) is cut off at request_timeout, unanswered."""
    took, got = trickle(stack, request_bytes(), 1.0, REQUEST_TIMEOUT + 6)
    print("      trickled params: closed after %s s" % (None if took is None else "%.2f" % took))
    assert took is not None, "a byte-per-second peer held its worker past %d s" % (REQUEST_TIMEOUT + 6)
    assert took < REQUEST_TIMEOUT + SLACK + 1, "closed only after %.2fs" % took
    assert b"Status:" not in got, "an incomplete request was answered: %r" % got[:200]


def test_slow_loris_body_closed_at_request_timeout(stack):
    """Complete params, then a body trickled a byte per second: cut off at
    request_timeout, and the truncated body is never handled (no answer,
    no 400 for half a JSON object)."""
    body = b'{"email":"loris@example.com","password":"correct horse battery"}'
    head = begin() + params("/auth/login", "POST", len(body))
    head += _fcgi_record(5, body)[:8]           # the STDIN record's header
    s = connect_app(stack)
    try:
        s.sendall(head)
        t0 = time.monotonic()
        s.setblocking(False)
        got, took = b"", None
        for i in range(len(body)):
            try:
                s.send(body[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                took = time.monotonic() - t0
                break
            time.sleep(1.0)
            try:
                chunk = s.recv(4096)
                if not chunk:
                    took = time.monotonic() - t0
                    break
                got += chunk
            except BlockingIOError:
                pass
            except ConnectionResetError:
                took = time.monotonic() - t0
                break
            if time.monotonic() - t0 > REQUEST_TIMEOUT + 6:
                break
    finally:
        s.close()
    print("      trickled body: closed after %s s" % (None if took is None else "%.2f" % took))
    assert took is not None, "a byte-per-second body held its worker past %d s" % (REQUEST_TIMEOUT + 6)
    assert took < REQUEST_TIMEOUT + SLACK + 1, "closed only after %.2fs" % took
    assert b"Status:" not in got, "a truncated body was handled: %r" % got[:200]


def test_kept_connection_serves_requests_after_idle(stack):
    """request_timeout counts from a request's first byte, not from the
    connection: a kept-alive connection idle longer than request_timeout
    (as nginx keeps them) still serves its next request."""
    s = connect_app(stack)
    try:
        s.sendall(request_bytes(keep=True))
        assert status_of(read_answer(s)) == 200
        time.sleep(REQUEST_TIMEOUT + 1)
        s.sendall(request_bytes(keep=True))
        assert status_of(read_answer(s)) == 200, "kept connection dropped while idle"
    finally:
        s.close()


# ------------------------------------------------------- peer allow-list

def test_web_server_addrs_refuses_other_peers(stack):
    """FCGI_WEB_SERVER_ADDRS=127.0.0.2: a connection from 127.0.0.1 is closed
    unanswered, one bound to source 127.0.0.2 is served."""
    stack.start_app(env={"FCGI_WEB_SERVER_ADDRS": "127.0.0.2"}, wait=False)
    try:
        def served_from_2():
            try:
                s = connect_app(stack, "127.0.0.2")
            except OSError:
                return False
            try:
                s.sendall(request_bytes())
                return status_of(read_answer(s)) == 200
            except OSError:
                return False
            finally:
                s.close()
        assert wait_for(served_from_2, timeout=20, step=0.1), \
            "a peer from 127.0.0.2 was not served:\n%s" % stack.tail_logs(10)
        s = connect_app(stack, "127.0.0.1")
        try:
            try:
                s.sendall(request_bytes())
            except OSError:
                pass
            got = read_answer(s)
        finally:
            s.close()
        assert b"Status:" not in got, "a peer from 127.0.0.1 was answered: %r" % got[:200]
        log = open(os.path.join(stack.logs, "fcgi-auth.log"), "rb").read()
        assert b"connection from 127.0.0.1 refused" in log, "refusal not logged"
    finally:
        stack.start_app()


def test_web_server_addrs_malformed_refuses_to_start(stack):
    """A typo in the allow-list is not skipped (which could open the socket
    to every peer): the service refuses to start and says why."""
    p = stack.start_app(env={"FCGI_WEB_SERVER_ADDRS": "127.0.0.2,10.0.0.300"}, wait=False)
    try:
        rc = p.wait(10)
        assert rc is not None and rc != 0, "started with a malformed FCGI_WEB_SERVER_ADDRS (rc %r)" % rc
        log = open(os.path.join(stack.logs, "fcgi-auth.log"), "rb").read()
        assert b"FCGI_WEB_SERVER_ADDRS" in log.split(b"--- ")[-1], "no reason logged"
    finally:
        stack.start_app()


# ------------------------------------------------------------- shutdown

def test_sigterm_with_idle_and_in_flight_connections(stack):
    """SIGTERM with idle kept-alive connections and a request in flight (its
    body still arriving): the request is answered, the idle connections are
    closed, and the process exits 0 promptly."""
    app = stack.procs["app"]
    idle = []
    for _ in range(5):
        s = connect_app(stack)
        s.sendall(request_bytes(keep=True))
        assert status_of(read_answer(s)) == 200
        idle.append(s)
    body = b'{"email":"inflight@example.com","password":"wrong password here"}'
    busy = connect_app(stack)
    busy.sendall(begin() + params("/auth/login", "POST", len(body)) + _fcgi_record(5, body[:10]))
    time.sleep(0.3)
    t0 = time.monotonic()
    os.kill(app.pid, signal.SIGTERM)
    time.sleep(0.3)
    busy.sendall(_fcgi_record(5, body[10:]) + _fcgi_record(5, b""))
    answer = read_answer(busy, timeout=5)
    busy.close()
    assert status_of(answer) in (400, 401, 503), "in-flight request unanswered: %r" % answer[:200]
    for i, s in enumerate(idle):
        assert closed_within(s, 3) is not None, "idle connection %d still open" % i
        s.close()
    rc = app.wait(5)
    took = time.monotonic() - t0
    print("      exit %s %.2fs after SIGTERM; in-flight answer %s" % (rc, took, status_of(answer)))
    assert rc == 0, "exit status %r after SIGTERM" % rc
    assert took < 3, "exit took %.2fs" % took
    stack.start_app()


def test_drain_timeout_exits_nonzero_without_cleanup(stack):
    """A connection that never finishes its request, with request_timeout
    longer than the drain: the process exits non-zero after the drain
    without freeing what the stuck worker uses (no sanitizer report)."""
    app = stack.start_app(request_timeout=30)
    s = connect_app(stack)
    s.sendall(begin() + b"\x01\x04\x00\x01")       # half a params header
    time.sleep(0.3)
    t0 = time.monotonic()
    os.kill(app.pid, signal.SIGTERM)
    rc = app.wait(15)
    took = time.monotonic() - t0
    s.close()
    print("      exit %s %.2fs after SIGTERM with a stuck worker" % (rc, took))
    assert rc is not None, "still running 15 s after SIGTERM"
    assert rc != 0, "a failed drain exited 0"
    log = open(os.path.join(stack.logs, "fcgi-auth.log"), "rb").read().split(b"--- ")[-1]
    assert b"still busy" in log, "the failed drain was not logged"
    stack.start_app()


# ---------------------------------------------------------------- SIGHUP

def access_lines(path, since):
    with open(path, "rb") as f:
        f.seek(since)
        return f.read().count(b" access ")


def hup(stack, overrides):
    stack.write_config(dict(stack.cur_overrides, **overrides))
    os.kill(stack.app_pid, signal.SIGHUP)


def test_sighup_rereads_log_level(stack):
    """log_level changed in the file, then SIGHUP: access lines (info) stop;
    back to info: they come back."""
    log = os.path.join(stack.logs, "fcgi-auth.log")
    hup(stack, {"log_level": "warn"})
    time.sleep(0.5)
    mark = os.path.getsize(log)
    for _ in range(3):
        assert stack.get("/auth/health").status == 200
    time.sleep(0.3)
    assert access_lines(log, mark) == 0, "log_level warn after SIGHUP still logs access lines"
    hup(stack, {"log_level": "info"})
    time.sleep(0.5)
    mark = os.path.getsize(log)
    assert stack.get("/auth/health").status == 200
    assert wait_for(lambda: access_lines(log, mark) >= 1), "log_level info after SIGHUP: no access line"


def test_sighup_broken_config_keeps_running_values(stack):
    """A config that does not parse: still serving, the old level kept, the
    reason logged."""
    log = os.path.join(stack.logs, "fcgi-auth.log")
    mark = os.path.getsize(log)
    with open(stack.config_file, "a") as f:
        f.write("log_level = warn\nthis is not a key value line\n")
    os.kill(stack.app_pid, signal.SIGHUP)
    time.sleep(0.5)
    for via in ("nginx", "lighttpd"):
        assert stack.get("/auth/health", via=via).status == 200
    time.sleep(0.3)
    with open(log, "rb") as f:
        f.seek(mark)
        text = f.read()
    assert b"SIGHUP" in text and b"line" in text and b"kept" in text, \
        "no error logged for a broken config: %r" % text[-500:]
    assert text.count(b" access ") >= 2, "the old log_level (info) was not kept"
    stack.write_config(stack.cur_overrides)


def test_sighup_reopens_log_file(stack):
    """log_file: renamed away (as logrotate does), SIGHUP: new lines go to a
    new file at the configured path, none to the old one."""
    path = os.path.join(stack.logs, "app-file.log")
    stack.start_app(log_file=path)
    assert stack.get("/auth/health").status == 200
    assert wait_for(lambda: os.path.exists(path) and access_lines(path, 0) >= 1), \
        "log_file got no access line"
    os.rename(path, path + ".1")
    os.kill(stack.app_pid, signal.SIGHUP)
    assert wait_for(lambda: os.path.exists(path)), "SIGHUP did not reopen log_file"
    old = os.path.getsize(path + ".1")
    assert stack.get("/auth/health").status == 200
    assert wait_for(lambda: access_lines(path, 0) >= 1), "no access line in the reopened file"
    assert os.path.getsize(path + ".1") == old, "lines still go to the rotated file"
    assert b"SIGHUP: log reopened" in open(path, "rb").read()
    stack.start_app()


def test_sighup_under_load_fails_no_request(stack):
    """Ten SIGHUPs while clients verify through nginx and lighttpd: no
    request fails."""
    stop = threading.Event()
    bad, count = [], [0]
    lock = threading.Lock()

    def client(via):
        while not stop.is_set():
            try:
                r = stack.get("/auth/health", via=via, timeout=5)
                ok = r.status == 200
            except Exception as e:
                ok, r = False, e
            with lock:
                count[0] += 1
                if not ok:
                    bad.append((via, str(r)[:200]))

    threads = [threading.Thread(target=client, args=(v,)) for v in ("nginx", "lighttpd") * 3]
    for t in threads:
        t.start()
    try:
        for i in range(10):
            time.sleep(0.2)
            hup(stack, {"log_level": "warn" if i % 2 == 0 else "info"})
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    print("      %d requests during 10 SIGHUPs, %d failed" % (count[0], len(bad)))
    assert not bad, "failed during SIGHUP: %r" % bad[:5]
    assert stack.procs["app"].alive()
    stack.write_config(stack.cur_overrides)
