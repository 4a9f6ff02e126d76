/*
 * test_revoke.c: the revocation cache's table (insert, lookup, merge,
 * expiry, sweep, growth, the cap), the cut-off rule, the message format
 * the Lua scripts publish, the liveness rule, and that a cache which is
 * not live says so.
 * No Redis: the table is pure and takes the time as an argument.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "extern.h"

struct config	*cfg;

#define UID	"0b6c2f5e-2a61-4c1e-9d1e-5b3c7a9e1f20"
#define UID2	"7f1d9a40-8c3b-4e55-a6b2-1c0d3e4f5a6b"
#define SID	"c3e1a2b4-5d6f-4a7b-8c9d-0e1f2a3b4c5d"
#define SID2	"d4f2b3c5-6e7a-4b8c-9d0e-1f2a3b4c5d6e"
#define JTI	"AAAAAAAAAAAAAAAAAAAAAA"
#define JTI2	"BBBBBBBBBBBBBBBBBBBBBB"
#define T0	1000000LL	/* any monotonic ms */

static struct revocation
rev(enum revoke_kind kind, const char *uid, const char *key,
    long long value, long long ttl_ms)
{
	struct revocation	 r;

	memset(&r, 0, sizeof(r));
	r.kind = kind;
	snprintf(r.uid, sizeof(r.uid), "%s", uid);
	snprintf(r.key, sizeof(r.key), "%s", key);
	r.value = value;
	r.ttl_ms = ttl_ms;
	return r;
}

static int
put(struct rtab *t, enum revoke_kind kind, const char *uid, const char *key,
    long long value, long long ttl_ms, long long now)
{
	struct revocation	 r = rev(kind, uid, key, value, ttl_ms);

	return rtab_put(t, &r, now);
}

static void
empty_table_revokes_nothing(void **state)
{
	struct rtab	*t = rtab_new(0);

	(void)state;
	assert_int_equal(rtab_count(t), 0);
	assert_int_equal(rtab_check(t, UID, SID, JTI, 0, T0), 0);
	assert_int_equal(rtab_check(t, "", "", "", 0, T0), 0);
	rtab_free(t);
	rtab_free(NULL);
}

static void
blacklisted_jti_revokes_that_token_only(void **state)
{
	struct rtab	*t = rtab_new(0);

	(void)state;
	assert_int_equal(put(t, REVOKE_JTI, UID, JTI, 1, 60000, T0), 0);
	assert_int_equal(rtab_count(t), 1);
	assert_int_equal(rtab_check(t, UID, SID, JTI, 0, T0), 1);
	assert_int_equal(rtab_check(t, UID, SID, JTI2, 0, T0), 0);
	/* same jti of another user, or the jti as a session id: no */
	assert_int_equal(rtab_check(t, UID2, SID, JTI, 0, T0), 0);
	assert_int_equal(rtab_check(t, UID, JTI, JTI2, 0, T0), 0);
	rtab_free(t);
}

static void
revoked_session_kills_all_its_tokens(void **state)
{
	struct rtab	*t = rtab_new(0);

	(void)state;
	assert_int_equal(put(t, REVOKE_SESSION, UID, SID, 1, 60000, T0), 0);
	assert_int_equal(rtab_check(t, UID, SID, JTI, 0, T0), 1);
	assert_int_equal(rtab_check(t, UID, SID, JTI2, 99, T0), 1);
	assert_int_equal(rtab_check(t, UID, SID2, JTI, 0, T0), 0);
	assert_int_equal(rtab_check(t, UID2, SID, JTI, 0, T0), 0);
	rtab_free(t);
}

static void
cutoff_revokes_below_and_not_at(void **state)
{
	struct rtab	*t = rtab_new(0);

	(void)state;
	assert_int_equal(put(t, REVOKE_CUTOFF, UID, "", 5, 60000, T0), 0);
	assert_int_equal(rtab_check(t, UID, SID, JTI, 0, T0), 1);
	assert_int_equal(rtab_check(t, UID, SID, JTI, 4, T0), 1);
	assert_int_equal(rtab_check(t, UID, SID, JTI, 5, T0), 0);
	assert_int_equal(rtab_check(t, UID, SID, JTI, 6, T0), 0);
	assert_int_equal(rtab_check(t, UID2, SID, JTI, 0, T0), 0);
	rtab_free(t);
}

static void
cutoff_merge_keeps_the_highest(void **state)
{
	struct rtab	*t = rtab_new(0);

	(void)state;
	assert_int_equal(put(t, REVOKE_CUTOFF, UID, "", 7, 600000, T0), 0);
	/* a late, older announcement (load raced a message) */
	assert_int_equal(put(t, REVOKE_CUTOFF, UID, "", 6, 600000, T0 + 5),
	    0);
	assert_int_equal(rtab_count(t), 1);
	assert_int_equal(rtab_check(t, UID, SID, JTI, 6, T0 + 10), 1);
	assert_int_equal(put(t, REVOKE_CUTOFF, UID, "", 9, 600000, T0 + 20),
	    0);
	assert_int_equal(rtab_check(t, UID, SID, JTI, 8, T0 + 30), 1);
	assert_int_equal(rtab_check(t, UID, SID, JTI, 9, T0 + 30), 0);
	rtab_free(t);
}

static void
cutoff_reset_after_expiry_takes_the_new_value(void **state)
{
	struct rtab	*t = rtab_new(0);
	long long	 end = T0 + 600000;

	(void)state;
	assert_int_equal(put(t, REVOKE_CUTOFF, UID, "", 7, 600000, T0), 0);
	/* Redis let the key expire and set it anew: generation 1 again */
	assert_int_equal(put(t, REVOKE_CUTOFF, UID, "", 1, 600000,
	    end - REVOKE_RESET_MS / 2), 0);
	assert_int_equal(rtab_check(t, UID, SID, JTI, 1, end), 0);
	assert_int_equal(rtab_check(t, UID, SID, JTI, 0, end), 1);
	/* after its end an entry is replaced whatever it held */
	assert_int_equal(put(t, REVOKE_CUTOFF, UID2, "", 7, 1000, T0), 0);
	assert_int_equal(put(t, REVOKE_CUTOFF, UID2, "", 2, 1000, T0 + 1000),
	    0);
	assert_int_equal(rtab_check(t, UID2, SID, JTI, 2, T0 + 1001), 0);
	rtab_free(t);
}

static void
entries_expire_and_later_expiry_wins(void **state)
{
	struct rtab	*t = rtab_new(0);

	(void)state;
	assert_int_equal(put(t, REVOKE_JTI, UID, JTI, 1, 1000, T0), 0);
	assert_int_equal(rtab_check(t, UID, SID, JTI, 0, T0 + 999), 1);
	assert_int_equal(rtab_check(t, UID, SID, JTI, 0, T0 + 1000), 0);
	/* merging keeps the later expiry, never shortens it */
	assert_int_equal(put(t, REVOKE_SESSION, UID, SID, 1, 5000, T0), 0);
	assert_int_equal(put(t, REVOKE_SESSION, UID, SID, 1, 1000, T0 + 10),
	    0);
	assert_int_equal(rtab_check(t, UID, SID, JTI2, 0, T0 + 4999), 1);
	assert_int_equal(rtab_check(t, UID, SID, JTI2, 0, T0 + 5000), 0);
	/* nothing left to live: not added */
	assert_int_equal(put(t, REVOKE_JTI, UID, JTI2, 1, 0, T0), 0);
	assert_int_equal(put(t, REVOKE_JTI, UID, JTI2, 1, -2, T0), 0);
	assert_int_equal(rtab_count(t), 2);
	rtab_free(t);
}

static void
sweep_drops_only_expired_entries(void **state)
{
	struct rtab	*t = rtab_new(0);
	char		 jti[FA_JTI_LEN + 1];
	size_t		 i, dropped;

	(void)state;
	for (i = 0; i < 300; i++) {
		snprintf(jti, sizeof(jti), "jti%zu", i);
		assert_int_equal(put(t, REVOKE_JTI, UID, jti, 1,
		    i % 3 == 0 ? 1000 : 60000, T0), 0);
	}
	assert_int_equal(rtab_count(t), 300);
	assert_int_equal(rtab_sweep(t, T0 + 500, rtab_buckets(t)), 0);
	/* a partial sweep goes on where it stopped */
	dropped = rtab_sweep(t, T0 + 1000, rtab_buckets(t) / 2);
	dropped += rtab_sweep(t, T0 + 1000, rtab_buckets(t) / 2);
	assert_int_equal(dropped, 100);
	assert_int_equal(rtab_count(t), 200);
	assert_int_equal(rtab_sweep(t, T0 + 1000, (size_t)-1), 0);
	for (i = 0; i < 300; i++) {
		snprintf(jti, sizeof(jti), "jti%zu", i);
		assert_int_equal(rtab_check(t, UID, SID, jti, 0, T0 + 1000),
		    i % 3 == 0 ? 0 : 1);
	}
	assert_int_equal(rtab_sweep(t, T0 + 60000, (size_t)-1), 200);
	assert_int_equal(rtab_count(t), 0);
	rtab_free(t);
}

static void
table_grows_and_finds_everything(void **state)
{
	struct rtab	*t = rtab_new(0);
	char		 sid[FA_UUID_LEN + 1];
	size_t		 i, n = REVOKE_BUCKETS_MIN * 5;

	(void)state;
	for (i = 0; i < n; i++) {
		snprintf(sid, sizeof(sid), "s-%zu", i);
		assert_int_equal(put(t, REVOKE_SESSION, UID, sid, 1, 60000, T0),
		    0);
	}
	assert_int_equal(rtab_count(t), n);
	assert_true(rtab_buckets(t) >= n);
	assert_int_equal(rtab_buckets(t) & (rtab_buckets(t) - 1), 0);
	for (i = 0; i < n; i++) {
		snprintf(sid, sizeof(sid), "s-%zu", i);
		assert_int_equal(rtab_check(t, UID, sid, JTI, 0, T0), 1);
	}
	assert_int_equal(rtab_check(t, UID, "s-x", JTI, 0, T0), 0);
	/* a duplicate merges, it does not add */
	assert_int_equal(put(t, REVOKE_SESSION, UID, "s-0", 1, 60000, T0), 0);
	assert_int_equal(rtab_count(t), n);
	rtab_free(t);
}

static void
full_table_refuses_and_says_so(void **state)
{
	struct rtab	*t = rtab_new(3);

	(void)state;
	assert_int_equal(put(t, REVOKE_JTI, UID, "a", 1, 1000, T0), 0);
	assert_int_equal(put(t, REVOKE_JTI, UID, "b", 1, 1000, T0), 0);
	assert_int_equal(put(t, REVOKE_JTI, UID, "c", 1, 1000, T0), 0);
	assert_int_equal(put(t, REVOKE_JTI, UID, "d", 1, 1000, T0), -1);
	/* a merge still fits */
	assert_int_equal(put(t, REVOKE_JTI, UID, "a", 1, 2000, T0), 0);
	assert_int_equal(rtab_sweep(t, T0 + 1000, (size_t)-1), 2);
	assert_int_equal(put(t, REVOKE_JTI, UID, "d", 1, 1000, T0 + 1000), 0);
	rtab_free(t);
}

static void
overlong_ids_are_never_found(void **state)
{
	struct rtab	*t = rtab_new(0);
	char		 big[64];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(put(t, REVOKE_JTI, UID, JTI, 1, 1000, T0), 0);
	assert_int_equal(rtab_check(t, big, big, big, 0, T0), 0);
	rtab_free(t);
}

static void
parses_what_the_scripts_publish(void **state)
{
	static const char *const bad[] = {
		"", "fa:{" UID "}:bl:" JTI, "fa:{" UID "}:bl:" JTI " 60",
		"fa:{" UID "}:bl:" JTI " 60 ", "fa:{" UID "}:bl:" JTI " x 1",
		"fa:{" UID "}:bl:" JTI " -1 1", "fa:{" UID "}:bl: 60 1",
		"fa:{" UID "}:sess:" SID " 60 1", "fa:{" UID "}:cutoffx 60 1",
		"fa:{" UID "}:cutoff 60 -3", "fa:" UID ":cutoff 60 1",
		"fa:{" UID "x" UID "}:cutoff 60 1", "fa:{}:cutoff 60 1",
		"fa:{a b}:cutoff 60 1", "fa:{" UID "}:bl:a}b 60 1",
		"fa:rl:x 60 1", "fa:{" UID "}:cutoff 99999999999999999999 1",
	};
	struct revocation	 r;
	const char		*m;
	size_t			 i;

	(void)state;
	m = "fa:{" UID "}:bl:" JTI " 901 1";
	assert_int_equal(store_revocation_parse(m, strlen(m), &r), 0);
	assert_int_equal(r.kind, REVOKE_JTI);
	assert_string_equal(r.uid, UID);
	assert_string_equal(r.key, JTI);
	assert_int_equal(r.ttl_ms, 901000);
	assert_int_equal(r.value, 1);

	m = "fa:{" UID "}:srev:" SID " 990 1";
	assert_int_equal(store_revocation_parse(m, strlen(m), &r), 0);
	assert_int_equal(r.kind, REVOKE_SESSION);
	assert_string_equal(r.key, SID);

	m = "fa:{" UID "}:cutoff 990 42";
	assert_int_equal(store_revocation_parse(m, strlen(m), &r), 0);
	assert_int_equal(r.kind, REVOKE_CUTOFF);
	assert_string_equal(r.uid, UID);
	assert_string_equal(r.key, "");
	assert_int_equal(r.value, 42);
	assert_int_equal(r.ttl_ms, 990000);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (store_revocation_parse(bad[i], strlen(bad[i]), &r) != -1)
			fail_msg("accepted %s", bad[i]);
	/* not NUL-terminated: only len bytes are read */
	m = "fa:{" UID "}:cutoff 5 7trailing";
	assert_int_equal(store_revocation_parse(m, strlen(m) - 8, &r), 0);
	assert_int_equal(r.value, 7);
}

static void
cache_not_live_answers_minus_one(void **state)
{
	struct revoke_stats	 st;

	(void)state;
	/* no listener: checks go to Redis */
	assert_int_equal(revoke_check(UID, SID, JTI, 0), -1);
	assert_int_equal(revoke_check(UID, SID, JTI2, 0), -1);
	revoke_stats(&st);
	assert_int_equal(st.live, 0);
	assert_int_equal(st.entries, 0);
	assert_true(st.fallbacks >= 2);
	revoke_shutdown();	/* harmless when never started */
}

/* The liveness rule: synced, not full, and a PING answered within
 * REVOKE_FRESH_MS of now; a clock that went back is not fresh. */
static void
live_only_when_synced_not_full_and_fresh(void **state)
{
	(void)state;
	assert_int_equal(revoke_live(1, 0, T0, T0), 1);
	assert_int_equal(revoke_live(1, 0, T0, T0 + REVOKE_FRESH_MS), 1);
	assert_int_equal(revoke_live(1, 0, T0, T0 + REVOKE_FRESH_MS + 1), 0);
	assert_int_equal(revoke_live(0, 0, T0, T0), 0);
	assert_int_equal(revoke_live(1, 1, T0, T0), 0);
	assert_int_equal(revoke_live(1, 0, 0, T0), 0);
	assert_int_equal(revoke_live(1, 0, 0, REVOKE_FRESH_MS), 0);
	assert_int_equal(revoke_live(1, 0, T0, T0 - 1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(empty_table_revokes_nothing),
		cmocka_unit_test(blacklisted_jti_revokes_that_token_only),
		cmocka_unit_test(revoked_session_kills_all_its_tokens),
		cmocka_unit_test(cutoff_revokes_below_and_not_at),
		cmocka_unit_test(cutoff_merge_keeps_the_highest),
		cmocka_unit_test(cutoff_reset_after_expiry_takes_the_new_value),
		cmocka_unit_test(entries_expire_and_later_expiry_wins),
		cmocka_unit_test(sweep_drops_only_expired_entries),
		cmocka_unit_test(table_grows_and_finds_everything),
		cmocka_unit_test(full_table_refuses_and_says_so),
		cmocka_unit_test(overlong_ids_are_never_found),
		cmocka_unit_test(parses_what_the_scripts_publish),
		cmocka_unit_test(cache_not_live_answers_minus_one),
		cmocka_unit_test(live_only_when_synced_not_full_and_fresh),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
