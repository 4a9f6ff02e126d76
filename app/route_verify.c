/*
 * GET /auth/verify for nginx auth_request, and the FastCGI Authorizer role
 * for lighttpd.  204 (Authorizer: 200) with the identity in headers, 401,
 * 403 when a required role is missing, 503 when revocation cannot be
 * checked.  Header names follow the configured preset.
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

void
route_verify(struct request *r)
{
	const char *const	*names;
	struct claims		 c;
	char			 role[FA_ROLE_MAX + 1];
	const char		*need = NULL;

	if (auth_bearer(r, &c) == -1)
		return;
	if (request_query(r, "role", role, sizeof(role)) == 0)
		need = role;
	else if (r->required_role != NULL && *r->required_role != '\0')
		need = r->required_role;
	if (need != NULL && !auth_has_role(&c, need)) {
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
