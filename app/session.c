/*
 * session.c: the record of a session that ended.  Whatever ends it (the
 * user, logout-all, a password change, reuse, the session limit, an
 * operator), the end is one session.revoke audit row and one
 * session.revoked event with the reason, in one transaction.
 */
#include "config.h"

#include <string.h>

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
session_revoked(struct request *r, const char *uid, const char *email,
    const char *sid, enum session_end why)
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
