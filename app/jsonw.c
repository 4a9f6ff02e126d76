/*
 * jsonw.c: JSON text written directly, for the hot paths that only ever
 * write one shape (a token's claims, the refresh batch): packing a jansson
 * object and dumping it was half of token_issue and most of the group
 * commit's own work.  The text is what json_dumps writes with
 * JSON_COMPACT: strings escaped as jansson escapes them (", \, the short
 * escapes, other C0 bytes as \u00XX, nothing else), and a string that is
 * not UTF-8 fails the whole text, as json_pack would have failed.  Commas
 * are the writer's business: a value after a value gets one.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "input.h"

#define JSONW_MIN	256

void
jsonw_init(struct jsonw *w, size_t max)
{
	memset(w, 0, sizeof(*w));
	w->max = max;
}

/* Room for n more bytes and the NUL; sets err past max. */
static int
jsonw_room(struct jsonw *w, size_t n)
{
	size_t	 cap;

	if (w->err || n > w->max || w->len > w->max - n) {
		w->err = 1;
		return -1;
	}
	if (w->len + n + 1 <= w->cap)
		return 0;
	for (cap = w->cap > 0 ? w->cap : JSONW_MIN; cap < w->len + n + 1;)
		cap *= 2;
	w->buf = xrealloc(w->buf, cap);
	w->cap = cap;
	return 0;
}

void
jsonw_raw(struct jsonw *w, const char *s, size_t n)
{
	if (jsonw_room(w, n) == -1)
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

/* The comma a value needs after another value. */
static void
jsonw_sep(struct jsonw *w)
{
	if (w->sep)
		jsonw_raw(w, ",", 1);
	w->sep = 1;
}

void
jsonw_open(struct jsonw *w, char c)
{
	jsonw_sep(w);
	jsonw_raw(w, &c, 1);
	w->sep = 0;
}

void
jsonw_close(struct jsonw *w, char c)
{
	jsonw_raw(w, &c, 1);
	w->sep = 1;
}

static void
jsonw_quoted(struct jsonw *w, const char *s, size_t n)
{
	static const char	 hex[] = "0123456789ABCDEF";
	char			 esc[6] = { '\\', 'u', '0', '0', 0, 0 };
	size_t			 i = 0, run;
	unsigned char		 ch;

	if (validate_utf8(s, n) == -1) {
		w->err = 1;
		return;
	}
	jsonw_raw(w, "\"", 1);
	for (;;) {
		for (run = 0; i + run < n; run++) {
			ch = (unsigned char)s[i + run];
			if (ch < 0x20 || ch == '"' || ch == '\\')
				break;
		}
		jsonw_raw(w, s + i, run);
		i += run;
		if (i == n)
			break;
		switch ((ch = (unsigned char)s[i++])) {
		case '"':	jsonw_raw(w, "\\\"", 2); break;
		case '\\':	jsonw_raw(w, "\\\\", 2); break;
		case '\b':	jsonw_raw(w, "\\b", 2); break;
		case '\f':	jsonw_raw(w, "\\f", 2); break;
		case '\n':	jsonw_raw(w, "\\n", 2); break;
		case '\r':	jsonw_raw(w, "\\r", 2); break;
		case '\t':	jsonw_raw(w, "\\t", 2); break;
		default:
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 0xf];
			jsonw_raw(w, esc, sizeof(esc));
		}
	}
	jsonw_raw(w, "\"", 1);
}

/* key is a literal of ours, printable ASCII without " or \: not escaped. */
void
jsonw_key(struct jsonw *w, const char *key)
{
	jsonw_sep(w);
	jsonw_raw(w, "\"", 1);
	jsonw_raw(w, key, strlen(key));
	jsonw_raw(w, "\":", 2);
	w->sep = 0;
}

void
jsonw_str(struct jsonw *w, const char *s, size_t n)
{
	jsonw_sep(w);
	jsonw_quoted(w, s, n);
}

/* s, or null when s is NULL (json_pack's "s?"). */
void
jsonw_strz(struct jsonw *w, const char *s)
{
	if (s == NULL)
		jsonw_lit(w, "null");
	else
		jsonw_str(w, s, strlen(s));
}

void
jsonw_num(struct jsonw *w, long long v)
{
	char	 buf[24];

	snprintf(buf, sizeof(buf), "%lld", v);
	jsonw_lit(w, buf);
}

/* A literal value: true, false, null, or text already JSON. */
void
jsonw_lit(struct jsonw *w, const char *lit)
{
	jsonw_sep(w);
	jsonw_raw(w, lit, strlen(lit));
}

/* The text (owned), or NULL when it failed; w is spent either way. */
char *
jsonw_done(struct jsonw *w)
{
	char	*s = w->buf;

	if (w->err || s == NULL) {
		free(s);
		s = NULL;
	} else
		s[w->len] = '\0';
	memset(w, 0, sizeof(*w));
	return s;
}
