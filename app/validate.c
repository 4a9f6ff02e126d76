/*
 * Pure checks of client input: no I/O, no allocation beyond jansson's, so
 * unit tests and fuzzers call them directly.  Each returns 0 when the value
 * is acceptable and -1 otherwise, with *why a short human reason.
 */
#include "config.h"

#include <string.h>

#include "extern.h"

/* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF, no NUL. */
int
validate_utf8(const char *in, size_t len)
{
	const unsigned char	*s = (const unsigned char *)in;
	size_t			 i = 0, n, j;
	unsigned int		 cp;

	while (i < len) {
		if (s[i] == 0)
			return -1;
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = s[i] & 0x1f;
		} else if ((s[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = s[i] & 0x0f;
		} else if ((s[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = s[i] & 0x07;
		} else
			return -1;
		if (n >= len - i)
			return -1;
		for (j = 1; j <= n; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return -1;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		i += n + 1;
	}
	return 0;
}

static size_t
utf8_chars(const char *in, size_t len)
{
	size_t	 i, n = 0;

	for (i = 0; i < len; i++)
		if (((unsigned char)in[i] & 0xc0) != 0x80)
			n++;
	return n;
}

int
validate_password(const char *in, size_t len, const char **why)
{
	if (len < FA_PASSWORD_MIN) {
		*why = "must be at least 8 bytes";
		return -1;
	}
	if (len > FA_PASSWORD_MAX) {
		*why = "must be at most 1024 bytes";
		return -1;
	}
	if (validate_utf8(in, len) == -1) {
		*why = "is not valid UTF-8";
		return -1;
	}
	return 0;
}

/*
 * Names are shown back in UIs and events: control characters are not
 * refused here but replaced where the name is stored (text.c, db.c).
 */
int
validate_name(const char *in, size_t len, const char **why)
{
	if (validate_utf8(in, len) == -1) {
		*why = "is not valid UTF-8";
		return -1;
	}
	if (utf8_chars(in, len) > FA_NAME_MAX) {
		*why = "must be at most 100 characters";
		return -1;
	}
	return 0;
}

/* [a-z][a-z0-9_-]{0,31} */
int
validate_role(const char *in, size_t len)
{
	size_t	 i;

	if (len == 0 || len > FA_ROLE_MAX || in[0] < 'a' || in[0] > 'z')
		return -1;
	for (i = 1; i < len; i++)
		if (!((in[i] >= 'a' && in[i] <= 'z') ||
		    (in[i] >= '0' && in[i] <= '9') || in[i] == '_' ||
		    in[i] == '-'))
			return -1;
	return 0;
}

/*
 * One JSON object or NULL.  jansson already rejects invalid UTF-8 and, by
 * default, \u0000 in strings; we also refuse raw NUL bytes, duplicate keys
 * and any top-level value that is not an object.
 */
json_t *
json_parse_object(const char *buf, size_t len)
{
	json_error_t	 e;
	json_t		*j;

	if (buf == NULL || memchr(buf, '\0', len) != NULL)
		return NULL;
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
	if (j == NULL)
		return NULL;
	if (!json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}
