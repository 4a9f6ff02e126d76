/*
 * db_audit.c: audit rows.  The eleven parameters every audited write
 * takes (with the outbox row's, built by audit_envelope), the plain audit
 * write, the operator's list and the retention prune.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "db_int.h"

void
db_audit_params_free(struct audit_params *ap)
{
	free(ap->email);
	free(ap->ip);
	free(ap->ua);
	free(ap->detail);
	free(ap->payload);
	memset(ap, 0, sizeof(*ap));
}

void
db_refresh_params(const char *v[REFRESH_NPARAMS], const char *id,
    const struct audit_params *ap)
{
	v[0] = id;
	v[1] = ap->v[0];
	v[2] = ap->v[3];
	v[3] = ap->v[4];
	v[4] = ap->v[5];
	v[5] = ap->v[6];
	v[6] = ap->v[7];
}

/*
 * Fill the audit parameters from a (NULL: no audit, no event).  uid, when
 * given, overrides a->user_id.  extra is merged into the outbox data (used
 * by register for the fields only the database call knows).
 */
int
db_audit_params(struct audit_params *ap, const struct audit *a, const char *uid,
    json_t *extra)
{
	unsigned char	 raw[16];
	int		 rc = -1;

	memset(ap, 0, sizeof(*ap));
	if (a == NULL)
		return 0;
	if ((int)a->event < 0 || a->event >= AUDIT__MAX) {
		log_error(NULL, "db: audit event %d out of range", a->event);
		return -1;
	}
	if (uid == NULL)
		uid = a->user_id;
	ap->email = text_clean_dup(a->email, FA_EMAIL_MAX);
	ap->ip = text_clean_dup(a->ip, FA_IP_MAX);
	ap->ua = text_clean_dup(a->user_agent, FA_UA_MAX);
	if (a->detail != NULL &&
	    (ap->detail = json_dumps(a->detail, JSON_COMPACT)) == NULL)
		goto out;
	ap->v[0] = audit_event_name(a->event);
	ap->v[1] = db_is_uuid(uid) ? uid : NULL;
	ap->v[2] = ap->email;
	ap->v[3] = db_is_uuid(a->session_id) ? a->session_id : NULL;
	ap->v[4] = ap->ip;
	ap->v[5] = ap->ua;
	ap->v[6] = a->success ? "t" : "f";
	ap->v[7] = ap->detail;
	if (a->outbox_event != EVENT_NONE) {
		if ((int)a->outbox_event < 0 || a->outbox_event >= EVENT__MAX) {
			log_error(NULL, "db: outbox event %d out of range",
			    a->outbox_event);
			goto out;
		}
		if (a->outbox_data != NULL && !json_is_object(a->outbox_data)) {
			log_error(NULL, "db: outbox data is not an object");
			goto out;
		}
		uuid_random(raw);
		uuid_format(ap->evid, raw);
		if ((ap->payload = audit_envelope(a->outbox_event,
		    a->outbox_data, extra, ap->evid, now_ms())) == NULL)
			goto out;
		ap->v[8] = ap->evid;
		ap->v[9] = audit_outbox_name(a->outbox_event);
		ap->v[10] = ap->payload;
		ap->outbox = 1;
	}
	rc = 0;
out:
	if (rc == -1) {
		log_error(NULL, "db: cannot build the audit/outbox row");
		db_audit_params_free(ap);
	}
	return rc;
}

int
db_audit(const struct audit *a)
{
	struct audit_params	 ap;
	PGresult		*res = NULL;
	int			 rc;

	if (a == NULL)
		return DB_OK;
	if (db_audit_params(&ap, a, NULL, NULL) == -1)
		return DB_ERROR;
	rc = db_run(ST_AUDIT, NULL, AUDIT_NPARAMS, ap.v, &res);
	db_audit_params_free(&ap);
	PQclear(res);
	return rc;
}

/* A copy of the text at row r, column c, or NULL for SQL NULL. */
static char *
text_or_null(PGresult *res, int r, int c)
{
	if (PQgetisnull(res, r, c))
		return NULL;
	return xstrdup(PQgetvalue(res, r, c));
}

/*
 * Newest first; the WHERE clause only names the filters given, so each
 * shape gets a plan that uses its index.  A malformed user id matches
 * nothing.
 */
int
db_audit_list(const struct audit_query *q, struct audit_entry **entries,
    size_t *count)
{
	PGresult		*res = NULL;
	struct audit_entry	*e;
	const char		*v[4];
	char			 sql[768], before[32], limit[32];
	size_t			 len;
	int			 n = 0, r, rc;

	*entries = NULL;
	*count = 0;
	if (q->user_id != NULL && !db_is_uuid(q->user_id))
		return DB_OK;
	len = (size_t)snprintf(sql, sizeof(sql), "SELECT id,"
	    " (extract(epoch FROM occurred_at) * 1000)::bigint, event,"
	    " user_id::text, email, session_id::text, ip, user_agent,"
	    " success, detail::text FROM auth.audit_log WHERE true");
	if (q->user_id != NULL) {
		v[n++] = q->user_id;
		len += (size_t)snprintf(sql + len, sizeof(sql) - len,
		    " AND user_id = $%d::uuid", n);
	}
	if (q->event != NULL) {
		v[n++] = q->event;
		len += (size_t)snprintf(sql + len, sizeof(sql) - len,
		    " AND event = $%d", n);
	}
	if (q->before > 0) {
		snprintf(before, sizeof(before), "%lld", q->before);
		v[n++] = before;
		len += (size_t)snprintf(sql + len, sizeof(sql) - len,
		    " AND id < $%d::bigint", n);
	}
	snprintf(limit, sizeof(limit), "%ld", q->limit <= 0 ?
	    FA_AUDIT_LIMIT_DEF : q->limit > FA_AUDIT_LIMIT_MAX ?
	    FA_AUDIT_LIMIT_MAX : q->limit);
	v[n++] = limit;
	snprintf(sql + len, sizeof(sql) - len,
	    " ORDER BY id DESC LIMIT $%d::bigint", n);

	rc = db_run(ST__MAX, sql, n, v, &res);
	if (rc != DB_OK || PQntuples(res) == 0)
		goto out;
	*entries = xcalloc((size_t)PQntuples(res), sizeof(**entries));
	for (r = 0; r < PQntuples(res); r++) {
		e = &(*entries)[r];
		e->id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
		rfc3339(e->occurred_at, strtoll(PQgetvalue(res, r, 1), NULL,
		    10));
		e->event = text_or_null(res, r, 2);
		e->user_id = text_or_null(res, r, 3);
		e->email = text_or_null(res, r, 4);
		e->session_id = text_or_null(res, r, 5);
		e->ip = text_or_null(res, r, 6);
		e->user_agent = text_or_null(res, r, 7);
		e->success = PQgetvalue(res, r, 8)[0] == 't';
		e->detail = text_or_null(res, r, 9);
	}
	*count = (size_t)PQntuples(res);
out:
	PQclear(res);
	return rc;
}

int
db_audit_prune(long days, long long *count)
{
	/* the trigger lets a DELETE through in this statement only */
	static const char sql[] =
	    "WITH s AS (SELECT set_config('fcgi_auth.audit_prune', 'on', true)"
	    " AS ok), d AS (DELETE FROM auth.audit_log WHERE occurred_at <"
	    " now() - make_interval(days => $1::int)"
	    " AND (SELECT ok FROM s) = 'on' RETURNING 1)"
	    " SELECT count(*) FROM d";
	PGresult	*res = NULL;
	const char	*v[1];
	char		 d[DB_NUM_MAX];
	int		 rc;

	*count = 0;
	v[0] = db_num(d, days);
	rc = db_run(ST__MAX, sql, 1, v, &res);
	if (rc == DB_OK)
		(void)db_count(res, count);
	PQclear(res);
	return rc;
}
