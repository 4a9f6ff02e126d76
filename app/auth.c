/*
 * The Bearer check every authenticated route shares: parse the header,
 * verify the JWT (pinned algorithm, claims), then ask whether it was
 * revoked.  "Could not check" becomes 503, never a pass.
 */
#include "config.h"

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
auth_has_role(const struct claims *c, const char *role)
{
	return roles_has(c->roles, role);
}
