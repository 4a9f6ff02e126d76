/* Input validation and the JSON object parser. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
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

static const char *
field_why(json_t *fields, const char *name)
{
	return json_string_value(json_object_get(fields, name));
}

static void
fields_are_checked_against_their_spec(void **state)
{
	static const struct field_spec spec[] = {
		{ "email", FIELD_EMAIL, FIELD_REQUIRED, NULL, NULL },
		{ "password", FIELD_PASSWORD, FIELD_REQUIRED, NULL, NULL },
		{ "firstName", FIELD_NAME, 0, NULL, NULL },
	};
	struct field_value	 v[3];
	json_t			*body, *fields;

	(void)state;
	body = json_pack("{s:s, s:s, s:s}", "email", " A@Example.COM ",
	    "password", "12345678", "firstName", "");
	fields = json_object();
	assert_int_equal(validate_fields(body, spec, 3, 0, v, fields), 0);
	assert_int_equal(json_object_size(fields), 0);
	assert_string_equal(v[0].email, "a@example.com");
	assert_string_equal(v[1].s, "12345678");
	assert_int_equal(v[1].len, 8);
	assert_null(v[2].s);		/* "" is absent */
	json_decref(body);
	json_decref(fields);

	/* every refused field is named, with the limit in its reason */
	body = json_pack("{s:i, s:s, s:n}", "email", 1, "password", "short",
	    "firstName");
	fields = json_object();
	assert_int_equal(validate_fields(body, spec, 3, 0, v, fields), -1);
	assert_string_equal(field_why(fields, "email"), VALIDATE_WHY_STRING);
	assert_string_equal(field_why(fields, "password"),
	    "must be at least 8 bytes");
	assert_null(json_object_get(fields, "firstName"));
	json_decref(body);
	json_decref(fields);

	body = json_object();
	fields = json_object();
	assert_int_equal(validate_fields(body, spec, 3, 0, v, fields), -1);
	assert_string_equal(field_why(fields, "email"),
	    VALIDATE_WHY_REQUIRED);
	assert_string_equal(field_why(fields, "password"),
	    VALIDATE_WHY_REQUIRED);
	assert_int_equal(json_object_size(fields), 2);
	json_decref(body);
	json_decref(fields);
}

static void
first_failure_stops_and_types_come_before_values(void **state)
{
	static const struct field_spec spec[] = {
		{ "email", FIELD_EMAIL, FIELD_REQUIRED, VALIDATE_WHY_SECRET,
		    VALIDATE_WHY_SECRET },
		{ "password", FIELD_SECRET, FIELD_REQUIRED,
		    VALIDATE_WHY_SECRET, VALIDATE_WHY_SECRET },
	};
	struct field_value	 v[2];
	json_t			*body, *fields;
	char			 big[FA_PASSWORD_MAX + 2];

	(void)state;
	assert_string_equal(VALIDATE_WHY_SECRET, "is required and must be a "
	    "string of at most 1024 bytes");
	/* a malformed email and a missing password: the type is named */
	body = json_pack("{s:s}", "email", "not-an-email");
	fields = json_object();
	assert_int_equal(validate_fields(body, spec, 2, VALIDATE_FIRST, v,
	    fields), -1);
	assert_int_equal(json_object_size(fields), 1);
	assert_string_equal(field_why(fields, "password"),
	    VALIDATE_WHY_SECRET);
	json_decref(body);
	json_decref(fields);
	/* a secret longer than the limit is refused by type */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	body = json_pack("{s:s, s:s}", "email", "a@b.example", "password",
	    big);
	fields = json_object();
	assert_int_equal(validate_fields(body, spec, 2, VALIDATE_FIRST, v,
	    fields), -1);
	assert_non_null(json_object_get(fields, "password"));
	json_decref(body);
	json_decref(fields);
	/* then the email's form */
	body = json_pack("{s:s, s:s}", "email", "no at sign", "password", "x");
	fields = json_object();
	assert_int_equal(validate_fields(body, spec, 2, VALIDATE_FIRST, v,
	    fields), -1);
	assert_int_equal(json_object_size(fields), 1);
	assert_non_null(field_why(fields, "email"));
	assert_string_not_equal(field_why(fields, "email"),
	    VALIDATE_WHY_SECRET);
	json_decref(body);
	json_decref(fields);
}

static void
query_params_are_checked_against_their_spec(void **state)
{
	static const struct param_spec spec[] = {
		{ "userId", PARAM_UUID, FA_UUID_LEN, 0, 0, "uuid" },
		{ "event", PARAM_NAME, 8, 0, 0, "name" },
		{ "limit", PARAM_NUMBER, PARAM_NUMBER_MAX, 1, 500, "number" },
	};
	struct request		 r;
	struct param_value	 v[3];
	json_t			*fields;
	char			 q[256];

	(void)state;
	memset(&r, 0, sizeof(r));
	r.query = q;
	snprintf(q, sizeof(q), "userId=6f1c3a9e-2b7d-4c55-9a10-3e8f0d2b7c41"
	    "&event=login.ok&limit=500");
	fields = json_object();
	assert_int_equal(validate_params(&r, spec, 3, v, fields), 0);
	assert_true(v[0].present && v[1].present && v[2].present);
	assert_string_equal(v[1].s, "login.ok");
	assert_int_equal(v[2].n, 500);
	json_decref(fields);

	snprintf(q, sizeof(q), "limit=5");
	fields = json_object();
	assert_int_equal(validate_params(&r, spec, 3, v, fields), 0);
	assert_false(v[0].present);
	assert_false(v[1].present);
	assert_int_equal(v[2].n, 5);
	json_decref(fields);

	/* malformed, too long, repeated, out of range: each named */
	snprintf(q, sizeof(q), "userId=x&event=login.okay&limit=501");
	fields = json_object();
	assert_int_equal(validate_params(&r, spec, 3, v, fields), -1);
	assert_string_equal(field_why(fields, "userId"), "uuid");
	assert_string_equal(field_why(fields, "event"), "name");
	assert_string_equal(field_why(fields, "limit"), "number");
	json_decref(fields);
	snprintf(q, sizeof(q), "limit=1&limit=1&event=A&");
	fields = json_object();
	assert_int_equal(validate_params(&r, spec, 3, v, fields), -1);
	assert_int_equal(json_object_size(fields), 2);
	json_decref(fields);
	snprintf(q, sizeof(q), "limit=%s", "000000000000000000000001");
	fields = json_object();
	assert_int_equal(validate_params(&r, spec, 3, v, fields), -1);
	json_decref(fields);
	snprintf(q, sizeof(q), "limit=+1");
	fields = json_object();
	assert_int_equal(validate_params(&r, spec, 3, v, fields), -1);
	json_decref(fields);
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
		cmocka_unit_test(fields_are_checked_against_their_spec),
		cmocka_unit_test(first_failure_stops_and_types_come_before_values),
		cmocka_unit_test(query_params_are_checked_against_their_spec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
