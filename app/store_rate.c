/*
 * store_rate.c: fixed-window rate counters in Redis, fa:rl:<key>: count a
 * hit, reserve one attempt in several counters atomically, give it back.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "extern.h"
#include "store_int.h"

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
	if (store_op_begin(&op, sc, k, window ? 1 : 0, args, 0, &r) == -1)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    store_reply_int(r->element[0], count) == -1 ||
	    store_reply_int(r->element[1], ttl) == -1)
		op.broken = 1;
	else
		rc = 0;
	return store_op_end(&op, r, rc);
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
	if (store_pool_get(&op) == -1)
		return -1;
	if (store_op_evalv(&op, SC_RATE_RESERVE, (int)n, kp, (int)n + 1, ap,
	    &r) == -1)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    store_reply_int(r->element[0], &over) == -1 ||
	    store_reply_int(r->element[1], &t) == -1) {
		op.broken = 1;
		goto out;
	}
	if (over)
		*retry = t > 0 ? (long)t : 1;
	rc = over ? 1 : 0;
out:
	return store_op_end(&op, r, rc);
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
	if (store_pool_get(&op) == -1)
		return -1;
	if (store_op_evalv(&op, SC_RATE_RELEASE, (int)n, kp, (int)n, ap,
	    &r) == 0)
		rc = 0;
	return store_op_end(&op, r, rc);
}
