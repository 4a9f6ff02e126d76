/*
 * POST /auth/register: validate, rate-limit per IP, hash on the hash pool,
 * then one PostgreSQL transaction writes the user, its audit row and the
 * user.registered outbox row.
 */
#include "config.h"

#include <string.h>

#include "extern.h"

enum { REG_EMAIL, REG_PASSWORD, REG_FIRST, REG_LAST, REG__MAX };
static const struct field_spec register_fields[REG__MAX] = {
	[REG_EMAIL] = { "email", FIELD_EMAIL, FIELD_REQUIRED, NULL, NULL },
	[REG_PASSWORD] = { "password", FIELD_PASSWORD, FIELD_REQUIRED, NULL,
	    NULL },
	[REG_FIRST] = { "firstName", FIELD_NAME, 0, NULL, NULL },
	[REG_LAST] = { "lastName", FIELD_NAME, 0, NULL, NULL },
};

void
route_register(struct request *r)
{
	struct user	 u;
	struct audit	 a;
	struct field_value v[REG__MAX];
	json_t		*body, *data = NULL;
	char		 hash[128];
	const char	*email, *first, *last;
	long		 retry;
	int		 rc;

	memset(&u, 0, sizeof(u));
	if ((body = request_json(r)) == NULL)
		return;
	if (route_fields(r, body, register_fields, REG__MAX, 0, v) == -1)
		goto out;
	email = v[REG_EMAIL].email;
	first = v[REG_FIRST].s;
	last = v[REG_LAST].s;
	if ((rc = ratelimit_register(r->ip, &retry)) != 0) {
		if (rc == 1)
			resp_too_many(r, retry);
		else
			resp_unavailable(r);
		goto out;
	}
	if (password_hash(v[REG_PASSWORD].s, v[REG_PASSWORD].len,
	    hash) == -1) {
		resp_error(r, ERR_INTERNAL, NULL);
		goto out;
	}
	data = json_pack("{s:s, s:s?, s:s?}", "email", email,
	    "firstName", first, "lastName", last);
	audit_init(&a, r, AUDIT_REGISTER, NULL, NULL);
	a.email = email;
	a.outbox_event = event_enabled(EVENT_USER_REGISTERED);
	a.outbox_data = data;
	switch (db_user_create(email, hash, first, last, &a, &u)) {
	case DB_OK:
		resp_json(r, 201, user_json(&u));
		account_register_mail(r, u.email);
		break;
	case DB_CONFLICT:
		resp_error(r, ERR_EMAIL_TAKEN, NULL);
		break;
	default:
		resp_unavailable(r);
		break;
	}
out:
	json_decref(data);
	json_decref(body);
	user_free(&u);
}
