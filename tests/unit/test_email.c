/* The canonical email (email.c): one spelling, look-alikes refused. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "extern.h"

struct config	*cfg;

static void
canon_is(const char *in, const char *want)
{
	char		 out[FA_EMAIL_MAX + 1], again[FA_EMAIL_MAX + 1];
	const char	*why = NULL;

	if (email_canon(in, strlen(in), out, &why) != 0)
		fail_msg("email_canon(\"%s\") refused: %s", in, why);
	assert_string_equal(out, want);
	/* a canonical form is its own canonical form */
	assert_int_equal(email_canon(out, strlen(out), again, &why), 0);
	assert_string_equal(again, out);
}

static void
refused(const char *in)
{
	char		 out[FA_EMAIL_MAX + 1];
	const char	*why = NULL;

	if (email_canon(in, strlen(in), out, &why) != -1)
		fail_msg("email_canon(\"%s\") accepted as \"%s\"", in, out);
	assert_non_null(why);
}

static void
ascii_is_trimmed_and_lowercased(void **state)
{
	(void)state;
	canon_is("  Alice.Smith@Example.COM \t", "alice.smith@example.com");
	canon_is("\r\n\v\fkate@x.test\n", "kate@x.test");
	canon_is("o'brien+tag-1@example.test", "o'brien+tag-1@example.test");
	canon_is("!#$%&'*+-/=?^_`{|}~@example.test",
	    "!#$%&'*+-/=?^_`{|}~@example.test");
	canon_is("a@b", "a@b");
	canon_is("a@localhost", "a@localhost");
	canon_is("a@1.example", "a@1.example");
	canon_is("a@ab--c.example", "a@ab--c.example");
}

static void
unicode_look_alikes_are_refused(void **state)
{
	static const char *const bad[] = {
		"\xe2\x84\xaa" "ate@x.test",		/* U+212A KELVIN SIGN */
		"kate@\xe2\x84\xaa.test",
		"\xef\xbd\x8b" "ate@x.test",		/* U+FF4B fullwidth k */
		"kate@\xef\xbd\x98.test",		/* fullwidth x */
		"kate@x.\xef\xbd\x94" "est",
		"kate@x.test\xc2\xa0",			/* trailing NBSP */
		"\xc2\xa0kate@x.test",
		"kate\xc2\xa0@x.test",
		"kate@x.test\xe2\x80\xa8",		/* U+2028 */
		"kate\xe2\x80\xa8@x.test",
		"kate@x.test\xc2\x85",			/* U+0085 NEL */
		"kate\xc2\x85@x.test",
		"ka\xe2\x80\x8dte@x.test",		/* U+200D ZWJ */
		"kate@x\xe2\x80\x8d.test",
		"kate@x\xe2\x80\x8c.test",		/* U+200C ZWNJ */
		"ka\xe2\x80\x8bte@x.test",		/* U+200B ZWSP */
		"kate@x\xe2\x80\x8b.test",
		"kate@x\xef\xbb\xbf.test",		/* U+FEFF */
		"k\xc3\xa4te@x.test",			/* non-ASCII local */
		"kate@B\xc3\x9c" "CHER.example",	/* upper-case U+00DC */
		"kate@\xd0\xb0pple.test",		/* Cyrillic a */
	};
	size_t	 i;

	(void)state;
	/* the last one is a valid IDN (mixed script is a registry matter) */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]) - 1; i++)
		refused(bad[i]);
	canon_is(bad[i], "kate@xn--pple-43d.test");
}

static void
unicode_domains_become_a_labels(void **state)
{
	(void)state;
	canon_is("kate@b\xc3\xbc" "cher.example", "kate@xn--bcher-kva.example");
	/* decomposed u + U+0308 is NFC-normalised first */
	canon_is("kate@bu\xcc\x88" "cher.example",
	    "kate@xn--bcher-kva.example");
	canon_is("Kate@B\xc3\xbc" "cher.EXAMPLE", "kate@xn--bcher-kva.example");
	canon_is("kate@XN--BCHER-KVA.example", "kate@xn--bcher-kva.example");
	canon_is("kate@xn--bcher-kva.example", "kate@xn--bcher-kva.example");
	/* IDNA2008: sharp s is its own letter, not "ss" */
	canon_is("a@stra\xc3\x9f" "e.de", "a@xn--strae-oqa.de");
	refused("kate@xn--zz.example");		/* bad punycode */
	refused("kate@xn--.example");
}

static void
malformed_addresses_are_refused(void **state)
{
	static const char *const bad[] = {
		"", "   ", "plain", "@example.com", "a@", "a@@b", "a@b@c",
		"a b@c", "a\r\n@b", "<a>@b", "a@b\"", "a,b@c", "a;b@c",
		"a\\b@c", "a(b)@c", "a[b]@c", "a:b@c",
		"\"a\"@example.test",			/* quoted local part */
		"\"a@b\"@example.test",
		".a@example.test", "a.@example.test", "a..b@example.test",
		"a@example.test.",			/* trailing dot */
		"a@.example.test", "a@example..test",
		/* IP literals */
		"a@[192.0.2.1]", "a@[IPv6:2001:db8::1]",
		"a@192.0.2.1",				/* bare IP */
		"a@-example.test", "a@example-.test", "a@exa_mple.test",
		"a@exa mple.test", "a@example.test/x", "a\x01@b", "a@b\x7f",
		"a@\xff", "\xff@b",
	};
	char		 out[FA_EMAIL_MAX + 1];
	const char	*why;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(bad[i]);
	assert_int_equal(email_canon("a\0@b.test", 8, out, &why), -1);
	assert_int_equal(email_canon("a@b.test\0", 9, out, &why), -1);
}

static void
lengths_are_bounded(void **state)
{
	char		 buf[2048], out[FA_EMAIL_MAX + 1];
	const char	*why;
	size_t		 i;

	(void)state;
	/* local part: 64 bytes */
	memset(buf, 'a', 64);
	strcpy(buf + 64, "@example.test");
	assert_int_equal(email_canon(buf, strlen(buf), out, &why), 0);
	memset(buf, 'a', 65);
	strcpy(buf + 65, "@example.test");
	assert_int_equal(email_canon(buf, strlen(buf), out, &why), -1);
	/* a label: 63 bytes */
	strcpy(buf, "a@");
	memset(buf + 2, 'd', 63);
	strcpy(buf + 65, ".test");
	assert_int_equal(email_canon(buf, strlen(buf), out, &why), 0);
	memset(buf + 2, 'd', 64);
	strcpy(buf + 66, ".test");
	assert_int_equal(email_canon(buf, strlen(buf), out, &why), -1);
	/* 254 bytes in all, after conversion */
	memset(buf, 'b', 40);
	buf[40] = '@';
	for (i = 41; i < 254; i++)
		buf[i] = (i - 41) % 50 == 49 ? '.' : 'd';
	buf[253] = 't';
	buf[254] = '\0';
	assert_int_equal(email_canon(buf, 254, out, &why), 0);
	assert_int_equal(strlen(out), 254);
	buf[254] = 't';
	buf[255] = '\0';
	assert_int_equal(email_canon(buf, 255, out, &why), -1);
	/* huge input is refused before any conversion */
	memset(buf, 'a', sizeof(buf));
	buf[10] = '@';
	assert_int_equal(email_canon(buf, sizeof(buf), out, &why), -1);
	/* a short Unicode domain whose A-label is over the limit */
	memset(buf, 'b', 200);
	buf[200] = '@';
	for (i = 0; i < 12; i++)
		memcpy(buf + 201 + i * 2, "\xc3\xbc", 2);
	strcpy(buf + 225, ".test");
	assert_int_equal(email_canon(buf, strlen(buf), out, &why), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ascii_is_trimmed_and_lowercased),
		cmocka_unit_test(unicode_look_alikes_are_refused),
		cmocka_unit_test(unicode_domains_become_a_labels),
		cmocka_unit_test(malformed_addresses_are_refused),
		cmocka_unit_test(lengths_are_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
