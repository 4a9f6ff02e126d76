/*
 * fuzz_request.c: the whole request path below server.c.  A struct request
 * is built from the input the way server.c's request_fill builds it from
 * FastCGI parameters, route_dispatch runs the handler, and the answer is
 * checked.  Backends are the stubs of stubs.c, steered by the input.
 *
 * Input: '\n'-separated fields, the last one running to the end:
 *   control   up to 8 hex digits: 4 bytes that steer the stubs and the
 *             configuration (C0_* .. C3 below); "00000000" = all up
 *   method    "GET", "POST", ... (anything: METHOD_OTHER)
 *   uri       REQUEST_URI, e.g. "/auth/verify?role=admin"
 *   ctype     Content-Type ("" = absent)
 *   auth      Authorization ("" = absent).  "@<roles>" is replaced by
 *             "Bearer <a valid access token with those roles>", so the
 *             handlers behind route_bearer are reached.
 *   ua        User-Agent ("" = absent)
 *   body      the rest; "@ACCESS@" in it becomes a valid access token.
 *
 * Checked for every answer:
 *  - a status was set and is one the contract knows (500 only when a stub
 *    was told to fail internally);
 *  - the body, if any, is one JSON object; error answers carry error and
 *    message; 401 invalid_token has WWW-Authenticate, 405 Allow, 429 and
 *    503 Retry-After, token pairs Cache-Control: no-store;
 *  - header values are visible ASCII (no CR/LF injection, no U+2028);
 *  - fail closed: with Redis down no route that needs it answers 2xx,
 *    and introspection is never active;
 *  - no forged, revoked or role-less token gets a 2xx from a Bearer route;
 *    verify honours the server's role always and the query's (outside
 *    the Authorizer role) too, and a malformed query role is a 403;
 *  - passwords are only hashed or verified when at most 1024 bytes (the
 *    stubs check that and every other argument handed to the backends).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"

#define FUZZ_PREFIX	"/auth"
#define FUZZ_MAX_BODY	2048
#define ACCESS_MARK	"@ACCESS@"

/* control byte 0 */
#define C0_PG_DOWN	0x01
#define C0_REDIS_DOWN	0x02
#define C0_USER_MISSING	0x04
#define C0_PW_MISMATCH	0x08
#define C0_REHASH	0x10
#define C0_DISABLED	0x20
#define C0_AUTHORIZER	0x40
#define C0_EMAIL_TAKEN	0x80
/* control byte 1: bits 0-2 rotate result */
#define C1_LIMITED	0x08
#define C1_REVOKED	0x10
#define C1_NO_SESSION	0x20
#define C1_CHILD_BAD	0x40
#define C1_TRIM		0x80
/* control byte 2: bits 0-1 sessions listed, 2-3 verify preset */
#define C2_RATELIMIT_OFF 0x10
#define C2_ADMIN	0x20	/* stored user holds "admin" */
#define C2_REQUIRED	0x40	/* AUTH_REQUIRED_ROLE=admin */
#define C2_HASH_FAIL	0x80
/* control byte 3: bits 0-1 client address, 2-3 events_enabled */
#define C3_MFA		0x10	/* the user has MFA on */
#define C3_MFA_PENDING	0x20	/* a TOTP secret is pending */
#define C3_AAL		0x40	/* AUTH_REQUIRED_AAL=2 */
#define C3_VERIFIED	0x80	/* AUTH_REQUIRED_VERIFIED=1 */

static const char *const ips[] = {
	"203.0.113.7", "2001:db8::1", "", "198.51.100.250"
};
static const char *const events[] = {
	"all", "", "user.registered,user.logged_in", "session.revoked"
};

/* A hex digit's value; other bytes give their low four bits. */
static unsigned int
nibble(char ch)
{
	if (ch >= '0' && ch <= '9')
		return (unsigned int)(ch - '0');
	if (ch >= 'a' && ch <= 'f')
		return (unsigned int)(ch - 'a' + 10);
	if (ch >= 'A' && ch <= 'F')
		return (unsigned int)(ch - 'A' + 10);
	return (unsigned char)ch & 0xf;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_setup(FUZZ_HS256);
	fuzz_conf.max_body = FUZZ_MAX_BODY;
	/* events_enabled then points at one of events[] */
	free(fuzz_conf.events_enabled);
	fuzz_conf.events_enabled = (char *)(uintptr_t)events[0];
	free(fuzz_conf.prefix);
	fuzz_conf.prefix = xstrdup(FUZZ_PREFIX);
	return 0;
}

/* A valid access token for the stub user with the given roles, or NULL. */
static char *
mint(const char *roles)
{
	struct claims	 c;
	char		*tok = NULL;

	memset(&c, 0, sizeof(c));
	snprintf(c.sub, sizeof(c.sub), "%s", FUZZ_UID);
	snprintf(c.sid, sizeof(c.sid), "%s", FUZZ_SID);
	snprintf(c.email, sizeof(c.email), "%s", "user@example.test");
	snprintf(c.roles, sizeof(c.roles), "%s", roles);
	if (token_issue(&c, 0, &tok) == -1)
		return NULL;
	return tok;
}

static const char *
header(const struct request *r, const char *name)
{
	size_t	 i;

	for (i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

static int
is_route(const struct request *r, const char *route)
{
	return r->route != NULL && strcmp(r->route, route) == 0;
}

/* Routes that must not answer 2xx without a live, checked token. */
static int
bearer_route(const struct request *r)
{
	static const char *const routes[] = {
		"/verify", "/me", "/sessions", "/sessions/:", "/logout-all",
		"/password", "/admin/audit", "/admin/users/:/roles",
		"/mfa/totp", "/mfa/totp/confirm", "/mfa/totp/qr.svg"
	};
	size_t	 i;

	if (r->authorizer)
		return 1;
	if (r->route == NULL)
		return 0;
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(r->route, routes[i]) == 0)
			return 1;
	/* logout by Bearer; without one it takes a refresh token */
	return strcmp(r->route, "/logout") == 0 && r->authorization != NULL;
}

static int
needs_admin(const struct request *r)
{
	return r->route != NULL && strncmp(r->route, "/admin/", 7) == 0;
}

static int
is_verify(const struct request *r)
{
	return r->authorizer || (r->route != NULL &&
	    strcmp(r->route, "/verify") == 0);
}

/* Every role of need is one of have (comma lists). */
static int
roles_have(const char *have, const char *need)
{
	const char	*p, *q;
	size_t		 n, m;
	int		 found;

	for (p = need; *p != '\0'; p += n + (p[n] == ',')) {
		n = strcspn(p, ",");
		found = 0;
		for (q = have; *q != '\0'; q += m + (q[m] == ',')) {
			m = strcspn(q, ",");
			if (m == n && strncmp(p, q, n) == 0)
				found = 1;
		}
		if (!found)
			return 0;
	}
	return 1;
}

static void
check_answer(const struct request *r, int minted, const char *mroles,
    int internal_ok)
{
	static const int ok[] = { 200, 201, 202, 204, 400, 401, 403, 404, 405, 409,
	    413, 415, 429, 503 };
	const char	*v, *code = NULL;
	char		 qrole[VERIFY_VALUE_MAX + 1];
	json_t		*j = NULL;
	size_t		 i, k;
	enum query_state qs;
	int		 two = r->status >= 200 && r->status < 300;

	if (r->status == 0)
		fuzz_fail("no answer (status 0) for %s", r->path);
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (ok[i] == r->status)
			break;
	if (i == sizeof(ok) / sizeof(ok[0]) &&
	    !(r->status == 500 && internal_ok))
		fuzz_fail("status %d for %s", r->status,
		    r->route ? r->route : r->path);
	for (i = 0; i < r->nheaders; i++) {
		if (r->headers[i].name == NULL || r->headers[i].value == NULL)
			fuzz_fail("header %zu unset", i);
		for (k = 0; r->headers[i].value[k] != '\0'; k++)
			if ((unsigned char)r->headers[i].value[k] < 0x20 ||
			    (unsigned char)r->headers[i].value[k] > 0x7e)
				fuzz_fail("byte not visible ASCII in header %s",
				    r->headers[i].name);
	}
	if (r->out != NULL && strlen(r->out) != r->outlen)
		fuzz_fail("body length %zu != %zu", strlen(r->out), r->outlen);
	if (r->status == 200 && is_route(r, "/metrics")) {
		/* Prometheus text, not JSON */
		if (r->out == NULL || header(r, "Content-Type") == NULL)
			fuzz_fail("metrics without a body or Content-Type");
	} else if (r->status == 200 && is_route(r, "/mfa/totp/qr.svg")) {
		if (r->out == NULL || strncmp(r->out, "<?xml", 5) != 0 ||
		    (v = header(r, "Content-Type")) == NULL ||
		    strcmp(v, "image/svg+xml") != 0 ||
		    (v = header(r, "Cache-Control")) == NULL ||
		    strstr(v, "no-store") == NULL)
			fuzz_fail("QR code without SVG, its type or no-store");
	} else if (r->out != NULL) {
		if ((j = json_loadb(r->out, r->outlen, JSON_REJECT_DUPLICATES,
		    NULL)) == NULL || !json_is_object(j))
			fuzz_fail("body is not one JSON object");
		code = json_string_value(json_object_get(j, "error"));
		/* /health answers 503 with its status object, by contract */
		if (r->status >= 400 && !is_route(r, "/health") &&
		    (code == NULL ||
		    !json_is_string(json_object_get(j, "message"))))
			fuzz_fail("error %d without error/message", r->status);
	} else if (r->status >= 400)
		fuzz_fail("error %d without a body", r->status);
	if (r->status == 401 && code != NULL &&
	    strcmp(code, "invalid_token") == 0 &&
	    header(r, "WWW-Authenticate") == NULL)
		fuzz_fail("401 invalid_token without WWW-Authenticate");
	if (r->status == 405 && header(r, "Allow") == NULL)
		fuzz_fail("405 without Allow");
	if ((r->status == 429 || (r->status == 503 &&
	    !is_route(r, "/health"))) && header(r, "Retry-After") == NULL)
		fuzz_fail("%d without Retry-After", r->status);
	if (j != NULL && json_object_get(j, "accessToken") != NULL &&
	    ((v = header(r, "Cache-Control")) == NULL ||
	    strstr(v, "no-store") == NULL))
		fuzz_fail("token pair without Cache-Control: no-store");

	if (r->status == 200 && is_route(r, "/sessions") &&
	    json_array_size(json_object_get(j, "sessions")) != stub.nsessions)
		fuzz_fail("GET /sessions shows %zu of %zu sessions",
		    json_array_size(json_object_get(j, "sessions")),
		    stub.nsessions);

	/* fail closed */
	if (stub.redis_down && two && r->route != NULL &&
	    strcmp(r->route, "/register") != 0 &&
	    strcmp(r->route, "/.well-known/jwks.json") != 0 &&
	    strcmp(r->route, "/introspect") != 0 &&
	    strcmp(r->route, "/openapi.json") != 0 &&
	    strcmp(r->route, "/metrics") != 0 &&
	    /* PostgreSQL only: a verification, mail requests (limits off) */
	    strcmp(r->route, "/email/verify") != 0 &&
	    strcmp(r->route, "/email/verify/resend") != 0 &&
	    strcmp(r->route, "/password/forgot") != 0)
		fuzz_fail("%s answered %d with Redis down", r->route,
		    r->status);
	if (stub.redis_down && two && r->authorizer)
		fuzz_fail("authorizer answered %d with Redis down", r->status);
	if (stub.pg_down && two && r->route != NULL &&
	    (strcmp(r->route, "/register") == 0 ||
	    strcmp(r->route, "/login") == 0 ||
	    strcmp(r->route, "/health") == 0))
		fuzz_fail("%s answered %d with PostgreSQL down", r->route,
		    r->status);
	if (j != NULL && json_is_true(json_object_get(j, "active")) &&
	    (!minted || stub.redis_down || stub.revoked))
		fuzz_fail("introspection active for a token that is not live");

	/* authentication and roles */
	if (two && bearer_route(r)) {
		if (!minted)
			fuzz_fail("%s answered %d to a token we did not issue",
			    r->route ? r->route : "authorizer", r->status);
		if (stub.revoked)
			fuzz_fail("%s answered %d to a revoked token",
			    r->route ? r->route : "authorizer", r->status);
		if (needs_admin(r) && !roles_have(mroles, "admin"))
			fuzz_fail("%s answered %d without the admin role",
			    r->route, r->status);
		/* the server's role always holds, even when a query has one */
		if (is_verify(r) && r->required_role != NULL &&
		    (*r->required_role == '\0' ||
		    !roles_have(mroles, r->required_role)))
			fuzz_fail("verify answered %d without the server's "
			    "role %s", r->status, r->required_role);
		/* minted tokens are aal 1: a second factor never held */
		if (is_verify(r) && r->required_aal != NULL)
			fuzz_fail("verify answered %d with AUTH_REQUIRED_AAL "
			    "%s to an aal 1 token", r->status, r->required_aal);
		if (stub.mfa && (is_route(r, "/password") ||
		    (is_route(r, "/mfa/totp") && r->method == METHOD_DELETE)))
			fuzz_fail("%s answered %d to an aal 1 session of a "
			    "user with MFA", r->route, r->status);
		if (is_verify(r) && !r->authorizer) {
			qs = request_query_lookup(r, "aal", qrole,
			    sizeof(qrole));
			if (qs == QUERY_MALFORMED || (qs == QUERY_PRESENT &&
			    strcmp(qrole, "1") != 0))
				fuzz_fail("verify answered %d to aal query %s",
				    r->status, r->query);
		}
		/* outside the Authorizer role the query's holds too; a
		 * malformed one is never "no requirement" */
		if (is_verify(r) && !r->authorizer) {
			qs = request_query_lookup(r, "role", qrole,
			    sizeof(qrole));
			if (qs == QUERY_MALFORMED || (qs == QUERY_PRESENT &&
			    (qrole[0] == '\0' || !roles_have(mroles, qrole))))
				fuzz_fail("verify answered %d to role query "
				    "%s", r->status, r->query);
		}
	}
	json_decref(j);
}

/* Replace the first ACCESS_MARK of body by tok; returns a new body. */
static char *
body_with_token(const char *body, size_t len, size_t *outlen,
    const char *tok)
{
	const char	*m;
	char		*out;
	size_t		 ml = strlen(ACCESS_MARK), tl = strlen(tok), pre;

	m = memmem(body, len, ACCESS_MARK, ml);
	pre = (size_t)(m - body);
	out = xmalloc(len - ml + tl + 1);
	memcpy(out, body, pre);
	memcpy(out + pre, tok, tl);
	memcpy(out + pre + tl, m + ml, len - pre - ml);
	*outlen = len - ml + tl;
	out[*outlen] = '\0';
	return out;
}

/* The access line of the request: a JSON one must parse, a text one must
 * stay one line, whatever the client sent (log.c). */
static void
check_access_line(const struct request *r)
{
	struct log_access	 a;
	char			 buf[LOG_LINE_MAX];
	json_t			*j;
	size_t			 n;

	memset(&a, 0, sizeof(a));
	a.reqid = r->id;
	a.method = r->method_name;
	a.route = r->route;
	a.status = r->status;
	a.ip = r->ip;
	a.user_id = r->user_id;
	a.bytes = r->out != NULL ? r->outlen : 0;
	a.user_agent = r->user_agent;
	n = log_access_format(buf, sizeof(buf), LOGF_JSON, 1, 0, &a);
	if ((j = json_loadb(buf, n, 0, NULL)) == NULL || !json_is_object(j))
		fuzz_fail("JSON access line does not parse: %.200s", buf);
	json_decref(j);
	n = log_access_format(buf, sizeof(buf), LOGF_TEXT, 1, 0, &a);
	if (memchr(buf, '\n', n) != NULL || n != strlen(buf))
		fuzz_fail("text access line is not one line");
	log_request(&a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct request	 r;
	const uint8_t	*p = data;
	size_t		 left = size, n, bodylen;
	char		*ctl = NULL, *method = NULL, *uri = NULL, *ctype = NULL;
	char		*auth = NULL, *ua = NULL, *tok = NULL, *bearer = NULL;
	char		*body, *b2;
	const char	*q, *mroles = "";
	unsigned char	 c[4] = { 0, 0, 0, 0 };
	int		 minted = 0, notours = 0;

	if ((ctl = fuzz_field(&p, &left)) == NULL)
		return 0;
	for (n = 0; n < 2 * sizeof(c) && ctl[n] != '\0'; n++)
		c[n / 2] |= (unsigned char)(nibble(ctl[n]) << (n % 2 ? 0 : 4));
	method = fuzz_field(&p, &left);
	uri = fuzz_field(&p, &left);
	ctype = fuzz_field(&p, &left);
	auth = fuzz_field(&p, &left);
	ua = fuzz_field(&p, &left);
	body = fuzz_strndup(p, left);	/* NUL bytes kept: bodylen says */
	bodylen = left;

	memset(&stub, 0, sizeof(stub));
	stub.pg_down = c[0] & C0_PG_DOWN;
	stub.redis_down = (c[0] & C0_REDIS_DOWN) != 0;
	stub.user_missing = (c[0] & C0_USER_MISSING) != 0;
	stub.pw_mismatch = (c[0] & C0_PW_MISMATCH) != 0;
	stub.rehash = (c[0] & C0_REHASH) != 0;
	stub.user_disabled = (c[0] & C0_DISABLED) != 0;
	stub.email_taken = (c[0] & C0_EMAIL_TAKEN) != 0;
	stub.rotate = (enum rotate_result)((c[1] & 7) % (ROTATE_UNKNOWN + 1));
	stub.limited = (c[1] & C1_LIMITED) != 0;
	stub.revoked = (c[1] & C1_REVOKED) != 0;
	stub.no_session = (c[1] & C1_NO_SESSION) != 0;
	stub.child_bad = (c[1] & C1_CHILD_BAD) != 0;
	stub.trim = (c[1] & C1_TRIM) != 0;
	stub.nsessions = c[2] & 3;
	stub.user_admin = (c[2] & C2_ADMIN) != 0;
	stub.hash_fail = (c[2] & C2_HASH_FAIL) != 0;
	stub.mfa = (c[3] & C3_MFA) != 0;
	stub.mfa_pending = (c[3] & C3_MFA_PENDING) != 0;
	fuzz_conf.verify_preset = (enum verify_preset)(((c[2] >> 2) & 3) %
	    VERIFY_PRESET__MAX);
	fuzz_conf.ratelimit = (c[2] & C2_RATELIMIT_OFF) == 0;
	fuzz_conf.events_enabled = (char *)(uintptr_t)events[(c[3] >> 2) & 3];

	memset(&r, 0, sizeof(r));
	snprintf(r.id, sizeof(r.id), "%s", "fuzz000000000000");
	r.method_name = method != NULL && *method != '\0' ? method : "GET";
	r.method = route_method(r.method_name);
	r.content_type = ctype != NULL && *ctype != '\0' ? ctype : NULL;
	r.user_agent = ua != NULL && *ua != '\0' ? ua : NULL;
	stub.user_agent = r.user_agent;
	r.required_role = (c[2] & C2_REQUIRED) ? "admin" : NULL;
	r.required_aal = (c[3] & C3_AAL) ? "2" : NULL;
	r.required_verified = (c[3] & C3_VERIFIED) ? "1" : NULL;
	r.authorizer = (c[0] & C0_AUTHORIZER) != 0;
	snprintf(r.ip, sizeof(r.ip), "%s", ips[c[3] & 3]);
	if (auth != NULL && auth[0] == '@') {
		mroles = auth + 1;
		if ((tok = mint(mroles)) != NULL) {
			xasprintf(&bearer, "Bearer %s", tok);
			r.authorization = bearer;
			minted = 1;
		} else
			r.authorization = auth;
	} else
		r.authorization = auth != NULL && *auth != '\0' ? auth : NULL;
	if (memmem(body, bodylen, ACCESS_MARK, strlen(ACCESS_MARK)) != NULL) {
		if (tok == NULL && (tok = mint("user")) != NULL)
			mroles = "user";
		if (tok != NULL) {
			b2 = body_with_token(body, bodylen, &bodylen, tok);
			free(body);
			body = b2;
			minted = 1;
		}
	}

	/* server.c's request_fill and server_handle, minus FastCGI */
	q = uri != NULL && *uri != '\0' ? uri : "/";
	if (r.authorizer) {
		r.query = xstrdup("");
		r.path = xstrdup("/verify");
	} else
		notours = request_split_uri(q, fuzz_conf.prefix, &r.path,
		    &r.query) == -1;
	if (bodylen > (size_t)fuzz_conf.max_body) {
		r.body_too_large = 1;
		free(body);
	} else {
		r.body = body;
		r.bodylen = bodylen;
	}
	if (notours)
		resp_error(&r, ERR_NOT_FOUND, NULL);
	else if (r.body_too_large && r.method != METHOD_GET && !r.authorizer)
		resp_error(&r, ERR_TOO_LARGE, NULL);
	else
		route_dispatch(&r);
	check_answer(&r, minted, mroles, stub.hash_fail);
	check_access_line(&r);

	request_free(&r);
	free(tok);
	free(bearer);
	free(ctl);
	free(method);
	free(uri);
	free(ctype);
	free(auth);
	free(ua);
	return 0;
}
