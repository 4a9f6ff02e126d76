/*
 * test_store.c: the Redis backend's pure parts: which ids may go into keys,
 * which keys are revocations (store_parse.c), and the hook that hands this
 * process's own revocations up (store.c), without a Redis.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "extern.h"
#include "store_int.h"

#define UID	"5d1c9a4e-3b7f-4f0e-9a51-2c8e7d6b1a90"
#define SID	"0b9f6a2c-7e34-4c1d-8f25-6a7b3c9d0e11"

struct config	*cfg;

static struct revocation	 got;
static int			 ngot;

static void
hook(const struct revocation *r, void *arg)
{
	assert_ptr_equal(arg, &ngot);
	got = *r;
	ngot++;
}

static int
key(const char *k, struct revocation *r)
{
	return store_revocation_key(k, strlen(k), r);
}

static void
ids_that_may_go_into_keys(void **state)
{
	(void)state;
	assert_true(store_id_ok(UID));
	assert_true(store_id_ok("AbCdEfGhIjKlMnOpQrSt_-"));
	assert_true(store_id_ok("x"));
	assert_false(store_id_ok(NULL));
	assert_false(store_id_ok(""));
	assert_false(store_id_ok(UID "0"));	/* FA_UUID_LEN + 1 */
	assert_false(store_id_ok("a}b"));	/* would leave the hash tag */
	assert_false(store_id_ok("a:b"));
	assert_false(store_id_ok("a b"));
	assert_false(store_id_ok("a*"));
}

static void
revocation_keys_name_kind_user_and_id(void **state)
{
	struct revocation	 r;

	(void)state;
	assert_int_equal(key("fa:{" UID "}:bl:AbCdEfGhIjKlMnOpQrSt_-", &r), 0);
	assert_int_equal(r.kind, REVOKE_JTI);
	assert_string_equal(r.uid, UID);
	assert_string_equal(r.key, "AbCdEfGhIjKlMnOpQrSt_-");
	assert_int_equal(key("fa:{" UID "}:srev:" SID, &r), 0);
	assert_int_equal(r.kind, REVOKE_SESSION);
	assert_string_equal(r.key, SID);
	assert_int_equal(key("fa:{" UID "}:cutoff", &r), 0);
	assert_int_equal(r.kind, REVOKE_CUTOFF);
	assert_string_equal(r.key, "");

	/* the other keys of a user, and anything else, are not revocations */
	assert_int_equal(key("fa:{" UID "}:sess:" SID, &r), -1);
	assert_int_equal(key("fa:{" UID "}:sessions", &r), -1);
	assert_int_equal(key("fa:{" UID "}:cutoffs", &r), -1);
	assert_int_equal(key("fa:{" UID "}:bl:", &r), -1);
	assert_int_equal(key("fa:{" UID "}:bl:a}b", &r), -1);
	assert_int_equal(key("fa:{" UID "0}:cutoff", &r), -1);
	assert_int_equal(key("fa:{}:cutoff", &r), -1);
	assert_int_equal(key("fa:rl:x", &r), -1);
	assert_int_equal(key("fa:{" UID "}cutoff", &r), -1);
	assert_int_equal(key("", &r), -1);
}

static void
own_revocations_go_up_through_the_hook(void **state)
{
	(void)state;
	ngot = 0;
	/* no hook yet: nothing to call */
	store_note_revoked(REVOKE_JTI, UID, "jti", 1, 60);
	assert_int_equal(ngot, 0);

	store_on_revoke(hook, &ngot);
	store_note_revoked(REVOKE_SESSION, UID, SID, 1, 960);
	assert_int_equal(ngot, 1);
	assert_int_equal(got.kind, REVOKE_SESSION);
	assert_string_equal(got.uid, UID);
	assert_string_equal(got.key, SID);
	assert_int_equal(got.value, 1);
	assert_int_equal(got.ttl_ms, 960000);

	store_note_revoked(REVOKE_CUTOFF, UID, "", 1767225600123LL, 0);
	assert_int_equal(ngot, 2);
	assert_int_equal(got.kind, REVOKE_CUTOFF);
	assert_int_equal(got.value, 1767225600123LL);
	assert_int_equal(got.ttl_ms, 1000);	/* at least a second */

	/* no cut-off yet, or ids that cannot be ours: not handed up */
	store_note_revoked(REVOKE_CUTOFF, UID, "", 0, 60);
	store_note_revoked(REVOKE_JTI, UID "0", "jti", 1, 60);
	store_note_revoked(REVOKE_JTI, UID, SID "0", 1, 60);
	store_note_revoked(REVOKE_JTI, NULL, "jti", 1, 60);
	assert_int_equal(ngot, 2);

	store_on_revoke(NULL, NULL);
	store_note_revoked(REVOKE_JTI, UID, "jti", 1, 60);
	assert_int_equal(ngot, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ids_that_may_go_into_keys),
		cmocka_unit_test(revocation_keys_name_kind_user_and_id),
		cmocka_unit_test(own_revocations_go_up_through_the_hook),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
