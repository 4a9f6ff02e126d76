/*
 * test_jsonw.c: the direct JSON writer writes what jansson's json_dumps
 * (JSON_COMPACT) writes of the same value, and fails where json_pack
 * would: a string that is not UTF-8, or text past its bound.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "extern.h"

struct config	*cfg;

static void
same_as_jansson(struct jsonw *w, json_t *j)
{
	char	*want, *got;

	assert_non_null(j);
	want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	got = jsonw_done(w);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(want);
	free(got);
	json_decref(j);
}

/* Every byte below 0x80 but NUL, and UTF-8 of 2, 3 and 4 bytes. */
static void
strings_escaped_as_jansson_escapes_them(void **state)
{
	char		 all[0x80 + 16];
	struct jsonw	 w;
	size_t		 i;

	(void)state;
	for (i = 1; i < 0x80; i++)
		all[i - 1] = (char)i;
	memcpy(all + 0x7f, "\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80", 9);
	all[0x7f + 9] = '\0';
	jsonw_init(&w, 4096);
	jsonw_strz(&w, all);
	same_as_jansson(&w, json_string(all));
}

/* Commas and nesting: objects in arrays in objects, empty ones, null. */
static void
structure_and_commas(void **state)
{
	struct jsonw	 w;

	(void)state;
	jsonw_init(&w, 4096);
	jsonw_open(&w, '[');
	jsonw_open(&w, '{');
	jsonw_key(&w, "n");
	jsonw_num(&w, 0);
	jsonw_key(&w, "a");
	jsonw_open(&w, '[');
	jsonw_close(&w, ']');
	jsonw_key(&w, "o");
	jsonw_open(&w, '{');
	jsonw_close(&w, '}');
	jsonw_key(&w, "s");
	jsonw_strz(&w, NULL);
	jsonw_key(&w, "b");
	jsonw_lit(&w, "true");
	jsonw_close(&w, '}');
	jsonw_open(&w, '{');
	jsonw_key(&w, "n");
	jsonw_num(&w, -9223372036854775807LL - 1);
	jsonw_key(&w, "r");
	jsonw_open(&w, '[');
	jsonw_str(&w, "x", 1);
	jsonw_str(&w, "y,z", 3);
	jsonw_num(&w, 9223372036854775807LL);
	jsonw_close(&w, ']');
	jsonw_close(&w, '}');
	jsonw_strz(&w, "");
	jsonw_close(&w, ']');
	same_as_jansson(&w, json_pack("[{s:i, s:[], s:{}, s:n, s:b}, "
	    "{s:I, s:[s, s, I]}, s]", "n", 0, "a", "o", "s", "b", 1,
	    "n", (json_int_t)(-9223372036854775807LL - 1), "r", "x", "y,z",
	    (json_int_t)9223372036854775807LL, ""));
}

/* A string json_pack refuses fails the whole text; so does the bound. */
static void
refuses_bad_utf8_and_text_past_its_bound(void **state)
{
	static const char *const bad[] = {
		"\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
		"ok\x80", "\xe2\x80"
	};
	struct jsonw	 w;
	char		*s;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(json_string(bad[i]));
		jsonw_init(&w, 4096);
		jsonw_open(&w, '[');
		jsonw_strz(&w, "fine");
		jsonw_strz(&w, bad[i]);
		jsonw_close(&w, ']');
		assert_null(jsonw_done(&w));
	}
	jsonw_init(&w, 8);
	jsonw_strz(&w, "123456");	/* 8 bytes with its quotes */
	assert_non_null(s = jsonw_done(&w));
	assert_string_equal(s, "\"123456\"");
	free(s);
	jsonw_init(&w, 8);
	jsonw_strz(&w, "1234567");
	assert_null(jsonw_done(&w));
	/* growing past the first buffer keeps every byte */
	jsonw_init(&w, 1 << 20);
	jsonw_open(&w, '[');
	for (i = 0; i < 5000; i++)
		jsonw_num(&w, (long long)i);
	jsonw_close(&w, ']');
	{
		json_t	*a = json_array();

		for (i = 0; i < 5000; i++)
			json_array_append_new(a, json_integer((json_int_t)i));
		same_as_jansson(&w, a);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(strings_escaped_as_jansson_escapes_them),
		cmocka_unit_test(structure_and_commas),
		cmocka_unit_test(refuses_bad_utf8_and_text_past_its_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
