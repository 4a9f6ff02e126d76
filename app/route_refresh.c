/*
 * POST /auth/refresh.  One Lua script decides atomically: rotate, answer
 * within the grace window with the same child, or treat the token as reused
 * and revoke the session.  A token nobody knows changes nothing.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "extern.h"

/* Reuse: the audit row and the token.reuse_detected event. */
static void
refresh_audit_reuse(struct request *r, const char *uid, const char *sid)
{
	struct audit	 a;
	json_t		*data;

	data = json_pack("{s:s, s:s, s:s}", "userId", uid, "sessionId", sid,
	    "ip", r->ip);
	audit_init(&a, r, AUDIT_REFRESH_REUSE, uid, sid);
	a.success = 0;
	a.outbox_event = event_enabled(EVENT_TOKEN_REUSE_DETECTED);
	a.outbox_data = data;
	if (db_audit(&a) != DB_OK)
		log_warn(r->id, "refresh reuse not audited");
	json_decref(data);
	(void)session_revoked(r, uid, NULL, sid, SESSION_END_REUSE);
}

void
route_refresh(struct request *r)
{
	struct refresh		 old, next;
	char			 prev[FA_HASH_HEX + 1];
	struct user		 u;
	struct session_pair	 pair;
	enum rotate_result	 res;
	struct audit		 a;
	json_t			*body, *t, *detail = NULL;
	char			*sealed = NULL, *child = NULL;
	long long		 cutoff = 0;
	int			 rc, aal = TOKEN_AAL_MIN;

	memset(&u, 0, sizeof(u));
	memset(&pair, 0, sizeof(pair));
	if ((body = request_json(r)) == NULL)
		return;
	t = json_object_get(body, "refreshToken");
	if (!json_is_string(t)) {
		resp_error_fields(r, json_pack("{s:s}", "refreshToken",
		    "is required"));
		goto out;
	}
	if (refresh_parse(&old, json_string_value(t),
	    json_string_length(t)) == -1) {
		resp_error(r, ERR_INVALID_TOKEN, NULL);
		goto out;
	}
	refresh_new(&next, old.uid, old.sid);
	if (refresh_seal(&next, &sealed) == -1) {
		resp_error(r, ERR_INTERNAL, NULL);
		goto out;
	}
	if (store_session_rotate(old.uid, old.sid, old.hash, next.hash,
	    sealed, cfg->refresh_reuse_grace, cfg->refresh_ttl, &res, &child,
	    &cutoff, &aal) == -1) {
		resp_unavailable(r);
		goto out;
	}
	/* issued before a rotation of jwt_secret: its hash under the old one;
	 * the child it rotates to is hashed under the new one */
	if (res == ROTATE_UNKNOWN && refresh_hash_previous(&old, prev) == 0 &&
	    store_session_rotate(old.uid, old.sid, prev, next.hash, sealed,
	    cfg->refresh_reuse_grace, cfg->refresh_ttl, &res, &child,
	    &cutoff, &aal) == -1) {
		resp_unavailable(r);
		goto out;
	}
	switch (res) {
	case ROTATE_UNKNOWN:
	case ROTATE_REVOKED:
		resp_error(r, ERR_INVALID_TOKEN, NULL);
		goto out;
	case ROTATE_REUSE:
		metrics_reuse();
		refresh_audit_reuse(r, old.uid, old.sid);
		resp_error(r, ERR_INVALID_TOKEN, NULL);
		goto out;
	case ROTATE_GRACE:
		if (child == NULL || refresh_open(&next, child) == -1 ||
		    strcmp(next.sid, old.sid) != 0) {
			resp_error(r, ERR_INVALID_TOKEN, NULL);
			goto out;
		}
		break;
	case ROTATE_OK:
		break;
	}
	/* the user (roles may have changed) and the audit row, one trip */
	audit_init(&a, r, AUDIT_REFRESH, old.uid, old.sid);
	if (res == ROTATE_GRACE)
		a.detail = detail = json_pack("{s:b}", "grace", 1);
	rc = auditq_user_refresh(old.uid, &a, &u);	/* group commit */
	if (rc == DB_ERROR) {
		resp_unavailable(r);
		goto out;
	}
	if (rc != DB_OK || u.disabled) {
		(void)store_session_revoke(old.uid, old.sid, cfg->access_ttl);
		resp_error(r, ERR_INVALID_TOKEN, NULL);
		goto out;
	}
	(void)session_pair(r, &u, old.sid, next.text, cutoff, aal, &pair);
	resp_pair(r, &pair);
	metrics_refresh();
out:
	sodium_memzero(&old, sizeof(old));
	sodium_memzero(&next, sizeof(next));
	session_pair_free(&pair);
	free(sealed);
	free(child);
	json_decref(detail);
	json_decref(body);
	user_free(&u);
}
