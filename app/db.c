/*
 * db.c: the PostgreSQL backend's core.  A small pool of libpq connections
 * made on first borrow (the slots: connpool.c), prepared statements made
 * lazily per connection from the registry below, and every wait (pool,
 * connect, query) bounded by the request's one deadline of
 * backend_timeout_ms (deadline_at, shared with store.c) so a stopped or
 * unreachable server turns into DB_ERROR (503) in about a second, never a
 * hang.  A connection that failed or timed out is dropped and re-made by
 * the next borrow, so the service recovers by itself.
 *
 * The domains live in db_user.c, db_audit.c, db_outbox.c, db_mail.c,
 * db_mfa.c and db_listen.c.  Writes commit the change, its audit row and
 * its outbox row in one statement (data-modifying CTEs), so one round trip
 * and one implicit transaction; the outbox row NOTIFYs fa_outbox, which the
 * relay LISTENs to.  SQL text and server messages are logged here and never
 * leave the backend.  The backend calls no module above it: what it counts
 * is read through db_stats.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "extern.h"
#include "db_int.h"

static struct {
	struct connpool	 cp;		/* which slot a thread may use */
	struct db_conn	*slot;		/* the connections, by slot */
	size_t		 n;
	long		 timeout_ms;
	char		*conninfo;
	char		 options[128];
	char		 connect_timeout[24];
	pthread_mutex_t	 mu;
	int		 down;		/* logged as down; under mu */
	/* db_stats: counted here, read by metrics.c */
	_Atomic unsigned long long errors;
	_Atomic unsigned long long mail_queued;
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
void
db_note_down(const char *what, const char *msg)
{
	char	 line[DB_LOG_LINE];
	int	 was;

	pthread_mutex_lock(&pool.mu);
	was = pool.down;
	pool.down = 1;
	pthread_mutex_unlock(&pool.mu);
	pool.errors++;
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
db_wait_fd(int fd, short events, long long deadline)
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

	if (pool.slot != NULL)
		return 0;
	pool.n = c->db_pool > 0 ? (size_t)c->db_pool : 1;
	connpool_init(&pool.cp, pool.n);
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
	connpool_destroy(&pool.cp);
}

long
db_timeout_ms(void)
{
	return pool.timeout_ms;
}

void
db_stats(struct db_stats *s)
{
	s->errors = pool.errors;
	s->mail_queued = pool.mail_queued;
}

void
db_count_mail_queued(void)
{
	pool.mail_queued++;
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
		if (db_wait_fd(PQsocket(pg), ev, deadline) == -1) {
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

void
db_conn_drop(struct db_conn *dc)
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
struct db_conn *
db_pool_get(long long deadline)
{
	struct db_conn	*dc;
	size_t		 i;
	int		 live;

	if (pool.slot == NULL)
		return NULL;
	/* the request's deadline has passed: fail before borrowing */
	if (deadline - mono_ms() <= 0) {
		log_debug(NULL, "postgresql: the request's deadline passed");
		return NULL;
	}
	if (connpool_get(&pool.cp, deadline, &i, &live) == -1) {
		log_warn(NULL, "postgresql: no free connection in time");
		return NULL;
	}
	dc = &pool.slot[i];
	if (dc->pg != NULL && conn_stale(dc))
		db_conn_drop(dc);
	if (dc->pg == NULL && (dc->pg = db_connect(deadline)) == NULL) {
		connpool_put(&pool.cp, i, 0);
		return NULL;
	}
	return dc;
}

/* Return a connection; dropped unless healthy and outside a transaction. */
void
db_pool_put(struct db_conn *dc)
{
	if (dc->pg != NULL && (PQstatus(dc->pg) != CONNECTION_OK ||
	    PQtransactionStatus(dc->pg) != PQTRANS_IDLE))
		db_conn_drop(dc);
	connpool_put(&pool.cp, (size_t)(dc - pool.slot), dc->pg != NULL);
}

/*
 * Flush what was sent before the deadline: 0, DB_WAIT_TIMEOUT or
 * DB_WAIT_BROKEN.
 */
static int
db_flush(PGconn *pg, long long deadline)
{
	int	 f;

	while ((f = PQflush(pg)) == 1) {
		if (db_wait_fd(PQsocket(pg), POLLOUT | POLLIN, deadline) == -1)
			return DB_WAIT_TIMEOUT;
		if (!PQconsumeInput(pg))
			return DB_WAIT_BROKEN;
	}
	return f == 0 ? 0 : DB_WAIT_BROKEN;
}

/* Wait until a result can be read without blocking: 0 or DB_WAIT_*. */
static int
db_ready(PGconn *pg, long long deadline)
{
	while (PQisBusy(pg)) {
		if (db_wait_fd(PQsocket(pg), POLLIN, deadline) == -1)
			return DB_WAIT_TIMEOUT;
		if (!PQconsumeInput(pg))
			return DB_WAIT_BROKEN;
	}
	return 0;
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
	int		 w;

	*res = NULL;
	if ((w = db_flush(pg, deadline)) != 0)
		goto fail;
	for (;;) {
		if ((w = db_ready(pg, deadline)) != 0)
			goto fail;
		if ((r = PQgetResult(pg)) == NULL)
			break;
		if (keep != NULL && PQresultStatus(keep) == PGRES_FATAL_ERROR)
			PQclear(r);
		else {
			PQclear(keep);
			keep = r;
		}
	}
	if (keep != NULL) {
		*res = keep;
		return 0;
	}
	w = DB_WAIT_BROKEN;
fail:
	PQclear(keep);
	db_note_down("query", w == DB_WAIT_TIMEOUT ? "timed out" :
	    PQerrorMessage(pg));
	return -1;
}

/*
 * Run a statement: st a prepared one (made on this connection if need be),
 * or st == ST__MAX with sql run as an unnamed statement.  On DB_OK *res
 * holds the tuples or command result (caller clears).  A failed connection
 * is dropped right here.
 */
int
db_exec(struct db_conn *dc, long long deadline, enum stmt st, const char *sql,
    int n, const char *const *v, PGresult **res)
{
	PGresult	*r = NULL;
	const char	*state;
	const char	*name = st < ST__MAX ? db_stmts[st].name : "query";
	char		 line[DB_LOG_LINE];
	ExecStatusType	 es;
	int		 rc = DB_ERROR;

	*res = NULL;
	dc->sent = 0;
	dc->state[0] = '\0';
	if (st < ST__MAX && !(dc->prepared & (1u << st))) {
		if (!PQsendPrepare(dc->pg, db_stmts[st].name, db_stmts[st].sql,
		    db_stmts[st].nparams, NULL)) {
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
		if (!PQsendQueryPrepared(dc->pg, db_stmts[st].name, n, v,
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
	db_conn_drop(dc);
out:
	PQclear(r);
	return rc;
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
int
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
		if ((dc = db_pool_get(deadline)) == NULL)
			return DB_ERROR;
		rc = db_exec(dc, deadline, st, sql, n, v, res);
		/* 57P01 admin_shutdown and the like: the server is leaving */
		lost = dc->pg == NULL || PQstatus(dc->pg) != CONNECTION_OK ||
		    strncmp(dc->state, "57P", 3) == 0;
		readonly = strcmp(dc->state, SQLSTATE_READ_ONLY) == 0;
		unsure = lost && dc->sent;
		if (lost || readonly)
			db_conn_drop(dc);
		db_pool_put(dc);
		if (rc != DB_ERROR || try > 0 || !(lost || readonly))
			return rc;
		if (unsure && !db_stmt_idempotent(st) && !ambiguous_ok)
			return rc;
		if (deadline - mono_ms() <= 0)
			return rc;
		if (unsure && ambiguous != NULL)
			*ambiguous = 1;
		log_warn(NULL, "postgresql: %s: %s; once more on a new "
		    "connection", st < ST__MAX ? db_stmts[st].name : "query",
		    readonly ? "read-only server" : "connection lost");
	}
}

/* Borrow, run one statement, return the connection. */
int
db_run(enum stmt st, const char *sql, int n, const char *const *v,
    PGresult **res)
{
	return db_run_retry(st, sql, n, v, res, 0, NULL);
}

int
db_is_uuid(const char *s)
{
	unsigned char	 raw[16];

	if (s == NULL || strlen(s) != FA_UUID_LEN)
		return 0;
	return uuid_parse(raw, s, FA_UUID_LEN) == 0;
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
 * Run sql (unnamed) for its effect: DB_OK when it returned a row or nf is
 * DB_OK, else nf (an UPDATE ... RETURNING that touched nothing).
 */
int
db_touch(const char *sql, int n, const char *const *v, int nf)
{
	PGresult	*res = NULL;
	int		 rc;

	rc = db_run(ST__MAX, sql, n, v, &res);
	if (rc == DB_OK && PQntuples(res) == 0)
		rc = nf;
	PQclear(res);
	return rc;
}

/*
 * The listener: a connection of its own, outside the pool, that LISTENs to
 * channels and wakes its one waiting thread on a NOTIFY, or when another
 * thread calls db_listen_wake (through a pipe, so a wake-up between two
 * waits is not lost).  The connection is made, and made again after it
 * broke, by db_listen_wait.
 */
struct db_listen {
	const char *const *channels;
	struct db_conn	 dc;
	int		 wake[2];	/* pipe: [0] polled, [1] written */
};

struct db_listen *
db_listen_open(const char *const *channels)
{
	struct db_listen	*l;

	l = xcalloc(1, sizeof(*l));
	l->channels = channels;
	if (pipe(l->wake) == -1) {
		log_error(NULL, "postgresql: listener: pipe: %s",
		    strerror(errno));
		free(l);
		return NULL;
	}
	(void)fcntl(l->wake[0], F_SETFL, O_NONBLOCK);
	(void)fcntl(l->wake[1], F_SETFL, O_NONBLOCK);
	return l;
}

/* Connect and LISTEN: 0, or -1 (the connection is dropped). */
static int
db_listen_connect(struct db_listen *l)
{
	PGresult	*res = NULL;
	long long	 deadline = mono_ms() + pool.timeout_ms;
	char		 sql[DB_LISTEN_SQL_MAX];
	size_t		 i;

	if (pool.slot == NULL || (l->dc.pg = db_connect(deadline)) == NULL)
		return -1;
	for (i = 0; l->channels[i] != NULL; i++) {
		/* our own constants; quoted all the same */
		if ((size_t)snprintf(sql, sizeof(sql), "LISTEN \"%s\"",
		    l->channels[i]) >= sizeof(sql) ||
		    db_exec(&l->dc, deadline, ST__MAX, sql, 0, NULL,
		    &res) != DB_OK) {
			db_conn_drop(&l->dc);
			return -1;
		}
		PQclear(res);
		res = NULL;
	}
	return 0;
}

/* Take what the server sent: 1 if a notification came, 0 if none. */
static int
db_listen_take(struct db_listen *l)
{
	PGnotify	*n;
	int		 got = 0;

	if (!PQconsumeInput(l->dc.pg) || PQstatus(l->dc.pg) != CONNECTION_OK) {
		db_note_down("listen", PQerrorMessage(l->dc.pg));
		db_conn_drop(&l->dc);
		return 0;
	}
	while ((n = PQnotifies(l->dc.pg)) != NULL) {
		got = 1;
		PQfreemem(n);
	}
	return got;
}

int
db_listen_wait(struct db_listen *l, long timeout_ms)
{
	struct pollfd	 p[2];
	long long	 end = mono_ms() + timeout_ms;
	char		 buf[64];
	int		 np = 1, r, got = 0;

	if (l->dc.pg == NULL && db_listen_connect(l) == 0)
		return 1;	/* rows may have come before the LISTEN */
	if (l->dc.pg != NULL && db_listen_take(l))
		return 1;	/* came in with an earlier reply */
	p[0].fd = l->wake[0];
	p[0].events = POLLIN;
	if (l->dc.pg != NULL) {
		p[1].fd = PQsocket(l->dc.pg);
		p[1].events = POLLIN;
		np = 2;
	}
	for (;;) {
		p[0].revents = p[1].revents = 0;
		r = poll(p, (nfds_t)np, end - mono_ms() > 0 ?
		    (int)(end - mono_ms()) : 0);
		if (r >= 0 || errno != EINTR)
			break;
	}
	if (r > 0 && p[0].revents != 0) {
		while (read(l->wake[0], buf, sizeof(buf)) > 0)
			;
		got = 1;
	}
	if (r > 0 && np == 2 && p[1].revents != 0)
		got |= db_listen_take(l);
	return got;
}

void
db_listen_wake(struct db_listen *l)
{
	if (l != NULL && write(l->wake[1], "", 1) == -1) {
		/* full: the waiter is woken already */
	}
}

void
db_listen_close(struct db_listen *l)
{
	if (l == NULL)
		return;
	if (l->dc.pg != NULL)
		PQfinish(l->dc.pg);
	close(l->wake[0]);
	close(l->wake[1]);
	free(l);
}
