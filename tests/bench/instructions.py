#!/usr/bin/env python3
"""Instructions per request in user space, counted by callgrind: a figure
that does not move with the machine's load, for changes too small for wrk
to see through the noise of a 2-core VM.

  tests/bench/instructions.py [N]     (as root; N requests a case, 2000)

Starts the bench's stack (tests/bench/bench.py) with fcgi-auth and the
libfcgi responder answering verify's headers both under
`valgrind --tool=callgrind`, warms each case up, zeroes the counters,
sends N requests one after another through nginx and prints the program
totals divided by N: the responder (the transport's floor), GET
/auth/verify and POST /auth/refresh.  Counts every thread of the process
(the background ones too, a little), not the kernel.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
BUILD = os.environ.get("FA_BUILDDIR", os.path.join(HERE, "..", ".."))
REAL = os.environ.get("FA_BIN", os.path.join(BUILD, "fcgi-auth"))
OUT = tempfile.mkdtemp(prefix="fa-callgrind-")
VG = ["valgrind", "--tool=callgrind", "--compress-strings=no",
      "--compress-pos=no"]
wrap = os.path.join(OUT, "fcgi-auth")
with open(wrap, "w") as f:
    f.write("#!/bin/sh\nexec %s --callgrind-out-file=%s/app.%%p %s \"$@\"\n"
            % (" ".join(VG), OUT, REAL))
os.chmod(wrap, 0o755)
os.environ["FA_BIN"] = wrap
import bench    # noqa: E402  (harness reads FA_BIN when imported)
import harness  # noqa: E402


def total(pid, prefix):
    f = sorted(glob.glob("%s/%s.%d*" % (OUT, prefix, pid)),
               key=os.path.getmtime)[-1]
    out = subprocess.run(["callgrind_annotate", f], capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        if "PROGRAM TOTALS" in line:
            return int(line.split()[0].replace(",", ""))
    raise RuntimeError("no totals in " + f)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    if not harness.which("valgrind") or not harness.which("callgrind_annotate"):
        print("instructions: valgrind not found (apt-get install valgrind)")
        return 1
    harness.install_cleanup()
    fmin = os.path.join(BUILD, "tests", "bench", "fcgi-min")
    bench.cc(os.path.join(HERE, "fcgi-min.c"), fmin, ["-lfcgi", "-pthread"])
    st = bench.BenchStack(name="instr", lighttpd=False, echo=False, config={
        "log_level": "info", "workers": 4, "password_opslimit": 1,
        "password_memlimit": 8192, "max_sessions_per_user": 10000,
        "ratelimit": "off"})
    st.min_port = st.idmin_port = harness.free_port()
    idp = harness.Proc("fcgi-min-identity", VG + [
        "--callgrind-out-file=%s/min.%%p" % OUT, fmin,
        "127.0.0.1:%d" % st.idmin_port, "4", "identity"],
        os.path.join(OUT, "fcgi-min.log"))
    res = {}
    try:
        idp.start()
        st.start()
        c = http.client.HTTPConnection("127.0.0.1", st.nginx_port)

        def req(method, path, body=None, headers=None):
            h = dict(headers or {})
            if body is not None:
                body = json.dumps(body)
                h["Content-Type"] = "application/json"
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, r.read()
        cred = {"email": "instr@example.com", "password": "bench-password-1"}
        assert req("POST", "/auth/register", cred)[0] == 201
        s, d = req("POST", "/auth/login", cred)
        assert s == 200, (s, d)
        j = json.loads(d)
        auth = {"Authorization": "Bearer " + j["accessToken"]}
        rt = [j["refreshToken"]]

        def one(case):
            if case == "refresh":
                s, d = req("POST", "/auth/refresh", {"refreshToken": rt[0]})
                assert s == 200, (s, d)
                rt[0] = json.loads(d)["refreshToken"]
                return
            path = "/auth/verify" if case == "verify" else \
                "/bench/fcgi-min-identity"
            s, d = req("GET", path, headers=auth)
            assert s == 204, (s, d)
        for case in ("libfcgi+id", "verify", "refresh"):
            pid = idp.pid if case == "libfcgi+id" else st.app_pid
            for _ in range(50):
                one(case)
            time.sleep(0.5)
            subprocess.run(["callgrind_control", "-z", str(pid)],
                           capture_output=True, check=True)
            for _ in range(n):
                one(case)
            subprocess.run(["callgrind_control", "-d", str(pid)],
                           capture_output=True, check=True)
            time.sleep(1.0)
            res[case] = total(pid, "min" if case == "libfcgi+id" else "app")
    finally:
        st.stop()
        idp.stop()
        shutil.rmtree(OUT, ignore_errors=True)
    print("instructions per request in user space (callgrind, %d requests "
          "each, one at a time):" % n)
    for case, v in res.items():
        print("  %-12s %9.0f" % (case, v / n))
    print("verify - libfcgi+id: %.0f (fcgi-auth's own)"
          % ((res["verify"] - res["libfcgi+id"]) / n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
