/*
 * Rate limits of the contract: failed logins per email and per IP, and
 * registrations per IP, as fixed windows in Redis.  Off with ratelimit=off.
 * Each call: 0 allowed, 1 limited (*retry seconds), -1 Redis down.
 */
#include "config.h"

#include <stdio.h>

#include "extern.h"

#define RL_KEY_MAX	(FA_EMAIL_MAX + 32)

static void
rl_key(char *out, size_t sz, const char *kind, const char *who)
{
	snprintf(out, sz, "%s:%s", kind, who);
}

int
ratelimit_login_check(const char *email, const char *ip, long *retry)
{
	char	 k[RL_KEY_MAX];
	int	 rc;

	if (!cfg->ratelimit)
		return 0;
	rl_key(k, sizeof(k), "lf:e", email);
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
	rl_key(k, sizeof(k), "lf:e", email);
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
	rl_key(k, sizeof(k), "lf:e", email);
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
