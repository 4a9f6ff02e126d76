/*
 * store_mfa.c: pending second steps in Redis, fa:mfa:<keyed hash of the
 * mfaToken>: create, read, count a wrong code, take (single use).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "extern.h"
#include "store_int.h"

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

	if (mfa_key(k, hash) == -1 || !store_id_ok(m->uid)) {
		log_error(NULL, "redis: mfa create: bad arguments");
		return -1;
	}
	snprintf(sttl, sizeof(sttl), "%ld", ttl > 0 ? ttl : 1);
	args[0] = m->uid;
	args[1] = m->ip;
	args[2] = m->ua;
	args[3] = sttl;
	if (store_op_begin(&op, SC_MFA_CREATE, k, 4, args, 0, &r) == -1)
		return -1;
	return store_op_end(&op, r, 0);
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
	if (store_pool_get(&op) == -1)
		return -1;
	if (store_op_cmd(&op, 5, argv, len, &r, "HMGET") == -1)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
		op.broken = 1;
		goto out;
	}
	rc = 1;
	e = r->element[0];
	if (e->type != REDIS_REPLY_STRING || !store_id_ok(e->str))
		goto out;
	snprintf(m->uid, sizeof(m->uid), "%s", e->str);
	if ((e = r->element[1])->type == REDIS_REPLY_STRING)
		snprintf(m->ip, sizeof(m->ip), "%s", e->str);
	if ((e = r->element[2])->type == REDIS_REPLY_STRING)
		snprintf(m->ua, sizeof(m->ua), "%s", e->str);
	rc = 0;
out:
	return store_op_end(&op, r, rc);
}

int
store_mfa_wrong(const char *hash, long max, int *voided)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 k[STORE_KEY_MAX], smax[24];
	const char	*args[1] = { smax };
	long long	 n;

	*voided = 1;
	if (mfa_key(k, hash) == -1)
		return 0;
	snprintf(smax, sizeof(smax), "%ld", max);
	if (store_op_begin(&op, SC_MFA_WRONG, k, 1, args, 0, &r) == -1)
		return -1;
	if (store_op_int(&op, r, &n) == -1)
		return store_op_end(&op, r, -1);
	*voided = n < 0 || n >= max;
	return store_op_end(&op, r, 0);
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
	if (store_pool_get(&op) == -1)
		return -1;
	if (store_op_cmd(&op, 2, argv, len, &r, "DEL") == 0 &&
	    store_op_int(&op, r, &n) == 0)
		rc = n == 1 ? 0 : 1;
	return store_op_end(&op, r, rc);
}
