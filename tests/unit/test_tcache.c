/* The verified-token cache: hits equal token_verify, never past exp. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "extern.h"

struct config	*cfg;

#define SECRET	"0123456789abcdef0123456789abcdef-tcache"

static struct config	 conf;

static int
setup(void **state)
{
	char	*err = NULL;

	(void)state;
	config_defaults(&conf);
	free(conf.jwt_secret);
	conf.jwt_secret = strdup(SECRET);
	conf.jwt_secret_len = strlen(SECRET);
	conf.jwt_leeway = 0;
	conf.access_ttl = 1;
	cfg = &conf;
	if (token_init(&conf, &err) == -1)
		return -1;
	return tcache_init();
}

static int
teardown(void **state)
{
	(void)state;
	tcache_shutdown();
	token_shutdown();
	config_free(&conf);
	return 0;
}

static char *
issue(const char *email)
{
	struct claims	 c;
	char		*tok = NULL;

	memset(&c, 0, sizeof(c));
	snprintf(c.sub, sizeof(c.sub), "5d1c9a4e-3b7f-4f0e-9a51-2c8e7d6b1a90");
	snprintf(c.sid, sizeof(c.sid), "0b9f6a2c-7e34-4c1d-8f25-6a7b3c9d0e11");
	snprintf(c.email, sizeof(c.email), "%s", email);
	snprintf(c.roles, sizeof(c.roles), "user");
	assert_int_equal(token_issue(&c, 3, &tok), 0);
	return tok;
}

static void
a_hit_gives_the_same_claims_as_a_verify(void **state)
{
	struct claims	 a, b, v;
	char		*tok = issue("a@example.test");

	(void)state;
	assert_int_equal(token_verify(tok, strlen(tok), &v), 0);
	assert_int_equal(tcache_verify(tok, strlen(tok), &a), 0);
	assert_int_equal(tcache_verify(tok, strlen(tok), &b), 0);
	assert_memory_equal(&a, &v, sizeof(v));
	assert_memory_equal(&b, &v, sizeof(v));
	assert_int_equal(b.gen, 3);
	free(tok);
}

static void
a_changed_byte_is_never_a_hit(void **state)
{
	struct claims	 c;
	char		*tok = issue("b@example.test");
	size_t		 n = strlen(tok);

	(void)state;
	assert_int_equal(tcache_verify(tok, n, &c), 0);
	tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
	assert_int_equal(tcache_verify(tok, n, &c), -1);
	assert_int_equal(tcache_verify(tok, n - 1, &c), -1);
	assert_int_equal(tcache_verify("x.y.z", 5, &c), -1);
	free(tok);
}

static long long	 skew_ms;

static long long
skewed_now(void)
{
	return now_ms() + skew_ms;
}

static void
a_cached_token_expires(void **state)
{
	struct claims	 c;
	char		*tok = issue("c@example.test");

	(void)state;
	tcache_set_clock(skewed_now);
	assert_int_equal(tcache_verify(tok, strlen(tok), &c), 0);
	assert_int_equal(tcache_verify(tok, strlen(tok), &c), 0);	/* hit */
	skew_ms = 3000;		/* access_ttl 1, leeway 0 */
	assert_int_equal(tcache_verify(tok, strlen(tok), &c), -1);
	assert_int_equal(c.exp, 0);	/* no claims of a refused hit */
	tcache_set_clock(NULL);
	skew_ms = 0;
	free(tok);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_hit_gives_the_same_claims_as_a_verify),
		cmocka_unit_test(a_changed_byte_is_never_a_hit),
		cmocka_unit_test(a_cached_token_expires),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
