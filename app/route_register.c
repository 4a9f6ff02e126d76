/*
 * POST /auth/register: validate, rate-limit per IP, hash on the hash pool,
 * then one PostgreSQL transaction writes the user, its audit row and the
 * user.registered outbox row.
 */
#include "config.h"

#include <string.h>

#include "extern.h"

/* An optional string field: absent or null is fine; *out NULL then. */
static int
opt_name(json_t *body, const char *key, const char **out, json_t *fields)
{
	json_t		*v = json_object_get(body, key);
	const char	*why;

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		json_object_set_new(fields, key, json_string("must be a string"));
		return -1;
	}
	if (validate_name(json_string_value(v), json_string_length(v),
	    &why) == -1) {
		json_object_set_new(fields, key, json_string(why));
		return -1;
	}
	*out = json_string_length(v) > 0 ? json_string_value(v) : NULL;
	return 0;
}

/* Checks every field; on failure the 400 answer is set. */
static int
register_validate(struct request *r, json_t *body, char *email,
    const char **pw, size_t *pwlen, const char **first, const char **last)
{
	json_t		*fields = json_object(), *e, *p;
	const char	*why;

	e = json_object_get(body, "email");
	p = json_object_get(body, "password");
	if (!json_is_string(e))
		json_object_set_new(fields, "email", json_string(e == NULL ?
		    "is required" : "must be a string"));
	else if (email_canon(json_string_value(e), json_string_length(e),
	    email, &why) == -1)
		json_object_set_new(fields, "email", json_string(why));
	if (!json_is_string(p))
		json_object_set_new(fields, "password", json_string(p == NULL ?
		    "is required" : "must be a string"));
	else if (validate_password(json_string_value(p),
	    json_string_length(p), &why) == -1)
		json_object_set_new(fields, "password", json_string(why));
	opt_name(body, "firstName", first, fields);
	opt_name(body, "lastName", last, fields);
	if (json_object_size(fields) > 0) {
		resp_error_fields(r, fields);
		return -1;
	}
	json_decref(fields);
	*pw = json_string_value(p);
	*pwlen = json_string_length(p);
	return 0;
}

void
route_register(struct request *r)
{
	struct user	 u;
	struct audit	 a;
	json_t		*body, *data = NULL;
	char		 email[FA_EMAIL_MAX + 1], hash[128];
	const char	*pw, *first, *last;
	size_t		 pwlen;
	long		 retry;
	int		 rc;

	memset(&u, 0, sizeof(u));
	if ((body = request_json(r)) == NULL)
		return;
	if (register_validate(r, body, email, &pw, &pwlen, &first,
	    &last) == -1)
		goto out;
	if ((rc = ratelimit_register(r->ip, &retry)) != 0) {
		if (rc == 1)
			ratelimit_answer(r, retry);
		else
			resp_unavailable(r);
		goto out;
	}
	if (password_hash(pw, pwlen, hash) == -1) {
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
