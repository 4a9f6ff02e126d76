"""Helpers of the second-factor tests (test_mfa, test_attack_mfa): RFC 6238
codes computed here with hmac/hashlib, and a user that enrols."""

import base64
import hashlib
import hmac
import struct
import time

from authlib import PASSWORD, User, assert_token_pair, jwt_parts, login_raw, show

PERIOD = 30


def step_now():
    return int(time.time() // PERIOD)


def steady(margin=3.0):
    """Stay clear of a step boundary: the server must see the step we saw."""
    left = PERIOD - (time.time() % PERIOD)
    if left < margin:
        time.sleep(left + 0.2)


def totp_at(secret_b32, step):
    key = base64.b32decode(secret_b32)
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    o = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7fffffff) % 1000000)


def claims(tok):
    return jwt_parts(tok)[1]


def reset_last_step(stack, uid):
    """Test-only: forget the last used step, so the next test has every step
    of the window to use."""
    stack.psql("UPDATE auth.users SET mfa_last_step = 0 WHERE id = '%s'" % uid)


class MfaUser(User):
    """A user with TOTP enrolled and confirmed; self.pair is its first
    (aal 1) session, from before MFA was on."""

    def __init__(self, stack, tag="mfa", enable=True, via="nginx"):
        super().__init__(stack, tag)
        self.secret = self.uri = None
        self.recovery = []
        if enable:
            self.enrol(via)
            self.confirm(via)

    def enrol(self, via="nginx"):
        # a body (or Content-Length: 0): lighttpd answers a POST without
        # a length 411 itself
        r = self.stack.post("/auth/mfa/totp", {}, token=self.access, via=via)
        assert r.status == 200, "POST /auth/mfa/totp: want 200, got %s" % show(r)
        self.secret, self.uri = r.json["secret"], r.json["otpauthUri"]
        return r

    def confirm(self, via="nginx"):
        steady()
        r = self.stack.post("/auth/mfa/totp/confirm", {"code": totp_at(self.secret, step_now())},
                            token=self.access, via=via)
        assert r.status == 200, "POST /auth/mfa/totp/confirm: want 200, got %s" % show(r)
        self.recovery = r.json["recoveryCodes"]
        reset_last_step(self.stack, self.id)
        return r

    def code(self, off=0):
        return totp_at(self.secret, step_now() + off)

    def challenge(self, via="nginx", ua=None):
        r = login_raw(self.stack, self.email, PASSWORD, ua=ua, via=via)
        assert r.status == 401 and r.json and r.json.get("error") == "mfa_required", \
            "login of an MFA user: want 401 mfa_required, got %s" % show(r)
        return r.json["mfaToken"]

    def verify_raw(self, token, code=None, recovery=None, via="nginx"):
        body = {"mfaToken": token}
        if code is not None:
            body["code"] = code
        if recovery is not None:
            body["recoveryCode"] = recovery
        return self.stack.post("/auth/mfa/verify", body, via=via)

    def login2(self, via="nginx", off=0):
        """A full login with the second factor: the aal 2 token pair."""
        steady()
        tok = self.challenge(via)
        r = self.verify_raw(tok, self.code(off), via=via)
        pair = assert_token_pair(r, "POST /auth/mfa/verify")
        reset_last_step(self.stack, self.id)
        return pair
