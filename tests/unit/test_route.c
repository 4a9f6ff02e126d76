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
uri_splits_at_the_prefix_and_the_query(void **state)
{
	static const struct {
		const char	*uri, *prefix, *path, *query;
		int		 rc;
	} v[] = {
		{ "/auth/login", "/auth", "/login", "", 0 },
		{ "/auth/login?a=1#f", "/auth/", "/login", "a=1", 0 },
		{ "/auth?x#y?z", "/auth", "", "x", 0 },
		{ "/auth#a?b", "/auth", "", "", 0 },
		{ "/authx/login", "/auth", "/authx/login", "", -1 },
		{ "/au", "/auth", "/au", "", -1 },
		{ "/other?q=1", "/auth", "/other", "q=1", -1 },
		/* prefix "/": the routes at the root */
		{ "/login", "/", "/login", "", 0 },
		{ "/sessions/x?a=b", "/", "/sessions/x", "a=b", 0 },
		{ "/", "/", "/", "", 0 },
	};
	char	*path, *query;
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(request_split_uri(v[i].uri, v[i].prefix,
		    &path, &query), v[i].rc);
		assert_string_equal(path, v[i].path);
		assert_string_equal(query, v[i].query);
		free(path);
		free(query);
	}
}

static void
method_names_map_to_methods(void **state)
{
	(void)state;
	assert_int_equal(route_method("GET"), METHOD_GET);
	assert_int_equal(route_method("OPTIONS"), METHOD_OPTIONS);
	assert_int_equal(route_method("DELETE"), METHOD_DELETE);
	assert_int_equal(route_method("get"), METHOD_OTHER);
	assert_int_equal(route_method("OTHER"), METHOD_OTHER);
	assert_int_equal(route_method(""), METHOD_OTHER);
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

static enum query_state
lookup(const char *query, const char *name, char *v, size_t vsz)
{
	struct request	 r;
	enum query_state st;

	req_init(&r, METHOD_GET, "/verify");
	free(r.query);
	r.query = strdup(query);
	st = request_query_lookup(&r, name, v, vsz);
	request_free(&r);
	return st;
}

static void
query_parameters_are_decoded(void **state)
{
	const char	*q = "x=1&role=ad%6Din&limit=5&bad=%zz&nul=a%00b";
	char		 v[16];

	(void)state;
	assert_int_equal(lookup(q, "role", v, sizeof(v)), QUERY_PRESENT);
	assert_string_equal(v, "admin");
	assert_int_equal(lookup(q, "limit", v, sizeof(v)), QUERY_PRESENT);
	assert_string_equal(v, "5");
	assert_int_equal(lookup("a=b+c%20d", "a", v, sizeof(v)),
	    QUERY_PRESENT);
	assert_string_equal(v, "b c d");
	/* names are compared decoded */
	assert_int_equal(lookup("%72ole=user", "role", v, sizeof(v)),
	    QUERY_PRESENT);
	assert_string_equal(v, "user");
}

static void
query_absent_is_not_malformed(void **state)
{
	char	 v[16];

	(void)state;
	assert_int_equal(lookup("", "role", v, sizeof(v)), QUERY_ABSENT);
	assert_int_equal(lookup("x=1&roles=a&arole=b&Role=c", "role", v,
	    sizeof(v)), QUERY_ABSENT);
	assert_int_equal(lookup("&&x=1&", "role", v, sizeof(v)),
	    QUERY_ABSENT);
}

static void
query_malformed_is_never_absent(void **state)
{
	char	 v[33];

	(void)state;
	/* undecodable, NUL, too long (33 bytes for 32), repeated */
	assert_int_equal(lookup("role=adm%zz", "role", v, sizeof(v)),
	    QUERY_MALFORMED);
	assert_int_equal(lookup("role=adm%2", "role", v, sizeof(v)),
	    QUERY_MALFORMED);
	assert_int_equal(lookup("role=a%00b", "role", v, sizeof(v)),
	    QUERY_MALFORMED);
	assert_int_equal(lookup("role=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "role", v, sizeof(v)), QUERY_MALFORMED);
	assert_int_equal(lookup("role=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "role", v, sizeof(v)), QUERY_PRESENT);
	assert_int_equal(lookup("role=user&role=admin", "role", v, sizeof(v)),
	    QUERY_MALFORMED);
	assert_int_equal(lookup("role=user&%72ole=user", "role", v,
	    sizeof(v)), QUERY_MALFORMED);
	assert_int_equal(lookup("x=1", "x", v, 1), QUERY_MALFORMED);
	assert_int_equal(lookup("x=", "x", v, 0), QUERY_MALFORMED);
}

static void
query_empty_value_is_present(void **state)
{
	char	 v[16];

	(void)state;
	/* present and empty: the caller's validation refuses it */
	assert_int_equal(lookup("role=", "role", v, sizeof(v)), QUERY_PRESENT);
	assert_string_equal(v, "");
	assert_int_equal(lookup("x=1&role", "role", v, sizeof(v)),
	    QUERY_PRESENT);
	assert_string_equal(v, "");
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
header_values_are_visible_ascii(void **state)
{
	struct request	 r;
	const char	*v;

	(void)state;
	assert_true(resp_header_value_ok("kate@example.test"));
	assert_true(resp_header_value_ok(" !~"));
	assert_false(resp_header_value_ok("a\tb"));
	assert_false(resp_header_value_ok("a\x7f"));
	assert_false(resp_header_value_ok("eve\xe2\x80\xa8@x"));	/* U+2028 */
	assert_false(resp_header_value_ok("eve\xc2\x85@x"));		/* U+0085 */
	req_init(&r, METHOD_GET, "/verify");
	resp_header(&r, "X-Auth-Email", "eve\xe2\x80\xa8\xc2\x85@x\t");
	v = header(&r, "X-Auth-Email");
	assert_non_null(v);
	assert_true(resp_header_value_ok(v));
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
		cmocka_unit_test(uri_splits_at_the_prefix_and_the_query),
		cmocka_unit_test(method_names_map_to_methods),
		cmocka_unit_test(bearer_header_is_parsed_strictly),
		cmocka_unit_test(query_parameters_are_decoded),
		cmocka_unit_test(query_absent_is_not_malformed),
		cmocka_unit_test(query_malformed_is_never_absent),
		cmocka_unit_test(query_empty_value_is_present),
		cmocka_unit_test(header_values_are_visible_ascii),
		cmocka_unit_test(header_values_never_carry_crlf),
		cmocka_unit_test(invalid_token_answers_carry_www_authenticate),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
