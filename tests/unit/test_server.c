/* server_request.c: the one-pass lookup of the FastCGI parameters. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcgiapp.h>

#include "extern.h"
#include "server_int.h"

struct config	*cfg;

/* Each name's value as FCGX_GetParam would give it: the first, or NULL. */
static void
params_find_agrees_with_fcgx_getparam(void **state)
{
	char		 e0[] = "REQUEST_METHOD=GET", e1[] = "HTTP_X=a=b",
			 e2[] = "REQUEST_URI=/auth/verify?x=1", e3[] = "EMPTY=",
			 e4[] = "REQUEST_METHOD=POST", e5[] = "NOEQUALS",
			 e6[] = "=nameless", e7[] = "REQUEST=short",
			 e8[] = "HTTP_A_HEADER_NAME_OF_SEVENTY_BYTES_"
			    "LONGER_THAN_ANY_LENGTH_BUCKET_XYZ=long",
			 e9[] = "HTTP_A_HEADER_NAME_OF_SIXTY_THREE_BYTES__"
			    "THE_LAST_LENGTH_BUCKET=63";
	char		*envp[] = { e0, e1, e2, e3, e4, e5, e6, e7, e8, e9,
			    NULL };
	const char *const names[] = { "REQUEST_METHOD", "HTTP_X", "REQUEST_URI",
	    "EMPTY", "MISSING", NULL, "REQUEST", "HTTP",
	    "HTTP_A_HEADER_NAME_OF_SEVENTY_BYTES_LONGER_THAN_ANY_LENGTH_"
	    "BUCKET_XYZ",
	    "HTTP_A_HEADER_NAME_OF_SEVENTY_BYTES_LONGER_THAN_ANY_LENGTH_"
	    "BUCKET_XYW",
	    "HTTP_A_HEADER_NAME_OF_SIXTY_THREE_BYTES__THE_LAST_LENGTH_BUCKET" };
	const char	*out[11];
	size_t		 i;

	(void)state;
	assert_true(strlen(names[8]) > SERVER_PARAM_NAME_MAX);
	assert_int_equal(strlen(names[10]), SERVER_PARAM_NAME_MAX);
	server_params_find(envp, names, 11, out);
	for (i = 0; i < 11; i++) {
		const char *want = names[i] != NULL ?
		    FCGX_GetParam(names[i], envp) : NULL;

		if (want == NULL)
			assert_null(out[i]);
		else
			assert_string_equal(out[i], want);
	}
	assert_string_equal(out[0], "GET");
	assert_string_equal(out[1], "a=b");
	assert_string_equal(out[3], "");
	assert_null(out[4]);
	assert_null(out[5]);
	assert_string_equal(out[6], "short");
	assert_null(out[7]);
	assert_string_equal(out[8], "long");
	assert_null(out[9]);
	assert_string_equal(out[10], "63");
}

/* No list, or names past SERVER_PARAMS_MAX: NULL, never a read past. */
static void
params_find_bounds(void **state)
{
	const char	*names[SERVER_PARAMS_MAX + 2], *out[SERVER_PARAMS_MAX + 2];
	char		 e0[] = "LAST=1";
	char		*envp[] = { e0, NULL };
	size_t		 i;

	(void)state;
	for (i = 0; i < SERVER_PARAMS_MAX + 2; i++)
		names[i] = "LAST";
	server_params_find(NULL, names, 1, out);
	assert_null(out[0]);
	server_params_find(envp, names, SERVER_PARAMS_MAX + 2, out);
	for (i = 0; i < SERVER_PARAMS_MAX; i++)
		assert_string_equal(out[i], "1");
	assert_null(out[SERVER_PARAMS_MAX]);
	assert_null(out[SERVER_PARAMS_MAX + 1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(params_find_agrees_with_fcgx_getparam),
		cmocka_unit_test(params_find_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
