/*
 * Rate limits of the contract: failed logins per email and per IP, and
 * registrations per IP, as fixed windows in Redis.  Off with ratelimit=off.
 * Each call: 0 allowed, 1 limited (*retry seconds), -1 Redis down.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "extern.h"

#define RL_HASH_BYTES	16	/* email hash in a key: 128 bits */
#define RL_KEY_MAX	64	/* "lf:e:" + 32 hex, "lf:ip:" + an address */

static void
rl_key(char *out, size_t sz, const char *kind, const char *who)
{
	snprintf(out, sz, "%s:%s", kind, who);
}

/*
 * Per-email keys hold a hash of the email, not the email: the key has one
 * length whatever the address (store.c refuses keys longer than
 * STORE_KEY_MAX, which made every login with an email over 148 bytes a
 * 503), and Redis key names carry no addresses.
 */
static void
rl_key_email(char *out, size_t sz, const char *email)
{
	unsigned char	 h[RL_HASH_BYTES];
	char		 hex[2 * RL_HASH_BYTES + 1];

	crypto_generichash(h, sizeof(h), (const unsigned char *)email,
	    strlen(email), NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	rl_key(out, sz, "lf:e", hex);
}

int
ratelimit_login_check(const char *email, const char *ip, long *retry)
{
	char	 k[RL_KEY_MAX];
	int	 rc;

	if (!cfg->ratelimit)
		return 0;
	rl_key_email(k, sizeof(k), email);
	if ((rc = store_rate_peek(k, cfg->login_fail_per_email, retry)) != 0)
		return rc;
	rl_key(k, sizeof(k), "lf:ip", ip);
	return store_rate_peek(k, cfg->login_fail_per_ip, retry);
}

void
ratelimit_login_failed(const char *email, const char *ip)
{
	char	 k[RL_KEY_MAX];
	long	 retry;

	if (!cfg->ratelimit)
		return;
	rl_key_email(k, sizeof(k), email);
	(void)store_rate_hit(k, cfg->login_fail_per_email,
	    cfg->ratelimit_window, &retry);
	rl_key(k, sizeof(k), "lf:ip", ip);
	(void)store_rate_hit(k, cfg->login_fail_per_ip,
	    cfg->ratelimit_window, &retry);
}

void
ratelimit_login_ok(const char *email)
{
	char	 k[RL_KEY_MAX];

	if (!cfg->ratelimit)
		return;
	rl_key_email(k, sizeof(k), email);
	(void)store_rate_clear(k);
}

int
ratelimit_register(const char *ip, long *retry)
{
	char	 k[RL_KEY_MAX];

	if (!cfg->ratelimit)
		return 0;
	rl_key(k, sizeof(k), "reg:ip", ip);
	return store_rate_hit(k, cfg->register_per_ip, cfg->ratelimit_window,
	    retry);
}

void
ratelimit_answer(struct request *r, long retry)
{
	char	 v[24];

	snprintf(v, sizeof(v), "%ld", retry > 0 ? retry : 1);
	resp_error(r, ERR_TOO_MANY, NULL);
	resp_header(r, "Retry-After", v);
}
