/*
 * store_parse.c: the pure parts of the Redis backend, no I/O: which ids
 * may go into keys, and the revocation feed's message parser (fuzzed by
 * tests/fuzz/fuzz_revocation.c).
 */
#include "config.h"

#include <limits.h>
#include <string.h>

#include "extern.h"
#include "store_int.h"

/*
 * Ids that go into keys: [A-Za-z0-9_-], 1..FA_UUID_LEN bytes, so no id can
 * reach into another user's hash tag or key.
 */
int
store_id_ok(const char *s)
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

/*
 * The revocation feed (revoke.c).  A revocation key names its kind, user
 * and id: fa:{U}:bl:<jti>, fa:{U}:srev:<sid> or fa:{U}:cutoff.  0 and *out
 * filled (ttl_ms and value left to the caller), or -1 for any other key.
 */
int
store_revocation_key(const char *key, size_t len, struct revocation *out)
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
	if (!store_id_ok(out->uid))
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
		return store_id_ok(out->key) ? 0 : -1;
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
	    store_revocation_key(msg, (size_t)(k - msg), out) == -1)
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
