"""A small SMTP server on loopback for the mail tests (stdlib only, so it
runs under any python3): EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no
STARTTLS offered.  Modes: "ok" (accept), "hang" (accept the connection and
never answer), and reject_rcpt (addresses answered 550 at RCPT)."""

import re
import socket
import socketserver
import threading
import time


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        sink = self.server.sink
        if sink.mode == "hang":
            sink.hung.append(self.connection)
            while not sink.closing:
                time.sleep(0.05)
            return
        w = self.wfile

        def say(line):
            w.write((line + "\r\n").encode())
            w.flush()
        say("220 sink ESMTP")
        mail_from, rcpts = None, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode("latin-1").rstrip("\r\n")
            up = cmd.upper()
            if up.startswith("EHLO"):
                w.write(b"250-sink\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n")
                w.flush()
            elif up.startswith("HELO"):
                say("250 sink")
            elif up.startswith("MAIL FROM:"):
                mail_from, rcpts = cmd[10:].strip(), []
                say("250 ok")
            elif up.startswith("RCPT TO:"):
                addr = cmd[8:].strip().strip("<>").split(">")[0]
                if addr in sink.reject_rcpt:
                    say("550 no such user")
                else:
                    rcpts.append(addr)
                    say("250 ok")
            elif up == "DATA":
                say("354 go ahead")
                data = b""
                while True:
                    l = self.rfile.readline()
                    if not l or l == b".\r\n":
                        break
                    if l.startswith(b".."):
                        l = l[1:]
                    data += l
                sink.store(mail_from, rcpts, data)
                say("250 queued")
            elif up == "QUIT":
                say("221 bye")
                return
            elif up in ("RSET", "NOOP"):
                say("250 ok")
            else:
                say("502 not implemented")


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class MailSink:
    def __init__(self, port):
        self.port = port
        self.mode = "ok"
        self.reject_rcpt = set()
        self.messages = []
        self.hung = []
        self.closing = False
        self.lock = threading.Lock()
        self.server = None

    def start(self):
        self.closing = False
        self.server = _Server(("127.0.0.1", self.port), _Handler)
        self.server.sink = self
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server is None:
            return
        self.closing = True
        self.server.shutdown()
        self.server.server_close()
        for c in self.hung:
            try:
                c.close()
            except OSError:
                pass
        self.hung = []
        self.server = None

    def store(self, mail_from, rcpts, data):
        with self.lock:
            self.messages.append({"from": mail_from, "rcpts": list(rcpts),
                                  "data": data, "t": time.time()})

    def mails_to(self, addr):
        with self.lock:
            return [m for m in self.messages if addr in m["rcpts"]]

    def wait_mail(self, addr, n=1, timeout=10.0):
        """The n-th mail to addr (1-based), waiting up to timeout."""
        end = time.time() + timeout
        while time.time() < end:
            got = self.mails_to(addr)
            if len(got) >= n:
                return got[n - 1]
            time.sleep(0.02)
        raise AssertionError("no mail #%d to %s within %.0fs (got %d)"
                             % (n, addr, timeout, len(self.mails_to(addr))))


def token_of(mail):
    """The token of the first link in a mail."""
    m = re.search(rb"token=([A-Za-z0-9_-]{43})", mail["data"])
    assert m, "no token link in the mail:\n%s" % mail["data"].decode("utf-8", "replace")
    return m.group(1).decode()


def headers_of(mail):
    head = mail["data"].split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    out = {}
    for line in re.split(r"\r\n(?![ \t])", head):
        k, _, v = line.partition(":")
        out[k.strip().lower()] = v.strip()
    return out
