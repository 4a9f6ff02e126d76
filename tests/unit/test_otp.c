/*
 * test_otp.c: the second factor's primitives without a server: RFC 6238's
 * SHA-1 vectors through liboath with the matched step, the window, the
 * base32 secret and the otpauth URI, sealing, recovery codes typed in any
 * case and spacing, mfaToken hashes, the QR SVG; and the aal claim.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "extern.h"

struct config	*cfg;
static struct config	 conf;

/* RFC 6238 appendix B: the SHA-1 secret is "12345678901234567890". */
static const unsigned char rfc_secret[OTP_SECRET_BYTES] =
    "12345678901234567890";

static int
setup(void **state)
{
	char	*err = NULL;

	(void)state;
	config_defaults(&conf);
	free(conf.jwt_secret);
	conf.jwt_secret = xstrdup("unit-test-secret-0123456789abcdef-0123");
	conf.jwt_secret_len = strlen(conf.jwt_secret);
	cfg = &conf;
	if (token_init(&conf, &err) == -1) {
		print_message("token_init: %s\n", err);
		free(err);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	token_shutdown();
	config_free(&conf);
	return 0;
}

static void
rfc6238_vectors_with_their_step(void **state)
{
	/* 8-digit vectors of the RFC, cut to our 6 digits (the low ones) */
	static const struct {
		long long	 t;
		const char	*code;
	} v[] = {
		{ 59, "287082" }, { 1111111109, "081804" },
		{ 1111111111, "050471" }, { 1234567890, "005924" },
		{ 2000000000, "279037" },
	};
	long long	 step;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(otp_check(rfc_secret, v[i].code, 6, v[i].t,
		    &step), 0);
		assert_int_equal(step, v[i].t / OTP_PERIOD);
	}
}

static void
window_is_one_step_each_side(void **state)
{
	long long	 step;

	(void)state;
	/* "287082" is the code of step 1 (t = 30..59) */
	assert_int_equal(otp_check(rfc_secret, "287082", 6, 89, &step), 0);
	assert_int_equal(step, 1);
	assert_int_equal(otp_check(rfc_secret, "287082", 6, 5, &step), 0);
	assert_int_equal(otp_check(rfc_secret, "287082", 6, 90, &step), 1);
	assert_int_equal(otp_check(rfc_secret, "287082", 6, 119, &step), 1);
}

static void
malformed_codes_are_wrong(void **state)
{
	long long	 step;

	(void)state;
	assert_int_equal(otp_check(rfc_secret, "28708", 5, 59, &step), 1);
	assert_int_equal(otp_check(rfc_secret, "2870822", 7, 59, &step), 1);
	assert_int_equal(otp_check(rfc_secret, " 87082", 6, 59, &step), 1);
	assert_int_equal(otp_check(rfc_secret, "28708a", 6, 59, &step), 1);
	assert_int_equal(otp_check(rfc_secret, "", 0, 59, &step), 1);
}

static void
base32_and_uri(void **state)
{
	char	 b32[OTP_SECRET_B32 + 1], *uri = NULL;

	(void)state;
	assert_int_equal(otp_base32(b32, rfc_secret), 0);
	assert_string_equal(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
	assert_int_equal(otp_uri(&uri, "Acme Auth", "a+b@example.com", b32),
	    0);
	assert_string_equal(uri, "otpauth://totp/Acme%20Auth:a%2Bb%40example"
	    ".com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20Auth"
	    "&algorithm=SHA1&digits=6&period=30");
	free(uri);
}

static void
seal_opens_and_refuses_tampering(void **state)
{
	unsigned char	 out[OTP_SECRET_BYTES];
	char		*hex = NULL, *hex2 = NULL;

	(void)state;
	assert_int_equal(otp_seal(&hex, rfc_secret), 0);
	assert_int_equal(otp_seal(&hex2, rfc_secret), 0);
	assert_string_not_equal(hex, hex2);	/* a fresh nonce each time */
	assert_null(strstr(hex, "3132333435"));
	assert_int_equal(otp_open(out, hex), 0);
	assert_memory_equal(out, rfc_secret, sizeof(out));
	hex[strlen(hex) - 1] = hex[strlen(hex) - 1] == '0' ? '1' : '0';
	assert_int_equal(otp_open(out, hex), -1);
	assert_int_equal(otp_open(out, "00"), -1);
	assert_int_equal(otp_open(out, NULL), -1);
	free(hex);
	free(hex2);
}

static void
recovery_codes_typed_any_way(void **state)
{
	char	 codes[OTP_RECOVERY_CODES][OTP_RECOVERY_LEN + 1];
	char	 hashes[OTP_RECOVERY_CODES][FA_HASH_HEX + 1];
	char	 h[FA_HASH_HEX + 1], typed[64];
	size_t	 i, j;
	const char *uid = "5d1c9a4e-3b7f-4f0e-9a51-2c8e7d6b1a90";

	(void)state;
	otp_recovery_new(codes, hashes, uid);
	for (i = 0; i < OTP_RECOVERY_CODES; i++) {
		assert_int_equal(strlen(codes[i]), OTP_RECOVERY_LEN);
		assert_int_equal(strlen(hashes[i]), FA_HASH_HEX);
		for (j = 0; j < i; j++)
			assert_string_not_equal(codes[i], codes[j]);
		assert_int_equal(otp_recovery_hash(h, uid, codes[i],
		    strlen(codes[i])), 0);
		assert_string_equal(h, hashes[i]);
	}
	/* lower case, spaces instead of dashes, no separators */
	for (i = j = 0; codes[0][i] != '\0'; i++)
		typed[j++] = codes[0][i] == '-' ? ' ' :
		    (char)(codes[0][i] >= 'A' && codes[0][i] <= 'Z' ?
		    codes[0][i] - 'A' + 'a' : codes[0][i]);
	typed[j] = '\0';
	assert_int_equal(otp_recovery_hash(h, uid, typed, strlen(typed)), 0);
	assert_string_equal(h, hashes[0]);
	/* another user's hash of the same code differs */
	assert_int_equal(otp_recovery_hash(h,
	    "0b9f6a2c-7e34-4c1d-8f25-6a7b3c9d0e11", codes[0],
	    strlen(codes[0])), 0);
	assert_string_not_equal(h, hashes[0]);
	/* malformed */
	assert_int_equal(otp_recovery_hash(h, uid, "ABCD-EFGH-IJK1", 14), -1);
	assert_int_equal(otp_recovery_hash(h, uid, "ABCD-EFGH-IJK", 13), -1);
	assert_int_equal(otp_recovery_hash(h, uid, "ABCD-EFGH-IJKLM", 15), -1);
	assert_int_equal(otp_recovery_hash(h, uid, "ABCD\0EFGHIJKL", 13), -1);
}

static void
mfa_token_hash(void **state)
{
	char	 text[OTP_MFA_TOKEN_LEN + 1], hash[FA_HASH_HEX + 1];
	char	 h2[FA_HASH_HEX + 1];

	(void)state;
	otp_token_new(text, hash);
	assert_int_equal(strlen(text), OTP_MFA_TOKEN_LEN);
	assert_int_equal(strlen(hash), FA_HASH_HEX);
	assert_int_equal(otp_token_hash(h2, text, strlen(text)), 0);
	assert_string_equal(h2, hash);
	assert_int_equal(otp_token_hash(h2, text, strlen(text) - 1), -1);
	text[OTP_MFA_TOKEN_LEN - 1] = '=';
	assert_int_equal(otp_token_hash(h2, text, strlen(text)), -1);
}

static void
qr_svg_is_rects(void **state)
{
	char	*svg = NULL;
	size_t	 len;

	(void)state;
	assert_int_equal(otp_qr_svg("otpauth://totp/x:y?secret=AAAA", &svg,
	    &len), 0);
	assert_int_equal(strlen(svg), len);
	assert_non_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
	assert_non_null(strstr(svg, "<rect x=\""));
	assert_non_null(strstr(svg, "</svg>\n"));
	free(svg);
}

static void
aal_claim_round_trip(void **state)
{
	struct claims	 c, out;
	char		*tok = NULL;
	int		 aal;

	(void)state;
	for (aal = 0; aal <= 3; aal++) {
		memset(&c, 0, sizeof(c));
		snprintf(c.sub, sizeof(c.sub), "%s",
		    "5d1c9a4e-3b7f-4f0e-9a51-2c8e7d6b1a90");
		snprintf(c.sid, sizeof(c.sid), "%s",
		    "0b9f6a2c-7e34-4c1d-8f25-6a7b3c9d0e11");
		snprintf(c.email, sizeof(c.email), "%s", "a@example.com");
		snprintf(c.roles, sizeof(c.roles), "%s", "user");
		c.aal = aal;
		assert_int_equal(token_issue(&c, 0, &tok), 0);
		assert_int_equal(token_verify(tok, strlen(tok), &out), 0);
		/* only 1 and 2 are issued; anything else is issued as 1 */
		assert_int_equal(out.aal, aal == 2 ? 2 : 1);
		free(tok);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc6238_vectors_with_their_step),
		cmocka_unit_test(window_is_one_step_each_side),
		cmocka_unit_test(malformed_codes_are_wrong),
		cmocka_unit_test(base32_and_uri),
		cmocka_unit_test(seal_opens_and_refuses_tampering),
		cmocka_unit_test(recovery_codes_typed_any_way),
		cmocka_unit_test(mfa_token_hash),
		cmocka_unit_test(qr_svg_is_rects),
		cmocka_unit_test(aal_claim_round_trip),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
