/* The cleaner of stored client text (text.c). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "extern.h"

struct config	*cfg;

#define R	"\xef\xbf\xbd"	/* U+FFFD */

static void
clean_is(const char *in, size_t len, const char *want)
{
	char	 out[256];

	assert_int_equal(text_clean(out, sizeof(out), in, len), strlen(want));
	assert_string_equal(out, want);
}

static void
clean_text_is_kept(void **state)
{
	(void)state;
	clean_is("Mozilla/5.0 (X11; Linux x86_64)", 31,
	    "Mozilla/5.0 (X11; Linux x86_64)");
	clean_is("Ren\xc3\xa9" "e \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
	    18, "Ren\xc3\xa9" "e \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
	clean_is("\xc2\xa0\xc2\xa1", 4, "\xc2\xa0\xc2\xa1");	/* past C1 */
	clean_is("", 0, "");
	clean_is(NULL, 0, "");
}

static void
controls_become_replacement_characters(void **state)
{
	(void)state;
	clean_is("a\x1b[31mb\x07\x08", 9, "a" R "[31mb" R R);
	clean_is("\t\r\n", 3, R R R);
	clean_is("a\0b", 3, "a" R "b");
	clean_is("x\x7fy", 3, "x" R "y");
	clean_is("\xc2\x80\xc2\x85\xc2\x9f", 6, R R R);		/* C1 */
	clean_is("a\xe2\x80\xa8" "b\xe2\x80\xa9", 8, "a" R "b" R);
}

static void
invalid_utf8_becomes_replacement_characters(void **state)
{
	(void)state;
	clean_is("a\xff" "b", 3, "a" R "b");
	clean_is("\x80", 1, R);				/* stray continuation */
	clean_is("\xc0\xaf", 2, R R);			/* overlong */
	clean_is("\xe0\x80\xaf", 3, R R R);		/* overlong */
	clean_is("\xed\xa0\x80", 3, R R R);		/* surrogate */
	clean_is("\xf4\x90\x80\x80", 4, R R R R);	/* above U+10FFFF */
	clean_is("ab\xe2\x82", 4, "ab" R R);		/* cut at the end */
	clean_is("\xe9t\xe9", 3, R "t" R);		/* Latin-1 */
}

static void
output_is_bounded_at_a_character(void **state)
{
	char	 out[8], *d;

	(void)state;
	/* "ab" + U+FFFD (3) = 5; another 3 would not fit in 7 */
	assert_int_equal(text_clean(out, sizeof(out), "ab\x1b\x1b", 4), 5);
	assert_string_equal(out, "ab" R);
	assert_int_equal(text_clean(out, 4, "a\xc3\xa9\xc3\xa9", 5), 3);
	assert_string_equal(out, "a\xc3\xa9");
	assert_int_equal(text_clean(out, 1, "abc", 3), 0);
	assert_string_equal(out, "");
	assert_int_equal(text_clean(out, 0, "abc", 3), 0);
	d = text_clean_dup("a\x1b" "bcdef", 4);
	assert_string_equal(d, "a" R);
	free(d);
	assert_null(text_clean_dup(NULL, 4));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(clean_text_is_kept),
		cmocka_unit_test(controls_become_replacement_characters),
		cmocka_unit_test(invalid_utf8_becomes_replacement_characters),
		cmocka_unit_test(output_is_bounded_at_a_character),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
