/*
 * The route table: method + path pattern -> handler.  A ':' segment matches
 * one non-empty path segment and is handed to the handler as a parameter.
 * A known path with another method answers 405 with Allow.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"

#define METHOD_ANY	METHOD__MAX

static const struct route routes[] = {
	{ METHOD_GET,	 "/health",			route_health },
	{ METHOD_GET,	 "/health/live",		route_health_live },
	{ METHOD_GET,	 "/health/ready",		route_health_ready },
	{ METHOD_POST,	 "/register",			route_register },
	{ METHOD_POST,	 "/login",			route_login },
	{ METHOD_POST,	 "/refresh",			route_refresh },
	{ METHOD_POST,	 "/logout",			route_logout },
	{ METHOD_POST,	 "/logout-all",			route_logout_all },
	{ METHOD_GET,	 "/me",				route_me },
	{ METHOD_GET,	 "/sessions",			route_sessions_list },
	{ METHOD_DELETE, "/sessions/:",			route_sessions_revoke },
	{ METHOD_POST,	 "/password",			route_password },
	{ METHOD_POST,	 "/password/forgot",		route_password_forgot },
	{ METHOD_POST,	 "/password/reset",		route_password_reset },
	{ METHOD_POST,	 "/email",			route_email_change },
	{ METHOD_POST,	 "/email/verify",		route_email_verify },
	{ METHOD_POST,	 "/email/verify/resend",
	    route_email_verify_resend },
	{ METHOD_DELETE, "/me",				route_me_delete },
	/* nginx auth_request subrequests inherit the client's method */
	{ METHOD_ANY,	 "/verify",			route_verify },
	{ METHOD_POST,	 "/introspect",			route_introspect },
	{ METHOD_GET,	 "/.well-known/jwks.json",	route_jwks },
	{ METHOD_GET,	 "/admin/audit",		route_admin_audit },
	{ METHOD_PUT,	 "/admin/users/:/roles",	route_admin_roles },
	{ METHOD_GET,	 "/metrics",			route_metrics },
	{ METHOD_GET,	 "/openapi.json",		route_openapi },
	{ METHOD_POST,	 "/mfa/totp",			route_mfa_totp },
	{ METHOD_DELETE, "/mfa/totp",			route_mfa_disable },
	{ METHOD_POST,	 "/mfa/totp/confirm",		route_mfa_confirm },
	{ METHOD_GET,	 "/mfa/totp/qr.svg",		route_mfa_qr },
	{ METHOD_POST,	 "/mfa/verify",			route_mfa_verify },
};
#define ROUTES_MAX	(sizeof(routes) / sizeof(routes[0]))

static const char *const method_names[METHOD__MAX] = {
	"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "OTHER"
};

enum method
route_method(const char *name)
{
	int	 i;

	for (i = 0; i < METHOD_OTHER; i++)
		if (strcmp(name, method_names[i]) == 0)
			return (enum method)i;
	return METHOD_OTHER;
}

/* Match path against pattern; captured segments go to r->params. */
static int
route_match(const char *pattern, const char *path, struct request *r)
{
	const char	*seg;
	size_t		 n;

	r->nparams = 0;
	while (*pattern != '\0' && *path != '\0') {
		if (*pattern == ':') {
			seg = path;
			n = strcspn(path, "/");
			if (n == 0 || r->nparams == sizeof(r->params) /
			    sizeof(r->params[0]))
				return -1;
			r->params[r->nparams++] = xstrndup(seg, n);
			path += n;
			pattern++;
			continue;
		}
		if (*pattern != *path)
			return -1;
		pattern++;
		path++;
	}
	return (*pattern == '\0' && *path == '\0') ? 0 : -1;
}

static void
route_clear_params(struct request *r)
{
	size_t	 i;

	for (i = 0; i < r->nparams; i++)
		free(r->params[i]);
	r->nparams = 0;
}

static void
allow_add(char *allow, size_t sz, const char *m)
{
	size_t	 n = strlen(allow);

	snprintf(allow + n, sz - n, "%s%s", n > 0 ? ", " : "", m);
}

void
route_dispatch(struct request *r)
{
	char		 allow[64] = "";
	size_t		 i;
	int		 known = 0;

	if (r->authorizer) {
		route_verify(r);
		return;
	}
	for (i = 0; i < ROUTES_MAX; i++) {
		if (route_match(routes[i].pattern, r->path, r) == -1) {
			route_clear_params(r);
			continue;
		}
		if (routes[i].method == METHOD_ANY ||
		    routes[i].method == r->method ||
		    (r->method == METHOD_HEAD &&
		    routes[i].method == METHOD_GET)) {
			r->route = routes[i].pattern;
			routes[i].fn(r);
			return;
		}
		route_clear_params(r);
		if (!known)	/* the metrics label of a 405 */
			r->route = routes[i].pattern;
		known = 1;
		allow_add(allow, sizeof(allow), method_names[routes[i].method]);
		if (routes[i].method == METHOD_GET)
			allow_add(allow, sizeof(allow), "HEAD");
	}
	if (known) {
		resp_error(r, ERR_METHOD, NULL);
		resp_header(r, "Allow", allow);
	} else
		resp_error(r, ERR_NOT_FOUND, NULL);
}

void
route_label(struct request *r)
{
	size_t	 i;
	int	 hit;

	for (i = 0; i < ROUTES_MAX && r->path != NULL; i++) {
		hit = route_match(routes[i].pattern, r->path, r) == 0;
		route_clear_params(r);
		if (hit) {
			r->route = routes[i].pattern;
			return;
		}
	}
}
