/*
 * test_password.c: Argon2id hashes verify, wrong passwords and unknown
 * users do not, imported bcrypt and weaker Argon2 hashes verify and ask
 * for a rehash, and the hash pool serves concurrent callers.  A small cost
 * keeps the suite fast.
 */
#include "config.h"

#include <crypt.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "extern.h"

struct config	*cfg;

#define OPS		2
#define MEM		(8 * 1024 * 1024)
#define THREADS		2
#define CALLERS		6
#define BCRYPT_COST	10

static struct config	 conf;

static const char	 pw[] = "correct horse battery staple";

static int
setup(void **state)
{
	(void)state;
	memset(&conf, 0, sizeof(conf));
	conf.password_opslimit = OPS;
	conf.password_memlimit = MEM;
	conf.hash_threads = THREADS;
	cfg = &conf;
	return password_init(&conf);
}

static int
teardown(void **state)
{
	(void)state;
	password_shutdown();
	return 0;
}

static void
hash_then_verify_matches(void **state)
{
	char	 h[crypto_pwhash_STRBYTES];
	int	 rehash = -1;

	(void)state;
	assert_int_equal(password_hash(pw, strlen(pw), h), 0);
	assert_memory_equal(h, "$argon2id$", 10);
	assert_int_equal(password_verify(h, pw, strlen(pw), &rehash), 0);
	assert_int_equal(rehash, 0);
}

static void
hashes_of_one_password_differ(void **state)
{
	char	 a[crypto_pwhash_STRBYTES], b[crypto_pwhash_STRBYTES];

	(void)state;
	assert_int_equal(password_hash(pw, strlen(pw), a), 0);
	assert_int_equal(password_hash(pw, strlen(pw), b), 0);
	assert_string_not_equal(a, b);
}

static void
wrong_password_mismatches(void **state)
{
	char	 h[crypto_pwhash_STRBYTES];
	int	 rehash = -1;

	(void)state;
	assert_int_equal(password_hash(pw, strlen(pw), h), 0);
	assert_int_equal(password_verify(h, "correct horse battery stapl",
	    strlen(pw) - 1, &rehash), 1);
	assert_int_equal(rehash, 0);
	assert_int_equal(password_verify(h, "", 0, &rehash), 1);
}

static void
every_byte_of_the_password_counts(void **state)
{
	const char	 nul[] = "abc\0def";
	char		 h[crypto_pwhash_STRBYTES];
	int		 rehash;

	(void)state;
	assert_int_equal(password_hash(nul, sizeof(nul) - 1, h), 0);
	assert_int_equal(password_verify(h, nul, sizeof(nul) - 1, &rehash), 0);
	assert_int_equal(password_verify(h, "abc", 3, &rehash), 1);
}

static void
unknown_user_mismatches(void **state)
{
	int	 rehash = -1;

	(void)state;
	assert_int_equal(password_verify(NULL, pw, strlen(pw), &rehash), 1);
	assert_int_equal(rehash, 0);
	assert_int_equal(password_verify(NULL, "", 0, NULL), 1);
}

static void
unknown_hash_format_mismatches(void **state)
{
	int	 rehash = -1;

	(void)state;
	assert_int_equal(password_verify("", pw, strlen(pw), &rehash), 1);
	assert_int_equal(password_verify(pw, pw, strlen(pw), &rehash), 1);
	assert_int_equal(password_verify("$1$abc$def", pw, strlen(pw),
	    &rehash), 1);
	assert_int_equal(password_verify("$argon2id$v=19$garbage", pw,
	    strlen(pw), &rehash), 1);
	assert_int_equal(password_verify("$2b$10$short", pw, strlen(pw),
	    &rehash), 1);
	assert_int_equal(rehash, 0);
}

static void
bcrypt_hash_verifies_and_asks_for_rehash(void **state)
{
	char		 salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	char		*h;
	int		 rehash = -1;

	(void)state;
	assert_non_null(crypt_gensalt_rn("$2b$", BCRYPT_COST, NULL, 0, salt,
	    sizeof(salt)));
	assert_memory_equal(salt, "$2b$10$", 7);
	cd = xcalloc(1, sizeof(*cd));
	assert_non_null(crypt_rn(pw, salt, cd, sizeof(*cd)));
	h = xstrdup(cd->output);
	free(cd);
	assert_memory_equal(h, "$2b$10$", 7);

	assert_int_equal(password_verify(h, pw, strlen(pw), &rehash), 0);
	assert_int_equal(rehash, 1);
	assert_int_equal(password_verify(h, "Correct horse battery staple",
	    strlen(pw), &rehash), 1);
	assert_int_equal(rehash, 0);
	/* A NUL cannot be part of a bcrypt password. */
	assert_int_equal(password_verify(h, pw, strlen(pw) + 1, &rehash), 1);
	/* $2y$ (PHP) and $2a$ spell the same hash for such passwords. */
	h[2] = 'y';
	assert_int_equal(password_verify(h, pw, strlen(pw), &rehash), 0);
	assert_int_equal(rehash, 1);
	h[2] = 'a';
	assert_int_equal(password_verify(h, pw, strlen(pw), &rehash), 0);
	free(h);
}

static void
weaker_argon2_hash_verifies_and_asks_for_rehash(void **state)
{
	char	 h[crypto_pwhash_STRBYTES];
	int	 rehash = -1;

	(void)state;
	assert_int_equal(crypto_pwhash_str(h, pw, strlen(pw), OPS - 1, MEM),
	    0);
	assert_int_equal(password_verify(h, pw, strlen(pw), &rehash), 0);
	assert_int_equal(rehash, 1);
	assert_int_equal(crypto_pwhash_str(h, pw, strlen(pw), OPS, MEM / 2),
	    0);
	assert_int_equal(password_verify(h, pw, strlen(pw), &rehash), 0);
	assert_int_equal(rehash, 1);
	/* Argon2i (an older variant) too. */
	assert_int_equal(crypto_pwhash_argon2i_str(h, pw, strlen(pw),
	    crypto_pwhash_argon2i_OPSLIMIT_MIN, MEM), 0);
	assert_int_equal(password_verify(h, pw, strlen(pw), &rehash), 0);
	assert_int_equal(rehash, 1);
	/* Mismatches never ask for a rehash. */
	assert_int_equal(password_verify(h, "nope", 4, &rehash), 1);
	assert_int_equal(rehash, 0);
}

struct caller {
	const char	*hash;
	int		 ok;
};

static void *
call(void *arg)
{
	struct caller	*c = arg;
	int		 rehash;

	c->ok = password_verify(c->hash, pw, strlen(pw), &rehash) == 0 &&
	    password_verify(c->hash, "x", 1, &rehash) == 1 &&
	    password_verify(NULL, pw, strlen(pw), &rehash) == 1;
	return NULL;
}

static void
pool_serves_more_callers_than_threads(void **state)
{
	char		 h[crypto_pwhash_STRBYTES];
	pthread_t	 t[CALLERS];
	struct caller	 c[CALLERS];
	size_t		 i;

	(void)state;
	assert_int_equal(password_hash(pw, strlen(pw), h), 0);
	for (i = 0; i < CALLERS; i++) {
		c[i].hash = h;
		c[i].ok = 0;
		assert_int_equal(pthread_create(&t[i], NULL, call, &c[i]), 0);
	}
	for (i = 0; i < CALLERS; i++) {
		pthread_join(t[i], NULL);
		assert_true(c[i].ok);
	}
}

static void
after_shutdown_calls_fail_and_init_restarts(void **state)
{
	char	 h[crypto_pwhash_STRBYTES];
	int	 rehash;

	(void)state;
	password_shutdown();
	assert_int_equal(password_hash(pw, strlen(pw), h), -1);
	assert_int_equal(password_verify(NULL, pw, strlen(pw), &rehash), -1);
	password_shutdown();		/* twice is fine */
	conf.hash_threads = 0;		/* one per core */
	assert_int_equal(password_init(&conf), 0);
	assert_int_equal(password_hash(pw, strlen(pw), h), 0);
	assert_int_equal(password_verify(h, pw, strlen(pw), &rehash), 0);
}

static void
init_rejects_cost_out_of_range(void **state)
{
	struct config	 bad = conf;

	(void)state;
	password_shutdown();
	bad.password_opslimit = 0;
	assert_int_equal(password_init(&bad), -1);
	bad.password_opslimit = OPS;
	bad.password_memlimit = 1024;
	assert_int_equal(password_init(&bad), -1);
	assert_int_equal(password_init(&conf), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hash_then_verify_matches),
		cmocka_unit_test(hashes_of_one_password_differ),
		cmocka_unit_test(wrong_password_mismatches),
		cmocka_unit_test(every_byte_of_the_password_counts),
		cmocka_unit_test(unknown_user_mismatches),
		cmocka_unit_test(unknown_hash_format_mismatches),
		cmocka_unit_test(bcrypt_hash_verifies_and_asks_for_rehash),
		cmocka_unit_test(weaker_argon2_hash_verifies_and_asks_for_rehash),
		cmocka_unit_test(pool_serves_more_callers_than_threads),
		cmocka_unit_test(after_shutdown_calls_fail_and_init_restarts),
		cmocka_unit_test(init_rejects_cost_out_of_range),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
