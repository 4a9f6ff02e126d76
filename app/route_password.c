/*
 * POST /auth/password: check the current password on the hash pool, store
 * the new hash with its audit and event rows, then revoke every other
 * session and every access token issued before now.  The check is a
 * password guess like a login's: reserved in the same counters before the
 * hash, so a stolen access token is no unlimited oracle.  A user with MFA
 * needs an aal 2 session for it.
 */
#include "config.h"

#include <string.h>

#include "extern.h"

enum { PW_CURRENT, PW_NEW, PW__MAX };
static const struct field_spec password_fields[PW__MAX] = {
	[PW_CURRENT] = { "currentPassword", FIELD_SECRET, FIELD_REQUIRED,
	    NULL, VALIDATE_WHY_REQUIRED },
	[PW_NEW] = { "newPassword", FIELD_PASSWORD, FIELD_REQUIRED, NULL,
	    VALIDATE_WHY_REQUIRED },
};

void
route_password(struct request *r)
{
	struct ratelimit_guess	 g;
	struct claims		 c;
	struct user		 u;
	struct audit		 a;
	struct field_value	 v[PW__MAX];
	json_t			*body = NULL, *data = NULL;
	char			 hash[128];
	long long		 cutoff;
	long			 retry;
	char			**sids = NULL;
	size_t			 i, n = 0;
	int			 rc, rehash;

	memset(&u, 0, sizeof(u));
	memset(&g, 0, sizeof(g));
	if (route_bearer(r, &c) == -1)
		return;
	if ((body = request_json(r)) == NULL)
		return;
	if (route_fields(r, body, password_fields, PW__MAX, VALIDATE_FIRST,
	    v) == -1)
		goto out;
	if ((rc = db_user_by_id(c.sub, &u)) != DB_OK) {
		if (rc == DB_NOTFOUND)
			resp_error(r, ERR_INVALID_TOKEN, NULL);
		else
			resp_unavailable(r);
		goto out;
	}
	if (route_mfa_step_up(r, &c, &u) == -1)
		goto out;
	if ((rc = ratelimit_guess(&g, u.email, r->ip, &retry)) != 0) {
		if (rc == 1)
			resp_too_many(r, retry);
		else
			resp_unavailable(r);
		goto out;
	}
	rc = password_verify(u.password_hash, v[PW_CURRENT].s,
	    v[PW_CURRENT].len, &rehash);
	if (rc != 0) {
		if (rc == 1)
			resp_error(r, ERR_INVALID_CREDENTIALS,
			    "The current password is wrong.");
		else {
			(void)ratelimit_guess_settle(&g, GUESS_UNCHECKED);
			resp_error(r, ERR_INTERNAL, NULL);
		}
		goto out;
	}
	if (ratelimit_guess_settle(&g, GUESS_RIGHT) == -1) {
		resp_unavailable(r);
		goto out;
	}
	if (password_hash(v[PW_NEW].s, v[PW_NEW].len, hash) == -1) {
		resp_error(r, ERR_INTERNAL, NULL);
		goto out;
	}
	data = json_pack("{s:s}", "userId", u.id);
	audit_init(&a, r, AUDIT_PASSWORD_CHANGE, u.id, c.sid);
	a.email = u.email;
	a.outbox_event = event_enabled(EVENT_USER_PASSWORD_CHANGED);
	a.outbox_data = data;
	/* revoke first: a retry after a failure is safe, a live old
	 * session after a changed password is not */
	if (store_user_revoke_sessions(u.id, c.sid, cfg->access_ttl,
	    &cutoff, &sids, &n) == -1) {
		resp_unavailable(r);
		goto out;
	}
	rc = db_user_set_password(u.id, hash, &a);
	/* ended either way: each gets its session.revoked */
	for (i = 0; i < n; i++)
		(void)session_revoked(r, u.id, u.email, sids[i],
		    SESSION_END_PASSWORD_CHANGE);
	if (rc != DB_OK) {
		resp_unavailable(r);
		goto out;
	}
	resp_empty(r, 204);
out:
	for (i = 0; i < n; i++)
		free(sids[i]);
	free(sids);
	json_decref(data);
	json_decref(body);
	user_free(&u);
}
