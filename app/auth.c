/*
 * The Bearer check every authenticated route shares: parse the header,
 * verify the JWT (pinned algorithm, claims), then ask whether it was
 * revoked.  "Could not check" becomes 503, never a pass.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "extern.h"

/* 0: claims hold a live token; 1: invalid or revoked; -1: backend down. */
int
auth_check(const char *authorization, struct claims *c)
{
	const char	*tok;
	size_t		 len;

	if (request_bearer(authorization, &tok, &len) == -1)
		return 1;
	return auth_check_token(tok, len, c);
}

/* The same, for a token without the header around it (introspect, RPC). */
int
auth_check_token(const char *tok, size_t len, struct claims *c)
{
	int		 rc;

	if (len > FA_TOKEN_MAX || tcache_verify(tok, len, c) == -1)
		return 1;
	/* from memory while the revocation cache is live, else Redis */
	if ((rc = revoke_check(c->sub, c->sid, c->jti, c->gen)) == -1)
		rc = store_token_revoked(c->sub, c->sid, c->jti, c->gen);
	return rc;
}

int
auth_bearer(struct request *r, struct claims *c)
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

int
auth_has_role(const struct claims *c, const char *role)
{
	const char	*p = c->roles;
	size_t		 n = strlen(role), len;

	while (*p != '\0') {
		len = strcspn(p, ",");
		if (len == n && strncmp(p, role, n) == 0)
			return 1;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* The claims' roles as a JSON array. */
json_t *
auth_roles_json(const char *roles)
{
	json_t		*a = json_array();
	const char	*p = roles;
	size_t		 len;

	while (*p != '\0') {
		len = strcspn(p, ",");
		if (len > 0)
			json_array_append_new(a, json_stringn(p, len));
		p += len;
		if (*p == ',')
			p++;
	}
	return a;
}
