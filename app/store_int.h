/*
 * store_int.h: private to the Redis backend (store*.c), as hiredis keeps
 * async_private.h.  The keys, every one with a TTL; every key of a user
 * carries the hash tag {<user id>}, so a user's scripts run in one slot:
 *
 *   fa:{U}:sess:<sid>	hash: created last ip ua cur par rot enc aal
 *   fa:{U}:sessions	zset: sid by created ms
 *   fa:{U}:used:<sid>	set: refresh hashes rotated away (reuse detection);
 *			kept as long as the srev marker once the session is
 *			revoked, so late replays still read as reuse
 *   fa:{U}:srev:<sid>	revoked session: its access tokens are dead
 *   fa:{U}:cutoff	the user's revocation generation: access tokens whose
 *			gen claim is lower are dead
 *   fa:{U}:bl:<jti>	blacklisted access token
 *   fa:rl:<key>		fixed-window rate counter; the counters that one
 *			password guess reserves share the hash tag {lf}
 *   fa:mfa:<hash>	hash: uid ip ua wrong; a pending second step (an
 *			mfaToken, by its keyed hash)
 *
 * Reply ownership: each redisReply is freed once, by the function that
 * received it, on every path.
 */
#ifndef FA_STORE_INT_H
#define FA_STORE_INT_H

#include <pthread.h>

#include <hiredis/hiredis.h>

#define SHA_HEX		40
#define ARGV_MAX	16

/* store_script.c: the Lua scripts, loaded on every new context. */
enum script {
	SC_CREATE,
	SC_ROTATE,
	SC_REVOKE,
	SC_REVOKE_REFRESH,
	SC_REVOKE_ALL,
	SC_CUTOFF,
	SC_LIST,
	SC_BLACKLIST,
	SC_RATE_HIT,
	SC_RATE_RESERVE,
	SC_RATE_RELEASE,
	SC_MFA_CREATE,
	SC_MFA_WRONG,
	SC__MAX
};

extern const char *const store_scripts[SC__MAX];

/* store.c: the pool and one operation on it. */
struct rconn {
	redisContext	*c;
	unsigned	 epoch;		/* store_pool.epoch when connected */
	long		 tmo_ms;	/* socket timeout now set */
	char		 sha[SC__MAX][SHA_HEX + 1];
};

/* One operation: a borrowed context and the deadline it must meet. */
struct rop {
	struct rconn	*rc;
	long long	 deadline;
	int		 broken;
};

/*
 * Settings written by store_init before any other use; mu guards down and
 * epoch.  The slots are connpool.c's: slot[i] belongs to whoever borrowed
 * slot i from cp.
 */
struct store_pool {
	pthread_mutex_t	 mu;
	struct connpool	 cp;
	struct rconn	*slot;
	size_t		 n;
	long		 timeout_ms;
	long		 leeway;
	long		 access_ttl;
	char		*host;
	int		 port;
	char		*password;
	long		 db;
	char		 chan[STORE_KEY_MAX];	/* the revocation channel */
	int		 down;		/* logged as down; under mu */
	const struct config *cfg;	/* with redis_sentinels, else NULL */
	unsigned	 epoch;		/* raised by READONLY or a failover;
					   under mu */
	long		 ack_replicas;	/* redis_revoke_replicas */
};
extern struct store_pool store_pool;

/* Borrow a ready context before the request's deadline: 0 or -1. */
int		 store_pool_get(struct rop *);
void		 store_pool_put(struct rop *);
/* Bound the next command by the deadline: 0, or -1 (no time left). */
int		 store_op_timeout(struct rop *);
/* One command: 0 with a reply that is no error (caller frees), or -1. */
int		 store_op_cmd(struct rop *, int argc, const char **argv,
		    const size_t *len, redisReply **out, const char *what);
/* EVALSHA, reloading the scripts once on NOSCRIPT; as store_op_cmd. */
int		 store_op_evalv(struct rop *, enum script, int nkeys,
		    const char **keys, int nargs, const char **args,
		    redisReply **out);
int		 store_op_eval(struct rop *, enum script, const char *key,
		    int nargs, const char **args, redisReply **out);
/* A revocation just written may be acknowledged (0) or is a 503 (-1). */
int		 store_op_ack(struct rop *);
/* One pipelined reply: 0 with a reply (perhaps an error one), or -1. */
int		 store_get_reply(struct rconn *, redisReply **out,
		    const char *what);
int		 store_reply_int(const redisReply *, long long *);
/* Logged once while Redis is down; counted in store_stats. */
void		 store_note_down(const char *what, const char *msg);
void		 store_note_up(void);
/* READONLY or MASTERDOWN: the pool moves to a new epoch. */
void		 store_note_error(const char *err);
/* TTL of revocation markers: an access token's life and then some. */
long		 store_revoke_ttl(long access_ttl);
/* This process's own revocation, handed to store_on_revoke's hook. */
void		 store_note_revoked(enum revoke_kind, const char *uid,
		    const char *key, long long value, long ttl_s);

/*
 * The frame of one pooled operation.  store_op_begin borrows a context and
 * runs script sc on key (acknowledged as a revocation when ack): 0 with
 * the reply in *r, to be ended by store_op_end, or -1 with nothing held.
 * store_op_end frees the reply, gives the context back and returns rc.
 */
static inline int
store_op_begin(struct rop *op, enum script sc, const char *key, int nargs,
    const char **args, int ack, redisReply **r)
{
	*r = NULL;
	if (store_pool_get(op) == -1)
		return -1;
	if (store_op_eval(op, sc, key, nargs, args, r) == -1 ||
	    (ack && store_op_ack(op) == -1)) {
		freeReplyObject(*r);
		*r = NULL;
		store_pool_put(op);
		return -1;
	}
	return 0;
}

static inline int
store_op_end(struct rop *op, redisReply *r, int rc)
{
	freeReplyObject(r);
	store_pool_put(op);
	return rc;
}

/* An integer reply: 0, or -1 with the context marked broken. */
static inline int
store_op_int(struct rop *op, const redisReply *r, long long *v)
{
	if (store_reply_int(r, v) == -1) {
		op->broken = 1;
		return -1;
	}
	return 0;
}

/* store_conn.c: connections. */
void		 store_conn_drop(struct rconn *);
/* Connect, authenticate, select, check ROLE, load the scripts: 0 or -1. */
int		 store_conn_open(struct rconn *, long long deadline);
/* An idle context that Redis closed (or that failed): 1, else 0. */
int		 store_conn_stale(struct rconn *);
/*
 * A context outside the pool (subscriber, RPC, loader): connected,
 * authenticated and on the configured database within backend_timeout_ms;
 * NULL with the reason in err.
 */
redisContext	*store_ctx_open(char *err, size_t errsz);

/* store_parse.c: pure, no I/O. */
/* Ids that go into keys: [A-Za-z0-9_-], 1..FA_UUID_LEN bytes. */
int		 store_id_ok(const char *);
/* A revocation key -> *out (ttl_ms and value left to the caller); 0 or -1. */
int		 store_revocation_key(const char *key, size_t len,
		    struct revocation *out);

#endif /* FA_STORE_INT_H */
