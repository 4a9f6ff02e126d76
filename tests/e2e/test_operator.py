"""Operator experience: the man pages (mandoc lint, every config key and
command documented), the OpenAPI document checked against the running
service (every documented route and method answers with a documented
status and a body of the documented shape), the Prometheus metrics format
and counts, the admin CLI (user add/list/show/disable/enable/grant/revoke/
sessions/logout/set-password/delete, outbox status/replay, exit codes,
--json, which commands need jwt_secret), and
`make install` into a staging directory."""

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import uuid
import time

from harness import BUILDDIR, FA_BIN, SRCDIR, Skip
from mfalib import MfaUser, steady
from authlib import (PASSWORD, User, assert_access_alive, assert_access_dead, assert_bearer_401,
                     assert_error, jwt_parts, login, login_raw, outbox_rows, refresh, show,
                     uniq_email, wait_for)

STACK_CONFIG = {}
OPENAPI = os.path.join(SRCDIR, "docs", "openapi.json")
MAN_PAGES = [os.path.join(SRCDIR, "man", "fcgi-auth.8"), os.path.join(SRCDIR, "man", "fcgi-auth.conf.5")]

# Exit codes of fcgi-auth(8), EXIT STATUS.
EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NOTFOUND, EXIT_EXISTS = 0, 1, 2, 3, 4


# ------------------------------------------------------------- man pages

def mandoc():
    exe = shutil.which("mandoc")
    if exe:
        return exe
    if os.environ.get("CI"):
        raise AssertionError("mandoc not installed: add `mandoc` to deploy/stack.sh PACKAGES")
    raise Skip("mandoc not installed (apt-get install mandoc)")


def test_man_pages_pass_mandoc_lint():
    exe = mandoc()
    for page in MAN_PAGES:
        r = subprocess.run([exe, "-T", "lint", "-W", "warning", page], capture_output=True, text=True)
        assert r.returncode == 0, "mandoc -T lint -W warning %s:\n%s%s" % (page, r.stdout, r.stderr)
        r = subprocess.run([exe, "-T", "utf8", page], capture_output=True, text=True)
        assert r.returncode == 0 and len(r.stdout) > 1000, "mandoc cannot render %s" % page


def config_keys():
    with open(os.path.join(SRCDIR, "app", "config.c")) as f:
        text = f.read()
    table = text[text.index("ckeys[] = {"):]
    table = table[:table.index("};")]
    keys = re.findall(r"^\s*(?:LIVE_)?[SXLBM]\((\w+)", table, re.M)
    assert len(keys) > 30, "config.c key table not found (%d keys)" % len(keys)
    return keys


def test_conf5_documents_every_config_key():
    with open(MAN_PAGES[1]) as f:
        page = f.read()
    documented = set(re.findall(r"^\.It Ic (\w+)", page, re.M))
    keys = config_keys()
    missing = [k for k in keys if k not in documented]
    assert not missing, "fcgi-auth.conf(5) lacks the keys %s" % missing
    extra = documented - set(keys)
    assert not extra, "fcgi-auth.conf(5) documents keys config.c does not have: %s" % sorted(extra)


def test_man8_documents_every_command_and_exit_status():
    with open(MAN_PAGES[0]) as f:
        page = f.read()
    for cmd in ["serve", "migrate", "check-config", "user add", "user list", "user show", "user disable",
                "user enable", "user grant", "user sessions", "user logout", "user set-password",
                "user delete", "import-users", "outbox status",
                "outbox replay", "keygen"]:
        words = cmd.split()
        pat = r"\.It Cm " + r"\s+(?:Cm\s+)?".join(re.escape(w) for w in words)
        assert re.search(pat, page), "fcgi-auth(8) has no entry for `%s`" % cmd
    assert ".Sh EXIT STATUS" in page and ".Sh METRICS" in page
    r = subprocess.run([FA_BIN, "--help"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for cmd in ["serve", "migrate", "user", "outbox", "keygen", "import-users"]:
        assert cmd in r.stdout, "fcgi-auth --help does not mention %s:\n%s" % (cmd, r.stdout)


# ------------------------------------------------------------- OpenAPI

def load_openapi():
    with open(OPENAPI) as f:
        return json.load(f)


def route_table():
    with open(os.path.join(SRCDIR, "app", "route.c")) as f:
        text = f.read()
    out = []
    for m, pat in re.findall(r"\{\s*METHOD_(\w+),\s*\"([^\"]+)\"", text):
        out.append((m.lower(), pat))
    assert len(out) >= 15, "route table not found in route.c"
    return out


def pattern_to_path(pat):
    return re.sub(r":", "{id}", pat)


def test_openapi_document_covers_the_route_table():
    doc = load_openapi()
    assert doc["openapi"].startswith("3.1."), doc["openapi"]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    ops = {(m, p) for p, item in doc["paths"].items() for m in item}
    for method, pat in route_table():
        path = pattern_to_path(pat)
        assert path in doc["paths"], "route %s %s is not in docs/openapi.json" % (method, pat)
        if method != "any":
            assert (method, path) in ops, "%s %s is not in docs/openapi.json" % (method.upper(), path)
    routes = {pattern_to_path(p) for _, p in route_table()}
    assert set(doc["paths"]) <= routes, "documented paths the service lacks: %s" % (set(doc["paths"]) - routes)
    codes = set(doc["components"]["schemas"]["Error"]["properties"]["error"]["enum"])
    with open(os.path.join(SRCDIR, "app", "response.c")) as f:
        served = set(re.findall(r"\{ \d{3}, \"(\w+)\"", f.read()))
    assert served and served <= codes, "error codes not in the Error schema: %s" % (served - codes)

    def refs(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    yield v
                else:
                    yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)
    for ref in refs(doc):
        resolve(doc, ref)
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op.get("operationId") and op.get("responses"), "%s %s" % (method, path)


def resolve(doc, ref):
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        assert part in node, "unresolved $ref %s" % ref
        node = node[part]
    return node


UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def validate(doc, schema, value, where="body"):
    """The JSON Schema subset docs/openapi.json uses; raises AssertionError
    naming the place that does not match."""
    if "$ref" in schema:
        validate(doc, resolve(doc, schema["$ref"]), value, where)
    for sub in schema.get("allOf", []):
        validate(doc, sub, value, where)
    if "oneOf" in schema:
        ok = 0
        for sub in schema["oneOf"]:
            try:
                validate(doc, sub, value, where)
                ok += 1
            except AssertionError:
                pass
        assert ok == 1, "%s: matches %d of oneOf (want 1): %r" % (where, ok, value)
    if "const" in schema:
        assert value == schema["const"] and type(value) is type(schema["const"]), \
            "%s: %r is not %r" % (where, value, schema["const"])
    if "enum" in schema:
        assert value in schema["enum"], "%s: %r not in %r" % (where, value, schema["enum"])
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]

        def is_type(t):
            if t == "integer":
                return isinstance(value, int) and not isinstance(value, bool)
            if t == "number":
                return isinstance(value, (int, float)) and not isinstance(value, bool)
            return isinstance(value, JSON_TYPES[t]) and not (t != "boolean" and isinstance(value, bool))
        assert any(is_type(t) for t in types), "%s: %r is not %s" % (where, value, "|".join(types))
    if isinstance(value, str):
        fmt = schema.get("format")
        if fmt == "uuid":
            assert UUID_RE.match(value), "%s: %r is not a uuid" % (where, value)
        if fmt == "date-time":
            assert DT_RE.match(value), "%s: %r is not RFC 3339" % (where, value)
        if "pattern" in schema:
            assert re.search(schema["pattern"], value), "%s: %r !~ %s" % (where, value, schema["pattern"])
        if "maxLength" in schema:
            assert len(value) <= schema["maxLength"], "%s: longer than %d" % (where, schema["maxLength"])
        if "minLength" in schema:
            assert len(value) >= schema["minLength"], "%s: shorter than %d" % (where, schema["minLength"])
    if isinstance(value, dict):
        for k in schema.get("required", []):
            assert k in value, "%s: required property %r missing in %r" % (where, k, value)
        props = schema.get("properties", {})
        for k, v in value.items():
            if k in props:
                validate(doc, props[k], v, "%s.%s" % (where, k))
            elif schema.get("additionalProperties") is False:
                raise AssertionError("%s: property %r not allowed" % (where, k))
            elif isinstance(schema.get("additionalProperties"), dict):
                validate(doc, schema["additionalProperties"], v, "%s.%s" % (where, k))
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            validate(doc, schema["items"], v, "%s[%d]" % (where, i))


class Contract:
    """Checks answers against the document; records what was exercised."""

    def __init__(self, stack, doc):
        self.stack, self.doc = stack, doc
        self.prefix = doc["servers"][0]["url"]
        self.seen = {}      # (method, path) -> set of statuses

    def op(self, method, path):
        return self.doc["paths"][path][method]

    def call(self, method, path, want=None, params=None, query="", **kw):
        url = self.prefix + path.replace("{id}", params or "") + query
        r = self.stack.request(method.upper(), url, **kw)
        self.check(method, path, r, want)
        return r

    def check(self, method, path, r, want=None):
        what = "%s %s" % (method.upper(), path)
        op = self.op(method, path)
        responses = op["responses"]
        code = str(r.status)
        assert code in responses, "%s answered %s, not a documented status (%s)" % (
            what, show(r), ", ".join(sorted(responses)))
        if want is not None:
            assert r.status == want, "%s: want %d, got %s" % (what, want, show(r))
        self.seen.setdefault((method, path), set()).add(code)
        spec = responses[code]
        if "$ref" in spec:
            spec = resolve(self.doc, spec["$ref"])
        content = spec.get("content")
        if not content:
            assert r.body == b"", "%s %s: documented without a body, got %r" % (what, code, r.body[:200])
            return
        ctype = r.headers.get("content-type", "")
        media = next((m for m in content if ctype.startswith(m)), None)
        assert media, "%s %s: content-type %r, documented %s" % (what, code, ctype, list(content))
        if media == "application/json":
            assert r.json is not None, "%s %s: body is not JSON: %r" % (what, code, r.body[:200])
            validate(self.doc, content[media]["schema"], r.json, "%s %s body" % (what, code))
        bearer_only = op.get("security") and {} not in op["security"]
        for h, hspec in spec.get("headers", {}).items():
            hl = h.lower()
            if hl in ("allow", "retry-after") or hl.startswith("x-auth-") or \
                    (hl == "www-authenticate" and bearer_only):
                assert hl in r.headers, "%s %s: documented header %s missing: %r" % (what, code, h, r.headers)
            if hl == "cache-control" and "no-store" in hspec.get("description", ""):
                assert "no-store" in r.headers.get(hl, ""), "%s %s: Cache-Control %r" % (
                    what, code, r.headers.get(hl))


def test_openapi_served_is_the_document(stack):
    r = stack.get("/auth/openapi.json")
    assert r.status == 200, show(r)
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    doc = load_openapi()
    served = r.json
    assert served["servers"][0]["url"] == "/auth", served["servers"]
    served.pop("servers")
    doc.pop("servers")
    assert served == doc, "GET /auth/openapi.json differs from docs/openapi.json (rebuild?)"


def make_admin(stack):
    email = uniq_email("admin")
    pwfile = os.path.join(stack.state, "admin.pw")
    with open(pwfile, "w") as f:
        f.write(PASSWORD + "\n")
    r = stack.run_cli("user", "add", email, "--role", "admin", "--password-file", pwfile, "--json")
    assert r.returncode == 0, "user add --role admin: rc %d %s" % (r.returncode, r.stderr)
    pair = login(stack, email)
    return email, json.loads(r.stdout)["id"], pair


def contract_lifecycle(stack, c):
    """The account lifecycle's operations, with a mailer on loopback."""
    from harness import free_port
    from mailsink import MailSink, token_of
    sink = MailSink(free_port()).start()
    stack.restart_app(smtp_url="smtp://127.0.0.1:%d" % sink.port,
                      mail_template_dir=os.path.join(SRCDIR, "conf", "mail"))
    try:
        m = User(stack, "mail")
        c.call("post", "/email/verify/resend", 202, body={"email": m.email})
        c.call("post", "/email/verify", 204, body={"token": token_of(sink.wait_mail(m.email, n=2))})
        c.call("post", "/email/verify", 401, body={"token": "A" * 43})
        c.call("post", "/password/forgot", 202, body={"email": m.email})
        c.call("post", "/password/reset", 204, body={"token": token_of(sink.wait_mail(m.email, n=3)),
                                                     "newPassword": "another long one"})
        c.call("post", "/password/reset", 401, body={"token": "A" * 43, "newPassword": "another long one"})
        m.password = "another long one"
        tok = m.login()["accessToken"]
        new = uniq_email("mail-new")
        c.call("post", "/email", 401, body={"newEmail": new, "password": PASSWORD}, token=tok)
        c.call("post", "/email", 202, body={"newEmail": new, "password": m.password}, token=tok)
        c.call("post", "/email/verify", 204, body={"token": token_of(sink.wait_mail(new))})
        d = User(stack, "gone")
        c.call("delete", "/me", 401, body={"password": "wrong password!"}, token=d.access)
        c.call("delete", "/me", 204, body={"password": PASSWORD}, token=d.access)
    finally:
        stack.restart_app()
        sink.stop()


def test_openapi_every_operation_answers_as_documented(stack):
    doc = load_openapi()
    c = Contract(stack, doc)
    _, admin_id, admin_pair = make_admin(stack)
    admin = admin_pair["accessToken"]
    u = User(stack, "contract")
    other = u.login(ua="second device")

    # account and tokens
    c.call("post", "/register", 201, body={"email": uniq_email("c"), "password": PASSWORD, "firstName": "Ada"})
    c.call("post", "/register", 409, body={"email": u.email, "password": PASSWORD})
    c.call("post", "/login", 200, body={"email": u.email, "password": PASSWORD})
    c.call("post", "/login", 401, body={"email": u.email, "password": "wrong password!"})
    r = c.call("post", "/refresh", 200, body={"refreshToken": other["refreshToken"]})
    other = r.json
    c.call("post", "/refresh", 401, body={"refreshToken": "A" * 86})
    c.call("get", "/me", 200, token=u.access)
    r = c.call("get", "/sessions", 200, token=u.access)
    sid_other = jwt_parts(other["accessToken"])[1]["sid"]
    assert any(s["id"] == sid_other for s in r.json["sessions"]), r.json
    c.call("delete", "/sessions/{id}", 404, params=str(uuid.uuid4()), token=u.access)
    c.call("delete", "/sessions/{id}", 204, params=sid_other, token=u.access)
    c.call("get", "/verify", 204, token=u.access)
    c.call("get", "/verify", 403, query="?role=admin", token=u.access)
    c.call("get", "/verify", 401, token="not.a.token")
    r = c.call("post", "/introspect", 200, body={"token": u.access})
    assert r.json["active"] is True, r.json
    r = c.call("post", "/introspect", 200, body={"token": "x.y.z"})
    assert r.json == {"active": False}, r.json
    c.call("get", "/.well-known/jwks.json", 200)
    c.call("get", "/health", 200)
    c.call("get", "/health/live", 200)
    c.call("get", "/health/ready", 200)
    c.call("get", "/admin/audit", 200, query="?limit=5", token=admin)
    c.call("get", "/admin/audit", 403, token=u.access)
    c.call("get", "/admin/audit", 400, query="?limit=9999", token=admin)
    c.call("put", "/admin/users/{id}/roles", 200, params=u.id, body={"roles": ["user", "editor"]}, token=admin)
    c.call("put", "/admin/users/{id}/roles", 404, params=str(uuid.uuid4()), body={"roles": ["user"]}, token=admin)
    c.call("put", "/admin/users/{id}/roles", 400, params=u.id, body={"roles": ["Bad Role"]}, token=admin)
    c.call("put", "/admin/users/{id}/roles", 403, params=u.id, body={"roles": ["user"]}, token=u.login()["accessToken"])
    c.call("get", "/metrics", 200)
    c.call("get", "/openapi.json", 200)
    # the second factor
    m = MfaUser(stack, "c-mfa", enable=False)
    c.call("get", "/mfa/totp/qr.svg", 404, token=m.access)
    m.secret = c.call("post", "/mfa/totp", 200, body={}, token=m.access).json["secret"]
    c.call("get", "/mfa/totp/qr.svg", 200, token=m.access)
    c.call("post", "/mfa/totp/confirm", 401, body={"code": "abcdef"}, token=m.access)
    steady()
    m.recovery = c.call("post", "/mfa/totp/confirm", 200, body={"code": m.code()},
                        token=m.access).json["recoveryCodes"]
    c.call("post", "/mfa/totp", 409, body={}, token=m.access)
    r = c.call("post", "/login", 401, body={"email": m.email, "password": PASSWORD})
    c.call("post", "/mfa/verify", 401, body={"mfaToken": r.json["mfaToken"], "code": "abcdef"})
    a2 = c.call("post", "/mfa/verify", 200, body={"mfaToken": r.json["mfaToken"],
                "recoveryCode": m.recovery[0]}).json["accessToken"]
    c.call("delete", "/mfa/totp", 403, body={"recoveryCode": m.recovery[1]}, token=m.access)
    c.call("delete", "/mfa/totp", 204, body={"recoveryCode": m.recovery[1]}, token=a2)
    c.call("delete", "/mfa/totp", 409, body={"recoveryCode": m.recovery[2]}, token=a2)
    # password and logout last: they end sessions
    p = User(stack, "pw")
    c.call("post", "/password", 401, body={"currentPassword": "wrong password!", "newPassword": "another long one"},
           token=p.access)
    c.call("post", "/password", 204, body={"currentPassword": PASSWORD, "newPassword": "another long one"},
           token=p.access)
    lo = User(stack, "logout")
    c.call("post", "/logout", 204, body={"refreshToken": lo.login()["refreshToken"]})
    c.call("post", "/logout", 204, token=lo.access)
    c.call("post", "/logout", 401, body={"refreshToken": "A" * 86})
    c.call("post", "/logout")           # neither: some documented 4xx
    c.call("post", "/logout-all", 204, token=lo.login()["accessToken"])
    contract_lifecycle(stack, c)

    # generic: bearer routes without a token, bodies of the wrong type,
    # malformed and too large, other methods
    for path, item in doc["paths"].items():
        for method, op in item.items():
            params = str(uuid.uuid4()) if "{id}" in path else None
            needs_bearer = op.get("security") and {} not in op["security"]
            if needs_bearer:
                r = c.call(method, path, 401, params=params)
                assert_bearer_401(r, "%s %s without a token" % (method.upper(), path))
            if "requestBody" in op:
                tok = admin if needs_bearer else None
                c.call(method, path, 415, params=params, raw_body=b'{"a":1}',
                       headers={"Content-Type": "text/plain"}, token=tok)
                c.call(method, path, 400, params=params, raw_body=b'{"a":', token=tok)
                c.call(method, path, 413, params=params, raw_body=b'{"a":"' + b"x" * 20000 + b'"}', token=tok)
            wrong = next(m for m in ("patch", "delete", "put", "post") if m not in item)
            if path == "/verify":
                continue        # answers every method (nginx subrequests)
            r = stack.request(wrong.upper(), c.prefix + path.replace("{id}", params or ""))
            assert_error(r, 405, "method_not_allowed", "%s %s" % (wrong.upper(), path))
            validate(doc, resolve(doc, "#/components/responses/MethodNotAllowed")["content"]
                     ["application/json"]["schema"], r.json)
            allow = r.headers.get("allow", "")
            for m in item:
                assert m.upper() in allow, "%s %s: Allow %r lacks %s" % (wrong.upper(), path, allow, m.upper())

    # every documented operation was exercised, with a success status
    for path, item in doc["paths"].items():
        for method, op in item.items():
            got = c.seen.get((method, path), set())
            assert any(s.startswith("2") for s in got), "%s %s never answered a 2xx here" % (method, path)


def test_openapi_backend_down_answers_documented_503(stack):
    doc = load_openapi()
    c = Contract(stack, doc)
    u = User(stack, "down")
    stack.stop_redis()
    try:
        c.call("get", "/health", 503)
        c.call("get", "/health/ready", 503)
        c.call("get", "/health/live", 200)
        c.call("get", "/me", 503, token=u.access)
        c.call("post", "/login", 503, body={"email": u.email, "password": PASSWORD})
        c.call("get", "/metrics", 200)
    finally:
        stack.start_redis()


# ------------------------------------------------------------- metrics

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(\s+-?\d+)?$")


def parse_labels(text, where):
    """{a="x",b="y"} -> dict, checking the exposition format's syntax."""
    assert text[0] == "{" and text[-1] == "}", where
    body, labels, i = text[1:-1], {}, 0
    while i < len(body):
        m = re.match(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"", body[i:])
        assert m, "%s: bad label syntax at %r" % (where, body[i:])
        name = m.group(1)
        assert LABEL_NAME.match(name) and not name.startswith("__"), "%s: label name %r" % (where, name)
        i += m.end()
        val = []
        while True:
            assert i < len(body), "%s: unterminated label value" % where
            ch = body[i]
            if ch == "\\":
                assert body[i + 1] in "\\\"n", "%s: bad escape \\%s" % (where, body[i + 1])
                val.append({"n": "\n"}.get(body[i + 1], body[i + 1]))
                i += 2
                continue
            if ch == '"':
                i += 1
                break
            assert ch != "\n", where
            val.append(ch)
            i += 1
        assert name not in labels, "%s: label %s twice" % (where, name)
        labels[name] = "".join(val)
        if i < len(body):
            assert body[i] == ",", "%s: expected ',' at %r" % (where, body[i:])
            i += 1
    return labels


def parse_value(v, where):
    if v in ("+Inf", "-Inf", "NaN"):
        return float(v.replace("Inf", "inf").replace("NaN", "nan"))
    try:
        return float(v)
    except ValueError:
        raise AssertionError("%s: value %r is not a float" % (where, v))


def parse_metrics(text):
    """Check every line of a text exposition; returns {family: {"type",
    "help", "samples": [(name, labels, value)]}}."""
    assert text.endswith("\n"), "exposition must end with a newline"
    fams, order, current = {}, [], None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "metrics line %d %r" % (n, line)
        if line == "":
            continue
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            assert len(parts) >= 3, where
            kind, name = parts[1], parts[2]
            assert METRIC_NAME.match(name), "%s: metric name" % where
            fam = fams.setdefault(name, {"type": None, "help": None, "samples": []})
            if kind == "HELP":
                assert fam["help"] is None, "%s: HELP twice" % where
                fam["help"] = parts[3] if len(parts) > 3 else ""
            else:
                assert fam["type"] is None and not fam["samples"], "%s: TYPE twice or after samples" % where
                assert len(parts) == 4 and parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"), where
                fam["type"] = parts[3]
            if name not in order:
                order.append(name)
            current = name
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "%s: not a sample line" % where
        name, labels, value = m.group(1), m.group(2), m.group(3)
        labels = parse_labels(labels, where) if labels else {}
        base = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in fams and \
                    fams[name[:-len(suffix)]]["type"] in ("histogram", "summary"):
                base = name[:-len(suffix)]
        assert base in fams, "%s: sample before its # TYPE" % where
        assert base == current, "%s: samples of %s are not grouped together" % (where, base)
        fams[base]["samples"].append((name, labels, parse_value(value, where)))
    for name, fam in fams.items():
        assert fam["type"], "%s has no # TYPE" % name
        if fam["type"] == "counter":
            assert name.endswith("_total"), "counter %s should end in _total" % name
            for s in fam["samples"]:
                assert s[2] >= 0 and not math.isnan(s[2]), "counter %s < 0" % s[0]
        if fam["type"] == "histogram":
            check_histogram(name, fam["samples"])
    return fams


def check_histogram(name, samples):
    series = {}
    for sname, labels, value in samples:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if sname == name + "_bucket":
            assert "le" in labels, "%s bucket without le" % name
            s["buckets"].append((parse_value(labels["le"], name), value))
        elif sname == name + "_sum":
            s["sum"] = value
        elif sname == name + "_count":
            s["count"] = value
        else:
            raise AssertionError("%s: unexpected sample %s" % (name, sname))
    for key, s in series.items():
        b = s["buckets"]
        assert b, "%s%r: no buckets" % (name, key)
        les = [le for le, _ in b]
        assert les == sorted(les), "%s%r: buckets not in increasing le" % (name, key)
        assert les[-1] == math.inf, "%s%r: no le=\"+Inf\" bucket" % (name, key)
        vals = [v for _, v in b]
        assert all(x <= y for x, y in zip(vals, vals[1:])), "%s%r: buckets not cumulative: %r" % (name, key, vals)
        assert s["count"] is not None and s["sum"] is not None, "%s%r: _sum/_count missing" % (name, key)
        assert vals[-1] == s["count"], "%s%r: +Inf bucket %s != _count %s" % (name, key, vals[-1], s["count"])
        assert s["sum"] >= 0


def scrape(stack):
    r = stack.get("/auth/metrics")
    assert r.status == 200, show(r)
    ct = r.headers.get("content-type", "")
    assert ct.startswith("text/plain") and "version=0.0.4" in ct, "metrics content-type %r" % ct
    return parse_metrics(r.body.decode("utf-8"))


def value(fams, family, **labels):
    total = 0.0
    for name, lab, v in fams.get(family, {}).get("samples", []):
        if name == family and all(lab.get(k) == str(x) for k, x in labels.items()):
            total += v
    return total


def test_metrics_format_and_counts(stack):
    before = scrape(stack)
    u = User(stack, "metrics")
    login_raw(stack, u.email, "wrong password!")
    r0 = u.refresh_token
    r1 = refresh(stack, r0).json["refreshToken"]
    r2 = refresh(stack, r1)
    assert r2.status == 200, show(r2)
    assert refresh(stack, r0).status == 401          # reuse: r0's child was rotated again
    stack.get("/auth/no-such-route")
    after = scrape(stack)
    for fam in ("fcgi_auth_requests_total", "fcgi_auth_request_duration_seconds", "fcgi_auth_logins_total",
                "fcgi_auth_refreshes_total", "fcgi_auth_refresh_reuse_total", "fcgi_auth_backend_errors_total",
                "fcgi_auth_outbox_pending", "fcgi_auth_outbox_lag_seconds", "fcgi_auth_build_info"):
        assert fam in after, "metrics lack %s" % fam
    d = lambda *a, **k: value(after, *a, **k) - value(before, *a, **k)    # noqa: E731
    assert d("fcgi_auth_logins_total", result="ok") >= 1
    assert d("fcgi_auth_logins_total", result="failed") >= 1
    assert d("fcgi_auth_refreshes_total") >= 2
    assert d("fcgi_auth_refresh_reuse_total") >= 1
    assert d("fcgi_auth_requests_total", route="/login", status=200) >= 1
    assert d("fcgi_auth_requests_total", route="/login", status=401) >= 1
    assert d("fcgi_auth_requests_total", route="other", status=404) >= 1
    assert value(after, "fcgi_auth_outbox_pending") >= 0
    routes = {lab["route"] for _, lab, _ in after["fcgi_auth_requests_total"]["samples"]}
    assert "/no-such-route" not in routes and all(r.startswith("/") or r == "other" for r in routes), routes
    # the counts do not depend on what clients send: a flood of random
    # paths stays in "other"
    for i in range(20):
        stack.get("/auth/x%d" % i)
    again = scrape(stack)
    assert len(again["fcgi_auth_requests_total"]["samples"]) <= len(after["fcgi_auth_requests_total"]["samples"]) + 1


def test_metrics_backend_errors_counted(stack):
    before = scrape(stack)
    stack.stop_redis()
    try:
        r = stack.get("/auth/health")
        assert r.status == 503, show(r)
    finally:
        stack.start_redis()
    after = scrape(stack)
    assert value(after, "fcgi_auth_backend_errors_total", backend="redis") > \
        value(before, "fcgi_auth_backend_errors_total", backend="redis")


def test_metrics_restricted_to_internal_clients_in_deploy_configs():
    with open(os.path.join(SRCDIR, "deploy", "nginx", "fcgi-auth.conf")) as f:
        nginx = f.read()
    m = re.search(r"location\s+=\s+/auth/metrics\s*\{(.*?)\}", nginx, re.S)
    assert m and "deny all" in m.group(1), "deploy/nginx/fcgi-auth.conf: /auth/metrics is not restricted"
    with open(os.path.join(SRCDIR, "deploy", "lighttpd", "fcgi-auth.conf")) as f:
        lighttpd = f.read()
    assert re.search(r"\^/auth/\([^)]*metrics", lighttpd), \
        "deploy/lighttpd/fcgi-auth.conf: /auth/metrics is not restricted"


# ------------------------------------------------------------- CLI

def cli(stack, *args, input=None):
    if input is None:
        return stack.run_cli(*args)
    config = stack.write_config(path=os.path.join(stack.state, "cli.conf"))
    return subprocess.run([FA_BIN, "--config", config] + list(args), input=input, capture_output=True,
                          text=True, env=stack.app_env(), timeout=60)


def cli_revocation_seen():
    """The CLI is another process: a running instance learns its revocations
    over pub/sub within the contract's 100 ms (API.md, revocation)."""
    time.sleep(0.1)


def cli_ok(stack, *args, input=None):
    r = cli(stack, *args, input=input)
    assert r.returncode == 0, "fcgi-auth %s: rc %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr)
    return r


def cli_json(stack, *args, input=None):
    r = cli_ok(stack, *args, "--json", input=input)
    try:
        return json.loads(r.stdout)
    except ValueError:
        raise AssertionError("fcgi-auth %s --json: not JSON: %r" % (" ".join(args), r.stdout[:300]))


def cli_fails(stack, code, *args, want_err=None, input=None):
    r = cli(stack, *args, input=input)
    assert r.returncode == code, "fcgi-auth %s: want rc %d, got %d\n%s%s" % (
        " ".join(args), code, r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip(), "fcgi-auth %s: failed without a message on stderr" % " ".join(args)
    assert r.stdout == "", "fcgi-auth %s: failure printed on stdout: %r" % (" ".join(args), r.stdout)
    if want_err:
        assert re.search(want_err, r.stderr), "fcgi-auth %s: stderr %r lacks %r" % (" ".join(args), r.stderr, want_err)
    return r


USER_KEYS = {"id", "email", "firstName", "lastName", "roles", "createdAt", "disabled",
             "emailVerified", "mfaEnabled"}


def test_cli_user_add_list_show(stack):
    email = uniq_email("Cli").upper()
    pw = os.path.join(stack.state, "pw")
    with open(pw, "w") as f:
        f.write("a fine long password\n")
    j = cli_json(stack, "user", "add", email, "--first-name", "Ada", "--last-name", "Lovelace",
                 "--role", "editor", "--password-file", pw)
    assert set(j) == USER_KEYS and j["email"] == email.lower() and j["roles"] == ["user", "editor"], j
    assert j["firstName"] == "Ada" and j["disabled"] is False, j
    pair = login(stack, email.lower(), "a fine long password")
    assert jwt_parts(pair["accessToken"])[1]["roles"] == ["user", "editor"]
    rows = stack.psql("SELECT event FROM auth.audit_log WHERE user_id = '%s' ORDER BY id" % j["id"])
    assert [r[0] for r in rows][:2] == ["register", "role.change"], rows
    assert outbox_rows(stack, "user.registered", "payload->'data'->>'userId' = %s", (j["id"],))
    # password on standard input
    e2 = uniq_email("stdin")
    r = cli_ok(stack, "user", "add", e2, input="stdin password ok\n")
    assert e2 in r.stdout, r.stdout
    login(stack, e2, "stdin password ok")
    # errors: taken, bad email, short password, unknown option, missing argument
    cli_fails(stack, EXIT_EXISTS, "user", "add", e2, input="stdin password ok\n", want_err="exists")
    cli_fails(stack, EXIT_USAGE, "user", "add", "not-an-email", input="x" * 10 + "\n", want_err="email")
    cli_fails(stack, EXIT_USAGE, "user", "add", uniq_email(), input="short\n", want_err="password")
    cli_fails(stack, EXIT_USAGE, "user", "add", uniq_email(), "--role", "Bad Role", input="long enough pw\n",
              want_err="role")
    cli_fails(stack, EXIT_USAGE, "user", "list", "--bogus")
    cli_fails(stack, EXIT_USAGE, "user", "show")
    cli_fails(stack, EXIT_USAGE, "user", "frobnicate", "x@y.z")
    cli_fails(stack, EXIT_USAGE, "user", "list", "--password-file", pw, want_err="does not apply")
    # list: JSON array of user objects, and a table
    users = cli_json(stack, "user", "list")
    assert isinstance(users, list) and all(set(u) == USER_KEYS for u in users), users[:2]
    assert {email.lower(), e2} <= {u["email"] for u in users}
    page = cli_json(stack, "user", "list", "--limit", "1", "--offset", "1")
    assert page == users[1:2], page
    r = cli_ok(stack, "user", "list")
    assert r.stdout.splitlines()[0].split()[:2] == ["ID", "STATUS"] and e2 in r.stdout, r.stdout
    # show
    s = cli_json(stack, "user", "show", email)
    assert s == j, (s, j)
    r = cli_ok(stack, "user", "show", email)
    assert "email:" in r.stdout and email.lower() in r.stdout
    cli_fails(stack, EXIT_NOTFOUND, "user", "show", uniq_email("nobody"), want_err="no user")
    r = cli_ok(stack, "user", "--help")
    assert "user add" in r.stdout and "disable" in r.stdout


def test_cli_user_disable_blocks_login_refresh_and_tokens(stack):
    u = User(stack, "disable")
    second = u.login(ua="other device")
    assert_access_alive(stack, u.access, "before disable")
    j = cli_json(stack, "user", "disable", u.email)
    assert j["disabled"] is True and j["id"] == u.id, j
    assert_error(login_raw(stack, u.email), 401, "invalid_credentials", "login of a disabled user")
    assert_error(refresh(stack, second["refreshToken"]), 401, "invalid_token", "refresh of a disabled user")
    cli_revocation_seen()
    assert_access_dead(stack, u.access, "access token of a disabled user")
    assert_access_dead(stack, second["accessToken"], "second device's token of a disabled user")
    assert cli_json(stack, "user", "sessions", u.email)["sessions"] == []
    assert cli_json(stack, "user", "show", u.email)["disabled"] is True
    ev = [r[0] for r in stack.psql("SELECT event FROM auth.audit_log WHERE user_id = '%s' ORDER BY id" % u.id)]
    assert "user.disable" in ev and "logout_all" in ev, ev
    r = cli_ok(stack, "user", "enable", u.email)
    assert "enabled" in r.stdout
    pair = login(stack, u.email)
    assert_access_alive(stack, pair["accessToken"], "token after enable")
    assert "user.enable" in [r[0] for r in stack.psql(
        "SELECT event FROM auth.audit_log WHERE user_id = '%s'" % u.id)]
    cli_fails(stack, EXIT_NOTFOUND, "user", "disable", uniq_email("ghost"))


def test_cli_user_grant_revoke(stack):
    u = User(stack, "roles")
    old = u.access
    j = cli_json(stack, "user", "grant", u.email, "editor")
    assert j["roles"] == ["user", "editor"], j
    cli_revocation_seen()
    assert_access_dead(stack, old, "token from before `user grant`")
    r = cli_ok(stack, "user", "revoke", u.email, "editor")
    assert "roles user" in r.stdout, r.stdout
    assert jwt_parts(login(stack, u.email)["accessToken"])[1]["roles"] == ["user"]
    cli_fails(stack, EXIT_USAGE, "user", "grant", u.email, "NOT_A_ROLE", want_err="role")
    cli_fails(stack, EXIT_NOTFOUND, "user", "grant", uniq_email("ghost"), "editor")


def test_cli_user_sessions_and_logout(stack):
    u = User(stack, "sess")
    b = u.login(ua="device B")
    c = u.login(ua="device C")
    s = cli_json(stack, "user", "sessions", u.email)
    assert s["userId"] == u.id and len(s["sessions"]) == 3, s
    for x in s["sessions"]:
        assert {"id", "createdAt", "lastUsedAt", "ip", "userAgent"} <= set(x), x
    sid_b = jwt_parts(b["accessToken"])[1]["sid"]
    assert sid_b in {x["id"] for x in s["sessions"]}
    r = cli_ok(stack, "user", "sessions", u.email)
    assert "device B" in r.stdout and r.stdout.startswith("SESSION"), r.stdout
    # one session
    cli_ok(stack, "user", "logout", u.email, "--session", sid_b)
    cli_revocation_seen()
    assert_access_dead(stack, b["accessToken"], "token of the session ended by `user logout --session`")
    assert_access_alive(stack, c["accessToken"], "token of another session")
    assert outbox_rows(stack, "session.revoked", "payload->'data'->>'sessionId' = %s", (sid_b,))
    cli_fails(stack, EXIT_NOTFOUND, "user", "logout", u.email, "--session", sid_b, want_err="no session")
    cli_fails(stack, EXIT_USAGE, "user", "logout", u.email, "--session", "nope", want_err="session")
    # all
    r = cli_ok(stack, "user", "logout", u.email)
    assert "2 sessions ended" in r.stdout, r.stdout
    cli_revocation_seen()
    assert_access_dead(stack, c["accessToken"], "token after `user logout`")
    assert_access_dead(stack, u.access, "first token after `user logout`")
    assert cli_json(stack, "user", "sessions", u.email)["sessions"] == []
    assert login(stack, u.email)        # not disabled: may log in again


def test_cli_outbox_status_and_replay(stack):
    u = User(stack, "outbox")
    rows = wait_for(lambda: [r for r in outbox_rows(stack, "user.registered",
                                                    "payload->'data'->>'userId' = %s", (u.id,))
                             if r["published_at"]], timeout=5)
    assert rows, "user.registered of %s never published" % u.id
    row = rows[0]
    st = cli_json(stack, "outbox", "status")
    for k in ("pending", "published", "oldestPendingId", "lagSeconds", "maxAttempts", "lastPublishedAt", "events"):
        assert k in st, "outbox status --json lacks %s: %r" % (k, st)
    assert st["published"] >= 1 and "user.registered" in st["events"], st
    r = cli_ok(stack, "outbox", "status")
    assert "pending:" in r.stdout and "user.registered" in r.stdout, r.stdout
    # replay one event by its id: published again (attempts grows)
    r = cli_ok(stack, "outbox", "replay", "--event-id", row["event_id"])
    assert "1 event" in r.stdout, r.stdout

    def republished():
        x = outbox_rows(stack, "user.registered", "event_id = %s", (row["event_id"],))[0]
        return x if x["published_at"] and x["attempts"] > row["attempts"] else None
    again = wait_for(republished, timeout=5)
    assert again, "replayed event was not published again"
    # replay a range
    r = cli_ok(stack, "outbox", "replay", "--from", str(row["id"]), "--to", str(row["id"]))
    assert "1 event" in r.stdout, r.stdout
    assert wait_for(lambda: outbox_rows(stack, "user.registered", "id = %s AND published_at IS NOT NULL",
                                        (row["id"],)), timeout=5)
    cli_fails(stack, EXIT_NOTFOUND, "outbox", "replay", "--event-id", str(uuid.uuid4()), want_err="no outbox event")
    cli_fails(stack, EXIT_NOTFOUND, "outbox", "replay", "--from", "999999999")
    cli_fails(stack, EXIT_USAGE, "outbox", "replay")
    cli_fails(stack, EXIT_USAGE, "outbox", "replay", "--event-id", "x")
    cli_fails(stack, EXIT_USAGE, "outbox", "replay", "--from", "5", "--to", "2")
    cli_fails(stack, EXIT_USAGE, "outbox", "frob")


def test_cli_backend_down_exit_1_with_message(stack):
    stack.stop_postgres()
    try:
        cli_fails(stack, EXIT_FAIL, "user", "list", want_err="PostgreSQL")
        cli_fails(stack, EXIT_FAIL, "outbox", "status", want_err="PostgreSQL")
    finally:
        stack.start_postgres()


def test_cli_usage_and_help_exit_codes():
    r = subprocess.run([FA_BIN, "frobnicate"], capture_output=True, text=True)
    assert r.returncode == EXIT_USAGE and "unknown command" in r.stderr, (r.returncode, r.stderr)
    for args in (["--help"], ["user", "--help"], ["outbox", "--help"], ["--version"]):
        r = subprocess.run([FA_BIN] + args, capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout, (args, r.returncode, r.stderr)
    r = subprocess.run([FA_BIN, "--config", "/nonexistent/fcgi-auth.conf", "user", "list"],
                       capture_output=True, text=True)
    assert r.returncode == EXIT_FAIL and "/nonexistent/fcgi-auth.conf" in r.stderr, (r.returncode, r.stderr)


def test_cli_commands_that_sign_nothing_need_no_secret(stack):
    """Issue 13 item 6: migrate, migrate status, user list, outbox status and
    import-users run without jwt_secret, or with a jwt_secret_file not
    readable yet (a systemd credential before the unit runs); serve and
    check-config still refuse."""
    for over in ({"jwt_secret_file": None},
                 {"jwt_secret_file": os.path.join(stack.state, "no-such-dir", "jwt_secret")}):
        for args in (["migrate"], ["migrate", "status"], ["user", "list"], ["outbox", "status"]):
            r = stack.run_cli(*args, overrides=over)
            assert r.returncode == 0, "%s with %r: rc %d\n%s" % (" ".join(args), over, r.returncode, r.stderr)
        r = stack.run_cli("check-config", overrides=over)
        assert r.returncode == EXIT_FAIL and "jwt_secret" in r.stderr, (over, r.returncode, r.stderr)
        conf = stack.write_config(over, path=os.path.join(stack.state, "nosecret.conf"))
        try:
            r = subprocess.run([FA_BIN, "--config", conf, "serve", "--listen", "127.0.0.1:1"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               env=stack.app_env(), timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError("serve without a secret kept running")
        assert r.returncode != 0 and "jwt_secret" in r.stderr, (over, r.returncode, r.stderr)


def test_cli_keygen_invalid_values_exit_2(stack):
    d = tempfile.mkdtemp(dir=stack.state)
    for args in (["keygen", "hs256", "--kid", "k1", "--dir", d],
                 ["keygen", "rs256", "--kid", ".hidden", "--dir", d],
                 ["keygen", "es256", "--kid", "a b", "--dir", d],
                 ["keygen", "rs256", "--dir", d]):
        r = subprocess.run([FA_BIN] + args, capture_output=True, text=True)
        assert r.returncode == EXIT_USAGE and r.stderr.strip(), (args, r.returncode, r.stderr)
    assert os.listdir(d) == [], "an invalid keygen wrote files: %s" % os.listdir(d)
    r = subprocess.run([FA_BIN, "keygen", "es256", "--kid", "ok-1", "--dir", d], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


RFC3339_FULL = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\b")


def test_cli_text_timestamps_whole_and_logout_json(stack):
    u = User(stack, "stamps")
    r = cli_ok(stack, "user", "list")
    line = [l for l in r.stdout.splitlines() if u.email in l][0]
    assert RFC3339_FULL.search(line), "user list cuts the timestamp: %r" % line
    r = cli_ok(stack, "user", "sessions", u.email)
    line = r.stdout.splitlines()[1]
    assert len(RFC3339_FULL.findall(line)) == 2, "user sessions cuts the timestamps: %r" % line
    j = cli_json(stack, "user", "logout", u.email)
    assert j == {"userId": u.id, "email": u.email, "sessionsEnded": 1}, j
    cli_revocation_seen()
    assert_access_dead(stack, u.access, "token after `user logout --json`")
    pair = u.login()
    sid = jwt_parts(pair["accessToken"])[1]["sid"]
    j = cli_json(stack, "user", "logout", u.email, "--session", sid)
    assert j["sessionId"] == sid and j["sessionsEnded"] == 1, j


def test_cli_one_usage_text_per_command(stack):
    for cmd, bad in (("import-users", ["import-users"]), ("outbox", ["outbox", "frob"]),
                     ("user", ["user", "frob"])):
        h = subprocess.run([FA_BIN, cmd, "--help"], capture_output=True, text=True)
        r = cli(stack, *bad)
        assert h.returncode == 0 and r.returncode == EXIT_USAGE, (cmd, h.returncode, r.returncode)
        assert h.stdout.strip() and h.stdout.strip() in r.stderr, \
            "%s: --help and the usage error differ:\n%s\n---\n%s" % (cmd, h.stdout, r.stderr)
    top = subprocess.run([FA_BIN, "--help"], capture_output=True, text=True).stdout
    h = subprocess.run([FA_BIN, "import-users", "--help"], capture_output=True, text=True).stdout
    assert "import-users [--dry-run] FILE|-" in top and "import-users [--dry-run] FILE|-" in h, (top, h)


def test_cli_user_set_password(stack):
    u = User(stack, "setpw")
    other = u.login(ua="second device")
    new = "a brand new password"
    r = cli_ok(stack, "user", "set-password", u.email, input=new + "\n")
    assert "2 sessions ended" in r.stdout, r.stdout
    assert_error(login_raw(stack, u.email, u.password), 401, "invalid_credentials", "old password")
    cli_revocation_seen()
    assert_access_dead(stack, u.access, "token from before `user set-password`")
    assert_access_dead(stack, other["accessToken"], "other device after `user set-password`")
    assert_error(refresh(stack, other["refreshToken"]), 401, "invalid_token", "refresh after set-password")
    pair = login(stack, u.email, new)
    assert_access_alive(stack, pair["accessToken"], "token with the new password")
    assert stack.psql_value("SELECT password_hash FROM auth.users WHERE id = '%s'" % u.id).startswith(
        "$argon2id$")
    rows = stack.psql("SELECT detail->>'by' FROM auth.audit_log WHERE user_id = '%s' AND "
                      "event = 'password.change'" % u.id)
    assert rows == [["cli"]], rows
    assert outbox_rows(stack, "user.password_changed", "payload->'data'->>'userId' = %s", (u.id,))
    # the register policy; nothing changes on a refused password
    cli_fails(stack, EXIT_USAGE, "user", "set-password", u.email, input="short\n", want_err="password")
    cli_fails(stack, EXIT_USAGE, "user", "set-password", u.email, input="", want_err="password")
    cli_fails(stack, EXIT_NOTFOUND, "user", "set-password", uniq_email("ghost"), input=new + "\n")
    login(stack, u.email, new)


def test_cli_user_delete(stack):
    u = User(stack, "delete")
    login_raw(stack, u.email, "a wrong password", ua="attacker UA")
    rows = stack.psql("SELECT count(*) FROM auth.audit_log WHERE user_id = '%s' AND "
                      "(email IS NOT NULL OR ip IS NOT NULL OR user_agent IS NOT NULL)" % u.id)
    assert int(rows[0][0]) >= 2, rows
    j = cli_json(stack, "user", "delete", u.email)
    assert j["userId"] == u.id and j["deleted"] is True, j
    assert stack.psql_value("SELECT count(*) FROM auth.users WHERE id = '%s'" % u.id) == "0"
    rows = stack.psql("SELECT event, email, ip, user_agent FROM auth.audit_log WHERE user_id = '%s' "
                      "ORDER BY id" % u.id)
    assert len(rows) >= 3 and rows[-1][0] == "user.delete", rows
    assert all(r[1:] == [None, None, None] for r in rows), "audit rows keep personal data: %r" % rows
    assert not stack.psql("SELECT 1 FROM auth.audit_log WHERE email = '%s'" % u.email), \
        "the email survives in the audit log"
    cli_revocation_seen()
    assert_access_dead(stack, u.access, "token of a deleted user")
    assert_error(refresh(stack, u.refresh_token), 401, "invalid_token", "refresh of a deleted user")
    assert_error(login_raw(stack, u.email), 401, "invalid_credentials", "login of a deleted user")
    ev = outbox_rows(stack, "user.deleted", "payload->'data'->>'userId' = %s", (u.id,))
    assert len(ev) == 1, ev
    data = ev[0]["payload"]["data"]
    assert set(data) == {"eventId", "userId", "at"} and data["eventId"] == ev[0]["event_id"], data
    cli_fails(stack, EXIT_NOTFOUND, "user", "delete", u.email, want_err="no user")
    # the append-only log still refuses any other change
    for sql in ("UPDATE auth.audit_log SET event = 'x' WHERE user_id = '%s'" % u.id,
                "UPDATE auth.audit_log SET email = 'x@y.z' WHERE user_id = '%s'" % u.id,
                "DELETE FROM auth.audit_log WHERE user_id = '%s'" % u.id):
        try:
            stack.psql(sql)
        except Exception as e:
            assert "append-only" in str(e), e
        else:
            raise AssertionError("audit_log accepted: %s" % sql)


# ------------------------------------------------------------- packaging

def test_make_install_into_staging_dir():
    makefile = os.path.join(BUILDDIR, "Makefile")
    if not os.path.exists(makefile):
        raise Skip("no Makefile in %s (not an autotools build)" % BUILDDIR)
    with open(makefile) as f:
        mk = f.read()
    prefix = re.search(r"^prefix = (.*)$", mk, re.M).group(1).strip()
    stage = tempfile.mkdtemp(prefix="fa-install-")
    try:
        r = subprocess.run(["make", "-C", BUILDDIR, "install", "DESTDIR=" + stage], capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, "make install DESTDIR=%s failed:\n%s%s" % (stage, r.stdout[-2000:], r.stderr[-2000:])
        root = stage + prefix
        want = ["sbin/fcgi-auth", "share/man/man8/fcgi-auth.8", "share/man/man5/fcgi-auth.conf.5",
                "share/fcgi-auth/sql/001_init.sql", "lib/systemd/system/fcgi-auth.service",
                "lib/systemd/system/fcgi-auth.socket", "share/doc/fcgi-auth/examples/fcgi-auth.conf.example",
                "share/doc/fcgi-auth/openapi.json", "share/doc/fcgi-auth/README.md"]
        missing = [p for p in want if not os.path.exists(os.path.join(root, p))]
        assert not missing, "make install did not lay out %s under %s" % (missing, prefix)
        assert os.access(os.path.join(root, "sbin/fcgi-auth"), os.X_OK)
        with open(os.path.join(root, "lib/systemd/system/fcgi-auth.service")) as f:
            unit = f.read()
        assert "ExecStart=%s/sbin/fcgi-auth " % prefix in unit, "unit ExecStart not under the prefix:\n%s" % unit
        for key in ("DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "Requires=fcgi-auth.socket"):
            assert key in unit, "installed unit lacks %s" % key
        r = subprocess.run([os.path.join(root, "sbin/fcgi-auth"), "--version"], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.startswith("fcgi-auth "), r
        exe = shutil.which("mandoc")
        if exe:
            for p in want[1:3]:
                r = subprocess.run([exe, "-T", "lint", "-W", "warning", os.path.join(root, p)],
                                   capture_output=True, text=True)
                assert r.returncode == 0, r.stdout + r.stderr
        # and uninstall leaves nothing but directories
        r = subprocess.run(["make", "-C", BUILDDIR, "uninstall", "DESTDIR=" + stage], capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        left = [os.path.join(d, f) for d, _, fs in os.walk(stage) for f in fs]
        assert not left, "make uninstall left %s" % left[:10]
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def test_container_files_say_they_are_untested():
    for fn in ("Dockerfile", "compose.yaml"):
        with open(os.path.join(SRCDIR, "deploy", fn)) as f:
            text = f.read()
        assert "UNTESTED" in text, "deploy/%s must say whether it was tested" % fn
