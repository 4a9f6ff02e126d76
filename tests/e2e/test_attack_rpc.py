"""Abuse of the auth.validate_token RPC (docs/SECURITY.md 10.9): a request
replayed with its id, another caller's id reused, a reply forged on the
reply channel, a huge token.  The flood and the three-instance reply storm
are in test_rpc."""

import json
import os
import time

from authlib import RedisError, Resp, User
from test_rpc import (PATTERN, READY_RE, REPLY, Publisher, Replies, app_log, app_metric,
                      envelope, expected_answer, rpc_raw, wait_log)

STACK_CONFIG = {}


def test_replayed_request_id_is_answered_once(stack):
    """The same envelope published again (a replay, or a second instance's
    retry) within RPC_CLAIM_TTL gets no second reply."""
    wait_log(app_log(stack), READY_RE)
    u = User(stack, "atk-replay")
    rid = "replay-%s" % os.urandom(4).hex()
    with Replies(stack) as rep:
        v, _ = rpc_raw(stack, rep, u.access, rid)
        assert v["response"]["valid"] is True, v
        pub = Publisher(stack)
        try:
            for _ in range(5):
                pub.publish(envelope(u.access, rid))
        finally:
            pub.close()
        rpc_raw(stack, rep, u.access, "after-" + rid)
        time.sleep(0.2)
        assert len(rep.of(rid)) == 1, "replayed id answered %d times" % len(rep.of(rid))


def test_another_callers_id_reused_gets_no_answer(stack):
    """A caller's id seen on the request channel and published again with
    the attacker's token: the id was claimed by the first request, so the
    victim gets exactly one reply, about its own token."""
    wait_log(app_log(stack), READY_RE)
    victim, attacker = User(stack, "atk-victim"), User(stack, "atk-attacker")
    rid = "victim-%s" % os.urandom(4).hex()
    with Replies(stack) as rep:
        pub = Publisher(stack)
        try:
            # both before the responder reads either: the first one counts
            pub.pipeline([envelope(victim.access, rid), envelope(attacker.access, rid)])
        finally:
            pub.close()
        rep.wait(rid)
        time.sleep(0.3)
        assert [x for _, x in rep.of(rid)] == [
            {"id": rid, "response": expected_answer(victim.access), "isDisposed": True}], \
            rep.of(rid)


def test_forged_reply_needs_publish_rights_on_the_reply_channel(stack):
    """The NestJS transport has no signature: whoever may PUBLISH on
    auth.validate_token.reply can answer for fcgi-auth.  The defence is a
    Redis ACL with selectors (Redis 7): a service user may PUBLISH on the
    request channel and SUBSCRIBE to the reply channel, nothing else; its
    PUBLISH on the reply channel is refused (NOPERM), and its requests are
    answered."""
    wait_log(app_log(stack), READY_RE)
    stack.redis_cli("ACL", "SETUSER", "mallory", "on", ">mallory-pw", "resetchannels",
                    "-@all", "(+publish &%s)" % PATTERN, "(+subscribe &%s)" % REPLY)
    try:
        sub = Resp(stack.redis_port)
        try:
            assert sub.call("AUTH", "mallory", "mallory-pw") == "OK"
            assert sub.call("SUBSCRIBE", REPLY)[0] == b"subscribe"
            sub.sock.settimeout(5)
        except BaseException:
            sub.close()
            raise
        c = Resp(stack.redis_port)
        try:
            assert c.call("AUTH", "mallory", "mallory-pw") == "OK"
            try:
                c.call("PUBLISH", REPLY, '{"id":"x","response":{"valid":true},"isDisposed":true}')
            except RedisError as e:
                assert "NOPERM" in str(e), e
            else:
                raise AssertionError("an ACL user without reply rights published a reply")
            # the request channel stays open to it, and is answered
            assert c.call("PUBLISH", PATTERN, envelope("x.y.z", "mallory-1")) >= 1
            m = sub.read()
            assert m[0] == b"message" and json.loads(m[2]) == {
                "id": "mallory-1", "response": {"valid": False}, "isDisposed": True}, m
        finally:
            c.close()
            sub.close()
    finally:
        stack.redis_cli("ACL", "DELUSER", "mallory")


def test_huge_token_and_message_are_dropped_unread(stack):
    """A token over FA_TOKEN_MAX or a message over RPC_MSG_MAX: dropped
    before any check, counted, no reply; the next request is answered."""
    wait_log(app_log(stack), READY_RE)
    u = User(stack, "atk-huge")
    d0 = app_metric(stack, "rpc_drops_total")
    with Replies(stack) as rep:
        pub = Publisher(stack)
        try:
            pub.publish(envelope("A" * (1 << 20), "huge-1"))
            pub.publish(envelope(u.access, "huge-2", data={"token": u.access, "pad": "B" * (1 << 20)}))
        finally:
            pub.close()
        v, _ = rpc_raw(stack, rep, u.access, "after-huge")
        assert v["response"]["valid"] is True
        time.sleep(0.2)
        assert not rep.of("huge-1") and not rep.of("huge-2"), rep.all()
    assert app_metric(stack, "rpc_drops_total") - d0 == 2
