/*
 * Admin routes (role admin): GET /auth/admin/audit and
 * PUT /auth/admin/users/{id}/roles.  A role change also cuts off the
 * user's access tokens issued before it, so old roles stop working.  A
 * malformed, too long or repeated query parameter is a 400, never ignored.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"

static int
admin_auth(struct request *r, struct claims *c)
{
	if (auth_bearer(r, c) == -1)
		return -1;
	if (!auth_has_role(c, "admin")) {
		resp_error(r, ERR_FORBIDDEN, NULL);
		return -1;
	}
	return 0;
}

static int
parse_number(const char *s, long long min, long long max, long long *out)
{
	char		*end;
	long long	 n;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

/* An event name filter: [a-z0-9._]+ (unknown names simply match nothing). */
static int
valid_event(const char *s)
{
	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		    *s == '.' || *s == '_'))
			return -1;
	return 0;
}

/*
 * Look up one filter or paging parameter: 1 present (decoded into v),
 * 0 absent.  Malformed, too long or repeated names the field in fields
 * (answered 400), so no filter is ever silently dropped.
 */
static int
audit_param(const struct request *r, const char *name, char *v, size_t vsz,
    json_t *fields, const char *why)
{
	switch (request_query_lookup(r, name, v, vsz)) {
	case QUERY_ABSENT:
		return 0;
	case QUERY_PRESENT:
		return 1;
	default:
		json_object_set_new(fields, name, json_string(why));
		return 0;
	}
}

#define WHY_USER	"must be one UUID"
#define WHY_EVENT	"must be one event name ([a-z0-9._]+)"
#define WHY_LIMIT	"must be one number from 1 to 500"
#define WHY_BEFORE	"must be one audit entry id"

void
route_admin_audit(struct request *r)
{
	struct claims		 c;
	struct audit_query	 q;
	char			 uid[FA_UUID_LEN + 1], ev[FA_AUDIT_EVENT_MAX + 1];
	char			 num[24];
	unsigned char		 b[16];
	json_t			*entries = NULL, *fields;
	long long		 n = 0;

	if (admin_auth(r, &c) == -1)
		return;
	memset(&q, 0, sizeof(q));
	q.limit = FA_AUDIT_LIMIT_DEF;
	fields = json_object();
	if (audit_param(r, "userId", uid, sizeof(uid), fields, WHY_USER)) {
		if (uuid_parse(b, uid, strlen(uid)) == -1)
			json_object_set_new(fields, "userId",
			    json_string(WHY_USER));
		q.user_id = uid;
	}
	if (audit_param(r, "event", ev, sizeof(ev), fields, WHY_EVENT)) {
		if (valid_event(ev) == -1)
			json_object_set_new(fields, "event",
			    json_string(WHY_EVENT));
		q.event = ev;
	}
	if (audit_param(r, "limit", num, sizeof(num), fields, WHY_LIMIT)) {
		if (parse_number(num, 1, FA_AUDIT_LIMIT_MAX, &n) == -1)
			json_object_set_new(fields, "limit",
			    json_string(WHY_LIMIT));
		q.limit = (long)n;
	}
	if (audit_param(r, "before", num, sizeof(num), fields, WHY_BEFORE)) {
		if (parse_number(num, 1, INT64_MAX, &n) == -1)
			json_object_set_new(fields, "before",
			    json_string(WHY_BEFORE));
		q.before = n;
	}
	if (json_object_size(fields) > 0) {
		resp_error_fields(r, fields);
		return;
	}
	json_decref(fields);
	if (db_audit_list(&q, &entries) != DB_OK) {
		resp_unavailable(r);
		return;
	}
	resp_json(r, 200, json_pack("{s:o}", "entries", entries));
	resp_header(r, "Cache-Control", "no-store");
}

/* {"roles": [...]}: each valid, no more than FA_ROLES_MAX, deduplicated. */
static int
roles_from_json(json_t *arr, char *out, size_t sz)
{
	json_t		*v;
	size_t		 i, n, len;
	const char	*s;
	char		 probe[FA_ROLE_MAX + 3];

	if (!json_is_array(arr) || json_array_size(arr) > FA_ROLES_MAX)
		return -1;
	out[0] = '\0';
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			return -1;
		s = json_string_value(v);
		len = json_string_length(v);
		if (validate_role(s, len) == -1)
			return -1;
		snprintf(probe, sizeof(probe), ",%s,", s);
		n = strlen(out);
		/* skip duplicates: look for ",role," in ",out," */
		{
			char	 wrapped[FA_ROLES_LEN + 2];

			snprintf(wrapped, sizeof(wrapped), ",%s,", out);
			if (strstr(wrapped, probe) != NULL)
				continue;
		}
		snprintf(out + n, sz - n, "%s%s", n ? "," : "", s);
	}
	return 0;
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
	if (roles_from_json(json_object_get(body, "roles"), roles,
	    sizeof(roles)) == -1) {
		resp_error_fields(r, json_pack("{s:s}", "roles", "must be an "
		    "array of at most 16 roles matching [a-z][a-z0-9_-]{0,31}"));
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
	    auth_roles_json(before.roles), "after", auth_roles_json(roles),
	    "by", c.sub);
	memset(&a, 0, sizeof(a));
	a.event = AUDIT_ROLE_CHANGE;
	a.user_id = before.id;
	a.email = before.email;
	a.ip = r->ip;
	a.user_agent = r->user_agent;
	a.success = 1;
	a.detail = detail;
	a.outbox_event = EVENT_NONE;
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
