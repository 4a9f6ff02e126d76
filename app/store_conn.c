/*
 * store_conn.c: the Redis backend's connections.  The pool's contexts are
 * made here (connect, AUTH, SELECT, ROLE and SCRIPT LOAD in one round
 * trip), and so are the contexts outside the pool (subscriber, RPC
 * responder, revocation loader) and doctor's probe.  With redis_sentinels
 * set, each goes to the master the sentinels name (sentinel.c).
 */
#include "config.h"

#include <sys/time.h>

#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "extern.h"
#include "store_int.h"

/*
 * Connect to the master: the sentinels' answer with redis_sentinels, else
 * redis_host (a unix socket path when it starts with '/') and redis_port.
 * NULL if the sentinels name none or no time is left; otherwise hiredis'
 * context (check err).
 */
static redisContext *
store_connect(long long deadline)
{
	char		 host[SENTINEL_HOST_MAX];
	long long	 left;
	int		 port;

	if (store_pool.cfg != NULL) {
		if (sentinel_master(store_pool.cfg, deadline, host,
		    sizeof(host), &port) == -1 ||
		    (left = deadline - mono_ms()) <= 0)
			return NULL;
		return redisConnectWithTimeout(host, port, ms_tv(left));
	}
	if ((left = deadline - mono_ms()) <= 0)
		return NULL;
	if (store_pool.host[0] == '/')
		return redisConnectUnixWithTimeout(store_pool.host,
		    ms_tv(left));
	return redisConnectWithTimeout(store_pool.host, store_pool.port,
	    ms_tv(left));
}

void
store_conn_drop(struct rconn *rc)
{
	if (rc->c != NULL)
		redisFree(rc->c);
	rc->c = NULL;
	rc->tmo_ms = 0;
	memset(rc->sha, 0, sizeof(rc->sha));
}

/*
 * Read one pipelined reply; 0 with a non-error reply in *out, -1 otherwise
 * (the reply freed; a context error marks the connection broken).
 */
int
store_get_reply(struct rconn *rc, redisReply **out, const char *what)
{
	void	*r = NULL;

	*out = NULL;
	if (redisGetReply(rc->c, &r) != REDIS_OK || r == NULL) {
		store_note_down(what, rc->c->errstr);
		return -1;
	}
	*out = r;
	return 0;
}

/* 1 if r is ROLE's answer of a master. */
static int
reply_master(const redisReply *r)
{
	return r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "master") == 0;
}

/*
 * Connect, authenticate, select, check ROLE and load the scripts, all
 * before the deadline: the commands are pipelined, one round trip.
 */
int
store_conn_open(struct rconn *rc, long long deadline)
{
	redisReply	*r = NULL;
	char		 dbnum[24];
	long long	 left;
	int		 i, role, nsent = 0, rcv = 0, ok = 1;

	if ((left = deadline - mono_ms()) <= 0) {
		store_note_down("connect", "no time left");
		return -1;
	}
	pthread_mutex_lock(&store_pool.mu);
	rc->epoch = store_pool.epoch;
	pthread_mutex_unlock(&store_pool.mu);
	rc->c = store_connect(deadline);
	if (rc->c == NULL || rc->c->err) {
		store_note_down("connect", rc->c ? rc->c->errstr :
		    store_pool.cfg != NULL ?
		    "no master from the sentinels in time" : "no time left");
		goto fail;
	}
	if ((left = deadline - mono_ms()) <= 0 ||
	    redisSetTimeout(rc->c, ms_tv(left)) != REDIS_OK) {
		store_note_down("connect", "timed out");
		goto fail;
	}
	rc->tmo_ms = (long)left;
	if (store_pool.password != NULL) {
		redisAppendCommand(rc->c, "AUTH %s", store_pool.password);
		nsent++;
	}
	if (store_pool.db != 0) {
		snprintf(dbnum, sizeof(dbnum), "%ld", store_pool.db);
		redisAppendCommand(rc->c, "SELECT %s", dbnum);
		nsent++;
	}
	/* only a master takes our writes: a sentinel's stale answer, a
	   replica at redis_host or a failover under way are refused here */
	role = nsent++;
	redisAppendCommand(rc->c, "ROLE");
	for (i = 0; i < SC__MAX; i++)
		redisAppendCommand(rc->c, "SCRIPT LOAD %s", store_scripts[i]);
	for (i = 0; i < nsent + SC__MAX; i++, rcv++) {
		if (store_get_reply(rc, &r, "connect") == -1)
			goto fail;
		if (r->type == REDIS_REPLY_ERROR) {
			/* the text of AUTH errors holds no secret */
			log_error(NULL, "redis: setup: %s", r->str);
			store_note_error(r->str);
			ok = 0;
		} else if (i == role) {
			if (!reply_master(r)) {
				store_note_down("connect", "the server is no "
				    "master (ROLE)");
				ok = 0;
			}
		} else if (i >= nsent) {
			if (r->type != REDIS_REPLY_STRING ||
			    r->len != SHA_HEX) {
				log_error(NULL, "redis: SCRIPT LOAD: bad reply");
				ok = 0;
			} else
				memcpy(rc->sha[i - nsent], r->str, SHA_HEX + 1);
		}
		freeReplyObject(r);
		r = NULL;
	}
	if (!ok)
		goto fail;
	store_note_up();
	return 0;
fail:
	store_conn_drop(rc);
	return -1;
}

/* Idle contexts have nothing to read: readable means closed by Redis. */
int
store_conn_stale(struct rconn *rc)
{
	struct pollfd	 p;

	if (rc->c->err)
		return 1;
	p.fd = rc->c->fd;
	p.events = POLLIN;
	p.revents = 0;
	return poll(&p, 1, 0) != 0;
}

/*
 * A context outside the pool: connected, authenticated and on the
 * configured database within the backend timeout, which is then its socket
 * timeout.  NULL with the reason in err.
 */
redisContext *
store_ctx_open(char *err, size_t errsz)
{
	redisContext	*c = NULL;
	redisReply	*r;
	char		 dbnum[24];
	int		 i, nsent = 0;

	if (store_pool.host == NULL) {
		snprintf(err, errsz, "store not initialised");
		return NULL;
	}
	c = store_connect(mono_ms() + store_pool.timeout_ms);
	if (c == NULL || c->err) {
		snprintf(err, errsz, "connect: %.96s",
		    c != NULL ? c->errstr : store_pool.cfg != NULL ?
		    "no master from the sentinels in time" : "no time left");
		goto fail;
	}
	if (redisSetTimeout(c, ms_tv(store_pool.timeout_ms)) != REDIS_OK) {
		snprintf(err, errsz, "connect: cannot set the timeout");
		goto fail;
	}
	if (store_pool.password != NULL) {
		redisAppendCommand(c, "AUTH %s", store_pool.password);
		nsent++;
	}
	if (store_pool.db != 0) {
		snprintf(dbnum, sizeof(dbnum), "%ld", store_pool.db);
		redisAppendCommand(c, "SELECT %s", dbnum);
		nsent++;
	}
	for (i = 0; i < nsent; i++) {
		r = NULL;
		if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
			snprintf(err, errsz, "setup: %.96s", c->errstr);
			goto fail;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			/* the text of AUTH errors holds no secret */
			snprintf(err, errsz, "setup: %s", r->str);
			freeReplyObject(r);
			goto fail;
		}
		freeReplyObject(r);
	}
	return c;
fail:
	if (c != NULL)
		redisFree(c);
	return NULL;
}

/* One command on a probe's context: 0, or -1 with the answer in err. */
static int
probe_cmd(redisContext *c, char *err, size_t errsz, const char *fmt, ...)
{
	redisReply	*r;
	va_list		 ap;
	int		 rc = -1;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (r == NULL)
		snprintf(err, errsz, "%s", c->errstr);
	else if (r->type == REDIS_REPLY_ERROR)
		snprintf(err, errsz, "%s", r->str);
	else
		rc = 0;
	freeReplyObject(r);
	return rc;
}

int
store_probe(const struct config *c, const char *host, int port, char *err,
    size_t errsz)
{
	redisContext	*rc;
	char		 why[256];
	int		 ret = -1;

	if (host[0] == '/')
		rc = redisConnectUnixWithTimeout(host,
		    ms_tv(c->backend_timeout_ms));
	else
		rc = redisConnectWithTimeout(host, port,
		    ms_tv(c->backend_timeout_ms));
	if (rc == NULL || rc->err) {
		snprintf(err, errsz, "cannot connect: %s", rc != NULL ?
		    rc->errstr : "out of memory");
		goto out;
	}
	(void)redisSetTimeout(rc, ms_tv(c->backend_timeout_ms));
	if (c->redis_password[0] != '\0' && probe_cmd(rc, why, sizeof(why),
	    "AUTH %s", c->redis_password) == -1) {
		snprintf(err, errsz, "AUTH: %s", why);
		goto out;
	}
	if (probe_cmd(rc, err, errsz, "SELECT %ld", c->redis_db) == -1 ||
	    probe_cmd(rc, err, errsz, "PING") == -1)
		goto out;
	ret = 0;
out:
	if (rc != NULL)
		redisFree(rc);
	return ret;
}
