/*
 * db.c: the PostgreSQL backend.  A small pool of libpq connections made on
 * first borrow, prepared statements made lazily per connection, and every
 * wait (pool, connect, query) bounded by the request's one deadline of
 * backend_timeout_ms (deadline_at, shared with store.c) so a stopped or
 * unreachable server turns into DB_ERROR (503) in about a second, never a
 * hang.  A connection that failed or timed out is dropped
 * and re-made by the next borrow, so the service recovers by itself.
 *
 * Writes commit the change, its audit row and its outbox row in one
 * statement (data-modifying CTEs), so one round trip and one implicit
 * transaction.  SQL text and server messages are logged here and never
 * leave this file.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "extern.h"

#define SQLSTATE_UNIQUE		"23505"
#define SQLSTATE_READ_ONLY	"25006"	/* a standby, or a demoted primary */
#define STR_(x)			#x
#define STR(x)			STR_(x)

static const char *const audit_names[AUDIT__MAX] = {
	"register",
	"login.success",
	"login.failure",
	"refresh",
	"refresh.reuse_detected",
	"logout",
	"logout_all",
	"password.change",
	"session.revoke",
	"role.change",
	"user.import",
	"user.delete",
	"mfa.enable",
	"mfa.disable",
	"mfa.failure",
	"password.reset_requested",
	"password.reset",
	"email.verify_requested",
	"email.verified",
	"email.change_requested",
	"email.changed",
	"mail.dropped",
};

static const char *const event_names[EVENT__MAX] = {
	"user.registered",
	"user.logged_in",
	"user.logged_out",
	"user.password_changed",
	"session.revoked",
	"token.reuse_detected",
	"user.deleted",
	"user.mfa_enabled",
	"user.mfa_disabled",
	"user.password_reset_requested",
	"user.password_reset",
	"user.email_verified",
	"user.email_changed",
};

const char *
audit_event_name(enum audit_event e)
{
	if ((int)e < 0 || e >= AUDIT__MAX)
		return "unknown";
	return audit_names[e];
}

const char *
event_kind_name(enum event_kind k)
{
	if ((int)k < 0 || k >= EVENT__MAX)
		return "none";
	return event_names[k];
}

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

enum stmt {
	ST_PING,
	ST_USER_CREATE,
	ST_USER_BY_EMAIL,
	ST_USER_BY_ID,
	ST_USER_REFRESH,
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
	ST_OUTBOX_PENDING,
	ST_USER_LIST,
	ST_USER_SET_DISABLED,
	ST_OUTBOX_LAG,
	ST_OUTBOX_STATUS,
	ST_OUTBOX_REPLAY_ID,
	ST_OUTBOX_REPLAY_RANGE,
	ST__MAX
};

static const struct {
	const char	*name;
	int		 nparams;
	const char	*sql;
} stmts[ST__MAX] = {
	[ST_PING] = { "fa_ping", 0, "SELECT 1" },
	[ST_USER_CREATE] = { "fa_user_create", 6 + AUDIT_NPARAMS,
	    "WITH u AS ("
	    " INSERT INTO auth.users (id, email, password_hash, first_name,"
	    " last_name, created_at, updated_at)"
	    " VALUES ($1::uuid, $2, $3, $4, $5,"
	    " 'epoch'::timestamptz + $6::bigint * interval '1 millisecond',"
	    " 'epoch'::timestamptz + $6::bigint * interval '1 millisecond')"
	    " RETURNING " USER_COLS "),"
	    " a AS (" AUDIT_INSERT
	    " SELECT $7, $8::uuid, $9, $10::uuid, $11, $12, $13::boolean,"
	    " coalesce($14::jsonb, '{}') FROM u WHERE $7::text IS NOT NULL),"
	    " o AS (" OUTBOX_INSERT
	    " SELECT $15::uuid, $16, $17::jsonb FROM u"
	    " WHERE $16::text IS NOT NULL RETURNING 1)"
	    " SELECT u.*, " NOTIFY_OUTBOX " FROM u" },
	[ST_USER_BY_EMAIL] = { "fa_user_by_email", 1,
	    "SELECT " USER_COLS " FROM auth.users WHERE email = $1" },
	[ST_USER_BY_ID] = { "fa_user_by_id", 1,
	    "SELECT " USER_COLS " FROM auth.users WHERE id = $1::uuid" },
	/* the refresh path: the user and, unless disabled, its audit row */
	[ST_USER_REFRESH] = { "fa_user_refresh", 7,
	    "WITH u AS (SELECT " USER_COLS " FROM auth.users"
	    " WHERE id = $1::uuid),"
	    " a AS (" AUDIT_INSERT
	    " SELECT $2, u.id::uuid, u.email, $3::uuid, $4, $5, $6::boolean,"
	    " coalesce($7::jsonb, '{}') FROM u WHERE NOT u.disabled)"
	    " SELECT u.* FROM u" },
	[ST_USER_SET_PASSWORD] = { "fa_user_set_password", 2 + AUDIT_NPARAMS,
	    "WITH u AS ("
	    " UPDATE auth.users SET password_hash = $2, updated_at = now()"
	    " WHERE id = $1::uuid RETURNING id),"
	    " a AS (" AUDIT_INSERT
	    " SELECT $3, $4::uuid, $5, $6::uuid, $7, $8, $9::boolean,"
	    " coalesce($10::jsonb, '{}') FROM u WHERE $3::text IS NOT NULL),"
	    " o AS (" OUTBOX_INSERT
	    " SELECT $11::uuid, $12, $13::jsonb FROM u"
	    " WHERE $12::text IS NOT NULL RETURNING 1)"
	    " SELECT u.id::text, " NOTIFY_OUTBOX " FROM u" },
	[ST_USER_SET_ROLES] = { "fa_user_set_roles", 2 + AUDIT_NPARAMS,
	    "WITH u AS ("
	    " UPDATE auth.users SET roles = string_to_array($2, ','),"
	    " updated_at = now() WHERE id = $1::uuid RETURNING " USER_COLS "),"
	    " a AS (" AUDIT_INSERT
	    " SELECT $3, $4::uuid, $5, $6::uuid, $7, $8, $9::boolean,"
	    " coalesce($10::jsonb, '{}') FROM u WHERE $3::text IS NOT NULL),"
	    " o AS (" OUTBOX_INSERT
	    " SELECT $11::uuid, $12, $13::jsonb FROM u"
	    " WHERE $12::text IS NOT NULL RETURNING 1)"
	    " SELECT u.*, " NOTIFY_OUTBOX " FROM u" },
	/* $1: the rows of db_user_import, $2 the audit event, $3 "by" */
	[ST_USER_IMPORT] = { "fa_user_import", 3,
	    "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x("
	    " line bigint, id uuid, email text, hash text, \"firstName\" text,"
	    " \"lastName\" text, roles text, disabled boolean,"
	    " \"createdAt\" timestamptz, \"updatedAt\" timestamptz)),"
	    " u AS (INSERT INTO auth.users (id, email, password_hash,"
	    " first_name, last_name, roles, disabled, created_at, updated_at)"
	    " SELECT id, email, hash, \"firstName\", \"lastName\","
	    " string_to_array(roles, ','), disabled,"
	    " coalesce(\"createdAt\", now()),"
	    " coalesce(\"updatedAt\", \"createdAt\", now())"
	    " FROM r ORDER BY line RETURNING id, email, roles, disabled),"
	    " a AS (" AUDIT_INSERT
	    " SELECT $2, u.id, u.email, NULL::uuid, NULL, NULL, true,"
	    " jsonb_build_object('by', $3::text, 'roles', u.roles,"
	    " 'disabled', u.disabled) FROM u)"
	    " SELECT count(*) FROM u" },
	/* ids and emails taken in the table or by an earlier line */
	[ST_USER_IMPORT_CHECK] = { "fa_user_import_check", 1,
	    "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x("
	    " line bigint, id uuid, email text)),"
	    " d AS (SELECT line, id, email,"
	    " row_number() OVER (PARTITION BY id ORDER BY line) AS nid,"
	    " row_number() OVER (PARTITION BY email ORDER BY line)"
	    " AS nemail FROM r)"
	    " SELECT line, CASE WHEN nid > 1 OR EXISTS (SELECT 1 FROM"
	    " auth.users u WHERE u.id = d.id) THEN 'id' ELSE 'email' END"
	    " FROM d WHERE nid > 1 OR nemail > 1"
	    " OR EXISTS (SELECT 1 FROM auth.users u WHERE u.id = d.id)"
	    " OR EXISTS (SELECT 1 FROM auth.users u"
	    " WHERE u.email = d.email) ORDER BY line" },
	/* API.md, Account deletion; 003_audit_erase.sql allows the UPDATE */
	[ST_USER_DELETE] = { "fa_user_delete", 1 + AUDIT_NPARAMS,
	    "WITH u AS (DELETE FROM auth.users WHERE id = $1::uuid"
	    " RETURNING id, email),"
	    /* by id, and the rows of its email without one (login failures) */
	    " e AS (UPDATE auth.audit_log SET email = NULL, ip = NULL,"
	    " user_agent = NULL WHERE (user_id IN (SELECT id FROM u)"
	    " OR lower(email) IN (SELECT lower(email) FROM u))"
	    " AND (email IS NOT NULL OR ip IS NOT NULL"
	    " OR user_agent IS NOT NULL)),"
	    " a AS (" AUDIT_INSERT
	    " SELECT $2, $3::uuid, $4, $5::uuid, $6, $7, $8::boolean,"
	    " coalesce($9::jsonb, '{}') FROM u WHERE $2::text IS NOT NULL),"
	    " o AS (" OUTBOX_INSERT
	    " SELECT $10::uuid, $11, $12::jsonb FROM u"
	    " WHERE $11::text IS NOT NULL RETURNING 1)"
	    " SELECT u.id::text, " NOTIFY_OUTBOX " FROM u" },
	[ST_AUDIT] = { "fa_audit", AUDIT_NPARAMS,
	    "WITH a AS (" AUDIT_INSERT
	    " VALUES ($1, $2::uuid, $3, $4::uuid, $5, $6, $7::boolean,"
	    " coalesce($8::jsonb, '{}'))),"
	    " o AS (" OUTBOX_INSERT
	    " SELECT $9::uuid, $10, $11::jsonb WHERE $10::text IS NOT NULL"
	    " RETURNING 1)"
	    " SELECT " NOTIFY_OUTBOX },
	[ST_OUTBOX_CLAIM] = { "fa_outbox_claim", 1,
	    "SELECT id, event, payload::text, attempts FROM auth.outbox"
	    " WHERE published_at IS NULL ORDER BY id"
	    " LIMIT $1::bigint FOR UPDATE SKIP LOCKED" },
	[ST_OUTBOX_DONE] = { "fa_outbox_done", 1,
	    "UPDATE auth.outbox SET published_at = now(),"
	    " attempts = attempts + 1"
	    " WHERE id = $1::bigint AND published_at IS NULL" },
	[ST_OUTBOX_RETRY] = { "fa_outbox_retry", 1,
	    "UPDATE auth.outbox SET attempts = attempts + 1"
	    " WHERE id = $1::bigint AND published_at IS NULL" },
	[ST_OUTBOX_PRUNE] = { "fa_outbox_prune", 1,
	    "DELETE FROM auth.outbox WHERE id IN (SELECT id FROM auth.outbox"
	    " WHERE published_at < now() - make_interval(secs => $1::bigint)"
	    " LIMIT " STR(DB_OUTBOX_PRUNE_MAX) ")" },
	[ST_OUTBOX_PENDING] = { "fa_outbox_pending", 0,
	    "SELECT count(*) FROM auth.outbox WHERE published_at IS NULL" },
	/* operator queries */
	[ST_USER_LIST] = { "fa_user_list", 2,
	    "SELECT " USER_COLS " FROM auth.users ORDER BY created_at, id"
	    " LIMIT $1::bigint OFFSET $2::bigint" },
	[ST_USER_SET_DISABLED] = { "fa_user_set_disabled", 3,
	    "WITH u AS ("
	    " UPDATE auth.users SET disabled = $2::boolean, updated_at = now()"
	    " WHERE id = $1::uuid RETURNING " USER_COLS "),"
	    " a AS (" AUDIT_INSERT
	    " SELECT CASE WHEN $2::boolean THEN 'user.disable'"
	    " ELSE 'user.enable' END, u.id::uuid, u.email, NULL::uuid, NULL, NULL,"
	    " true, jsonb_build_object('by', $3::text) FROM u)"
	    " SELECT u.* FROM u" },
	[ST_OUTBOX_LAG] = { "fa_outbox_lag", 0,
	    "SELECT count(*), coalesce(extract(epoch FROM"
	    " clock_timestamp() - min(created_at)), 0)::float8"
	    " FROM auth.outbox WHERE published_at IS NULL" },
	[ST_OUTBOX_STATUS] = { "fa_outbox_status", 0,
	    "SELECT event,"
	    " count(*) FILTER (WHERE published_at IS NULL),"
	    " count(*) FILTER (WHERE published_at IS NOT NULL),"
	    " coalesce(max(attempts) FILTER (WHERE published_at IS NULL), 0),"
	    " coalesce(extract(epoch FROM clock_timestamp() - min(created_at)"
	    " FILTER (WHERE published_at IS NULL)), 0)::float8,"
	    " coalesce(min(id) FILTER (WHERE published_at IS NULL), 0),"
	    " coalesce((extract(epoch FROM max(published_at)) * 1000)::bigint,"
	    " 0) FROM auth.outbox GROUP BY event ORDER BY event" },
	[ST_OUTBOX_REPLAY_ID] = { "fa_outbox_replay_id", 1,
	    "WITH o AS (UPDATE auth.outbox SET published_at = NULL"
	    " WHERE event_id = $1::uuid RETURNING 1)"
	    " SELECT (SELECT count(*) FROM o), " NOTIFY_OUTBOX },
	[ST_OUTBOX_REPLAY_RANGE] = { "fa_outbox_replay_range", 2,
	    "WITH o AS (UPDATE auth.outbox SET published_at = NULL"
	    " WHERE id >= $1::bigint AND ($2::bigint <= 0 OR id <= $2::bigint)"
	    " AND published_at IS NOT NULL RETURNING 1)"
	    " SELECT (SELECT count(*) FROM o), " NOTIFY_OUTBOX },
};

/*
 * One pooled connection; prepared has a bit per enum stmt.  sent and state
 * describe the last pg_exec, for db_run's retry: whether the statement may
 * have reached the server, and the SQLSTATE of its error ("" if none).
 */
struct db_conn {
	PGconn		*pg;
	int		 busy;
	unsigned	 prepared;
	int		 sent;
	char		 state[6];
};

struct db_batch {
	struct db_conn	*dc;
	int		 failed;
};

static struct {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	struct db_conn	*slot;
	size_t		 n;
	long		 timeout_ms;
	char		*conninfo;
	char		 options[128];
	char		 connect_timeout[24];
	int		 down;		/* logged as down; under mu */
} pool = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* libpq messages end in a newline and may span lines: make them one. */
static const char *
one_line(char *buf, size_t sz, const char *msg)
{
	size_t	 i;

	snprintf(buf, sz, "%s", msg != NULL ? msg : "");
	for (i = 0; buf[i] != '\0'; i++)
		if (buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')
			buf[i] = ' ';
	while (i > 0 && buf[i - 1] == ' ')
		buf[--i] = '\0';
	return buf;
}

/* Log a connection-level failure once per outage, at debug after that. */
static void
db_note_down(const char *what, const char *msg)
{
	char	 line[DB_LOG_LINE];
	int	 was;

	pthread_mutex_lock(&pool.mu);
	was = pool.down;
	pool.down = 1;
	pthread_mutex_unlock(&pool.mu);
	metrics_backend_error(METRICS_POSTGRES);
	one_line(line, sizeof(line), msg);
	if (!was)
		log_error(NULL, "postgresql: %s: %s", what, line);
	else
		log_debug(NULL, "postgresql: %s: %s", what, line);
}

static void
db_note_up(void)
{
	int	 was;

	pthread_mutex_lock(&pool.mu);
	was = pool.down;
	pool.down = 0;
	pthread_mutex_unlock(&pool.mu);
	if (was)
		log_info(NULL, "postgresql: connected again");
}

/* Wait until fd has events or the deadline passes: 0 ready, -1 not. */
static int
wait_fd(int fd, short events, long long deadline)
{
	struct pollfd	 p;
	long long	 left;
	int		 r;

	if (fd < 0)
		return -1;
	for (;;) {
		left = deadline - mono_ms();
		if (left <= 0)
			return -1;
		p.fd = fd;
		p.events = events;
		p.revents = 0;
		r = poll(&p, 1, (int)left);
		if (r > 0)
			return 0;
		if (r == 0)
			return -1;
		if (errno != EINTR)
			return -1;
	}
}

int
db_init(const struct config *c)
{
	long	 secs;

	pthread_condattr_t	 ca;

	if (pool.slot != NULL)
		return 0;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pool.cv, &ca);
	pthread_condattr_destroy(&ca);
	pool.n = c->db_pool > 0 ? (size_t)c->db_pool : 1;
	pool.slot = xcalloc(pool.n, sizeof(*pool.slot));
	pool.timeout_ms = c->backend_timeout_ms > 0 ? c->backend_timeout_ms : 1;
	pool.conninfo = xstrdup(c->database_url ? c->database_url : "");
	/* libpq counts whole seconds; our own deadline is the real bound */
	secs = (pool.timeout_ms + 999) / 1000;
	snprintf(pool.connect_timeout, sizeof(pool.connect_timeout), "%ld",
	    secs < 1 ? 1 : secs);
	snprintf(pool.options, sizeof(pool.options),
	    "-c statement_timeout=%ld -c lock_timeout=%d"
	    " -c idle_in_transaction_session_timeout=%d",
	    pool.timeout_ms, DB_LOCK_TIMEOUT_MS, DB_IDLE_TXN_TIMEOUT_MS);
	return 0;
}

void
db_shutdown(void)
{
	size_t	 i;

	if (pool.slot == NULL)
		return;
	for (i = 0; i < pool.n; i++)
		if (pool.slot[i].pg != NULL)
			PQfinish(pool.slot[i].pg);
	free(pool.slot);
	pool.slot = NULL;
	pool.n = 0;
	free(pool.conninfo);
	pool.conninfo = NULL;
	pthread_cond_destroy(&pool.cv);
}

/*
 * Connect within the deadline with PQconnectPoll.  The keywords before
 * dbname may be overridden by the configured conninfo; options (the
 * timeouts) come after it and win.
 */
static PGconn *
db_connect(long long deadline)
{
	char		 ka_idle[16], ka_intvl[16], ka_count[16];
	const char	*keys[] = { "connect_timeout", "keepalives",
	    "keepalives_idle", "keepalives_interval", "keepalives_count",
	    "application_name", "dbname", "options", NULL };
	const char	*vals[9];
	PGconn		*pg;
	PostgresPollingStatusType st;
	short		 ev;

	snprintf(ka_idle, sizeof(ka_idle), "%d", DB_KEEPALIVE_IDLE);
	snprintf(ka_intvl, sizeof(ka_intvl), "%d", DB_KEEPALIVE_INTERVAL);
	snprintf(ka_count, sizeof(ka_count), "%d", DB_KEEPALIVE_COUNT);
	vals[0] = pool.connect_timeout;
	vals[1] = "1";
	vals[2] = ka_idle;
	vals[3] = ka_intvl;
	vals[4] = ka_count;
	vals[5] = "fcgi-auth";
	vals[6] = pool.conninfo;
	vals[7] = pool.options;
	vals[8] = NULL;

	pg = PQconnectStartParams(keys, vals, 1);
	if (pg == NULL) {
		db_note_down("connect", "out of memory");
		return NULL;
	}
	if (PQstatus(pg) == CONNECTION_BAD) {
		db_note_down("connect", PQerrorMessage(pg));
		goto fail;
	}
	st = PGRES_POLLING_WRITING;
	for (;;) {
		if (st == PGRES_POLLING_OK)
			break;
		if (st == PGRES_POLLING_FAILED) {
			db_note_down("connect", PQerrorMessage(pg));
			goto fail;
		}
		ev = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		if (wait_fd(PQsocket(pg), ev, deadline) == -1) {
			db_note_down("connect", "timed out");
			goto fail;
		}
		st = PQconnectPoll(pg);
	}
	if (PQsetnonblocking(pg, 1) != 0) {
		db_note_down("connect", PQerrorMessage(pg));
		goto fail;
	}
	db_note_up();
	return pg;
fail:
	PQfinish(pg);
	return NULL;
}

static void
conn_drop(struct db_conn *dc)
{
	if (dc->pg != NULL)
		PQfinish(dc->pg);
	dc->pg = NULL;
	dc->prepared = 0;
}

/*
 * An idle connection has nothing to read: if its socket is readable or
 * hung up, the server closed it (restart, idle kill) and it is useless.
 */
static int
conn_stale(struct db_conn *dc)
{
	struct pollfd	 p;

	if (PQstatus(dc->pg) != CONNECTION_OK)
		return 1;
	p.fd = PQsocket(dc->pg);
	p.events = POLLIN;
	p.revents = 0;
	if (p.fd < 0)
		return 1;
	return poll(&p, 1, 0) != 0;
}

/* Borrow a connection, connecting it if need be, before the deadline. */
static struct db_conn *
pool_get(long long deadline)
{
	struct db_conn	*dc = NULL, *c;
	struct timespec	 ts;
	long long	 left;
	size_t		 i;

	if (pool.slot == NULL)
		return NULL;
	/* the request's deadline has passed: fail before borrowing */
	if (deadline - mono_ms() <= 0) {
		log_debug(NULL, "postgresql: the request's deadline passed");
		return NULL;
	}
	pthread_mutex_lock(&pool.mu);
	for (;;) {
		for (i = 0; i < pool.n; i++) {
			c = &pool.slot[i];
			if (c->busy)
				continue;
			if (dc == NULL || (dc->pg == NULL && c->pg != NULL))
				dc = c;
			if (dc->pg != NULL)
				break;
		}
		if (dc != NULL)
			break;
		left = deadline - mono_ms();
		if (left <= 0) {
			pthread_mutex_unlock(&pool.mu);
			log_warn(NULL, "postgresql: no free connection in time");
			return NULL;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&pool.cv, &pool.mu, &ts);
	}
	dc->busy = 1;
	pthread_mutex_unlock(&pool.mu);

	if (dc->pg != NULL && conn_stale(dc))
		conn_drop(dc);
	if (dc->pg == NULL && (dc->pg = db_connect(deadline)) == NULL) {
		pthread_mutex_lock(&pool.mu);
		dc->busy = 0;
		pthread_cond_signal(&pool.cv);
		pthread_mutex_unlock(&pool.mu);
		return NULL;
	}
	return dc;
}

/* Return a connection; dropped unless healthy and outside a transaction. */
static void
pool_put(struct db_conn *dc, int keep_txn)
{
	if (dc->pg != NULL && (PQstatus(dc->pg) != CONNECTION_OK ||
	    (!keep_txn && PQtransactionStatus(dc->pg) != PQTRANS_IDLE)))
		conn_drop(dc);
	pthread_mutex_lock(&pool.mu);
	dc->busy = 0;
	pthread_cond_signal(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
}

/*
 * Flush what was sent and collect the results of one command before the
 * deadline.  *res gets the first error result, else the last result.
 * -1 on a connection-level failure or timeout (the caller drops it).
 */
static int
pg_wait(PGconn *pg, long long deadline, PGresult **res)
{
	PGresult	*r, *keep = NULL;
	int		 f;

	*res = NULL;
	while ((f = PQflush(pg)) == 1) {
		if (wait_fd(PQsocket(pg), POLLOUT | POLLIN, deadline) == -1)
			goto timeout;
		if (!PQconsumeInput(pg))
			goto broken;
	}
	if (f == -1)
		goto broken;
	for (;;) {
		while (PQisBusy(pg)) {
			if (wait_fd(PQsocket(pg), POLLIN, deadline) == -1)
				goto timeout;
			if (!PQconsumeInput(pg))
				goto broken;
		}
		if ((r = PQgetResult(pg)) == NULL)
			break;
		if (keep != NULL && PQresultStatus(keep) == PGRES_FATAL_ERROR)
			PQclear(r);
		else {
			PQclear(keep);
			keep = r;
		}
	}
	if (keep == NULL)
		goto broken;
	*res = keep;
	return 0;
timeout:
	PQclear(keep);
	db_note_down("query", "timed out");
	return -1;
broken:
	PQclear(keep);
	db_note_down("query", PQerrorMessage(pg));
	return -1;
}

/*
 * Run a statement: st a prepared one (made on this connection if need be),
 * or st == ST__MAX with sql run as an unnamed statement.  On DB_OK *res
 * holds the tuples or command result (caller clears).  A failed connection
 * is dropped right here.
 */
static int
pg_exec(struct db_conn *dc, long long deadline, enum stmt st, const char *sql,
    int n, const char *const *v, PGresult **res)
{
	PGresult	*r = NULL;
	const char	*state, *name = st < ST__MAX ? stmts[st].name : "query";
	char		 line[DB_LOG_LINE];
	ExecStatusType	 es;
	int		 rc = DB_ERROR;

	*res = NULL;
	dc->sent = 0;
	dc->state[0] = '\0';
	if (st < ST__MAX && !(dc->prepared & (1u << st))) {
		if (!PQsendPrepare(dc->pg, stmts[st].name, stmts[st].sql,
		    stmts[st].nparams, NULL)) {
			db_note_down("prepare", PQerrorMessage(dc->pg));
			goto broken;
		}
		if (pg_wait(dc->pg, deadline, &r) == -1)
			goto broken;
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			log_error(NULL, "postgresql: prepare %s: %s", name,
			    one_line(line, sizeof(line),
			    PQresultErrorMessage(r)));
			goto out;
		}
		PQclear(r);
		r = NULL;
		dc->prepared |= 1u << st;
	}
	if (st < ST__MAX) {
		if (!PQsendQueryPrepared(dc->pg, stmts[st].name, n, v,
		    NULL, NULL, 0)) {
			db_note_down("send", PQerrorMessage(dc->pg));
			goto broken;
		}
	} else if (!PQsendQueryParams(dc->pg, sql, n, NULL, v, NULL, NULL, 0)) {
		db_note_down("send", PQerrorMessage(dc->pg));
		goto broken;
	}
	dc->sent = 1;
	if (pg_wait(dc->pg, deadline, &r) == -1)
		goto broken;
	es = PQresultStatus(r);
	if (es == PGRES_TUPLES_OK || es == PGRES_COMMAND_OK) {
		*res = r;
		r = NULL;
		rc = DB_OK;
		goto out;
	}
	state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (state != NULL)
		snprintf(dc->state, sizeof(dc->state), "%s", state);
	if (state != NULL && strcmp(state, SQLSTATE_UNIQUE) == 0) {
		rc = DB_CONFLICT;
		goto out;
	}
	log_error(NULL, "postgresql: %s: %s %s", name, state ? state : "",
	    one_line(line, sizeof(line), PQresultErrorMessage(r)));
	goto out;
broken:
	conn_drop(dc);
out:
	PQclear(r);
	return rc;
}

/*
 * Statements that change nothing (or nothing more when run twice): safe to
 * run again after a failure that leaves unknown whether they ran.
 */
static int	 user_by(enum stmt, const char *, struct user *);

static int
stmt_idempotent(enum stmt st)
{
	switch (st) {
	case ST_PING:
	case ST_USER_BY_EMAIL:
	case ST_USER_BY_ID:
	case ST_OUTBOX_DONE:
	case ST_OUTBOX_PRUNE:
	case ST_OUTBOX_PENDING:
	case ST_USER_LIST:
	case ST_OUTBOX_LAG:
	case ST_OUTBOX_STATUS:
		return 1;
	default:
		return 0;
	}
}

/*
 * Borrow, run one statement, return the connection; once more on a new
 * connection (within the same deadline) when a failover may be the cause
 * and running it again is safe: the statement never reached the server, or
 * the server refused it as read-only (we reached a standby or a demoted
 * primary: the new connection goes where target_session_attrs says), or
 * the connection died while it ran and the statement is idempotent, or
 * ambiguous_ok is set (the caller detects a first run that committed, see
 * db_user_create).  *ambiguous (if not NULL) is set when the retry followed
 * a failure that may have committed.
 */
static int
db_run_retry(enum stmt st, const char *sql, int n, const char *const *v,
    PGresult **res, int ambiguous_ok, int *ambiguous)
{
	struct db_conn	*dc;
	long long	 deadline = deadline_at(pool.timeout_ms);
	int		 rc, try, lost, readonly, unsure;

	*res = NULL;
	if (ambiguous != NULL)
		*ambiguous = 0;
	for (try = 0;; try++) {
		if ((dc = pool_get(deadline)) == NULL)
			return DB_ERROR;
		rc = pg_exec(dc, deadline, st, sql, n, v, res);
		/* 57P01 admin_shutdown and the like: the server is leaving */
		lost = dc->pg == NULL || PQstatus(dc->pg) != CONNECTION_OK ||
		    strncmp(dc->state, "57P", 3) == 0;
		readonly = strcmp(dc->state, SQLSTATE_READ_ONLY) == 0;
		unsure = lost && dc->sent;
		if (lost || readonly)
			conn_drop(dc);
		pool_put(dc, 0);
		if (rc != DB_ERROR || try > 0 || !(lost || readonly))
			return rc;
		if (unsure && !stmt_idempotent(st) && !ambiguous_ok)
			return rc;
		if (deadline - mono_ms() <= 0)
			return rc;
		if (unsure && ambiguous != NULL)
			*ambiguous = 1;
		log_warn(NULL, "postgresql: %s: %s; once more on a new "
		    "connection", st < ST__MAX ? stmts[st].name : "query",
		    readonly ? "read-only server" : "connection lost");
	}
}

/* Borrow, run one statement, return the connection. */
static int
db_run(enum stmt st, const char *sql, int n, const char *const *v,
    PGresult **res)
{
	return db_run_retry(st, sql, n, v, res, 0, NULL);
}

static int
is_uuid(const char *s)
{
	unsigned char	 raw[16];

	if (s == NULL || strlen(s) != FA_UUID_LEN)
		return 0;
	return uuid_parse(raw, s, FA_UUID_LEN) == 0;
}

/* The eleven audit parameters and the buffers they point into. */
struct audit_params {
	const char	*v[AUDIT_NPARAMS];
	char		 evid[FA_UUID_LEN + 1];
	char		*email, *ip, *ua;
	char		*detail;	/* json_dumps: free() */
	char		*payload;	/* json_dumps: free() */
	int		 outbox;
};

static void
audit_params_free(struct audit_params *ap)
{
	free(ap->email);
	free(ap->ip);
	free(ap->ua);
	free(ap->detail);
	free(ap->payload);
	memset(ap, 0, sizeof(*ap));
}

/*
 * Fill the audit parameters from a (NULL: no audit, no event).  uid, when
 * given, overrides a->user_id.  extra is merged into the outbox data (used
 * by register for the fields only the database call knows).
 */
static int
audit_params(struct audit_params *ap, const struct audit *a, const char *uid,
    json_t *extra)
{
	unsigned char	 raw[16];
	char		 at[40];
	json_t		*data = NULL, *msg = NULL;
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
	ap->v[1] = is_uuid(uid) ? uid : NULL;
	ap->v[2] = ap->email;
	ap->v[3] = is_uuid(a->session_id) ? a->session_id : NULL;
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
		data = a->outbox_data != NULL ?
		    json_deep_copy(a->outbox_data) : json_object();
		if (data == NULL)
			goto out;
		if (extra != NULL && json_object_update(data, extra) == -1)
			goto out;
		/* every event but user.registered (createdAt) carries "at" */
		if (a->outbox_event != EVENT_USER_REGISTERED &&
		    json_object_get(data, "at") == NULL) {
			rfc3339(at, now_ms());
			if (json_object_set_new(data, "at", json_string(at)) == -1)
				goto out;
		}
		uuid_random(raw);
		uuid_format(ap->evid, raw);
		json_object_del(data, "id");
		if (json_object_set_new(data, "eventId",
		    json_string(ap->evid)) == -1)
			goto out;
		msg = json_object();
		if (json_object_set_new(msg, "pattern",
		    json_string(event_kind_name(a->outbox_event))) == -1 ||
		    json_object_set(msg, "data", data) == -1)
			goto out;
		if ((ap->payload = json_dumps(msg, JSON_COMPACT)) == NULL)
			goto out;
		ap->v[8] = ap->evid;
		ap->v[9] = event_kind_name(a->outbox_event);
		ap->v[10] = ap->payload;
		ap->outbox = 1;
	}
	rc = 0;
out:
	json_decref(data);
	json_decref(msg);
	if (rc == -1) {
		log_error(NULL, "db: cannot build the audit/outbox row");
		audit_params_free(ap);
	}
	return rc;
}

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
static int
user_from_row(PGresult *res, int r, struct user *out)
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

int
db_ping(void)
{
	PGresult	*res;
	int		 rc;

	rc = db_run(ST_PING, NULL, 0, NULL, &res);
	PQclear(res);
	return rc == DB_OK ? 0 : -1;
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
	if (extra == NULL || audit_params(&ap, a, id, extra) == -1)
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
			if (ap.outbox)
				event_kick();
			rc = DB_OK;
			goto out;
		}
		user_free(out);
		memset(out, 0, sizeof(*out));
		rc = DB_CONFLICT;
	}
	if (rc != DB_OK)
		goto out;
	if (PQntuples(res) != 1 || user_from_row(res, 0, out) == -1) {
		rc = DB_ERROR;
		goto out;
	}
	if (ap.outbox)
		event_kick();
out:
	json_decref(extra);
	audit_params_free(&ap);
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
		else if (user_from_row(res, 0, out) == -1)
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
	if (!is_uuid(id)) {
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
	const char		*v[7];
	int			 rc;

	memset(out, 0, sizeof(*out));
	if (!is_uuid(id))
		return DB_NOTFOUND;
	if (a == NULL || a->outbox_event != EVENT_NONE) {
		log_error(NULL, "db: user_refresh takes an audit row, no event");
		return DB_ERROR;
	}
	if (audit_params(&ap, a, id, NULL) == -1)
		return DB_ERROR;
	v[0] = id;
	v[1] = ap.v[0];
	v[2] = ap.v[3];
	v[3] = ap.v[4];
	v[4] = ap.v[5];
	v[5] = ap.v[6];
	v[6] = ap.v[7];
	rc = user_stmt(ST_USER_REFRESH, 7, v, out);
	audit_params_free(&ap);
	return rc;
}

int
db_user_set_password(const char *id, const char *hash, const struct audit *a)
{
	struct audit_params	 ap;
	PGresult		*res = NULL;
	const char		*v[2 + AUDIT_NPARAMS];
	int			 rc = DB_ERROR;

	if (!is_uuid(id))
		return DB_NOTFOUND;
	if (audit_params(&ap, a, NULL, NULL) == -1)
		return DB_ERROR;
	v[0] = id;
	v[1] = hash;
	memcpy(v + 2, ap.v, sizeof(ap.v));
	rc = db_run(ST_USER_SET_PASSWORD, NULL, 2 + AUDIT_NPARAMS, v, &res);
	if (rc != DB_OK)
		goto out;
	if (PQntuples(res) == 0)
		rc = DB_NOTFOUND;
	else if (ap.outbox)
		event_kick();
out:
	audit_params_free(&ap);
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
	if (!is_uuid(id))
		return DB_NOTFOUND;
	if (audit_params(&ap, a, NULL, NULL) == -1)
		return DB_ERROR;
	v[0] = id;
	v[1] = roles_csv != NULL ? roles_csv : "";
	memcpy(v + 2, ap.v, sizeof(ap.v));
	rc = user_stmt(ST_USER_SET_ROLES, 2 + AUDIT_NPARAMS, v, out);
	if (rc == DB_OK && ap.outbox)
		event_kick();
	audit_params_free(&ap);
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
	if (audit_params(&ap, a, NULL, NULL) == -1)
		return DB_ERROR;
	rc = db_run(ST_AUDIT, NULL, AUDIT_NPARAMS, ap.v, &res);
	if (rc == DB_OK && ap.outbox)
		event_kick();
	audit_params_free(&ap);
	PQclear(res);
	return rc;
}

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
	const char		*v[7];
	long long		 deadline = mono_ms() + pool.timeout_ms;
	size_t			 i, k, sent = 0;
	int			 rc = DB_ERROR, prep, f;

	if ((dc = pool_get(deadline)) == NULL)
		return DB_ERROR;
	prep = !(dc->prepared & (1u << ST_USER_REFRESH));
	if (!PQenterPipelineMode(dc->pg) ||
	    !PQsendQueryParams(dc->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) ||
	    (prep && !PQsendPrepare(dc->pg, stmts[ST_USER_REFRESH].name,
	    stmts[ST_USER_REFRESH].sql, 7, NULL)))
		goto broken;
	for (i = 0; i < n; i++) {
		memset(j[i].out, 0, sizeof(*j[i].out));
		j[i].rc = DB_NOTFOUND;
		if (!is_uuid(j[i].id))
			continue;	/* not sent: no result */
		if (j[i].a->outbox_event != EVENT_NONE ||
		    audit_params(&ap, j[i].a, j[i].id, NULL) == -1) {
			j[i].rc = DB_ERROR;
			continue;
		}
		v[0] = j[i].id;
		v[1] = ap.v[0];
		v[2] = ap.v[3];
		v[3] = ap.v[4];
		v[4] = ap.v[5];
		v[5] = ap.v[6];
		v[6] = ap.v[7];
		f = PQsendQueryPrepared(dc->pg, stmts[ST_USER_REFRESH].name, 7,
		    v, NULL, NULL, 0);
		audit_params_free(&ap);
		if (!f)
			goto broken;
		j[i].rc = DB_OK;	/* sent: its result comes */
		sent++;
	}
	if (!PQsendQueryParams(dc->pg, "COMMIT", 0, NULL, NULL, NULL, NULL,
	    0) || !PQpipelineSync(dc->pg))
		goto broken;
	while ((f = PQflush(dc->pg)) == 1)
		if (wait_fd(PQsocket(dc->pg), POLLOUT | POLLIN, deadline) == -1 ||
		    !PQconsumeInput(dc->pg))
			goto broken;
	if (f == -1)
		goto broken;
	/* BEGIN, the prepare, each refresh sent, COMMIT: one result each */
	for (k = 0, i = 0; k < 2 + (size_t)prep + sent; k++) {
		while (PQisBusy(dc->pg))
			if (wait_fd(PQsocket(dc->pg), POLLIN, deadline) == -1 ||
			    !PQconsumeInput(dc->pg))
				goto broken;
		if ((res = PQgetResult(dc->pg)) == NULL)
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
			else if (user_from_row(res, 0, j[i].out) == -1)
				j[i].rc = DB_ERROR;
			i++;
		}
		PQclear(res);
		res = NULL;
		if (PQgetResult(dc->pg) != NULL)	/* the end of this one */
			goto broken;
	}
	while (PQisBusy(dc->pg))
		if (wait_fd(PQsocket(dc->pg), POLLIN, deadline) == -1 ||
		    !PQconsumeInput(dc->pg))
			goto broken;
	if ((res = PQgetResult(dc->pg)) == NULL ||
	    PQresultStatus(res) != PGRES_PIPELINE_SYNC ||
	    !PQexitPipelineMode(dc->pg))
		goto broken;
	rc = DB_OK;
	goto out;
broken:
	db_note_down("refresh batch", PQerrorMessage(dc->pg));
	conn_drop(dc);
	for (i = 0; i < n; i++)
		user_free(j[i].out);
out:
	PQclear(res);
	pool_put(dc, 0);
	return rc;
}

static json_t *
json_text_or_null(PGresult *res, int r, int c)
{
	if (PQgetisnull(res, r, c))
		return json_null();
	return json_string(PQgetvalue(res, r, c));
}

/*
 * Newest first; the WHERE clause only names the filters given, so each
 * shape gets a plan that uses its index.  A malformed user id matches
 * nothing.
 */
int
db_audit_list(const struct audit_query *q, json_t **entries)
{
	PGresult	*res = NULL;
	const char	*v[4];
	char		 sql[768], before[32], limit[32];
	char		 occurred[40];
	json_t		*arr = NULL, *o, *detail;
	size_t		 len;
	int		 n = 0, r, rc;

	*entries = NULL;
	if (q->user_id != NULL && !is_uuid(q->user_id)) {
		*entries = json_array();
		return DB_OK;
	}
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
	if (rc != DB_OK)
		goto out;
	arr = json_array();
	for (r = 0; r < PQntuples(res); r++) {
		rfc3339(occurred, strtoll(PQgetvalue(res, r, 1), NULL, 10));
		detail = json_loads(PQgetvalue(res, r, 9), JSON_DECODE_ANY,
		    NULL);
		o = json_object();
		json_object_set_new(o, "id",
		    json_integer(strtoll(PQgetvalue(res, r, 0), NULL, 10)));
		json_object_set_new(o, "occurredAt", json_string(occurred));
		json_object_set_new(o, "event", json_text_or_null(res, r, 2));
		json_object_set_new(o, "userId", json_text_or_null(res, r, 3));
		json_object_set_new(o, "email", json_text_or_null(res, r, 4));
		json_object_set_new(o, "sessionId",
		    json_text_or_null(res, r, 5));
		json_object_set_new(o, "ip", json_text_or_null(res, r, 6));
		json_object_set_new(o, "userAgent",
		    json_text_or_null(res, r, 7));
		json_object_set_new(o, "success",
		    json_boolean(PQgetvalue(res, r, 8)[0] == 't'));
		json_object_set_new(o, "detail",
		    detail != NULL ? detail : json_object());
		json_array_append_new(arr, o);
	}
	*entries = arr;
	arr = NULL;
out:
	json_decref(arr);
	PQclear(res);
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

	if (!is_uuid(id))
		return DB_NOTFOUND;
	if (audit_params(&ap, a, id, NULL) == -1)
		return DB_ERROR;
	v[0] = id;
	memcpy(v + 1, ap.v, sizeof(ap.v));
	rc = db_run(ST_USER_DELETE, NULL, 1 + AUDIT_NPARAMS, v, &res);
	if (rc == DB_OK && PQntuples(res) != 1)
		rc = DB_NOTFOUND;
	if (rc == DB_OK && ap.outbox)
		event_kick();
	audit_params_free(&ap);
	PQclear(res);
	return rc;
}

/* Outbox relay: one connection and one transaction per batch. */

static int
batch_exec(struct db_batch *b, enum stmt st, const char *sql, int n,
    const char *const *v, PGresult **res)
{
	long long	 deadline = mono_ms() + pool.timeout_ms;
	int		 rc;

	*res = NULL;
	if (b->failed || b->dc->pg == NULL)
		return DB_ERROR;
	rc = pg_exec(b->dc, deadline, st, sql, n, v, res);
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
	if ((b->dc = pool_get(mono_ms() + pool.timeout_ms)) == NULL) {
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
	char		 num[32];
	int		 rc;

	snprintf(num, sizeof(num), "%lld", id);
	v[0] = num;
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
	pool_put(b->dc, 0);
	free(b);
	return rc;
}

int
db_outbox_mark(long long id)
{
	PGresult	*res = NULL;
	const char	*v[1];
	char		 num[32];
	int		 rc;

	snprintf(num, sizeof(num), "%lld", id);
	v[0] = num;
	rc = db_run(ST_OUTBOX_DONE, NULL, 1, v, &res);
	PQclear(res);
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
db_outbox_pending(long long *count)
{
	PGresult	*res = NULL;
	int		 rc;

	*count = 0;
	rc = db_run(ST_OUTBOX_PENDING, NULL, 0, NULL, &res);
	if (rc == DB_OK && PQntuples(res) == 1)
		*count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rc;
}

/* Operator queries: the CLI and the metrics scrape. */

int
db_user_list(long limit, long offset, json_t **users)
{
	PGresult	*res = NULL;
	struct user	 u;
	const char	*v[2];
	char		 lim[32], off[32];
	json_t		*arr = NULL, *o;
	int		 r, rc;

	*users = NULL;
	snprintf(lim, sizeof(lim), "%ld", limit <= 0 ? 1 :
	    limit > DB_USER_LIST_MAX ? DB_USER_LIST_MAX : limit);
	snprintf(off, sizeof(off), "%ld", offset < 0 ? 0 : offset);
	v[0] = lim;
	v[1] = off;
	rc = db_run(ST_USER_LIST, NULL, 2, v, &res);
	if (rc != DB_OK)
		goto out;
	arr = json_array();
	for (r = 0; r < PQntuples(res); r++) {
		if (user_from_row(res, r, &u) == -1) {
			rc = DB_ERROR;
			goto out;
		}
		o = user_json(&u);
		json_object_set_new(o, "disabled", json_boolean(u.disabled));
		json_array_append_new(arr, o);
		user_free(&u);
	}
	*users = arr;
	arr = NULL;
out:
	json_decref(arr);
	PQclear(res);
	return rc;
}

int
db_user_set_disabled(const char *id, int disabled, const char *by,
    struct user *out)
{
	const char	*v[3];

	memset(out, 0, sizeof(*out));
	if (!is_uuid(id))
		return DB_NOTFOUND;
	v[0] = id;
	v[1] = disabled ? "t" : "f";
	v[2] = by != NULL ? by : "unknown";
	return user_stmt(ST_USER_SET_DISABLED, 3, v, out);
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
		if (!is_uuid(event_id))
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
	if (rc == DB_OK && PQntuples(res) == 1)
		*count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	else if (rc == DB_OK)
		rc = DB_ERROR;
	if (rc == DB_OK && *count == 0)
		rc = DB_NOTFOUND;
	else if (rc == DB_OK)
		event_kick();
	PQclear(res);
	return rc;
}

/*
 * The second factor.  Unnamed statements (run once per call, not
 * prepared): they are rare next to logins and refreshes.
 */
#define MFA_SQL_GET \
	"SELECT mfa_enabled, mfa_secret, mfa_pending FROM auth.users" \
	" WHERE id = $1::uuid"
#define MFA_SQL_PENDING \
	"UPDATE auth.users SET mfa_pending = $2, updated_at = now()" \
	" WHERE id = $1::uuid AND NOT mfa_enabled RETURNING 1"
#define MFA_SQL_ENABLE \
	"WITH u AS (" \
	" UPDATE auth.users SET mfa_secret = mfa_pending, mfa_pending = NULL," \
	" mfa_enabled = true, mfa_last_step = $3::bigint, updated_at = now()" \
	" WHERE id = $1::uuid AND NOT mfa_enabled AND mfa_pending = $2" \
	" RETURNING id)," \
	" d AS (DELETE FROM auth.mfa_recovery_codes" \
	" WHERE user_id IN (SELECT id FROM u))," \
	" c AS (INSERT INTO auth.mfa_recovery_codes (user_id, code_hash)" \
	" SELECT u.id, h FROM u, unnest($4::text[]) h)," \
	" a AS (" AUDIT_INSERT \
	" SELECT $5, $6::uuid, $7, $8::uuid, $9, $10, $11::boolean," \
	" coalesce($12::jsonb, '{}') FROM u WHERE $5::text IS NOT NULL)," \
	" o AS (" OUTBOX_INSERT \
	" SELECT $13::uuid, $14, $15::jsonb FROM u" \
	" WHERE $14::text IS NOT NULL RETURNING 1)" \
	" SELECT u.id::text, " NOTIFY_OUTBOX " FROM u"
#define MFA_SQL_USE_STEP \
	"UPDATE auth.users SET mfa_last_step = $2::bigint" \
	" WHERE id = $1::uuid AND mfa_enabled AND mfa_last_step < $2::bigint" \
	" RETURNING 1"
#define MFA_SQL_USE_RECOVERY \
	"UPDATE auth.mfa_recovery_codes SET used_at = now()" \
	" WHERE user_id = $1::uuid AND code_hash = $2 AND used_at IS NULL" \
	" RETURNING 1"
#define MFA_SQL_DISABLE \
	"WITH u AS (" \
	" UPDATE auth.users SET mfa_enabled = false, mfa_secret = NULL," \
	" mfa_pending = NULL, mfa_last_step = 0, updated_at = now()" \
	" WHERE id = $1::uuid AND mfa_enabled RETURNING id)," \
	" d AS (DELETE FROM auth.mfa_recovery_codes" \
	" WHERE user_id IN (SELECT id FROM u))," \
	" a AS (" AUDIT_INSERT \
	" SELECT $2, $3::uuid, $4, $5::uuid, $6, $7, $8::boolean," \
	" coalesce($9::jsonb, '{}') FROM u WHERE $2::text IS NOT NULL)," \
	" o AS (" OUTBOX_INSERT \
	" SELECT $10::uuid, $11, $12::jsonb FROM u" \
	" WHERE $11::text IS NOT NULL RETURNING 1)" \
	" SELECT u.id::text, " NOTIFY_OUTBOX " FROM u"

void
db_mfa_free(struct db_mfa *m)
{
	if (m == NULL)
		return;
	free(m->secret);
	free(m->pending);
	m->secret = m->pending = NULL;
}

int
db_mfa_get(const char *uid, struct db_mfa *out)
{
	PGresult	*res = NULL;
	int		 rc;

	memset(out, 0, sizeof(*out));
	if (!is_uuid(uid))
		return DB_NOTFOUND;
	rc = db_run(ST__MAX, MFA_SQL_GET, 1, &uid, &res);
	if (rc == DB_OK) {
		if (PQntuples(res) != 1)
			rc = DB_NOTFOUND;
		else {
			out->enabled = PQgetvalue(res, 0, 0)[0] == 't';
			if (!PQgetisnull(res, 0, 1))
				out->secret = xstrdup(PQgetvalue(res, 0, 1));
			if (!PQgetisnull(res, 0, 2))
				out->pending = xstrdup(PQgetvalue(res, 0, 2));
		}
	}
	PQclear(res);
	return rc;
}

/* Run an UPDATE ... RETURNING: DB_OK when it touched a row, else nf. */
static int
mfa_touch(const char *sql, int n, const char *const *v, int nf)
{
	PGresult	*res = NULL;
	int		 rc;

	rc = db_run(ST__MAX, sql, n, v, &res);
	if (rc == DB_OK && PQntuples(res) == 0)
		rc = nf;
	PQclear(res);
	return rc;
}

int
db_mfa_pending(const char *uid, const char *sealed)
{
	const char	*v[2] = { uid, sealed };

	if (!is_uuid(uid))
		return DB_NOTFOUND;
	return mfa_touch(MFA_SQL_PENDING, 2, v, DB_CONFLICT);
}

/* {"h1","h2",...}: hex needs no quoting in a PostgreSQL array literal. */
static char *
mfa_array(char hashes[][FA_HASH_HEX + 1], size_t n)
{
	char	*out, *p;
	size_t	 i;

	p = out = xmalloc(2 + n * (FA_HASH_HEX + 1) + 1);
	*p++ = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			*p++ = ',';
		memcpy(p, hashes[i], FA_HASH_HEX);
		p += FA_HASH_HEX;
	}
	*p++ = '}';
	*p = '\0';
	return out;
}

int
db_mfa_enable(const char *uid, const char *pending_hex, long long step,
    char hashes[][FA_HASH_HEX + 1], size_t n, const struct audit *a)
{
	struct audit_params	 ap;
	const char		*v[4 + AUDIT_NPARAMS];
	char			 sstep[24], *arr = NULL;
	size_t			 i;
	int			 rc;

	if (!is_uuid(uid) || pending_hex == NULL)
		return DB_NOTFOUND;
	for (i = 0; i < n; i++)
		if (strlen(hashes[i]) != FA_HASH_HEX)
			return DB_ERROR;
	if (audit_params(&ap, a, NULL, NULL) == -1)
		return DB_ERROR;
	snprintf(sstep, sizeof(sstep), "%lld", step);
	arr = mfa_array(hashes, n);
	v[0] = uid;
	v[1] = pending_hex;
	v[2] = sstep;
	v[3] = arr;
	memcpy(v + 4, ap.v, sizeof(ap.v));
	rc = mfa_touch(MFA_SQL_ENABLE, 4 + AUDIT_NPARAMS, v, DB_CONFLICT);
	if (rc == DB_OK && ap.outbox)
		event_kick();
	free(arr);
	audit_params_free(&ap);
	return rc;
}

int
db_mfa_use_step(const char *uid, long long step)
{
	const char	*v[2];
	char		 sstep[24];

	if (!is_uuid(uid))
		return DB_NOTFOUND;
	snprintf(sstep, sizeof(sstep), "%lld", step);
	v[0] = uid;
	v[1] = sstep;
	return mfa_touch(MFA_SQL_USE_STEP, 2, v, DB_NOTFOUND);
}

int
db_mfa_use_recovery(const char *uid, const char *hash)
{
	const char	*v[2] = { uid, hash };

	if (!is_uuid(uid) || hash == NULL)
		return DB_NOTFOUND;
	return mfa_touch(MFA_SQL_USE_RECOVERY, 2, v, DB_NOTFOUND);
}

int
db_mfa_disable(const char *uid, const struct audit *a)
{
	struct audit_params	 ap;
	const char		*v[1 + AUDIT_NPARAMS];
	int			 rc;

	if (!is_uuid(uid))
		return DB_NOTFOUND;
	if (audit_params(&ap, a, NULL, NULL) == -1)
		return DB_ERROR;
	v[0] = uid;
	memcpy(v + 1, ap.v, sizeof(ap.v));
	rc = mfa_touch(MFA_SQL_DISABLE, 1 + AUDIT_NPARAMS, v, DB_NOTFOUND);
	if (rc == DB_OK && ap.outbox)
		event_kick();
	audit_params_free(&ap);
	return rc;
}

/*
 * The account lifecycle: one-time tokens, the mail queue, deletion and the
 * audit prune.  Unnamed statements (ST__MAX): these run a few times per
 * account, not per request of the hot paths.
 */
#define ONCE_LIVE \
	"used_at IS NULL AND expires_at > now()"
#define ONCE_CONSUME \
	"WITH t AS (UPDATE auth.one_time_tokens SET used_at = now()" \
	" WHERE hash = $1 AND purpose = $2 AND " ONCE_LIVE \
	" RETURNING user_id, new_email)"
/* the audit/outbox CTEs of AUDIT_PARAMS at $3.., from the user row u */
#define ONCE_AUDIT \
	" a AS (" AUDIT_INSERT \
	" SELECT $3, $4::uuid, $5, $6::uuid, $7, $8, $9::boolean," \
	" coalesce($10::jsonb, '{}') FROM u WHERE $3::text IS NOT NULL)," \
	" o AS (" OUTBOX_INSERT \
	" SELECT $11::uuid, $12, $13::jsonb FROM u" \
	" WHERE $12::text IS NOT NULL RETURNING 1)" \
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
	    NOTIFY_OUTBOX ", (SELECT count(*) FROM r)";
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
	v[0] = is_uuid(q->user_id) ? q->user_id : NULL;
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
	    event_kind_name(q->ev) : NULL;
	snprintf(rid, sizeof(rid), "%lld", q->request_id);
	v[15] = rid;
	rc = db_run(ST__MAX, sql, 16, v, &res);
	if (rc == DB_OK && PQntuples(res) == 1) {
		if (!PQgetisnull(res, 0, 0))
			snprintf(uid, FA_UUID_LEN + 1, "%s",
			    PQgetvalue(res, 0, 0));
		if (strtoll(PQgetvalue(res, 0, 1), NULL, 10) > 0) {
			metrics_mail(METRICS_MAIL_QUEUED);
			mailer_kick();
		}
		if (strtoll(PQgetvalue(res, 0, 2), NULL, 10) > 0)
			event_kick();
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
	rc = db_run(ST__MAX, "INSERT INTO auth.mail_requests (request, message)"
	    " VALUES ($1::jsonb, $2)", 2, v, &res);
	if (rc == DB_OK)
		mailer_kick();
out:
	PQclear(res);
	free(req);
	json_decref(o);
	return rc;
}

int
db_mail_request_claim(long limit, long lease, json_t **rows)
{
	static const char sql[] =
	    "UPDATE auth.mail_requests SET next_attempt_at = now()"
	    " + make_interval(secs => $2::bigint) WHERE id IN (SELECT id"
	    " FROM auth.mail_requests WHERE next_attempt_at <= now()"
	    " ORDER BY id LIMIT $1::bigint FOR UPDATE SKIP LOCKED)"
	    " RETURNING id, request::text, message";
	PGresult	*res = NULL;
	const char	*v[2];
	char		 lim[32], ls[32];
	json_t		*arr, *req;
	int		 r, rc;

	*rows = NULL;
	snprintf(lim, sizeof(lim), "%ld", limit);
	snprintf(ls, sizeof(ls), "%ld", lease);
	v[0] = lim;
	v[1] = ls;
	rc = db_run(ST__MAX, sql, 2, v, &res);
	if (rc != DB_OK)
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
	if (audit_params(&ap, a, NULL, NULL) == -1)
		return DB_ERROR;
	v[0] = hash;
	v[1] = purpose;
	memcpy(v + 2, ap.v, sizeof(ap.v));
	v[2 + AUDIT_NPARAMS] = pwhash;
	rc = db_run(ST__MAX, sql, 3 + AUDIT_NPARAMS, v, &res);
	if (rc == DB_OK) {
		if (PQntuples(res) != 1)
			rc = DB_NOTFOUND;
		else if (ap.outbox)
			event_kick();
	}
	audit_params_free(&ap);
	PQclear(res);
	return rc;
}

int
db_mail_enqueue(const char *kind, const char *rcpt, const char *uid,
    const char *message)
{
	static const char sql[] =
	    "INSERT INTO auth.mail_queue (kind, rcpt, user_id, message)"
	    " VALUES ($1, $2, $3::uuid, $4)";
	PGresult	*res = NULL;
	const char	*v[4];
	int		 rc;

	v[0] = kind;
	v[1] = rcpt;
	v[2] = is_uuid(uid) ? uid : NULL;
	v[3] = message;
	rc = db_run(ST__MAX, sql, 4, v, &res);
	PQclear(res);
	if (rc == DB_OK) {
		metrics_mail(METRICS_MAIL_QUEUED);
		mailer_kick();
	}
	return rc;
}

int
db_mail_claim(long limit, long lease, json_t **rows)
{
	static const char sql[] =
	    "UPDATE auth.mail_queue SET next_attempt_at = now()"
	    " + make_interval(secs => $2::bigint) WHERE id IN (SELECT id"
	    " FROM auth.mail_queue WHERE state = 'pending'"
	    " AND next_attempt_at <= now() ORDER BY next_attempt_at, id"
	    " LIMIT $1::bigint FOR UPDATE SKIP LOCKED)"
	    " RETURNING id, kind, rcpt, message, attempts,"
	    " extract(epoch FROM now() - created_at)::float8";
	PGresult	*res = NULL;
	const char	*v[2];
	char		 lim[32], ls[32];
	json_t		*arr;
	int		 r, rc;

	*rows = NULL;
	snprintf(lim, sizeof(lim), "%ld", limit);
	snprintf(ls, sizeof(ls), "%ld", lease);
	v[0] = lim;
	v[1] = ls;
	rc = db_run(ST__MAX, sql, 2, v, &res);
	if (rc != DB_OK)
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

/* Run sql with one id (and more) parameters; the rows are not wanted. */
static int
mail_update(const char *sql, int n, const char *const *v)
{
	PGresult	*res = NULL;
	int		 rc;

	rc = db_run(ST__MAX, sql, n, v, &res);
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
	return mail_update("UPDATE auth.mail_queue SET state = 'sent',"
	    " sent_at = now(), attempts = attempts + 1, message = '',"
	    " last_error = NULL WHERE id = $1::bigint", 1, v);
}

int
db_mail_retry(long long id, long delay, const char *error)
{
	char		 ids[32], d[32], err[DB_MAIL_ERROR_MAX];
	const char	*v[3] = { ids, d, err };

	snprintf(ids, sizeof(ids), "%lld", id);
	snprintf(d, sizeof(d), "%ld", delay);
	text_clean(err, sizeof(err), error, strlen(error));
	return mail_update("UPDATE auth.mail_queue SET attempts = attempts + 1,"
	    " next_attempt_at = now() + make_interval(secs => $2::bigint),"
	    " last_error = $3 WHERE id = $1::bigint", 3, v);
}

int
db_mail_fail(long long id, const char *kind, const char *error)
{
	char		 ids[32], err[DB_MAIL_ERROR_MAX];
	const char	*v[3] = { ids, err, kind };

	snprintf(ids, sizeof(ids), "%lld", id);
	text_clean(err, sizeof(err), error, strlen(error));
	return mail_update("WITH m AS (UPDATE auth.mail_queue SET"
	    " state = 'failed', attempts = attempts + 1, message = '',"
	    " last_error = $2 WHERE id = $1::bigint RETURNING id, user_id)"
	    " " AUDIT_INSERT " SELECT 'mail.dropped', m.user_id, NULL, NULL,"
	    " NULL, NULL, false, jsonb_build_object('mailId', m.id,"
	    " 'kind', $3::text, 'error', $2::text) FROM m", 3, v);
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
	char		 d[32];
	int		 rc;

	*count = 0;
	snprintf(d, sizeof(d), "%ld", days);
	v[0] = d;
	rc = db_run(ST__MAX, sql, 1, v, &res);
	if (rc == DB_OK && PQntuples(res) == 1)
		*count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rc;
}
