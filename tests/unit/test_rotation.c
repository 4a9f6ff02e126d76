/*
 * Reload and rotation without a server: the restart-only keys a reload
 * keeps (config.c), jwt_secret_previous in token.c, and the verify cache
 * keyed by the key set (tcache.c).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "extern.h"

struct config	*cfg;

#define OLD	"old-secret-old-secret-old-secret-0123"
#define NEW	"new-secret-new-secret-new-secret-4567"
#define SUB	"5d1c9a4e-3b7f-4f0e-9a51-2c8e7d6b1a90"
#define SID	"0b9f6a2c-7e34-4c1d-8f25-6a7b3c9d0e11"

static char	 noted[8][64];
static size_t	 nnoted;

static void
note(const char *key)
{
	if (nnoted < 8)
		snprintf(noted[nnoted++], sizeof(noted[0]), "%s", key);
}

static void
parse_into(struct config *c, const char *text)
{
	char	*err = NULL;

	config_defaults(c);
	assert_int_equal(config_parse(c, text, strlen(text), &err), 0);
	assert_int_equal(config_validate(c, &err), 0);
}

static void
restart_only_keys_noted_and_kept(void **state)
{
	struct config	 run, next;

	(void)state;
	nnoted = 0;
	parse_into(&run, "jwt_secret = " OLD "\nworkers = 8\n"
	    "database_url = host=a\nrefresh_ttl = 100\n");
	parse_into(&next, "jwt_secret = " NEW "\nworkers = 9\n"
	    "database_url = host=b\nrefresh_ttl = 200\naccess_ttl = 60\n"
	    "log_level = debug\n");
	assert_int_equal(config_keep_restart(&next, &run, note), 3);
	assert_int_equal(nnoted, 3);
	assert_string_equal(noted[0], "workers");
	assert_string_equal(noted[1], "database_url");
	assert_string_equal(noted[2], "access_ttl");
	/* restart-only: the running values, strings borrowed */
	assert_int_equal(next.workers, 8);
	assert_int_equal(next.access_ttl, 900);
	assert_ptr_equal(next.database_url, run.database_url);
	/* live: the new ones */
	assert_int_equal(next.refresh_ttl, 200);
	assert_string_equal(next.jwt_secret, NEW);
	assert_string_equal(next.log_level, "debug");
	config_free(&next);	/* frees its own strings only */
	assert_string_equal(run.database_url, "host=a");
	config_free(&run);
}

static void
nothing_noted_when_only_live_keys_change(void **state)
{
	struct config	 run, next;

	(void)state;
	nnoted = 0;
	parse_into(&run, "jwt_secret = " OLD "\n");
	parse_into(&next, "jwt_secret = " NEW "\njwt_secret_previous = " OLD
	    "\nlog_format = json\nverify_headers = authelia\n");
	assert_int_equal(config_keep_restart(&next, &run, note), 0);
	assert_int_equal(nnoted, 0);
	assert_int_equal(next.verify_preset, VERIFY_PRESET_AUTHELIA);
	config_free(&next);
	config_free(&run);
}

static void
previous_secret_too_short_refused(void **state)
{
	struct config	 c;
	char		*err = NULL;
	const char	*text = "jwt_secret = " NEW "\n"
			    "jwt_secret_previous = short\n";

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_parse(&c, text, strlen(text), &err), 0);
	assert_int_equal(config_validate(&c, &err), -1);
	assert_non_null(strstr(err, "jwt_secret_previous"));
	free(err);
	config_free(&c);
}

/* A generation: a config with its keys, cfg pointing at it. */
static struct config *
generation(const char *secret, const char *previous)
{
	struct config	*c = xcalloc(1, sizeof(*c));
	char		*err = NULL;

	config_defaults(c);
	free(c->jwt_secret);
	c->jwt_secret = xstrdup(secret);
	c->jwt_secret_len = strlen(secret);
	free(c->jwt_secret_previous);
	c->jwt_secret_previous = xstrdup(previous != NULL ? previous : "");
	c->jwt_secret_previous_len = previous != NULL ? strlen(previous) : 0;
	assert_int_equal(token_init(c, &err), 0);
	cfg = c;
	return c;
}

static void
generation_free(struct config *c)
{
	token_free(c->tokens);
	c->tokens = NULL;
	config_free(c);
	free(c);
}

static char *
issue(void)
{
	struct claims	 c;
	char		*tok = NULL;

	memset(&c, 0, sizeof(c));
	snprintf(c.sub, sizeof(c.sub), "%s", SUB);
	snprintf(c.sid, sizeof(c.sid), "%s", SID);
	snprintf(c.email, sizeof(c.email), "a@example.com");
	snprintf(c.roles, sizeof(c.roles), "user");
	assert_int_equal(token_issue(&c, 0, &tok), 0);
	return tok;
}

static void
previous_secret_verifies_until_removed(void **state)
{
	struct config	*g1, *g2, *g3;
	struct claims	 c;
	char		*t1, *t2;

	(void)state;
	g1 = generation(OLD, NULL);
	t1 = issue();
	assert_int_equal(tcache_verify(t1, strlen(t1), &c), 0);	/* cached */
	g2 = generation(NEW, OLD);
	assert_int_equal(token_verify(t1, strlen(t1), &c), 0);
	assert_int_equal(tcache_verify(t1, strlen(t1), &c), 0);
	t2 = issue();
	g3 = generation(NEW, NULL);
	assert_int_equal(token_verify(t2, strlen(t2), &c), 0);
	assert_int_equal(token_verify(t1, strlen(t1), &c), -1);
	/* the cache saw t1 valid under g1 and g2: not under g3 */
	assert_int_equal(tcache_verify(t1, strlen(t1), &c), -1);
	assert_int_equal(tcache_verify(t2, strlen(t2), &c), 0);
	cfg = g2;
	assert_int_equal(token_verify(t2, strlen(t2), &c), 0);	/* new secret */
	free(t1);
	free(t2);
	generation_free(g1);
	generation_free(g2);
	generation_free(g3);
	cfg = NULL;
}

static void
previous_refresh_hash_and_seal(void **state)
{
	struct config		*g1, *g2, *g3;
	struct refresh		 rt, back;
	char			 h1[FA_HASH_HEX + 1], prev[FA_HASH_HEX + 1];
	char			*sealed = NULL;

	(void)state;
	g1 = generation(OLD, NULL);
	refresh_new(&rt, SUB, SID);
	snprintf(h1, sizeof(h1), "%s", rt.hash);
	assert_int_equal(refresh_hash_previous(&rt, prev), -1);
	assert_int_equal(refresh_seal(&rt, &sealed), 0);

	g2 = generation(NEW, OLD);
	assert_int_equal(refresh_parse(&back, rt.text, strlen(rt.text)), 0);
	assert_string_not_equal(back.hash, h1);		/* the new secret's */
	assert_int_equal(refresh_hash_previous(&back, prev), 0);
	assert_string_equal(prev, h1);			/* the old one's */
	assert_int_equal(refresh_open(&back, sealed), 0);	/* old seal */
	assert_string_equal(back.text, rt.text);

	g3 = generation(NEW, NULL);
	assert_int_equal(refresh_hash_previous(&back, prev), -1);
	assert_int_equal(refresh_open(&back, sealed), -1);
	free(sealed);
	generation_free(g1);
	generation_free(g2);
	generation_free(g3);
	cfg = NULL;
}

static int
setup(void **state)
{
	(void)state;
	return tcache_init();
}

static int
teardown(void **state)
{
	(void)state;
	tcache_shutdown();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(restart_only_keys_noted_and_kept),
		cmocka_unit_test(nothing_noted_when_only_live_keys_change),
		cmocka_unit_test(previous_secret_too_short_refused),
		cmocka_unit_test(previous_secret_verifies_until_removed),
		cmocka_unit_test(previous_refresh_hash_and_seal),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
