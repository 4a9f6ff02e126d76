/*
 * db_int.h: what the db*.c files share and nothing else includes: the
 * connection, the statement registry's names, the runner and the audit
 * parameters.  libpq's types appear here and in db*.c/migrate.c only.
 */
#ifndef FA_DB_INT_H
#define FA_DB_INT_H

#include <libpq-fe.h>

#define SQLSTATE_UNIQUE		"23505"
#define SQLSTATE_READ_ONLY	"25006"	/* a standby, or a demoted primary */
#define STR_(x)			#x
#define STR(x)			STR_(x)

/*
 * The statements.  Every write that takes an audit row uses the same eleven
 * parameters, AUDIT_PARAMS, at some offset: event, user id, email, session
 * id, ip, user agent, success, detail, outbox event id, outbox event name,
 * outbox payload.  A NULL event skips the audit row, a NULL outbox event
 * skips the outbox row; the NOTIFY fires only with an outbox row.
 */
#define USER_COLS \
	"id::text, email, password_hash, first_name, last_name, " \
	"array_to_string(roles, ','), " \
	"(extract(epoch FROM created_at) * 1000)::bigint, disabled, " \
	"email_verified, mfa_enabled"
#define USER_NCOLS	10
#define AUDIT_NPARAMS	11

#define AUDIT_INSERT \
	"INSERT INTO auth.audit_log (event, user_id, email, session_id, ip, " \
	"user_agent, success, detail) "
#define OUTBOX_INSERT \
	"INSERT INTO auth.outbox (event_id, event, payload) "
#define NOTIFY_OUTBOX \
	"(SELECT count(pg_notify('" DB_NOTIFY_CHANNEL "', '')) FROM o)"
/*
 * The audit and outbox rows of a write whose CTE u returns the row written,
 * from the AUDIT_PARAMS at $n (event) .. $n+10 (payload): AUDIT_ROWS(3) for
 * $3..$13 (AUDIT_AT_3 lists them).  They end with the CTE o, for
 * NOTIFY_OUTBOX.
 */
#define AUDIT_AT_2	"2", "3", "4", "5", "6", "7", "8", "9", "10", "11", \
			"12"
#define AUDIT_AT_3	"3", "4", "5", "6", "7", "8", "9", "10", "11", "12", \
			"13"
#define AUDIT_AT_5	"5", "6", "7", "8", "9", "10", "11", "12", "13", \
			"14", "15"
#define AUDIT_AT_7	"7", "8", "9", "10", "11", "12", "13", "14", "15", \
			"16", "17"
#define AUDIT_ROWS(n)	AUDIT_ROWS_(AUDIT_AT_##n)
#define AUDIT_ROWS_(...)	AUDIT_ROWS__(__VA_ARGS__)
#define AUDIT_ROWS__(e, u, m, s, i, a, k, d, x, n, p) \
	" a AS (" AUDIT_INSERT \
	" SELECT $" e ", $" u "::uuid, $" m ", $" s "::uuid, $" i ", $" a \
	", $" k "::boolean, coalesce($" d "::jsonb, '{}') FROM u" \
	" WHERE $" e "::text IS NOT NULL)," \
	" o AS (" OUTBOX_INSERT \
	" SELECT $" x "::uuid, $" n ", $" p "::jsonb FROM u" \
	" WHERE $" n "::text IS NOT NULL RETURNING 1)"
/* the mail queues' writes: m is the CTE of the inserted rows */
#define NOTIFY_MAIL \
	"(SELECT count(pg_notify('" DB_NOTIFY_MAIL "', '')) FROM m)"

enum stmt {
	ST_PING,
	ST_USER_CREATE,
	ST_USER_BY_EMAIL,
	ST_USER_BY_ID,
	ST_USER_REFRESH,
	ST_USER_REFRESH_BATCH,
	ST_USER_SET_PASSWORD,
	ST_USER_SET_ROLES,
	ST_USER_IMPORT,
	ST_USER_IMPORT_CHECK,
	ST_USER_DELETE,
	ST_AUDIT,
	ST_OUTBOX_CLAIM,
	ST_OUTBOX_DONE,
	ST_OUTBOX_RETRY,
	ST_OUTBOX_PRUNE,
	ST_USER_LIST,
	ST_USER_SET_DISABLED,
	ST_OUTBOX_LAG,
	ST_OUTBOX_STATUS,
	ST_OUTBOX_REPLAY_ID,
	ST_OUTBOX_REPLAY_RANGE,
	ST__MAX
};

/*
 * One pooled connection; prepared has a bit per enum stmt.  sent and state
 * describe the last db_exec, for db_run's retry: whether the statement may
 * have reached the server, and the SQLSTATE of its error ("" if none).
 */
struct db_conn {
	PGconn		*pg;
	unsigned	 prepared;
	int		 sent;
	char		 state[6];
};

/* db_stmt.c: the registry, and whether st is safe to run twice. */
struct db_stmt {
	const char	*name;
	int		 nparams;
	const char	*sql;
};
extern const struct db_stmt db_stmts[ST__MAX];
int		 db_stmt_idempotent(enum stmt);

/*
 * db.c.  db_pool_get borrows a connection (connected if need be) before the
 * deadline, NULL if none; db_pool_put returns it, dropped unless healthy
 * and outside a transaction.  db_exec runs st (prepared on this connection
 * if need be), or sql unnamed when st is ST__MAX; on DB_OK *res holds the
 * result (caller clears).  db_run borrows, runs and returns the connection,
 * once more on a new one when a failover may be the cause (db_run_retry
 * says when); db_touch runs sql and maps "no row returned" to nf.
 */
struct db_conn	*db_pool_get(long long deadline);
void		 db_pool_put(struct db_conn *);
long		 db_timeout_ms(void);
int		 db_exec(struct db_conn *, long long deadline, enum stmt,
		    const char *sql, int n, const char *const *v, PGresult **);
int		 db_run_retry(enum stmt, const char *sql, int n,
		    const char *const *v, PGresult **, int ambiguous_ok,
		    int *ambiguous);
int		 db_run(enum stmt, const char *sql, int n,
		    const char *const *v, PGresult **);
int		 db_touch(const char *sql, int n, const char *const *v, int nf);
int		 db_is_uuid(const char *);
#define DB_WAIT_TIMEOUT	(-1)
#define DB_WAIT_BROKEN	(-2)
void		 db_conn_drop(struct db_conn *);	/* closed; taken again later */
void		 db_note_down(const char *what, const char *msg);
int		 db_user_row(PGresult *, int, struct user *);	/* USER_COLS */
void		 db_count_mail_queued(void);	/* for db_stats */

/* A number as a statement's text parameter, in buf; returns buf. */
#define DB_NUM_MAX	24
static inline const char *
db_num(char buf[DB_NUM_MAX], long long n)
{
	snprintf(buf, DB_NUM_MAX, "%lld", n);
	return buf;
}

/* A count(*) answer: row 0, column 0 into *count; -1 unless one row. */
static inline int
db_count(const PGresult *res, long long *count)
{
	if (PQntuples(res) != 1)
		return -1;
	*count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	return 0;
}

/*
 * db_audit.c: the eleven audit parameters of a write and the buffers they
 * point into.  db_audit_params fills them from a (NULL: no audit, no
 * event); uid, when given, overrides a->user_id; extra is merged into the
 * outbox data.  Always free with db_audit_params_free.
 */
struct audit_params {
	const char	*v[AUDIT_NPARAMS];
	char		 evid[FA_UUID_LEN + 1];
	char		*email, *ip, *ua;
	char		*detail;	/* json_dumps: free() */
	char		*payload;	/* audit_envelope: free() */
	int		 outbox;
};
int		 db_audit_params(struct audit_params *, const struct audit *,
		    const char *uid, json_t *extra);
void		 db_audit_params_free(struct audit_params *);
/*
 * ST_USER_REFRESH's parameters: the user id, then the audit row's event,
 * session id, ip, user agent, success and detail (no email, no event).
 */
#define REFRESH_NPARAMS	7
void		 db_refresh_params(const char *v[REFRESH_NPARAMS],
		    const char *id, const struct audit_params *);

#endif
