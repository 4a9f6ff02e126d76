/* The audit row's start, the name tables and the event envelope (audit.c);
 * the backend's audit parameters and rows (db_int.h, db_audit.c). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "extern.h"
#include "db_int.h"

struct config	*cfg;

#define UID	"0b6c7c5e-9f0e-4c4e-9a43-1f6f3f0c2a11"
#define SID	"6f1e2d3c-4b5a-4697-8877-665544332211"
#define EVID	"11111111-2222-4333-8444-555555555555"
#define T0	1767323045678LL	/* 2026-01-02T03:04:05.678Z */

static void
test_audit_init_from_request(void **state)
{
	struct request	 r;
	struct audit	 a;

	(void)state;
	memset(&r, 0, sizeof(r));
	snprintf(r.ip, sizeof(r.ip), "%s", "192.0.2.7");
	r.user_agent = "curl/8";
	memset(&a, 0x5a, sizeof(a));
	audit_init(&a, &r, AUDIT_LOGOUT, UID, SID);
	assert_int_equal(a.event, AUDIT_LOGOUT);
	assert_string_equal(a.user_id, UID);
	assert_string_equal(a.session_id, SID);
	assert_string_equal(a.ip, "192.0.2.7");
	assert_string_equal(a.user_agent, "curl/8");
	assert_int_equal(a.success, 1);
	assert_null(a.email);
	assert_null(a.detail);
	assert_int_equal(a.outbox_event, EVENT_NONE);
	assert_null(a.outbox_data);
}

static void
test_audit_init_without_request(void **state)
{
	struct audit	 a;

	(void)state;
	audit_init(&a, NULL, AUDIT_USER_DELETE, NULL, NULL);
	assert_int_equal(a.event, AUDIT_USER_DELETE);
	assert_null(a.user_id);
	assert_null(a.session_id);
	assert_null(a.ip);
	assert_null(a.user_agent);
	assert_int_equal(a.outbox_event, EVENT_NONE);
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(audit_event_name(AUDIT_REGISTER), "register");
	assert_string_equal(audit_event_name(AUDIT_MAIL_DROPPED),
	    "mail.dropped");
	assert_string_equal(audit_event_name(AUDIT__MAX), "unknown");
	assert_string_equal(audit_event_name((enum audit_event)-1), "unknown");
	assert_string_equal(audit_outbox_name(EVENT_USER_REGISTERED),
	    "user.registered");
	assert_string_equal(audit_outbox_name(EVENT_EMAIL_CHANGED),
	    "user.email_changed");
	assert_string_equal(audit_outbox_name(EVENT_NONE), "none");
	assert_string_equal(audit_outbox_name(EVENT__MAX), "none");
}

static void
test_envelope_bytes(void **state)
{
	json_t	*data, *extra;
	char	*s;

	(void)state;
	data = json_pack("{s:s, s:s}", "userId", UID, "id", "dropped");
	s = audit_envelope(EVENT_USER_LOGGED_OUT, data, NULL, EVID, T0);
	assert_non_null(s);
	assert_string_equal(s, "{\"pattern\":\"user.logged_out\",\"data\":"
	    "{\"userId\":\"" UID "\",\"at\":\"2026-01-02T03:04:05.678Z\","
	    "\"eventId\":\"" EVID "\"}}");
	free(s);
	/* registered: no "at"; extra merged in */
	extra = json_pack("{s:s}", "createdAt", "2026-01-02T03:04:05.678Z");
	s = audit_envelope(EVENT_USER_REGISTERED, NULL, extra, EVID, T0);
	assert_string_equal(s, "{\"pattern\":\"user.registered\",\"data\":"
	    "{\"createdAt\":\"2026-01-02T03:04:05.678Z\",\"eventId\":\""
	    EVID "\"}}");
	free(s);
	/* a given "at" stays; data itself is not changed */
	json_object_set_new(data, "at", json_string("then"));
	s = audit_envelope(EVENT_SESSION_REVOKED, data, NULL, EVID, T0);
	assert_non_null(strstr(s, "\"at\":\"then\""));
	assert_non_null(json_object_get(data, "id"));
	assert_null(json_object_get(data, "eventId"));
	free(s);
	json_decref(data);
	json_decref(extra);
}

static void
test_envelope_refuses(void **state)
{
	json_t	*arr = json_array();

	(void)state;
	assert_null(audit_envelope(EVENT_NONE, NULL, NULL, EVID, T0));
	assert_null(audit_envelope(EVENT__MAX, NULL, NULL, EVID, T0));
	assert_null(audit_envelope(EVENT_USER_DELETED, arr, NULL, EVID, T0));
	json_decref(arr);
}

static void
test_audit_entry_json(void **state)
{
	struct audit_entry	*e;
	json_t			*o;
	char			*txt;

	(void)state;
	e = xcalloc(2, sizeof(*e));
	e[0].id = 42;
	snprintf(e[0].occurred_at, sizeof(e[0].occurred_at), "%s",
	    "2026-01-02T03:04:05.678Z");
	e[0].event = xstrdup("login.success");
	e[0].user_id = xstrdup(UID);
	e[0].success = 1;
	e[0].detail = xstrdup("{\"reason\":\"x\"}");
	o = audit_entry_json(&e[0]);
	txt = json_dumps(o, JSON_COMPACT);
	assert_string_equal(txt, "{\"id\":42,\"occurredAt\":"
	    "\"2026-01-02T03:04:05.678Z\",\"event\":\"login.success\","
	    "\"userId\":\"" UID "\",\"email\":null,\"sessionId\":null,"
	    "\"ip\":null,\"userAgent\":null,\"success\":true,"
	    "\"detail\":{\"reason\":\"x\"}}");
	free(txt);
	json_decref(o);
	/* no detail, or one that does not parse: {} */
	o = audit_entry_json(&e[1]);
	assert_int_equal(json_object_size(json_object_get(o, "detail")), 0);
	assert_true(json_is_false(json_object_get(o, "success")));
	json_decref(o);
	e[1].detail = xstrdup("{not json");
	o = audit_entry_json(&e[1]);
	assert_true(json_is_object(json_object_get(o, "detail")));
	json_decref(o);
	audit_entries_free(e, 2);
	audit_entries_free(NULL, 0);
}

/* The statements' audit and outbox rows, as they were written out. */
static void
test_audit_rows_text(void **state)
{
	(void)state;
	assert_string_equal(AUDIT_ROWS(3),
	    " a AS (" AUDIT_INSERT
	    " SELECT $3, $4::uuid, $5, $6::uuid, $7, $8, $9::boolean,"
	    " coalesce($10::jsonb, '{}') FROM u WHERE $3::text IS NOT NULL),"
	    " o AS (" OUTBOX_INSERT
	    " SELECT $11::uuid, $12, $13::jsonb FROM u"
	    " WHERE $12::text IS NOT NULL RETURNING 1)");
	assert_string_equal(AUDIT_ROWS(7),
	    " a AS (" AUDIT_INSERT
	    " SELECT $7, $8::uuid, $9, $10::uuid, $11, $12, $13::boolean,"
	    " coalesce($14::jsonb, '{}') FROM u WHERE $7::text IS NOT NULL),"
	    " o AS (" OUTBOX_INSERT
	    " SELECT $15::uuid, $16, $17::jsonb FROM u"
	    " WHERE $16::text IS NOT NULL RETURNING 1)");
}

/* ST_USER_REFRESH: id, event, session, ip, user agent, success, detail. */
static void
test_refresh_params(void **state)
{
	static const char *const names[AUDIT_NPARAMS] = { "event", "uid",
	    "email", "sid", "ip", "ua", "ok", "detail", "evid", "ev", "pl" };
	struct audit_params	 ap;
	const char		*v[REFRESH_NPARAMS];
	size_t			 i;

	(void)state;
	memset(&ap, 0, sizeof(ap));
	for (i = 0; i < AUDIT_NPARAMS; i++)
		ap.v[i] = names[i];
	db_refresh_params(v, UID, &ap);
	assert_string_equal(v[0], UID);
	assert_string_equal(v[1], "event");
	assert_string_equal(v[2], "sid");
	assert_string_equal(v[3], "ip");
	assert_string_equal(v[4], "ua");
	assert_string_equal(v[5], "ok");
	assert_string_equal(v[6], "detail");
}

static void
test_db_num(void **state)
{
	char	 b[DB_NUM_MAX];

	(void)state;
	assert_string_equal(db_num(b, 0), "0");
	assert_string_equal(db_num(b, -42), "-42");
	assert_string_equal(db_num(b, -9223372036854775807LL - 1),
	    "-9223372036854775808");
	assert_ptr_equal(db_num(b, 1), b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_audit_init_from_request),
		cmocka_unit_test(test_audit_init_without_request),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_envelope_bytes),
		cmocka_unit_test(test_envelope_refuses),
		cmocka_unit_test(test_audit_entry_json),
		cmocka_unit_test(test_audit_rows_text),
		cmocka_unit_test(test_refresh_params),
		cmocka_unit_test(test_db_num),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
