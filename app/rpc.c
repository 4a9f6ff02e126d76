/*
 * rpc.c: auth.validate_token over the NestJS Redis transport, so a NestJS
 * service's ClientProxy.send('auth.validate_token', { token }) is answered
 * by fcgi-auth unchanged (API.md "Service-to-service").
 *
 * The wire format is @nestjs/microservices' (client-redis.js,
 * server-redis.js): the client PUBLISHes JSON.stringify({pattern, data,
 * id}) on the pattern's channel and listens on "<pattern>.reply" for
 * {id, response, isDisposed: true} (err instead of response fails the
 * call).  A message without an id is an event and gets no answer.
 *
 * One thread of its own, with two Redis connections of its own (store.c):
 * a flood of requests costs this thread and Redis, never a FastCGI worker
 * or the pool.  It reads at most RPC_BATCH_MAX requests per round, claims
 * them with SET fa:rpc:<id> NX EX RPC_CLAIM_TTL in one pipeline (with
 * several instances only the winner answers: exactly one reply per id),
 * checks each token as /auth/verify does (auth_check_token: signature,
 * claims, then the revocation cache or Redis), and publishes the answers
 * in a second pipeline.  The connections are checked with a PING; when one
 * fails the thread reconnects with a doubling backoff, as revoke.c does.
 * Requests published while it is away are lost, as with any pub/sub
 * subscriber: the NestJS client times out.
 *
 * rpc_enabled and rpc_validate_pattern are live.  The thread runs from
 * start; between reads it compares the generation number, and when a
 * reload changed either key it drops the subscription and subscribes to
 * the new channel (replies on the new ".reply"), or idles while off.  A
 * batch holds its generation (RELOAD_SLOT_RPC) while it checks tokens and
 * publishes, so a reload never frees the keys under an answer.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "extern.h"

/* One round's requests, claimed, checked and answered together. */
struct rpc_batch {
	struct rpc_req	 req[RPC_BATCH_MAX];
	json_t		*root[RPC_BATCH_MAX];	/* owns req[i].token */
	char		*key[RPC_BATCH_MAX];	/* fa:rpc:<id> */
	char		*msg[RPC_BATCH_MAX];	/* the replies */
	int		 won[RPC_BATCH_MAX];
	long long	 t0[RPC_BATCH_MAX];	/* us, when read */
	size_t		 n;
	long long	 ping_sent;	/* mono ms of the PING out, or 0 */
};

static struct {
	pthread_t	 thread;
	int		 started;
	atomic_int	 stop;
	/* responder thread only, once started */
	int		 enabled;
	char		*channel;
	char		*reply;
	unsigned long	 gen;		/* the generation they were read from */
	/* drop logging, responder thread only */
	long long	 log_at;
	unsigned long	 unlogged;
} rp;

json_t *
rpc_answer(const struct claims *c)
{
	if (c == NULL)
		return json_pack("{s:b}", "valid", 0);
	return json_pack("{s:b, s:s, s:s, s:o, s:s, s:I, s:i}", "valid", 1,
	    "userId", c->sub, "email", c->email,
	    "roles", roles_json(c->roles), "sessionId", c->sid,
	    "exp", (json_int_t)c->exp, "aal", c->aal);
}

/* A dropped request: one log line per RPC_LOG_EVERY_MS, with a count. */
static void
rpc_dropped(const char *why)
{
	long long	 now = mono_ms();

	metrics_rpc_drop();
	if (rp.log_at != 0 && now - rp.log_at < RPC_LOG_EVERY_MS) {
		rp.unlogged++;
		return;
	}
	log_warn(NULL, "rpc: request dropped: %s (%lu more dropped since "
	    "the last line)", why, rp.unlogged);
	rp.log_at = now;
	rp.unlogged = 0;
}

static void
batch_clear(struct rpc_batch *b)
{
	size_t	 i;

	for (i = 0; i < b->n; i++) {
		json_decref(b->root[i]);
		free(b->key[i]);
		free(b->msg[i]);
		b->root[i] = NULL;
		b->key[i] = b->msg[i] = NULL;
	}
	b->n = 0;
}

/* From the subscription: a request, or NULL for the PONG. */
static int
on_message(void *arg, const char *msg, size_t len)
{
	struct rpc_batch	*b = arg;
	const char		*why;
	size_t			 i = b->n;

	if (msg == NULL) {
		b->ping_sent = 0;
		return 0;
	}
	metrics_rpc_request();
	if (i >= RPC_BATCH_MAX) {	/* store_rpc_read hands at most that */
		rpc_dropped("batch full");
		return 0;
	}
	if (rpc_parse(msg, len, &b->req[i], &b->root[i], &why) == RPC_DROP) {
		rpc_dropped(why);
		return 0;
	}
	b->t0[i] = now_us();
	xasprintf(&b->key[i], RPC_CLAIM_PREFIX "%s", b->req[i].id);
	b->n++;
	return 0;
}

/* The reply envelope for request i: its id, then the answer. */
static void
batch_answer(struct rpc_batch *b, size_t i)
{
	struct claims	 c;
	json_t		*ans = NULL;
	char		*text;
	int		 rc = 1;

	if (b->req[i].token != NULL)
		rc = auth_check_token(b->req[i].token, b->req[i].toklen, &c);
	if (rc == -1) {
		/* could not check: the caller's call fails, never "valid" */
		xasprintf(&b->msg[i], "{\"id\":%s,\"err\":\"unavailable\","
		    "\"isDisposed\":true}", b->req[i].id);
		sodium_memzero(&c, sizeof(c));
		return;
	}
	ans = rpc_answer(rc == 0 ? &c : NULL);
	if ((text = json_dumps(ans, JSON_COMPACT)) == NULL)
		abort();	/* out of memory, as xmalloc does */
	xasprintf(&b->msg[i], "{\"id\":%s,\"response\":%s,"
	    "\"isDisposed\":true}", b->req[i].id, text);
	free(text);
	json_decref(ans);
	sodium_memzero(&c, sizeof(c));
}

/* Claim, check and answer what was read; -1 when Redis failed. */
static int
batch_run(struct store_rpc *conn, struct rpc_batch *b)
{
	char		*out[RPC_BATCH_MAX];
	long long	 t;
	size_t		 i, n = 0;

	int		 rc;

	if (store_rpc_claim(conn, (const char *const *)b->key, b->n,
	    RPC_CLAIM_TTL, b->won) == -1)
		return -1;
	reload_hold(RELOAD_SLOT_RPC);
	for (i = 0; i < b->n; i++)
		if (b->won[i]) {
			batch_answer(b, i);
			out[n++] = b->msg[i];
		}
	rc = n == 0 ? 0 : store_rpc_publish(conn, rp.reply, out, n);
	reload_release(RELOAD_SLOT_RPC);
	if (n == 0 || rc == -1)
		return rc;
	t = now_us();
	for (i = 0; i < b->n; i++)
		if (b->won[i])
			metrics_rpc_answer((long)(t - b->t0[i]));
	return 0;
}

/*
 * Take rpc_enabled and rpc_validate_pattern from the current generation
 * when it is not the one they came from; 1 when either changed.
 */
static int
rpc_settings(void)
{
	const struct config	*c;
	unsigned long		 g = reload_generation();
	int			 changed;

	if (rp.channel != NULL && g == rp.gen)
		return 0;
	reload_hold(RELOAD_SLOT_RPC);
	c = cfg;
	changed = rp.channel == NULL || c->rpc_enabled != rp.enabled ||
	    strcmp(c->rpc_validate_pattern, rp.channel) != 0;
	if (changed) {
		free(rp.channel);
		free(rp.reply);
		rp.enabled = c->rpc_enabled;
		rp.channel = xstrdup(c->rpc_validate_pattern);
		xasprintf(&rp.reply, "%s" RPC_REPLY_SUFFIX, rp.channel);
		if (!rp.enabled)
			log_info(NULL, "rpc: rpc_enabled is off; not answering");
	}
	reload_release(RELOAD_SLOT_RPC);
	rp.gen = g;
	return changed;
}

/* Serve one connection until it fails or we stop: returns the reason. */
static const char *
rpc_serve(struct store_rpc *conn, struct rpc_batch *b)
{
	long long	 now, last_ping = mono_ms();

	b->ping_sent = 0;
	while (!atomic_load(&rp.stop)) {
		if (rpc_settings())
			return NULL;	/* a reload changed the channel */
		now = mono_ms();
		if (b->ping_sent == 0 && now - last_ping >= RPC_PING_MS) {
			if (store_rpc_ping(conn) == -1)
				return store_rpc_error(conn);
			b->ping_sent = last_ping = now;
		} else if (b->ping_sent != 0 &&
		    now - b->ping_sent > RPC_DEAD_MS)
			return "no answer to PING";
		if (store_rpc_read(conn, RPC_POLL_MS, RPC_BATCH_MAX,
		    on_message, b) == -1)
			return store_rpc_error(conn);
		if (b->n > 0 && batch_run(conn, b) == -1) {
			batch_clear(b);
			return store_rpc_error(conn);
		}
		batch_clear(b);
	}
	return "stopping";
}

static void
rpc_sleep(long ms)
{
	struct timespec	 ts;
	long		 step;

	while (ms > 0 && !atomic_load(&rp.stop)) {
		step = ms < RPC_POLL_MS ? ms : RPC_POLL_MS;
		ts.tv_sec = 0;
		ts.tv_nsec = step * 1000000L;
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static void *
rpc_main(void *arg)
{
	struct rpc_batch	*b;
	struct store_rpc	*conn = NULL;
	const char		*why;
	char			 err[160];
	long			 backoff = RPC_BACKOFF_MIN_MS;
	int			 quiet = 0;

	(void)arg;
	/* the workers come first: a flood here must not slow /verify */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
	    RPC_NICE) == -1)
		log_debug(NULL, "rpc: cannot lower the thread's priority");
	b = xcalloc(1, sizeof(*b));
	while (!atomic_load(&rp.stop)) {
		(void)rpc_settings();
		if (!rp.enabled) {
			rpc_sleep(RPC_POLL_MS);
			continue;
		}
		why = "";
		if (store_rpc_open(&conn, rp.channel) == -1)
			snprintf(err, sizeof(err), "%s",
			    store_rpc_error(conn));
		else {
			log_info(NULL, "rpc: answering %s on %s", rp.channel,
			    rp.reply);
			quiet = 0;
			backoff = RPC_BACKOFF_MIN_MS;
			if ((why = rpc_serve(conn, b)) != NULL)
				snprintf(err, sizeof(err), "%s", why);
		}
		store_rpc_close(conn);
		conn = NULL;
		if (atomic_load(&rp.stop))
			break;
		if (why == NULL)
			continue;	/* reconfigured: subscribe again now */
		if (!quiet)
			log_warn(NULL, "rpc: connection lost (%s); "
			    "reconnecting", err);
		else
			log_debug(NULL, "rpc: reconnect: %s", err);
		quiet = 1;
		rpc_sleep(backoff);
		backoff = backoff * 2 > RPC_BACKOFF_MAX_MS ?
		    RPC_BACKOFF_MAX_MS : backoff * 2;
	}
	batch_clear(b);
	free(b);
	return NULL;
}

/*
 * Start the responder (store_init and revoke_init first), also with
 * rpc_enabled off: a reload may turn it on.
 */
int
rpc_init(void)
{
	if (rp.started)
		return 0;
	atomic_store(&rp.stop, 0);
	if (pthread_create(&rp.thread, NULL, rpc_main, NULL) != 0) {
		log_error(NULL, "rpc: cannot start the responder");
		return -1;
	}
	rp.started = 1;
	return 0;
}

void
rpc_shutdown(void)
{
	if (!rp.started)
		return;
	atomic_store(&rp.stop, 1);
	pthread_join(rp.thread, NULL);
	rp.started = 0;
	free(rp.channel);
	free(rp.reply);
	rp.channel = rp.reply = NULL;
}
