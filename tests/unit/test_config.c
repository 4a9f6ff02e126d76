/* Config parsing: key = value, env overrides, *_file secrets, validation. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "extern.h"

struct config	*cfg;

#define SECRET	"0123456789abcdef0123456789abcdef"

static int
parse(struct config *c, const char *text, char **err)
{
	config_defaults(c);
	return config_parse(c, text, strlen(text), err);
}

static void
defaults_are_the_documented_ones(void **state)
{
	struct config	 c;

	(void)state;
	config_defaults(&c);
	assert_int_equal(c.workers, 64);
	assert_int_equal(c.max_body, 16384);
	assert_string_equal(c.prefix, "/auth");
	assert_string_equal(c.jwt_alg, "HS256");
	assert_int_equal(c.access_ttl, 900);
	assert_int_equal(c.refresh_ttl, 604800);
	assert_int_equal(c.refresh_reuse_grace, 10);
	assert_int_equal(c.listen_mode, 0660);
	assert_true(c.password_memlimit >= 19 * 1024 * 1024);
	assert_true(c.password_opslimit >= 2);
	assert_null(c.jwt_secret);
	config_free(&c);
}

static void
key_value_lines_with_comments_parse(void **state)
{
	struct config	 c;
	char		*err = NULL;

	(void)state;
	assert_int_equal(parse(&c, "# comment\n\n  workers = 8  \n"
	    "prefix=/api/auth\r\nratelimit = off\njwt_secret = \"" SECRET
	    "\"\n", &err), 0);
	assert_int_equal(c.workers, 8);
	assert_string_equal(c.prefix, "/api/auth");
	assert_int_equal(c.ratelimit, 0);
	assert_int_equal(c.jwt_secret_len, 32);
	assert_int_equal(config_validate(&c, &err), 0);
	config_free(&c);
}

static void
unknown_key_is_named_in_the_error(void **state)
{
	struct config	 c;
	char		*err = NULL;

	(void)state;
	assert_int_equal(parse(&c, "wrokers = 8\n", &err), -1);
	assert_non_null(strstr(err, "line 1"));
	assert_non_null(strstr(err, "wrokers"));
	free(err);
	config_free(&c);
}

static void
malformed_numbers_are_refused(void **state)
{
	static const char *const bad[] = {
		"workers = 0\n", "workers = 8x\n", "workers =\n",
		"max_body = -1\n", "access_ttl = 99999999999999999999\n",
		"ratelimit = maybe\n", "novalue\n", "= 3\n",
		/* decimal only: no octal, hex, sign or blank inside */
		"workers = 010\n", "workers = 0x10\n", "workers = +8\n",
		"workers = 00\n", "redis_db = -0\n",
		"listen_mode = 0780\n", "listen_mode = 01000\n",
		"listen_mode = 0x1b6\n", "listen_mode = -1\n",
	};
	struct config	 c;
	char		*err;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		assert_int_equal(parse(&c, bad[i], &err), -1);
		assert_non_null(err);
		free(err);
		config_free(&c);
	}
}

static void
missing_or_short_secret_refuses_to_start(void **state)
{
	struct config	 c;
	char		*err = NULL;

	(void)state;
	assert_int_equal(parse(&c, "", &err), 0);
	assert_int_equal(config_validate(&c, &err), -1);
	assert_non_null(strstr(err, "jwt_secret"));
	free(err);
	config_free(&c);
	err = NULL;
	assert_int_equal(parse(&c, "jwt_secret = short\n", &err), 0);
	assert_int_equal(config_validate(&c, &err), -1);
	assert_non_null(strstr(err, "jwt_secret"));
	assert_null(strstr(err, "short\n"));
	free(err);
	config_free(&c);
}

/* migrate, user, outbox, import-users: config_load(CONFIG_SECRET_OPTIONAL) */
static void
commands_that_sign_nothing_load_without_a_secret(void **state)
{
	struct config	 c;
	const char	*text = "jwt_secret_file = /nonexistent/secret\n";
	char		*err = NULL;

	(void)state;
	config_defaults(&c);
	c.secret_optional = 1;
	assert_int_equal(config_parse(&c, text, strlen(text), &err), 0);
	assert_null(c.jwt_secret);
	assert_int_equal(config_validate(&c, &err), 0);
	config_free(&c);
	config_defaults(&c);
	assert_int_equal(config_parse(&c, text, strlen(text), &err), -1);
	assert_non_null(strstr(err, "jwt_secret_file"));
	free(err);
	config_free(&c);
}

/* Numbers are decimal; listen_mode alone is an octal file mode. */
static void
numbers_are_decimal_and_the_mode_octal(void **state)
{
	struct config	 c;
	char		*err = NULL;
	FILE		*f;
	char		*out = NULL;
	size_t		 outlen = 0;

	(void)state;
	assert_int_equal(parse(&c, "workers = 10\nredis_db = 0\n"
	    "listen_mode = 0600\n", &err), 0);
	assert_int_equal(c.workers, 10);
	assert_int_equal(c.redis_db, 0);
	assert_int_equal(c.listen_mode, 0600);
	f = open_memstream(&out, &outlen);
	assert_non_null(f);
	config_print(&c, f);
	fclose(f);
	assert_non_null(strstr(out, "listen_mode = 0600\n"));
	assert_non_null(strstr(out, "workers = 10\n"));
	free(out);
	config_free(&c);
	assert_int_equal(parse(&c, "listen_mode = 777\n", &err), 0);
	assert_int_equal(c.listen_mode, 0777);
	config_free(&c);
	assert_int_equal(parse(&c, "workers = 010\n", &err), -1);
	assert_non_null(strstr(err, "workers: expected a number"));
	free(err);
	config_free(&c);
}

static void
environment_overrides_the_file(void **state)
{
	struct config	 c;
	char		*err = NULL;
	char		 w[] = "FCGI_AUTH_WORKERS=12",
			 s[] = "FCGI_AUTH_JWT_SECRET=" SECRET, o[] = "OTHER=1";
	char		*env[] = { w, s, o, NULL };

	(void)state;
	assert_int_equal(parse(&c, "workers = 8\n", &err), 0);
	assert_int_equal(config_env(&c, env, &err), 0);
	assert_int_equal(c.workers, 12);
	assert_int_equal(config_validate(&c, &err), 0);
	config_free(&c);
}

static void
secret_may_come_from_a_file(void **state)
{
	struct config	 c;
	char		 path[] = "/tmp/fa-secret-XXXXXX", text[128];
	char		*err = NULL;
	int		 fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, SECRET "\n", 33), 33);
	close(fd);
	snprintf(text, sizeof(text), "jwt_secret_file = %s\n", path);
	assert_int_equal(parse(&c, text, &err), 0);
	assert_int_equal(c.jwt_secret_len, 32);
	assert_memory_equal(c.jwt_secret, SECRET, 32);
	config_free(&c);
	unlink(path);
	assert_int_equal(parse(&c, text, &err), -1);
	assert_non_null(strstr(err, "jwt_secret_file"));
	free(err);
	config_free(&c);
}

static void
print_masks_secrets(void **state)
{
	struct config	 c;
	char		*err = NULL, *buf = NULL;
	size_t		 len = 0;
	FILE		*f;

	(void)state;
	assert_int_equal(parse(&c, "jwt_secret = " SECRET "\n"
	    "database_url = host=x password=hunter2\n", &err), 0);
	assert_int_equal(config_validate(&c, &err), 0);
	f = open_memstream(&buf, &len);
	config_print(&c, f);
	fclose(f);
	assert_null(strstr(buf, SECRET));
	assert_null(strstr(buf, "hunter2"));
	assert_non_null(strstr(buf, "jwt_secret = ********"));
	free(buf);
	config_free(&c);
}

static void
asymmetric_alg_needs_a_key(void **state)
{
	struct config	 c;
	char		*err = NULL;

	(void)state;
	assert_int_equal(parse(&c, "jwt_secret = " SECRET "\njwt_alg = RS256\n",
	    &err), 0);
	assert_int_equal(config_validate(&c, &err), -1);
	free(err);
	config_free(&c);
	assert_int_equal(parse(&c, "jwt_secret = " SECRET "\njwt_alg = none\n",
	    &err), 0);
	assert_int_equal(config_validate(&c, &err), -1);
	free(err);
	config_free(&c);
}

static void
binary_and_overlong_lines_are_refused(void **state)
{
	struct config	 c;
	char		*err = NULL, *big;
	const char	 nul[] = "workers = 8\0\n";

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_parse(&c, nul, sizeof(nul) - 1, &err), -1);
	free(err);
	config_free(&c);
	big = malloc(CONFIG_LINE_MAX + 10);
	memset(big, 'a', CONFIG_LINE_MAX + 9);
	big[CONFIG_LINE_MAX + 9] = '\0';
	assert_int_equal(parse(&c, big, &err), -1);
	free(err);
	free(big);
	config_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_are_the_documented_ones),
		cmocka_unit_test(key_value_lines_with_comments_parse),
		cmocka_unit_test(unknown_key_is_named_in_the_error),
		cmocka_unit_test(malformed_numbers_are_refused),
		cmocka_unit_test(numbers_are_decimal_and_the_mode_octal),
		cmocka_unit_test(missing_or_short_secret_refuses_to_start),
		cmocka_unit_test(
		    commands_that_sign_nothing_load_without_a_secret),
		cmocka_unit_test(environment_overrides_the_file),
		cmocka_unit_test(secret_may_come_from_a_file),
		cmocka_unit_test(print_masks_secrets),
		cmocka_unit_test(asymmetric_alg_needs_a_key),
		cmocka_unit_test(binary_and_overlong_lines_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
