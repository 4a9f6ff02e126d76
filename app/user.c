/*
 * The user record outside its backend: freeing its members (and its second
 * factor's) and the API.md user object.  Pure, so the fuzzers link it with
 * their storage stubs.
 */
#include "config.h"

#include <stdlib.h>

#include "extern.h"

void
user_free(struct user *u)
{
	if (u == NULL)
		return;
	free(u->password_hash);
	free(u->first_name);
	free(u->last_name);
	u->password_hash = u->first_name = u->last_name = NULL;
}

void
user_list_free(struct user *list, size_t n)
{
	size_t	 i;

	if (list == NULL)
		return;
	for (i = 0; i < n; i++)
		user_free(&list[i]);
	free(list);
}

/* The user's second factor as db_mfa_get reads it (db.h). */
void
db_mfa_free(struct db_mfa *m)
{
	if (m == NULL)
		return;
	free(m->secret);
	free(m->pending);
	m->secret = m->pending = NULL;
}

json_t *
user_json(const struct user *u)
{
	json_t	*o;

	o = json_object();
	json_object_set_new(o, "id", json_string(u->id));
	json_object_set_new(o, "email", json_string(u->email));
	json_object_set_new(o, "firstName",
	    u->first_name ? json_string(u->first_name) : json_null());
	json_object_set_new(o, "lastName",
	    u->last_name ? json_string(u->last_name) : json_null());
	json_object_set_new(o, "roles", roles_json(u->roles));
	json_object_set_new(o, "createdAt", json_string(u->created_at));
	json_object_set_new(o, "emailVerified",
	    json_boolean(u->email_verified));
	json_object_set_new(o, "mfaEnabled", json_boolean(u->mfa_enabled));
	return o;
}
