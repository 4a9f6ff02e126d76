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
	{ METHOD_GET,	"/health",
	    "/health", route_health },
	{ METHOD_GET,	"/health/live",
	    "/health/live", route_health_live },
	{ METHOD_GET,	"/health/ready",
	    "/health/ready", route_health_ready },
	{ METHOD_POST,	"/register",
	    "/register", route_register },
	{ METHOD_POST,	"/login",
	    "/login", route_login },
	{ METHOD_POST,	"/refresh",
	    "/refresh", route_refresh },
	{ METHOD_POST,	"/logout",
	    "/logout", route_logout },
	{ METHOD_POST,	"/logout-all",
	    "/logout-all", route_logout_all },
	{ METHOD_GET,	"/me",
	    "/me", route_me },
	{ METHOD_GET,	"/sessions",
	    "/sessions", route_sessions_list },
	{ METHOD_DELETE,	"/sessions/:",
	    "/sessions/{id}", route_sessions_revoke },
	{ METHOD_POST,	"/password",
	    "/password", route_password },
	{ METHOD_POST,	"/password/forgot",
	    "/password/forgot", route_password_forgot },
	{ METHOD_POST,	"/password/reset",
	    "/password/reset", route_password_reset },
	{ METHOD_POST,	"/email",
	    "/email", route_email_change },
	{ METHOD_POST,	"/email/verify",
	    "/email/verify", route_email_verify },
	{ METHOD_POST,	"/email/verify/resend",
	    "/email/verify/resend", route_email_verify_resend },
	{ METHOD_DELETE,	"/me",
	    "/me", route_me_delete },
	/* nginx auth_request subrequests inherit the client's method */
	{ METHOD_ANY,	"/verify",
	    "/verify", route_verify },
	{ METHOD_POST,	"/introspect",
	    "/introspect", route_introspect },
	{ METHOD_GET,	"/.well-known/jwks.json",
	    "/.well-known/jwks.json", route_jwks },
	{ METHOD_GET,	"/admin/audit",
	    "/admin/audit", route_admin_audit },
	{ METHOD_PUT,	"/admin/users/:/roles",
	    "/admin/users/{id}/roles", route_admin_roles },
	{ METHOD_GET,	"/metrics",
	    "/metrics", route_metrics },
	{ METHOD_GET,	"/openapi.json",
	    "/openapi.json", route_openapi },
	{ METHOD_POST,	"/mfa/totp",
	    "/mfa/totp", route_mfa_totp },
	{ METHOD_DELETE,	"/mfa/totp",
	    "/mfa/totp", route_mfa_disable },
	{ METHOD_POST,	"/mfa/totp/confirm",
	    "/mfa/totp/confirm", route_mfa_confirm },
	{ METHOD_GET,	"/mfa/totp/qr.svg",
	    "/mfa/totp/qr.svg", route_mfa_qr },
	{ METHOD_POST,	"/mfa/verify",
	    "/mfa/verify", route_mfa_verify },
};
#define ROUTES_MAX	(sizeof(routes) / sizeof(routes[0]))
_Static_assert(ROUTES_MAX <= ROUTE_IDS_MAX, "ROUTE_IDS_MAX too small");

size_t
route_table_size(void)
{
	return ROUTES_MAX;
}

const char *
route_table_label(size_t id)
{
	return id >= 1 && id <= ROUTES_MAX ? routes[id - 1].label : "other";
}

static void
route_set(struct request *r, size_t i)
{
	r->route = routes[i].pattern;
	r->route_id = i + 1;
}

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
		for (i = 0; i < ROUTES_MAX; i++)
			if (routes[i].fn == route_verify)
				route_set(r, i);
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
			route_set(r, i);
			routes[i].fn(r);
			return;
		}
		route_clear_params(r);
		if (!known)	/* the metrics label of a 405 */
			route_set(r, i);
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
			route_set(r, i);
			return;
		}
	}
}

/*
 * The Bearer check turned into the answer: 0 and the claims (user_id set
 * for the access line), or -1 with 401 or 503 set.
 */
int
route_bearer(struct request *r, struct claims *c)
{
	switch (auth_check(r->authorization, c)) {
	case 0:
		snprintf(r->user_id, sizeof(r->user_id), "%s", c->sub);
		return 0;
	case 1:
		resp_error(r, ERR_INVALID_TOKEN, NULL);
		return -1;
	default:
		resp_unavailable(r);
		return -1;
	}
}

/* validate_fields, the refusal answered: 0, or -1 with the 400 set. */
int
route_fields(struct request *r, const json_t *body,
    const struct field_spec *spec, size_t n, int flags, struct field_value *v)
{
	json_t	*fields = json_object();

	if (validate_fields(body, spec, n, flags, v, fields) == -1) {
		resp_error_fields(r, fields);
		return -1;
	}
	json_decref(fields);
	return 0;
}
