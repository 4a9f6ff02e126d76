/*
 * Stored password hash formats: is a hash from another system one that can
 * verify at all?  An import must refuse a hash that never verifies, since
 * its account would answer a login faster than a real hash does (a timing
 * oracle), and one whose cost would stall the hash pool.  Pure: memory in,
 * a verdict out.  libsodium verifies Argon2id but does not parse it, so
 * the PHC string is parsed here, strictly.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "extern.h"

static const char bcrypt_b64[] =
    "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

static int
hashfmt_bcrypt_char(char c)
{
	return c != '\0' && strchr(bcrypt_b64, c) != NULL;
}

/*
 * $2a$/$2b$/$2y$, cost 04-31, '$', 22 salt and 31 hash characters.  The
 * last character of each carries unused low bits that must be zero: crypt
 * canonicalises a salt with them set, so such a hash never compares equal.
 */
static int
hashfmt_bcrypt(const char *h, size_t len, const char **why)
{
	size_t	 i;
	int	 cost;

	if (len != HASHFMT_BCRYPT_LEN) {
		*why = "bcrypt: not 60 characters long";
		return -1;
	}
	if (h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' ||
	    h[6] != '$') {
		*why = "bcrypt: expected a two-digit cost";
		return -1;
	}
	cost = (h[4] - '0') * 10 + (h[5] - '0');
	if (cost < HASHFMT_BCRYPT_COST_MIN || cost > HASHFMT_BCRYPT_COST_MAX) {
		*why = "bcrypt: cost outside 04-31";
		return -1;
	}
	for (i = 7; i < len; i++)
		if (!hashfmt_bcrypt_char(h[i])) {
			*why = "bcrypt: a character outside ./A-Za-z0-9";
			return -1;
		}
	/* salt: 22 chars, 128 of 132 bits; hash: 31 chars, 184 of 186 */
	if ((strchr(bcrypt_b64, h[7 + 21]) - bcrypt_b64) % 16 != 0 ||
	    (strchr(bcrypt_b64, h[len - 1]) - bcrypt_b64) % 4 != 0) {
		*why = "bcrypt: non-canonical salt or hash";
		return -1;
	}
	return 0;
}

/* A decimal without sign or leading zero, from lo to hi; advances *p. */
static int
hashfmt_number(const char **p, const char *end, uint64_t lo, uint64_t hi,
    uint64_t *out)
{
	const char	*s = *p;
	uint64_t	 n = 0;

	if (s >= end || *s < '0' || *s > '9' || (*s == '0' && s + 1 < end &&
	    s[1] >= '0' && s[1] <= '9'))
		return -1;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		n = n * 10 + (uint64_t)(*s - '0');
		if (n > hi)
			return -1;
	}
	if (n < lo)
		return -1;
	*p = s;
	*out = n;
	return 0;
}

/* Unpadded standard base64 of min to max bytes, up to end or a '$'. */
static int
hashfmt_b64(const char **p, const char *end, size_t min, size_t max)
{
	const char	*s = *p;
	size_t		 n, bytes;

	for (; s < end && *s != '$'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= '0' && *s <= '9') || *s == '+' || *s == '/'))
			return -1;
	n = (size_t)(s - *p);
	if (n % 4 == 1)
		return -1;
	bytes = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
	if (bytes < min || bytes > max)
		return -1;
	*p = s;
	return 0;
}

static int
hashfmt_lit(const char **p, const char *end, const char *lit)
{
	size_t	 n = strlen(lit);

	if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
		return -1;
	*p += n;
	return 0;
}

/* $argon2id$v=19$m=M,t=T,p=P$salt$hash, within what we are ready to run. */
static int
hashfmt_argon2id(const char *h, size_t len, const char **why)
{
	const char	*p = h + strlen(HASHFMT_ARGON2ID_PREFIX);
	const char	*end = h + len;
	uint64_t	 v, m, t, par;

	*why = "argon2id: expected $argon2id$v=19$m=M,t=T,p=P$salt$hash";
	if (hashfmt_lit(&p, end, "v=") == -1 ||
	    hashfmt_number(&p, end, 0, UINT32_MAX, &v) == -1 || v != 19 ||
	    hashfmt_lit(&p, end, "$m=") == -1 ||
	    hashfmt_number(&p, end, 1, UINT32_MAX, &m) == -1 ||
	    hashfmt_lit(&p, end, ",t=") == -1 ||
	    hashfmt_number(&p, end, 1, UINT32_MAX, &t) == -1 ||
	    hashfmt_lit(&p, end, ",p=") == -1 ||
	    hashfmt_number(&p, end, 1, UINT32_MAX, &par) == -1 ||
	    hashfmt_lit(&p, end, "$") == -1)
		return -1;
	if (m > HASHFMT_ARGON2_M_MAX || t > HASHFMT_ARGON2_T_MAX ||
	    par > HASHFMT_ARGON2_P_MAX || m < 8 * par) {
		*why = "argon2id: memory, time or parallelism out of range";
		return -1;
	}
	if (hashfmt_b64(&p, end, HASHFMT_ARGON2_SALT_MIN,
	    HASHFMT_ARGON2_SALT_MAX) == -1 || hashfmt_lit(&p, end, "$") == -1 ||
	    hashfmt_b64(&p, end, HASHFMT_ARGON2_OUT_MIN,
	    HASHFMT_ARGON2_OUT_MAX) == -1 || p != end) {
		*why = "argon2id: salt or hash of a wrong length or alphabet";
		return -1;
	}
	return 0;
}

int
hashfmt_check(const char *h, size_t len, const char **why)
{
	*why = "expected a bcrypt ($2a$, $2b$, $2y$) or Argon2id hash";
	if (h == NULL || memchr(h, '\0', len) != NULL)
		return HASHFMT_BAD;
	if (len >= 4 && (memcmp(h, "$2a$", 4) == 0 ||
	    memcmp(h, "$2b$", 4) == 0 || memcmp(h, "$2y$", 4) == 0))
		return hashfmt_bcrypt(h, len, why) == 0 ? HASHFMT_BCRYPT :
		    HASHFMT_BAD;
	if (len >= strlen(HASHFMT_ARGON2ID_PREFIX) &&
	    memcmp(h, HASHFMT_ARGON2ID_PREFIX,
	    strlen(HASHFMT_ARGON2ID_PREFIX)) == 0)
		return hashfmt_argon2id(h, len, why) == 0 ? HASHFMT_ARGON2ID :
		    HASHFMT_BAD;
	return HASHFMT_BAD;
}
