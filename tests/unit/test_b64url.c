/*
 * test_b64url.c: strict base64url (one spelling per byte string) and the
 * UUID text form.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "extern.h"

struct config	*cfg;

static size_t
dec(const char *in, unsigned char *out, size_t outsz)
{
	size_t	 n = (size_t)-1;

	if (b64url_decode(out, outsz, &n, in, strlen(in)) == -1)
		return (size_t)-1;
	return n;
}

static void
encodes_rfc4648_vectors_without_padding(void **state)
{
	static const char *const vec[][2] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" },
		{ "foobar", "Zm9vYmFy" },
	};
	char	 out[16];
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		assert_int_equal(b64url_encode(out, sizeof(out),
		    (const unsigned char *)vec[i][0], strlen(vec[i][0])), 0);
		assert_string_equal(out, vec[i][1]);
		assert_int_equal(strlen(out), B64URL_LEN(strlen(vec[i][0])));
	}
}

static void
uses_url_alphabet(void **state)
{
	const unsigned char	 in[] = { 0xfb, 0xff, 0xbf };
	unsigned char		 back[3];
	char			 out[8];

	(void)state;
	assert_int_equal(b64url_encode(out, sizeof(out), in, sizeof(in)), 0);
	assert_string_equal(out, "-_-_");
	assert_int_equal(dec("-_-_", back, sizeof(back)), 3);
	assert_memory_equal(back, in, 3);
	assert_int_equal(dec("+/+/", back, sizeof(back)), (size_t)-1);
}

/* The fast encoder for public bytes writes what the constant-time one
 * writes, for every length up to 300 and every byte value; short buffers
 * are refused alike. */
static void
public_encoder_agrees_with_constant_time_one(void **state)
{
	unsigned char	 in[300];
	char		 a[B64URL_LEN(sizeof(in)) + 1];
	char		 b[B64URL_LEN(sizeof(in)) + 1];
	size_t		 len, i, k;

	(void)state;
	for (k = 0; k < 3; k++) {
		for (i = 0; i < sizeof(in); i++)
			in[i] = k == 0 ? (unsigned char)i : k == 1 ? 0xff :
			    (unsigned char)randombytes_uniform(256);
		for (len = 0; len <= sizeof(in); len++) {
			memset(a, 'x', sizeof(a));
			memset(b, 'y', sizeof(b));
			assert_int_equal(b64url_encode(a, sizeof(a), in, len),
			    0);
			assert_int_equal(b64url_encode_public(b, sizeof(b), in,
			    len), 0);
			assert_string_equal(a, b);
			assert_int_equal(b64url_encode_public(b,
			    B64URL_LEN(len), in, len), -1);
		}
	}
}

static void
round_trips_every_length(void **state)
{
	unsigned char	 in[64], back[64];
	char		 out[B64URL_LEN(64) + 1];
	size_t		 len, i;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 37 + 11);
	for (len = 0; len <= sizeof(in); len++) {
		assert_int_equal(b64url_encode(out, sizeof(out), in, len), 0);
		assert_int_equal(dec(out, back, sizeof(back)), len);
		assert_memory_equal(back, in, len);
	}
}

static void
encode_refuses_small_buffer(void **state)
{
	char	 out[4];

	(void)state;
	/* "foo" needs 4 chars and a NUL. */
	assert_int_equal(b64url_encode(out, sizeof(out),
	    (const unsigned char *)"foo", 3), -1);
}

static void
decode_rejects_padding_whitespace_and_junk(void **state)
{
	static const char *const bad[] = {
		"Zg==", "Zg=", "Zm9v\n", " Zm9v", "Zm 9v", "Zm9v YmFy",
		"Zm9v.", "Z", "Zm9vY", "Zm9*", "Zm9v\r\n",
		/* libsodium 1.0.18 alone takes bytes >= 0x80 as letters */
		"Zm\x80v", "Zm9\xff", "\xc3\xa9" "AA", "Zm9vYm\x9a",
	};
	unsigned char	 out[16];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(dec(bad[i], out, sizeof(out)), (size_t)-1);
	/* A NUL byte inside the given length. */
	assert_int_equal(b64url_decode(out, sizeof(out), NULL, "Zm\0v", 4),
	    -1);
}

static void
decode_rejects_noncanonical_trailing_bits(void **state)
{
	unsigned char	 out[8];

	(void)state;
	assert_int_equal(dec("Zg", out, sizeof(out)), 1);
	assert_int_equal(dec("Zh", out, sizeof(out)), (size_t)-1);
	assert_int_equal(dec("Zm8", out, sizeof(out)), 2);
	assert_int_equal(dec("Zm9", out, sizeof(out)), (size_t)-1);
}

static void
decode_refuses_small_buffer(void **state)
{
	unsigned char	 out[5];

	(void)state;
	assert_int_equal(dec("Zm9vYmFy", out, sizeof(out)), (size_t)-1);
	assert_int_equal(dec("Zm9vYmE", out, sizeof(out)), 5);
}

/* A plain table reference for the strict codec, to compare against. */
static const char ref_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void
ref_encode(char *out, const unsigned char *in, size_t len)
{
	size_t		 i, o = 0;
	unsigned int	 acc = 0, bits = 0;

	for (i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		for (bits += 8; bits >= 6; bits -= 6)
			out[o++] = ref_alpha[(acc >> (bits - 6)) & 0x3F];
	}
	if (bits > 0)
		out[o++] = ref_alpha[(acc << (6 - bits)) & 0x3F];
	out[o] = '\0';
}

static size_t
ref_decode(unsigned char *out, const char *in, size_t len)
{
	const char	*p;
	size_t		 i, o = 0;
	unsigned int	 acc = 0, bits = 0;

	if (len % 4 == 1)
		return (size_t)-1;
	for (i = 0; i < len; i++) {
		if (in[i] == '\0' || (p = strchr(ref_alpha, in[i])) == NULL)
			return (size_t)-1;
		acc = (acc << 6) | (unsigned int)(p - ref_alpha);
		if ((bits += 6) >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return (acc & ((1U << bits) - 1)) != 0 ? (size_t)-1 : o;
}

/* libsodium's codec and the reference agree on random inputs. */
static void
agrees_with_a_reference_on_random_inputs(void **state)
{
	static const char	 junk[] = "=+/ .\n\x80\x9a\xc3\xff";
	unsigned char		 in[48], a[48], b[48];
	char			 x[B64URL_LEN(48) + 1], y[B64URL_LEN(48) + 1];
	size_t			 len, i, n, m;
	int			 round;

	(void)state;
	for (round = 0; round < 20000; round++) {
		len = randombytes_uniform(sizeof(in) + 1);
		randombytes_buf(in, len);
		assert_int_equal(b64url_encode(x, sizeof(x), in, len), 0);
		ref_encode(y, in, len);
		assert_string_equal(x, y);
		/* a random spelling, now and then with a byte off the alphabet */
		len = randombytes_uniform(B64URL_LEN(48) + 1);
		for (i = 0; i < len; i++)
			x[i] = ref_alpha[randombytes_uniform(64)];
		if (len > 0 && randombytes_uniform(4) == 0)
			x[randombytes_uniform((uint32_t)len)] =
			    junk[randombytes_uniform(sizeof(junk) - 1)];
		x[len] = '\0';
		n = b64url_decode(a, sizeof(a), &n, x, len) == 0 ? n :
		    (size_t)-1;
		m = ref_decode(b, x, len);
		assert_true(n == m);
		if (n != (size_t)-1)
			assert_memory_equal(a, b, n);
	}
}

static void
uuid_formats_lowercase_and_parses_both_cases(void **state)
{
	const unsigned char	 u[16] = {
		0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3,
		0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00 };
	unsigned char		 back[16];
	char			 s[FA_UUID_LEN + 1];

	(void)state;
	uuid_format(s, u);
	assert_string_equal(s, "123e4567-e89b-12d3-a456-426614174000");
	assert_int_equal(uuid_parse(back, s, strlen(s)), 0);
	assert_memory_equal(back, u, 16);
	assert_int_equal(uuid_parse(back,
	    "123E4567-E89B-12D3-A456-426614174000", FA_UUID_LEN), 0);
	assert_memory_equal(back, u, 16);
}

static void
uuid_parse_rejects_other_forms(void **state)
{
	static const char *const bad[] = {
		"", "123e4567e89b12d3a456426614174000",
		"{123e4567-e89b-12d3-a456-426614174000}",
		"123e4567-e89b-12d3-a456-42661417400",
		"123e4567-e89b-12d3-a456-4266141740000",
		"123e4567-e89b-12d3-a456_426614174000",
		"123e4567-e89b-12d3-a4560426614174000-",
		"123e4567-e89b-12d3-a456-42661417400g",
		"123e456-7e89b-12d3-a456-426614174000",
		" 23e4567-e89b-12d3-a456-426614174000",
	};
	unsigned char	 out[16];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(uuid_parse(out, bad[i], strlen(bad[i])), -1);
	assert_int_equal(uuid_parse(out, NULL, 0), -1);
}

static void
uuid_random_is_version_4_and_unique(void **state)
{
	unsigned char	 a[16], b[16], back[16];
	char		 s[FA_UUID_LEN + 1];

	(void)state;
	uuid_random(a);
	uuid_random(b);
	assert_memory_not_equal(a, b, 16);
	assert_int_equal(a[6] >> 4, 4);
	assert_int_equal(a[8] & 0xc0, 0x80);
	uuid_format(s, a);
	assert_int_equal(s[14], '4');
	assert_int_equal(uuid_parse(back, s, strlen(s)), 0);
	assert_memory_equal(back, a, 16);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(encodes_rfc4648_vectors_without_padding),
		cmocka_unit_test(uses_url_alphabet),
		cmocka_unit_test(round_trips_every_length),
		cmocka_unit_test(public_encoder_agrees_with_constant_time_one),
		cmocka_unit_test(encode_refuses_small_buffer),
		cmocka_unit_test(decode_rejects_padding_whitespace_and_junk),
		cmocka_unit_test(agrees_with_a_reference_on_random_inputs),
		cmocka_unit_test(decode_rejects_noncanonical_trailing_bits),
		cmocka_unit_test(decode_refuses_small_buffer),
		cmocka_unit_test(uuid_formats_lowercase_and_parses_both_cases),
		cmocka_unit_test(uuid_parse_rejects_other_forms),
		cmocka_unit_test(uuid_random_is_version_4_and_unique),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
