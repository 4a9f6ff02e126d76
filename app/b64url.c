/*
 * b64url.c: strict base64url (RFC 4648 section 5) without padding, over
 * libsodium's constant-time codec.  Used for JWT segments, jti and refresh
 * tokens.  The decoder accepts exactly one spelling of every byte string:
 * no padding, no whitespace, no stray bits (libsodium refuses non-zero
 * leftover bits, and with no `ignore` set and no end pointer, any ASCII
 * character outside the alphabet).  libsodium 1.0.18 (Debian 12) reads
 * bytes >= 0x80 as a signed char and takes them as letters: we refuse
 * them first, without branching on the data.
 *
 * b64url_encode_public is a table lookup per character, an order of
 * magnitude faster and not constant-time: for bytes anyone holding the
 * result can read anyway (a token's header and claims), never for a
 * secret or a MAC.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "extern.h"

#define B64URL_VARIANT	sodium_base64_VARIANT_URLSAFE_NO_PADDING

int
b64url_encode(char *out, size_t outsz, const unsigned char *in, size_t len)
{
	/* sodium_bin2base64 aborts on a short buffer: check first */
	if (len > (SIZE_MAX - 2) / 4 || outsz < B64URL_LEN(len) + 1)
		return -1;
	sodium_bin2base64(out, outsz, in, len, B64URL_VARIANT);
	return 0;
}

int
b64url_encode_public(char *out, size_t outsz, const unsigned char *in,
    size_t len)
{
	static const char	 abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned int		 v;
	size_t			 i;

	if (len > (SIZE_MAX - 2) / 4 || outsz < B64URL_LEN(len) + 1)
		return -1;
	for (i = 0; i + 3 <= len; i += 3) {
		v = (unsigned int)in[i] << 16 | (unsigned int)in[i + 1] << 8 |
		    in[i + 2];
		*out++ = abc[v >> 18];
		*out++ = abc[(v >> 12) & 63];
		*out++ = abc[(v >> 6) & 63];
		*out++ = abc[v & 63];
	}
	if (len - i == 1) {
		v = (unsigned int)in[i] << 16;
		*out++ = abc[v >> 18];
		*out++ = abc[(v >> 12) & 63];
	} else if (len - i == 2) {
		v = (unsigned int)in[i] << 16 | (unsigned int)in[i + 1] << 8;
		*out++ = abc[v >> 18];
		*out++ = abc[(v >> 12) & 63];
		*out++ = abc[(v >> 6) & 63];
	}
	*out = '\0';
	return 0;
}

int
b64url_decode(unsigned char *out, size_t outsz, size_t *outlen,
    const char *in, size_t len)
{
	size_t		 n, i;
	unsigned int	 high = 0;

	for (i = 0; i < len; i++)
		high |= (unsigned char)in[i];
	if ((high & 0x80) != 0 || sodium_base642bin(out, outsz, in, len,
	    NULL, &n, NULL, B64URL_VARIANT) != 0) {
		sodium_memzero(out, outsz);	/* no half-decoded secret */
		return -1;
	}
	if (outlen != NULL)
		*outlen = n;
	return 0;
}
