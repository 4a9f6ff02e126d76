/*
 * A cache of verified access tokens for the verify hot path.  nginx asks
 * /auth/verify about the same token on every request of a session, and the
 * signature check is most of verify's own cost; a hit skips it.  A slot is
 * found by a BLAKE2b hash of the whole token under a key made at start, so
 * only a token byte-identical to one that passed token_verify() hits, and
 * the hit is refused once the token's exp (plus leeway) has passed.  What
 * the cache does not decide: revocation, checked on every request after it.
 * Direct-mapped and bounded (TCACHE_SLOTS), a lock per shard.
 *
 * A slot also records the key set (token_serial) the token was verified
 * under, read before verifying: after a reload that changed the keys, a
 * token verified under the old ones misses and is verified again, so a
 * removed key or secret stops working at once.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "extern.h"

struct tslot {
	unsigned char	 hash[TCACHE_HASH];
	int		 used;
	unsigned long	 serial;	/* token_serial() when verified */
	struct claims	 c;
};

static struct {
	unsigned char	 key[crypto_generichash_KEYBYTES];
	pthread_mutex_t	 lock[TCACHE_SHARDS];
	struct tslot	*slots;
	int		 ready;
} tc;

/* The clock of the exp check on a hit; tests move it (tcache_set_clock). */
static long long	(*tcache_now)(void) = now_ms;

void
tcache_set_clock(long long (*fn)(void))
{
	tcache_now = fn != NULL ? fn : now_ms;
}

int
tcache_init(void)
{
	size_t	 i;

	randombytes_buf(tc.key, sizeof(tc.key));
	for (i = 0; i < TCACHE_SHARDS; i++)
		pthread_mutex_init(&tc.lock[i], NULL);
	/* calloc'd lazily touched pages: idle RSS stays small */
	tc.slots = xcalloc(TCACHE_SLOTS, sizeof(*tc.slots));
	tc.ready = 1;
	return 0;
}

void
tcache_shutdown(void)
{
	size_t	 i;

	if (!tc.ready)
		return;
	tc.ready = 0;
	free(tc.slots);
	tc.slots = NULL;
	for (i = 0; i < TCACHE_SHARDS; i++)
		pthread_mutex_destroy(&tc.lock[i]);
	sodium_memzero(tc.key, sizeof(tc.key));
}

static size_t
tcache_slot(const unsigned char *h)
{
	size_t	 n;

	memcpy(&n, h, sizeof(n));
	return n & (TCACHE_SLOTS - 1);
}

/* Verify tok, from the cache when it was verified before: 0 valid, -1 not. */
int
tcache_verify(const char *tok, size_t len, struct claims *c)
{
	unsigned char	 h[TCACHE_HASH];
	struct tslot	*s;
	unsigned long	 serial;
	size_t		 i;
	int		 hit = 0;

	if (!tc.ready)
		return token_verify(tok, len, c);
	serial = token_serial();
	crypto_generichash(h, sizeof(h), (const unsigned char *)tok, len,
	    tc.key, sizeof(tc.key));
	i = tcache_slot(h);
	s = &tc.slots[i];
	pthread_mutex_lock(&tc.lock[i % TCACHE_SHARDS]);
	if (s->used && s->serial == serial &&
	    sodium_memcmp(s->hash, h, sizeof(h)) == 0) {
		*c = s->c;
		hit = 1;
	}
	pthread_mutex_unlock(&tc.lock[i % TCACHE_SHARDS]);
	if (hit) {
		if (tcache_now() / 1000 - cfg->jwt_leeway <= c->exp)
			return 0;
		memset(c, 0, sizeof(*c));
		return -1;
	}
	if (token_verify(tok, len, c) == -1)
		return -1;
	pthread_mutex_lock(&tc.lock[i % TCACHE_SHARDS]);
	memcpy(s->hash, h, sizeof(h));
	s->serial = serial;
	s->c = *c;
	s->used = 1;
	pthread_mutex_unlock(&tc.lock[i % TCACHE_SHARDS]);
	return 0;
}
