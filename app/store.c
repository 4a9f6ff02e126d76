/*
 * store.c: the Redis backend's store_pool.  A pool of hiredis contexts made
 * on first borrow (the slots: connpool.c; AUTH, SELECT, ROLE and SCRIPT
 * LOAD pipelined in one round trip), every wait bounded by one deadline of
 * backend_timeout_ms so a stopped or unreachable Redis is -1 (503) in about
 * a second, never a hang.  A context that failed, timed out or got an error
 * reply is dropped and re-made by the next borrow.  The domains
 * (store_session.c, store_revoke.c, store_rate.c, store_mfa.c,
 * store_pubsub.c) borrow a context, run their commands or scripts
 * (store_script.c) through store_op_*, and put it back; the keys are listed
 * in store_int.h.
 *
 * Every revocation is published in the script that makes it (pub/sub does
 * not see databases: the channel is STORE_REVOKE_CHANNEL ":<db>"), and
 * handed at once to the hook revoke.c registers (store_on_revoke).
 *
 * With redis_sentinels set, every connection (pool, subscriber, loader) is
 * made to the master the sentinels name (sentinel.c), and every pool
 * connection checks ROLE before use.  A READONLY or MASTERDOWN reply, or a
 * failover announced by the sentinels (store_failover), moves the pool to a
 * new epoch, so every context made before is dropped on its next borrow and
 * the next connect asks the sentinels again.  Connection errors drop their
 * context as always, so they rediscover too.  A revocation is acknowledged
 * only if no failover was announced while it was written and, with
 * redis_revoke_replicas, once WAIT says that many replicas have it: a
 * logout answered 204 is never undone by a failover's resync.
 *
 * Every wait of a request meets the request's one deadline (deadline_at): a
 * frozen Redis costs a request one backend_timeout_ms, not one per call.
 * Tokens and refresh hashes are never logged.
 */
#include "config.h"

#include <sys/time.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "extern.h"
#include "store_int.h"

struct store_pool store_pool = { .mu = PTHREAD_MUTEX_INITIALIZER };

static atomic_ullong	 store_errors;	/* store_stats */

/* The revocation hook (store_on_revoke): set once, read under hook.mu. */
static struct {
	pthread_mutex_t	 mu;
	store_note_fn	 fn;
	void		*arg;
} hook = { .mu = PTHREAD_MUTEX_INITIALIZER };

void
store_note_down(const char *what, const char *msg)
{
	int	 was;

	pthread_mutex_lock(&store_pool.mu);
	was = store_pool.down;
	store_pool.down = 1;
	pthread_mutex_unlock(&store_pool.mu);
	atomic_fetch_add_explicit(&store_errors, 1, memory_order_relaxed);
	if (!was)
		log_error(NULL, "redis: %s: %s", what, msg ? msg : "");
	else
		log_debug(NULL, "redis: %s: %s", what, msg ? msg : "");
}

void
store_note_up(void)
{
	int	 was;

	pthread_mutex_lock(&store_pool.mu);
	was = store_pool.down;
	store_pool.down = 0;
	pthread_mutex_unlock(&store_pool.mu);
	if (was)
		log_info(NULL, "redis: connected again");
}

/*
 * An error reply that says the server is no master (after a failover):
 * every context of the pool is then dropped on its next borrow.
 */
void
store_note_error(const char *err)
{
	if (err == NULL || (strncmp(err, "READONLY", 8) != 0 &&
	    strncmp(err, "MASTERDOWN", 10) != 0))
		return;
	pthread_mutex_lock(&store_pool.mu);
	store_pool.epoch++;
	pthread_mutex_unlock(&store_pool.mu);
	log_warn(NULL, "redis: the server is no master any more; "
	    "reconnecting%s", store_pool.cfg != NULL ?
	    " through the sentinels" : "");
}

void
store_failover(const char *why)
{
	pthread_mutex_lock(&store_pool.mu);
	store_pool.epoch++;
	pthread_mutex_unlock(&store_pool.mu);
	log_warn(NULL, "redis: failover (%s); reconnecting through the "
	    "sentinels", why);
}

/* TTL of revocation markers: an access token's life and then some. */
long
store_revoke_ttl(long access_ttl)
{
	return (access_ttl > 0 ? access_ttl : 1) + store_pool.leeway +
	    STORE_REVOKE_SLACK;
}

int
store_init(const struct config *c)
{
	if (store_pool.slot != NULL)
		return 0;
	store_pool.n = c->redis_pool > 0 ? (size_t)c->redis_pool : 1;
	store_pool.slot = xcalloc(store_pool.n, sizeof(*store_pool.slot));
	connpool_init(&store_pool.cp, store_pool.n);
	store_pool.timeout_ms = c->backend_timeout_ms > 0 ?
	    c->backend_timeout_ms : 1;
	store_pool.leeway = c->jwt_leeway > 0 ? c->jwt_leeway : 0;
	store_pool.access_ttl = c->access_ttl;
	store_pool.host = xstrdup(c->redis_host ? c->redis_host : "127.0.0.1");
	store_pool.port = (int)c->redis_port;
	store_pool.password = c->redis_password != NULL && *c->redis_password ?
	    xstrdup(c->redis_password) : NULL;
	store_pool.db = c->redis_db;
	store_pool.ack_replicas = c->redis_revoke_replicas;
	snprintf(store_pool.chan, sizeof(store_pool.chan), "%s:%ld",
	    STORE_REVOKE_CHANNEL, store_pool.db);
	/* the config outlives the pool (main.c keeps it to exit) */
	store_pool.cfg = c->redis_sentinels != NULL &&
	    *c->redis_sentinels != '\0' ? c : NULL;
	return 0;
}

void
store_shutdown(void)
{
	size_t	 i;

	if (store_pool.slot == NULL)
		return;
	for (i = 0; i < store_pool.n; i++)
		if (store_pool.slot[i].c != NULL)
			redisFree(store_pool.slot[i].c);
	free(store_pool.slot);
	store_pool.slot = NULL;
	store_pool.n = 0;
	free(store_pool.host);
	store_pool.host = NULL;
	if (store_pool.password != NULL)
		explicit_bzero(store_pool.password,
		    strlen(store_pool.password));
	free(store_pool.password);
	store_pool.password = NULL;
	connpool_destroy(&store_pool.cp);
}

/*
 * Borrow a ready context before the request's deadline (deadline_at):
 * 0, or -1 (unavailable, or the deadline passed already).
 */
int
store_pool_get(struct rop *op)
{
	struct rconn	*rc;
	size_t		 i;
	int		 live, stale;

	op->rc = NULL;
	op->broken = 0;
	op->deadline = deadline_at(store_pool.timeout_ms);
	if (store_pool.slot == NULL)
		return -1;
	if (op->deadline - mono_ms() <= 0) {
		log_debug(NULL, "redis: the request's deadline passed");
		return -1;
	}
	if (connpool_get(&store_pool.cp, op->deadline, &i, &live) == -1) {
		log_warn(NULL, "redis: no free connection in time");
		return -1;
	}
	rc = &store_pool.slot[i];
	/* made before a failover or a READONLY: the old master's */
	pthread_mutex_lock(&store_pool.mu);
	stale = rc->c != NULL && rc->epoch != store_pool.epoch;
	pthread_mutex_unlock(&store_pool.mu);
	if (rc->c != NULL && (stale || store_conn_stale(rc)))
		store_conn_drop(rc);
	if (rc->c == NULL && store_conn_open(rc, op->deadline) == -1) {
		connpool_put(&store_pool.cp, i, 0);
		return -1;
	}
	op->rc = rc;
	return 0;
}

void
store_pool_put(struct rop *op)
{
	if (op->rc == NULL)
		return;
	if (op->broken || (op->rc->c != NULL && op->rc->c->err))
		store_conn_drop(op->rc);
	connpool_put(&store_pool.cp, (size_t)(op->rc - store_pool.slot),
	    op->rc->c != NULL);
	op->rc = NULL;
}

/*
 * Bound the next command by the deadline: the socket timeout is the full
 * backend timeout unless less is left (a wait or a connect used some).
 */
int
store_op_timeout(struct rop *op)
{
	long long	 left = op->deadline - mono_ms();
	long		 want;

	if (left <= 0) {
		store_note_down("command", "no time left");
		return -1;
	}
	want = left >= store_pool.timeout_ms - STORE_TIMEOUT_SLACK_MS ?
	    store_pool.timeout_ms : (long)left;
	if (want != op->rc->tmo_ms) {
		if (redisSetTimeout(op->rc->c, ms_tv(want)) != REDIS_OK) {
			op->broken = 1;
			return -1;
		}
		op->rc->tmo_ms = want;
	}
	return 0;
}

/*
 * One command: 0 with the reply in *out (caller frees; never an error
 * reply), or -1 with nothing to free.  Any failure drops the context.
 */
int
store_op_cmd(struct rop *op, int argc, const char **argv, const size_t *len,
    redisReply **out, const char *what)
{
	redisReply	*r;

	*out = NULL;
	if (store_op_timeout(op) == -1)
		return -1;
	r = redisCommandArgv(op->rc->c, argc, argv, len);
	if (r == NULL) {
		store_note_down(what, op->rc->c->errstr);
		op->broken = 1;
		return -1;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		log_error(NULL, "redis: %s: %s", what, r->str);
		store_note_error(r->str);
		freeReplyObject(r);
		op->broken = 1;
		return -1;
	}
	*out = r;
	return 0;
}

/* Reload every script on this context (after NOSCRIPT: Redis restarted). */
static int
op_reload(struct rop *op)
{
	redisReply	*r;
	const char	*argv[3];
	size_t		 len[3];
	int		 i;

	for (i = 0; i < SC__MAX; i++) {
		argv[0] = "SCRIPT";
		argv[1] = "LOAD";
		argv[2] = store_scripts[i];
		len[0] = 6;
		len[1] = 4;
		len[2] = strlen(store_scripts[i]);
		if (store_op_cmd(op, 3, argv, len, &r, "SCRIPT LOAD") == -1)
			return -1;
		if (r->type != REDIS_REPLY_STRING || r->len != SHA_HEX) {
			freeReplyObject(r);
			op->broken = 1;
			return -1;
		}
		memcpy(op->rc->sha[i], r->str, SHA_HEX + 1);
		freeReplyObject(r);
	}
	return 0;
}

/*
 * EVALSHA script with nkeys keys and nargs arguments (lengths by strlen),
 * once more after reloading the scripts if Redis answers NOSCRIPT.
 */
int
store_op_evalv(struct rop *op, enum script sc, int nkeys, const char **keys,
    int nargs, const char **args, redisReply **out)
{
	redisReply	*r;
	const char	*argv[ARGV_MAX];
	size_t		 len[ARGV_MAX];
	char		 nk[12];
	int		 i, argc, try;

	*out = NULL;
	if (nkeys < 0 || nargs < 0 || nkeys + nargs + 3 > ARGV_MAX)
		return -1;
	snprintf(nk, sizeof(nk), "%d", nkeys);
	for (try = 0; try < 2; try++) {
		argc = 0;
		argv[argc++] = "EVALSHA";
		argv[argc++] = op->rc->sha[sc];
		argv[argc++] = nk;
		for (i = 0; i < nkeys; i++)
			argv[argc++] = keys[i];
		for (i = 0; i < nargs; i++)
			argv[argc++] = args[i];
		for (i = 0; i < argc; i++)
			len[i] = strlen(argv[i]);
		if (store_op_timeout(op) == -1)
			return -1;
		r = redisCommandArgv(op->rc->c, argc, argv, len);
		if (r == NULL) {
			store_note_down("EVALSHA", op->rc->c->errstr);
			op->broken = 1;
			return -1;
		}
		if (r->type != REDIS_REPLY_ERROR) {
			*out = r;
			return 0;
		}
		if (try == 0 && strncmp(r->str, "NOSCRIPT", 8) == 0) {
			freeReplyObject(r);
			if (op_reload(op) == -1)
				return -1;
			continue;
		}
		log_error(NULL, "redis: script %d: %s", (int)sc, r->str);
		store_note_error(r->str);
		freeReplyObject(r);
		op->broken = 1;
		return -1;
	}
	return -1;
}

/* EVALSHA script with one key (the session and revocation scripts). */
int
store_op_eval(struct rop *op, enum script sc, const char *key, int nargs,
    const char **args, redisReply **out)
{
	return store_op_evalv(op, sc, 1, &key, nargs, args, out);
}

int
store_reply_int(const redisReply *r, long long *v)
{
	if (r->type == REDIS_REPLY_INTEGER) {
		*v = r->integer;
		return 0;
	}
	if (r->type == REDIS_REPLY_STRING)
		return num_parse(r->str, LLONG_MIN, LLONG_MAX, v);
	return -1;
}

/*
 * Whether a revocation just written may be acknowledged (0) or must be
 * answered 503 (-1).  With redis_revoke_replicas, WAIT until that many
 * replicas have it, within the deadline: a write taken by a master that a
 * failover is replacing reaches no replica and would be lost on resync.
 * And no failover may have been announced since this context was made.
 */
int
store_op_ack(struct rop *op)
{
	redisReply	*r = NULL;
	char		 n[24], ms[24];
	const char	*argv[3];
	size_t		 len[3];
	long long	 left, got = 0;
	unsigned	 epoch;

	if (store_pool.ack_replicas > 0) {
		left = op->deadline - mono_ms() - STORE_TIMEOUT_SLACK_MS;
		argv[0] = "WAIT";
		argv[1] = n;
		argv[2] = ms;
		len[0] = 4;
		len[1] = (size_t)snprintf(n, sizeof(n), "%ld",
		    store_pool.ack_replicas);
		/* WAIT 0 would block for ever */
		len[2] = (size_t)snprintf(ms, sizeof(ms), "%lld",
		    left > 0 ? left : 1);
		if (store_op_cmd(op, 3, argv, len, &r, "WAIT") == -1)
			return -1;
		if (store_reply_int(r, &got) == -1 ||
		    got < store_pool.ack_replicas) {
			log_warn(NULL, "redis: a revocation reached %lld of "
			    "%ld replicas in time: not acknowledged", got,
			    store_pool.ack_replicas);
			freeReplyObject(r);
			return -1;
		}
		freeReplyObject(r);
	}
	pthread_mutex_lock(&store_pool.mu);
	epoch = store_pool.epoch;
	pthread_mutex_unlock(&store_pool.mu);
	if (epoch != op->rc->epoch) {
		log_warn(NULL, "redis: failover during a revocation: not "
		    "acknowledged");
		op->broken = 1;
		return -1;
	}
	return 0;
}

int
store_ping(void)
{
	struct rop	 op;
	redisReply	*r = NULL;
	const char	*argv[1] = { "PING" };
	size_t		 len[1] = { 4 };
	int		 rc = -1;

	if (store_pool_get(&op) == -1)
		return -1;
	if (store_op_cmd(&op, 1, argv, len, &r, "PING") == 0)
		rc = 0;
	freeReplyObject(r);
	store_pool_put(&op);
	return rc;
}

void
store_stats(struct store_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->errors = atomic_load_explicit(&store_errors, memory_order_relaxed);
}

void
store_on_revoke(store_note_fn fn, void *arg)
{
	pthread_mutex_lock(&hook.mu);
	hook.fn = fn;
	hook.arg = arg;
	pthread_mutex_unlock(&hook.mu);
}

void
store_note_revoked(enum revoke_kind kind, const char *uid, const char *key,
    long long value, long ttl_s)
{
	struct revocation	 r;
	store_note_fn		 fn;
	void			*arg;

	if (uid == NULL || key == NULL || strlen(uid) > FA_UUID_LEN ||
	    strlen(key) > FA_UUID_LEN || (kind == REVOKE_CUTOFF && value <= 0))
		return;
	pthread_mutex_lock(&hook.mu);
	fn = hook.fn;
	arg = hook.arg;
	pthread_mutex_unlock(&hook.mu);
	if (fn == NULL)
		return;
	memset(&r, 0, sizeof(r));
	r.kind = kind;
	memcpy(r.uid, uid, strlen(uid));
	memcpy(r.key, key, strlen(key));
	r.value = value;
	r.ttl_ms = (long long)(ttl_s > 0 ? ttl_s : 1) * 1000;
	fn(&r, arg);
}
