/* The log line formats (log.c): the JSON escaper, the access line in text
 * and JSON, and the request ids we accept from the web server. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "extern.h"

struct config	*cfg;

#define R	"\\ufffd"	/* how an invalid byte is written */

static void
escape_is(const char *in, const char *want)
{
	char	 out[512];

	assert_int_equal(log_json_escape(out, sizeof(out), in), strlen(want));
	assert_string_equal(out, want);
}

static void
json_escape_quotes_controls_and_bad_utf8(void **state)
{
	(void)state;
	escape_is("plain text", "plain text");
	escape_is("a\"b\\c", "a\\\"b\\\\c");
	escape_is("nl\ncr\rtab\t\x01\x1f\x7f", "nl\\u000acr\\u000dtab\\u0009"
	    "\\u0001\\u001f\\u007f");
	escape_is("caf\xc3\xa9 \xf0\x9f\x98\x80",
	    "caf\xc3\xa9 \xf0\x9f\x98\x80");
	escape_is("\xff", R);
	escape_is("\xc0\xaf", R R);		/* overlong '/' */
	escape_is("\xed\xa0\x80", R R R);	/* a surrogate */
	escape_is("\xf4\x90\x80\x80", R R R R);	/* past U+10FFFF */
	escape_is("\xe2\x82", R R);		/* cut short */
	escape_is("\xc3", R);
	escape_is("", "");
	escape_is(NULL, "");
}

static void
json_escape_cuts_at_a_character(void **state)
{
	char	 out[8];

	(void)state;
	/* room for 6 bytes: never half an escape or half a character */
	assert_int_equal(log_json_escape(out, 7, "abcde\"f"), 5);
	assert_string_equal(out, "abcde");
	assert_int_equal(log_json_escape(out, 7, "abcd\xf0\x9f\x98\x80"), 4);
	assert_int_equal(log_json_escape(out, 7, "a\x01"), 1);
	assert_int_equal(log_json_escape(out, sizeof(out), "abcde\"f"), 7);
	assert_int_equal(log_json_escape(out, 1, "abc"), 0);
	assert_string_equal(out, "");
}

static void
request_id_accepted_only_when_well_formed(void **state)
{
	char	 long_id[FA_REQID_MAX + 2];

	(void)state;
	assert_true(log_reqid_ok("0123456789abcdef0123456789abcdef"));
	assert_true(log_reqid_ok("Trace-1-A"));
	memset(long_id, 'a', sizeof(long_id));
	long_id[FA_REQID_MAX] = '\0';
	assert_true(log_reqid_ok(long_id));
	long_id[FA_REQID_MAX] = 'a';
	long_id[FA_REQID_MAX + 1] = '\0';
	assert_false(log_reqid_ok(long_id));
	assert_false(log_reqid_ok(""));
	assert_false(log_reqid_ok(NULL));
	assert_false(log_reqid_ok("a b"));
	assert_false(log_reqid_ok("a\nb"));
	assert_false(log_reqid_ok("a_b"));
	assert_false(log_reqid_ok("a\"b"));
	assert_false(log_reqid_ok("\xc3\xa9"));
}

static struct log_access
access_of(const char *ua)
{
	struct log_access	 a;

	memset(&a, 0, sizeof(a));
	a.reqid = "abc-1-2";
	a.method = "GET";
	a.route = "/verify";
	a.status = 204;
	a.usec = 42;
	a.ip = "192.0.2.1";
	a.user_id = "5b8a10d9-af35-454c-b662-e6dbb9d7642a";
	a.bytes = 0;
	a.user_agent = ua;
	return a;
}

static void
access_json_parses_whatever_the_agent(void **state)
{
	static const char *const agents[] = {
		"Mozilla/5.0", "q\"\\\n\r\t\x01\x7f",
		"\xff\xfe\xc0\xaf\xed\xa0\x80",
		"\xf0\x9f\x98\x80 \xe2\x80\xa8", "\"}, {\"x\": 1", NULL
	};
	char		 buf[LOG_LINE_MAX], *big;
	json_t		*j;
	json_error_t	 e;
	struct log_access a;
	size_t		 i, n;

	(void)state;
	for (i = 0; i < sizeof(agents) / sizeof(agents[0]); i++) {
		a = access_of(agents[i]);
		n = log_access_format(buf, sizeof(buf), LOGF_JSON, 1, 0, &a);
		assert_int_equal(n, strlen(buf));
		assert_null(memchr(buf, '\n', n));
		j = json_loadb(buf, n, 0, &e);
		assert_non_null(j);
		assert_string_equal(json_string_value(json_object_get(j,
		    "route")), "/verify");
		assert_int_equal(json_integer_value(json_object_get(j,
		    "status")), 204);
		assert_string_equal(json_string_value(json_object_get(j,
		    "user")), a.user_id);
		assert_string_equal(json_string_value(json_object_get(j,
		    "time")), "1970-01-01T00:00:00.000Z");
		json_decref(j);
	}
	/* 8 KB of quotes: cut, still one valid object */
	big = malloc(8193);
	assert_non_null(big);
	memset(big, '"', 8192);
	big[8192] = '\0';
	a = access_of(big);
	a.user_id = "";
	a.route = NULL;
	a.method = "G\"ET\nX";
	n = log_access_format(buf, sizeof(buf), LOGF_JSON, 1, 0, &a);
	assert_true(n < sizeof(buf) - 1);
	j = json_loadb(buf, n, 0, &e);
	assert_non_null(j);
	assert_true(json_is_null(json_object_get(j, "user")));
	assert_string_equal(json_string_value(json_object_get(j, "route")),
	    "-");
	assert_string_equal(json_string_value(json_object_get(j, "method")),
	    "G\"ET?X");
	json_decref(j);
	free(big);
}

static void
access_text_stamped_unless_journal(void **state)
{
	char			 buf[LOG_LINE_MAX];
	struct log_access	 a = access_of("ua \x01\xff");

	(void)state;
	log_access_format(buf, sizeof(buf), LOGF_TEXT, 1, 0, &a);
	assert_string_equal(buf, "1970-01-01T00:00:00.000Z access abc-1-2 GET "
	    "/verify 204 42us 192.0.2.1 5b8a10d9-af35-454c-b662-e6dbb9d7642a 0 "
	    "ua=ua ??");
	a.user_id = NULL;
	a.route = NULL;
	a.user_agent = NULL;
	a.method = "GET\nforged";
	log_access_format(buf, sizeof(buf), LOGF_TEXT, 0, 0, &a);
	assert_string_equal(buf, "access abc-1-2 GET?forged - 204 42us "
	    "192.0.2.1 - 0 ua=");
}

/* Cut short, the text line is the start of the whole one, newline room kept. */
static void
access_text_cut_short(void **state)
{
	char			 full[LOG_LINE_MAX], buf[41];
	struct log_access	 a = access_of("ua");
	size_t			 n, sz;

	(void)state;
	n = log_access_format(full, sizeof(full), LOGF_TEXT, 1, 0, &a);
	assert_int_equal(n, strlen(full));
	for (sz = 2; sz <= sizeof(buf); sz++) {
		memset(buf, 'x', sizeof(buf));
		n = log_access_format(buf, sz, LOGF_TEXT, 1, 0, &a);
		assert_int_equal(n, strlen(buf));
		assert_true(n <= sz - 2);
		assert_memory_equal(buf, full, n);
	}
}

static void
log_format_names(void **state)
{
	enum log_format	 f;

	(void)state;
	assert_int_equal(log_format_parse("text", &f), 0);
	assert_int_equal(f, LOGF_TEXT);
	assert_int_equal(log_format_parse("json", &f), 0);
	assert_int_equal(f, LOGF_JSON);
	assert_int_equal(log_format_parse("JSON", &f), -1);
	assert_int_equal(log_format_parse("", &f), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(json_escape_quotes_controls_and_bad_utf8),
		cmocka_unit_test(json_escape_cuts_at_a_character),
		cmocka_unit_test(request_id_accepted_only_when_well_formed),
		cmocka_unit_test(access_json_parses_whatever_the_agent),
		cmocka_unit_test(access_text_stamped_unless_journal),
		cmocka_unit_test(access_text_cut_short),
		cmocka_unit_test(log_format_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
