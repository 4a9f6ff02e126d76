/*
 * db_refresh.c: the refresh path's user lookup and audit row for a batch of
 * refreshes (auditq.c's group commit): one statement for the whole batch,
 * fa_user_refresh_batch, so one parse, one plan, one result and one commit
 * (one WAL flush) however many refreshes it holds.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "extern.h"
#include "db_int.h"

/*
 * The batch as fa_user_refresh_batch's $1, JSON text (jsonw.c: the group
 * commit's writer thread builds it for every batch): one element per job
 * sent, its position n and fa_user_refresh's parameters
 * (db_refresh_params), null where those are NULL.  Sets each j[i].rc:
 * DB_NOTFOUND until a row answers it (a malformed id is not sent, as
 * db_user_refresh), DB_ERROR if its audit row cannot be built.  NULL if
 * the text cannot be built; else *sent is how many it holds.
 */
static char *
refresh_rows(struct db_refresh *j, size_t n, size_t *sent)
{
	static const char *const keys[REFRESH_NPARAMS] = {
		"uid", "event", "sid", "ip", "ua", "success", "detail"
	};
	struct audit_params	 ap;
	struct jsonw		 w;
	const char		*v[REFRESH_NPARAMS];
	size_t			 i, k;

	*sent = 0;
	jsonw_init(&w, SIZE_MAX / 2);
	jsonw_open(&w, '[');
	for (i = 0; i < n; i++) {
		memset(j[i].out, 0, sizeof(*j[i].out));
		j[i].rc = DB_NOTFOUND;
		if (!db_is_uuid(j[i].id))
			continue;
		if (j[i].a == NULL || j[i].a->outbox_event != EVENT_NONE ||
		    db_audit_params(&ap, j[i].a, j[i].id, NULL) == -1) {
			j[i].rc = DB_ERROR;
			continue;
		}
		db_refresh_params(v, j[i].id, &ap);
		jsonw_open(&w, '{');
		jsonw_key(&w, "n");
		jsonw_num(&w, (long long)i);
		for (k = 0; k < REFRESH_NPARAMS; k++) {
			jsonw_key(&w, keys[k]);
			jsonw_strz(&w, v[k]);
		}
		jsonw_close(&w, '}');
		db_audit_params_free(&ap);
		(*sent)++;
	}
	jsonw_close(&w, ']');
	return jsonw_done(&w);
}

/*
 * Give each job its row of res (USER_COLS, then its position): DB_OK, or
 * DB_ERROR if the row does not fit.  -1 if res is not an answer to the
 * jobs sent (a position out of range, not sent, answered twice, or a row
 * of another user): then nothing may be trusted.
 */
static int
refresh_answer(struct db_refresh *j, size_t n, PGresult *res)
{
	const char	*s;
	char		*end;
	unsigned long	 k;
	int		 r;

	if (PQnfields(res) != USER_NCOLS + 1)
		goto bad;
	for (r = 0; r < PQntuples(res); r++) {
		s = PQgetvalue(res, r, USER_NCOLS);
		k = strtoul(s, &end, 10);
		if (*s == '\0' || *end != '\0' || k >= n ||
		    j[k].rc != DB_NOTFOUND || !db_is_uuid(j[k].id) ||
		    strcasecmp(PQgetvalue(res, r, 0), j[k].id) != 0)
			goto bad;
		j[k].rc = db_user_row(res, r, j[k].out) == 0 ? DB_OK : DB_ERROR;
	}
	return 0;
bad:
	log_error(NULL, "postgresql: refresh batch: an answer to no job sent");
	return -1;
}

/*
 * db_user_refresh for n refreshes at once, in one statement (one implicit
 * transaction): j[i].rc and j[i].out as db_user_refresh gives them.  DB_OK
 * once committed; else DB_ERROR, nothing answered, and the connection
 * dropped (the caller runs them one by one).
 */
int
db_user_refresh_batch(struct db_refresh *j, size_t n)
{
	struct db_conn	*dc = NULL;
	PGresult	*res = NULL;
	char		*batch;
	const char	*v[1];
	long long	 deadline = mono_ms() + db_timeout_ms();
	size_t		 i, sent;
	int		 rc = DB_ERROR;

	if ((batch = refresh_rows(j, n, &sent)) == NULL) {
		log_error(NULL, "db: cannot build the refresh batch");
		goto fail;
	}
	if (sent == 0) {	/* each answered without the database */
		free(batch);
		return DB_OK;
	}
	if ((dc = db_pool_get(deadline)) == NULL)
		goto fail;
	v[0] = batch;
	if (db_exec(dc, deadline, ST_USER_REFRESH_BATCH, NULL, 1, v,
	    &res) != DB_OK || refresh_answer(j, n, res) == -1) {
		db_conn_drop(dc);
		goto fail;
	}
	rc = DB_OK;
	goto out;
fail:
	for (i = 0; i < n; i++)
		user_free(j[i].out);
out:
	PQclear(res);
	if (dc != NULL)
		db_pool_put(dc);
	free(batch);
	return rc;
}
