/*
 * test_sentinel.c: which sentinel announcements are about our master
 * (sentinel_event_names), and the "host:port" list parser.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "extern.h"

struct config	*cfg;

static int
names(const char *chan, const char *msg, const char *name)
{
	return sentinel_event_names(chan, msg, strlen(msg), name);
}

static void
switch_master_names_only_our_master(void **state)
{
	(void)state;
	assert_int_equal(names("+switch-master",
	    "mymaster 127.0.0.1 6379 127.0.0.1 6380", "mymaster"), 1);
	/* a master whose name starts like ours is another master */
	assert_int_equal(names("+switch-master",
	    "mymaster2 127.0.0.1 6379 127.0.0.1 6380", "mymaster"), 0);
	assert_int_equal(names("+switch-master",
	    "other 127.0.0.1 6379 127.0.0.1 6380", "mymaster"), 0);
	assert_int_equal(names("+switch-master", "mymaster", "mymaster"), 0);
	assert_int_equal(names("+switch-master", "", "mymaster"), 0);
}

static void
promoted_slave_names_the_master_after_the_at(void **state)
{
	(void)state;
	assert_int_equal(names("+promoted-slave", "slave 127.0.0.1:6380 "
	    "127.0.0.1 6380 @ mymaster 127.0.0.1 6379", "mymaster"), 1);
	/* the replica's own fields never count as the name */
	assert_int_equal(names("+promoted-slave", "slave mymaster "
	    "127.0.0.1 6380 @ other 127.0.0.1 6379", "mymaster"), 0);
	assert_int_equal(names("+promoted-slave", "slave mymaster x y",
	    "mymaster"), 0);
	assert_int_equal(names("+promoted-slave", "@ mymaster", "mymaster"),
	    0);
}

static void
other_channels_are_ignored(void **state)
{
	(void)state;
	assert_int_equal(names("+sdown",
	    "master mymaster 127.0.0.1 6379", "mymaster"), 0);
	assert_int_equal(names("+odown", "mymaster 1 2 3 4", "mymaster"), 0);
}

static void
list_parses_hosts_ports_and_ipv6(void **state)
{
	const char	*list = " 10.0.0.1:26379, [::1]:26380 ,host:1";
	char		 host[SENTINEL_HOST_MAX];
	int		 port;

	(void)state;
	assert_int_equal(sentinel_next(&list, host, sizeof(host), &port), 1);
	assert_string_equal(host, "10.0.0.1");
	assert_int_equal(port, 26379);
	assert_int_equal(sentinel_next(&list, host, sizeof(host), &port), 1);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 26380);
	assert_int_equal(sentinel_next(&list, host, sizeof(host), &port), 1);
	assert_string_equal(host, "host");
	assert_int_equal(sentinel_next(&list, host, sizeof(host), &port), 0);
	list = "host:0";
	assert_int_equal(sentinel_next(&list, host, sizeof(host), &port), -1);
	list = "host";
	assert_int_equal(sentinel_next(&list, host, sizeof(host), &port), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(switch_master_names_only_our_master),
		cmocka_unit_test(promoted_slave_names_the_master_after_the_at),
		cmocka_unit_test(other_channels_are_ignored),
		cmocka_unit_test(list_parses_hosts_ports_and_ipv6),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
