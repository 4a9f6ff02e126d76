/*
 * store_pubsub.c: Redis pub/sub.  store_publish (events) goes through the
 * pool; the revocation subscriber (revoke.c's listener) and the RPC
 * responder (rpc.c) each have contexts of their own, outside the pool,
 * private to their thread.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>

#include "extern.h"
#include "store_int.h"

/*
 * PUBLISH channel msg, and with a stream also XADD stream MAXLEN ~ maxlen
 * * data msg, pipelined.  0 only when Redis took both.
 */
int
store_publish(const char *channel, const char *msg, const char *stream,
    long maxlen)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 smax[24];
	const char	*argv[8];
	size_t		 len[8];
	int		 i, argc, nsent = 1, rc = -1;

	if (channel == NULL || msg == NULL)
		return -1;
	if (store_pool_get(&op) == -1)
		return -1;
	if (store_op_timeout(&op) == -1)
		goto out;
	argv[0] = "PUBLISH";
	argv[1] = channel;
	argv[2] = msg;
	for (i = 0; i < 3; i++)
		len[i] = strlen(argv[i]);
	redisAppendCommandArgv(op.rc->c, 3, argv, len);
	if (stream != NULL && *stream != '\0') {
		argc = 0;
		argv[argc++] = "XADD";
		argv[argc++] = stream;
		if (maxlen > 0) {
			snprintf(smax, sizeof(smax), "%ld", maxlen);
			argv[argc++] = "MAXLEN";
			argv[argc++] = "~";
			argv[argc++] = smax;
		}
		argv[argc++] = "*";
		argv[argc++] = "data";
		argv[argc++] = msg;
		for (i = 0; i < argc; i++)
			len[i] = strlen(argv[i]);
		redisAppendCommandArgv(op.rc->c, argc, argv, len);
		nsent++;
	}
	rc = 0;
	for (i = 0; i < nsent; i++) {
		if (store_get_reply(op.rc, &r, "publish") == -1) {
			op.broken = 1;
			rc = -1;
			break;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			log_error(NULL, "redis: publish: %s", r->str);
			store_note_error(r->str);
			op.broken = 1;
			rc = -1;
		}
		freeReplyObject(r);
		r = NULL;
	}
out:
	store_pool_put(&op);
	return rc;
}

struct store_sub {
	redisContext	*c;
	char		 err[128];
};

/* SUBSCRIBE chan on c and check its confirmation: 0, or -1 and why in err. */
static int
ctx_subscribe(redisContext *c, const char *chan, char *err, size_t errsz)
{
	redisReply	*r;
	int		 rc = -1;

	if ((r = redisCommand(c, "SUBSCRIBE %s", chan)) == NULL) {
		snprintf(err, errsz, "SUBSCRIBE: %.96s", c->errstr);
		return -1;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(r->element[0]->str, "subscribe") != 0)
		snprintf(err, errsz, "SUBSCRIBE: %.96s",
		    r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
	else
		rc = 0;
	freeReplyObject(r);
	return rc;
}

/*
 * Subscribe to the revocation channel on a connection of its own, waiting
 * for Redis to confirm: every revocation published from then on arrives
 * through store_sub_read.  0, or -1 with the reason in *sub's error (*sub
 * is set either way; store_sub_close frees it).
 */
int
store_sub_open(struct store_sub **out)
{
	struct store_sub	*sub;

	sub = *out = xcalloc(1, sizeof(*sub));
	if ((sub->c = store_ctx_open(sub->err,
	    sizeof(sub->err))) == NULL)
		return -1;
	return ctx_subscribe(sub->c, store_pool.chan, sub->err,
	    sizeof(sub->err));
}

/* PING on a subscribed connection; its answer comes with the messages. */
static int
sub_ping(redisContext *c, char *err, size_t errsz)
{
	int	 done = 0;

	if (c == NULL || redisAppendCommand(c, "PING") != REDIS_OK)
		goto fail;
	while (!done)
		if (redisBufferWrite(c, &done) != REDIS_OK)
			goto fail;
	return 0;
fail:
	snprintf(err, errsz, "PING: %.96s", c != NULL ? c->errstr :
	    "not connected");
	return -1;
}

/* The next reply already read from c into *r (NULL: none yet); -1 broken. */
static int
sub_next(redisContext *c, void **r, char *err, size_t errsz)
{
	*r = NULL;
	if (redisGetReplyFromReader(c, r) != REDIS_OK) {
		snprintf(err, errsz, "read: %.96s", c->errstr);
		return -1;
	}
	return 0;
}

/* Wait up to timeout_ms for bytes on c and read them: 1 read, 0 none. */
static int
sub_fill(redisContext *c, long timeout_ms, char *err, size_t errsz)
{
	struct pollfd	 pfd;
	int		 n;

	pfd.fd = c->fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	n = poll(&pfd, 1, timeout_ms > 0 ? (int)timeout_ms : 0);
	if (n == 0 || (n == -1 && errno == EINTR))
		return 0;
	if (n == -1) {
		snprintf(err, errsz, "poll: %s", strerror(errno));
		return -1;
	}
	if (redisBufferRead(c) != REDIS_OK) {
		snprintf(err, errsz, "read: %.96s", c->errstr);
		return -1;
	}
	return 1;
}

/* PING on the subscribed connection; its answer comes to store_sub_read. */
int
store_sub_ping(struct store_sub *sub)
{
	return sub_ping(sub->c, sub->err, sizeof(sub->err));
}

/* One reply on the subscribed connection to fn; -1 to resubscribe. */
static int
sub_reply(struct store_sub *sub, redisReply *r, store_rev_fn fn, void *arg)
{
	struct revocation	 rev;
	redisReply		*kind;

	if (r->type == REDIS_REPLY_STATUS && strcasecmp(r->str, "PONG") == 0)
		return fn(arg, NULL);
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
	    (kind = r->element[0])->type != REDIS_REPLY_STRING)
		goto bad;
	if (strcmp(kind->str, "pong") == 0)
		return fn(arg, NULL);
	if (strcmp(kind->str, "message") != 0 || r->elements != 3 ||
	    r->element[2]->type != REDIS_REPLY_STRING)
		goto bad;
	if (store_revocation_parse(r->element[2]->str, r->element[2]->len,
	    &rev) == -1) {
		/* a revocation we cannot read is one we would miss */
		snprintf(sub->err, sizeof(sub->err), "unreadable message");
		return -1;
	}
	return fn(arg, &rev);
bad:
	snprintf(sub->err, sizeof(sub->err), "unexpected reply");
	return -1;
}

/*
 * Hand what has arrived to fn: each published revocation, and NULL for
 * each answer to a PING.  Waits up to timeout_ms when nothing is buffered.
 * 0, or -1 when the subscription is lost (EOF, error, unreadable message,
 * or fn returned -1).
 */
int
store_sub_read(struct store_sub *sub, long timeout_ms, store_rev_fn fn,
    void *arg)
{
	void	*r;
	int	 n, waited = 0;

	if (sub->c == NULL)
		return -1;
	for (;;) {
		if (sub_next(sub->c, &r, sub->err, sizeof(sub->err)) == -1)
			return -1;
		if (r != NULL) {
			n = sub_reply(sub, r, fn, arg);
			freeReplyObject(r);
			if (n == -1)
				return -1;
			waited = 1;	/* deliver what came, then return */
			continue;
		}
		if (waited)
			return 0;
		if ((n = sub_fill(sub->c, timeout_ms, sub->err,
		    sizeof(sub->err))) <= 0)
			return n;
		waited = 1;
	}
}

const char *
store_sub_error(const struct store_sub *sub)
{
	return sub != NULL && sub->err[0] != '\0' ? sub->err : "unknown";
}

void
store_sub_close(struct store_sub *sub)
{
	if (sub == NULL)
		return;
	if (sub->c != NULL)
		redisFree(sub->c);
	free(sub);
}

/*
 * The RPC responder's connections (rpc.c): sub is subscribed to the request
 * channel, cmd claims requests and publishes replies.  Both are private to
 * the responder thread.
 */
struct store_rpc {
	redisContext	*sub;
	redisContext	*cmd;
	char		 err[128];
};

int
store_rpc_open(struct store_rpc **out, const char *channel)
{
	struct store_rpc	*rpc;

	rpc = *out = xcalloc(1, sizeof(*rpc));
	if ((rpc->cmd = store_ctx_open(rpc->err,
	    sizeof(rpc->err))) == NULL ||
	    (rpc->sub = store_ctx_open(rpc->err,
	    sizeof(rpc->err))) == NULL)
		return -1;
	return ctx_subscribe(rpc->sub, channel, rpc->err, sizeof(rpc->err));
}

int
store_rpc_ping(struct store_rpc *rpc)
{
	return sub_ping(rpc->sub, rpc->err, sizeof(rpc->err));
}

/* One reply on the subscribed connection to fn; -1 to resubscribe. */
static int
rpc_reply(struct store_rpc *rpc, redisReply *r, store_msg_fn fn, void *arg)
{
	redisReply	*kind;

	if (r->type == REDIS_REPLY_STATUS && strcasecmp(r->str, "PONG") == 0)
		return fn(arg, NULL, 0);
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
	    (kind = r->element[0])->type != REDIS_REPLY_STRING)
		goto bad;
	if (strcmp(kind->str, "pong") == 0)
		return fn(arg, NULL, 0);
	if (strcmp(kind->str, "message") != 0 || r->elements != 3 ||
	    r->element[2]->type != REDIS_REPLY_STRING)
		goto bad;
	return fn(arg, r->element[2]->str, r->element[2]->len);
bad:
	snprintf(rpc->err, sizeof(rpc->err), "unexpected reply");
	return -1;
}

/*
 * Up to max messages to fn, waiting up to timeout_ms when none is
 * buffered; what is left stays buffered for the next call.  The number
 * handed over, or -1 when the subscription is lost.
 */
int
store_rpc_read(struct store_rpc *rpc, long timeout_ms, size_t max,
    store_msg_fn fn, void *arg)
{
	void	*r;
	size_t	 got = 0;
	int	 n, waited = 0;

	if (rpc->sub == NULL)
		return -1;
	while (got < max) {
		if (sub_next(rpc->sub, &r, rpc->err, sizeof(rpc->err)) == -1)
			return -1;
		if (r != NULL) {
			n = rpc_reply(rpc, r, fn, arg);
			freeReplyObject(r);
			if (n == -1)
				return -1;
			got++;
			continue;
		}
		if (waited || got > 0)
			break;
		if ((n = sub_fill(rpc->sub, timeout_ms, rpc->err,
		    sizeof(rpc->err))) == -1)
			return -1;
		if (n == 0)
			break;
		waited = 1;
	}
	return (int)got;
}

/* n pipelined commands on cmd, built by the caller; replies to fn. */
static int
rpc_pipeline(struct store_rpc *rpc, size_t n, const char *what,
    int (*check)(const redisReply *, size_t, void *), void *arg)
{
	redisReply	*r;
	size_t		 i;
	int		 rc = 0;

	for (i = 0; i < n; i++) {
		r = NULL;
		if (redisGetReply(rpc->cmd, (void **)&r) != REDIS_OK ||
		    r == NULL) {
			snprintf(rpc->err, sizeof(rpc->err), "%s: %.96s", what,
			    rpc->cmd->errstr);
			return -1;	/* the context is unusable now */
		}
		if (r->type == REDIS_REPLY_ERROR) {
			snprintf(rpc->err, sizeof(rpc->err), "%s: %.96s", what,
			    r->str);
			store_note_error(r->str);
			rc = -1;
		} else if (check != NULL && check(r, i, arg) == -1)
			rc = -1;
		freeReplyObject(r);
	}
	return rc;
}

static int
rpc_claimed(const redisReply *r, size_t i, void *arg)
{
	int	*won = arg;

	won[i] = r->type == REDIS_REPLY_STATUS;	/* OK; nil: taken */
	return 0;
}

int
store_rpc_claim(struct store_rpc *rpc, const char *const *keys, size_t n,
    long ttl, int *won)
{
	char	 sttl[24];
	size_t	 i;

	if (rpc->cmd == NULL)
		return -1;
	snprintf(sttl, sizeof(sttl), "%ld", ttl);
	for (i = 0; i < n; i++) {
		won[i] = 0;
		redisAppendCommand(rpc->cmd, "SET %s 1 NX EX %s", keys[i],
		    sttl);
	}
	return rpc_pipeline(rpc, n, "SET NX", rpc_claimed, won);
}

int
store_rpc_publish(struct store_rpc *rpc, const char *channel,
    char *const *msgs, size_t n)
{
	size_t	 i;

	if (rpc->cmd == NULL)
		return -1;
	for (i = 0; i < n; i++)
		redisAppendCommand(rpc->cmd, "PUBLISH %s %s", channel, msgs[i]);
	return rpc_pipeline(rpc, n, "PUBLISH", NULL, NULL);
}

const char *
store_rpc_error(const struct store_rpc *rpc)
{
	return rpc != NULL && rpc->err[0] != '\0' ? rpc->err : "unknown";
}

void
store_rpc_close(struct store_rpc *rpc)
{
	if (rpc == NULL)
		return;
	if (rpc->sub != NULL)
		redisFree(rpc->sub);
	if (rpc->cmd != NULL)
		redisFree(rpc->cmd);
	free(rpc);
}
