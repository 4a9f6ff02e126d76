/*
 * db_outbox.c: the outbox.  The relay's batch (one connection, one
 * transaction, rows claimed FOR UPDATE SKIP LOCKED), the prune, and the
 * operator's lag, status and replay.  Writers put rows in with their change
 * (db_user.c, db_audit.c, ...); the NOTIFY on fa_outbox wakes the relays.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "db_int.h"

/* One pooled connection and one open transaction. */
struct db_batch {
	struct db_conn	*dc;
	int		 failed;
};

static int
batch_exec(struct db_batch *b, enum stmt st, const char *sql, int n,
    const char *const *v, PGresult **res)
{
	long long	 deadline = mono_ms() + db_timeout_ms();
	int		 rc;

	*res = NULL;
	if (b->failed || b->dc->pg == NULL)
		return DB_ERROR;
	rc = db_exec(b->dc, deadline, st, sql, n, v, res);
	if (rc != DB_OK)
		b->failed = 1;
	return rc;
}

int
db_outbox_begin(long limit, struct db_batch **batch, json_t **rows)
{
	struct db_batch	*b;
	PGresult	*res = NULL;
	const char	*v[1];
	char		 lim[32];
	json_t		*arr = NULL, *o;
	int		 r, rc = DB_ERROR;

	*batch = NULL;
	*rows = NULL;
	b = xcalloc(1, sizeof(*b));
	if ((b->dc = db_pool_get(mono_ms() + db_timeout_ms())) == NULL) {
		free(b);
		return DB_ERROR;
	}
	if (batch_exec(b, ST__MAX, "BEGIN", 0, NULL, &res) != DB_OK)
		goto out;
	PQclear(res);
	snprintf(lim, sizeof(lim), "%ld", limit <= 0 ? 1 :
	    limit > DB_OUTBOX_BATCH_MAX ? DB_OUTBOX_BATCH_MAX : limit);
	v[0] = lim;
	if (batch_exec(b, ST_OUTBOX_CLAIM, NULL, 1, v, &res) != DB_OK)
		goto out;
	if (PQntuples(res) == 0) {
		rc = DB_NOTFOUND;
		goto out;
	}
	arr = json_array();
	for (r = 0; r < PQntuples(res); r++) {
		o = json_object();
		json_object_set_new(o, "id",
		    json_integer(strtoll(PQgetvalue(res, r, 0), NULL, 10)));
		json_object_set_new(o, "event",
		    json_string(PQgetvalue(res, r, 1)));
		json_object_set_new(o, "message",
		    json_string(PQgetvalue(res, r, 2)));
		json_object_set_new(o, "attempts",
		    json_integer(strtoll(PQgetvalue(res, r, 3), NULL, 10)));
		json_array_append_new(arr, o);
	}
	*rows = arr;
	*batch = b;
	b = NULL;
	rc = DB_OK;
out:
	PQclear(res);
	if (b != NULL)
		db_outbox_end(b, 0);
	return rc;
}

static int
batch_row(struct db_batch *b, enum stmt st, long long id)
{
	PGresult	*res = NULL;
	const char	*v[1];
	char		 num[DB_NUM_MAX];
	int		 rc;

	v[0] = db_num(num, id);
	rc = batch_exec(b, st, NULL, 1, v, &res);
	PQclear(res);
	return rc;
}

int
db_outbox_done(struct db_batch *b, long long id)
{
	return batch_row(b, ST_OUTBOX_DONE, id);
}

int
db_outbox_retry(struct db_batch *b, long long id)
{
	return batch_row(b, ST_OUTBOX_RETRY, id);
}

int
db_outbox_end(struct db_batch *b, int commit)
{
	PGresult	*res = NULL;
	int		 rolled, rc = DB_ERROR;

	if (b == NULL)
		return DB_OK;
	if (b->dc->pg != NULL && PQstatus(b->dc->pg) == CONNECTION_OK &&
	    PQtransactionStatus(b->dc->pg) != PQTRANS_IDLE) {
		rolled = !commit || b->failed;
		b->failed = 0;	/* a rollback after a failure is fine */
		rc = batch_exec(b, ST__MAX, rolled ? "ROLLBACK" : "COMMIT",
		    0, NULL, &res);
		PQclear(res);
		if (commit && rolled)
			rc = DB_ERROR;	/* asked to commit, could not */
	}
	db_pool_put(b->dc);
	free(b);
	return rc;
}

int
db_outbox_prune(long retention)
{
	PGresult	*res = NULL;
	const char	*v[1];
	char		 num[32];
	int		 rc;

	snprintf(num, sizeof(num), "%ld", retention < 0 ? 0 : retention);
	v[0] = num;
	rc = db_run(ST_OUTBOX_PRUNE, NULL, 1, v, &res);
	PQclear(res);
	return rc;
}

int
db_outbox_lag(long long *pending, double *lag)
{
	PGresult	*res = NULL;
	int		 rc;

	*pending = 0;
	*lag = 0;
	rc = db_run(ST_OUTBOX_LAG, NULL, 0, NULL, &res);
	if (rc == DB_OK && PQntuples(res) == 1) {
		*pending = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		*lag = strtod(PQgetvalue(res, 0, 1), NULL);
	} else if (rc == DB_OK)
		rc = DB_ERROR;
	PQclear(res);
	return rc;
}

int
db_outbox_status(json_t **status)
{
	PGresult	*res = NULL;
	json_t		*o = NULL, *events;
	long long	 pend = 0, pub = 0, p, n, att, maxatt = 0, id;
	long long	 oldest = 0, lastms = 0, ms;
	double		 lag = 0, l;
	char		 at[40];
	int		 r, rc;

	*status = NULL;
	rc = db_run(ST_OUTBOX_STATUS, NULL, 0, NULL, &res);
	if (rc != DB_OK)
		goto out;
	o = json_object();
	events = json_object();
	json_object_set_new(o, "events", events);
	for (r = 0; r < PQntuples(res); r++) {
		p = strtoll(PQgetvalue(res, r, 1), NULL, 10);
		n = strtoll(PQgetvalue(res, r, 2), NULL, 10);
		att = strtoll(PQgetvalue(res, r, 3), NULL, 10);
		l = strtod(PQgetvalue(res, r, 4), NULL);
		id = strtoll(PQgetvalue(res, r, 5), NULL, 10);
		ms = strtoll(PQgetvalue(res, r, 6), NULL, 10);
		json_object_set_new(events, PQgetvalue(res, r, 0),
		    json_pack("{s:I, s:I}", "pending", (json_int_t)p,
		    "published", (json_int_t)n));
		pend += p;
		pub += n;
		if (att > maxatt)
			maxatt = att;
		if (l > lag)
			lag = l;
		if (id > 0 && (oldest == 0 || id < oldest))
			oldest = id;
		if (ms > lastms)
			lastms = ms;
	}
	json_object_set_new(o, "pending", json_integer(pend));
	json_object_set_new(o, "published", json_integer(pub));
	json_object_set_new(o, "oldestPendingId",
	    oldest > 0 ? json_integer(oldest) : json_null());
	json_object_set_new(o, "lagSeconds", json_real(lag));
	json_object_set_new(o, "maxAttempts", json_integer(maxatt));
	if (lastms > 0) {
		rfc3339(at, lastms);
		json_object_set_new(o, "lastPublishedAt", json_string(at));
	} else
		json_object_set_new(o, "lastPublishedAt", json_null());
	*status = o;
	o = NULL;
out:
	json_decref(o);
	PQclear(res);
	return rc;
}

int
db_outbox_replay(const char *event_id, long long from, long long to,
    long long *count)
{
	PGresult	*res = NULL;
	const char	*v[2];
	char		 a[32], b[32];
	int		 rc;

	*count = 0;
	if (event_id != NULL) {
		if (!db_is_uuid(event_id))
			return DB_NOTFOUND;
		v[0] = event_id;
		rc = db_run(ST_OUTBOX_REPLAY_ID, NULL, 1, v, &res);
	} else {
		snprintf(a, sizeof(a), "%lld", from);
		snprintf(b, sizeof(b), "%lld", to);
		v[0] = a;
		v[1] = b;
		rc = db_run(ST_OUTBOX_REPLAY_RANGE, NULL, 2, v, &res);
	}
	if (rc == DB_OK && db_count(res, count) == -1)
		rc = DB_ERROR;
	if (rc == DB_OK && *count == 0)
		rc = DB_NOTFOUND;
	PQclear(res);
	return rc;
}
