/* util.c: the decimal number parser and the small-file reader. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "extern.h"

static void
num_parse_takes_decimal_in_range(void **state)
{
	static const struct {
		const char	*s;
		long long	 want;
	} good[] = {
		{ "0", 0 }, { "7", 7 }, { "010", 10 }, { "-5", -5 },
		{ "9223372036854775807", LLONG_MAX },
		{ "-9223372036854775808", LLONG_MIN },
	};
	long long	 n;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		n = 42;
		assert_int_equal(num_parse(good[i].s, LLONG_MIN, LLONG_MAX,
		    &n), 0);
		assert_true(n == good[i].want);
	}
	assert_int_equal(num_parse("5", 5, 5, &n), 0);
	assert_int_equal(n, 5);
}

static void
num_parse_refuses_anything_else(void **state)
{
	static const char *const bad[] = {
		"", "-", "+1", " 1", "1 ", "1x", "0x10", "1e3", "1.0", "--1",
		"- 1", "9223372036854775808", "-9223372036854775809",
		"99999999999999999999",
	};
	long long	 n = 42;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(num_parse(bad[i], LLONG_MIN, LLONG_MAX, &n),
		    -1);
	assert_int_equal(num_parse("4", 5, 10, &n), -1);
	assert_int_equal(num_parse("11", 5, 10, &n), -1);
	assert_int_equal(num_parse("-1", 0, 10, &n), -1);
	assert_int_equal(n, 42);	/* untouched on failure */
}

static void
file_read_reads_whole_files_up_to_max(void **state)
{
	char	 path[] = "/tmp/fa-test-util.XXXXXX", *buf = NULL;
	size_t	 n = 0;
	int	 fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello\n", 6), 6);
	close(fd);
	assert_int_equal(file_read(path, 6, &buf, &n), 0);
	assert_int_equal(n, 6);
	assert_string_equal(buf, "hello\n");
	free(buf);
	buf = NULL;
	errno = 0;
	assert_int_equal(file_read(path, 5, &buf, &n), -1);
	assert_int_equal(errno, EFBIG);
	assert_null(buf);
	unlink(path);
	assert_int_equal(file_read(path, 5, &buf, &n), -1);
	assert_int_equal(errno, ENOENT);
}

static void
bool_parse_takes_the_listed_words_only(void **state)
{
	static const char *const yes[] = { "on", "true", NULL };
	static const char *const no[] = { "off", "false", NULL };
	int	 b = -1;

	(void)state;
	assert_int_equal(bool_parse("ON", yes, no, &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(bool_parse("false", yes, no, &b), 0);
	assert_int_equal(b, 0);
	b = 7;
	assert_int_equal(bool_parse("yes", yes, no, &b), -1);
	assert_int_equal(bool_parse("", yes, no, &b), -1);
	assert_int_equal(bool_parse("on ", yes, no, &b), -1);
	assert_int_equal(b, 7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(num_parse_takes_decimal_in_range),
		cmocka_unit_test(num_parse_refuses_anything_else),
		cmocka_unit_test(file_read_reads_whole_files_up_to_max),
		cmocka_unit_test(bool_parse_takes_the_listed_words_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
