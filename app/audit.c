/*
 * audit.c: the audit row a write carries.  Its names (the "event" column
 * and GET /admin/audit's filter) and audit_init, which fills what every
 * audited request shares.  Pure, so the fuzzers link it.
 */
#include "config.h"

#include <string.h>

#include "extern.h"

static const char *const audit_names[AUDIT__MAX] = {
	"register",
	"login.success",
	"login.failure",
	"refresh",
	"refresh.reuse_detected",
	"logout",
	"logout_all",
	"password.change",
	"session.revoke",
	"role.change",
	"user.import",
	"user.delete",
	"mfa.enable",
	"mfa.disable",
	"mfa.failure",
	"password.reset_requested",
	"password.reset",
	"email.verify_requested",
	"email.verified",
	"email.change_requested",
	"email.changed",
	"mail.dropped",
};

const char *
audit_event_name(enum audit_event e)
{
	if ((int)e < 0 || e >= AUDIT__MAX)
		return "unknown";
	return audit_names[e];
}

void
audit_init(struct audit *a, const struct request *r, enum audit_event ev,
    const char *uid, const char *sid)
{
	memset(a, 0, sizeof(*a));
	a->event = ev;
	a->user_id = uid;
	a->session_id = sid;
	if (r != NULL) {
		a->ip = r->ip;
		a->user_agent = r->user_agent;
	}
	a->success = 1;
	a->outbox_event = EVENT_NONE;
}
