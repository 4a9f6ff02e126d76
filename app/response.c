/*
 * Building the answer: status, headers and body are kept in struct request
 * and written once by server.c, so a handler cannot answer twice by
 * accident (a later resp_* replaces the earlier answer).
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"

static const struct {
	int		 status;
	const char	*code;
	const char	*message;
} errs[ERR__MAX] = {
	[ERR_INVALID_JSON] = { 400, "invalid_json",
	    "The body is not one well-formed JSON object." },
	[ERR_VALIDATION] = { 400, "validation_failed",
	    "Some fields are missing or invalid." },
	[ERR_INVALID_CREDENTIALS] = { 401, "invalid_credentials",
	    "Invalid email or password." },
	[ERR_INVALID_TOKEN] = { 401, "invalid_token",
	    "The token is missing, invalid, expired or revoked." },
	[ERR_FORBIDDEN] = { 403, "forbidden",
	    "You do not have the role this needs." },
	[ERR_NOT_FOUND] = { 404, "not_found", "Not found." },
	[ERR_METHOD] = { 405, "method_not_allowed",
	    "This method is not allowed here." },
	[ERR_EMAIL_TAKEN] = { 409, "email_taken",
	    "An account with this email already exists." },
	[ERR_EMAIL_NOT_VERIFIED] = { 403, "email_not_verified",
	    "The email address is not verified yet." },
	[ERR_TOO_LARGE] = { 413, "payload_too_large",
	    "The request body is too large." },
	[ERR_MEDIA_TYPE] = { 415, "unsupported_media_type",
	    "The body must be application/json." },
	[ERR_TOO_MANY] = { 429, "too_many_requests",
	    "Too many requests; retry later." },
	[ERR_UNAVAILABLE] = { 503, "unavailable",
	    "The service is temporarily unavailable." },
	[ERR_INTERNAL] = { 500, "internal_error", "Internal error." },
	[ERR_MFA_REQUIRED] = { 401, "mfa_required",
	    "A second factor is required: send a code to /mfa/verify." },
	[ERR_INVALID_CODE] = { 401, "invalid_code",
	    "The code is wrong or was already used." },
	[ERR_MFA_ENABLED] = { 409, "mfa_already_enabled",
	    "Two-factor authentication is already enabled." },
	[ERR_MFA_NOT_ENABLED] = { 409, "mfa_not_enabled",
	    "Two-factor authentication is not enabled." },
};

int
err_status(enum err e)
{
	return errs[e].status;
}

const char *
err_code(enum err e)
{
	return errs[e].code;
}

static int
header_byte_ok(unsigned char c)
{
	return c >= 0x20 && c <= 0x7e;
}

int
resp_header_value_ok(const char *v)
{
	for (; *v != '\0'; v++)
		if (!header_byte_ok((unsigned char)*v))
			return 0;
	return 1;
}

/*
 * Header values are visible ASCII only: no CR, LF, other C0 or DEL, and no
 * byte of a UTF-8 sequence (U+0085, U+2028 and look-alikes).
 */
void
resp_header(struct request *r, const char *name, const char *v)
{
	size_t	 i, n;
	char	*copy;

	n = strlen(v);
	if (n < sizeof(r->hbuf) - r->hbuflen) {	/* no malloc per header */
		copy = r->hbuf + r->hbuflen;
		r->hbuflen += n + 1;
	} else
		copy = xmalloc(n + 1);
	for (i = 0; i < n; i++)
		copy[i] = header_byte_ok((unsigned char)v[i]) ? v[i] : ' ';
	copy[n] = '\0';
	for (i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0) {
			request_header_free(r, r->headers[i].value);
			r->headers[i].value = copy;
			return;
		}
	if (r->nheaders == FA_HEADERS_MAX) {
		request_header_free(r, copy);
		return;
	}
	r->headers[r->nheaders].name = name;
	r->headers[r->nheaders++].value = copy;
}

static void
resp_body(struct request *r, int status, char *body, size_t len)
{
	free(r->out);
	r->status = status;
	r->out = body;
	r->outlen = len;
}

void
resp_json(struct request *r, int status, json_t *j)
{
	char	*s;

	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (s == NULL) {
		resp_error(r, ERR_INTERNAL, NULL);
		return;
	}
	resp_body(r, status, s, strlen(s));
}

void
resp_empty(struct request *r, int status)
{
	resp_body(r, status, NULL, 0);
}

static void
resp_error_json(struct request *r, enum err e, const char *message,
    json_t *fields)
{
	json_t	*j;

	j = json_pack("{s:s, s:s}", "error", errs[e].code, "message",
	    message != NULL ? message : errs[e].message);
	if (j == NULL)
		abort();
	if (fields != NULL)
		json_object_set_new(j, "fields", fields);
	resp_json(r, errs[e].status, j);
	if (e == ERR_INVALID_TOKEN)
		resp_header(r, "WWW-Authenticate",
		    "Bearer error=\"invalid_token\"");
}

void
resp_error(struct request *r, enum err e, const char *message)
{
	resp_error_json(r, e, message, NULL);
}

void
resp_error_fields(struct request *r, json_t *fields)
{
	resp_error_json(r, ERR_VALIDATION, NULL, fields);
}

void
resp_unavailable(struct request *r)
{
	resp_error(r, ERR_UNAVAILABLE, NULL);
	resp_header(r, "Retry-After", "1");
}

/* 429 with the seconds to wait (at least 1) in Retry-After. */
void
resp_too_many(struct request *r, long retry)
{
	char	 v[24];

	snprintf(v, sizeof(v), "%ld", retry > 0 ? retry : 1);
	resp_error(r, ERR_TOO_MANY, NULL);
	resp_header(r, "Retry-After", v);
}

/* Token text: base64url and the dots of a JWS, nothing JSON escapes. */
static int
resp_token_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' &&
		    *s != '.')
			return 0;
	return 1;
}

/*
 * 200 with the token pair, or 500 when its access token could not be
 * signed (session_pair logged why).
 */

void
resp_pair(struct request *r, const struct session_pair *p)
{
	char	*body;
	int	 n;

	if (p->access == NULL) {
		resp_error(r, ERR_INTERNAL, NULL);
		return;
	}
	/* on the refresh path: printed, not built and dumped by jansson */
	if (resp_token_ok(p->access) && resp_token_ok(p->refresh)) {
		n = xasprintf(&body, "{\"accessToken\":\"%s\",\"refreshToken\":"
		    "\"%s\",\"tokenType\":\"Bearer\",\"expiresIn\":%lld,"
		    "\"refreshExpiresIn\":%lld}", p->access, p->refresh,
		    (long long)cfg->access_ttl, (long long)cfg->refresh_ttl);
		resp_body(r, 200, body, (size_t)n);
	} else
		resp_json(r, 200, json_pack("{s:s, s:s, s:s, s:I, s:I}",
		    "accessToken", p->access, "refreshToken", p->refresh,
		    "tokenType", "Bearer", "expiresIn",
		    (json_int_t)cfg->access_ttl, "refreshExpiresIn",
		    (json_int_t)cfg->refresh_ttl));
	resp_header(r, "Cache-Control", "no-store");
	resp_header(r, "Pragma", "no-cache");
}
