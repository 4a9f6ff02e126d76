/*
 * Admin routes (role admin): GET /auth/admin/audit and
 * PUT /auth/admin/users/{id}/roles.  A role change also cuts off the
 * user's access tokens issued before it, so old roles stop working.  A
 * malformed, too long or repeated query parameter is a 400, never ignored.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "extern.h"

static int
admin_auth(struct request *r, struct claims *c)
{
	if (route_bearer(r, c) == -1)
		return -1;
	if (!auth_has_role(c, "admin")) {
		resp_error(r, ERR_FORBIDDEN, NULL);
		return -1;
	}
	return 0;
}

enum { AQ_USER, AQ_EVENT, AQ_LIMIT, AQ_BEFORE, AQ__MAX };
static const struct param_spec audit_params[AQ__MAX] = {
	[AQ_USER] = { "userId", PARAM_UUID, FA_UUID_LEN, 0, 0,
	    "must be one UUID" },
	/* unknown names simply match nothing */
	[AQ_EVENT] = { "event", PARAM_NAME, FA_AUDIT_EVENT_MAX, 0, 0,
	    "must be one event name ([a-z0-9._]+)" },
	[AQ_LIMIT] = { "limit", PARAM_NUMBER, PARAM_NUMBER_MAX, 1,
	    FA_AUDIT_LIMIT_MAX, "must be one number from 1 to "
	    FA_STR(FA_AUDIT_LIMIT_MAX) },
	[AQ_BEFORE] = { "before", PARAM_NUMBER, PARAM_NUMBER_MAX, 1,
	    INT64_MAX, "must be one audit entry id" },
};

void
route_admin_audit(struct request *r)
{
	struct claims		 c;
	struct audit_query	 q;
	struct param_value	 v[AQ__MAX];
	json_t			*entries = NULL, *fields;
	struct audit_entry	*list;
	size_t			 i, count;

	if (admin_auth(r, &c) == -1)
		return;
	memset(&q, 0, sizeof(q));
	q.limit = FA_AUDIT_LIMIT_DEF;
	fields = json_object();
	if (validate_params(r, audit_params, AQ__MAX, v, fields) == -1) {
		resp_error_fields(r, fields);
		return;
	}
	if (v[AQ_USER].present)
		q.user_id = v[AQ_USER].s;
	if (v[AQ_EVENT].present)
		q.event = v[AQ_EVENT].s;
	if (v[AQ_LIMIT].present)
		q.limit = (long)v[AQ_LIMIT].n;
	if (v[AQ_BEFORE].present)
		q.before = v[AQ_BEFORE].n;
	json_decref(fields);
	if (db_audit_list(&q, &list, &count) != DB_OK) {
		resp_unavailable(r);
		return;
	}
	entries = json_array();
	for (i = 0; i < count; i++)
		json_array_append_new(entries, audit_entry_json(&list[i]));
	audit_entries_free(list, count);
	resp_json(r, 200, json_pack("{s:o}", "entries", entries));
	resp_header(r, "Cache-Control", "no-store");
}

void
route_admin_roles(struct request *r)
{
	struct claims	 c;
	struct user	 before, after;
	struct audit	 a;
	unsigned char	 b[16];
	const char	*id = request_param(r);
	char		 roles[FA_ROLES_LEN];
	json_t		*body = NULL, *detail = NULL;
	long long	 cutoff;
	int		 rc;

	memset(&before, 0, sizeof(before));
	memset(&after, 0, sizeof(after));
	if (admin_auth(r, &c) == -1)
		return;
	if (id == NULL || uuid_parse(b, id, strlen(id)) == -1) {
		resp_error(r, ERR_NOT_FOUND, NULL);
		return;
	}
	if ((body = request_json(r)) == NULL)
		return;
	if (roles_from_json(json_object_get(body, "roles"), ROLES_DEDUP,
	    roles, sizeof(roles)) == -1) {
		resp_error_fields(r, json_pack("{s:s}", "roles", "must be an "
		    "array of at most " FA_STR(FA_ROLES_MAX) " roles matching "
		    FA_ROLE_PATTERN));
		goto out;
	}
	if ((rc = db_user_by_id(id, &before)) != DB_OK) {
		if (rc == DB_NOTFOUND)
			resp_error(r, ERR_NOT_FOUND, NULL);
		else
			resp_unavailable(r);
		goto out;
	}
	detail = json_pack("{s:o, s:o, s:s}", "before",
	    roles_json(before.roles), "after", roles_json(roles),
	    "by", c.sub);
	audit_init(&a, r, AUDIT_ROLE_CHANGE, before.id, NULL);
	a.email = before.email;
	a.detail = detail;
	/*
	 * Cut off, commit, cut off again.  The first cut-off fails before
	 * anything changes; after it no token from before the request lives,
	 * whatever fails next (a retry of the PUT finishes the job).  The
	 * second one also cuts a token a login minted with the old roles
	 * while the commit ran.
	 */
	if (store_user_cutoff(before.id, cfg->access_ttl, &cutoff) == -1) {
		resp_unavailable(r);
		goto out;
	}
	rc = db_user_set_roles(before.id, roles, &a, &after);
	if (rc == DB_NOTFOUND) {
		resp_error(r, ERR_NOT_FOUND, NULL);
		goto out;
	}
	if (rc != DB_OK || store_user_cutoff(before.id, cfg->access_ttl,
	    &cutoff) == -1) {
		resp_unavailable(r);
		goto out;
	}
	resp_json(r, 200, user_json(&after));
out:
	json_decref(detail);
	json_decref(body);
	user_free(&before);
	user_free(&after);
}
