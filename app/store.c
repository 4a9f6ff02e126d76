/*
 * store.c: the Redis backend.  A pool of hiredis contexts made on first
 * borrow (AUTH, SELECT, ROLE and SCRIPT LOAD pipelined in one round trip),
 * every wait bounded by one deadline of backend_timeout_ms so a stopped or
 * unreachable Redis is -1 (503) in about a second, never a hang.  A context
 * that failed, timed out or got an error reply is dropped and re-made by the
 * next borrow.  Session changes are Lua scripts run by EVALSHA, atomic and
 * in one slot: every key of a user carries the hash tag {<user id>}.
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
 * Every key has a TTL.  Every revocation (srev, cutoff, bl) is announced in
 * the same atomic step: the script PUBLISHes "<key> <ttl seconds> <value>"
 * on the revocation channel (STORE_REVOKE_CHANNEL ":<db>", pub/sub does not
 * see databases), and store.c then notes it in this process's cache at
 * once (revoke_note_*).  revoke.c keeps the other processes' caches current
 * through store_sub_* (a subscriber outside the pool) and
 * store_revocations_load (SCAN on a connection of its own).
 *
 * With redis_sentinels set, every connection (pool, subscriber, loader) is
 * made to the master the sentinels name (sentinel.c), and every pool
 * connection checks ROLE before use.  A READONLY or MASTERDOWN reply, or a
 * failover announced by the sentinels (store_failover), moves the pool to a
 * new epoch, so every context made before is dropped on its next borrow and
 * the next connect asks the sentinels again.  Connection errors drop their
 * context as always, so they rediscover too.  A revocation is acknowledged
 * only if no failover was announced while it was written and, with
 * redis_revoke_replicas, once WAIT says that many replicas have it: a logout
 * answered 204 is never undone by a failover's resync.
 *
 * Every wait of a request meets the request's one deadline (deadline_at):
 * a frozen Redis costs a request one backend_timeout_ms, not one per call.
 *
 * Reply ownership: each redisReply is freed once, by
 * the function that received it, on every path.  Tokens and refresh hashes
 * are never logged.
 */
#include "config.h"

#include <sys/time.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "extern.h"

#define SHA_HEX		40
#define ARGV_MAX	16

/*
 * Shared by every session script: KEYS[1] is fa:{U}:sessions, ARGV[1] the
 * prefix fa:{U}: of the user's keys and, in the scripts that revoke, the
 * last ARGV the revocation channel: each revocation is published with the
 * change (PUBLISH touches no key, so the script stays in one slot).
 */
#define LUA_PRELUDE \
	"local p, z, chan = ARGV[1], KEYS[1], ARGV[#ARGV]\n" \
	"local function announce(key, ttl, v)\n" \
	"  redis.call('PUBLISH', chan, key .. ' ' .. ttl .. ' ' .. v)\n" \
	"end\n" \
	"local function revoke(sid, rttl)\n" \
	"  redis.call('DEL', p .. 'sess:' .. sid)\n" \
	"  redis.call('EXPIRE', p .. 'used:' .. sid, rttl)\n" \
	"  redis.call('ZREM', z, sid)\n" \
	"  redis.call('SET', p .. 'srev:' .. sid, '1', 'EX', rttl)\n" \
	"  announce(p .. 'srev:' .. sid, rttl, 1)\n" \
	"end\n" \
	"local function cutoff()\n" \
	"  return tonumber(redis.call('GET', p .. 'cutoff') or '0') or 0\n" \
	"end\n" \
	/* the generation never goes back down, even after its key expired: \
	 * a value once carried by tokens is never handed out again */ \
	"local function raise_cutoff(now_s, rttl)\n" \
	"  local t = redis.call('TIME')\n" \
	"  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n" \
	"  local c = math.max(cutoff() + 1, ms)\n" \
	"  redis.call('SET', p .. 'cutoff', c, 'EX', rttl)\n" \
	"  announce(p .. 'cutoff', rttl, c)\n" \
	"  return c\n" \
	"end\n" \
	"local function keep_zset(ttl)\n" \
	"  if redis.call('TTL', z) < ttl then redis.call('EXPIRE', z, ttl) end\n" \
	"end\n"

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

static const char *const scripts[SC__MAX] = {
	/*
	 * ARGV: p sid rhash ip ua now_ms ttl max rttl aal chan
	 * -> {cutoff, {revoked}}
	 */
	[SC_CREATE] = (LUA_PRELUDE
	"local sid, now, ttl = ARGV[2], tonumber(ARGV[6]), tonumber(ARGV[7])\n"
	"local max, rttl = tonumber(ARGV[8]), tonumber(ARGV[9])\n"
	"local sk = p .. 'sess:' .. sid\n"
	"redis.call('HSET', sk, 'created', now, 'last', now, 'ip', ARGV[4],"
	" 'ua', ARGV[5], 'cur', ARGV[3], 'par', '', 'rot', 0, 'enc', '',"
	" 'aal', ARGV[10])\n"
	"redis.call('EXPIRE', sk, ttl)\n"
	"redis.call('ZADD', z, now, sid)\n"
	"for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do\n"
	"  if redis.call('EXISTS', p .. 'sess:' .. m) == 0 then\n"
	"    redis.call('ZREM', z, m)\n"
	"  end\n"
	"end\n"
	"local revoked = {}\n"
	"while max > 0 and redis.call('ZCARD', z) > max do\n"
	"  local r = redis.call('ZRANGE', z, 0, 1)\n"
	"  local old = r[1]\n"
	"  if old == sid then old = r[2] end\n"
	"  revoke(old, rttl)\n"
	"  revoked[#revoked + 1] = old\n"
	"end\n"
	"keep_zset(ttl)\n"
	"return {cutoff(), revoked}\n"),

	/*
	 * ARGV: p sid presented newhash newenc grace_s ttl now_ms rttl chan
	 * -> {0 ok | 1 grace | 2 reuse | 3 revoked before | 4 unknown, cutoff,
	 * enc, aal}; a session from before aal was kept is aal 1
	 */
	[SC_ROTATE] = (LUA_PRELUDE
	"local sid, pres = ARGV[2], ARGV[3]\n"
	"local grace, ttl = tonumber(ARGV[6]), tonumber(ARGV[7])\n"
	"local now, rttl = tonumber(ARGV[8]), tonumber(ARGV[9])\n"
	"local sk, uk = p .. 'sess:' .. sid, p .. 'used:' .. sid\n"
	"local h = redis.call('HMGET', sk, 'cur', 'par', 'rot', 'enc', 'aal')\n"
	"local aal = h[5] or '1'\n"
	"if not h[1] then\n"
	"  if redis.call('SISMEMBER', uk, pres) == 1 then\n"
	"    return {3, cutoff(), '', aal}\n"
	"  end\n"
	"  return {4, cutoff(), '', aal}\n"
	"end\n"
	"if h[1] == pres then\n"
	"  redis.call('SADD', uk, pres)\n"
	"  redis.call('HSET', sk, 'par', pres, 'cur', ARGV[4], 'enc', ARGV[5],"
	" 'rot', now, 'last', now)\n"
	"  redis.call('EXPIRE', sk, ttl)\n"
	"  redis.call('EXPIRE', uk, ttl)\n"
	"  keep_zset(ttl)\n"
	"  return {0, cutoff(), '', aal}\n"
	"end\n"
	"if h[2] == pres and grace > 0 and"
	" now - (tonumber(h[3]) or 0) <= grace * 1000 then\n"
	"  redis.call('HSET', sk, 'last', now)\n"
	"  return {1, cutoff(), h[4] or '', aal}\n"
	"end\n"
	"if h[2] == pres or redis.call('SISMEMBER', uk, pres) == 1 then\n"
	"  revoke(sid, rttl)\n"
	"  return {2, cutoff(), '', aal}\n"
	"end\n"
	"return {4, cutoff(), '', aal}\n"),

	/* ARGV: p sid rttl chan -> 0 revoked | 1 no such session */
	[SC_REVOKE] = (LUA_PRELUDE
	"if redis.call('EXISTS', p .. 'sess:' .. ARGV[2]) == 0 then\n"
	"  redis.call('ZREM', z, ARGV[2])\n"
	"  return 1\n"
	"end\n"
	"revoke(ARGV[2], tonumber(ARGV[3]))\n"
	"return 0\n"),

	/* ARGV: p sid rhash rttl chan -> 0 revoked | 1 no such session/token */
	[SC_REVOKE_REFRESH] = (LUA_PRELUDE
	"local sid, h = ARGV[2], ARGV[3]\n"
	"local s = redis.call('HMGET', p .. 'sess:' .. sid, 'cur', 'par')\n"
	"if not s[1] then return 1 end\n"
	"if s[1] == h or s[2] == h or"
	" redis.call('SISMEMBER', p .. 'used:' .. sid, h) == 1 then\n"
	"  revoke(sid, tonumber(ARGV[4]))\n"
	"  return 0\n"
	"end\n"
	"return 1\n"),

	/* ARGV: p keep_sid|'' now_s rttl chan -> {cutoff, {revoked}} */
	[SC_REVOKE_ALL] = (LUA_PRELUDE
	"local rttl = tonumber(ARGV[4])\n"
	"local revoked = {}\n"
	"for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do\n"
	"  if m ~= ARGV[2] then\n"
	/* a session whose key expired already ended: not reported */
	"    if redis.call('EXISTS', p .. 'sess:' .. m) == 1 then\n"
	"      revoked[#revoked + 1] = m\n"
	"    end\n"
	"    revoke(m, rttl)\n"
	"  end\n"
	"end\n"
	"return {raise_cutoff(tonumber(ARGV[3]), rttl), revoked}\n"),

	/* ARGV: p now_s rttl chan -> cutoff */
	[SC_CUTOFF] = (LUA_PRELUDE
	"return raise_cutoff(tonumber(ARGV[2]), tonumber(ARGV[3]))\n"),

	/* ARGV: p -> {sid, created, last, ip, ua, ...} newest first */
	[SC_LIST] = (LUA_PRELUDE
	"local out = {}\n"
	"for _, m in ipairs(redis.call('ZREVRANGE', z, 0, -1)) do\n"
	"  local h = redis.call('HMGET', p .. 'sess:' .. m,"
	" 'created', 'last', 'ip', 'ua')\n"
	"  if h[1] then\n"
	"    out[#out + 1] = m\n"
	"    out[#out + 1] = h[1]\n"
	"    out[#out + 1] = h[2] or h[1]\n"
	"    out[#out + 1] = h[3] or ''\n"
	"    out[#out + 1] = h[4] or ''\n"
	"  else\n"
	"    redis.call('ZREM', z, m)\n"
	"  end\n"
	"end\n"
	"return out\n"),

	/* KEYS[1] fa:{U}:bl:<jti>; ARGV: ttl chan -> 0 */
	[SC_BLACKLIST] = (
	"redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])\n"
	"redis.call('PUBLISH', ARGV[2], KEYS[1] .. ' ' .. ARGV[1] .. ' 1')\n"
	"return 0\n"),

	/* KEYS[1] counter; ARGV: window -> {count, ttl} */
	[SC_RATE_HIT] = (
	"local n = redis.call('INCR', KEYS[1])\n"
	"local t = redis.call('TTL', KEYS[1])\n"
	"if n == 1 or t < 0 then\n"
	"  redis.call('EXPIRE', KEYS[1], ARGV[1])\n"
	"  t = tonumber(ARGV[1])\n"
	"end\n"
	"return {n, t}\n"),

	/*
	 * KEYS counters; ARGV: window, then the limit of each key ->
	 * {0, 0} all counted, or {1, retry}: one is at its limit, none counted
	 */
	[SC_RATE_RESERVE] = (
	"local w, retry = tonumber(ARGV[1]), 0\n"
	"for i, k in ipairs(KEYS) do\n"
	"  local n = tonumber(redis.call('GET', k) or '0') or 0\n"
	"  if n >= tonumber(ARGV[i + 1]) then\n"
	"    local t = redis.call('TTL', k)\n"
	"    if t < 0 then redis.call('EXPIRE', k, w) t = w end\n"
	"    if t > retry then retry = t end\n"
	"  end\n"
	"end\n"
	"if retry > 0 then return {1, retry} end\n"
	"for _, k in ipairs(KEYS) do\n"
	"  if redis.call('INCR', k) == 1 or redis.call('TTL', k) < 0 then\n"
	"    redis.call('EXPIRE', k, w)\n"
	"  end\n"
	"end\n"
	"return {0, 0}\n"),

	/* KEYS counters; ARGV[i] 'del' clears KEYS[i], else gives one back */
	[SC_RATE_RELEASE] = (
	"for i, k in ipairs(KEYS) do\n"
	"  if ARGV[i] == 'del' then redis.call('DEL', k)\n"
	"  elseif (tonumber(redis.call('GET', k) or '0') or 0) > 0 then\n"
	"    redis.call('DECR', k)\n"
	"  end\n"
	"end\n"
	"return 0\n"),

	/* KEYS[1] fa:mfa:<hash>; ARGV: uid ip ua ttl -> 0 */
	[SC_MFA_CREATE] = (
	"redis.call('HSET', KEYS[1], 'uid', ARGV[1], 'ip', ARGV[2],"
	" 'ua', ARGV[3], 'wrong', 0)\n"
	"redis.call('EXPIRE', KEYS[1], ARGV[4])\n"
	"return 0\n"),

	/* KEYS[1] fa:mfa:<hash>; ARGV: max -> -1 gone | wrong codes so far,
	 * the token deleted once they reach max */
	[SC_MFA_WRONG] = (
	"if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end\n"
	"local n = redis.call('HINCRBY', KEYS[1], 'wrong', 1)\n"
	"if n >= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end\n"
	"return n\n"),
};

struct rconn {
	redisContext	*c;
	int		 busy;
	unsigned	 epoch;		/* pool.epoch when connected */
	long		 tmo_ms;	/* socket timeout now set */
	char		 sha[SC__MAX][SHA_HEX + 1];
};

/* One operation: a borrowed context and the deadline it must meet. */
struct rop {
	struct rconn	*rc;
	long long	 deadline;
	int		 broken;
};

static struct {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
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
} pool = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void
store_note_down(const char *what, const char *msg)
{
	int	 was;

	pthread_mutex_lock(&pool.mu);
	was = pool.down;
	pool.down = 1;
	pthread_mutex_unlock(&pool.mu);
	metrics_backend_error(METRICS_REDIS);
	if (!was)
		log_error(NULL, "redis: %s: %s", what, msg ? msg : "");
	else
		log_debug(NULL, "redis: %s: %s", what, msg ? msg : "");
}

static void
store_note_up(void)
{
	int	 was;

	pthread_mutex_lock(&pool.mu);
	was = pool.down;
	pool.down = 0;
	pthread_mutex_unlock(&pool.mu);
	if (was)
		log_info(NULL, "redis: connected again");
}

/*
 * An error reply that says the server is no master (after a failover):
 * every context of the pool is then dropped on its next borrow.
 */
static void
store_note_error(const char *err)
{
	if (err == NULL || (strncmp(err, "READONLY", 8) != 0 &&
	    strncmp(err, "MASTERDOWN", 10) != 0))
		return;
	pthread_mutex_lock(&pool.mu);
	pool.epoch++;
	pthread_mutex_unlock(&pool.mu);
	log_warn(NULL, "redis: the server is no master any more; "
	    "reconnecting%s", pool.cfg != NULL ? " through the sentinels" : "");
}

void
store_failover(const char *why)
{
	pthread_mutex_lock(&pool.mu);
	pool.epoch++;
	pthread_mutex_unlock(&pool.mu);
	log_warn(NULL, "redis: failover (%s); reconnecting through the "
	    "sentinels", why);
}

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

	if (pool.cfg != NULL) {
		if (sentinel_master(pool.cfg, deadline, host, sizeof(host),
		    &port) == -1 || (left = deadline - mono_ms()) <= 0)
			return NULL;
		return redisConnectWithTimeout(host, port, ms_tv(left));
	}
	if ((left = deadline - mono_ms()) <= 0)
		return NULL;
	if (pool.host[0] == '/')
		return redisConnectUnixWithTimeout(pool.host, ms_tv(left));
	return redisConnectWithTimeout(pool.host, pool.port, ms_tv(left));
}

/* TTL of revocation markers: an access token's life and then some. */
static long
revoke_ttl(long access_ttl)
{
	return (access_ttl > 0 ? access_ttl : 1) + pool.leeway +
	    STORE_REVOKE_SLACK;
}

int
store_init(const struct config *c)
{
	pthread_condattr_t	 ca;

	if (pool.slot != NULL)
		return 0;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pool.cv, &ca);
	pthread_condattr_destroy(&ca);
	pool.n = c->redis_pool > 0 ? (size_t)c->redis_pool : 1;
	pool.slot = xcalloc(pool.n, sizeof(*pool.slot));
	pool.timeout_ms = c->backend_timeout_ms > 0 ? c->backend_timeout_ms : 1;
	pool.leeway = c->jwt_leeway > 0 ? c->jwt_leeway : 0;
	pool.access_ttl = c->access_ttl;
	pool.host = xstrdup(c->redis_host ? c->redis_host : "127.0.0.1");
	pool.port = (int)c->redis_port;
	pool.password = c->redis_password != NULL && *c->redis_password ?
	    xstrdup(c->redis_password) : NULL;
	pool.db = c->redis_db;
	pool.ack_replicas = c->redis_revoke_replicas;
	snprintf(pool.chan, sizeof(pool.chan), "%s:%ld", STORE_REVOKE_CHANNEL,
	    pool.db);
	/* the config outlives the pool (main.c keeps it to exit) */
	pool.cfg = c->redis_sentinels != NULL && *c->redis_sentinels != '\0' ?
	    c : NULL;
	return 0;
}

void
store_shutdown(void)
{
	size_t	 i;

	if (pool.slot == NULL)
		return;
	for (i = 0; i < pool.n; i++)
		if (pool.slot[i].c != NULL)
			redisFree(pool.slot[i].c);
	free(pool.slot);
	pool.slot = NULL;
	pool.n = 0;
	free(pool.host);
	pool.host = NULL;
	if (pool.password != NULL)
		explicit_bzero(pool.password, strlen(pool.password));
	free(pool.password);
	pool.password = NULL;
	pthread_cond_destroy(&pool.cv);
}

static void
conn_drop(struct rconn *rc)
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
static int
get_reply(struct rconn *rc, redisReply **out, const char *what)
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
static int
conn_open(struct rconn *rc, long long deadline)
{
	redisReply	*r = NULL;
	char		 dbnum[24];
	long long	 left;
	int		 i, role, nsent = 0, rcv = 0, ok = 1;

	if ((left = deadline - mono_ms()) <= 0) {
		store_note_down("connect", "no time left");
		return -1;
	}
	pthread_mutex_lock(&pool.mu);
	rc->epoch = pool.epoch;
	pthread_mutex_unlock(&pool.mu);
	rc->c = store_connect(deadline);
	if (rc->c == NULL || rc->c->err) {
		store_note_down("connect", rc->c ? rc->c->errstr :
		    pool.cfg != NULL ? "no master from the sentinels in time" :
		    "no time left");
		goto fail;
	}
	if ((left = deadline - mono_ms()) <= 0 ||
	    redisSetTimeout(rc->c, ms_tv(left)) != REDIS_OK) {
		store_note_down("connect", "timed out");
		goto fail;
	}
	rc->tmo_ms = (long)left;
	if (pool.password != NULL) {
		redisAppendCommand(rc->c, "AUTH %s", pool.password);
		nsent++;
	}
	if (pool.db != 0) {
		snprintf(dbnum, sizeof(dbnum), "%ld", pool.db);
		redisAppendCommand(rc->c, "SELECT %s", dbnum);
		nsent++;
	}
	/* only a master takes our writes: a sentinel's stale answer, a
	   replica at redis_host or a failover under way are refused here */
	role = nsent++;
	redisAppendCommand(rc->c, "ROLE");
	for (i = 0; i < SC__MAX; i++)
		redisAppendCommand(rc->c, "SCRIPT LOAD %s", scripts[i]);
	for (i = 0; i < nsent + SC__MAX; i++, rcv++) {
		if (get_reply(rc, &r, "connect") == -1)
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
	conn_drop(rc);
	return -1;
}

/* Idle contexts have nothing to read: readable means closed by Redis. */
static int
conn_stale(struct rconn *rc)
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
 * Borrow a ready context before the request's deadline (deadline_at):
 * 0, or -1 (unavailable, or the deadline passed already).
 */
static int
pool_get(struct rop *op)
{
	struct rconn	*rc = NULL, *c;
	struct timespec	 ts;
	long long	 left;
	size_t		 i;
	int		 stale;

	op->rc = NULL;
	op->broken = 0;
	op->deadline = deadline_at(pool.timeout_ms);
	if (pool.slot == NULL)
		return -1;
	if (op->deadline - mono_ms() <= 0) {
		log_debug(NULL, "redis: the request's deadline passed");
		return -1;
	}
	pthread_mutex_lock(&pool.mu);
	for (;;) {
		for (i = 0; i < pool.n; i++) {
			c = &pool.slot[i];
			if (c->busy)
				continue;
			if (rc == NULL || (rc->c == NULL && c->c != NULL))
				rc = c;
			if (rc->c != NULL)
				break;
		}
		if (rc != NULL)
			break;
		left = op->deadline - mono_ms();
		if (left <= 0) {
			pthread_mutex_unlock(&pool.mu);
			log_warn(NULL, "redis: no free connection in time");
			return -1;
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
	rc->busy = 1;
	stale = rc->c != NULL && rc->epoch != pool.epoch;
	pthread_mutex_unlock(&pool.mu);

	if (rc->c != NULL && (stale || conn_stale(rc)))
		conn_drop(rc);
	if (rc->c == NULL && conn_open(rc, op->deadline) == -1) {
		pthread_mutex_lock(&pool.mu);
		rc->busy = 0;
		pthread_cond_signal(&pool.cv);
		pthread_mutex_unlock(&pool.mu);
		return -1;
	}
	op->rc = rc;
	return 0;
}

static void
pool_put(struct rop *op)
{
	if (op->rc == NULL)
		return;
	if (op->broken || (op->rc->c != NULL && op->rc->c->err))
		conn_drop(op->rc);
	pthread_mutex_lock(&pool.mu);
	op->rc->busy = 0;
	pthread_cond_signal(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
	op->rc = NULL;
}

/*
 * Bound the next command by the deadline: the socket timeout is the full
 * backend timeout unless less is left (a wait or a connect used some).
 */
static int
op_timeout(struct rop *op)
{
	long long	 left = op->deadline - mono_ms();
	long		 want;

	if (left <= 0) {
		store_note_down("command", "no time left");
		return -1;
	}
	want = left >= pool.timeout_ms - STORE_TIMEOUT_SLACK_MS ?
	    pool.timeout_ms : (long)left;
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
static int
op_cmd(struct rop *op, int argc, const char **argv, const size_t *len,
    redisReply **out, const char *what)
{
	redisReply	*r;

	*out = NULL;
	if (op_timeout(op) == -1)
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
		argv[2] = scripts[i];
		len[0] = 6;
		len[1] = 4;
		len[2] = strlen(scripts[i]);
		if (op_cmd(op, 3, argv, len, &r, "SCRIPT LOAD") == -1)
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
static int
op_evalv(struct rop *op, enum script sc, int nkeys, const char **keys,
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
		if (op_timeout(op) == -1)
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
static int
op_eval(struct rop *op, enum script sc, const char *key, int nargs,
    const char **args, redisReply **out)
{
	return op_evalv(op, sc, 1, &key, nargs, args, out);
}

/*
 * Ids that go into keys: [A-Za-z0-9_-], 1..FA_UUID_LEN bytes, so no id can
 * reach into another user's hash tag or key.
 */
static int
id_ok(const char *s)
{
	size_t	 i;

	if (s == NULL)
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= FA_UUID_LEN)
			return 0;
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
			return 0;
	}
	return i > 0;
}

/* The user's key prefix and sessions key. */
static void
user_keys(const char *uid, char prefix[STORE_KEY_MAX], char zkey[STORE_KEY_MAX])
{
	snprintf(prefix, STORE_KEY_MAX, "fa:{%s}:", uid);
	snprintf(zkey, STORE_KEY_MAX, "fa:{%s}:sessions", uid);
}

static int
reply_int(const redisReply *r, long long *v)
{
	if (r->type == REDIS_REPLY_INTEGER) {
		*v = r->integer;
		return 0;
	}
	if (r->type == REDIS_REPLY_STRING) {
		*v = strtoll(r->str, NULL, 10);
		return 0;
	}
	return -1;
}

/*
 * Whether a revocation just written may be acknowledged (0) or must be
 * answered 503 (-1).  With redis_revoke_replicas, WAIT until that many
 * replicas have it, within the deadline: a write taken by a master that a
 * failover is replacing reaches no replica and would be lost on resync.
 * And no failover may have been announced since this context was made.
 */
static int
op_ack(struct rop *op)
{
	redisReply	*r = NULL;
	char		 n[24], ms[24];
	const char	*argv[3];
	size_t		 len[3];
	long long	 left, got = 0;
	unsigned	 epoch;

	if (pool.ack_replicas > 0) {
		left = op->deadline - mono_ms() - STORE_TIMEOUT_SLACK_MS;
		argv[0] = "WAIT";
		argv[1] = n;
		argv[2] = ms;
		len[0] = 4;
		len[1] = (size_t)snprintf(n, sizeof(n), "%ld", pool.ack_replicas);
		/* WAIT 0 would block for ever */
		len[2] = (size_t)snprintf(ms, sizeof(ms), "%lld",
		    left > 0 ? left : 1);
		if (op_cmd(op, 3, argv, len, &r, "WAIT") == -1)
			return -1;
		if (reply_int(r, &got) == -1 || got < pool.ack_replicas) {
			log_warn(NULL, "redis: a revocation reached %lld of "
			    "%ld replicas in time: not acknowledged", got,
			    pool.ack_replicas);
			freeReplyObject(r);
			return -1;
		}
		freeReplyObject(r);
	}
	pthread_mutex_lock(&pool.mu);
	epoch = pool.epoch;
	pthread_mutex_unlock(&pool.mu);
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

	if (pool_get(&op) == -1)
		return -1;
	if (op_cmd(&op, 1, argv, len, &r, "PING") == 0)
		rc = 0;
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

int
store_session_create(const char *uid, const char *sid, const char *rhash,
    const char *ip, const char *ua, int aal, long ttl, long max,
    char ***revoked, size_t *nrevoked, long long *cutoff)
{
	struct rop	 op;
	redisReply	*r = NULL, *list;
	char		 p[STORE_KEY_MAX], z[STORE_KEY_MAX];
	char		 now[24], sttl[24], smax[24], rttl[24], saal[12];
	char		 uabuf[FA_UA_MAX + 1], ipbuf[FA_IP_MAX + 1];
	const char	*args[11];
	char		**out = NULL;
	size_t		 i, n = 0;
	int		 rc = -1;

	*revoked = NULL;
	*nrevoked = 0;
	*cutoff = 0;
	if (!id_ok(uid) || !id_ok(sid) || rhash == NULL || *rhash == '\0') {
		log_error(NULL, "redis: session create: bad arguments");
		return -1;
	}
	snprintf(ipbuf, sizeof(ipbuf), "%s", ip ? ip : "");
	snprintf(uabuf, sizeof(uabuf), "%s", ua ? ua : "");
	user_keys(uid, p, z);
	snprintf(now, sizeof(now), "%lld", now_ms());
	snprintf(sttl, sizeof(sttl), "%ld", ttl > 0 ? ttl : 1);
	snprintf(smax, sizeof(smax), "%ld", max > 0 ? max : 0);
	snprintf(rttl, sizeof(rttl), "%ld", revoke_ttl(pool.access_ttl));
	args[0] = p;
	args[1] = sid;
	args[2] = rhash;
	args[3] = ipbuf;
	args[4] = uabuf;
	args[5] = now;
	args[6] = sttl;
	args[7] = smax;
	args[8] = rttl;
	snprintf(saal, sizeof(saal), "%d", aal >= TOKEN_AAL_MIN &&
	    aal <= TOKEN_AAL_MAX ? aal : TOKEN_AAL_MIN);
	args[9] = saal;
	args[10] = pool.chan;
	if (pool_get(&op) == -1)
		return -1;
	if (op_eval(&op, SC_CREATE, z, 11, args, &r) == -1)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    reply_int(r->element[0], cutoff) == -1 ||
	    r->element[1]->type != REDIS_REPLY_ARRAY) {
		log_error(NULL, "redis: session create: bad reply");
		op.broken = 1;
		goto out;
	}
	list = r->element[1];
	if (list->elements > 0) {
		out = xcalloc(list->elements, sizeof(*out));
		for (i = 0; i < list->elements; i++)
			if (list->element[i]->type == REDIS_REPLY_STRING) {
				out[n++] = xstrdup(list->element[i]->str);
				revoke_note_session(uid, list->element[i]->str,
				    revoke_ttl(pool.access_ttl));
			}
	}
	*revoked = out;
	*nrevoked = n;
	out = NULL;
	rc = 0;
out:
	free(out);
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

int
store_session_rotate(const char *uid, const char *sid, const char *presented,
    const char *newhash, const char *new_enc, long grace, long ttl,
    enum rotate_result *res, char **child_enc, long long *cutoff, int *aal)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 p[STORE_KEY_MAX], z[STORE_KEY_MAX];
	char		 sgrace[24], sttl[24], now[24], rttl[24];
	const char	*args[10];
	long long	 code, v;
	int		 rc = -1;

	*res = ROTATE_UNKNOWN;
	*child_enc = NULL;
	*cutoff = 0;
	*aal = TOKEN_AAL_MIN;
	if (!id_ok(uid) || !id_ok(sid) || presented == NULL ||
	    *presented == '\0')
		return 0;	/* such a token cannot name a session */
	if (newhash == NULL || *newhash == '\0' || new_enc == NULL) {
		log_error(NULL, "redis: rotate: bad arguments");
		return -1;
	}
	user_keys(uid, p, z);
	snprintf(sgrace, sizeof(sgrace), "%ld", grace > 0 ? grace : 0);
	snprintf(sttl, sizeof(sttl), "%ld", ttl > 0 ? ttl : 1);
	snprintf(now, sizeof(now), "%lld", now_ms());
	snprintf(rttl, sizeof(rttl), "%ld", revoke_ttl(pool.access_ttl));
	args[0] = p;
	args[1] = sid;
	args[2] = presented;
	args[3] = newhash;
	args[4] = new_enc;
	args[5] = sgrace;
	args[6] = sttl;
	args[7] = now;
	args[8] = rttl;
	args[9] = pool.chan;
	if (pool_get(&op) == -1)
		return -1;
	if (op_eval(&op, SC_ROTATE, z, 10, args, &r) == -1)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
	    reply_int(r->element[0], &code) == -1 ||
	    reply_int(r->element[1], cutoff) == -1 ||
	    r->element[2]->type != REDIS_REPLY_STRING ||
	    reply_int(r->element[3], &v) == -1 ||
	    code < ROTATE_OK || code > ROTATE_UNKNOWN) {
		log_error(NULL, "redis: rotate: bad reply");
		op.broken = 1;
		goto out;
	}
	*res = (enum rotate_result)code;
	if (v >= TOKEN_AAL_MIN && v <= TOKEN_AAL_MAX)
		*aal = (int)v;
	if (*res == ROTATE_REUSE)
		revoke_note_session(uid, sid, revoke_ttl(pool.access_ttl));
	if (*res == ROTATE_GRACE)
		*child_enc = xstrdup(r->element[2]->str);
	rc = 0;
out:
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

/*
 * Revoke session sid of uid with script sc: SC_REVOKE (rhash NULL) or
 * SC_REVOKE_REFRESH (only if rhash is one of the session's refresh hashes).
 * 0 revoked (and noted in this process's cache), 1 no such session or
 * token, -1 unavailable.
 */
static int
session_revoke(enum script sc, const char *uid, const char *sid,
    const char *rhash, long access_ttl)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 p[STORE_KEY_MAX], z[STORE_KEY_MAX], rttl[24];
	const char	*args[5];
	long long	 v;
	int		 n = 0, rc = -1;

	if (!id_ok(uid) || !id_ok(sid) ||
	    (sc == SC_REVOKE_REFRESH && (rhash == NULL || *rhash == '\0')))
		return 1;
	user_keys(uid, p, z);
	snprintf(rttl, sizeof(rttl), "%ld", revoke_ttl(access_ttl));
	args[n++] = p;
	args[n++] = sid;
	if (sc == SC_REVOKE_REFRESH)
		args[n++] = rhash;
	args[n++] = rttl;
	args[n++] = pool.chan;
	if (pool_get(&op) == -1)
		return -1;
	if (op_eval(&op, sc, z, n, args, &r) == -1 || op_ack(&op) == -1)
		goto out;
	if (reply_int(r, &v) == -1) {
		op.broken = 1;
		goto out;
	}
	rc = v == 0 ? 0 : 1;
	if (rc == 0)
		revoke_note_session(uid, sid, revoke_ttl(access_ttl));
out:
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

int
store_session_revoke(const char *uid, const char *sid, long access_ttl)
{
	return session_revoke(SC_REVOKE, uid, sid, NULL, access_ttl);
}

int
store_session_revoke_refresh(const char *uid, const char *sid,
    const char *rhash, long access_ttl)
{
	return session_revoke(SC_REVOKE_REFRESH, uid, sid, rhash, access_ttl);
}

/*
 * SC_CUTOFF answers the new cut-off, SC_REVOKE_ALL {cutoff, {revoked sids}};
 * both are noted in this process's cache before returning.
 */
static int
cutoff_script(enum script sc, const char *uid, const char *keep_sid,
    long access_ttl, long long *cutoff, char ***sids, size_t *nsids)
{
	struct rop	 op;
	redisReply	*r = NULL, *c, *list = NULL;
	char		 p[STORE_KEY_MAX], z[STORE_KEY_MAX], now[24], rttl[24];
	const char	*args[5];
	size_t		 i;
	int		 n = 0, rc = -1;

	*cutoff = 0;
	if (!id_ok(uid)) {
		log_error(NULL, "redis: revoke: bad user id");
		return -1;
	}
	user_keys(uid, p, z);
	snprintf(now, sizeof(now), "%lld", now_ms() / 1000);
	snprintf(rttl, sizeof(rttl), "%ld", revoke_ttl(access_ttl));
	args[n++] = p;
	if (sc == SC_REVOKE_ALL)
		args[n++] = keep_sid != NULL ? keep_sid : "";
	args[n++] = now;
	args[n++] = rttl;
	args[n++] = pool.chan;
	if (pool_get(&op) == -1)
		return -1;
	if (op_eval(&op, sc, z, n, args, &r) == -1 || op_ack(&op) == -1)
		goto out;
	c = r;
	if (sc == SC_REVOKE_ALL) {
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			op.broken = 1;
			goto out;
		}
		c = r->element[0];
		list = r->element[1];
	}
	if (reply_int(c, cutoff) == -1) {
		op.broken = 1;
		goto out;
	}
	revoke_note_cutoff(uid, *cutoff, revoke_ttl(access_ttl));
	if (sids != NULL && list != NULL && list->elements > 0)
		*sids = xcalloc(list->elements, sizeof(**sids));
	for (i = 0; list != NULL && i < list->elements; i++)
		if (list->element[i]->type == REDIS_REPLY_STRING) {
			revoke_note_session(uid, list->element[i]->str,
			    revoke_ttl(access_ttl));
			if (sids != NULL)
				(*sids)[(*nsids)++] =
				    xstrdup(list->element[i]->str);
		}
	rc = 0;
out:
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

int
store_user_revoke_all(const char *uid, const char *keep_sid, long access_ttl,
    long long *cutoff)
{
	return cutoff_script(SC_REVOKE_ALL, uid, keep_sid, access_ttl, cutoff,
	    NULL, NULL);
}

int
store_user_revoke_sessions(const char *uid, const char *keep_sid,
    long access_ttl, long long *cutoff, char ***sids, size_t *nsids)
{
	*sids = NULL;
	*nsids = 0;
	return cutoff_script(SC_REVOKE_ALL, uid, keep_sid, access_ttl, cutoff,
	    sids, nsids);
}

int
store_user_cutoff(const char *uid, long access_ttl, long long *cutoff)
{
	return cutoff_script(SC_CUTOFF, uid, NULL, access_ttl, cutoff, NULL,
	    NULL);
}

int
store_session_list(const char *uid, struct session_info **list, size_t *n)
{
	struct rop		 op;
	redisReply		*r = NULL, **e;
	struct session_info	*out = NULL, *s;
	char			 p[STORE_KEY_MAX], z[STORE_KEY_MAX];
	const char		*args[1];
	size_t			 i, k = 0;
	int			 rc = -1;

	*list = NULL;
	*n = 0;
	if (!id_ok(uid))
		return 0;
	user_keys(uid, p, z);
	args[0] = p;
	if (pool_get(&op) == -1)
		return -1;
	if (op_eval(&op, SC_LIST, z, 1, args, &r) == -1)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 5 != 0) {
		op.broken = 1;
		goto out;
	}
	if (r->elements > 0)
		out = xcalloc(r->elements / 5, sizeof(*out));
	for (i = 0; i < r->elements; i += 5) {
		e = r->element + i;
		if (e[0]->type != REDIS_REPLY_STRING ||
		    e[3]->type != REDIS_REPLY_STRING ||
		    e[4]->type != REDIS_REPLY_STRING)
			continue;
		s = &out[k++];
		snprintf(s->id, sizeof(s->id), "%s", e[0]->str);
		reply_int(e[1], &s->created_ms);
		reply_int(e[2], &s->last_used_ms);
		snprintf(s->ip, sizeof(s->ip), "%s", e[3]->str);
		/* sessions written before text.c kept the raw header */
		text_clean(s->user_agent, sizeof(s->user_agent), e[4]->str,
		    e[4]->len);
	}
	*list = out;
	*n = k;
	out = NULL;
	rc = 0;
out:
	free(out);
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

/* SET the marker and PUBLISH it in one script; noted here at once. */
int
store_blacklist(const char *uid, const char *jti, long ttl)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 key[STORE_KEY_MAX], sttl[24];
	const char	*args[2];
	int		 rc = -1;

	if (!id_ok(uid) || !id_ok(jti) || strlen(jti) > FA_JTI_LEN) {
		log_error(NULL, "redis: blacklist: bad arguments");
		return -1;
	}
	if (ttl < 1)
		ttl = 1;
	snprintf(key, sizeof(key), "fa:{%s}:bl:%s", uid, jti);
	snprintf(sttl, sizeof(sttl), "%ld", ttl);
	args[0] = sttl;
	args[1] = pool.chan;
	if (pool_get(&op) == -1)
		return -1;
	if (op_eval(&op, SC_BLACKLIST, key, 2, args, &r) == 0 &&
	    op_ack(&op) == 0) {
		revoke_note_jti(uid, jti, ttl);
		rc = 0;
	}
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

/*
 * The verify hot path: one MGET of three keys in the user's slot, no
 * allocation but hiredis' own for the command and the reply.
 */
int
store_token_revoked(const char *uid, const char *sid, const char *jti,
    long long gen)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 bl[STORE_KEY_MAX], srev[STORE_KEY_MAX], cut[STORE_KEY_MAX];
	const char	*argv[4];
	size_t		 len[4];
	long long	 c;
	int		 rc = -1;

	if (!id_ok(uid) || !id_ok(sid) || jti == NULL || *jti == '\0' ||
	    strlen(jti) > FA_JTI_LEN)
		return 1;	/* not one of our tokens: never alive */
	argv[0] = "MGET";
	argv[1] = bl;
	argv[2] = srev;
	argv[3] = cut;
	len[0] = 4;
	len[1] = (size_t)snprintf(bl, sizeof(bl), "fa:{%s}:bl:%s", uid, jti);
	len[2] = (size_t)snprintf(srev, sizeof(srev), "fa:{%s}:srev:%s",
	    uid, sid);
	len[3] = (size_t)snprintf(cut, sizeof(cut), "fa:{%s}:cutoff", uid);
	if (pool_get(&op) == -1)
		return -1;
	if (op_cmd(&op, 4, argv, len, &r, "MGET") == -1)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
		op.broken = 1;
		goto out;
	}
	if (r->element[0]->type != REDIS_REPLY_NIL ||
	    r->element[1]->type != REDIS_REPLY_NIL)
		rc = 1;
	else if (r->element[2]->type == REDIS_REPLY_STRING &&
	    reply_int(r->element[2], &c) == 0 && gen < c)
		rc = 1;
	else
		rc = 0;
out:
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

static int
rate_script(enum script sc, const char *key, const char *window,
    long long *count, long long *ttl)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 k[STORE_KEY_MAX];
	const char	*args[1] = { window };
	int		 rc = -1;

	*count = 0;
	*ttl = 0;
	if (key == NULL || strlen(key) + sizeof("fa:rl:") > sizeof(k)) {
		log_error(NULL, "redis: rate limit key too long");
		return -1;
	}
	snprintf(k, sizeof(k), "fa:rl:%s", key);
	if (pool_get(&op) == -1)
		return -1;
	if (op_eval(&op, sc, k, window ? 1 : 0, args, &r) == -1)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    reply_int(r->element[0], count) == -1 ||
	    reply_int(r->element[1], ttl) == -1) {
		op.broken = 1;
		goto out;
	}
	rc = 0;
out:
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

/*
 * Count a hit in key's window: 1 (over, *retry seconds until the window
 * ends) once more than limit hits fell in the window, else 0.
 */
int
store_rate_hit(const char *key, long limit, long window, long *retry)
{
	char		 w[24];
	long long	 n, ttl;

	*retry = 0;
	snprintf(w, sizeof(w), "%ld", window > 0 ? window : 1);
	if (rate_script(SC_RATE_HIT, key, w, &n, &ttl) == -1)
		return -1;
	if (n <= limit)
		return 0;
	*retry = ttl > 0 ? (long)ttl : 1;
	return 1;
}

/* The counters' keys with their "fa:rl:" prefix; -1 if one is too long. */
static int
rate_keys(const struct store_rate *c, size_t n,
    char k[STORE_RATE_KEYS][STORE_KEY_MAX], const char *kp[STORE_RATE_KEYS])
{
	size_t	 i;

	if (n == 0 || n > STORE_RATE_KEYS)
		return -1;
	for (i = 0; i < n; i++) {
		if (c[i].key == NULL ||
		    strlen(c[i].key) + sizeof("fa:rl:") > STORE_KEY_MAX) {
			log_error(NULL, "redis: rate limit key too long");
			return -1;
		}
		snprintf(k[i], STORE_KEY_MAX, "fa:rl:%s", c[i].key);
		kp[i] = k[i];
	}
	return 0;
}

/*
 * Reserve one attempt in every counter at once, atomically: 1 (*retry
 * seconds until the last full window ends) and nothing counted when one of
 * them already holds its limit, else 0 and each counted.
 */
int
store_rate_reserve(const struct store_rate *c, size_t n, long window,
    long *retry)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 k[STORE_RATE_KEYS][STORE_KEY_MAX];
	char		 a[STORE_RATE_KEYS + 1][24];
	const char	*kp[STORE_RATE_KEYS], *ap[STORE_RATE_KEYS + 1];
	long long	 over, t;
	size_t		 i;
	int		 rc = -1;

	*retry = 0;
	if (rate_keys(c, n, k, kp) == -1)
		return -1;
	snprintf(a[0], sizeof(a[0]), "%ld", window > 0 ? window : 1);
	ap[0] = a[0];
	for (i = 0; i < n; i++) {
		snprintf(a[i + 1], sizeof(a[i + 1]), "%ld", c[i].limit);
		ap[i + 1] = a[i + 1];
	}
	if (pool_get(&op) == -1)
		return -1;
	if (op_evalv(&op, SC_RATE_RESERVE, (int)n, kp, (int)n + 1, ap,
	    &r) == -1)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    reply_int(r->element[0], &over) == -1 ||
	    reply_int(r->element[1], &t) == -1) {
		op.broken = 1;
		goto out;
	}
	if (over)
		*retry = t > 0 ? (long)t : 1;
	rc = over ? 1 : 0;
out:
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

/* Give one reserved attempt back to each counter, or clear it. */
int
store_rate_release(const struct store_rate *c, size_t n)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 k[STORE_RATE_KEYS][STORE_KEY_MAX];
	const char	*kp[STORE_RATE_KEYS], *ap[STORE_RATE_KEYS];
	size_t		 i;
	int		 rc = -1;

	if (rate_keys(c, n, k, kp) == -1)
		return -1;
	for (i = 0; i < n; i++)
		ap[i] = c[i].clear ? "del" : "one";
	if (pool_get(&op) == -1)
		return -1;
	if (op_evalv(&op, SC_RATE_RELEASE, (int)n, kp, (int)n, ap, &r) == 0)
		rc = 0;
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

/* fa:mfa:<hash> for an mfaToken's hash (hex only); -1 if malformed. */
static int
mfa_key(char k[STORE_KEY_MAX], const char *hash)
{
	size_t	 i;

	if (hash == NULL || strlen(hash) != FA_HASH_HEX)
		return -1;
	for (i = 0; i < FA_HASH_HEX; i++)
		if (!((hash[i] >= '0' && hash[i] <= '9') ||
		    (hash[i] >= 'a' && hash[i] <= 'f')))
			return -1;
	snprintf(k, STORE_KEY_MAX, "fa:mfa:%s", hash);
	return 0;
}

int
store_mfa_create(const char *hash, const struct store_mfa *m, long ttl)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 k[STORE_KEY_MAX], sttl[24];
	const char	*args[4];
	int		 rc = -1;

	if (mfa_key(k, hash) == -1 || !id_ok(m->uid)) {
		log_error(NULL, "redis: mfa create: bad arguments");
		return -1;
	}
	snprintf(sttl, sizeof(sttl), "%ld", ttl > 0 ? ttl : 1);
	args[0] = m->uid;
	args[1] = m->ip;
	args[2] = m->ua;
	args[3] = sttl;
	if (pool_get(&op) == -1)
		return -1;
	if (op_eval(&op, SC_MFA_CREATE, k, 4, args, &r) == 0)
		rc = 0;
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

int
store_mfa_get(const char *hash, struct store_mfa *m)
{
	struct rop	 op;
	redisReply	*r = NULL, *e;
	char		 k[STORE_KEY_MAX];
	const char	*argv[5] = { "HMGET", k, "uid", "ip", "ua" };
	size_t		 len[5], i;
	int		 rc = -1;

	memset(m, 0, sizeof(*m));
	if (mfa_key(k, hash) == -1)
		return 1;
	for (i = 0; i < 5; i++)
		len[i] = strlen(argv[i]);
	if (pool_get(&op) == -1)
		return -1;
	if (op_cmd(&op, 5, argv, len, &r, "HMGET") == -1)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
		op.broken = 1;
		goto out;
	}
	rc = 1;
	e = r->element[0];
	if (e->type != REDIS_REPLY_STRING || !id_ok(e->str))
		goto out;
	snprintf(m->uid, sizeof(m->uid), "%s", e->str);
	if ((e = r->element[1])->type == REDIS_REPLY_STRING)
		snprintf(m->ip, sizeof(m->ip), "%s", e->str);
	if ((e = r->element[2])->type == REDIS_REPLY_STRING)
		snprintf(m->ua, sizeof(m->ua), "%s", e->str);
	rc = 0;
out:
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

int
store_mfa_wrong(const char *hash, long max, int *voided)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 k[STORE_KEY_MAX], smax[24];
	const char	*args[1] = { smax };
	long long	 n;
	int		 rc = -1;

	*voided = 1;
	if (mfa_key(k, hash) == -1)
		return 0;
	snprintf(smax, sizeof(smax), "%ld", max);
	if (pool_get(&op) == -1)
		return -1;
	if (op_eval(&op, SC_MFA_WRONG, k, 1, args, &r) == -1)
		goto out;
	if (reply_int(r, &n) == -1) {
		op.broken = 1;
		goto out;
	}
	*voided = n < 0 || n >= max;
	rc = 0;
out:
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

int
store_mfa_take(const char *hash)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 k[STORE_KEY_MAX];
	const char	*argv[2] = { "DEL", k };
	size_t		 len[2];
	long long	 n;
	int		 rc = -1;

	if (mfa_key(k, hash) == -1)
		return 1;
	len[0] = 3;
	len[1] = strlen(k);
	if (pool_get(&op) == -1)
		return -1;
	if (op_cmd(&op, 2, argv, len, &r, "DEL") == -1)
		goto out;
	if (reply_int(r, &n) == -1) {
		op.broken = 1;
		goto out;
	}
	rc = n == 1 ? 0 : 1;
out:
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

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
	if (pool_get(&op) == -1)
		return -1;
	if (op_timeout(&op) == -1)
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
		if (get_reply(op.rc, &r, "publish") == -1) {
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
	pool_put(&op);
	return rc;
}

/*
 * The revocation feed (revoke.c).  A revocation key names its kind, user
 * and id: fa:{U}:bl:<jti>, fa:{U}:srev:<sid> or fa:{U}:cutoff.  0 and *out
 * filled (ttl_ms and value left to the caller), or -1 for any other key.
 */
static int
revocation_key(const char *key, size_t len, struct revocation *out)
{
	static const struct {
		const char	*tag;
		enum revoke_kind kind;
	} kinds[] = {
		{ "bl:", REVOKE_JTI },
		{ "srev:", REVOKE_SESSION },
		{ "cutoff", REVOKE_CUTOFF },
	};
	const char	*end = key + len, *u, *ue, *rest;
	size_t		 i, n;

	memset(out, 0, sizeof(*out));
	if (len < 4 || memcmp(key, "fa:{", 4) != 0)
		return -1;
	u = key + 4;
	if ((ue = memchr(u, '}', (size_t)(end - u))) == NULL ||
	    (size_t)(ue - u) > FA_UUID_LEN || end - ue < 2 || ue[1] != ':')
		return -1;
	memcpy(out->uid, u, (size_t)(ue - u));
	if (!id_ok(out->uid))
		return -1;
	rest = ue + 2;
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		n = strlen(kinds[i].tag);
		if ((size_t)(end - rest) < n || memcmp(rest, kinds[i].tag, n))
			continue;
		out->kind = kinds[i].kind;
		rest += n;
		if (out->kind == REVOKE_CUTOFF)
			return rest == end ? 0 : -1;
		if ((size_t)(end - rest) > FA_UUID_LEN)
			return -1;
		memcpy(out->key, rest, (size_t)(end - rest));
		return id_ok(out->key) ? 0 : -1;
	}
	return -1;
}

/* A decimal in [0, LLONG_MAX] spanning exactly s..e. */
static int
parse_count(const char *s, const char *e, long long *v)
{
	long long	 n = 0;

	if (s == e || e - s > 18)
		return -1;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		n = n * 10 + (*s - '0');
	}
	*v = n;
	return 0;
}

int
store_revocation_parse(const char *msg, size_t len, struct revocation *out)
{
	const char	*end = msg + len, *k, *t;

	if ((k = memchr(msg, ' ', len)) == NULL ||
	    revocation_key(msg, (size_t)(k - msg), out) == -1)
		return -1;
	k++;
	if ((t = memchr(k, ' ', (size_t)(end - k))) == NULL ||
	    parse_count(k, t, &out->ttl_ms) == -1 ||
	    parse_count(t + 1, end, &out->value) == -1 ||
	    out->ttl_ms > LLONG_MAX / 1000)
		return -1;
	out->ttl_ms *= 1000;
	return 0;
}

struct store_sub {
	redisContext	*c;
	char		 err[128];
};

/*
 * A context outside the pool: connected, authenticated and on the
 * configured database before the deadline; the socket timeout is the
 * backend timeout.  NULL with the reason in err.
 */
static redisContext *
ctx_open(long long deadline, char *err, size_t errsz)
{
	redisContext	*c = NULL;
	redisReply	*r;
	char		 dbnum[24];
	int		 i, nsent = 0;

	c = store_connect(deadline);
	if (c == NULL || c->err) {
		snprintf(err, errsz, "connect: %.96s",
		    c != NULL ? c->errstr : pool.cfg != NULL ?
		    "no master from the sentinels in time" : "no time left");
		goto fail;
	}
	if (redisSetTimeout(c, ms_tv(pool.timeout_ms)) != REDIS_OK) {
		snprintf(err, errsz, "connect: cannot set the timeout");
		goto fail;
	}
	if (pool.password != NULL) {
		redisAppendCommand(c, "AUTH %s", pool.password);
		nsent++;
	}
	if (pool.db != 0) {
		snprintf(dbnum, sizeof(dbnum), "%ld", pool.db);
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
	if (pool.host == NULL) {
		snprintf(sub->err, sizeof(sub->err), "store not initialised");
		return -1;
	}
	if ((sub->c = ctx_open(mono_ms() + pool.timeout_ms, sub->err,
	    sizeof(sub->err))) == NULL)
		return -1;
	return ctx_subscribe(sub->c, pool.chan, sub->err, sizeof(sub->err));
}

/* PING on the subscribed connection; its answer comes to store_sub_read. */
int
store_sub_ping(struct store_sub *sub)
{
	int	 done = 0;

	if (sub->c == NULL || redisAppendCommand(sub->c, "PING") != REDIS_OK)
		goto fail;
	while (!done)
		if (redisBufferWrite(sub->c, &done) != REDIS_OK)
			goto fail;
	return 0;
fail:
	snprintf(sub->err, sizeof(sub->err), "PING: %.96s",
	    sub->c != NULL ? sub->c->errstr : "not connected");
	return -1;
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
	struct pollfd	 pfd;
	void		*r;
	int		 n, waited = 0;

	if (sub->c == NULL)
		return -1;
	for (;;) {
		r = NULL;
		if (redisGetReplyFromReader(sub->c, &r) != REDIS_OK) {
			snprintf(sub->err, sizeof(sub->err), "read: %.96s",
			    sub->c->errstr);
			return -1;
		}
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
		pfd.fd = sub->c->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		n = poll(&pfd, 1, timeout_ms > 0 ? (int)timeout_ms : 0);
		if (n == 0 || (n == -1 && errno == EINTR))
			return 0;
		if (n == -1) {
			snprintf(sub->err, sizeof(sub->err), "poll: %s",
			    strerror(errno));
			return -1;
		}
		if (redisBufferRead(sub->c) != REDIS_OK) {
			snprintf(sub->err, sizeof(sub->err), "read: %.96s",
			    sub->c->errstr);
			return -1;
		}
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
	if (pool.host == NULL) {
		snprintf(rpc->err, sizeof(rpc->err), "store not initialised");
		return -1;
	}
	if ((rpc->cmd = ctx_open(mono_ms() + pool.timeout_ms, rpc->err,
	    sizeof(rpc->err))) == NULL ||
	    (rpc->sub = ctx_open(mono_ms() + pool.timeout_ms, rpc->err,
	    sizeof(rpc->err))) == NULL)
		return -1;
	return ctx_subscribe(rpc->sub, channel, rpc->err, sizeof(rpc->err));
}

int
store_rpc_ping(struct store_rpc *rpc)
{
	int	 done = 0;

	if (rpc->sub == NULL || redisAppendCommand(rpc->sub, "PING") !=
	    REDIS_OK)
		goto fail;
	while (!done)
		if (redisBufferWrite(rpc->sub, &done) != REDIS_OK)
			goto fail;
	return 0;
fail:
	snprintf(rpc->err, sizeof(rpc->err), "PING: %.96s",
	    rpc->sub != NULL ? rpc->sub->errstr : "not connected");
	return -1;
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
	struct pollfd	 pfd;
	void		*r;
	size_t		 got = 0;
	int		 n, waited = 0;

	if (rpc->sub == NULL)
		return -1;
	while (got < max) {
		r = NULL;
		if (redisGetReplyFromReader(rpc->sub, &r) != REDIS_OK) {
			snprintf(rpc->err, sizeof(rpc->err), "read: %.96s",
			    rpc->sub->errstr);
			return -1;
		}
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
		pfd.fd = rpc->sub->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		n = poll(&pfd, 1, timeout_ms > 0 ? (int)timeout_ms : 0);
		if (n == 0 || (n == -1 && errno == EINTR))
			break;
		if (n == -1) {
			snprintf(rpc->err, sizeof(rpc->err), "poll: %s",
			    strerror(errno));
			return -1;
		}
		if (redisBufferRead(rpc->sub) != REDIS_OK) {
			snprintf(rpc->err, sizeof(rpc->err), "read: %.96s",
			    rpc->sub->errstr);
			return -1;
		}
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

/*
 * Every revocation in Redis now, to fn (NULL after each batch, so the
 * caller can read its subscription meanwhile): SCAN the string keys of
 * users, then PTTL (and GET for cut-offs) pipelined per batch, on a
 * connection of its own.  0, or -1 (err filled) if Redis failed or fn
 * returned -1.
 */
int
store_revocations_load(store_rev_fn fn, void *arg, char *err, size_t errsz)
{
	redisContext		*c = NULL;
	redisReply		*r = NULL, *keys, *t = NULL, *v = NULL;
	struct revocation	*revs = NULL;
	char			 cursor[32] = "0", count[24];
	size_t			 i, n;
	int			 rc = -1;

	if (pool.host == NULL) {
		snprintf(err, errsz, "store not initialised");
		return -1;
	}
	if ((c = ctx_open(mono_ms() + pool.timeout_ms, err, errsz)) == NULL)
		return -1;
	snprintf(count, sizeof(count), "%d", STORE_SCAN_COUNT);
	do {
		/* only strings: skips sessions (hash), zsets and sets */
		r = redisCommand(c, "SCAN %s MATCH fa:{* COUNT %s TYPE string",
		    cursor, count);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY ||
		    r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[0]->len >= sizeof(cursor) ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			snprintf(err, errsz, "SCAN: %.96s", r == NULL ?
			    c->errstr : r->type == REDIS_REPLY_ERROR ? r->str :
			    "bad reply");
			goto out;
		}
		memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
		keys = r->element[1];
		free(revs);
		revs = xcalloc(keys->elements + 1, sizeof(*revs));
		for (i = n = 0; i < keys->elements; i++) {
			if (keys->element[i]->type != REDIS_REPLY_STRING ||
			    revocation_key(keys->element[i]->str,
			    keys->element[i]->len, &revs[n]) == -1)
				continue;
			redisAppendCommand(c, "PTTL %b", keys->element[i]->str,
			    keys->element[i]->len);
			if (revs[n].kind == REVOKE_CUTOFF)
				redisAppendCommand(c, "GET %b",
				    keys->element[i]->str,
				    keys->element[i]->len);
			n++;
		}
		freeReplyObject(r);
		r = NULL;
		for (i = 0; i < n; i++) {
			if (redisGetReply(c, (void **)&t) != REDIS_OK ||
			    t == NULL || (revs[i].kind == REVOKE_CUTOFF &&
			    (redisGetReply(c, (void **)&v) != REDIS_OK ||
			    v == NULL))) {
				snprintf(err, errsz, "PTTL: %.96s", c->errstr);
				goto out;
			}
			revs[i].value = 1;
			if (v != NULL && v->type == REDIS_REPLY_STRING)
				revs[i].value = strtoll(v->str, NULL, 10);
			/* -2: gone since the SCAN; -1: no TTL (never set so) */
			revs[i].ttl_ms = t->type != REDIS_REPLY_INTEGER ? -2 :
			    t->integer == -1 ? revoke_ttl(pool.access_ttl) *
			    1000LL : t->integer;
			freeReplyObject(t);
			freeReplyObject(v);
			t = v = NULL;
			if (revs[i].ttl_ms >= 0 && (revs[i].kind !=
			    REVOKE_CUTOFF || revs[i].value > 0) &&
			    fn(arg, &revs[i]) == -1) {
				snprintf(err, errsz, "load stopped");
				goto out;
			}
		}
		if (fn(arg, NULL) == -1) {
			snprintf(err, errsz, "load stopped");
			goto out;
		}
	} while (strcmp(cursor, "0") != 0);
	rc = 0;
out:
	freeReplyObject(t);
	freeReplyObject(v);
	freeReplyObject(r);
	free(revs);
	redisFree(c);
	return rc;
}
