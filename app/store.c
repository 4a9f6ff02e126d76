/*
 * store.c: the Redis backend.  A pool of hiredis contexts made on first
 * borrow (AUTH, SELECT and SCRIPT LOAD pipelined in one round trip), every
 * wait bounded by one deadline of backend_timeout_ms so a stopped or
 * unreachable Redis is -1 (503) in about a second, never a hang.  A context
 * that failed, timed out or got an error reply is dropped and re-made by the
 * next borrow.  Session changes are Lua scripts run by EVALSHA, atomic and
 * in one slot: every key of a user carries the hash tag {<user id>}.
 *
 *   fa:{U}:sess:<sid>	hash: created last ip ua cur par rot enc
 *   fa:{U}:sessions	zset: sid by created ms
 *   fa:{U}:used:<sid>	set: refresh hashes rotated away (reuse detection);
 *			kept as long as the srev marker once the session is
 *			revoked, so late replays still read as reuse
 *   fa:{U}:srev:<sid>	revoked session: its access tokens are dead
 *   fa:{U}:cutoff	the user's revocation generation: access tokens whose
 *			gen claim is lower are dead
 *   fa:{U}:bl:<jti>	blacklisted access token
 *   fa:rl:<key>		fixed-window rate counter
 *
 * Every key has a TTL.  Reply ownership: each redisReply is freed once, by
 * the function that received it, on every path.  Tokens and refresh hashes
 * are never logged.
 */
#include "config.h"

#include <sys/time.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "extern.h"

#define SHA_HEX		40
#define ARGV_MAX	16

/*
 * Shared by every session script: KEYS[1] is fa:{U}:sessions, ARGV[1] the
 * prefix fa:{U}: of the user's keys.
 */
#define LUA_PRELUDE \
	"local p, z = ARGV[1], KEYS[1]\n" \
	"local function revoke(sid, rttl)\n" \
	"  redis.call('DEL', p .. 'sess:' .. sid)\n" \
	"  redis.call('EXPIRE', p .. 'used:' .. sid, rttl)\n" \
	"  redis.call('ZREM', z, sid)\n" \
	"  redis.call('SET', p .. 'srev:' .. sid, '1', 'EX', rttl)\n" \
	"end\n" \
	"local function cutoff()\n" \
	"  return tonumber(redis.call('GET', p .. 'cutoff') or '0') or 0\n" \
	"end\n" \
	"local function raise_cutoff(now_s, rttl)\n" \
	"  local c = cutoff() + 1\n" \
	"  redis.call('SET', p .. 'cutoff', c, 'EX', rttl)\n" \
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
	SC_RATE_HIT,
	SC_RATE_PEEK,
	SC__MAX
};

static const char *const scripts[SC__MAX] = {
	/* ARGV: p sid rhash ip ua now_ms ttl max rttl -> {cutoff, {revoked}} */
	[SC_CREATE] = (LUA_PRELUDE
	"local sid, now, ttl = ARGV[2], tonumber(ARGV[6]), tonumber(ARGV[7])\n"
	"local max, rttl = tonumber(ARGV[8]), tonumber(ARGV[9])\n"
	"local sk = p .. 'sess:' .. sid\n"
	"redis.call('HSET', sk, 'created', now, 'last', now, 'ip', ARGV[4],"
	" 'ua', ARGV[5], 'cur', ARGV[3], 'par', '', 'rot', 0, 'enc', '')\n"
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
	 * ARGV: p sid presented newhash newenc grace_s ttl now_ms rttl
	 * -> {0 ok | 1 grace | 2 reuse | 3 revoked before | 4 unknown, cutoff, enc}
	 */
	[SC_ROTATE] = (LUA_PRELUDE
	"local sid, pres = ARGV[2], ARGV[3]\n"
	"local grace, ttl = tonumber(ARGV[6]), tonumber(ARGV[7])\n"
	"local now, rttl = tonumber(ARGV[8]), tonumber(ARGV[9])\n"
	"local sk, uk = p .. 'sess:' .. sid, p .. 'used:' .. sid\n"
	"local h = redis.call('HMGET', sk, 'cur', 'par', 'rot', 'enc')\n"
	"if not h[1] then\n"
	"  if redis.call('SISMEMBER', uk, pres) == 1 then\n"
	"    return {3, cutoff(), ''}\n"
	"  end\n"
	"  return {4, cutoff(), ''}\n"
	"end\n"
	"if h[1] == pres then\n"
	"  redis.call('SADD', uk, pres)\n"
	"  redis.call('HSET', sk, 'par', pres, 'cur', ARGV[4], 'enc', ARGV[5],"
	" 'rot', now, 'last', now)\n"
	"  redis.call('EXPIRE', sk, ttl)\n"
	"  redis.call('EXPIRE', uk, ttl)\n"
	"  keep_zset(ttl)\n"
	"  return {0, cutoff(), ''}\n"
	"end\n"
	"if h[2] == pres and grace > 0 and"
	" now - (tonumber(h[3]) or 0) <= grace * 1000 then\n"
	"  redis.call('HSET', sk, 'last', now)\n"
	"  return {1, cutoff(), h[4] or ''}\n"
	"end\n"
	"if h[2] == pres or redis.call('SISMEMBER', uk, pres) == 1 then\n"
	"  revoke(sid, rttl)\n"
	"  return {2, cutoff(), ''}\n"
	"end\n"
	"return {4, cutoff(), ''}\n"),

	/* ARGV: p sid rttl -> 0 revoked | 1 no such session */
	[SC_REVOKE] = (LUA_PRELUDE
	"if redis.call('EXISTS', p .. 'sess:' .. ARGV[2]) == 0 then\n"
	"  redis.call('ZREM', z, ARGV[2])\n"
	"  return 1\n"
	"end\n"
	"revoke(ARGV[2], tonumber(ARGV[3]))\n"
	"return 0\n"),

	/* ARGV: p sid rhash rttl -> 0 revoked | 1 no such session or token */
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

	/* ARGV: p keep_sid|'' now_s rttl -> cutoff */
	[SC_REVOKE_ALL] = (LUA_PRELUDE
	"local rttl = tonumber(ARGV[4])\n"
	"for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do\n"
	"  if m ~= ARGV[2] then revoke(m, rttl) end\n"
	"end\n"
	"return raise_cutoff(tonumber(ARGV[3]), rttl)\n"),

	/* ARGV: p now_s rttl -> cutoff */
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

	/* KEYS[1] counter; ARGV: window -> {count, ttl} */
	[SC_RATE_HIT] = (
	"local n = redis.call('INCR', KEYS[1])\n"
	"local t = redis.call('TTL', KEYS[1])\n"
	"if n == 1 or t < 0 then\n"
	"  redis.call('EXPIRE', KEYS[1], ARGV[1])\n"
	"  t = tonumber(ARGV[1])\n"
	"end\n"
	"return {n, t}\n"),

	/* KEYS[1] counter -> {count, ttl} */
	[SC_RATE_PEEK] = (
	"local n = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
	"return {n, redis.call('TTL', KEYS[1])}\n"),
};

struct rconn {
	redisContext	*c;
	int		 busy;
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
	int		 down;		/* logged as down; under mu */
} pool = { .mu = PTHREAD_MUTEX_INITIALIZER };

static long long
mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval
ms_tv(long long ms)
{
	struct timeval	 tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return tv;
}

static void
store_note_down(const char *what, const char *msg)
{
	int	 was;

	pthread_mutex_lock(&pool.mu);
	was = pool.down;
	pool.down = 1;
	pthread_mutex_unlock(&pool.mu);
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

/*
 * Connect, authenticate, select and load the scripts, all before the
 * deadline: the commands are pipelined, one round trip.
 */
static int
conn_open(struct rconn *rc, long long deadline)
{
	redisReply	*r = NULL;
	char		 dbnum[24];
	long long	 left;
	int		 i, nsent = 0, rcv = 0, ok = 1;

	if ((left = deadline - mono_ms()) <= 0) {
		store_note_down("connect", "no time left");
		return -1;
	}
	if (pool.host[0] == '/')
		rc->c = redisConnectUnixWithTimeout(pool.host, ms_tv(left));
	else
		rc->c = redisConnectWithTimeout(pool.host, pool.port,
		    ms_tv(left));
	if (rc->c == NULL || rc->c->err) {
		store_note_down("connect", rc->c ? rc->c->errstr : "no memory");
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
	for (i = 0; i < SC__MAX; i++)
		redisAppendCommand(rc->c, "SCRIPT LOAD %s", scripts[i]);
	for (i = 0; i < nsent + SC__MAX; i++, rcv++) {
		if (get_reply(rc, &r, "connect") == -1)
			goto fail;
		if (r->type == REDIS_REPLY_ERROR) {
			/* the text of AUTH errors holds no secret */
			log_error(NULL, "redis: setup: %s", r->str);
			ok = 0;
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

/* Borrow a ready context before op->deadline: 0, or -1 (unavailable). */
static int
pool_get(struct rop *op)
{
	struct rconn	*rc = NULL, *c;
	struct timespec	 ts;
	long long	 left;
	size_t		 i;

	op->rc = NULL;
	op->broken = 0;
	op->deadline = mono_ms() + pool.timeout_ms;
	if (pool.slot == NULL)
		return -1;
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
	pthread_mutex_unlock(&pool.mu);

	if (rc->c != NULL && conn_stale(rc))
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
 * EVALSHA script with one key and nargs arguments (lengths by strlen), once
 * more after reloading the scripts if Redis answers NOSCRIPT.
 */
static int
op_eval(struct rop *op, enum script sc, const char *key, int nargs,
    const char **args, redisReply **out)
{
	redisReply	*r;
	const char	*argv[ARGV_MAX];
	size_t		 len[ARGV_MAX];
	int		 i, argc, try;

	*out = NULL;
	if (nargs + 4 > ARGV_MAX)
		return -1;
	for (try = 0; try < 2; try++) {
		argc = 0;
		argv[argc++] = "EVALSHA";
		argv[argc++] = op->rc->sha[sc];
		argv[argc++] = "1";
		argv[argc++] = key;
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
		freeReplyObject(r);
		op->broken = 1;
		return -1;
	}
	return -1;
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
    const char *ip, const char *ua, long ttl, long max, char ***revoked,
    size_t *nrevoked, long long *cutoff)
{
	struct rop	 op;
	redisReply	*r = NULL, *list;
	char		 p[STORE_KEY_MAX], z[STORE_KEY_MAX];
	char		 now[24], sttl[24], smax[24], rttl[24];
	char		 uabuf[FA_UA_MAX + 1], ipbuf[FA_IP_MAX + 1];
	const char	*args[9];
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
	if (pool_get(&op) == -1)
		return -1;
	if (op_eval(&op, SC_CREATE, z, 9, args, &r) == -1)
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
			if (list->element[i]->type == REDIS_REPLY_STRING)
				out[n++] = xstrdup(list->element[i]->str);
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
    enum rotate_result *res, char **child_enc, long long *cutoff)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 p[STORE_KEY_MAX], z[STORE_KEY_MAX];
	char		 sgrace[24], sttl[24], now[24], rttl[24];
	const char	*args[9];
	long long	 code;
	int		 rc = -1;

	*res = ROTATE_UNKNOWN;
	*child_enc = NULL;
	*cutoff = 0;
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
	if (pool_get(&op) == -1)
		return -1;
	if (op_eval(&op, SC_ROTATE, z, 9, args, &r) == -1)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    reply_int(r->element[0], &code) == -1 ||
	    reply_int(r->element[1], cutoff) == -1 ||
	    r->element[2]->type != REDIS_REPLY_STRING ||
	    code < ROTATE_OK || code > ROTATE_UNKNOWN) {
		log_error(NULL, "redis: rotate: bad reply");
		op.broken = 1;
		goto out;
	}
	*res = (enum rotate_result)code;
	if (*res == ROTATE_GRACE)
		*child_enc = xstrdup(r->element[2]->str);
	rc = 0;
out:
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

/* 0 revoked, 1 no such session of that user, -1 unavailable. */
int
store_session_revoke(const char *uid, const char *sid, long access_ttl)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 p[STORE_KEY_MAX], z[STORE_KEY_MAX], rttl[24];
	const char	*args[3];
	long long	 v;
	int		 rc = -1;

	if (!id_ok(uid) || !id_ok(sid))
		return 1;
	user_keys(uid, p, z);
	snprintf(rttl, sizeof(rttl), "%ld", revoke_ttl(access_ttl));
	args[0] = p;
	args[1] = sid;
	args[2] = rttl;
	if (pool_get(&op) == -1)
		return -1;
	if (op_eval(&op, SC_REVOKE, z, 3, args, &r) == -1)
		goto out;
	if (reply_int(r, &v) == -1) {
		op.broken = 1;
		goto out;
	}
	rc = v == 0 ? 0 : 1;
out:
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

int
store_session_revoke_refresh(const char *uid, const char *sid,
    const char *rhash, long access_ttl)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 p[STORE_KEY_MAX], z[STORE_KEY_MAX], rttl[24];
	const char	*args[4];
	long long	 v;
	int		 rc = -1;

	if (!id_ok(uid) || !id_ok(sid) || rhash == NULL || *rhash == '\0')
		return 1;
	user_keys(uid, p, z);
	snprintf(rttl, sizeof(rttl), "%ld", revoke_ttl(access_ttl));
	args[0] = p;
	args[1] = sid;
	args[2] = rhash;
	args[3] = rttl;
	if (pool_get(&op) == -1)
		return -1;
	if (op_eval(&op, SC_REVOKE_REFRESH, z, 4, args, &r) == -1)
		goto out;
	if (reply_int(r, &v) == -1) {
		op.broken = 1;
		goto out;
	}
	rc = v == 0 ? 0 : 1;
out:
	freeReplyObject(r);
	pool_put(&op);
	return rc;
}

static int
cutoff_script(enum script sc, const char *uid, const char *keep_sid,
    long access_ttl, long long *cutoff)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 p[STORE_KEY_MAX], z[STORE_KEY_MAX], now[24], rttl[24];
	const char	*args[4];
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
	if (pool_get(&op) == -1)
		return -1;
	if (op_eval(&op, sc, z, n, args, &r) == -1)
		goto out;
	if (reply_int(r, cutoff) == -1) {
		op.broken = 1;
		goto out;
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
	return cutoff_script(SC_REVOKE_ALL, uid, keep_sid, access_ttl, cutoff);
}

int
store_user_cutoff(const char *uid, long access_ttl, long long *cutoff)
{
	return cutoff_script(SC_CUTOFF, uid, NULL, access_ttl, cutoff);
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
		snprintf(s->user_agent, sizeof(s->user_agent), "%s", e[4]->str);
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

int
store_blacklist(const char *uid, const char *jti, long ttl)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 key[STORE_KEY_MAX], sttl[24];
	const char	*argv[5];
	size_t		 len[5];
	int		 i, rc = -1;

	if (!id_ok(uid) || jti == NULL || strlen(jti) > FA_JTI_LEN ||
	    *jti == '\0') {
		log_error(NULL, "redis: blacklist: bad arguments");
		return -1;
	}
	snprintf(key, sizeof(key), "fa:{%s}:bl:%s", uid, jti);
	snprintf(sttl, sizeof(sttl), "%ld", ttl >= 1 ? ttl : 1);
	argv[0] = "SET";
	argv[1] = key;
	argv[2] = "1";
	argv[3] = "EX";
	argv[4] = sttl;
	for (i = 0; i < 5; i++)
		len[i] = strlen(argv[i]);
	if (pool_get(&op) == -1)
		return -1;
	if (op_cmd(&op, 5, argv, len, &r, "SET") == 0)
		rc = 0;
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

/* Without counting: 1 when limit hits already fell in the window. */
int
store_rate_peek(const char *key, long limit, long *retry)
{
	long long	 n, ttl;

	*retry = 0;
	if (rate_script(SC_RATE_PEEK, key, NULL, &n, &ttl) == -1)
		return -1;
	if (n < limit)
		return 0;
	*retry = ttl > 0 ? (long)ttl : 1;
	return 1;
}

int
store_rate_clear(const char *key)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 k[STORE_KEY_MAX];
	const char	*argv[2];
	size_t		 len[2];
	int		 rc = -1;

	if (key == NULL || strlen(key) + sizeof("fa:rl:") > sizeof(k))
		return -1;
	argv[0] = "DEL";
	argv[1] = k;
	len[0] = 3;
	len[1] = (size_t)snprintf(k, sizeof(k), "fa:rl:%s", key);
	if (pool_get(&op) == -1)
		return -1;
	if (op_cmd(&op, 2, argv, len, &r, "DEL") == 0)
		rc = 0;
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
