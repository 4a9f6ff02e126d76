/* Routing (404/405 + Allow), request helpers and the body checks. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "extern.h"

struct config	*cfg;

static int
setup(void **state)
{
	(void)state;
	cfg = calloc(1, sizeof(*cfg));
	config_defaults(cfg);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	config_free(cfg);
	free(cfg);
	return 0;
}

static void
req_init(struct request *r, enum method m, const char *path)
{
	memset(r, 0, sizeof(*r));
	r->method = m;
	r->method_name = "X";
	r->path = strdup(path);
	r->query = strdup("");
}

static json_t *
body_of(const struct request *r)
{
	return json_loadb(r->out, r->outlen, 0, NULL);
}

static const char *
header(const struct request *r, const char *name)
{
	size_t	 i;

	for (i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

static void
unknown_path_is_404_not_found(void **state)
{
	struct request	 r;
	json_t		*j;

	(void)state;
	req_init(&r, METHOD_GET, "/nope");
	route_dispatch(&r);
	assert_int_equal(r.status, 404);
	j = body_of(&r);
	assert_string_equal(json_string_value(json_object_get(j, "error")),
	    "not_found");
	assert_non_null(json_object_get(j, "message"));
	json_decref(j);
	request_free(&r);
	req_init(&r, METHOD_GET, "/health/extra");
	route_dispatch(&r);
	assert_int_equal(r.status, 404);
	request_free(&r);
}

static void
wrong_method_is_405_with_allow(void **state)
{
	struct request	 r;
	json_t		*j;

	(void)state;
	req_init(&r, METHOD_GET, "/login");
	route_dispatch(&r);
	assert_int_equal(r.status, 405);
	assert_string_equal(header(&r, "Allow"), "POST");
	j = body_of(&r);
	assert_string_equal(json_string_value(json_object_get(j, "error")),
	    "method_not_allowed");
	json_decref(j);
	request_free(&r);
	req_init(&r, METHOD_POST, "/sessions/0d4f6e1c-2b3a-4c5d-8e9f-001122334455");
	route_dispatch(&r);
	assert_int_equal(r.status, 405);
	assert_string_equal(header(&r, "Allow"), "DELETE");
	request_free(&r);
	req_init(&r, METHOD_DELETE, "/health");
	route_dispatch(&r);
	assert_int_equal(r.status, 405);
	assert_string_equal(header(&r, "Allow"), "GET, HEAD");
	request_free(&r);
}

static void
body_checks_answer_413_415_and_400(void **state)
{
	struct request	 r;

	(void)state;
	req_init(&r, METHOD_POST, "/register");
	r.body_too_large = 1;
	assert_null(request_json(&r));
	assert_int_equal(r.status, 413);
	request_free(&r);

	req_init(&r, METHOD_POST, "/register");
	r.content_type = "text/plain";
	r.body = strdup("{}");
	r.bodylen = 2;
	assert_null(request_json(&r));
	assert_int_equal(r.status, 415);
	request_free(&r);

	req_init(&r, METHOD_POST, "/register");
	r.content_type = "application/json; charset=utf-8";
	r.body = strdup("{\"a\":");
	r.bodylen = 5;
	assert_null(request_json(&r));
	assert_int_equal(r.status, 400);
	request_free(&r);

	req_init(&r, METHOD_POST, "/register");
	r.content_type = "Application/JSON";
	r.body = strdup("{\"a\":1}");
	r.bodylen = 7;
	json_decref(request_json(&r));
	assert_int_equal(r.status, 0);
	request_free(&r);
}

static void
bearer_header_is_parsed_strictly(void **state)
{
	const char	*t;
	size_t		 n;

	(void)state;
	assert_int_equal(request_bearer("Bearer abc.def.ghi", &t, &n), 0);
	assert_int_equal(n, 11);
	assert_int_equal(request_bearer("bearer   x", &t, &n), 0);
	assert_int_equal(request_bearer("Basic abc", &t, &n), -1);
	assert_int_equal(request_bearer("Bearer ", &t, &n), -1);
	assert_int_equal(request_bearer("Bearer a b", &t, &n), -1);
	assert_int_equal(request_bearer(NULL, &t, &n), -1);
}

static void
query_parameters_are_decoded(void **state)
{
	struct request	 r;
	char		 v[16];

	(void)state;
	req_init(&r, METHOD_GET, "/verify");
	free(r.query);
	r.query = strdup("x=1&role=ad%6Din&limit=5&bad=%zz&nul=a%00b");
	assert_int_equal(request_query(&r, "role", v, sizeof(v)), 0);
	assert_string_equal(v, "admin");
	assert_int_equal(request_query(&r, "limit", v, sizeof(v)), 0);
	assert_string_equal(v, "5");
	assert_int_equal(request_query(&r, "missing", v, sizeof(v)), -1);
	assert_int_equal(request_query(&r, "bad", v, sizeof(v)), -1);
	assert_int_equal(request_query(&r, "nul", v, sizeof(v)), -1);
	assert_int_equal(request_query(&r, "x", v, 1), -1);
	request_free(&r);
}

static void
header_values_never_carry_crlf(void **state)
{
	struct request	 r;

	(void)state;
	req_init(&r, METHOD_GET, "/verify");
	resp_header(&r, "X-Auth-Email", "a@b\r\nX-Evil: 1");
	assert_null(strchr(header(&r, "X-Auth-Email"), '\n'));
	assert_null(strchr(header(&r, "X-Auth-Email"), '\r'));
	request_free(&r);
}

static void
invalid_token_answers_carry_www_authenticate(void **state)
{
	struct request	 r;

	(void)state;
	req_init(&r, METHOD_GET, "/me");
	resp_error(&r, ERR_INVALID_TOKEN, NULL);
	assert_int_equal(r.status, 401);
	assert_string_equal(header(&r, "WWW-Authenticate"),
	    "Bearer error=\"invalid_token\"");
	request_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unknown_path_is_404_not_found),
		cmocka_unit_test(wrong_method_is_405_with_allow),
		cmocka_unit_test(body_checks_answer_413_415_and_400),
		cmocka_unit_test(bearer_header_is_parsed_strictly),
		cmocka_unit_test(query_parameters_are_decoded),
		cmocka_unit_test(header_values_never_carry_crlf),
		cmocka_unit_test(invalid_token_answers_carry_www_authenticate),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
