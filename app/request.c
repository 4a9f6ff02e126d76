/*
 * What handlers see of a request: path parameters, the query, the bearer
 * token and the JSON body.  Everything here parses memory; server.c fills
 * struct request from the FastCGI parameters.
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "extern.h"

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode a form-encoded value; -1 when malformed or longer than outsz-1. */
static int
query_decode(char *out, size_t outsz, const char *in, size_t len)
{
	size_t	 i, n = 0;
	int	 hi, lo;

	if (outsz == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (n + 1 >= outsz)
			return -1;
		if (in[i] == '+')
			out[n++] = ' ';
		else if (in[i] == '%') {
			if (len - i < 3)
				return -1;
			if ((hi = hexval((unsigned char)in[i + 1])) < 0 ||
			    (lo = hexval((unsigned char)in[i + 2])) < 0)
				return -1;
			out[n++] = (char)(hi << 4 | lo);
			i += 2;
		} else
			out[n++] = in[i];
	}
	out[n] = '\0';
	if (memchr(out, '\0', n) != NULL)
		return -1;
	return 0;
}

/*
 * Tri-state: QUERY_ABSENT when no parameter is called name, QUERY_PRESENT
 * with the decoded value in out, QUERY_MALFORMED when it is present but
 * cannot be decoded, does not fit out, or is given more than once.  Names
 * are compared decoded ("%72ole" is "role"); "name" without "=" is
 * present and empty.  A caller must never read QUERY_MALFORMED as absent.
 */
enum query_state
request_query_lookup(const struct request *r, const char *name, char *out,
    size_t outsz)
{
	const char	*p, *amp, *eq;
	char		 key[REQUEST_QUERY_NAME_MAX + 1];
	size_t		 seglen, klen;
	enum query_state st = QUERY_ABSENT;

	if (outsz > 0)
		out[0] = '\0';
	if (r->query == NULL)
		return QUERY_ABSENT;
	for (p = r->query; *p != '\0'; p = *amp ? amp + 1 : amp) {
		amp = p + strcspn(p, "&");
		seglen = (size_t)(amp - p);
		if ((eq = memchr(p, '=', seglen)) == NULL)
			eq = amp;
		klen = (size_t)(eq - p);
		if (query_decode(key, sizeof(key), p, klen) == -1 ||
		    strcmp(key, name) != 0)
			continue;
		if (st != QUERY_ABSENT)
			return QUERY_MALFORMED;
		st = QUERY_PRESENT;
		if (query_decode(out, outsz, eq == amp ? eq : eq + 1,
		    eq == amp ? 0 : (size_t)(amp - eq - 1)) == -1)
			return QUERY_MALFORMED;
	}
	return st;
}

/* "Bearer <token68>": one space or more, scheme case-insensitive. */
int
request_bearer(const char *hdr, const char **tok, size_t *len)
{
	const char	*p;
	size_t		 n;

	if (hdr == NULL || strncasecmp(hdr, "Bearer ", 7) != 0)
		return -1;
	for (p = hdr + 7; *p == ' '; p++)
		continue;
	n = strcspn(p, " \t\r\n");
	if (n == 0 || n > FA_TOKEN_MAX || p[n] != '\0')
		return -1;
	*tok = p;
	*len = n;
	return 0;
}

/* The one segment a route pattern captures ("/sessions/:"), or NULL. */
const char *
request_param(const struct request *r)
{
	return r->nparams > 0 ? r->params[0] : NULL;
}

/*
 * Split a request URI: *query the query (after '?', before any '#'),
 * *path what follows prefix ("/auth/login" under "/auth" is "/login"; a
 * trailing slash of prefix does not count).  0, or -1 when the path is not
 * below prefix, *path then the whole path (for the 404's log line).  Both
 * strings are allocated, the caller's to free.
 */
int
request_split_uri(const char *uri, const char *prefix, char **path,
    char **query)
{
	const char	*q;
	size_t		 n = strcspn(uri, "?#"), plen = strlen(prefix);

	q = uri[n] == '?' ? uri + n + 1 : "";
	*query = xstrndup(q, strcspn(q, "#"));
	while (plen > 0 && prefix[plen - 1] == '/')
		plen--;
	if (n < plen || strncmp(uri, prefix, plen) != 0 ||
	    (n > plen && uri[plen] != '/')) {
		*path = xstrndup(uri, n);
		return -1;
	}
	*path = xstrndup(uri + plen, n - plen);
	return 0;
}

/* application/json, optionally with parameters such as charset=utf-8. */
static int
is_json_type(const char *ct)
{
	size_t	 n;

	if (ct == NULL)
		return 0;
	while (*ct == ' ')
		ct++;
	n = strlen("application/json");
	if (strncasecmp(ct, "application/json", n) != 0)
		return 0;
	ct += n;
	while (*ct == ' ')
		ct++;
	return *ct == '\0' || *ct == ';';
}

json_t *
request_json(struct request *r)
{
	json_t	*j;

	if (r->body_too_large) {
		resp_error(r, ERR_TOO_LARGE, NULL);
		return NULL;
	}
	if (!is_json_type(r->content_type)) {
		resp_error(r, ERR_MEDIA_TYPE, NULL);
		return NULL;
	}
	if ((j = json_parse_object(r->body, r->bodylen)) == NULL) {
		resp_error(r, ERR_INVALID_JSON, NULL);
		return NULL;
	}
	return j;
}

void
request_free(struct request *r)
{
	size_t	 i;

	free(r->path);
	free(r->query);
	free(r->body);
	for (i = 0; i < r->nparams; i++)
		free(r->params[i]);
	for (i = 0; i < r->nheaders; i++)
		request_header_free(r, r->headers[i].value);
	free(r->out);
	memset(r, 0, sizeof(*r));
}

void
request_header_free(struct request *r, char *v)
{
	uintptr_t	 p = (uintptr_t)v, b = (uintptr_t)r->hbuf;

	if (p < b || p >= b + sizeof(r->hbuf))
		free(v);
}
