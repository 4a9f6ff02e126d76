/*
 * Refresh tokens.  A refresh token is
 * base64url(user id | session id | 32 random bytes): it carries the ids its
 * Redis keys need, so no global index exists.  Redis keeps only its keyed
 * hash, and the current one sealed under a server key for the grace answer.
 */
#include "config.h"

#include <string.h>

#include <sodium.h>

#include "extern.h"

void
refresh_new(struct refresh *rt, const char *uid, const char *sid)
{
	unsigned char	 u[16], s[16];

	uuid_parse(u, uid, strlen(uid));
	uuid_parse(s, sid, strlen(sid));
	memcpy(rt->raw, u, 16);
	memcpy(rt->raw + 16, s, 16);
	randombytes_buf(rt->raw + 32, FA_REFRESH_RANDOM);
	refresh_finish(rt);
}

/* Fill text, ids and hash from rt->raw. */
void
refresh_finish(struct refresh *rt)
{
	b64url_encode(rt->text, sizeof(rt->text), rt->raw, sizeof(rt->raw));
	uuid_format(rt->uid, rt->raw);
	uuid_format(rt->sid, rt->raw + 16);
	token_refresh_hash(rt->hash, rt->raw, sizeof(rt->raw));
}

int
refresh_parse(struct refresh *rt, const char *text, size_t len)
{
	size_t	 n;

	if (len != FA_REFRESH_LEN || b64url_decode(rt->raw, sizeof(rt->raw),
	    &n, text, len) == -1 || n != sizeof(rt->raw))
		return -1;
	refresh_finish(rt);
	return 0;
}

/*
 * The token's hash under jwt_secret_previous, for a token issued before a
 * rotation: 0 and out filled, or -1 when no previous secret is set.
 */
int
refresh_hash_previous(const struct refresh *rt, char out[FA_HASH_HEX + 1])
{
	return token_refresh_hash_previous(out, rt->raw, sizeof(rt->raw));
}

/* The sealed form of the token, kept for answers within the grace window. */
int
refresh_seal(const struct refresh *rt, char **out)
{
	return token_seal(out, rt->raw, sizeof(rt->raw));
}

int
refresh_open(struct refresh *rt, const char *sealed)
{
	size_t	 n;

	if (token_open(rt->raw, sizeof(rt->raw), &n, sealed) == -1 ||
	    n != sizeof(rt->raw))
		return -1;
	refresh_finish(rt);
	return 0;
}
