/* The slots of a connection pool (connpool.c). */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "extern.h"

struct config	*cfg;

static void
test_connpool_every_slot_once(void **state)
{
	struct connpool	 p;
	size_t		 a, b, c;
	int		 live;

	(void)state;
	connpool_init(&p, 2);
	assert_int_equal(connpool_get(&p, mono_ms() + 1000, &a, &live), 0);
	assert_int_equal(live, 0);
	assert_int_equal(connpool_get(&p, mono_ms() + 1000, &b, &live), 0);
	assert_true(a != b);
	assert_true(a < 2 && b < 2);
	/* all busy: the third borrow fails at its deadline */
	assert_int_equal(connpool_get(&p, mono_ms() + 50, &c, &live), -1);
	connpool_put(&p, a, 0);
	assert_int_equal(connpool_get(&p, mono_ms() + 50, &c, &live), 0);
	assert_int_equal(c, a);
	connpool_put(&p, b, 0);
	connpool_put(&p, c, 0);
	connpool_destroy(&p);
}

static void
test_connpool_prefers_live(void **state)
{
	struct connpool	 p;
	size_t		 i, s[3];
	int		 live;

	(void)state;
	connpool_init(&p, 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(connpool_get(&p, mono_ms() + 100, &s[i],
		    &live), 0);
	connpool_put(&p, s[0], 0);
	connpool_put(&p, s[2], 1);
	connpool_put(&p, s[1], 0);
	assert_int_equal(connpool_get(&p, mono_ms() + 100, &i, &live), 0);
	assert_int_equal(i, s[2]);
	assert_int_equal(live, 1);
	/* then the empty ones */
	assert_int_equal(connpool_get(&p, mono_ms() + 100, &i, &live), 0);
	assert_int_equal(live, 0);
	connpool_destroy(&p);
}

static void
test_connpool_zero_is_one(void **state)
{
	struct connpool	 p;
	size_t		 i;
	int		 live;

	(void)state;
	connpool_init(&p, 0);
	assert_int_equal(p.n, 1);
	assert_int_equal(connpool_get(&p, mono_ms() + 100, &i, &live), 0);
	assert_int_equal(connpool_get(&p, mono_ms(), &i, &live), -1);
	connpool_destroy(&p);
	/* destroyed (or never made): nothing to borrow, no crash */
	assert_int_equal(connpool_get(&p, mono_ms() + 10, &i, &live), -1);
	connpool_put(&p, 0, 0);
	connpool_destroy(&p);
}

static void *
put_later(void *arg)
{
	struct connpool	*p = arg;

	usleep(50 * 1000);
	connpool_put(p, 0, 1);
	return NULL;
}

static void
test_connpool_waiter_woken_by_put(void **state)
{
	struct connpool	 p;
	pthread_t	 t;
	long long	 t0;
	size_t		 i;
	int		 live;

	(void)state;
	connpool_init(&p, 1);
	assert_int_equal(connpool_get(&p, mono_ms() + 100, &i, &live), 0);
	assert_int_equal(pthread_create(&t, NULL, put_later, &p), 0);
	t0 = mono_ms();
	assert_int_equal(connpool_get(&p, t0 + 5000, &i, &live), 0);
	/* woken by the put, not by the deadline */
	assert_true(mono_ms() - t0 < 2500);
	assert_int_equal(live, 1);
	pthread_join(t, NULL);
	connpool_destroy(&p);
}

/*
 * All slots busy: the borrow gives up at its deadline, not before and not
 * much later (a Redis or PostgreSQL outage answers 503 in time).
 */
static void
test_connpool_wait_ends_at_deadline(void **state)
{
	struct connpool	 p;
	long long	 t0, took;
	size_t		 i, j;
	int		 live;

	(void)state;
	connpool_init(&p, 1);
	assert_int_equal(connpool_get(&p, mono_ms() + 100, &i, &live), 0);
	t0 = mono_ms();
	assert_int_equal(connpool_get(&p, t0 + 200, &j, &live), -1);
	took = mono_ms() - t0;
	assert_true(took >= 200);
	assert_true(took < 2000);
	/* a deadline already passed: no wait at all */
	t0 = mono_ms();
	assert_int_equal(connpool_get(&p, t0 - 1, &j, &live), -1);
	assert_true(mono_ms() - t0 < 1000);
	connpool_put(&p, i, 0);
	connpool_destroy(&p);
}

/* A slot returned empty (its connect failed) is lent again; bad puts are
   ignored. */
static void
test_connpool_empty_slot_lent_again(void **state)
{
	struct connpool	 p;
	size_t		 i, j;
	int		 live;

	(void)state;
	connpool_init(&p, 1);
	assert_int_equal(connpool_get(&p, mono_ms() + 100, &i, &live), 0);
	connpool_put(&p, i, 1);
	assert_int_equal(connpool_get(&p, mono_ms() + 100, &i, &live), 0);
	assert_int_equal(live, 1);
	/* the owner dropped the connection: the slot comes back empty */
	connpool_put(&p, i, 0);
	connpool_put(&p, 7, 1);
	assert_int_equal(connpool_get(&p, mono_ms() + 100, &j, &live), 0);
	assert_int_equal(j, i);
	assert_int_equal(live, 0);
	connpool_put(&p, j, 0);
	connpool_destroy(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connpool_every_slot_once),
		cmocka_unit_test(test_connpool_prefers_live),
		cmocka_unit_test(test_connpool_zero_is_one),
		cmocka_unit_test(test_connpool_waiter_woken_by_put),
		cmocka_unit_test(test_connpool_wait_ends_at_deadline),
		cmocka_unit_test(test_connpool_empty_slot_lent_again),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
