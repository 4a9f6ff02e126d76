/* The NestJS request envelope of the RPC responder: answer, answer
 * {"valid": false}, or drop; and the answer's shape. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "extern.h"

struct config	*cfg;

static enum rpc_parse
parse(const char *msg, struct rpc_req *req, json_t **root, const char **why)
{
	return rpc_parse(msg, strlen(msg), req, root, why);
}

static void
a_nestjs_request_is_parsed(void **state)
{
	struct rpc_req	 req;
	json_t		*root;
	const char	*why;

	(void)state;
	assert_int_equal(parse("{\"pattern\":\"auth.validate_token\","
	    "\"data\":{\"token\":\"a.b.c\"},\"id\":\"3f6c\"}", &req, &root,
	    &why), RPC_OK);
	assert_string_equal(req.id, "\"3f6c\"");
	assert_int_equal(req.toklen, 5);
	assert_memory_equal(req.token, "a.b.c", 5);
	json_decref(root);
	/* a numeric id is echoed as a number */
	assert_int_equal(parse("{\"data\":{\"token\":\"t\"},\"id\":42}", &req,
	    &root, &why), RPC_OK);
	assert_string_equal(req.id, "42");
	json_decref(root);
}

static void
an_id_without_a_usable_token_is_answered_invalid(void **state)
{
	static const char *const msgs[] = {
		"{\"data\":{},\"id\":\"a\"}",
		"{\"data\":{\"token\":\"\"},\"id\":\"a\"}",
		"{\"data\":{\"token\":7},\"id\":\"a\"}",
		"{\"data\":{\"token\":null},\"id\":\"a\"}",
	};
	struct rpc_req	 req;
	json_t		*root;
	const char	*why;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		assert_int_equal(parse(msgs[i], &req, &root, &why),
		    RPC_NO_TOKEN);
		assert_non_null(root);
		assert_null(req.token);
		assert_string_equal(req.id, "\"a\"");
		json_decref(root);
	}
}

static void
malformed_requests_are_dropped(void **state)
{
	static const char *const msgs[] = {
		"",
		"not json",
		"[1,2]",
		"\"str\"",
		"{\"data\":{\"token\":\"t\"}}",			/* an event */
		"{\"data\":{\"token\":\"t\"},\"id\":null}",
		"{\"data\":{\"token\":\"t\"},\"id\":{}}",
		"{\"data\":{\"token\":\"t\"},\"id\":1.5}",
		"{\"data\":\"t\",\"id\":\"a\"}",
		"{\"data\":[],\"id\":\"a\"}",
		"{\"id\":\"a\"}",
		"{\"id\":\"a\",\"id\":\"b\",\"data\":{}}",
	};
	struct rpc_req	 req;
	json_t		*root;
	const char	*why;
	char		*big;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		why = NULL;
		assert_int_equal(parse(msgs[i], &req, &root, &why), RPC_DROP);
		assert_null(root);
		assert_non_null(why);
	}
	/* a token over the limit, an id over the limit, a huge message */
	big = malloc(RPC_MSG_MAX * 2);
	snprintf(big, RPC_MSG_MAX * 2, "{\"data\":{\"token\":\"%0*d\"},"
	    "\"id\":\"a\"}", FA_TOKEN_MAX + 1, 0);
	assert_int_equal(parse(big, &req, &root, &why), RPC_DROP);
	snprintf(big, RPC_MSG_MAX * 2, "{\"data\":{\"token\":\"t\"},"
	    "\"id\":\"%0*d\"}", RPC_ID_MAX, 0);
	assert_int_equal(parse(big, &req, &root, &why), RPC_DROP);
	memset(big, ' ', RPC_MSG_MAX * 2 - 1);
	memcpy(big, "{\"data\":{},\"id\":1}", 18);
	big[RPC_MSG_MAX * 2 - 1] = '\0';
	assert_int_equal(parse(big, &req, &root, &why), RPC_DROP);
	free(big);
}

static void
the_answer_has_the_contract_shape(void **state)
{
	struct claims	 c;
	json_t		*a;
	char		*s;

	(void)state;
	a = rpc_answer(NULL);
	s = json_dumps(a, JSON_COMPACT);
	assert_string_equal(s, "{\"valid\":false}");
	free(s);
	json_decref(a);
	memset(&c, 0, sizeof(c));
	strcpy(c.sub, "u");
	strcpy(c.sid, "s");
	strcpy(c.email, "e@example.test");
	strcpy(c.roles, "user,admin");
	c.exp = 1700000000;
	c.aal = 2;
	a = rpc_answer(&c);
	s = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"aal\":2,\"email\":\"e@example.test\","
	    "\"exp\":1700000000,\"roles\":[\"user\",\"admin\"],"
	    "\"sessionId\":\"s\",\"userId\":\"u\",\"valid\":true}");
	free(s);
	json_decref(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_nestjs_request_is_parsed),
		cmocka_unit_test(an_id_without_a_usable_token_is_answered_invalid),
		cmocka_unit_test(malformed_requests_are_dropped),
		cmocka_unit_test(the_answer_has_the_contract_shape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
