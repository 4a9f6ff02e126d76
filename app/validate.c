/*
 * Pure checks of client input: no I/O, no allocation beyond jansson's, so
 * unit tests and fuzzers call them directly.  Each returns 0 when the value
 * is acceptable and -1 otherwise, with *why a short human reason.  A route
 * declares the fields of its body (struct field_spec) or query (struct
 * param_spec) and checks them here, in one path; the reasons name the
 * limits of extern.h.
 */
#include "config.h"

#include <stdlib.h>
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
		*why = "must be at least " FA_STR(FA_PASSWORD_MIN) " bytes";
		return -1;
	}
	if (len > FA_PASSWORD_MAX) {
		*why = "must be at most " FA_STR(FA_PASSWORD_MAX) " bytes";
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
		*why = "must be at most " FA_STR(FA_NAME_MAX) " characters";
		return -1;
	}
	return 0;
}

/* FA_ROLE_PATTERN */
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

/* Presence and type: 0 present, 1 absent (and allowed), -1 refused. */
static int
field_type(const json_t *body, const struct field_spec *f,
    struct field_value *v, const char **why)
{
	const json_t	*j = json_object_get(body, f->name);

	if (j == NULL || (f->kind == FIELD_NAME && json_is_null(j))) {
		*why = f->why_missing != NULL ? f->why_missing :
		    VALIDATE_WHY_REQUIRED;
		return (f->flags & FIELD_REQUIRED) ? -1 : 1;
	}
	*why = f->why_type != NULL ? f->why_type : VALIDATE_WHY_STRING;
	if (!json_is_string(j) || (f->kind == FIELD_SECRET &&
	    json_string_length(j) > FA_PASSWORD_MAX))
		return -1;
	v->s = json_string_value(j);
	v->len = json_string_length(j);
	return 0;
}

/* The value of a present string field: 0, or -1 with *why. */
static int
field_value(const struct field_spec *f, struct field_value *v,
    const char **why)
{
	switch (f->kind) {
	case FIELD_PASSWORD:
		return validate_password(v->s, v->len, why);
	case FIELD_EMAIL:
		return email_canon(v->s, v->len, v->email, why);
	case FIELD_NAME:
		if (validate_name(v->s, v->len, why) == -1)
			return -1;
		if (v->len == 0)
			v->s = NULL;
		return 0;
	default:
		return 0;
	}
}

int
validate_fields(const json_t *body, const struct field_spec *spec, size_t n,
    int flags, struct field_value *v, json_t *fields)
{
	const char	*why;
	size_t		 i;
	int		 rc = 0;

	memset(v, 0, n * sizeof(*v));
	for (i = 0; i < n; i++) {
		if (field_type(body, &spec[i], &v[i], &why) != -1)
			continue;
		json_object_set_new(fields, spec[i].name, json_string(why));
		rc = -1;
		if (flags & VALIDATE_FIRST)
			return rc;
	}
	/* v[i].s is set for the fields present with the right type */
	for (i = 0; i < n; i++) {
		if (v[i].s == NULL || field_value(&spec[i], &v[i], &why) == 0)
			continue;
		json_object_set_new(fields, spec[i].name, json_string(why));
		rc = -1;
		if (flags & VALIDATE_FIRST)
			break;
	}
	return rc;
}

/* [a-z0-9._]+ */
static int
param_name_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		    *s == '.' || *s == '_'))
			return 0;
	return 1;
}

/* Decimal digits only (no sign, no space), from min to max. */
static int
param_number(const char *s, long long min, long long max, long long *out)
{
	if (*s < '0' || *s > '9')
		return -1;
	return num_parse(s, min, max, out);
}

static int
param_value_ok(const struct param_spec *p, struct param_value *v)
{
	unsigned char	 b[16];

	switch (p->kind) {
	case PARAM_UUID:
		return uuid_parse(b, v->s, strlen(v->s)) == 0;
	case PARAM_NAME:
		return param_name_ok(v->s);
	case PARAM_NUMBER:
		return param_number(v->s, p->min, p->max, &v->n) == 0;
	default:
		return 0;
	}
}

int
validate_params(const struct request *r, const struct param_spec *spec,
    size_t n, struct param_value *v, json_t *fields)
{
	size_t		 i, sz;
	int		 rc = 0;

	memset(v, 0, n * sizeof(*v));
	for (i = 0; i < n; i++) {
		sz = spec[i].maxlen < PARAM_VALUE_MAX ? spec[i].maxlen + 1 :
		    sizeof(v[i].s);
		switch (request_query_lookup(r, spec[i].name, v[i].s, sz)) {
		case QUERY_ABSENT:
			continue;
		case QUERY_PRESENT:
			v[i].present = 1;
			if (param_value_ok(&spec[i], &v[i]))
				continue;
			break;
		default:
			break;
		}
		json_object_set_new(fields, spec[i].name,
		    json_string(spec[i].why));
		rc = -1;
	}
	return rc;
}
