/*
 * Rate limits of the contract, as fixed windows in Redis; off with
 * ratelimit=off.  Each call: 0 allowed, 1 limited (*retry seconds), -1
 * Redis down.
 *
 * A password guess is reserved before the secret is checked, in three
 * scopes at once (store_rate_reserve, one Lua script): the account from
 * this client network (login_fail_per_email), the account from every
 * network (login_fail_per_account) and this network for every account
 * (login_fail_per_ip).  Nothing is counted when one scope is full, so N
 * parallel guesses past a limit are answered 429 without a hash.  Settling:
 * a wrong guess stays counted; a right one is given back in every scope and
 * clears the account-network counter (the owner's own typos from there are
 * forgiven, while failures from other networks still count against the
 * account); a guess that was never checked is given back.
 *
 * Unknown and malformed emails are reserved exactly like known ones: the
 * key is a hash of the email, not a user id, so a 429 says nothing about
 * whether an address exists.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "extern.h"

#define RL_HASH_BYTES	16	/* email hash in a key: 128 bits */
#define RL_V6_NET_BYTES	8	/* an IPv6 client network is a /64 */

_Static_assert(RATELIMIT__MAX <= STORE_RATE_KEYS,
    "a guess reserves more counters than one store script takes");

static const unsigned char rl_v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

void
ratelimit_net(char out[RATELIMIT_NET_MAX], const char *ip)
{
	struct in6_addr	 a6;
	char		 t[INET6_ADDRSTRLEN];

	if (inet_pton(AF_INET6, ip, &a6) != 1) {
		/* IPv4, or no address at all: a counter of its own */
		snprintf(out, RATELIMIT_NET_MAX, "%.*s", FA_IP_MAX, ip);
		return;
	}
	if (memcmp(a6.s6_addr, rl_v4mapped, sizeof(rl_v4mapped)) == 0) {
		inet_ntop(AF_INET, a6.s6_addr + sizeof(rl_v4mapped), t,
		    sizeof(t));
		snprintf(out, RATELIMIT_NET_MAX, "%s", t);
		return;
	}
	memset(a6.s6_addr + RL_V6_NET_BYTES, 0,
	    sizeof(a6.s6_addr) - RL_V6_NET_BYTES);
	inet_ntop(AF_INET6, &a6, t, sizeof(t));
	snprintf(out, RATELIMIT_NET_MAX, "%s/64", t);
}

/*
 * Per-email keys hold a hash of the email, not the email: the key has one
 * length whatever the address (store.c refuses keys longer than
 * STORE_KEY_MAX, which made every login with an email over 148 bytes a
 * 503), and Redis key names carry no addresses.  The keys of one guess
 * share the hash tag {lf}, so the reservation stays in one slot.
 */
static void
rl_email_hash(char hex[2 * RL_HASH_BYTES + 1], const char *email)
{
	unsigned char	 h[RL_HASH_BYTES];

	crypto_generichash(h, sizeof(h), (const unsigned char *)email,
	    strlen(email), NULL, 0);
	sodium_bin2hex(hex, 2 * RL_HASH_BYTES + 1, h, sizeof(h));
}

/* The counters of g with their limits; clear marks the release's DEL. */
static void
rl_guess_counters(const struct ratelimit_guess *g,
    struct store_rate c[RATELIMIT__MAX], int right)
{
	int	 i;

	for (i = 0; i < RATELIMIT__MAX; i++) {
		c[i].key = g->key[i];
		c[i].clear = right && i == RATELIMIT_ACCOUNT_NET;
	}
	c[RATELIMIT_ACCOUNT_NET].limit = cfg->login_fail_per_email;
	c[RATELIMIT_ACCOUNT].limit = cfg->login_fail_per_account;
	c[RATELIMIT_NET].limit = cfg->login_fail_per_ip;
}

int
ratelimit_guess(struct ratelimit_guess *g, const char *email,
    const char *ip, long *retry)
{
	struct store_rate	 c[RATELIMIT__MAX];
	char			 hex[2 * RL_HASH_BYTES + 1];
	char			 net[RATELIMIT_NET_MAX];
	int			 rc;

	memset(g, 0, sizeof(*g));
	*retry = 0;
	if (!cfg->ratelimit)
		return 0;
	rl_email_hash(hex, email);
	ratelimit_net(net, ip);
	snprintf(g->key[RATELIMIT_ACCOUNT_NET], RATELIMIT_KEY_MAX,
	    "{lf}:en:%s:%s", hex, net);
	snprintf(g->key[RATELIMIT_ACCOUNT], RATELIMIT_KEY_MAX, "{lf}:e:%s",
	    hex);
	snprintf(g->key[RATELIMIT_NET], RATELIMIT_KEY_MAX, "{lf}:ip:%s", net);
	rl_guess_counters(g, c, 0);
	if ((rc = store_rate_reserve(c, RATELIMIT__MAX, cfg->ratelimit_window,
	    retry)) == 0)
		g->held = 1;
	return rc;
}

/* 0, or -1 when Redis could not take the settlement. */
int
ratelimit_guess_settle(struct ratelimit_guess *g, enum guess_outcome o)
{
	struct store_rate	 c[RATELIMIT__MAX];

	if (!g->held || o == GUESS_WRONG)
		return 0;
	g->held = 0;
	rl_guess_counters(g, c, o == GUESS_RIGHT);
	return store_rate_release(c, RATELIMIT__MAX);
}

int
ratelimit_register(const char *ip, long *retry)
{
	char	 k[RATELIMIT_KEY_MAX], net[RATELIMIT_NET_MAX];

	*retry = 0;
	if (!cfg->ratelimit)
		return 0;
	ratelimit_net(net, ip);
	snprintf(k, sizeof(k), "reg:ip:%s", net);
	return store_rate_hit(k, cfg->register_per_ip, cfg->ratelimit_window,
	    retry);
}

int
ratelimit_mail(const char *email, const char *ip, long *retry)
{
	struct store_rate	 c[2];
	char			 hex[2 * RL_HASH_BYTES + 1];
	char			 net[RATELIMIT_NET_MAX];
	char			 ke[RATELIMIT_KEY_MAX], kn[RATELIMIT_KEY_MAX];

	*retry = 0;
	if (!cfg->ratelimit)
		return 0;
	rl_email_hash(hex, email);
	ratelimit_net(net, ip);
	snprintf(ke, sizeof(ke), "{ml}:e:%s", hex);
	snprintf(kn, sizeof(kn), "{ml}:ip:%s", net);
	memset(c, 0, sizeof(c));
	c[0].key = ke;
	c[0].limit = cfg->mail_per_email;
	c[1].key = kn;
	c[1].limit = cfg->mail_per_ip;
	return store_rate_reserve(c, 2, cfg->ratelimit_window, retry);
}
