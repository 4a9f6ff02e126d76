"""Kept connections never starve a new one.  A worker stays with its
connection while the web server keeps it alive, and nginx keeps up to
`keepalive` idle connections per worker process besides those in use, so
the connections can outnumber the workers.  A connection that then waits in
the backlog must not wait for the web server's timeout (nginx answered 504
after fastcgi_read_timeout to logins under load): the worker kept idle the
longest gives its connection up.

Two workers here, both held by idle kept connections, and a third
connection with a request: it is answered within a few watch ticks, the
oldest idle connection is the one closed, and the younger one still serves."""

import socket
import time

from test_attack_socket import read_answer, request_bytes, status_of

STACK_CONFIG = {"workers": "2"}
STACK_OPTIONS = {"echo": False}


def kept(stack):
    s = socket.create_connection(stack.app_addr, timeout=5)
    s.sendall(request_bytes(keep=True))
    assert status_of(read_answer(s)) == 200
    return s


def closed_by_peer(s, timeout):
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def test_a_waiting_connection_takes_the_oldest_idle_workers_place(stack):
    old = kept(stack)
    time.sleep(0.3)
    young = kept(stack)
    new = socket.create_connection(stack.app_addr, timeout=5)
    try:
        t0 = time.monotonic()
        new.sendall(request_bytes())
        answer = read_answer(new, timeout=5)
        took = time.monotonic() - t0
        assert status_of(answer) == 200, answer
        assert took < 3.0, took            # a tick is 200 ms; loaded CI slack
        assert closed_by_peer(old, 2.0), "the oldest idle connection was kept"
        # the younger one was not shed: it still answers
        young.sendall(request_bytes(keep=True))
        assert status_of(read_answer(young)) == 200
    finally:
        for s in (old, young, new):
            s.close()


def test_no_shedding_while_a_worker_is_free(stack):
    one = kept(stack)
    try:
        for _ in range(5):
            s = socket.create_connection(stack.app_addr, timeout=5)
            s.sendall(request_bytes())
            assert status_of(read_answer(s)) == 200
            s.close()
        time.sleep(0.5)
        assert not closed_by_peer(one, 0.5)
        one.sendall(request_bytes(keep=True))
        assert status_of(read_answer(one)) == 200
    finally:
        one.close()
