/* Input validation and the JSON object parser. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "extern.h"

struct config	*cfg;

static void
passwords_are_8_to_1024_bytes_of_utf8(void **state)
{
	char		 big[1100];
	const char	*why;

	(void)state;
	memset(big, 'x', sizeof(big));
	assert_int_equal(validate_password("1234567", 7, &why), -1);
	assert_int_equal(validate_password("12345678", 8, &why), 0);
	assert_int_equal(validate_password(big, 1024, &why), 0);
	assert_int_equal(validate_password(big, 1025, &why), -1);
	assert_int_equal(validate_password("abcdefg\xc3", 8, &why), -1);
	assert_int_equal(validate_password("abcdefg\0h", 9, &why), -1);
	assert_int_equal(validate_password("p\xc3\xa4sswort", 9, &why), 0);
}

static void
names_count_characters_not_bytes(void **state)
{
	char		 name[400];
	const char	*why;
	size_t		 i;

	(void)state;
	for (i = 0; i < 100; i++)
		memcpy(name + 2 * i, "\xc3\xa4", 2);	/* 100 x U+00E4 */
	assert_int_equal(validate_name(name, 200, &why), 0);
	memcpy(name + 200, "a", 1);
	assert_int_equal(validate_name(name, 201, &why), -1);
	/* control characters are replaced where stored (test_text) */
	assert_int_equal(validate_name("Bob\r\nX-Evil: 1", 14, &why), 0);
	assert_int_equal(validate_name("Bob\xff", 4, &why), -1);
	assert_int_equal(validate_name("", 0, &why), 0);
}

static void
utf8_rejects_overlongs_and_surrogates(void **state)
{
	(void)state;
	assert_int_equal(validate_utf8("\xc0\xaf", 2), -1);
	assert_int_equal(validate_utf8("\xed\xa0\x80", 3), -1);
	assert_int_equal(validate_utf8("\xf4\x90\x80\x80", 4), -1);
	assert_int_equal(validate_utf8("\xe2\x82", 2), -1);
	assert_int_equal(validate_utf8("\xf0\x9f\x98\x80", 4), 0);
}

static void
roles_follow_the_pattern(void **state)
{
	(void)state;
	assert_int_equal(validate_role("admin", 5), 0);
	assert_int_equal(validate_role("a0_-", 4), 0);
	assert_int_equal(validate_role("Admin", 5), -1);
	assert_int_equal(validate_role("0a", 2), -1);
	assert_int_equal(validate_role("", 0), -1);
	assert_int_equal(validate_role("a,b", 3), -1);
	assert_int_equal(validate_role("abcdefghijklmnopqrstuvwxyz012345", 32),
	    0);
	assert_int_equal(validate_role("abcdefghijklmnopqrstuvwxyz0123456", 33),
	    -1);
}

static void
json_must_be_one_clean_object(void **state)
{
	static const char *const bad[] = {
		"", "[]", "\"s\"", "1", "{", "{\"a\":1}{}", "{\"a\":1,\"a\":2}",
		"{\"a\":\"\\u0000\"}", "{\"a\":\"\xff\"}", "{'a':1}",
	};
	json_t	*j;
	size_t	 i;
	char	 deep[5000];

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(json_parse_object(bad[i], strlen(bad[i])));
	assert_null(json_parse_object("{\"a\":1}\0", 8));
	memset(deep, '[', sizeof(deep));
	memcpy(deep, "{\"a\":", 5);
	assert_null(json_parse_object(deep, sizeof(deep)));
	j = json_parse_object("{\"email\":\"a@b\"} ", 16);
	assert_non_null(j);
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(passwords_are_8_to_1024_bytes_of_utf8),
		cmocka_unit_test(names_count_characters_not_bytes),
		cmocka_unit_test(utf8_rejects_overlongs_and_surrogates),
		cmocka_unit_test(roles_follow_the_pattern),
		cmocka_unit_test(json_must_be_one_clean_object),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
