/*
 * The FastCGI server: the listening socket (unix path, host:port, fd 0 or
 * systemd's LISTEN_FDS), a pool of worker threads, and the signals.
 * libfcgi pins a thread to each kept-alive connection, so the worker count
 * must exceed the connections nginx keeps alive.
 *
 * Workers accept connections themselves (one at a time, polling the
 * listening socket and a wake pipe) and hand each to libfcgi, which never
 * accepts nor owns a descriptor it did not get from us.  That lets us
 * check FCGI_WEB_SERVER_ADDRS for every peer, wake idle workers at
 * shutdown through the pipe, and bound a request in time: from its first
 * byte a peer has request_timeout to deliver the whole request (params and
 * stdin), and as long again to take the answer.  libfcgi reads inside
 * FCGX_Accept_r and FCGX_GetStr; a worker past its deadline is interrupted
 * there by SERVER_SIG_WAKE (a handler without SA_RESTART makes read()
 * fail with EINTR) and closes the connection without answering.
 *
 * Signals are blocked in every thread and taken by the main thread with
 * sigtimedwait(), which also runs the deadline watch every SERVER_TICK_MS.
 * On SIGTERM/SIGINT we stop accepting, wake idle workers, let busy ones
 * finish, and return; if some are still busy after the drain time the
 * process exits at once, without freeing what they use.  SIGHUP reloads
 * the configuration and the keys (reload.c): a worker holds the generation
 * it started a request with until the request is answered.
 *
 * Every request has an id: the web server's REQUEST_ID parameter (nginx's
 * $request_id) when it is [A-Za-z0-9-]{1,64}, else one of ours (this
 * instance's random prefix, the thread's number and a counter: no system
 * call).  It is on every log line of the request, on the access line, and
 * answered as X-Request-Id.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <sodium.h>

#include "extern.h"

#define SERVER_STACK_SIZE	(512 * 1024)
#define SERVER_DRAIN_SECONDS	5
#define SERVER_ACCEPT_RETRY_MS	10
#define SERVER_DISCARD_MAX	(64L * 1024 * 1024)
#define SD_LISTEN_FDS_START	3
#define SERVER_HEADER_MAX	(FA_TOKEN_MAX + 512)

enum worker_state {
	WORKER_IDLE,	/* waiting for a connection or its next request */
	WORKER_IO,	/* taking a request or giving its answer: deadline */
	WORKER_BUSY	/* handling one */
};

struct worker {
	pthread_t		 thread;
	enum worker_state	 state;
	long long		 deadline;	/* mono_ms, in WORKER_IO */
	int			 done;
};

static struct {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;		/* CLOCK_MONOTONIC: a worker ended */
	pthread_mutex_t	 accept_lock;	/* one worker polls the listener */
	struct worker	*workers;
	long		 nworkers;
	long		 running;
	int		 listen_fd;
	int		 wake[2];	/* readable once stopping */
	char		*unix_path;	/* to unlink on exit */
	struct in6_addr	 allow[SERVER_ALLOW_MAX];	/* v4 as ::ffff:a.b.c.d */
	size_t		 nallow;	/* 0: every peer */
	/* restart-only, copied at start: read between requests */
	long		 read_timeout;
	long		 request_timeout;
	char		 id_prefix[SERVER_ID_PREFIX * 2 + 1];	/* hex */
	unsigned int	 nthreads;	/* numbers given to threads */
} srv = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.accept_lock = PTHREAD_MUTEX_INITIALIZER,
	.listen_fd = -1,
	.wake = { -1, -1 },
};

static int
listen_unix(const char *path, long mode, long backlog, char **errstr)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		xasprintf(errstr, "listen: socket path too long");
		return -1;
	}
	strncpy(sun.sun_path, path, sizeof(sun.sun_path) - 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		goto fail;
	if (unlink(path) == -1 && errno != ENOENT)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(path, (mode_t)mode) == -1 || listen(fd, (int)backlog) == -1)
		goto fail;
	srv.unix_path = xstrdup(path);
	return fd;
fail:
	xasprintf(errstr, "listen: %s: %s", path, strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

/* "host:port", "[v6]:port" or ":port" (loopback). */
static int
listen_tcp(const char *spec, long backlog, char **errstr)
{
	struct addrinfo	 hints, *res = NULL;
	char		 host[256];
	const char	*colon, *h = host;
	int		 fd = -1, one = 1, rc;
	size_t		 n;

	if ((colon = strrchr(spec, ':')) == NULL ||
	    (n = (size_t)(colon - spec)) >= sizeof(host)) {
		xasprintf(errstr, "listen: expected a path or host:port");
		return -1;
	}
	memcpy(host, spec, n);
	host[n] = '\0';
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host[n - 1] = '\0';
		h = host + 1;
	} else if (n == 0)
		h = "127.0.0.1";
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	if ((rc = getaddrinfo(h, colon + 1, &hints, &res)) != 0) {
		xasprintf(errstr, "listen: %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	if ((fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC,
	    0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, (int)backlog) == -1) {
		xasprintf(errstr, "listen: %s: %s", spec, strerror(errno));
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static int
is_listening_socket(int fd)
{
	struct stat	 st;
	int		 v = 0;
	socklen_t	 len = sizeof(v);

	if (fstat(fd, &st) == -1 || !S_ISSOCK(st.st_mode))
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == -1)
		return 0;
	return v != 0;
}

/* systemd socket activation: LISTEN_PID must be us, one fd at 3. */
static int
listen_systemd(void)
{
	const char	*pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

	if (pid == NULL || fds == NULL || atol(pid) != (long)getpid() ||
	    atoi(fds) < 1)
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return SD_LISTEN_FDS_START;
}

static int
server_listen(const char *spec, char **errstr)
{
	int	 fd;

	if ((fd = listen_systemd()) != -1)
		return fd;
	if (spec == NULL || *spec == '\0') {
		if (is_listening_socket(STDIN_FILENO))
			return STDIN_FILENO;
		xasprintf(errstr, "listen: not set, and neither fd 0 nor "
		    "LISTEN_FDS is a listening socket");
		return -1;
	}
	if (strchr(spec, '/') != NULL)
		return listen_unix(spec, cfg->listen_mode, cfg->backlog,
		    errstr);
	return listen_tcp(spec, cfg->backlog, errstr);
}

/*
 * FCGI_WEB_SERVER_ADDRS, as libfcgi defines it: comma-separated addresses
 * of the web servers allowed to connect over TCP (libfcgi takes IPv4 only;
 * we take IPv6 too).  Unset or empty: any peer.  Unix socket peers are not
 * checked.  A malformed entry is refused rather than skipped, so a typo
 * cannot open the socket to every peer nor close it to all.
 */
static int
allow_parse(const char *list, char **errstr)
{
	struct in_addr	 v4;
	char		 a[INET6_ADDRSTRLEN];
	size_t		 n;

	srv.nallow = 0;
	while (list != NULL && *list != '\0') {
		list += strspn(list, ", ");
		if ((n = strcspn(list, ", ")) == 0)
			break;
		if (n >= sizeof(a) || srv.nallow == SERVER_ALLOW_MAX)
			goto fail;
		memcpy(a, list, n);
		a[n] = '\0';
		memset(&srv.allow[srv.nallow], 0, sizeof(srv.allow[0]));
		if (inet_pton(AF_INET, a, &v4) == 1) {
			srv.allow[srv.nallow].s6_addr[10] = 0xff;
			srv.allow[srv.nallow].s6_addr[11] = 0xff;
			memcpy(&srv.allow[srv.nallow].s6_addr[12], &v4, 4);
		} else if (inet_pton(AF_INET6, a, &srv.allow[srv.nallow]) != 1)
			goto fail;
		srv.nallow++;
		list += n;
	}
	return 0;
fail:
	xasprintf(errstr, "FCGI_WEB_SERVER_ADDRS: expected at most %d "
	    "comma-separated IP addresses", SERVER_ALLOW_MAX);
	return -1;
}

static int
peer_allowed(const struct sockaddr_storage *ss)
{
	struct in6_addr	 a;
	size_t		 i;

	if (srv.nallow == 0 || ss->ss_family == AF_UNIX)
		return 1;
	memset(&a, 0, sizeof(a));
	if (ss->ss_family == AF_INET) {
		a.s6_addr[10] = a.s6_addr[11] = 0xff;
		memcpy(&a.s6_addr[12],
		    &((const struct sockaddr_in *)(const void *)ss)->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6)
		a = ((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr;
	else
		return 0;
	for (i = 0; i < srv.nallow; i++)
		if (memcmp(&a, &srv.allow[i], sizeof(a)) == 0)
			return 1;
	return 0;
}

static void
peer_name(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
	const void	*a = NULL;

	if (ss->ss_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)ss)->sin_addr;
	else if (ss->ss_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr;
	if (a == NULL || inet_ntop(ss->ss_family, a, out,
	    (socklen_t)outsz) == NULL)
		snprintf(out, outsz, "?");
}

/* Warn when a TCP listener is reachable beyond loopback with no allow-list:
 * whoever can connect chooses REMOTE_ADDR and reaches internal routes. */
static void
listen_check_exposed(int fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	const struct in6_addr	*a6;
	char			 name[INET6_ADDRSTRLEN];
	int			 loop;

	if (srv.nallow > 0 || getsockname(fd, (struct sockaddr *)&ss,
	    &len) == -1)
		return;
	if (ss.ss_family == AF_INET)
		loop = (ntohl(((struct sockaddr_in *)(void *)&ss)->sin_addr.
		    s_addr) >> 24) == 127;
	else if (ss.ss_family == AF_INET6) {
		a6 = &((struct sockaddr_in6 *)(void *)&ss)->sin6_addr;
		loop = IN6_IS_ADDR_LOOPBACK(a6) ||
		    (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
	} else
		return;
	if (!loop) {
		peer_name(&ss, name, sizeof(name));
		log_warn(NULL, "listen: %s is reachable beyond loopback and "
		    "FCGI_WEB_SERVER_ADDRS is not set", name);
	}
}

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

/* REMOTE_ADDR, or the trusted proxy's header when the peer is trusted. */
static void
client_ip(struct request *r, FCGX_Request *fr)
{
	const char	*peer = FCGX_GetParam("REMOTE_ADDR", fr->envp);
	const char	*v = NULL;
	char		 param[96], *p;
	size_t		 n;

	snprintf(r->ip, sizeof(r->ip), "%s", peer != NULL ? peer : "");
	if (peer == NULL || cfg->real_ip_header[0] == '\0' ||
	    !ip_in_list(peer, cfg->trusted_proxies))
		return;
	snprintf(param, sizeof(param), "HTTP_%s", cfg->real_ip_header);
	for (p = param; *p != '\0'; p++)
		*p = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
	if ((v = FCGX_GetParam(param, fr->envp)) == NULL)
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

	if (given != NULL && log_reqid_ok(given)) {
		snprintf(out, FA_REQID_MAX + 1, "%s", given);
		return;
	}
	if (thread == 0)
		thread = __atomic_add_fetch(&srv.nthreads, 1, __ATOMIC_RELAXED);
	snprintf(out, FA_REQID_MAX + 1, "%s-%x-%llx", srv.id_prefix, thread,
	    ++count);
}

/* Read the body up to max_body; past it, discard without keeping it. */
static void
read_body(struct request *r, FCGX_Request *fr)
{
	const char	*cl = FCGX_GetParam("CONTENT_LENGTH", fr->envp);
	char		 sink[8192];
	long long	 len = 0;
	long		 left;
	int		 n;

	if (cl != NULL && *cl != '\0')
		len = strtoll(cl, NULL, 10);
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
static int
request_fill(struct request *r, FCGX_Request *fr)
{
	const char	*m, *uri, *role;

	r->fcgx = fr;
	r->start_us = now_us();
	request_id(r->id, FCGX_GetParam("REQUEST_ID", fr->envp));
	m = FCGX_GetParam("REQUEST_METHOD", fr->envp);
	r->method_name = m != NULL ? m : "GET";
	r->method = route_method(r->method_name);
	r->content_type = FCGX_GetParam("CONTENT_TYPE", fr->envp);
	r->authorization = FCGX_GetParam("HTTP_AUTHORIZATION", fr->envp);
	r->user_agent = FCGX_GetParam("HTTP_USER_AGENT", fr->envp);
	r->required_role = FCGX_GetParam("AUTH_REQUIRED_ROLE", fr->envp);
	r->required_aal = FCGX_GetParam("AUTH_REQUIRED_AAL", fr->envp);
	r->required_verified = FCGX_GetParam("AUTH_REQUIRED_VERIFIED",
	    fr->envp);
	role = FCGX_GetParam("FCGI_ROLE", fr->envp);
	r->authorizer = role != NULL && strcmp(role, "AUTHORIZER") == 0;
	client_ip(r, fr);
	if ((uri = FCGX_GetParam("REQUEST_URI", fr->envp)) == NULL &&
	    (uri = FCGX_GetParam("DOCUMENT_URI", fr->envp)) == NULL)
		uri = "/";
	read_body(r, fr);
	if (r->authorizer) {
		/* the URL is the client's: never policy input */
		r->query = xstrdup("");
		r->path = xstrdup("/verify");
		return 0;
	}
	return request_split_uri(uri, cfg->prefix, &r->path, &r->query);
}

/* libfcgi's own printf lacks %zu and friends: format here, write raw. */
static void
out_printf(FCGX_Stream *out, const char *fmt, ...)
{
	char	 buf[SERVER_HEADER_MAX];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		FCGX_PutStr(buf, n < (int)sizeof(buf) ? n :
		    (int)sizeof(buf) - 1, out);
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

static void
response_write(struct request *r, FCGX_Request *fr)
{
	size_t	 i;
	int	 status = r->status != 0 ? r->status : 500;

	out_printf(fr->out, "Status: %d %s\r\n", status,
	    status_reason(status));
	out_printf(fr->out, "X-Request-Id: %s\r\n", r->id);
	for (i = 0; i < r->nheaders; i++)
		out_printf(fr->out, "%s: %s\r\n", r->headers[i].name,
		    r->headers[i].value);
	if (r->out != NULL) {
		for (i = 0; i < r->nheaders; i++)
			if (strcasecmp(r->headers[i].name, "Content-Type") == 0)
				break;
		if (i == r->nheaders)	/* a handler may set its own */
			out_printf(fr->out, "Content-Type: application/json\r\n");
		out_printf(fr->out, "Content-Length: %zu\r\n\r\n", r->outlen);
		if (r->method != METHOD_HEAD)
			FCGX_PutStr(r->out, (int)r->outlen, fr->out);
	} else
		out_printf(fr->out, "Content-Length: 0\r\n\r\n");
}


static void
worker_set(struct worker *w, enum worker_state s, long long deadline)
{
	pthread_mutex_lock(&srv.lock);
	w->state = s;
	w->deadline = deadline;
	pthread_mutex_unlock(&srv.lock);
}

static long long
request_deadline(void)
{
	return mono_ms() + srv.request_timeout * 1000LL;
}

/*
 * Answer one request.  -1 when its bytes did not all arrive (the deadline
 * interrupted a read, or the peer broke off): the connection is closed
 * without an answer, as the contract wants.
 */
static int
server_handle(struct worker *w, FCGX_Request *fr)
{
	struct request	 r;
	struct log_access a;
	long		 usec;
	int		 ours;

	memset(&r, 0, sizeof(r));
	ours = request_fill(&r, fr);
	if (FCGX_GetError(fr->in) != 0) {
		log_warn(r.id, "request not complete within request_timeout "
		    "or broken off: connection closed");
		request_free(&r);
		FCGX_Free(fr, 1);
		return -1;
	}
	worker_set(w, WORKER_BUSY, 0);
	if (ours == -1)
		resp_error(&r, ERR_NOT_FOUND, NULL);
	else if (r.body_too_large && r.method != METHOD_GET &&
	    !r.authorizer) {
		route_label(&r);
		resp_error(&r, ERR_TOO_LARGE, NULL);
	} else
		route_dispatch(&r);
	if (r.status == 0)
		resp_error(&r, ERR_INTERNAL, NULL);
	worker_set(w, WORKER_IO, request_deadline());
	response_write(&r, fr);
	usec = (long)(now_us() - r.start_us);
	metrics_request(r.authorizer ? "/verify" : r.route, r.status, usec);
	memset(&a, 0, sizeof(a));
	a.reqid = r.id;
	a.method = r.method_name;
	a.route = r.authorizer ? "/verify" : r.route;
	a.status = r.status;
	a.usec = usec;
	a.ip = r.ip;
	a.user_id = r.user_id;
	a.bytes = r.out != NULL ? r.outlen : 0;
	a.user_agent = r.user_agent;
	log_request(&a);
	request_free(&r);
	return 0;
}

/*
 * Close as libfcgi's OS_Close does (shut our side, read to the peer's EOF,
 * so unread bytes do not become a RST that loses the answer), but never
 * past the deadline: libfcgi would linger as long as the peer trickles.
 */
static void
conn_close(FCGX_Request *fr, long long deadline)
{
	struct pollfd	 p = { .fd = fr->ipcFd, .events = POLLIN };
	char		 sink[1024];
	long long	 left;

	if (shutdown(p.fd, SHUT_WR) == 0)
		while ((left = deadline - mono_ms()) > 0 &&
		    poll(&p, 1, (int)(left < SERVER_LINGER_MS ? left :
		    SERVER_LINGER_MS)) > 0 && read(p.fd, sink, sizeof(sink)) > 0)
			;
	close(p.fd);
	fr->ipcFd = -1;
	fr->detached = 0;
}

/* Flush the answer; keep the connection if the peer asked, else close it. */
static void
worker_finish(struct worker *w, FCGX_Request *fr)
{
	int	 keep = fr->keepConnection;

	fr->keepConnection = 1;	/* so that we close it, not libfcgi */
	FCGX_Finish_r(fr);	/* a stream error still closes it there */
	fr->keepConnection = keep;
	if (fr->ipcFd >= 0 && !keep)
		conn_close(fr, w->deadline);
}

/* 1 when a kept connection has a request (or news) for us; 0 when it idled
 * past read_timeout or we are stopping. */
static int
conn_wait(int fd)
{
	struct pollfd	 p[2] = {
		{ .fd = fd, .events = POLLIN },
		{ .fd = srv.wake[0], .events = POLLIN }
	};
	int		 ms = srv.read_timeout > 0 ?
			    (int)(srv.read_timeout * 1000) : -1, n;

	while ((n = poll(p, 2, ms)) == -1 && errno == EINTR)
		;
	return n > 0 && p[1].revents == 0 && p[0].revents != 0;
}

/* A connection from an allowed peer, or -1 when stopping.  One worker at a
 * time polls the listener, so a connection wakes one thread, not all. */
static int
server_accept(void)
{
	struct pollfd		 p[2] = {
		{ .fd = srv.listen_fd, .events = POLLIN },
		{ .fd = srv.wake[0], .events = POLLIN }
	};
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	char			 peer[INET6_ADDRSTRLEN];
	int			 fd = -1, one = 1;

	pthread_mutex_lock(&srv.accept_lock);
	for (;;) {
		if (poll(p, 2, -1) == -1) {
			if (errno != EINTR)
				usleep(SERVER_ACCEPT_RETRY_MS * 1000);
			continue;
		}
		if (p[1].revents != 0)
			break;
		len = sizeof(ss);
		fd = accept4(srv.listen_fd, (struct sockaddr *)&ss, &len,
		    SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				log_warn(NULL, "accept: %s", strerror(errno));
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				usleep(SERVER_ACCEPT_RETRY_MS * 1000);
			continue;
		}
		if (peer_allowed(&ss))
			break;
		peer_name(&ss, peer, sizeof(peer));
		log_warn(NULL, "connection from %s refused: not in "
		    "FCGI_WEB_SERVER_ADDRS", peer);
		close(fd);
		fd = -1;
	}
	pthread_mutex_unlock(&srv.accept_lock);
	if (fd != -1 && ss.ss_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	return fd;
}

static void
wake_handler(int sig)
{
	(void)sig;	/* only there to make a blocking read() fail: EINTR */
}

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	FCGX_Request	 fr;
	sigset_t	 wake;
	int		 fd, rc;

	sigemptyset(&wake);
	sigaddset(&wake, SERVER_SIG_WAKE);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
	/* no listening socket: libfcgi never accepts, we hand it each one */
	FCGX_InitRequest(&fr, -1, 0);
	for (;;) {
		worker_set(w, WORKER_IDLE, 0);
		if (fr.ipcFd >= 0 && !conn_wait(fr.ipcFd))
			conn_close(&fr, 0);
		if (fr.ipcFd < 0) {
			if ((fd = server_accept()) == -1)
				break;
			fr.ipcFd = fd;
			fr.keepConnection = 1;	/* FCGX_Accept_r must not
						   close it first */
			fr.detached = 1;	/* libfcgi closes it at once */
		}
		worker_set(w, WORKER_IO, request_deadline());
		if (FCGX_Accept_r(&fr) < 0) {
			/* libfcgi closed the connection: it broke off, or
			 * the deadline interrupted its read */
			if (mono_ms() >= w->deadline)
				log_warn(NULL, "request not complete within "
				    "request_timeout: connection closed");
			continue;
		}
		deadline_start();
		reload_hold(w - srv.workers);
		rc = server_handle(w, &fr);
		reload_release(w - srv.workers);
		if (rc == 0)
			worker_finish(w, &fr);
	}
	FCGX_Free(&fr, 0);
	pthread_mutex_lock(&srv.lock);
	w->done = 1;
	srv.running--;
	pthread_cond_broadcast(&srv.cond);
	pthread_mutex_unlock(&srv.lock);
	return NULL;
}

/*
 * Interrupt the reads and writes of workers past their deadline; srv.lock
 * held.  Sent again at every tick: a signal that lands between two system
 * calls is lost, the next one is not.  A worker that left WORKER_IO took
 * srv.lock after the signal was sent, and so has taken it already.
 */
static void
server_watch(void)
{
	long long	 now = mono_ms();
	long		 i;

	for (i = 0; i < srv.nworkers; i++)
		if (!srv.workers[i].done &&
		    srv.workers[i].state == WORKER_IO &&
		    now >= srv.workers[i].deadline)
			pthread_kill(srv.workers[i].thread, SERVER_SIG_WAKE);
}

/* Stop accepting and wake idle workers; no descriptor of theirs touched. */
static void
server_stop(void)
{
	if (write(srv.wake[1], "x", 1) != 1)
		log_error(NULL, "wake pipe: %s", strerror(errno));
	shutdown(srv.listen_fd, SHUT_RDWR);
}

static void
cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, long ms)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(cv, mu, &ts);
}

/* Let busy workers finish; -1 if some are still busy after the drain. */
static int
server_drain(void)
{
	long long	 deadline = mono_ms() + SERVER_DRAIN_SECONDS * 1000LL;
	long		 i, left;

	pthread_mutex_lock(&srv.lock);
	while (srv.running > 0 && mono_ms() < deadline) {
		server_watch();
		cond_wait_ms(&srv.cond, &srv.lock, SERVER_TICK_MS);
	}
	left = srv.running;
	pthread_mutex_unlock(&srv.lock);
	if (left > 0) {
		log_error(NULL, "%ld workers still busy after %d s", left,
		    SERVER_DRAIN_SECONDS);
		return -1;
	}
	for (i = 0; i < srv.nworkers; i++)
		pthread_join(srv.workers[i].thread, NULL);
	return 0;
}

/*
 * Block the signals the main thread takes with sigtimedwait().  Called
 * before any thread starts, so every thread inherits the mask; workers
 * unblock SERVER_SIG_WAKE alone.
 */
void
server_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SERVER_SIG_WAKE);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Listener, allow-list, wake pipe and the wake signal's handler. */
static int
server_setup(const char *listen, char **errstr)
{
	struct sigaction	 sa;
	pthread_condattr_t	 ca;

	if (FCGX_Init() != 0) {
		xasprintf(errstr, "FCGX_Init failed");
		return -1;
	}
	if (allow_parse(getenv("FCGI_WEB_SERVER_ADDRS"), errstr) == -1)
		return -1;
	if ((srv.listen_fd = server_listen(listen, errstr)) == -1)
		return -1;
	listen_check_exposed(srv.listen_fd);
	if (fcntl(srv.listen_fd, F_SETFL, fcntl(srv.listen_fd, F_GETFL) |
	    O_NONBLOCK) == -1 || pipe2(srv.wake, O_CLOEXEC) == -1) {
		xasprintf(errstr, "listen: %s", strerror(errno));
		return -1;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&srv.cond, &ca);
	pthread_condattr_destroy(&ca);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wake_handler;	/* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	sigaction(SERVER_SIG_WAKE, &sa, NULL);
	/*
	 * Accepted connections inherit the listening socket's receive
	 * timeout: a peer that stalls mid-request gives its worker back
	 * within read_timeout even without the deadline watch.
	 */
	if (cfg->read_timeout > 0) {
		struct timeval	 tv = { .tv_sec = cfg->read_timeout };

		if (setsockopt(srv.listen_fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
		    sizeof(tv)) == -1)
			log_warn(NULL, "read_timeout: %s", strerror(errno));
	}
	return 0;
}

int
server_run(const struct config *c, const char *listen_override,
    const char *config_path)
{
	pthread_attr_t	 attr;
	sigset_t	 set;
	struct timespec	 tick = { .tv_sec = SERVER_TICK_MS / 1000,
			    .tv_nsec = (SERVER_TICK_MS % 1000) * 1000000L };
	unsigned char	 prefix[SERVER_ID_PREFIX];
	char		*err = NULL;
	long		 i;
	int		 sig;

	server_signals(&set);
	if (server_setup(listen_override != NULL ? listen_override :
	    c->listen, &err) == -1) {
		log_error(NULL, "%s", err);
		free(err);
		return -1;
	}
	srv.read_timeout = c->read_timeout;
	srv.request_timeout = c->request_timeout;
	randombytes_buf(prefix, sizeof(prefix));
	sodium_bin2hex(srv.id_prefix, sizeof(srv.id_prefix), prefix,
	    sizeof(prefix));
	srv.nworkers = c->workers;
	srv.workers = xcalloc((size_t)srv.nworkers, sizeof(*srv.workers));
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, SERVER_STACK_SIZE);
	pthread_mutex_lock(&srv.lock);
	for (i = 0; i < srv.nworkers; i++) {
		if (pthread_create(&srv.workers[i].thread, &attr, worker_main,
		    &srv.workers[i]) != 0) {
			log_error(NULL, "cannot start worker %ld", i);
			srv.nworkers = i;
			break;
		}
		srv.running++;
	}
	pthread_mutex_unlock(&srv.lock);
	pthread_attr_destroy(&attr);
	log_info(NULL, "fcgi-auth %s serving with %ld workers", VERSION,
	    srv.nworkers);

	for (;;) {
		sig = sigtimedwait(&set, NULL, &tick);
		pthread_mutex_lock(&srv.lock);
		server_watch();
		pthread_mutex_unlock(&srv.lock);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP)
			(void)reload_run(config_path);
		reload_reap();
	}
	log_info(NULL, "signal %d: draining", sig);
	server_stop();
	if (server_drain() == -1) {
		/* they still use cfg, the pools and the caches: never free
		 * those under them */
		if (srv.unix_path != NULL)
			unlink(srv.unix_path);
		log_error(NULL, "exiting without cleanup");
		_exit(SERVER_EXIT_STUCK);
	}
	if (srv.unix_path != NULL)
		unlink(srv.unix_path);
	free(srv.unix_path);
	free(srv.workers);
	close(srv.wake[0]);
	close(srv.wake[1]);
	close(srv.listen_fd);
	return 0;
}
