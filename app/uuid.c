/*
 * uuid.c: the 36-character text form of UUIDs (ids of users and sessions)
 * and random version 4 UUIDs from libsodium's CSPRNG.
 */
#include "config.h"

#include <sodium.h>

#include "extern.h"

#define UUID_BYTES	16
#define UUID_VERSION_4	0x40
#define UUID_VARIANT	0x80	/* RFC 4122 variant bits 10 */

/* Offsets of the dashes in 8-4-4-4-12. */
static int
uuid_dash(size_t i)
{
	return i == 8 || i == 13 || i == 18 || i == 23;
}

void
uuid_format(char out[FA_UUID_LEN + 1], const unsigned char in[UUID_BYTES])
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i, o = 0;

	for (i = 0; i < UUID_BYTES; i++) {
		if (uuid_dash(o))
			out[o++] = '-';
		out[o++] = hex[in[i] >> 4];
		out[o++] = hex[in[i] & 0xF];
	}
	out[o] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
uuid_parse(unsigned char out[UUID_BYTES], const char *in, size_t len)
{
	size_t	 i, o = 0;
	int	 hi, lo;

	if (in == NULL || len != FA_UUID_LEN)
		return -1;
	for (i = 0; i < FA_UUID_LEN; ) {
		if (uuid_dash(i)) {
			if (in[i++] != '-')
				return -1;
			continue;
		}
		if ((hi = hexval(in[i])) < 0 || (lo = hexval(in[i + 1])) < 0)
			return -1;
		out[o++] = (unsigned char)(hi << 4 | lo);
		i += 2;
	}
	return 0;
}

void
uuid_random(unsigned char out[UUID_BYTES])
{
	randombytes_buf(out, UUID_BYTES);
	out[6] = (out[6] & 0x0F) | UUID_VERSION_4;
	out[8] = (out[8] & 0x3F) | UUID_VARIANT;
}
