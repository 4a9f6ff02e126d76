/*
 * test_ratelimit.c: the client network rate limits count by: an IPv4
 * address, an IPv6 /64, an IPv4-mapped IPv6 address as its IPv4.
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

static void
net_is(const char *ip, const char *want)
{
	char	 out[RATELIMIT_NET_MAX];

	memset(out, 'x', sizeof(out));
	ratelimit_net(out, ip);
	assert_string_equal(out, want);
}

static void
ipv4_is_its_own_network(void **state)
{
	(void)state;
	net_is("192.0.2.7", "192.0.2.7");
	net_is("127.0.0.2", "127.0.0.2");
	net_is("255.255.255.255", "255.255.255.255");
}

static void
ipv6_counts_by_its_64(void **state)
{
	(void)state;
	net_is("2001:db8:1:2::1", "2001:db8:1:2::/64");
	net_is("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64");
	net_is("2001:db8:1:2:a:b:c:d", "2001:db8:1:2::/64");
	net_is("2001:db8:1:3::1", "2001:db8:1:3::/64");
	net_is("::1", "::/64");
	net_is("fe80::1234:5678", "fe80::/64");
}

static void
ipv6_spellings_of_one_network_agree(void **state)
{
	(void)state;
	net_is("2001:0DB8:0001:0002:0000:0000:0000:0001", "2001:db8:1:2::/64");
	net_is("2001:db8:1:2:0::9", "2001:db8:1:2::/64");
	net_is("2001:db8:1:2::192.0.2.1", "2001:db8:1:2::/64");
}

static void
ipv4_mapped_counts_as_ipv4(void **state)
{
	(void)state;
	net_is("::ffff:192.0.2.7", "192.0.2.7");
	net_is("::FFFF:c000:0207", "192.0.2.7");
	/* IPv4-compatible (deprecated) and NAT64 are IPv6 networks */
	net_is("64:ff9b::192.0.2.7", "64:ff9b::/64");
}

static void
no_address_keeps_its_text_bounded(void **state)
{
	char	 long_ip[200], out[RATELIMIT_NET_MAX];

	(void)state;
	net_is("", "");
	net_is("unix:", "unix:");
	net_is("fe80::1%eth0", "fe80::1%eth0");
	memset(long_ip, '1', sizeof(long_ip) - 1);
	long_ip[sizeof(long_ip) - 1] = '\0';
	ratelimit_net(out, long_ip);
	assert_int_equal(strlen(out), FA_IP_MAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ipv4_is_its_own_network),
		cmocka_unit_test(ipv6_counts_by_its_64),
		cmocka_unit_test(ipv6_spellings_of_one_network_agree),
		cmocka_unit_test(ipv4_mapped_counts_as_ipv4),
		cmocka_unit_test(no_address_keeps_its_text_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
