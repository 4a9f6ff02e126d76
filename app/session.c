/*
 * session.c: the service layer for a session's life, used by the routes
 * and the CLI alike: open (the session in Redis, the user read again, the
 * login recorded), the token pair, and the end.  Whatever ends a session
 * (the user, logout-all, a password change, reuse, the session limit, an
 * operator), the end is one session.revoke audit row and one
 * session.revoked event with the reason, in one transaction.  Nothing
 * here answers HTTP.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "extern.h"

static const char *const session_reasons[SESSION_END__MAX] = {
	[SESSION_END_USER] = "user",
	[SESSION_END_LOGOUT_ALL] = "logout_all",
	[SESSION_END_PASSWORD_CHANGE] = "password_change",
	[SESSION_END_PASSWORD_RESET] = "password_reset",
	[SESSION_END_REUSE] = "reuse",
	[SESSION_END_DISABLED] = "disabled",
	[SESSION_END_DELETED] = "deleted",
	[SESSION_END_ADMIN] = "admin",
	[SESSION_END_LIMIT] = "limit",
};

const char *
session_end_reason(enum session_end e)
{
	if ((int)e < 0 || e >= SESSION_END__MAX)
		return NULL;
	return session_reasons[e];
}

int
session_revoked_by(struct request *r, const char *uid, const char *email,
    const char *sid, enum session_end why, const char *by)
{
	struct audit	 a;
	json_t		*data, *detail;
	const char	*reason = session_end_reason(why);
	int		 rc = 0;

	if (reason == NULL || uid == NULL || sid == NULL)
		return -1;
	data = json_pack("{s:s, s:s, s:s}", "userId", uid, "sessionId", sid,
	    "reason", reason);
	detail = json_pack("{s:s}", "reason", reason);
	audit_init(&a, r, AUDIT_SESSION_REVOKE, uid, sid);
	if (by != NULL)
		json_object_set_new(detail, "by", json_string(by));
	a.email = email;
	a.detail = detail;
	a.outbox_event = event_enabled(EVENT_SESSION_REVOKED);
	a.outbox_data = data;
	if (db_audit(&a) != DB_OK) {
		log_warn(r != NULL ? r->id : NULL, "session %s ended (%s) but "
		    "not recorded", sid, reason);
		rc = -1;
	}
	json_decref(data);
	json_decref(detail);
	return rc;
}

int
session_revoked(struct request *r, const char *uid, const char *email,
    const char *sid, enum session_end why)
{
	return session_revoked_by(r, uid, email, sid, why, NULL);
}

int
session_pair(struct request *r, const struct user *u, const char *sid,
    const char *refresh_text, long long gen, int aal, struct session_pair *p)
{
	struct claims	 c;

	memset(p, 0, sizeof(*p));
	snprintf(p->uid, sizeof(p->uid), "%s", u->id);
	snprintf(p->sid, sizeof(p->sid), "%s", sid);
	snprintf(p->refresh, sizeof(p->refresh), "%s", refresh_text);
	if (r != NULL)	/* the access line names the user */
		snprintf(r->user_id, sizeof(r->user_id), "%s", u->id);
	memset(&c, 0, sizeof(c));
	snprintf(c.sub, sizeof(c.sub), "%s", u->id);
	snprintf(c.sid, sizeof(c.sid), "%s", sid);
	snprintf(c.email, sizeof(c.email), "%s", u->email);
	snprintf(c.roles, sizeof(c.roles), "%s", u->roles);
	c.aal = aal;
	c.email_verified = u->email_verified;
	if (token_issue(&c, gen, &p->access) == -1) {
		log_error(r != NULL ? r->id : NULL, "cannot sign an access "
		    "token");
		return -1;
	}
	return 0;
}

void
session_pair_free(struct session_pair *p)
{
	if (p->access != NULL) {
		sodium_memzero(p->access, strlen(p->access));
		free(p->access);
	}
	sodium_memzero(p, sizeof(*p));
}

/* The sessions the limit trimmed: each recorded, then freed. */
static void
session_trimmed(struct request *r, const struct user *u, char **sids,
    size_t n)
{
	size_t		 i;

	for (i = 0; i < n; i++) {
		(void)session_revoked(r, u->id, u->email, sids[i],
		    SESSION_END_LIMIT);
		free(sids[i]);
	}
	free(sids);
}

/*
 * The user as it is now that the session holds the revocation generation.
 * The row read before the hash may be stale: a role or password change that
 * ran meanwhile cut off before it committed, so a change committed before
 * this read is in it, and one committed after ends the session by its own
 * cut-off.  1 when the password checked is no longer the user's, or the
 * user was disabled or deleted; -1 PostgreSQL down.
 */
static int
session_recheck(const struct user *u, struct user *now)
{
	int	 rc;

	if ((rc = db_user_by_id(u->id, now)) == DB_ERROR)
		return -1;
	if (rc != DB_OK || now->disabled || now->password_hash == NULL ||
	    u->password_hash == NULL ||
	    strcmp(now->password_hash, u->password_hash) != 0)
		return 1;
	return 0;
}

/* The login.success audit row and user.logged_in event: 0, or -1. */
static int
session_record_login(struct request *r, const struct user *u,
    const char *sid, const char *ip, const char *ua, int aal)
{
	struct audit	 a;
	json_t		*data, *detail;
	int		 rc;

	data = json_pack("{s:s, s:s, s:s, s:s}", "userId", u->id,
	    "sessionId", sid, "ip", ip, "userAgent", ua);
	detail = json_pack("{s:o, s:i}", "amr", token_amr(aal), "aal", aal);
	audit_init(&a, r, AUDIT_LOGIN_SUCCESS, u->id, sid);
	a.email = u->email;
	a.detail = detail;
	a.outbox_event = event_enabled(EVENT_USER_LOGGED_IN);
	a.outbox_data = data;
	rc = db_audit(&a);
	json_decref(data);
	json_decref(detail);
	return rc == DB_OK ? 0 : -1;
}

int
session_open(struct request *r, const struct user *u, const char *ip,
    const char *rawua, int aal, struct session_pair *p)
{
	struct user	 now;
	struct refresh	 rt;
	unsigned char	 sidb[16];
	char		 sid[FA_UUID_LEN + 1], ua[FA_UA_MAX + 1], **trim = NULL;
	size_t		 ntrim = 0;
	long long	 cutoff = 0;
	int		 rc;

	memset(p, 0, sizeof(*p));
	memset(&now, 0, sizeof(now));
	uuid_random(sidb);
	uuid_format(sid, sidb);
	refresh_new(&rt, u->id, sid);
	text_clean(ua, sizeof(ua), rawua, rawua != NULL ? strlen(rawua) : 0);
	if (store_session_create(u->id, sid, rt.hash, ip, ua, aal,
	    cfg->refresh_ttl, cfg->max_sessions_per_user, &trim, &ntrim,
	    &cutoff) == -1) {
		rc = -1;
		goto out;
	}
	if ((rc = session_recheck(u, &now)) == 0 &&
	    session_record_login(r, u, sid, ip, ua, aal) == -1)
		rc = -1;	/* not recorded, so not granted */
	if (rc != 0)
		(void)store_session_revoke(u->id, sid, cfg->access_ttl);
	if (trim != NULL)
		session_trimmed(r, u, trim, ntrim);
	if (rc == 0)
		(void)session_pair(r, &now, sid, rt.text, cutoff, aal, p);
out:
	sodium_memzero(&rt, sizeof(rt));
	user_free(&now);
	return rc;
}

int
session_end_all(struct request *r, const struct user *u,
    enum session_end why, const char *by, size_t *n)
{
	struct session_info	*list = NULL;
	struct audit		 a;
	json_t			*detail;
	const char		*reason = session_end_reason(why);
	long long		 cutoff;
	size_t			 i;

	*n = 0;
	if (store_session_list(u->id, &list, n) == -1 ||
	    store_user_revoke_all(u->id, NULL, cfg->access_ttl,
	    &cutoff) == -1) {
		free(list);
		*n = 0;
		return -1;
	}
	for (i = 0; i < *n; i++)
		(void)session_revoked_by(r, u->id, u->email, list[i].id, why,
		    by);
	free(list);
	detail = json_pack("{s:s, s:s?, s:I}", "reason", reason, "by", by,
	    "sessions", (json_int_t)*n);
	audit_init(&a, r, AUDIT_LOGOUT_ALL, u->id, NULL);
	a.email = u->email;
	a.detail = detail;
	if (db_audit(&a) != DB_OK)
		log_warn(r != NULL ? r->id : NULL, "logout of %s not "
		    "recorded", u->email);
	json_decref(detail);
	return 0;
}
