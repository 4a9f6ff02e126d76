/*
 * db_user.c: the users table.  Create, look up, the refresh path's read
 * with its audit row, password, roles and disabled flag, import, list and
 * delete; each write with its audit and outbox rows in one statement.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "db_int.h"

static int	 user_by(enum stmt, const char *, struct user *);

static int
copy_str(char *dst, size_t dstsz, const char *src)
{
	size_t	 len = strlen(src);

	if (len >= dstsz)
		return -1;
	memcpy(dst, src, len + 1);
	return 0;
}

/* Fill out from row r of a USER_COLS result. */
int
db_user_row(PGresult *res, int r, struct user *out)
{
	memset(out, 0, sizeof(*out));
	if (PQnfields(res) < USER_NCOLS ||
	    copy_str(out->id, sizeof(out->id), PQgetvalue(res, r, 0)) == -1 ||
	    copy_str(out->email, sizeof(out->email),
	    PQgetvalue(res, r, 1)) == -1 ||
	    copy_str(out->roles, sizeof(out->roles),
	    PQgetvalue(res, r, 5)) == -1) {
		log_error(NULL, "db: user row does not fit");
		return -1;
	}
	out->password_hash = xstrdup(PQgetvalue(res, r, 2));
	if (!PQgetisnull(res, r, 3))
		out->first_name = xstrdup(PQgetvalue(res, r, 3));
	if (!PQgetisnull(res, r, 4))
		out->last_name = xstrdup(PQgetvalue(res, r, 4));
	rfc3339(out->created_at, strtoll(PQgetvalue(res, r, 6), NULL, 10));
	out->disabled = PQgetvalue(res, r, 7)[0] == 't';
	out->email_verified = PQgetvalue(res, r, 8)[0] == 't';
	out->mfa_enabled = PQgetvalue(res, r, 9)[0] == 't';
	return 0;
}

/*
 * Insert a user, its audit row and its outbox row in one statement.  The
 * names are stored cleaned (text.c), so the answer and the event show what
 * was stored.  The id and created_at are made here so the event can carry
 * them: the audit row's user id and the outbox data's userId, email,
 * firstName, lastName and createdAt are filled in from the new row.
 */
int
db_user_create(const char *email, const char *hash, const char *first,
    const char *last, const struct audit *a, struct user *out)
{
	struct audit_params	 ap;
	PGresult		*res = NULL;
	unsigned char		 raw[16];
	char			 id[FA_UUID_LEN + 1], ms[32], created[40];
	const char		*v[6 + AUDIT_NPARAMS];
	char			*f, *l;
	json_t			*extra = NULL;
	long long		 now;
	int			 rc = DB_ERROR, ambiguous = 0;

	memset(out, 0, sizeof(*out));
	memset(&ap, 0, sizeof(ap));
	first = f = text_clean_dup(first, FA_NAME_BYTES);
	last = l = text_clean_dup(last, FA_NAME_BYTES);
	uuid_random(raw);
	uuid_format(id, raw);
	now = now_ms();
	snprintf(ms, sizeof(ms), "%lld", now);
	rfc3339(created, now);
	extra = json_pack("{s:s, s:s, s:s?, s:s?, s:s}", "userId", id,
	    "email", email, "firstName", first, "lastName", last,
	    "createdAt", created);
	if (extra == NULL || db_audit_params(&ap, a, id, extra) == -1)
		goto out;
	v[0] = id;
	v[1] = email;
	v[2] = hash;
	v[3] = first;
	v[4] = last;
	v[5] = ms;
	memcpy(v + 6, ap.v, sizeof(ap.v));
	rc = db_run_retry(ST_USER_CREATE, NULL, 6 + AUDIT_NPARAMS, v, &res, 1,
	    &ambiguous);
	if (rc == DB_CONFLICT && ambiguous) {
		/*
		 * The first run may have committed before its connection
		 * died: then the retry hit our own row.  The id is ours, so
		 * finding it with this email means the user is registered
		 * once, by this call.
		 */
		if (user_by(ST_USER_BY_ID, id, out) == DB_OK &&
		    strcmp(out->email, email) == 0) {
			log_info(NULL, "postgresql: user create committed "
			    "before the connection was lost");
			rc = DB_OK;
			goto out;
		}
		user_free(out);
		memset(out, 0, sizeof(*out));
		rc = DB_CONFLICT;
	}
	if (rc != DB_OK)
		goto out;
	if (PQntuples(res) != 1 || db_user_row(res, 0, out) == -1) {
		rc = DB_ERROR;
		goto out;
	}
out:
	json_decref(extra);
	db_audit_params_free(&ap);
	PQclear(res);
	free(f);
	free(l);
	return rc;
}

/* Run st, whose answer is one user row or none (DB_NOTFOUND). */
static int
user_stmt(enum stmt st, int n, const char *const *v, struct user *out)
{
	PGresult	*res = NULL;
	int		 rc;

	memset(out, 0, sizeof(*out));
	rc = db_run(st, NULL, n, v, &res);
	if (rc == DB_OK) {
		if (PQntuples(res) == 0)
			rc = DB_NOTFOUND;
		else if (db_user_row(res, 0, out) == -1)
			rc = DB_ERROR;
	}
	PQclear(res);
	return rc;
}

static int
user_by(enum stmt st, const char *key, struct user *out)
{
	return user_stmt(st, 1, &key, out);
}

int
db_user_by_email(const char *email, struct user *out)
{
	if (email == NULL || *email == '\0') {
		memset(out, 0, sizeof(*out));
		return DB_NOTFOUND;
	}
	return user_by(ST_USER_BY_EMAIL, email, out);
}

int
db_user_by_id(const char *id, struct user *out)
{
	if (!db_is_uuid(id)) {
		memset(out, 0, sizeof(*out));
		return DB_NOTFOUND;
	}
	return user_by(ST_USER_BY_ID, id, out);
}

/*
 * The user by id and, in the same statement, the audit row a (which must
 * carry no outbox event) unless the user is disabled: one round trip for
 * the refresh path.
 */
int
db_user_refresh(const char *id, const struct audit *a, struct user *out)
{
	struct audit_params	 ap;
	const char		*v[REFRESH_NPARAMS];
	int			 rc;

	memset(out, 0, sizeof(*out));
	if (!db_is_uuid(id))
		return DB_NOTFOUND;
	if (a == NULL || a->outbox_event != EVENT_NONE) {
		log_error(NULL, "db: user_refresh takes an audit row, no event");
		return DB_ERROR;
	}
	if (db_audit_params(&ap, a, id, NULL) == -1)
		return DB_ERROR;
	db_refresh_params(v, id, &ap);
	rc = user_stmt(ST_USER_REFRESH, REFRESH_NPARAMS, v, out);
	db_audit_params_free(&ap);
	return rc;
}

int
db_user_set_password(const char *id, const char *hash, const struct audit *a)
{
	struct audit_params	 ap;
	PGresult		*res = NULL;
	const char		*v[2 + AUDIT_NPARAMS];
	int			 rc = DB_ERROR;

	if (!db_is_uuid(id))
		return DB_NOTFOUND;
	if (db_audit_params(&ap, a, NULL, NULL) == -1)
		return DB_ERROR;
	v[0] = id;
	v[1] = hash;
	memcpy(v + 2, ap.v, sizeof(ap.v));
	rc = db_run(ST_USER_SET_PASSWORD, NULL, 2 + AUDIT_NPARAMS, v, &res);
	if (rc != DB_OK)
		goto out;
	if (PQntuples(res) == 0)
		rc = DB_NOTFOUND;
out:
	db_audit_params_free(&ap);
	PQclear(res);
	return rc;
}

int
db_user_set_roles(const char *id, const char *roles_csv, const struct audit *a,
    struct user *out)
{
	struct audit_params	 ap;
	const char		*v[2 + AUDIT_NPARAMS];
	int			 rc;

	memset(out, 0, sizeof(*out));
	if (!db_is_uuid(id))
		return DB_NOTFOUND;
	if (db_audit_params(&ap, a, NULL, NULL) == -1)
		return DB_ERROR;
	v[0] = id;
	v[1] = roles_csv != NULL ? roles_csv : "";
	memcpy(v + 2, ap.v, sizeof(ap.v));
	rc = user_stmt(ST_USER_SET_ROLES, 2 + AUDIT_NPARAMS, v, out);
	db_audit_params_free(&ap);
	return rc;
}

int
db_user_import(json_t *users, const char *by, int dry_run, json_t **clashes)
{
	PGresult	*res = NULL;
	const char	*v[3];
	char		*rows;
	int		 r, rc;

	*clashes = NULL;
	if ((rows = json_dumps(users, JSON_COMPACT)) == NULL)
		return DB_ERROR;
	v[0] = rows;
	rc = db_run(ST_USER_IMPORT_CHECK, NULL, 1, v, &res);
	if (rc != DB_OK)
		goto out;
	if (PQntuples(res) > 0) {
		*clashes = json_array();
		for (r = 0; r < PQntuples(res); r++)
			json_array_append_new(*clashes, json_pack("{s:I, s:s}",
			    "line", (json_int_t)strtoll(PQgetvalue(res, r, 0),
			    NULL, 10), "field", PQgetvalue(res, r, 1)));
		rc = DB_CONFLICT;
		goto out;
	}
	if (dry_run)
		goto out;
	PQclear(res);
	v[1] = audit_event_name(AUDIT_USER_IMPORT);
	v[2] = by;
	rc = db_run(ST_USER_IMPORT, NULL, 3, v, &res);
out:
	PQclear(res);
	free(rows);
	return rc;
}

int
db_user_delete(const char *id, const struct audit *a)
{
	struct audit_params	 ap;
	PGresult		*res = NULL;
	const char		*v[1 + AUDIT_NPARAMS];
	int			 rc = DB_ERROR;

	if (!db_is_uuid(id))
		return DB_NOTFOUND;
	if (db_audit_params(&ap, a, id, NULL) == -1)
		return DB_ERROR;
	v[0] = id;
	memcpy(v + 1, ap.v, sizeof(ap.v));
	rc = db_run(ST_USER_DELETE, NULL, 1 + AUDIT_NPARAMS, v, &res);
	if (rc == DB_OK && PQntuples(res) != 1)
		rc = DB_NOTFOUND;
	db_audit_params_free(&ap);
	PQclear(res);
	return rc;
}

/* Operator queries (the CLI). */

int
db_user_list(long limit, long offset, struct user **users, size_t *count)
{
	PGresult	*res = NULL;
	struct user	*list = NULL;
	const char	*v[2];
	char		 lim[32], off[32];
	int		 r, rc;

	*users = NULL;
	*count = 0;
	snprintf(lim, sizeof(lim), "%ld", limit <= 0 ? 1 :
	    limit > DB_USER_LIST_MAX ? DB_USER_LIST_MAX : limit);
	snprintf(off, sizeof(off), "%ld", offset < 0 ? 0 : offset);
	v[0] = lim;
	v[1] = off;
	rc = db_run(ST_USER_LIST, NULL, 2, v, &res);
	if (rc != DB_OK || PQntuples(res) == 0)
		goto out;
	list = xcalloc((size_t)PQntuples(res), sizeof(*list));
	for (r = 0; r < PQntuples(res); r++)
		if (db_user_row(res, r, &list[r]) == -1) {
			user_list_free(list, (size_t)r);
			rc = DB_ERROR;
			goto out;
		}
	*users = list;
	*count = (size_t)PQntuples(res);
out:
	PQclear(res);
	return rc;
}

int
db_user_set_disabled(const char *id, int disabled, const char *by,
    struct user *out)
{
	const char	*v[3];

	memset(out, 0, sizeof(*out));
	if (!db_is_uuid(id))
		return DB_NOTFOUND;
	v[0] = id;
	v[1] = disabled ? "t" : "f";
	v[2] = by != NULL ? by : "unknown";
	return user_stmt(ST_USER_SET_DISABLED, 3, v, out);
}
