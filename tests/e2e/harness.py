#!/usr/bin/env python3
"""End-to-end harness for fcgi-auth (python3 standard library only).

A Stack starts, under a fresh state directory and on free 127.0.0.1 ports:
PostgreSQL (throwaway cluster), Redis, `fcgi-auth serve`, nginx and lighttpd
(both configured from the shipped deploy/ files), and a small echo app that
stands for an application behind auth_request.  Every process is recorded by
PID and stopped by PID: in Stack.stop(), in a finally, at exit, and on
SIGINT/SIGTERM/SIGHUP.

Also the test runner (`harness.py run [module|test ...]`, used by run.sh)
and the stack commands behind deploy/stack.sh:
    harness.py up --state DIR [--port 8080]     start and leave running
    harness.py down --state DIR                 stop what `up` started
    harness.py status --state DIR

Environment: FA_BIN (the binary), FA_SRCDIR (source tree: sql/, deploy/),
FA_BUILDDIR (state goes to $FA_BUILDDIR/tmp), FA_KEEP=1 keeps state dirs,
FA_VERBOSE=1 prints more, FA_TEST_TIMEOUT (seconds per test, default 120).
"""

import atexit
import http.client
import importlib.util
import inspect
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get("FA_SRCDIR") or os.path.join(HERE, "..", ".."))
BUILDDIR = os.path.abspath(os.environ.get("FA_BUILDDIR") or SRCDIR)
FA_BIN = os.environ.get("FA_BIN") or os.path.join(BUILDDIR, "fcgi-auth")
VERBOSE = os.environ.get("FA_VERBOSE") == "1"

# Cheap settings for tests: low password cost, no rate limits (tests that
# exercise them turn them on), everything else at its default.
TEST_CONFIG = {
    "log_level": "info",
    "password_opslimit": "1",
    "password_memlimit": "8388608",
    "ratelimit": "off",
}


def warn(msg):
    """A diagnostic that can never raise (stderr may be a closed pipe while
    we are cleaning up)."""
    try:
        sys.stderr.write("harness: %s\n" % msg)
        sys.stderr.flush()
    except Exception:
        pass


def log(msg):
    if VERBOSE:
        warn(msg)


class HarnessError(Exception):
    pass


class Skip(Exception):
    """Raise in a test to skip it (the reason is printed)."""


# --------------------------------------------------------------- utilities

def which(name, extra=()):
    for d in list(extra) + os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/sbin"]:
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def pg_bindir():
    if os.environ.get("FA_PGBIN"):
        return os.environ["FA_PGBIN"]
    base = "/usr/lib/postgresql"
    if os.path.isdir(base):
        vers = sorted((v for v in os.listdir(base) if v.isdigit()), key=int)
        for v in reversed(vers):
            d = os.path.join(base, v, "bin")
            if os.path.exists(os.path.join(d, "initdb")):
                return d
    p = which("initdb")
    if p:
        return os.path.dirname(p)
    raise HarnessError("PostgreSQL server binaries not found (apt-get install postgresql)")


_reserved = set()


def free_port():
    """A port nobody listens on now, never handed out twice by this process."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _reserved:
            _reserved.add(port)
            return port
    raise HarnessError("no free port")


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def can_connect(addr, timeout=0.5):
    try:
        if isinstance(addr, str):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(addr)
        s.close()
        return True
    except OSError:
        return False


def pid_alive(pid):
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            out.append(int(d))
    return out


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 65536))
            lines = f.read().decode(errors="replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)


def short_path(path, want):
    """Unix socket paths must stay under ~100 bytes."""
    if len(path) < 100:
        return path
    return os.path.join(tempfile.mkdtemp(prefix="fa-"), want)


# ---------------------------------------------------------------- processes

class Proc:
    """One process we started; stopped by its PID only."""

    def __init__(self, name, argv, logfile, env=None, popen_kw=None):
        self.name = name
        self.argv = argv
        self.logfile = logfile
        self.popen = None
        self.pid = None
        self.rc = None
        self.env = env
        self.popen_kw = popen_kw or {}

    def start(self):
        out = open(self.logfile, "ab")
        out.write(("--- %s start: %s\n" % (time.strftime("%H:%M:%S"),
                   " ".join(shlex.quote(a) for a in self.argv))).encode())
        out.flush()
        kw = dict(stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                  env=self.env, start_new_session=True)
        kw.update(self.popen_kw)
        self.popen = subprocess.Popen(self.argv, **kw)
        out.close()
        self.pid = self.popen.pid
        self.rc = None
        _registry[self.pid] = self
        log("%s started pid %d" % (self.name, self.pid))
        return self

    def alive(self):
        if self.popen is not None:
            return self.popen.poll() is None
        return pid_alive(self.pid)

    def wait(self, timeout):
        if self.popen is not None:
            try:
                self.rc = self.popen.wait(timeout)
                return self.rc
            except subprocess.TimeoutExpired:
                return None
        end = time.time() + timeout
        while time.time() < end:
            if not pid_alive(self.pid):
                return 0
            time.sleep(0.05)
        return None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signal, wait, then SIGKILL it and any child it left; returns rc."""
        if self.pid is None:
            return self.rc
        if self.alive():
            kids = children_of(self.pid)
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            if self.wait(timeout) is None:
                kids = children_of(self.pid) or kids
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.wait(5)
                warn("%s (pid %d) ignored signal %d for %.0fs; killed"
                     % (self.name, self.pid, sig, timeout))
            for k in kids:      # e.g. nginx workers of a killed master
                if pid_alive(k):
                    try:
                        os.kill(k, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        elif self.popen is not None:
            self.rc = self.popen.poll()
        _registry.pop(self.pid, None)
        log("%s pid %d stopped rc=%s" % (self.name, self.pid, self.rc))
        self.pid = None
        return self.rc


_registry = {}          # pid -> Proc, for the emergency cleanup
_stacks = []            # live stacks


def _cleanup_all():
    for st in list(_stacks):
        try:
            st.stop()
        except BaseException as e:      # keep stopping the rest
            warn("cleanup of %s: %s" % (st.state, e))
    for pid, p in list(_registry.items()):
        try:
            p.stop(timeout=3)
        except BaseException:
            pass


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


def install_cleanup():
    atexit.register(_cleanup_all)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    # Ctrl-C: KeyboardInterrupt, even if started with SIGINT ignored (a
    # background job); the finally blocks and atexit then stop everything.
    signal.signal(signal.SIGINT, signal.default_int_handler)


# -------------------------------------------------------------- HTTP/FastCGI

class Response:
    """(status, headers, body, json) plus .elapsed; unpacks as a 4-tuple."""

    def __init__(self, status, headers, body, elapsed, header_list=None):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed
        self.header_list = header_list or []
        self.json = None
        try:
            if body:
                self.json = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            self.json = None

    def __iter__(self):
        return iter((self.status, self.headers, self.body, self.json))

    def __repr__(self):
        b = self.body[:300]
        return "<%s %r %r>" % (self.status, self.headers, b)


def _headers_dict(pairs):
    d = {}
    for k, v in pairs:
        k = k.lower()
        d[k] = d[k] + ", " + v if k in d else v
    return d


def http_request(host, port, method, path, body=None, headers=None, timeout=10.0):
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        hdrs = dict(headers or {})
        lower = {k.lower() for k in hdrs}
        if body is not None and "content-length" not in lower:
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            view = memoryview(body)
            try:
                for i in range(0, len(body), 65536):
                    conn.sock.sendall(view[i:i + 65536])
            except (BrokenPipeError, ConnectionResetError):
                pass        # the server answered early (413); read that
        r = conn.getresponse()
        data = r.read()
        pairs = r.getheaders()
        return Response(r.status, _headers_dict(pairs), data, time.monotonic() - t0, pairs)
    finally:
        conn.close()


def _fcgi_record(rtype, content, req_id=1):
    out = b""
    for i in range(0, max(len(content), 1), 65535):
        chunk = content[i:i + 65535]
        pad = (8 - len(chunk) % 8) % 8
        out += struct.pack("!BBHHBB", 1, rtype, req_id, len(chunk), pad, 0) + chunk + b"\0" * pad
        if not content:
            break
    return out


def _fcgi_nv(name, value):
    def ln(n):
        return struct.pack("!B", n) if n < 128 else struct.pack("!I", n | 0x80000000)
    name, value = name.encode(), value.encode() if isinstance(value, str) else value
    return ln(len(name)) + ln(len(value)) + name + value


def fcgi_request(addr, method, uri, body=b"", headers=None, params=None,
                 role=1, timeout=10.0):
    """Talk FastCGI to the service directly (addr: (host, port) or a path).
    role 1 = responder, 2 = authorizer.  Returns a Response."""
    t0 = time.monotonic()
    path, _, query = uri.partition("?")
    env = {
        "REQUEST_METHOD": method, "REQUEST_URI": uri, "DOCUMENT_URI": path,
        "SCRIPT_NAME": path, "QUERY_STRING": query, "SERVER_PROTOCOL": "HTTP/1.1",
        "GATEWAY_INTERFACE": "CGI/1.1", "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
        "SERVER_ADDR": "127.0.0.1", "CONTENT_LENGTH": str(len(body)) if body else "",
    }
    for k, v in (headers or {}).items():
        if k.lower() == "content-type":
            env["CONTENT_TYPE"] = v
        else:
            env["HTTP_" + k.upper().replace("-", "_")] = v
    env.update(params or {})
    if role == 2:
        env["FCGI_ROLE"] = "AUTHORIZER"
    s = socket.socket(socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET,
                      socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(addr)
        msg = _fcgi_record(1, struct.pack("!HB5x", role, 0))
        msg += _fcgi_record(4, b"".join(_fcgi_nv(k, v) for k, v in env.items())) + _fcgi_record(4, b"")
        if body:
            msg += _fcgi_record(5, body)
        msg += _fcgi_record(5, b"")
        s.sendall(msg)
        buf, stdout, ended = b"", b"", False
        while not ended:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 8:
                _, rtype, _, clen, plen, _ = struct.unpack("!BBHHBB", buf[:8])
                if len(buf) < 8 + clen + plen:
                    break
                content, buf = buf[8:8 + clen], buf[8 + clen + plen:]
                if rtype == 6:
                    stdout += content
                elif rtype == 3:
                    ended = True
    finally:
        s.close()
    if not ended and not stdout:
        raise ConnectionError("FastCGI: connection closed without an answer")
    head, _, rbody = stdout.partition(b"\r\n\r\n")
    if not _:
        head, _, rbody = stdout.partition(b"\n\n")
    pairs, status = [], 200
    for line in head.decode(errors="replace").splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            if k.strip().lower() == "status":
                status = int(v.strip().split()[0])
            else:
                pairs.append((k.strip(), v.strip()))
    return Response(status, _headers_dict(pairs), rbody, time.monotonic() - t0, pairs)


# -------------------------------------------------------------------- Stack

def _render_shipped(text, subs, what):
    """Replace each key exactly once; a shipped file that no longer has the
    marker fails loudly instead of silently testing something else."""
    for old, new in subs:
        n = text.count(old)
        if n != 1:
            raise HarnessError("%s: expected exactly one %r, found %d" % (what, old, n))
        text = text.replace(old, new)
    return text


# Reports of ASan, LSan, UBSan and TSan in any log of a stack: each is a
# failure, counted by the runner, so a sanitizer build fails on the first
# report.  TSan reports begin "WARNING: ThreadSanitizer: data race ...".
SANITIZER_PATTERNS = re.compile(
    rb"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: |"
    rb"WARNING: ThreadSanitizer: ")
sanitizer_findings = []


def scan_sanitizer_reports(logdir):
    try:
        names = os.listdir(logdir)
    except OSError:
        return
    for fn in sorted(names):
        path = os.path.join(logdir, fn)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        for m in SANITIZER_PATTERNS.finditer(data):
            end = data.find(b"\n", m.start())
            sanitizer_findings.append("%s: %s" % (
                fn, data[m.start():end if end > 0 else None][:200].decode(
                    "utf-8", "replace")))


class Stack:
    """A throwaway fcgi-auth deployment on loopback.  Use as a context
    manager, or start()/stop().  Components can be stopped and started
    one by one on the same ports."""

    # PostgreSQL with its defaults (fsync, synchronous_commit): the stack
    # users start and the benchmark; tests that do not measure durability
    # keep the fast settings
    pg_durable = False

    def __init__(self, config=None, env=None, state=None, nginx=True, lighttpd=True,
                 echo=True, keep=None, name="e2e", ports=None, app_listen="tcp",
                 autoclean=True):
        self.base_config = dict(TEST_CONFIG)
        self.base_config.update({k: str(v) for k, v in (config or {}).items()})
        self.base_env = dict(env or {})
        self.want_nginx, self.want_lighttpd, self.want_echo = nginx, lighttpd, echo
        self.keep = (os.environ.get("FA_KEEP") == "1") if keep is None else keep
        self.name = name
        self.app_listen = app_listen
        self.cur_overrides = {}
        self.cur_env = {}
        self.procs = {}
        self.extra_dirs = []
        self.started = False
        if state:
            self.state = os.path.abspath(state)
            os.makedirs(self.state, exist_ok=True)
            self.owns_state = False
        else:
            root = os.path.join(BUILDDIR, "tmp")
            try:
                os.makedirs(root, exist_ok=True)
                self.state = tempfile.mkdtemp(prefix=name + "-", dir=root)
            except OSError:
                self.state = tempfile.mkdtemp(prefix="fcgi-auth-" + name + "-")
            self.owns_state = True
        os.chmod(self.state, 0o755)
        self.logs = os.path.join(self.state, "logs")
        os.makedirs(self.logs, exist_ok=True)
        ports = ports or {}

        def pick(key, pref=None):
            if ports.get(key):
                return int(ports[key])
            if pref and port_free(pref) and pref not in _reserved:
                _reserved.add(pref)
                return pref
            return free_port()
        self.pg_port = pick("postgres")
        self.redis_port = pick("redis")
        self.app_port = pick("app")
        self.nginx_port = pick("nginx", ports.get("nginx_pref"))
        self.lighttpd_port = pick("lighttpd", ports.get("lighttpd_pref"))
        self.echo_port = pick("echo")
        if app_listen == "unix":
            self.app_addr = short_path(os.path.join(self.state, "fcgi-auth.sock"), "fcgi-auth.sock")
        else:
            self.app_addr = ("127.0.0.1", self.app_port)
        self.secret_file = os.path.join(self.state, "jwt_secret")
        self.config_file = os.path.join(self.state, "fcgi-auth.conf")
        self.pg_root = os.path.join(self.state, "pg")
        self.pg_data = os.path.join(self.pg_root, "data")
        self.pg_sock = None
        self.dbname = "fcgi_auth"
        if autoclean:           # stopped at exit unless stop() ran
            _stacks.append(self)

    # ---- lifecycle
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        self.started = True
        self.start_postgres()
        self.create_database()
        self.start_redis()
        self.write_secret()
        self.migrate()
        self.start_app()
        if self.want_echo:
            self.start_echo()
        if self.want_nginx:
            self.start_nginx()
        if self.want_lighttpd:
            self.start_lighttpd()
        self.save_state()
        return self

    def stop(self):
        """Stop everything this stack started, each by its PID; one failure
        does not keep the others running."""
        steps = [self.procs[n].stop for n in ("lighttpd", "nginx", "echo", "app")
                 if n in self.procs]
        steps += [self.stop_redis, self.stop_postgres]
        steps += [lambda p=p: p.stop(timeout=3) for p in list(self.procs.values())]
        for step in steps:
            try:
                step()
            except BaseException as e:
                warn("stop: %s" % e)
        if self in _stacks:
            _stacks.remove(self)
        scan_sanitizer_reports(self.logs)
        if self.owns_state and not self.keep:
            shutil.rmtree(self.state, ignore_errors=True)
            for d in self.extra_dirs:
                shutil.rmtree(d, ignore_errors=True)
            try:
                os.rmdir(os.path.dirname(self.state))     # $FA_BUILDDIR/tmp, if empty
            except OSError:
                pass

    def reset(self):
        """Between tests: every component up, fcgi-auth on the base config."""
        if not self.pg_running():
            self.start_postgres()
        if not self.redis_running():
            self.start_redis()
        app = self.procs.get("app")
        if not app or not app.alive() or self.cur_overrides or self.cur_env:
            self.start_app()
        for name, fn in (("echo", self.start_echo), ("nginx", self.start_nginx),
                         ("lighttpd", self.start_lighttpd)):
            want = getattr(self, "want_" + name)
            p = self.procs.get(name)
            if want and (not p or not p.alive()):
                fn()

    def save_state(self):
        info = {
            "state": self.state,
            "ports": {"postgres": self.pg_port, "redis": self.redis_port,
                      "app": self.app_port, "nginx": self.nginx_port,
                      "lighttpd": self.lighttpd_port, "echo": self.echo_port},
            "pids": {n: p.pid for n, p in self.procs.items() if p.pid},
            "cmds": {n: p.argv[0] for n, p in self.procs.items() if p.pid},
            "postgres_pid": self.pg_pid(),
            "pg_data": self.pg_data,
            "config": self.config_file,
            "pg_sock": self.pg_sock,
        }
        with open(os.path.join(self.state, "stack.json"), "w") as f:
            json.dump(info, f, indent=1)

    def log_marks(self):
        """Sizes of the log files now; pass to tail_logs(since=...)."""
        marks = {}
        for fn in os.listdir(self.logs):
            try:
                marks[fn] = os.path.getsize(os.path.join(self.logs, fn))
            except OSError:
                pass
        return marks

    def tail_logs(self, n=30, since=None):
        """The last n lines of each log (only what was written after the
        marks in since, if given)."""
        out = []
        for fn in sorted(os.listdir(self.logs)):
            p = os.path.join(self.logs, fn)
            try:
                size = os.path.getsize(p)
            except OSError:
                continue
            start = (since or {}).get(fn, 0)
            if size <= start:
                continue
            with open(p, "rb") as f:
                f.seek(max(start, size - 65536))
                lines = f.read().decode(errors="replace").splitlines()[-n:]
            out.append("----- %s\n%s" % (fn, "\n".join("  | " + l for l in lines)))
        return "\n".join(out)

    # ---- PostgreSQL
    def _as_pg(self, argv):
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--"] + argv
        return argv

    def _pg_reachable(self, path):
        if os.geteuid() != 0:
            return True
        return subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", path],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0

    def start_postgres(self):
        bindir = pg_bindir()
        if not os.path.exists(os.path.join(self.pg_data, "PG_VERSION")):
            os.makedirs(self.pg_root, exist_ok=True)
            if os.geteuid() == 0:
                pw = pwd.getpwnam("postgres")
                os.chown(self.pg_root, pw.pw_uid, pw.pw_gid)
                if not self._pg_reachable(self.pg_root):
                    # a parent directory the postgres user cannot enter
                    self.pg_root = tempfile.mkdtemp(prefix="fa-pg-")
                    self.extra_dirs.append(self.pg_root)
                    os.chmod(self.pg_root, 0o755)
                    os.chown(self.pg_root, pw.pw_uid, pw.pw_gid)
                    self.pg_data = os.path.join(self.pg_root, "data")
            r = subprocess.run(self._as_pg([os.path.join(bindir, "initdb"), "-D", self.pg_data,
                                            "-A", "trust", "-U", "postgres", "-E", "UTF8",
                                            "--locale=C", "--no-sync"]),
                               stdin=subprocess.DEVNULL, capture_output=True, text=True)
            if r.returncode != 0:
                raise HarnessError("initdb failed:\n" + r.stdout + r.stderr)
        sockdir = os.path.join(self.pg_root, "run")
        if len(sockdir) > 80:
            sockdir = tempfile.mkdtemp(prefix="fa-pgs-")
            self.extra_dirs.append(sockdir)
        os.makedirs(sockdir, exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(sockdir, pw.pw_uid, pw.pw_gid)
        self.pg_sock = sockdir
        opts = " ".join([
            "-p", str(self.pg_port), "-c", "listen_addresses=127.0.0.1",
            "-k", shlex.quote(sockdir), "-c", "max_connections=200",
        ] + ([] if self.pg_durable else [
            "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off"]))
        pglog = os.path.join(self.pg_root, "postgres.log")
        r = subprocess.run(self._as_pg([os.path.join(bindir, "pg_ctl"), "start", "-w", "-t", "60",
                                        "-D", self.pg_data, "-l", pglog, "-o", opts]),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if r.returncode != 0:
            raise HarnessError("pg_ctl start failed:\n%s%s\n%s" % (r.stdout, r.stderr, tail(pglog)))
        # keep the server log visible with the others
        link = os.path.join(self.logs, "postgres.log")
        if not os.path.lexists(link):
            os.symlink(pglog, link)
        log("postgres up on %d (pid %s)" % (self.pg_port, self.pg_pid()))

    def pg_pid(self):
        try:
            with open(os.path.join(self.pg_data, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def pg_running(self):
        pid = self.pg_pid()
        return bool(pid) and pid_alive(pid)

    def stop_postgres(self):
        pid = self.pg_pid()
        if not pid or not pid_alive(pid):
            return
        bindir = pg_bindir()
        r = subprocess.run(self._as_pg([os.path.join(bindir, "pg_ctl"), "stop", "-w", "-t", "30",
                                        "-m", "fast", "-D", self.pg_data]),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if r.returncode != 0 or pid_alive(pid):
            warn("pg_ctl stop failed (%s); SIGQUIT to %d" % (r.stderr.strip(), pid))
            try:
                os.kill(pid, signal.SIGQUIT)
            except ProcessLookupError:
                pass
            for _ in range(100):
                if not pid_alive(pid):
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)

    def psql(self, sql, db=None):
        """Run SQL; returns a list of rows, each a list of strings (None for NULL)."""
        r = subprocess.run(
            [os.path.join(pg_bindir(), "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-F", "\x1f", "-R", "\x1e", "-P", "null=\x1a",
             "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "-d", db or self.dbname,
             "-c", sql],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        if r.returncode != 0:
            raise HarnessError("psql failed: %s" % r.stderr.decode(errors="replace").strip())
        out = r.stdout.decode()
        if out.endswith("\n"):
            out = out[:-1]
        rows = []
        for rec in out.split("\x1e"):
            if rec == "":
                continue
            rows.append([None if c == "\x1a" else c for c in rec.split("\x1f")])
        return rows

    def psql_value(self, sql):
        rows = self.psql(sql)
        return rows[0][0] if rows else None

    def create_database(self):
        if not self.psql("SELECT 1 FROM pg_database WHERE datname = '%s'" % self.dbname, db="postgres"):
            self.psql("CREATE DATABASE %s" % self.dbname, db="postgres")

    @property
    def database_url(self):
        return "host=127.0.0.1 port=%d dbname=%s user=postgres" % (self.pg_port, self.dbname)

    # ---- Redis
    def start_redis(self):
        rdir = os.path.join(self.state, "redis")
        os.makedirs(rdir, exist_ok=True)
        exe = which("redis-server")
        if not exe:
            raise HarnessError("redis-server not found (apt-get install redis-server)")
        p = Proc("redis", [exe, "--port", str(self.redis_port), "--bind", "127.0.0.1",
                           "--save", "", "--appendonly", "no", "--daemonize", "no",
                           "--dir", rdir, "--pidfile", os.path.join(rdir, "redis.pid"),
                           "--protected-mode", "yes"],
                 os.path.join(self.logs, "redis.log")).start()
        self.procs["redis"] = p
        end = time.time() + 15
        while time.time() < end:
            if self.redis_ping():
                return
            if not p.alive():
                break
            time.sleep(0.05)
        raise HarnessError("redis did not start:\n" + tail(p.logfile))

    def redis_ping(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.5)
            s.sendall(b"PING\r\n")
            ok = s.recv(16).startswith(b"+PONG")
            s.close()
            return ok
        except OSError:
            return False

    def redis_running(self):
        p = self.procs.get("redis")
        return bool(p and p.alive())

    def stop_redis(self):
        p = self.procs.get("redis")
        if p:
            p.stop()

    def redis_cli(self, *args):
        r = subprocess.run([which("redis-cli") or "redis-cli", "-h", "127.0.0.1",
                            "-p", str(self.redis_port), "--raw"] + [str(a) for a in args],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        if r.returncode != 0:
            raise HarnessError("redis-cli failed: %s" % r.stderr.decode(errors="replace"))
        return r.stdout.decode(errors="replace").rstrip("\n")

    # ---- fcgi-auth
    def write_secret(self):
        if not os.path.exists(self.secret_file):
            fd = os.open(self.secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, os.urandom(32).hex().encode() + b"\n")
            os.close(fd)

    def app_config(self, overrides=None):
        conf = {
            "sql_dir": os.path.join(SRCDIR, "sql"),
            "database_url": self.database_url,
            "redis_host": "127.0.0.1",
            "redis_port": str(self.redis_port),
            "jwt_secret_file": self.secret_file,
        }
        if self.app_listen == "unix":
            conf["listen_mode"] = "0666"
        conf.update(self.base_config)
        for k, v in (overrides or {}).items():
            if v is None:
                conf.pop(k, None)      # None removes a key
            else:
                conf[k] = str(v)
        return conf

    def write_config(self, overrides=None, path=None):
        conf = self.app_config(overrides)
        path = path or self.config_file
        with open(path, "w") as f:
            f.write("# generated by tests/e2e/harness.py\n")
            for k, v in conf.items():
                f.write("%s = %s\n" % (k, v))
        return path

    def app_env(self, env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("FCGI_AUTH_")}
        e.update(self.base_env)
        e.update(env or {})
        return e

    def run_cli(self, *args, config=None, overrides=None, env=None, timeout=60):
        """Run `fcgi-auth --config FILE ARGS...`; returns CompletedProcess (text)."""
        if config is None:
            config = self.write_config(overrides, path=os.path.join(self.state, "cli.conf"))
        return subprocess.run([FA_BIN, "--config", config] + [str(a) for a in args],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              env=self.app_env(env), timeout=timeout)

    def migrate(self):
        if not os.path.exists(FA_BIN):
            raise HarnessError("fcgi-auth binary not found at %s (build first, or set FA_BIN)" % FA_BIN)
        r = self.run_cli("migrate")
        if r.returncode != 0:
            raise HarnessError("fcgi-auth migrate failed (rc %d):\n%s%s" % (r.returncode, r.stdout, r.stderr))

    def app_listen_arg(self):
        return self.app_addr if isinstance(self.app_addr, str) else "%s:%d" % self.app_addr

    def start_app(self, overrides=None, env=None, wait=True, **kw):
        """(Re)start `fcgi-auth serve` with the base config plus overrides
        (also accepted as keyword arguments)."""
        overrides = dict(overrides or {}, **kw)
        self.stop_app()
        self.cur_overrides, self.cur_env = overrides, dict(env or {})
        self.write_config(overrides)
        if isinstance(self.app_addr, str) and os.path.exists(self.app_addr):
            os.unlink(self.app_addr)
        p = Proc("app", [FA_BIN, "--config", self.config_file, "serve",
                         "--listen", self.app_listen_arg()],
                 os.path.join(self.logs, "fcgi-auth.log"), env=self.app_env(env)).start()
        self.procs["app"] = p
        if wait:
            self.wait_app(p)
        return p

    restart_app = start_app

    def wait_app(self, p=None, addr=None, timeout=20):
        p = p or self.procs.get("app")
        addr = addr or self.app_addr
        end = time.time() + timeout
        last = None
        while time.time() < end:
            if p is not None and not p.alive():
                raise HarnessError("fcgi-auth exited (rc %s) during start:\n%s"
                                   % (p.popen.poll() if p.popen else "?", tail(p.logfile)))
            try:
                fcgi_request(addr, "GET", "/auth/health", timeout=3)
                return
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise HarnessError("fcgi-auth did not answer on %r within %ds (%s):\n%s"
                           % (addr, timeout, last, tail(p.logfile) if p else ""))

    def stop_app(self, sig=signal.SIGTERM, timeout=10.0):
        p = self.procs.get("app")
        return p.stop(sig, timeout) if p else None

    @property
    def app_pid(self):
        p = self.procs.get("app")
        return p.pid if p and p.alive() else None

    # ---- echo app (stands for an application behind auth_request)
    def start_echo(self):
        p = Proc("echo", [sys.executable, os.path.abspath(__file__), "echo", str(self.echo_port)],
                 os.path.join(self.logs, "echo.log")).start()
        self.procs["echo"] = p
        self._wait_port(p, self.echo_port)

    def _wait_port(self, p, port, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            if can_connect(("127.0.0.1", port)):
                return
            if not p.alive():
                break
            time.sleep(0.05)
        raise HarnessError("%s did not listen on %d:\n%s" % (p.name, port, tail(p.logfile)))

    # ---- nginx (from deploy/nginx)
    def nginx_conf(self):
        d = os.path.join(self.state, "nginx")
        for sub in ("snippets", "tmp"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        src = os.path.join(SRCDIR, "deploy", "nginx")
        for fn in os.listdir(os.path.join(src, "snippets")):
            shutil.copy(os.path.join(src, "snippets", fn), os.path.join(d, "snippets", fn))
        with open(os.path.join(src, "fcgi-auth.conf")) as f:
            text = f.read()
        upstream = ("unix:" + self.app_addr) if isinstance(self.app_addr, str) else "%s:%d" % self.app_addr
        text = _render_shipped(text, [
            ("server unix:/run/fcgi-auth/fcgi-auth.sock;", "server %s;" % upstream),
            ("server 127.0.0.1:8081;", "server 127.0.0.1:%d;" % self.echo_port),
            ("listen 80;", "listen 127.0.0.1:%d;" % self.nginx_port),
        ], "deploy/nginx/fcgi-auth.conf")
        with open(os.path.join(d, "fcgi-auth.conf"), "w") as f:
            f.write(text)
        t = os.path.join(d, "tmp")
        main = """# generated by tests/e2e/harness.py; the server block is deploy/nginx/fcgi-auth.conf
daemon off;
master_process on;
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(logs)s/nginx-error.log notice;
events { worker_connections 1024; }
http {
    default_type application/octet-stream;
    access_log %(logs)s/nginx-access.log;
    client_body_temp_path %(t)s/body;
    fastcgi_temp_path %(t)s/fastcgi;
    proxy_temp_path %(t)s/proxy;
    uwsgi_temp_path %(t)s/uwsgi;
    scgi_temp_path %(t)s/scgi;
    include fcgi-auth.conf;
}
""" % {"d": d, "logs": self.logs, "t": t}
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(main)
        return d, conf

    def start_nginx(self):
        exe = which("nginx")
        if not exe:
            raise HarnessError("nginx not found (apt-get install nginx)")
        d, conf = self.nginx_conf()
        errlog = os.path.join(self.logs, "nginx-error.log")
        t = subprocess.run([exe, "-t", "-p", d + "/", "-c", conf, "-e", errlog],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if t.returncode != 0:
            raise HarnessError("nginx -t failed:\n" + t.stderr)
        p = Proc("nginx", [exe, "-p", d + "/", "-c", conf, "-e", errlog],
                 os.path.join(self.logs, "nginx.out")).start()
        self.procs["nginx"] = p
        self._wait_port(p, self.nginx_port)

    def stop_nginx(self):
        p = self.procs.get("nginx")
        if p:
            p.stop(signal.SIGTERM)

    # ---- lighttpd (from deploy/lighttpd)
    def lighttpd_conf(self):
        d = os.path.join(self.state, "lighttpd")
        www = os.path.join(self.state, "www")
        for sub in (d, os.path.join(d, "tmp"), os.path.join(www, "app"),
                    os.path.join(www, "app-admin"), os.path.join(www, "app-mfa")):
            os.makedirs(sub, exist_ok=True)
        for sub in ("app", "app-admin", "app-mfa"):
            with open(os.path.join(www, sub, "hello.txt"), "w") as f:
                f.write("hello from /%s/\n" % sub)
        with open(os.path.join(SRCDIR, "deploy", "lighttpd", "fcgi-auth.conf")) as f:
            text = f.read()
        # the shipped file names the systemd socket; the stack's own
        # socket or loopback port instead
        marker = '"socket" => "/run/fcgi-auth/fcgi-auth.sock"'
        if marker not in text:
            raise HarnessError("deploy/lighttpd/fcgi-auth.conf: no %r" % marker)
        if isinstance(self.app_addr, str):
            text = text.replace(marker, '"socket" => "%s"' % self.app_addr)
        else:
            text = text.replace(marker, '"host" => "127.0.0.1", "port" => %d' % self.app_port)
        if '"/var/www/html"' not in text:
            raise HarnessError('deploy/lighttpd/fcgi-auth.conf: no "/var/www/html" docroot')
        text = text.replace('"/var/www/html"', '"%s"' % www)
        with open(os.path.join(d, "fcgi-auth.conf"), "w") as f:
            f.write(text)
        main = """# generated by tests/e2e/harness.py; the rest is deploy/lighttpd/fcgi-auth.conf
server.document-root = "%(www)s"
server.bind = "127.0.0.1"
server.port = %(port)d
server.pid-file = "%(d)s/lighttpd.pid"
server.errorlog = "%(logs)s/lighttpd-error.log"
server.upload-dirs = ( "%(d)s/tmp" )
server.modules = ( "mod_access", "mod_accesslog" )
accesslog.filename = "%(logs)s/lighttpd-access.log"
mimetype.assign = ( ".txt" => "text/plain", ".json" => "application/json" )
include "%(d)s/fcgi-auth.conf"
""" % {"www": www, "port": self.lighttpd_port, "d": d, "logs": self.logs}
        conf = os.path.join(d, "lighttpd.conf")
        with open(conf, "w") as f:
            f.write(main)
        return conf

    def start_lighttpd(self):
        exe = which("lighttpd")
        if not exe:
            raise HarnessError("lighttpd not found (apt-get install lighttpd)")
        conf = self.lighttpd_conf()
        t = subprocess.run([exe, "-tt", "-f", conf], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True)
        if t.returncode != 0:
            raise HarnessError("lighttpd -tt failed:\n" + t.stdout + t.stderr)
        p = Proc("lighttpd", [exe, "-D", "-f", conf], os.path.join(self.logs, "lighttpd.out")).start()
        self.procs["lighttpd"] = p
        self._wait_port(p, self.lighttpd_port)

    def stop_lighttpd(self):
        p = self.procs.get("lighttpd")
        if p:
            p.stop()

    # ---- requests
    def url(self, via="nginx"):
        port = {"nginx": self.nginx_port, "lighttpd": self.lighttpd_port}[via]
        return "http://127.0.0.1:%d" % port

    def request(self, method, path, body=None, headers=None, via="nginx",
                raw_body=None, timeout=10.0, token=None):
        """One HTTP request through nginx or lighttpd (or via='fcgi': FastCGI
        straight to the service).  body is JSON-encoded; raw_body is sent as
        is; both default to Content-Type application/json.  token adds
        Authorization: Bearer.  Returns Response (unpacks as status, headers,
        body bytes, json-or-None)."""
        hdrs = dict(headers or {})
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None and not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = "application/json"
        if token:
            hdrs["Authorization"] = "Bearer " + token
        if via == "fcgi":
            return fcgi_request(self.app_addr, method, path, data or b"", hdrs, timeout=timeout)
        port = {"nginx": self.nginx_port, "lighttpd": self.lighttpd_port}[via]
        return http_request("127.0.0.1", port, method, path, data, hdrs, timeout)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)


# ------------------------------------------------------------------- runner

class TestTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise TestTimeout("test timed out")


def discover(names):
    mods = sorted(fn[:-3] for fn in os.listdir(HERE)
                  if fn.startswith("test_") and fn.endswith(".py"))
    plan = []       # (module name, [test names] or None for all)
    if not names:
        return [(m, None) for m in mods]
    for n in names:
        n = os.path.basename(n)
        if n.endswith(".py"):
            n = n[:-3]
        if n in mods:
            plan.append((n, None))
        elif "." in n and n.split(".", 1)[0] in mods:
            m, t = n.split(".", 1)
            plan.append((m, [t]))
        else:           # a bare test function name: find its module
            found = False
            for m in mods:
                with open(os.path.join(HERE, m + ".py")) as f:
                    if re.search(r"^def %s\(" % re.escape(n), f.read(), re.M):
                        plan.append((m, [n]))
                        found = True
            if not found:
                raise HarnessError("no test module or test named %r" % n)
    merged = {}
    for m, ts in plan:
        if m in merged and merged[m] is not None and ts is not None:
            merged[m] += ts
        else:
            merged[m] = None if ts is None or (m in merged and merged[m] is None) else list(ts)
    return list(merged.items())


def load_module(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


# The servers a run starts; without one of them the suite is skipped (exit
# 77, automake's SKIP) rather than failed.
SKIP_EXIT = 77


def missing_servers():
    missing = []
    try:
        pg_bindir()
    except HarnessError:
        missing.append("postgresql")
    missing += [p for p in ("redis-server", "nginx", "lighttpd") if not which(p)]
    return missing


def run_tests(names):
    missing = missing_servers()
    if missing:
        print("SKIP: not installed: %s" % ", ".join(missing), flush=True)
        return SKIP_EXIT
    install_cleanup()
    signal.signal(signal.SIGALRM, _alarm)
    default_timeout = int(os.environ.get("FA_TEST_TIMEOUT", "120"))
    npass = nfail = nskip = 0
    failed = []
    sys.path.insert(0, HERE)
    for modname, only in discover(names):
        mod = load_module(modname)
        tests = [(n, f) for n, f in vars(mod).items()
                 if n.startswith("test_") and callable(f) and getattr(f, "__module__", "") == modname]
        tests.sort(key=lambda nf: nf[1].__code__.co_firstlineno)
        if only:
            missing = set(only) - {n for n, _ in tests}
            if missing:
                raise HarnessError("%s has no test %s" % (modname, ", ".join(sorted(missing))))
            tests = [(n, f) for n, f in tests if n in only]
        stack, stack_err = None, None
        print("== %s (%d tests)" % (modname, len(tests)), flush=True)
        try:
            for tname, fn in tests:
                full = "%s.%s" % (modname, tname)
                wants_stack = "stack" in inspect.signature(fn).parameters
                t0 = time.monotonic()
                marks = stack.log_marks() if stack is not None and not stack_err else None
                try:
                    signal.alarm(getattr(fn, "timeout", default_timeout))
                    if wants_stack:
                        if stack_err:
                            raise HarnessError("stack failed to start: %s" % stack_err.splitlines()[0])
                        if stack is None:
                            try:
                                stack = Stack(config=getattr(mod, "STACK_CONFIG", None),
                                              name=modname.replace("test_", ""),
                                              **getattr(mod, "STACK_OPTIONS", {}))
                                stack.start()
                            except Exception as e:
                                stack_err = str(e)
                                print("stack start failed:\n%s" % e, flush=True)
                                if stack:
                                    print(stack.tail_logs(), flush=True)
                                raise
                        fn(stack)
                    else:
                        fn()
                    signal.alarm(0)
                    npass += 1
                    print("ok    %s (%.1fs)" % (full, time.monotonic() - t0), flush=True)
                except Skip as e:
                    signal.alarm(0)
                    nskip += 1
                    print("skip  %s: %s" % (full, e), flush=True)
                except (Exception, TestTimeout) as e:
                    signal.alarm(0)
                    nfail += 1
                    failed.append(full)
                    if isinstance(e, AssertionError):
                        tb = traceback.extract_tb(e.__traceback__)
                        where = next((fr for fr in reversed(tb) if fr.filename.endswith(modname + ".py")), tb[-1])
                        msg = "%s (line %d)" % (e or "assertion failed", where.lineno)
                    else:
                        msg = "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc(limit=6))
                    print("FAIL  %s (%.1fs): %s" % (full, time.monotonic() - t0, msg), flush=True)
                    if stack is not None and not stack_err:
                        print(stack.tail_logs(25, since=marks), flush=True)
                if stack is not None and not stack_err:
                    try:
                        stack.reset()
                    except Exception as e:
                        stack_err = "reset after %s failed: %s" % (tname, e)
                        print(stack_err, flush=True)
        finally:
            signal.alarm(0)
            if stack is not None:
                stack.stop()
    if failed:
        print("failed: " + " ".join(failed))
    for finding in sanitizer_findings:
        print("FAIL  sanitizer report: %s" % finding, flush=True)
        nfail += 1
    line = "%d passed, %d failed" % (npass, nfail)
    if nskip:
        line += ", %d skipped" % nskip
    print(line, flush=True)
    return 1 if nfail else 0


# ------------------------------------------------------------ stack commands

def cmd_up(state, port):
    install_cleanup()
    state = os.path.abspath(state)
    info_path = os.path.join(state, "stack.json")
    if os.path.exists(info_path):
        info = json.load(open(info_path))
        alive = [n for n, pid in info.get("pids", {}).items() if pid_alive(pid)]
        if alive:
            print("already up (%s); run `down` first" % ", ".join(sorted(alive)))
            return cmd_status(state)
        ports = info.get("ports", {})
    else:
        ports = {"nginx_pref": port, "lighttpd_pref": port + 1 if port else None}
    if port:
        ports["nginx"] = port if port_free(port) else None
    st = Stack(state=state, keep=True, name="stack", config={"log_level": "info",
               "ratelimit": "on", "password_opslimit": "2", "password_memlimit": "19922944"},
               ports=ports)
    st.pg_durable = True
    try:
        st.start()
    except BaseException:
        st.stop()
        raise
    _stacks.remove(st)          # leave it running
    _registry.clear()
    print("fcgi-auth is up (state in %s):" % st.state)
    print("  nginx:    curl -s %s/auth/health" % st.url("nginx"))
    print("  lighttpd: curl -s %s/auth/health" % st.url("lighttpd"))
    print("  logs:     %s/   stop with: deploy/stack.sh down" % st.logs)
    return 0


def _load_stack(state):
    info_path = os.path.join(os.path.abspath(state), "stack.json")
    if not os.path.exists(info_path):
        return None, None
    info = json.load(open(info_path))
    st = Stack(state=info["state"], keep=True, name="stack", ports=info["ports"],
               autoclean=False)
    st.pg_data = info["pg_data"]
    st.pg_root = os.path.dirname(st.pg_data)
    for name, pid in info.get("pids", {}).items():
        p = Proc(name, [info.get("cmds", {}).get(name, name)], os.path.join(st.logs, name + ".log"))
        p.pid = pid
        st.procs[name] = p
    return st, info


def cmd_down(state):
    st, info = _load_stack(state)
    if not st:
        print("nothing to stop: no %s/stack.json" % state)
        return 0
    for name, p in list(st.procs.items()):
        cmd = proc_cmdline(p.pid) if p.pid else ""
        exe = os.path.basename(p.argv[0])
        if not p.pid or not pid_alive(p.pid):
            del st.procs[name]
        elif exe not in cmd:        # PID reused by something else: leave it
            print("%s: pid %d is now %r, not ours; left alone" % (name, p.pid, cmd[:60]))
            del st.procs[name]
    st.stop()
    info["pids"], info["postgres_pid"] = {}, None
    with open(os.path.join(st.state, "stack.json"), "w") as f:
        json.dump(info, f, indent=1)
    print("stopped")
    return 0


def cmd_status(state):
    st, info = _load_stack(state)
    if not st or not info.get("pids"):
        print("not up (%s)" % ("stopped" if st else "no %s/stack.json" % state))
        return 1
    ok = True
    for name, p in sorted(st.procs.items()):
        up = pid_alive(p.pid)
        ok &= up
        print("%-9s pid %-7s %s" % (name, p.pid, "running" if up else "DOWN"))
    pg = st.pg_running()
    ok &= pg
    print("%-9s pid %-7s %s" % ("postgres", st.pg_pid(), "running" if pg else "DOWN"))
    try:
        r = st.request("GET", "/auth/health", timeout=3)
        print("health via nginx: %d %s" % (r.status, r.body.decode(errors="replace").strip()))
    except OSError as e:
        ok = False
        print("health via nginx: %s" % e)
    print("nginx: %s   lighttpd: %s" % (st.url("nginx"), st.url("lighttpd")))
    return 0 if ok else 1


def cmd_echo(port):
    """The stand-in application behind auth_request: answers every request
    with its method, path and headers as JSON."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle_one(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            out = json.dumps({"method": self.command, "path": self.path,
                              "headers": {k.lower(): v for k, v in self.headers.items()},
                              "body_length": len(body)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_one

        def log_message(self, fmt, *args):
            sys.stderr.write("echo: " + (fmt % args) + "\n")

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, rest = argv[0], argv[1:]

    def opt(name, default=None):
        if name in rest:
            i = rest.index(name)
            v = rest[i + 1]
            del rest[i:i + 2]
            return v
        return default
    if cmd == "run":
        return run_tests(rest)
    if cmd == "echo":
        cmd_echo(int(rest[0]))
        return 0
    state = opt("--state", os.path.join(SRCDIR, "state"))
    if cmd == "up":
        return cmd_up(state, int(opt("--port", "8080")))
    if cmd == "down":
        return cmd_down(state)
    if cmd == "status":
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        return cmd_status(state)
    print("unknown command %r" % cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    # test modules `import harness`: give them this very module, so that
    # Skip, the registry and the cleanup list are one and the same
    sys.modules.setdefault("harness", sys.modules["__main__"])
    try:
        sys.exit(main(sys.argv[1:]))
    except HarnessError as e:
        print("harness: %s" % e, file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        warn("interrupted; stopping everything that was started")
        _cleanup_all()
        sys.exit(130)
