/*
 * POST /auth/logout (Bearer, or {"refreshToken"} when the access token has
 * expired) and POST /auth/logout-all.  Revocation is in Redis before the
 * answer leaves, so every route sees it from then on.
 */
#include "config.h"

#include <string.h>

#include <sodium.h>

#include "extern.h"

static void
logout_audit(struct request *r, const char *uid, const char *sid,
    enum audit_event ev, enum event_kind kind)
{
	struct audit	 a;
	json_t		*data;

	data = json_pack("{s:s, s:s}", "userId", uid, "sessionId", sid);
	audit_init(&a, r, ev, uid, sid);
	a.outbox_event = event_enabled(kind);
	a.outbox_data = data;
	if (db_audit(&a) != DB_OK)
		log_warn(r->id, "logout not audited");
	json_decref(data);
}

/* Seconds the token has left, so its blacklist entry outlives it. */
static long
remaining(const struct claims *c)
{
	long long	 left = c->exp - now_ms() / 1000 + cfg->jwt_leeway + 1;

	return left < 1 ? 1 : (long)left;
}

static void
logout_refresh(struct request *r)
{
	struct refresh	 rt;
	char		 prev[FA_HASH_HEX + 1];
	json_t		*body, *t;
	int		 rc;

	if ((body = request_json(r)) == NULL)
		return;
	t = json_object_get(body, "refreshToken");
	if (!json_is_string(t) || refresh_parse(&rt, json_string_value(t),
	    json_string_length(t)) == -1) {
		resp_error(r, ERR_INVALID_TOKEN, NULL);
		goto out;
	}
	rc = store_session_revoke_refresh(rt.uid, rt.sid, rt.hash,
	    cfg->access_ttl);
	/* issued before a jwt_secret rotation: its hash under the old one */
	if (rc == 1 && refresh_hash_previous(&rt, prev) == 0)
		rc = store_session_revoke_refresh(rt.uid, rt.sid, prev,
		    cfg->access_ttl);
	if (rc == -1)
		resp_unavailable(r);
	else if (rc == 1)
		resp_error(r, ERR_INVALID_TOKEN, NULL);
	else {
		logout_audit(r, rt.uid, rt.sid, AUDIT_LOGOUT,
		    EVENT_USER_LOGGED_OUT);
		resp_empty(r, 204);
	}
out:
	sodium_memzero(&rt, sizeof(rt));
	json_decref(body);
}

void
route_logout(struct request *r)
{
	struct claims	 c;

	if (r->authorization == NULL) {
		logout_refresh(r);
		return;
	}
	if (route_bearer(r, &c) == -1)
		return;
	if (store_blacklist(c.sub, c.jti, remaining(&c)) == -1 ||
	    store_session_revoke(c.sub, c.sid, cfg->access_ttl) == -1) {
		resp_unavailable(r);
		return;
	}
	logout_audit(r, c.sub, c.sid, AUDIT_LOGOUT, EVENT_USER_LOGGED_OUT);
	resp_empty(r, 204);
}

void
route_logout_all(struct request *r)
{
	struct claims	 c;
	long long	 cutoff;
	char		**sids;
	size_t		 i, n;

	if (route_bearer(r, &c) == -1)
		return;
	if (store_user_revoke_sessions(c.sub, NULL, cfg->access_ttl,
	    &cutoff, &sids, &n) == -1) {
		resp_unavailable(r);
		return;
	}
	/* one session.revoked per session, the caller's included */
	logout_audit(r, c.sub, c.sid, AUDIT_LOGOUT_ALL, EVENT_NONE);
	for (i = 0; i < n; i++) {
		(void)session_revoked(r, c.sub, c.email, sids[i],
		    SESSION_END_LOGOUT_ALL);
		free(sids[i]);
	}
	free(sids);
	resp_empty(r, 204);
}
