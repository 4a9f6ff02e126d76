/*
 * One FastCGI request in and its answer out: the parameters into a struct
 * request (method, client address, request id, body, path under the
 * prefix), and the status line, headers and body written back.
 *
 * Every request has an id: the web server's REQUEST_ID parameter (nginx's
 * $request_id) when it is [A-Za-z0-9-]{1,64}, else one of ours (this
 * instance's random prefix, the thread's number and a counter: no system
 * call).  It is on every log line of the request, on the access line, and
 * answered as X-Request-Id.
 */
#include "config.h"

#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <fcgiapp.h>
#include <sodium.h>

#include "extern.h"
#include "server_int.h"

static struct {
	char		 id_prefix[SERVER_ID_PREFIX * 2 + 1];	/* hex */
	unsigned int	 nthreads;	/* numbers given to threads */
} rq;

/* This instance's random request id prefix; before any worker starts. */
void
server_reqid_init(void)
{
	unsigned char	 prefix[SERVER_ID_PREFIX];

	randombytes_buf(prefix, sizeof(prefix));
	sodium_bin2hex(rq.id_prefix, sizeof(rq.id_prefix), prefix,
	    sizeof(prefix));
}

/*
 * The parameters a request reads, found in one pass over envp: a
 * FCGX_GetParam per name scans the whole list each time (a dozen scans of
 * some 30 entries per request).  out[i] is names[i]'s value, the first
 * one, as FCGX_GetParam gives it, or NULL; a NULL name matches nothing,
 * nor does one past SERVER_PARAMS_MAX.
 */
void
server_params_find(char **envp, const char *const *names, size_t n,
    const char **out)
{
	/* the names of each length (a bit per name), longer ones in [0] */
	uint16_t	 bylen[SERVER_PARAM_NAME_MAX + 1], m, left = 0;
	size_t		 len[SERVER_PARAMS_MAX], i, k;
	char		*eq;

	for (i = 0; i < n; i++)
		out[i] = NULL;
	if (n > SERVER_PARAMS_MAX)
		n = SERVER_PARAMS_MAX;	/* those past it stay NULL */
	memset(bylen, 0, sizeof(bylen));
	for (i = 0; i < n; i++) {
		if (names[i] == NULL || (len[i] = strlen(names[i])) == 0)
			continue;
		bylen[len[i] <= SERVER_PARAM_NAME_MAX ? len[i] : 0] |=
		    (uint16_t)(1u << i);
		left |= (uint16_t)(1u << i);
	}
	for (; left != 0 && envp != NULL && *envp != NULL; envp++) {
		if ((eq = strchr(*envp, '=')) == NULL)
			continue;
		k = (size_t)(eq - *envp);
		m = bylen[k <= SERVER_PARAM_NAME_MAX ? k : 0] & left;
		for (i = 0; m != 0; i++, m >>= 1)
			if ((m & 1) && len[i] == k &&
			    memcmp(*envp, names[i], k) == 0) {
				out[i] = eq + 1;
				left &= (uint16_t)~(1u << i);
			}
	}
}

enum rparam {
	RP_REQUEST_ID,
	RP_METHOD,
	RP_CONTENT_TYPE,
	RP_AUTHORIZATION,
	RP_USER_AGENT,
	RP_REQUIRED_ROLE,
	RP_REQUIRED_AAL,
	RP_REQUIRED_VERIFIED,
	RP_FCGI_ROLE,
	RP_REMOTE_ADDR,
	RP_REQUEST_URI,
	RP_DOCUMENT_URI,
	RP_CONTENT_LENGTH,
	RP_REAL_IP,		/* HTTP_ + cfg->real_ip_header, or none */
	RP__MAX
};

static int
ip_in_list(const char *ip, const char *list)
{
	size_t	 n = strlen(ip), len;

	while (list != NULL && *list != '\0') {
		list += strspn(list, ", ");
		len = strcspn(list, ", ");
		if (len == n && len > 0 && strncmp(list, ip, n) == 0)
			return 1;
		list += len;
	}
	return 0;
}

/* HTTP_ and the real-ip header's name in upper case, '-' as '_'; "" if none. */
static void
real_ip_param(char *param, size_t sz)
{
	char	*p;

	param[0] = '\0';
	if (cfg->real_ip_header[0] == '\0')
		return;
	snprintf(param, sz, "HTTP_%s", cfg->real_ip_header);
	for (p = param; *p != '\0'; p++)
		*p = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
}

/* REMOTE_ADDR, or the trusted proxy's header when the peer is trusted. */
static void
client_ip(struct request *r, const char *peer, const char *v)
{
	const char	*p;
	size_t		 n;

	n = peer != NULL ? strnlen(peer, sizeof(r->ip) - 1) : 0;
	memcpy(r->ip, peer != NULL ? peer : "", n);
	r->ip[n] = '\0';
	if (peer == NULL || cfg->real_ip_header[0] == '\0' ||
	    !ip_in_list(peer, cfg->trusted_proxies) || v == NULL)
		return;
	/* X-Forwarded-For: the right-most address was added by our proxy */
	if ((p = strrchr(v, ',')) != NULL)
		v = p + 1;
	while (*v == ' ')
		v++;
	n = strcspn(v, " ");
	if (n > 0 && n < sizeof(r->ip) && strspn(v, "0123456789abcdefABCDEF.:")
	    >= n)
		snprintf(r->ip, sizeof(r->ip), "%.*s", (int)n, v);
}

/* The web server's id when well-formed, else ours: prefix-thread-count. */
static void
request_id(char out[FA_REQID_MAX + 1], const char *given)
{
	static __thread unsigned int		 thread;
	static __thread unsigned long long	 count;

	size_t	 n;

	if (given != NULL && log_reqid_ok(given)) {
		n = strnlen(given, FA_REQID_MAX);
		memcpy(out, given, n);
		out[n] = '\0';
		return;
	}
	if (thread == 0)
		thread = __atomic_add_fetch(&rq.nthreads, 1, __ATOMIC_RELAXED);
	snprintf(out, FA_REQID_MAX + 1, "%s-%x-%llx", rq.id_prefix, thread,
	    ++count);
}

/* Read the body up to max_body; past it, discard without keeping it. */
static void
read_body(struct request *r, FCGX_Request *fr, const char *cl)
{
	char		 sink[8192];
	long long	 len = 0;
	long		 left;
	int		 n;

	/* digits past LLONG_MAX: too large; anything else: no body */
	if (cl != NULL && num_parse(cl, 0, LLONG_MAX, &len) == -1)
		len = *cl >= '0' && *cl <= '9' ? LLONG_MAX : 0;
	if (len <= 0) {
		r->body = xstrdup("");
		return;
	}
	if (len > cfg->max_body) {
		r->body_too_large = 1;
		left = len > SERVER_DISCARD_MAX ? SERVER_DISCARD_MAX : (long)len;
		while (left > 0 && (n = FCGX_GetStr(sink, left > (long)
		    sizeof(sink) ? (int)sizeof(sink) : (int)left, fr->in)) > 0)
			left -= n;
		if (left > 0 || len > SERVER_DISCARD_MAX)
			fr->keepConnection = 0;
		return;
	}
	r->body = xmalloc((size_t)len + 1);
	n = FCGX_GetStr(r->body, (int)len, fr->in);
	r->bodylen = n > 0 ? (size_t)n : 0;
	r->body[r->bodylen] = '\0';
}

/* Fill r from the FastCGI parameters; -1 when the path is not ours (404). */
int
server_request_fill(struct request *r, FCGX_Request *fr)
{
	static const char *const names[RP__MAX] = {
		[RP_REQUEST_ID] = "REQUEST_ID",
		[RP_METHOD] = "REQUEST_METHOD",
		[RP_CONTENT_TYPE] = "CONTENT_TYPE",
		[RP_AUTHORIZATION] = "HTTP_AUTHORIZATION",
		[RP_USER_AGENT] = "HTTP_USER_AGENT",
		[RP_REQUIRED_ROLE] = "AUTH_REQUIRED_ROLE",
		[RP_REQUIRED_AAL] = "AUTH_REQUIRED_AAL",
		[RP_REQUIRED_VERIFIED] = "AUTH_REQUIRED_VERIFIED",
		[RP_FCGI_ROLE] = "FCGI_ROLE",
		[RP_REMOTE_ADDR] = "REMOTE_ADDR",
		[RP_REQUEST_URI] = "REQUEST_URI",
		[RP_DOCUMENT_URI] = "DOCUMENT_URI",
		[RP_CONTENT_LENGTH] = "CONTENT_LENGTH",
	};
	const char	*want[RP__MAX], *v[RP__MAX], *uri;
	char		 real_ip[96];

	memcpy(want, names, sizeof(want));
	real_ip_param(real_ip, sizeof(real_ip));
	want[RP_REAL_IP] = real_ip[0] != '\0' ? real_ip : NULL;
	server_params_find(fr->envp, want, RP__MAX, v);
	r->fcgx = fr;
	r->start_us = now_us();
	request_id(r->id, v[RP_REQUEST_ID]);
	r->method_name = v[RP_METHOD] != NULL ? v[RP_METHOD] : "GET";
	r->method = route_method(r->method_name);
	r->content_type = v[RP_CONTENT_TYPE];
	r->authorization = v[RP_AUTHORIZATION];
	r->user_agent = v[RP_USER_AGENT];
	r->required_role = v[RP_REQUIRED_ROLE];
	r->required_aal = v[RP_REQUIRED_AAL];
	r->required_verified = v[RP_REQUIRED_VERIFIED];
	r->authorizer = v[RP_FCGI_ROLE] != NULL &&
	    strcmp(v[RP_FCGI_ROLE], "AUTHORIZER") == 0;
	client_ip(r, v[RP_REMOTE_ADDR], v[RP_REAL_IP]);
	if ((uri = v[RP_REQUEST_URI]) == NULL &&
	    (uri = v[RP_DOCUMENT_URI]) == NULL)
		uri = "/";
	read_body(r, fr, v[RP_CONTENT_LENGTH]);
	if (r->authorizer) {
		/* the URL is the client's: never policy input */
		r->query = xstrdup("");
		r->path = xstrdup("/verify");
		return 0;
	}
	return request_split_uri(uri, cfg->prefix, &r->path, &r->query);
}

/* "name: value" and CRLF into the stream, value cut to SERVER_HEADER_MAX. */
static void
out_header(FCGX_Stream *out, const char *name, const char *value)
{
	size_t	 n = strlen(value);

	FCGX_PutS(name, out);
	FCGX_PutStr(": ", 2, out);
	FCGX_PutStr(value, n < SERVER_HEADER_MAX ? (int)n :
	    SERVER_HEADER_MAX, out);
	FCGX_PutStr("\r\n", 2, out);
}

/* v in decimal at the end of buf[sz]; returns where it starts. */
static char *
out_number(char *buf, size_t sz, unsigned long long v)
{
	char	*p = buf + sz - 1;

	*p = '\0';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && p > buf);
	return p;
}

/* RFC 9110 reason phrases: "Status: 200 OK" (nginx copies the line). */
static const char *
status_reason(int status)
{
	static const struct {
		int		 code;
		const char	*reason;
	} reasons[] = {
		{ 200, "OK" }, { 201, "Created" }, { 204, "No Content" },
		{ 400, "Bad Request" }, { 401, "Unauthorized" },
		{ 403, "Forbidden" }, { 404, "Not Found" },
		{ 405, "Method Not Allowed" }, { 409, "Conflict" },
		{ 413, "Content Too Large" },
		{ 415, "Unsupported Media Type" },
		{ 429, "Too Many Requests" }, { 500, "Internal Server Error" },
		{ 503, "Service Unavailable" },
	};
	size_t	 i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == status)
			return reasons[i].reason;
	return status < 500 ? "Client Error" : "Server Error";
}

void
server_response_write(struct request *r, FCGX_Request *fr)
{
	char	 num[24];
	size_t	 i;
	int	 status = r->status != 0 ? r->status : 500;

	FCGX_PutS("Status: ", fr->out);
	FCGX_PutS(out_number(num, sizeof(num), (unsigned int)status), fr->out);
	FCGX_PutStr(" ", 1, fr->out);
	FCGX_PutS(status_reason(status), fr->out);
	FCGX_PutStr("\r\n", 2, fr->out);
	out_header(fr->out, "X-Request-Id", r->id);
	for (i = 0; i < r->nheaders; i++)
		out_header(fr->out, r->headers[i].name, r->headers[i].value);
	if (r->out != NULL) {
		for (i = 0; i < r->nheaders; i++)
			if (strcasecmp(r->headers[i].name, "Content-Type") == 0)
				break;
		if (i == r->nheaders)	/* a handler may set its own */
			out_header(fr->out, "Content-Type", "application/json");
		out_header(fr->out, "Content-Length",
		    out_number(num, sizeof(num), r->outlen));
		FCGX_PutStr("\r\n", 2, fr->out);
		if (r->method != METHOD_HEAD)
			FCGX_PutStr(r->out, (int)r->outlen, fr->out);
	} else
		FCGX_PutS("Content-Length: 0\r\n\r\n", fr->out);
}
