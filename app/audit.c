/*
 * audit.c: the audit row.  Its names (the "event" column and GET
 * /admin/audit's filter), audit_init, which fills what every audited
 * request shares, the outbox row's event names and message (written with
 * the audit row by db_audit.c, published by event.c's relay), and the
 * stored rows the backend lists as API.md's entries.  Pure, so the fuzzers
 * link it.
 */
#include "config.h"

#include <stdlib.h>
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

static const char *const event_names[EVENT__MAX] = {
	"user.registered",
	"user.logged_in",
	"user.logged_out",
	"user.password_changed",
	"session.revoked",
	"token.reuse_detected",
	"user.deleted",
	"user.mfa_enabled",
	"user.mfa_disabled",
	"user.password_reset_requested",
	"user.password_reset",
	"user.email_verified",
	"user.email_changed",
};

const char *
audit_outbox_name(enum event_kind k)
{
	if ((int)k < 0 || k >= EVENT__MAX)
		return "none";
	return event_names[k];
}

/*
 * The published message of an outbox row: {"pattern": the event's name,
 * "data": data (an object, or NULL for {}) with extra merged in, "at" (the
 * time now, unless given or the event is user.registered) and "eventId":
 * evid}.  Owned JSON text, or NULL.  Pure: the time is a parameter.
 */
char *
audit_envelope(enum event_kind k, const json_t *data, json_t *extra,
    const char *evid, long long now)
{
	char		 at[40];
	char		*out = NULL;
	json_t		*d = NULL, *msg = NULL;

	if ((int)k < 0 || k >= EVENT__MAX ||
	    (data != NULL && !json_is_object(data)))
		return NULL;
	d = data != NULL ? json_deep_copy(data) : json_object();
	if (d == NULL)
		goto out;
	if (extra != NULL && json_object_update(d, extra) == -1)
		goto out;
	/* every event but user.registered (createdAt) carries "at" */
	if (k != EVENT_USER_REGISTERED && json_object_get(d, "at") == NULL) {
		rfc3339(at, now);
		if (json_object_set_new(d, "at", json_string(at)) == -1)
			goto out;
	}
	json_object_del(d, "id");
	if (json_object_set_new(d, "eventId", json_string(evid)) == -1)
		goto out;
	msg = json_object();
	if (json_object_set_new(msg, "pattern",
	    json_string(audit_outbox_name(k))) == -1 ||
	    json_object_set(msg, "data", d) == -1)
		goto out;
	out = json_dumps(msg, JSON_COMPACT);
out:
	json_decref(d);
	json_decref(msg);
	return out;
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

static json_t *
text_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

json_t *
audit_entry_json(const struct audit_entry *e)
{
	json_t	*o, *detail = NULL;

	if (e->detail != NULL)
		detail = json_loads(e->detail, JSON_DECODE_ANY, NULL);
	o = json_object();
	json_object_set_new(o, "id", json_integer(e->id));
	json_object_set_new(o, "occurredAt", json_string(e->occurred_at));
	json_object_set_new(o, "event", text_or_null(e->event));
	json_object_set_new(o, "userId", text_or_null(e->user_id));
	json_object_set_new(o, "email", text_or_null(e->email));
	json_object_set_new(o, "sessionId", text_or_null(e->session_id));
	json_object_set_new(o, "ip", text_or_null(e->ip));
	json_object_set_new(o, "userAgent", text_or_null(e->user_agent));
	json_object_set_new(o, "success", json_boolean(e->success));
	json_object_set_new(o, "detail", detail != NULL ? detail :
	    json_object());
	return o;
}

void
audit_entries_free(struct audit_entry *list, size_t n)
{
	size_t	 i;

	if (list == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(list[i].event);
		free(list[i].user_id);
		free(list[i].email);
		free(list[i].session_id);
		free(list[i].ip);
		free(list[i].user_agent);
		free(list[i].detail);
	}
	free(list);
}
