/*
 * test_csv.c: RFC 4180 records from memory (quotes, doubled quotes,
 * embedded commas and line breaks, CRLF) and the malformed inputs the
 * import must refuse with their line number.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "extern.h"

struct config	*cfg;

static int
next(const char *buf, size_t *off, size_t *line, struct csv_record *r,
    const char **why)
{
	return csv_next(buf, strlen(buf), off, line, r, why);
}

static void
splits_plain_and_quoted_fields(void **state)
{
	const char	*buf = "email,lastName\r\n"
	    "a@x.io,\"O'Brien, Jr.\"\r\n"
	    "b@x.io,\"say \"\"hi\"\"\"\n"
	    "c@x.io,\"two\nlines\"\n"
	    "d@x.io,\n";
	struct csv_record r;
	const char	*why = NULL;
	size_t		 off = 0, line = 0;

	(void)state;
	assert_int_equal(next(buf, &off, &line, &r, &why), 1);
	assert_int_equal(r.nfield, 2);
	assert_string_equal(r.field[1], "lastName");
	assert_int_equal(r.line, 1);
	csv_record_free(&r);
	assert_int_equal(next(buf, &off, &line, &r, &why), 1);
	assert_string_equal(r.field[1], "O'Brien, Jr.");
	assert_int_equal(r.line, 2);
	csv_record_free(&r);
	assert_int_equal(next(buf, &off, &line, &r, &why), 1);
	assert_string_equal(r.field[1], "say \"hi\"");
	csv_record_free(&r);
	assert_int_equal(next(buf, &off, &line, &r, &why), 1);
	assert_string_equal(r.field[1], "two\nlines");
	assert_int_equal(r.line, 4);
	csv_record_free(&r);
	/* the quoted line break counted: d@x.io is on line 6 */
	assert_int_equal(next(buf, &off, &line, &r, &why), 1);
	assert_int_equal(r.line, 6);
	assert_int_equal(r.nfield, 2);
	assert_string_equal(r.field[0], "d@x.io");
	assert_string_equal(r.field[1], "");
	csv_record_free(&r);
	assert_int_equal(next(buf, &off, &line, &r, &why), 0);
}

static void
last_record_without_newline_and_empty_quoted(void **state)
{
	struct csv_record r;
	const char	*why = NULL;
	size_t		 off = 0, line = 0;

	(void)state;
	assert_int_equal(next("\"\",x", &off, &line, &r, &why), 1);
	assert_int_equal(r.nfield, 2);
	assert_string_equal(r.field[0], "");
	assert_string_equal(r.field[1], "x");
	csv_record_free(&r);
	assert_int_equal(next("\"\",x", &off, &line, &r, &why), 0);
}

static void
refuse(const char *buf, size_t len, size_t want_line)
{
	struct csv_record r;
	const char	*why = NULL;
	size_t		 off = 0, line = 0;
	int		 rc;

	while ((rc = csv_next(buf, len, &off, &line, &r, &why)) == 1)
		csv_record_free(&r);
	assert_int_equal(rc, -1);
	assert_non_null(why);
	assert_int_equal(r.line, want_line);
	assert_int_equal(r.nfield, 0);
	assert_null(r.field);
}

static void
refuses_malformed_with_line(void **state)
{
	static const char nul[] = "a,b\nc,d\0e\n";
	char	*big;

	(void)state;
	refuse("a,b\nc,\"unclosed\n", 16, 2);
	refuse("a,b\nx,\"q\"junk\n", 14, 2);
	refuse("a,b\nx,ab\"c\n", 11, 2);
	refuse("a,b\nx,y\rz\n", 10, 2);
	refuse(nul, sizeof(nul) - 1, 2);
	big = malloc(CSV_FIELD_MAX + 8);
	assert_non_null(big);
	memset(big, 'a', CSV_FIELD_MAX + 7);
	big[CSV_FIELD_MAX + 7] = '\0';
	refuse(big, strlen(big), 1);
	memset(big, ',', CSV_FIELDS_MAX + 1);
	big[CSV_FIELDS_MAX + 1] = '\0';
	refuse(big, strlen(big), 1);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(splits_plain_and_quoted_fields),
		cmocka_unit_test(last_record_without_newline_and_empty_quoted),
		cmocka_unit_test(refuses_malformed_with_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
