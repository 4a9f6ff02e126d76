/*
 * test_hashfmt.c: the hash formats an import accepts are exactly those
 * that can verify: bcrypt from bcryptjs and libxcrypt, Argon2id from
 * libsodium; truncated, non-canonical or out-of-bounds ones are refused.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "extern.h"

struct config	*cfg;

/* bcryptjs 3, hashSync("correct horse", 4) and ("pw", 10) */
#define BC4	"$2b$04$7yrHQ/IG63cia9dWZ3oBFONFaChcr591PKQ5LpfWGtYG9kX1jOs9."
#define BC10	"$2b$10$Is15M6vFEN6Abb53bGgcL./m0V8yOAECYJOd/K8G9vWdE.FAcnXJi"
#define A2	"$argon2id$v=19$m=65536,t=2,p=1$TY8ycSi2L3fVSJDgH4x2xA$" \
		"b9JKrMy0AZrW3v4Rxhi73mDlmAJfIHbpqhNg5myzH9A"

static int
check(const char *h)
{
	const char	*why = NULL;
	int		 rc;

	rc = hashfmt_check(h, strlen(h), &why);
	assert_non_null(why);
	return rc;
}

static void
accepts_real_hashes(void **state)
{
	char	 h[crypto_pwhash_STRBYTES], b[HASHFMT_BCRYPT_LEN + 1];

	(void)state;
	assert_int_equal(check(BC4), HASHFMT_BCRYPT);
	assert_int_equal(check(BC10), HASHFMT_BCRYPT);
	snprintf(b, sizeof(b), "%s", BC10);
	memcpy(b, "$2a$", 4);
	assert_int_equal(check(b), HASHFMT_BCRYPT);
	memcpy(b, "$2y$", 4);
	assert_int_equal(check(b), HASHFMT_BCRYPT);
	assert_int_equal(check(A2), HASHFMT_ARGON2ID);
	assert_int_equal(crypto_pwhash_str(h, "pw", 2, 1, 8192), 0);
	assert_int_equal(check(h), HASHFMT_ARGON2ID);
	assert_int_equal(check("$argon2id$v=19$m=65536,t=2,p=4$TY8ycSi2L3fVS"
	    "JDgH4x2xA$b9JKrMy0AZrW3v4Rxhi73mDlmAJfIHbpqhNg5myzH9A"),
	    HASHFMT_ARGON2ID);
}

static void
refuses_bcrypt_that_never_verifies(void **state)
{
	char	 b[HASHFMT_BCRYPT_LEN + 2];

	(void)state;
	assert_int_equal(check("$2b$10$short"), HASHFMT_BAD);
	assert_int_equal(check(""), HASHFMT_BAD);
	assert_int_equal(check("$2x$10$Is15M6vFEN6Abb53bGgcL./m0V8yOAECYJOd/"
	    "K8G9vWdE.FAcnXJi"), HASHFMT_BAD);
	assert_int_equal(check("$2b$03$Is15M6vFEN6Abb53bGgcL./m0V8yOAECYJOd/"
	    "K8G9vWdE.FAcnXJi"), HASHFMT_BAD);
	assert_int_equal(check("$2b$32$Is15M6vFEN6Abb53bGgcL./m0V8yOAECYJOd/"
	    "K8G9vWdE.FAcnXJi"), HASHFMT_BAD);
	assert_int_equal(check("$2b$1a$Is15M6vFEN6Abb53bGgcL./m0V8yOAECYJOd/"
	    "K8G9vWdE.FAcnXJi"), HASHFMT_BAD);
	snprintf(b, sizeof(b), "%s", BC10);
	b[20] = '+';			/* not bcrypt's alphabet */
	assert_int_equal(check(b), HASHFMT_BAD);
	snprintf(b, sizeof(b), "%s", BC10);
	b[28] = 'P';			/* salt's unused bits set */
	assert_int_equal(check(b), HASHFMT_BAD);
	snprintf(b, sizeof(b), "%s", BC10);
	b[59] = 'j';			/* hash's unused bits set */
	assert_int_equal(check(b), HASHFMT_BAD);
	snprintf(b, sizeof(b), "%sA", BC10);	/* 61 characters */
	assert_int_equal(check(b), HASHFMT_BAD);
	assert_int_equal(hashfmt_check(BC10 "\0", sizeof(BC10), &(const char
	    *){ NULL }), HASHFMT_BAD);
	assert_int_equal(check("plaintext-password"), HASHFMT_BAD);
	assert_int_equal(check("$argon2i$v=19$m=65536,t=2,p=1$TY8ycSi2L3fVSJD"
	    "gH4x2xA$b9JKrMy0AZrW3v4Rxhi73mDlmAJfIHbpqhNg5myzH9A"), HASHFMT_BAD);
}

static void
refuses_argon2id_that_never_verifies(void **state)
{
	static const char *const bad[] = {
		"$argon2id$",
		"$argon2id$m=65536,t=2,p=1$TY8ycSi2L3fVSJDgH4x2xA$"
		    "b9JKrMy0AZrW3v4Rxhi73mDlmAJfIHbpqhNg5myzH9A",
		"$argon2id$v=16$m=65536,t=2,p=1$TY8ycSi2L3fVSJDgH4x2xA$"
		    "b9JKrMy0AZrW3v4Rxhi73mDlmAJfIHbpqhNg5myzH9A",
		"$argon2id$v=19$t=2,m=65536,p=1$TY8ycSi2L3fVSJDgH4x2xA$"
		    "b9JKrMy0AZrW3v4Rxhi73mDlmAJfIHbpqhNg5myzH9A",
		"$argon2id$v=19$m=065536,t=2,p=1$TY8ycSi2L3fVSJDgH4x2xA$"
		    "b9JKrMy0AZrW3v4Rxhi73mDlmAJfIHbpqhNg5myzH9A",
		"$argon2id$v=19$m=65536,t=0,p=1$TY8ycSi2L3fVSJDgH4x2xA$"
		    "b9JKrMy0AZrW3v4Rxhi73mDlmAJfIHbpqhNg5myzH9A",
		"$argon2id$v=19$m=65536,t=2,p=0$TY8ycSi2L3fVSJDgH4x2xA$"
		    "b9JKrMy0AZrW3v4Rxhi73mDlmAJfIHbpqhNg5myzH9A",
		"$argon2id$v=19$m=7,t=2,p=1$TY8ycSi2L3fVSJDgH4x2xA$"
		    "b9JKrMy0AZrW3v4Rxhi73mDlmAJfIHbpqhNg5myzH9A",
		"$argon2id$v=19$m=99999999999,t=2,p=1$TY8ycSi2L3fVSJDgH4x2xA$"
		    "b9JKrMy0AZrW3v4Rxhi73mDlmAJfIHbpqhNg5myzH9A",
		"$argon2id$v=19$m=4194304,t=2,p=1$TY8ycSi2L3fVSJDgH4x2xA$"
		    "b9JKrMy0AZrW3v4Rxhi73mDlmAJfIHbpqhNg5myzH9A",
		"$argon2id$v=19$m=65536,t=2,p=1$TY8ycSi2$"
		    "b9JKrMy0AZrW3v4Rxhi73mDlmAJfIHbpqhNg5myzH9A",
		"$argon2id$v=19$m=65536,t=2,p=1$TY8ycSi2L3fVSJDgH4x2xA$b9JK",
		"$argon2id$v=19$m=65536,t=2,p=1$TY8ycSi2L3fVSJDgH4x2xA$"
		    "b9JKrMy0AZrW3v4Rxhi73mDlmAJfIHbpqhNg5myzH9A$",
		"$argon2id$v=19$m=65536,t=2,p=1$TY8ycSi2L3fVSJDgH4x2x=$"
		    "b9JKrMy0AZrW3v4Rxhi73mDlmAJfIHbpqhNg5myzH9A",
		"$argon2id$v=19$m=65536,t=2,p=1,k=1$TY8ycSi2L3fVSJDgH4x2xA$"
		    "b9JKrMy0AZrW3v4Rxhi73mDlmAJfIHbpqhNg5myzH9A",
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (check(bad[i]) != HASHFMT_BAD)
			fail_msg("accepted %s", bad[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accepts_real_hashes),
		cmocka_unit_test(refuses_bcrypt_that_never_verifies),
		cmocka_unit_test(refuses_argon2id_that_never_verifies),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
