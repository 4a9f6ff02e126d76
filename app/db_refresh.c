/*
 * db_refresh.c: the refresh path's user lookup and audit row for a batch of
 * refreshes (auditq.c's group commit): one pipelined round trip, one
 * transaction, one commit.
 */
#include "config.h"

#include <string.h>

#include "extern.h"
#include "db_int.h"

/*
 * db_user_refresh for n refreshes at once, pipelined (libpq pipeline mode:
 * one round trip) in one transaction (one commit, one WAL flush): j[i].rc
 * and j[i].out as db_user_refresh gives them.  DB_OK once committed; else
 * DB_ERROR, nothing answered, and the connection dropped (the caller runs
 * them one by one).
 */
int
db_user_refresh_batch(struct db_refresh *j, size_t n)
{
	struct db_conn		*dc;
	struct audit_params	 ap;
	PGresult		*res = NULL;
	const char		*v[REFRESH_NPARAMS];
	long long		 deadline = mono_ms() + db_timeout_ms();
	size_t			 i, k, sent = 0;
	int			 rc = DB_ERROR, prep, f;

	if ((dc = db_pool_get(deadline)) == NULL)
		return DB_ERROR;
	prep = !(dc->prepared & (1u << ST_USER_REFRESH));
	if (!PQenterPipelineMode(dc->pg) ||
	    !PQsendQueryParams(dc->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) ||
	    (prep && !PQsendPrepare(dc->pg, db_stmts[ST_USER_REFRESH].name,
	    db_stmts[ST_USER_REFRESH].sql, 7, NULL)))
		goto broken;
	for (i = 0; i < n; i++) {
		memset(j[i].out, 0, sizeof(*j[i].out));
		j[i].rc = DB_NOTFOUND;
		if (!db_is_uuid(j[i].id))
			continue;	/* not sent: no result */
		if (j[i].a->outbox_event != EVENT_NONE ||
		    db_audit_params(&ap, j[i].a, j[i].id, NULL) == -1) {
			j[i].rc = DB_ERROR;
			continue;
		}
		db_refresh_params(v, j[i].id, &ap);
		f = PQsendQueryPrepared(dc->pg, db_stmts[ST_USER_REFRESH].name,
		    REFRESH_NPARAMS, v, NULL, NULL, 0);
		db_audit_params_free(&ap);
		if (!f)
			goto broken;
		j[i].rc = DB_OK;	/* sent: its result comes */
		sent++;
	}
	if (!PQsendQueryParams(dc->pg, "COMMIT", 0, NULL, NULL, NULL, NULL,
	    0) || !PQpipelineSync(dc->pg))
		goto broken;
	if (db_flush(dc->pg, deadline) != 0)
		goto broken;
	/* BEGIN, the prepare, each refresh sent, COMMIT: one result each */
	for (k = 0, i = 0; k < 2 + (size_t)prep + sent; k++) {
		if (db_ready(dc->pg, deadline) != 0 ||
		    (res = PQgetResult(dc->pg)) == NULL)
			goto broken;
		if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		    PQresultStatus(res) != PGRES_TUPLES_OK) {
			log_error(NULL, "postgresql: refresh batch: %s",
			    PQresultErrorMessage(res));
			goto broken;
		}
		if (k == 1 && prep)
			dc->prepared |= 1u << ST_USER_REFRESH;
		if (k >= 1 + (size_t)prep && k < 1 + (size_t)prep + sent) {
			while (j[i].rc != DB_OK)	/* the ones not sent */
				i++;
			if (PQntuples(res) == 0)
				j[i].rc = DB_NOTFOUND;
			else if (db_user_row(res, 0, j[i].out) == -1)
				j[i].rc = DB_ERROR;
			i++;
		}
		PQclear(res);
		res = NULL;
		if (PQgetResult(dc->pg) != NULL)	/* the end of this one */
			goto broken;
	}
	if (db_ready(dc->pg, deadline) != 0 ||
	    (res = PQgetResult(dc->pg)) == NULL ||
	    PQresultStatus(res) != PGRES_PIPELINE_SYNC ||
	    !PQexitPipelineMode(dc->pg))
		goto broken;
	rc = DB_OK;
	goto out;
broken:
	db_note_down("refresh batch", PQerrorMessage(dc->pg));
	db_conn_drop(dc);
	for (i = 0; i < n; i++)
		user_free(j[i].out);
out:
	PQclear(res);
	db_pool_put(dc);
	return rc;
}
