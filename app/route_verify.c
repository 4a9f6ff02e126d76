/*
 * GET /auth/verify for nginx auth_request, and the FastCGI Authorizer role
 * for lighttpd.  204 (Authorizer: 200) with the identity in headers, 401,
 * 403 when a required role or aal is missing or malformed, 503 when
 * revocation cannot be checked.  Header names follow the configured preset.
 */
#include "config.h"

#include <string.h>

#include "extern.h"

enum vh {
	VH_USER,
	VH_EMAIL,
	VH_ROLES,
	VH_SESSION,
	VH__MAX
};

static const char *const vh_names[VERIFY_PRESET__MAX][VH__MAX] = {
	[VERIFY_PRESET_DEFAULT] = { "X-Auth-User-Id", "X-Auth-Email",
	    "X-Auth-Roles", "X-Auth-Session-Id" },
	[VERIFY_PRESET_AUTHELIA] = { "Remote-User", "Remote-Email",
	    "Remote-Groups", "X-Auth-Session-Id" },
	[VERIFY_PRESET_OAUTH2_PROXY] = { "X-Auth-Request-User",
	    "X-Auth-Request-Email", "X-Auth-Request-Groups",
	    "X-Auth-Session-Id" },
};

/* Authorizer answers hand variables to lighttpd as Variable-<NAME>. */
static const char *const vh_variables[VH__MAX] = {
	"Variable-AUTH_USER_ID", "Variable-AUTH_EMAIL",
	"Variable-AUTH_ROLES", "Variable-AUTH_SESSION_ID"
};

/*
 * What the gateway may require of a token.  The server's requirement (a
 * FastCGI parameter from the web server config) always applies; the
 * query's only outside the Authorizer role, where the URL is the client's
 * own, and then in addition.  A requirement present but malformed fails
 * closed.  Later requirements (aal, verified) are one more row each.
 */
enum vreq {
	VREQ_ROLE,
	VREQ_AAL,
	VREQ_VERIFIED,
	VREQ__MAX
};

/* An aal requirement is "1" or "2", nothing else. */
static int
aal_valid(const char *v, size_t len)
{
	return len == 1 && v[0] >= '0' + TOKEN_AAL_MIN &&
	    v[0] <= '0' + TOKEN_AAL_MAX ? 0 : -1;
}

static int
aal_holds(const struct claims *c, const char *v)
{
	return c->aal >= v[0] - '0';
}

/* verified=1 requires email_verified; verified=0 requires nothing. */
static int
verified_valid(const char *v, size_t len)
{
	return len == 1 && (v[0] == '0' || v[0] == '1') ? 0 : -1;
}

static int
verified_holds(const struct claims *c, const char *v)
{
	return v[0] == '0' || c->email_verified;
}

static const struct {
	const char	*query;		/* ?name= */
	int		(*valid)(const char *, size_t);
	int		(*holds)(const struct claims *, const char *);
} vreqs[VREQ__MAX] = {
	[VREQ_ROLE] = { "role", validate_role, auth_has_role },
	[VREQ_AAL] = { "aal", aal_valid, aal_holds },
	[VREQ_VERIFIED] = { "verified", verified_valid, verified_holds },
};

static int
vreq_holds(enum vreq i, const char *v, const struct claims *c)
{
	return vreqs[i].valid(v, strlen(v)) == 0 && vreqs[i].holds(c, v);
}

/* 0 when every requirement holds; -1 when one fails or is malformed. */
static int
verify_requirements(const struct request *r, const struct claims *c)
{
	const char	*server[VREQ__MAX];
	char		 v[VERIFY_VALUE_MAX + 1];
	size_t		 i;

	server[VREQ_ROLE] = r->required_role;
	server[VREQ_AAL] = r->required_aal;
	server[VREQ_VERIFIED] = r->required_verified;
	for (i = 0; i < VREQ__MAX; i++) {
		if (server[i] != NULL && !vreq_holds(i, server[i], c))
			return -1;
		if (r->authorizer)
			continue;
		switch (request_query_lookup(r, vreqs[i].query, v,
		    sizeof(v))) {
		case QUERY_ABSENT:
			break;
		case QUERY_PRESENT:
			if (!vreq_holds(i, v, c))
				return -1;
			break;
		default:
			return -1;
		}
	}
	return 0;
}

/* Identity header values are visible ASCII only: else the token fails. */
static int
identity_ok(const struct claims *c)
{
	return resp_header_value_ok(c->sub) && resp_header_value_ok(c->email) &&
	    resp_header_value_ok(c->roles) && resp_header_value_ok(c->sid);
}

void
route_verify(struct request *r)
{
	const char *const	*names;
	struct claims		 c;

	if (route_bearer(r, &c) == -1)
		return;
	if (!identity_ok(&c)) {
		log_warn(r->id, "verify: identity not visible ASCII; refused");
		resp_error(r, ERR_INVALID_TOKEN, NULL);
		return;
	}
	if (verify_requirements(r, &c) == -1) {
		resp_error(r, ERR_FORBIDDEN, NULL);
		return;
	}
	names = r->authorizer ? vh_variables : vh_names[cfg->verify_preset];
	resp_header(r, names[VH_USER], c.sub);
	resp_header(r, names[VH_EMAIL], c.email);
	resp_header(r, names[VH_ROLES], c.roles);
	resp_header(r, names[VH_SESSION], c.sid);
	if (cfg->verify_preset == VERIFY_PRESET_AUTHELIA && !r->authorizer)
		resp_header(r, "Remote-Name", c.email);
	resp_header(r, "Cache-Control", "no-store");
	resp_empty(r, r->authorizer ? 200 : 204);
}
