"""Rolling restarts: three fcgi-auth instances behind nginx with the shipped
multi-instance upstream (deploy/nginx/fcgi-auth.conf, the lines marked
"(multi-instance)": max_fails=0), restarted one at a time under a load of
verify, login and refresh through nginx.

The procedure of docs/DEPLOYMENT.md (mark the instance `down`, reload
nginx, wait for its old workers to leave, SIGTERM the instance, wait for
its exit, start it, wait until it answers, take `down` away, reload):
not one 5xx, not one failed connection.  A bare SIGTERM without the nginx
step: verify (retried by nginx on another instance) never fails; a POST
that nginx had just written into a kept-alive connection the stopping
instance closed is not retried (it could have been applied) and answers
503 -- counted and printed, the reason for the nginx step.

Prints "measured:" lines.  FA_ROLLING_THREADS (default 6) client threads;
each test stays well under a minute."""

import os
import re
import signal
import threading
import time

from harness import FA_BIN, HarnessError, Proc, Skip, children_of, pid_alive, which
from test_scaleout import Deployment

PASSWORD = "correct horse battery"
THREADS = int(os.environ.get("FA_ROLLING_THREADS", "6"))
MARK = "# (multi-instance)"


class RollingDeployment(Deployment):
    """Deployment whose nginx upstream is the shipped multi-instance block."""

    def start_nginx(self):
        st = self.stack
        d, conf = st.nginx_conf()
        path = os.path.join(d, "fcgi-auth.conf")
        with open(path) as f:
            text = f.read()
        one = "server 127.0.0.1:%d;" % st.app_port
        lines = [l for l in text.splitlines() if l.rstrip().endswith(MARK)]
        if text.count(one) != 1 or len(lines) < len(self.addrs):
            raise HarnessError("shipped nginx config: expected one %r and %d lines marked %r"
                               % (one, len(self.addrs), MARK))
        servers = []
        for line, addr in zip(lines, self.addrs):
            m = re.match(r"^(\s*)#\s*server\s+\S+(\s[^;]*)?;", line)
            if not m:
                raise HarnessError("cannot read %r" % line)
            servers.append("server %s:%d%s;" % (addr[0], addr[1], m.group(2) or ""))
        for line in lines:
            text = text.replace(line + "\n", "")
        text = text.replace(one, "\n    ".join(servers))
        with open(path, "w") as f:
            f.write(text)
        self.servers, self.nginx_file, self.nginx_text = servers, path, text
        exe = which("nginx")
        if not exe:
            raise Skip("nginx not installed")
        errlog = os.path.join(st.logs, "nginx-error.log")
        p = Proc("nginx", [exe, "-p", d + "/", "-c", conf, "-e", errlog],
                 os.path.join(st.logs, "nginx.out")).start()
        st.procs["nginx"] = p
        st._wait_port(p, st.nginx_port)

    def nginx_down(self, i, down):
        """Mark server i `down` (or not) and reload nginx; return once the
        old workers, which may still hold connections to it, are gone."""
        text = self.nginx_text
        if down:
            text = text.replace(self.servers[i], self.servers[i].replace(";", " down;"))
        with open(self.nginx_file, "w") as f:
            f.write(text)
        master = self.stack.procs["nginx"].pid
        old = children_of(master)
        os.kill(master, signal.SIGHUP)
        end = time.monotonic() + 20
        while any(pid_alive(p) for p in old):
            if time.monotonic() > end:
                raise HarnessError("nginx workers %s did not leave after the reload" % old)
            time.sleep(0.05)

    def restart_instance(self, i):
        """SIGTERM (the instance drains), wait for the exit, start again on
        the same address, wait until it answers."""
        st = self.stack
        name = "app%d" % (i + 1)
        st.procs[name].stop(signal.SIGTERM, timeout=20)
        conf = os.path.join(st.state, name + ".conf")
        p = Proc(name, [FA_BIN, "--config", conf, "serve", "--listen", "%s:%d" % self.addrs[i]],
                 self.instance_log(i), env=st.app_env()).start()
        st.procs[name] = p
        st.wait_app(p, self.addrs[i])


class Load:
    """THREADS clients, each with its own user: login, then verify and
    refresh in a loop, a new login every tenth round."""

    def __init__(self, dep, users):
        self.dep, self.users = dep, users
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.counts = {}
        self.bad = []
        self.threads = []

    def call(self, op, method, path, body=None, token=None):
        try:
            r = self.dep.http(method, path, body=body, token=token, timeout=10.0)
        except OSError as e:
            with self.lock:
                self.bad.append("%s: %s" % (op, e))
            return None
        with self.lock:
            key = (op, r.status)
            self.counts[key] = self.counts.get(key, 0) + 1
            if r.status >= 500:
                self.bad.append("%s: %d %s" % (op, r.status, r.body[:120]))
        return r

    def run(self, email):
        pair, n = None, 0
        while not self.stop_ev.is_set():
            if pair is None or n % 10 == 0:
                r = self.call("login", "POST", "/auth/login", {"email": email, "password": PASSWORD})
                pair = r.json if r is not None and r.status == 200 else None
            n += 1
            if pair is None:
                continue
            self.call("verify", "GET", "/auth/verify", token=pair["accessToken"])
            r = self.call("refresh", "POST", "/auth/refresh", {"refreshToken": pair["refreshToken"]})
            pair = r.json if r is not None and r.status == 200 else None

    def start(self):
        for email in self.users:
            t = threading.Thread(target=self.run, args=(email,), daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(20)


def rolling(drain):
    """Three instances, a load, each restarted in turn; the Load after."""
    with RollingDeployment("rolling") as dep:
        dep.start_instances()
        dep.start_nginx()
        assert all("max_fails=0" in s for s in dep.servers), dep.servers
        users = []
        for n in range(THREADS):
            email = "rolling%d-%s@example.test" % (n, os.urandom(4).hex())
            r = dep.http("POST", "/auth/register", {"email": email, "password": PASSWORD})
            assert r.status == 201, r.status
            users.append(email)
        load = Load(dep, users)
        load.start()
        took = []
        try:
            time.sleep(2)
            for i in range(len(dep.addrs)):
                t0 = time.monotonic()
                if drain:
                    dep.nginx_down(i, True)
                dep.restart_instance(i)
                if drain:
                    dep.nginx_down(i, False)
                took.append(time.monotonic() - t0)
                time.sleep(1.5)
        finally:
            load.stop()
        total = sum(load.counts.values())
        ok = {op: sum(c for (o, s), c in load.counts.items() if o == op and s < 300)
              for op in ("login", "verify", "refresh")}
        print("measured: %s: %d requests during 3 rolling restarts (%s), restarts %s s, 5xx or "
              "failed: %d %s" % ("drained by nginx first" if drain else "bare SIGTERM", total,
                                 ", ".join("%s %d ok" % kv for kv in sorted(ok.items())),
                                 "/".join("%.1f" % t for t in took), len(load.bad), load.bad[:3]))
        assert all(ok.values()), ok
        return load


def test_rolling_restart_of_three_instances_no_5xx():
    load = rolling(drain=True)
    assert not load.bad, "%d requests failed during the restarts, e.g. %s" % (len(load.bad),
                                                                           load.bad[:5])
    other = {k: c for k, c in load.counts.items() if k[1] >= 300}
    assert not other, "answers other than 2xx: %s" % other


def test_bare_sigterm_restarts_never_fail_verify():
    load = rolling(drain=False)
    bad_verify = [b for b in load.bad if b.startswith("verify")]
    assert not bad_verify, "verify failed during bare restarts: %s" % bad_verify[:5]
    assert all(b.startswith(("login", "refresh")) for b in load.bad), load.bad[:5]
