/*
 * store.h: the Redis backend (store*.c), included at the end of extern.h.
 * store.c: the pool, failover epoch and scripts by EVALSHA (the Lua in
 * store_script.c); store_conn.c: every connection, doctor's probe too;
 * store_session.c, store_revoke.c, store_rate.c, store_mfa.c: one domain
 * each; store_pubsub.c: publish, the revocation subscriber and the RPC
 * responder's connections; store_parse.c: the revocation parser (no I/O).
 * 0 ok, -1 unavailable, unless said otherwise.  The store calls no module
 * above it: revocations go up through store_on_revoke, counters through
 * store_stats.
 */
#ifndef FA_STORE_H
#define FA_STORE_H

struct session_info {
	char		 id[FA_UUID_LEN + 1];
	long long	 created_ms;
	long long	 last_used_ms;
	char		 ip[FA_IP_MAX + 1];
	char		 user_agent[FA_UA_MAX + 1];
};

enum rotate_result {
	ROTATE_OK,		/* rotated: the new token is now current */
	ROTATE_GRACE,		/* parent within grace: child_enc returned */
	ROTATE_REUSE,		/* reuse: the session is revoked now */
	ROTATE_REVOKED,		/* an old token of a session already revoked
				   (for reuse): 401, nothing more to record */
	ROTATE_UNKNOWN		/* no such token or session: nothing changed */
	/* ROTATE_UNKNOWN is the last: store.c range-checks the script's code */
};

int		 store_init(const struct config *);
void		 store_shutdown(void);
/* A failover was announced (why, for the log): the pool moves to a new
   epoch, every context made before is dropped, and a revocation written on
   one is not acknowledged. */
void		 store_failover(const char *why);
int		 store_ping(void);
/* Counters for metrics.c, kept by the store (atomic). */
struct store_stats {
	unsigned long long errors;	/* failed connects, timeouts, broken
					   replies */
};
void		 store_stats(struct store_stats *);
/*
 * fcgi-auth doctor: a connection of its own to host:port (a unix socket
 * when host starts with '/'), with c's password, database and timeout:
 * AUTH, SELECT, PING.  0, or -1 with why in err.
 */
int		 store_probe(const struct config *c, const char *host,
		    int port, char *err, size_t errsz);
/*
 * Create a session holding refresh hash rhash; trims the user's sessions to
 * max, returning the revoked ids (caller frees the array and strings).
 * *cutoff receives the user's revocation generation (0 if none): the
 * cut-off is a counter that every logout-all, password change and role
 * change raises by one; a token carries the generation it was issued under
 * (claim gen) and is dead once the user's generation is higher.  Exact, and
 * free of clocks: two cut-offs within one second still separate the token
 * issued between them.
 */
int		 store_session_create(const char *uid, const char *sid,
		    const char *rhash, const char *ip, const char *ua,
		    int aal, long ttl, long max, char ***revoked,
		    size_t *nrevoked, long long *cutoff);
/*
 * Rotate presented hash to new hash (with new_enc the encrypted new token)
 * atomically.  On ROTATE_GRACE, *child_enc (owned by caller) holds the
 * encrypted current token.
 */
int		 store_session_rotate(const char *uid, const char *sid,
		    const char *presented, const char *newhash,
		    const char *new_enc, long grace, long ttl,
		    enum rotate_result *res, char **child_enc,
		    long long *cutoff, int *aal);
/* 0 revoked, 1 no such session, -1 unavailable */
int		 store_session_revoke(const char *uid, const char *sid,
		    long access_ttl);
/*
 * Logout by refresh token: revoke session sid of uid only if rhash is one
 * of its refresh hashes (current, parent or rotated away), so a made-up
 * token revokes nothing.  0 revoked, 1 no such session or not its token,
 * -1 unavailable.
 */
int		 store_session_revoke_refresh(const char *uid, const char *sid,
		    const char *rhash, long access_ttl);
/* Revoke all sessions except keep_sid (NULL = all); raise the generation. */
int		 store_user_revoke_all(const char *uid, const char *keep_sid,
		    long access_ttl, long long *cutoff);
/* As store_user_revoke_all, and the ids of the sessions it ended (caller
 * frees the array and strings; NULL and 0 when none). */
int		 store_user_revoke_sessions(const char *uid,
		    const char *keep_sid, long access_ttl, long long *cutoff,
		    char ***sids, size_t *nsids);
int		 store_user_cutoff(const char *uid, long access_ttl,
		    long long *cutoff);	/* role change */
int		 store_session_list(const char *uid,
		    struct session_info **list, size_t *n);
int		 store_blacklist(const char *uid, const char *jti, long ttl);
/*
 * 0: the token is alive; 1: revoked (blacklisted jti, revoked session or
 * issued under an older generation than the user's); -1: could not check.
 */
int		 store_token_revoked(const char *uid, const char *sid,
		    const char *jti, long long gen);
/*
 * Fixed-window counters: 0 under limit, 1 over (*retry seconds), -1 down.
 * hit counts and is over past limit hits in the window.  reserve counts
 * one attempt in up to STORE_RATE_KEYS counters atomically, only if none
 * already holds its limit; release gives one back to each (or clears it).
 */
#define STORE_RATE_KEYS		4
struct store_rate {
	const char	*key;
	long		 limit;
	int		 clear;		/* release: delete, not give one back */
};
int		 store_rate_hit(const char *key, long limit, long window,
		    long *retry);
int		 store_rate_reserve(const struct store_rate *, size_t n,
		    long window, long *retry);
int		 store_rate_release(const struct store_rate *, size_t n);
int		 store_publish(const char *channel, const char *msg,
		    const char *stream, long maxlen);
/*
 * mfaTokens: fa:mfa:<keyed hash> holds what the second step needs, for
 * ttl seconds.  get: 0 found, 1 none, -1 down.  wrong counts a wrong code
 * and deletes the token at max (*voided).  take deletes it: 0 taken by
 * this call, 1 already gone (single use), -1 down.
 */
struct store_mfa {
	char		 uid[FA_UUID_LEN + 1];
	char		 ip[FA_IP_MAX + 1];
	char		 ua[FA_UA_MAX + 1];
};
int		 store_mfa_create(const char *hash, const struct store_mfa *,
		    long ttl);
int		 store_mfa_get(const char *hash, struct store_mfa *);
int		 store_mfa_wrong(const char *hash, long max, int *voided);
int		 store_mfa_take(const char *hash);
#define STORE_KEY_MAX		160	/* longest key we build */
#define STORE_REVOKE_SLACK	60	/* seconds past access_ttl + leeway */
#define STORE_TIMEOUT_SLACK_MS	50	/* tolerated overshoot of a deadline */
/*
 * The revocation feed for revoke.c.  Each revocation is published on
 * STORE_REVOKE_CHANNEL ":<redis_db>" as "<key> <ttl seconds> <value>" in the
 * script that makes it; a struct revocation is that message (or a loaded
 * key) parsed.
 */
#define STORE_REVOKE_CHANNEL	"fa:revocations"
#define STORE_SCAN_COUNT	1000	/* SCAN COUNT of the revocation load */
enum revoke_kind {
	REVOKE_JTI,		/* fa:{U}:bl:<jti>: that access token */
	REVOKE_SESSION,		/* fa:{U}:srev:<sid>: the session's tokens */
	REVOKE_CUTOFF,		/* fa:{U}:cutoff: tokens below value */
	REVOKE__MAX
};
struct revocation {
	enum revoke_kind kind;
	char		 uid[FA_UUID_LEN + 1];
	char		 key[FA_UUID_LEN + 1];	/* jti or sid; "" for a cut-off */
	long long	 value;		/* the cut-off; 1 for the others */
	long long	 ttl_ms;	/* left to live */
};
/* "<key> <ttl seconds> <value>" -> *out; 0 or -1.  No I/O. */
int		 store_revocation_parse(const char *msg, size_t len,
		    struct revocation *out);
/*
 * This process's own revocations, handed to fn before the call that made
 * them returns (revoke.c's cache).  Set once, before the workers start.
 */
typedef void	(*store_note_fn)(const struct revocation *, void *arg);
void		 store_on_revoke(store_note_fn fn, void *arg);
/* Return -1 to stop the feed.  NULL: see store_sub_read, the load. */
typedef int	(*store_rev_fn)(void *arg, const struct revocation *);
struct store_sub;
/* Always sets *sub (free with store_sub_close); -1: see store_sub_error. */
int		 store_sub_open(struct store_sub **sub);
int		 store_sub_ping(struct store_sub *);
/* Revocations to fn, NULL for each PONG; -1 once the subscription is lost. */
int		 store_sub_read(struct store_sub *, long timeout_ms,
		    store_rev_fn fn, void *arg);
const char	*store_sub_error(const struct store_sub *);
void		 store_sub_close(struct store_sub *);
/* Every revocation in Redis to fn, NULL after each SCAN batch. */
int		 store_revocations_load(store_rev_fn fn, void *arg, char *err,
		    size_t errsz);
/*
 * The RPC responder's two connections (rpc.c), outside the pool: one
 * subscribed to the request channel, one for claims and replies.
 * store_rpc_read hands each message published on the channel to fn (NULL
 * for a PONG), at most max of them per call; -1 once the subscription is
 * lost.  store_rpc_claim pipelines SET key 1 NX EX ttl for n keys: won[i]
 * is 1 when this process took keys[i] first.  store_rpc_publish pipelines
 * PUBLISH channel msgs[i].  All 0 or -1 (see store_rpc_error).
 */
typedef int	(*store_msg_fn)(void *arg, const char *msg, size_t len);
struct store_rpc;
/* Always sets *rpc (free with store_rpc_close). */
int		 store_rpc_open(struct store_rpc **rpc, const char *channel);
int		 store_rpc_ping(struct store_rpc *);
int		 store_rpc_read(struct store_rpc *, long timeout_ms, size_t max,
		    store_msg_fn fn, void *arg);
int		 store_rpc_claim(struct store_rpc *, const char *const *keys,
		    size_t n, long ttl, int *won);
int		 store_rpc_publish(struct store_rpc *, const char *channel,
		    char *const *msgs, size_t n);
const char	*store_rpc_error(const struct store_rpc *);
void		 store_rpc_close(struct store_rpc *);

#endif /* FA_STORE_H */
