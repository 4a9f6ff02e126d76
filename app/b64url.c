/*
 * b64url.c: strict base64url (RFC 4648 section 5) without padding.  Used
 * for JWT segments, jti and refresh tokens.  The decoder accepts exactly one
 * spelling of every byte string: no padding, no whitespace, no stray bits.
 * Characters are mapped with masks, not table lookups, so encoding or
 * decoding a secret leaks no timing.
 */
#include "config.h"

#include <string.h>

#include "extern.h"

/* 0xFF when the relation holds, 0 otherwise; operands are below 256. */
#define CT_GT(x, y)	((((unsigned int)(y) - (unsigned int)(x)) >> 8) & 0xFF)
#define CT_GE(x, y)	(CT_GT((y), (x)) ^ 0xFF)
#define CT_LT(x, y)	CT_GT((y), (x))
#define CT_LE(x, y)	CT_GE((y), (x))
#define CT_EQ(x, y)	((((0U - ((unsigned int)(x) ^ (unsigned int)(y))) \
			    >> 8) & 0xFF) ^ 0xFF)

#define B64_BITS	6
#define B64_MASK	0x3F
#define B64_INVALID	0xFF

static char
b64url_char(unsigned int x)
{
	return (char)((CT_LT(x, 26) & (x + 'A')) |
	    (CT_GE(x, 26) & CT_LT(x, 52) & (x + ('a' - 26))) |
	    (CT_GE(x, 52) & CT_LT(x, 62) & (x + '0' - 52)) |
	    (CT_EQ(x, 62) & '-') | (CT_EQ(x, 63) & '_'));
}

/* 0..63, or B64_INVALID. */
static unsigned int
b64url_value(unsigned int c)
{
	unsigned int x;

	x = (CT_GE(c, 'A') & CT_LE(c, 'Z') & (c - 'A')) |
	    (CT_GE(c, 'a') & CT_LE(c, 'z') & (c - ('a' - 26))) |
	    (CT_GE(c, '0') & CT_LE(c, '9') & (c + 52 - '0')) |
	    (CT_EQ(c, '-') & 62) | (CT_EQ(c, '_') & 63);
	return x | (CT_EQ(x, 0) & (CT_EQ(c, 'A') ^ 0xFF));
}

int
b64url_encode(char *out, size_t outsz, const unsigned char *in, size_t len)
{
	size_t		 i, o = 0;
	unsigned int	 acc = 0, bits = 0;

	if (len > (SIZE_MAX - 2) / 4 || outsz < B64URL_LEN(len) + 1)
		return -1;
	for (i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= B64_BITS) {
			bits -= B64_BITS;
			out[o++] = b64url_char((acc >> bits) & B64_MASK);
		}
	}
	if (bits > 0)
		out[o++] = b64url_char((acc << (B64_BITS - bits)) & B64_MASK);
	out[o] = '\0';
	return 0;
}

int
b64url_decode(unsigned char *out, size_t outsz, size_t *outlen,
    const char *in, size_t len)
{
	size_t		 i, o = 0;
	unsigned int	 acc = 0, bits = 0, v, bad = 0;

	if (len % 4 == 1 || len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > outsz)
		return -1;
	for (i = 0; i < len; i++) {
		v = b64url_value((unsigned char)in[i]);
		bad |= CT_EQ(v, B64_INVALID);
		acc = (acc << B64_BITS) | (v & B64_MASK);
		bits += B64_BITS;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	/* Leftover bits (2 or 4) must be zero: one spelling per value. */
	bad |= (acc & ((1U << bits) - 1)) != 0;
	if (bad) {
		memset(out, 0, o);
		return -1;
	}
	if (outlen != NULL)
		*outlen = o;
	return 0;
}
