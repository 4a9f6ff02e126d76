/*
 * Client text that is stored and shown again (User-Agent, names): API.md
 * "Stored client text".  One cleaner for every such field, so a header with
 * ESC, BEL or a cut character reaches PostgreSQL, Redis, events and GET
 * /sessions in the same safe form:
 *
 *  - each byte that does not start a valid UTF-8 sequence (stray
 *    continuation, overlong, surrogate, above U+10FFFF, cut at the end)
 *    becomes U+FFFD;
 *  - C0 controls (all of them, TAB, CR and LF included), DEL, C1 controls
 *    (U+0080..U+009F, e.g. U+0085 NEL) and the line and paragraph
 *    separators U+2028/U+2029 become U+FFFD: none belongs in a one-line
 *    value, and each can break a log line, a CSV cell or a script;
 *  - the result is cut at a character boundary to fit.
 *
 * U+FFFD rather than an escape: the stored value stays one readable string,
 * and it cannot be mistaken for text the client sent.
 */
#include "config.h"

#include <string.h>

#include "extern.h"

#define TEXT_FFFD	"\xef\xbf\xbd"

/* Length of the valid UTF-8 sequence at s (1..4), 0 if none; *cp its value. */
static size_t
text_char(const unsigned char *s, size_t left, unsigned int *cp)
{
	size_t	 n, k;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > left)
		return 0;
	*cp = s[0] & (0x7f >> n);
	for (k = 1; k < n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		*cp = *cp << 6 | (s[k] & 0x3f);
	}
	if ((n == 3 && *cp < 0x800) || (n == 4 && *cp < 0x10000) ||
	    *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return n;
}

static int
text_control(unsigned int cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 ||
	    cp == 0x2029;
}

size_t
text_clean(char *out, size_t outsz, const char *in, size_t len)
{
	const unsigned char	*s = (const unsigned char *)in;
	const char		*put;
	size_t			 i = 0, o = 0, n, w;
	unsigned int		 cp;

	if (outsz == 0)
		return 0;
	while (i < len) {
		n = text_char(s + i, len - i, &cp);
		if (n == 0 || text_control(cp)) {
			put = TEXT_FFFD;
			w = sizeof(TEXT_FFFD) - 1;
			i += n == 0 ? 1 : n;
		} else {
			put = in + i;
			w = n;
			i += n;
		}
		if (o + w > outsz - 1)
			break;
		memcpy(out + o, put, w);
		o += w;
	}
	out[o] = '\0';
	return o;
}

char *
text_clean_dup(const char *in, size_t max)
{
	char	*out;

	if (in == NULL)
		return NULL;
	out = xmalloc(max + 1);
	text_clean(out, max + 1, in, strlen(in));
	return out;
}
