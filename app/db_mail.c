/*
 * db_mail.c: the account lifecycle's tables.  One-time tokens (request,
 * peek, apply), the mailer's request and mail queues (every write NOTIFYs
 * fa_mail in its transaction, which the mailer LISTENs to), and their
 * stats.  Unnamed statements (ST__MAX): these run a few times per
 * account, not per request of the hot paths.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "db_int.h"

#define ONCE_LIVE \
	"used_at IS NULL AND expires_at > now()"
#define ONCE_CONSUME \
	"WITH t AS (UPDATE auth.one_time_tokens SET used_at = now()" \
	" WHERE hash = $1 AND purpose = $2 AND " ONCE_LIVE \
	" RETURNING user_id, new_email)"
/* the audit/outbox CTEs of AUDIT_PARAMS at $3.., from the user row u */
#define ONCE_AUDIT \
	AUDIT_ROWS(3) \
	" SELECT u.id::text, " NOTIFY_OUTBOX " FROM u"

int
db_once_request(const struct once_req *q, char uid[FA_UUID_LEN + 1])
{
	static const char sql[] =
	    "WITH u AS (SELECT id, email FROM auth.users WHERE NOT disabled"
	    " AND CASE WHEN $1::uuid IS NOT NULL THEN id = $1::uuid"
	    " ELSE email = $2 END"
	    " AND NOT ($3::boolean AND email_verified)),"
	    " v AS (UPDATE auth.one_time_tokens ot SET used_at = now() FROM u"
	    " WHERE $5::text IS NOT NULL AND ot.user_id = u.id"
	    " AND ot.purpose = $4 AND ot.used_at IS NULL),"
	    " t AS (INSERT INTO auth.one_time_tokens (hash, purpose, user_id,"
	    " new_email, expires_at) SELECT $5, $4, u.id, $7,"
	    " now() + make_interval(secs => $6::bigint) FROM u"
	    " WHERE $5::text IS NOT NULL RETURNING expires_at),"
	    " m AS (INSERT INTO auth.mail_queue (kind, rcpt, user_id, message)"
	    " SELECT $8, coalesce($9, u.email), u.id, $10 FROM u"
	    " WHERE $10::text IS NOT NULL RETURNING 1),"
	    " a AS (" AUDIT_INSERT
	    " SELECT $11, (SELECT id FROM u), coalesce($2, (SELECT email"
	    " FROM u)), NULL, $12, $13, true, '{}' WHERE $11::text IS NOT NULL),"
	    " o AS (" OUTBOX_INSERT
	    " SELECT $14::uuid, $15, jsonb_build_object('pattern', $15::text,"
	    " 'data', jsonb_build_object('eventId', $14::text, 'userId', u.id,"
	    " 'email', u.email, 'expiresAt', to_char(t.expires_at AT TIME ZONE"
	    " 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))) FROM u, t"
	    " WHERE $15::text IS NOT NULL RETURNING 1),"
	    " r AS (DELETE FROM auth.mail_requests WHERE id = $16::bigint"
	    " RETURNING 1)"
	    " SELECT (SELECT id::text FROM u), (SELECT count(*) FROM m), "
	    NOTIFY_OUTBOX ", (SELECT count(*) FROM r), " NOTIFY_MAIL;
	PGresult	*res = NULL;
	const char	*v[16];
	unsigned char	 raw[16];
	char		 ttl[32], evid[FA_UUID_LEN + 1], *ip, *ua, rid[32];
	int		 rc;

	uid[0] = '\0';
	ip = text_clean_dup(q->ip, FA_IP_MAX);
	ua = text_clean_dup(q->user_agent, FA_UA_MAX);
	snprintf(ttl, sizeof(ttl), "%ld", q->ttl);
	uuid_random(raw);
	uuid_format(evid, raw);
	v[0] = db_is_uuid(q->user_id) ? q->user_id : NULL;
	v[1] = q->email;
	v[2] = q->unverified_only ? "t" : "f";
	v[3] = q->purpose;
	v[4] = q->hash;
	v[5] = ttl;
	v[6] = q->new_email;
	v[7] = q->kind;
	v[8] = q->rcpt;
	v[9] = q->message;
	v[10] = q->a_event;
	v[11] = ip;
	v[12] = ua;
	v[13] = evid;
	v[14] = q->ev != EVENT_NONE && q->hash != NULL ?
	    audit_outbox_name(q->ev) : NULL;
	snprintf(rid, sizeof(rid), "%lld", q->request_id);
	v[15] = rid;
	rc = db_run(ST__MAX, sql, 16, v, &res);
	if (rc == DB_OK && PQntuples(res) == 1) {
		if (!PQgetisnull(res, 0, 0))
			snprintf(uid, FA_UUID_LEN + 1, "%s",
			    PQgetvalue(res, 0, 0));
		if (strtoll(PQgetvalue(res, 0, 1), NULL, 10) > 0)
			db_count_mail_queued();
	}
	PQclear(res);
	free(ip);
	free(ua);
	return rc;
}

int
db_mail_request(const struct once_req *q)
{
	PGresult	*res = NULL;
	const char	*v[2];
	char		*req = NULL;
	json_t		*o;
	int		 rc = DB_ERROR;

	o = json_pack("{s:s, s:s?, s:b, s:s?, s:I, s:s, s:s?, s:s?, s:s?,"
	    " s:i}", "purpose", q->purpose, "email", q->email,
	    "unverifiedOnly", q->unverified_only, "hash", q->hash,
	    "ttl", (json_int_t)q->ttl, "kind", q->kind, "aEvent", q->a_event,
	    "ip", q->ip, "userAgent", q->user_agent, "event", (int)q->ev);
	if (o == NULL || (req = json_dumps(o, JSON_COMPACT)) == NULL)
		goto out;
	v[0] = req;
	v[1] = q->message;
	rc = db_run(ST__MAX, "WITH m AS (INSERT INTO auth.mail_requests"
	    " (request, message) VALUES ($1::jsonb, $2) RETURNING 1)"
	    " SELECT " NOTIFY_MAIL, 2, v, &res);
out:
	PQclear(res);
	free(req);
	json_decref(o);
	return rc;
}

/*
 * A claim: the due rows of table (cond), first by order, at most $1 of them,
 * leased for $2 seconds; it returns cols.
 */
#define MAIL_LEASE(table, cond, order, cols) \
	"UPDATE " table " SET next_attempt_at = now()" \
	" + make_interval(secs => $2::bigint) WHERE id IN (SELECT id" \
	" FROM " table " WHERE " cond " ORDER BY " order \
	" LIMIT $1::bigint FOR UPDATE SKIP LOCKED) RETURNING " cols

static int
mail_lease(const char *sql, long limit, long lease, PGresult **res)
{
	const char	*v[2];
	char		 lim[32], ls[32];

	snprintf(lim, sizeof(lim), "%ld", limit);
	snprintf(ls, sizeof(ls), "%ld", lease);
	v[0] = lim;
	v[1] = ls;
	return db_run(ST__MAX, sql, 2, v, res);
}

int
db_mail_request_claim(long limit, long lease, json_t **rows)
{
	static const char sql[] = MAIL_LEASE("auth.mail_requests",
	    "next_attempt_at <= now()", "id", "id, request::text, message");
	PGresult	*res = NULL;
	json_t		*arr, *req;
	int		 r, rc;

	*rows = NULL;
	if ((rc = mail_lease(sql, limit, lease, &res)) != DB_OK)
		goto out;
	arr = json_array();
	for (r = 0; r < PQntuples(res); r++) {
		req = json_loads(PQgetvalue(res, r, 1), 0, NULL);
		if (req == NULL)
			continue;
		json_array_append_new(arr, json_pack("{s:I, s:o, s:s?}",
		    "id", (json_int_t)strtoll(PQgetvalue(res, r, 0), NULL, 10),
		    "request", req, "message", PQgetisnull(res, r, 2) ? NULL :
		    PQgetvalue(res, r, 2)));
	}
	*rows = arr;
out:
	PQclear(res);
	return rc;
}

int
db_once_peek(const char *hash, const char *purposes, char uid[FA_UUID_LEN + 1],
    char purpose[16], char **new_email)
{
	static const char sql[] =
	    "SELECT user_id::text, purpose, new_email FROM auth.one_time_tokens"
	    " WHERE hash = $1 AND purpose = ANY(string_to_array($2, ','))"
	    " AND " ONCE_LIVE;
	PGresult	*res = NULL;
	const char	*v[2] = { hash, purposes };
	int		 rc;

	uid[0] = '\0';
	purpose[0] = '\0';
	*new_email = NULL;
	rc = db_run(ST__MAX, sql, 2, v, &res);
	if (rc == DB_OK) {
		if (PQntuples(res) != 1)
			rc = DB_NOTFOUND;
		else {
			snprintf(uid, FA_UUID_LEN + 1, "%s",
			    PQgetvalue(res, 0, 0));
			snprintf(purpose, 16, "%s", PQgetvalue(res, 0, 1));
			if (!PQgetisnull(res, 0, 2))
				*new_email = xstrdup(PQgetvalue(res, 0, 2));
		}
	}
	PQclear(res);
	return rc;
}

int
db_once_apply(const char *hash, const char *purpose, const char *pwhash,
    const struct audit *a)
{
	static const char reset[] = ONCE_CONSUME ","
	    " u AS (UPDATE auth.users SET password_hash = $14,"
	    " email_verified = true, updated_at = now() FROM t"
	    " WHERE id = t.user_id AND NOT disabled RETURNING id),"
	    ONCE_AUDIT;
	static const char verify[] = ONCE_CONSUME ","
	    " u AS (UPDATE auth.users SET email_verified = true,"
	    " updated_at = now() FROM t WHERE id = t.user_id"
	    " AND coalesce($14, '') = '' RETURNING id),"
	    ONCE_AUDIT;
	static const char change[] = ONCE_CONSUME ","
	    " u AS (UPDATE auth.users SET email = t.new_email,"
	    " email_verified = true, updated_at = now() FROM t"
	    " WHERE id = t.user_id AND t.new_email IS NOT NULL"
	    " AND coalesce($14, '') = '' RETURNING id),"
	    ONCE_AUDIT;
	struct audit_params	 ap;
	PGresult		*res = NULL;
	const char		*v[3 + AUDIT_NPARAMS], *sql;
	int			 rc;

	if (strcmp(purpose, "reset") == 0)
		sql = reset;
	else if (strcmp(purpose, "verify") == 0)
		sql = verify;
	else if (strcmp(purpose, "email_change") == 0)
		sql = change;
	else
		return DB_NOTFOUND;
	if (db_audit_params(&ap, a, NULL, NULL) == -1)
		return DB_ERROR;
	v[0] = hash;
	v[1] = purpose;
	memcpy(v + 2, ap.v, sizeof(ap.v));
	v[2 + AUDIT_NPARAMS] = pwhash;
	rc = db_run(ST__MAX, sql, 3 + AUDIT_NPARAMS, v, &res);
	if (rc == DB_OK) {
		if (PQntuples(res) != 1)
			rc = DB_NOTFOUND;
	}
	db_audit_params_free(&ap);
	PQclear(res);
	return rc;
}

int
db_mail_enqueue(const char *kind, const char *rcpt, const char *uid,
    const char *message)
{
	static const char sql[] =
	    "WITH m AS (INSERT INTO auth.mail_queue (kind, rcpt, user_id,"
	    " message) VALUES ($1, $2, $3::uuid, $4) RETURNING 1)"
	    " SELECT " NOTIFY_MAIL;
	PGresult	*res = NULL;
	const char	*v[4];
	int		 rc;

	v[0] = kind;
	v[1] = rcpt;
	v[2] = db_is_uuid(uid) ? uid : NULL;
	v[3] = message;
	rc = db_run(ST__MAX, sql, 4, v, &res);
	PQclear(res);
	if (rc == DB_OK)
		db_count_mail_queued();
	return rc;
}

int
db_mail_claim(long limit, long lease, json_t **rows)
{
	static const char sql[] = MAIL_LEASE("auth.mail_queue",
	    "state = 'pending' AND next_attempt_at <= now()",
	    "next_attempt_at, id", "id, kind, rcpt, message, attempts,"
	    " extract(epoch FROM now() - created_at)::float8");
	PGresult	*res = NULL;
	json_t		*arr;
	int		 r, rc;

	*rows = NULL;
	if ((rc = mail_lease(sql, limit, lease, &res)) != DB_OK)
		goto out;
	arr = json_array();
	for (r = 0; r < PQntuples(res); r++)
		json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:s,"
		    " s:I, s:f}",
		    "id", (json_int_t)strtoll(PQgetvalue(res, r, 0), NULL, 10),
		    "kind", PQgetvalue(res, r, 1),
		    "rcpt", PQgetvalue(res, r, 2),
		    "message", PQgetvalue(res, r, 3),
		    "attempts", (json_int_t)strtoll(PQgetvalue(res, r, 4),
		    NULL, 10),
		    "ageSeconds", strtod(PQgetvalue(res, r, 5), NULL)));
	*rows = arr;
out:
	PQclear(res);
	return rc;
}

int
db_mail_done(long long id)
{
	char		 ids[32];
	const char	*v[1] = { ids };

	snprintf(ids, sizeof(ids), "%lld", id);
	/* the message is of no use once sent: only the row's facts stay */
	return db_touch("UPDATE auth.mail_queue SET state = 'sent',"
	    " sent_at = now(), attempts = attempts + 1, message = '',"
	    " last_error = NULL WHERE id = $1::bigint", 1, v, DB_OK);
}

int
db_mail_retry(long long id, long delay, const char *error)
{
	char		 ids[32], d[32], err[DB_MAIL_ERROR_MAX];
	const char	*v[3] = { ids, d, err };

	snprintf(ids, sizeof(ids), "%lld", id);
	snprintf(d, sizeof(d), "%ld", delay);
	text_clean(err, sizeof(err), error, strlen(error));
	return db_touch("UPDATE auth.mail_queue SET attempts = attempts + 1,"
	    " next_attempt_at = now() + make_interval(secs => $2::bigint),"
	    " last_error = $3 WHERE id = $1::bigint", 3, v, DB_OK);
}

int
db_mail_fail(long long id, const char *kind, const char *error)
{
	char		 ids[32], err[DB_MAIL_ERROR_MAX];
	const char	*v[3] = { ids, err, kind };

	snprintf(ids, sizeof(ids), "%lld", id);
	text_clean(err, sizeof(err), error, strlen(error));
	return db_touch("WITH m AS (UPDATE auth.mail_queue SET"
	    " state = 'failed', attempts = attempts + 1, message = '',"
	    " last_error = $2 WHERE id = $1::bigint RETURNING id, user_id)"
	    " " AUDIT_INSERT " SELECT 'mail.dropped', m.user_id, NULL, NULL,"
	    " NULL, NULL, false, jsonb_build_object('mailId', m.id,"
	    " 'kind', $3::text, 'error', $2::text) FROM m", 3, v, DB_OK);
}

int
db_mail_stats(long long *pending, double *oldest)
{
	PGresult	*res = NULL;
	int		 rc;

	*pending = 0;
	*oldest = 0;
	rc = db_run(ST__MAX, "SELECT count(*), coalesce(extract(epoch FROM"
	    " clock_timestamp() - min(created_at)), 0)::float8"
	    " FROM auth.mail_queue WHERE state = 'pending'", 0, NULL, &res);
	if (rc == DB_OK && PQntuples(res) == 1) {
		*pending = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		*oldest = strtod(PQgetvalue(res, 0, 1), NULL);
	}
	PQclear(res);
	return rc;
}
