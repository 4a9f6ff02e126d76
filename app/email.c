/*
 * The canonical email of API.md ("One canonical email"), computed once
 * where an address enters (register, login, the CLI) so that the database,
 * tokens, headers, events and rate-limit keys only ever see this form:
 *
 *  - trimmed of ASCII whitespace (space, \t, \n, \v, \f, \r) only: NBSP,
 *    U+2028, U+0085 and the like stay and are refused below;
 *  - exactly one '@' (quoted local parts, which could hold another, are
 *    refused);
 *  - local part: an RFC 5321 dot-string (atext runs joined by single dots)
 *    of at most 64 bytes, ASCII only;
 *  - domain: NFC, then IDNA2008 without the TR46 mapping (libidn2), so a
 *    U-label becomes its A-label and anything IDNA2008 disallows (Kelvin
 *    sign, fullwidth forms, NBSP, joiners out of context, upper-case
 *    non-ASCII) is refused rather than mapped; then every label must be
 *    LDH of 1..63 bytes, no empty label (so no trailing dot), and the last
 *    label not all digits (no bare IP address; "[...]" literals fail LDH);
 *  - ASCII lower-case throughout, at most FA_EMAIL_MAX bytes.
 *
 * Canonical forms are fixed points: email_canon(x) == x for every output x,
 * which migrate.c relies on.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include "extern.h"

#define EMAIL_BAD	"is not a valid email address"

static int
email_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* RFC 5322 atext, the characters of a dot-string atom. */
static int
email_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static char
email_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int
email_local(const char *in, size_t len, const char **why)
{
	size_t	 i;

	if (len == 0)
		return -1;
	if (len > EMAIL_LOCAL_MAX) {
		*why = "local part is longer than 64 bytes";
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (in[i] == '.' && i > 0 && i + 1 < len && in[i + 1] != '.')
			continue;
		if (!email_atext((unsigned char)in[i])) {
			*why = "local part must be ASCII letters, digits,"
			    " !#$%&'*+-/=?^_`{|}~ and single inner dots";
			return -1;
		}
	}
	return 0;
}

/* LDH labels of 1..63 bytes; the last not all digits. */
static int
email_ldh(const char *d)
{
	size_t	 n = 0;
	int	 digits = 1;
	char	 prev = '.';

	for (; *d != '\0'; prev = *d++) {
		if (*d == '.') {
			if (n == 0 || prev == '-')
				return -1;
			n = 0;
			digits = 1;
			continue;
		}
		if (!((*d >= 'a' && *d <= 'z') || (*d >= '0' && *d <= '9') ||
		    *d == '-') || (*d == '-' && n == 0) ||
		    ++n > EMAIL_LABEL_MAX)
			return -1;
		if (*d < '0' || *d > '9')
			digits = 0;
	}
	return n == 0 || prev == '-' || digits ? -1 : 0;
}

/*
 * The A-label form of domain (NUL-terminated, valid UTF-8, ASCII letters
 * already lower-cased) into *out, owned; -1 when IDNA2008 refuses it.
 */
static int
email_idna(const char *domain, char **out)
{
	char	*a = NULL;
	size_t	 i;

	if (idn2_lookup_u8((const uint8_t *)domain, (uint8_t **)&a,
	    IDN2_NFC_INPUT | IDN2_NO_TR46) != IDN2_OK) {
		idn2_free(a);
		return -1;
	}
	/* A-labels are case-insensitive; libidn2 keeps ASCII as given */
	for (i = 0; a[i] != '\0'; i++)
		a[i] = email_lower(a[i]);
	*out = xstrdup(a);
	idn2_free(a);
	return 0;
}

int
email_canon(const char *in, size_t len, char out[FA_EMAIL_MAX + 1],
    const char **why)
{
	const char	*at;
	char		*domain = NULL, *ascii = NULL;
	size_t		 i, llen;
	int		 rc = -1;

	while (len > 0 && email_space((unsigned char)*in)) {
		in++;
		len--;
	}
	while (len > 0 && email_space((unsigned char)in[len - 1]))
		len--;
	*why = EMAIL_BAD;
	if (len == 0) {
		*why = "is required";
		return -1;
	}
	if (len > EMAIL_IN_MAX) {
		*why = "is longer than 254 bytes";
		return -1;
	}
	if (validate_utf8(in, len) == -1) {
		*why = "is not valid UTF-8";
		return -1;
	}
	if ((at = memchr(in, '@', len)) == NULL ||
	    memchr(at + 1, '@', len - (size_t)(at - in) - 1) != NULL)
		return -1;
	llen = (size_t)(at - in);
	if (email_local(in, llen, why) == -1)
		return -1;
	if (llen + 1 == len)
		return -1;
	domain = xstrndup(at + 1, len - llen - 1);
	for (i = 0; domain[i] != '\0'; i++)
		domain[i] = email_lower(domain[i]);
	if (email_idna(domain, &ascii) == -1 || email_ldh(ascii) == -1) {
		*why = "domain is not a valid domain name";
		goto out;
	}
	if (llen + 1 + strlen(ascii) > FA_EMAIL_MAX) {
		*why = "is longer than 254 bytes";
		goto out;
	}
	for (i = 0; i < llen; i++)
		out[i] = email_lower(in[i]);
	out[llen] = '@';
	memcpy(out + llen + 1, ascii, strlen(ascii) + 1);
	rc = 0;
out:
	free(domain);
	free(ascii);
	return rc;
}
