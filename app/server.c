/*
 * The FastCGI server: the listening socket (unix path, host:port, fd 0 or
 * systemd's LISTEN_FDS), a pool of worker threads in FCGX_Accept_r, and the
 * signals.  libfcgi pins a thread to each kept-alive connection, so the
 * worker count must exceed the connections nginx keeps alive.
 *
 * Signals are blocked in every thread and taken by one thread with
 * sigwait(): libfcgi's own SIGTERM handler only sets a flag while threads
 * sleep in accept() or read().  On SIGTERM/SIGINT we stop accepting (shut
 * the listening socket down), wake idle workers parked on kept-alive
 * connections, let busy ones finish their request, and return.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
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
#define SERVER_DRAIN_STEP_MS	100
#define SERVER_ACCEPT_RETRY_MS	10
#define SERVER_DISCARD_MAX	(64L * 1024 * 1024)
#define SD_LISTEN_FDS_START	3
#define SERVER_HEADER_MAX	(FA_TOKEN_MAX + 512)

enum worker_state {
	WORKER_IDLE,	/* in FCGX_Accept_r: waiting for a request */
	WORKER_BUSY	/* handling one */
};

struct worker {
	pthread_t		 thread;
	enum worker_state	 state;
	int			 fd;	/* connection fd while known, else -1 */
	int			 done;
};

static struct {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	struct worker	*workers;
	long		 nworkers;
	long		 running;
	int		 listen_fd;
	int		 stopping;
	char		*unix_path;	/* to unlink on exit */
} srv = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.listen_fd = -1,
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

static enum method
method_parse(const char *m)
{
	static const char *const names[] = {
		"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"
	};
	size_t	 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(m, names[i]) == 0)
			return (enum method)i;
	return METHOD_OTHER;
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

static void
request_id(char out[FA_REQID_LEN + 1])
{
	unsigned char	 b[FA_REQID_LEN / 2];

	randombytes_buf(b, sizeof(b));
	sodium_bin2hex(out, FA_REQID_LEN + 1, b, sizeof(b));
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
	const char	*m, *uri, *q, *role;
	size_t		 plen = strlen(cfg->prefix), n;

	r->fcgx = fr;
	r->start_us = now_us();
	request_id(r->id);
	m = FCGX_GetParam("REQUEST_METHOD", fr->envp);
	r->method_name = m != NULL ? m : "GET";
	r->method = method_parse(r->method_name);
	r->content_type = FCGX_GetParam("CONTENT_TYPE", fr->envp);
	r->authorization = FCGX_GetParam("HTTP_AUTHORIZATION", fr->envp);
	r->user_agent = FCGX_GetParam("HTTP_USER_AGENT", fr->envp);
	r->required_role = FCGX_GetParam("AUTH_REQUIRED_ROLE", fr->envp);
	r->required_aal = FCGX_GetParam("AUTH_REQUIRED_AAL", fr->envp);
	role = FCGX_GetParam("FCGI_ROLE", fr->envp);
	r->authorizer = role != NULL && strcmp(role, "AUTHORIZER") == 0;
	client_ip(r, fr);
	if ((uri = FCGX_GetParam("REQUEST_URI", fr->envp)) == NULL &&
	    (uri = FCGX_GetParam("DOCUMENT_URI", fr->envp)) == NULL)
		uri = "/";
	n = strcspn(uri, "?#");
	read_body(r, fr);
	if (r->authorizer) {
		/* the URL is the client's: never policy input */
		r->query = xstrdup("");
		r->path = xstrdup("/verify");
		return 0;
	}
	q = uri[n] == '?' ? uri + n + 1 : "";
	r->query = xstrndup(q, strcspn(q, "#"));
	/* strip a trailing slash of the prefix ("/auth/" == "/auth") */
	while (plen > 1 && cfg->prefix[plen - 1] == '/')
		plen--;
	if (n < plen || strncmp(uri, cfg->prefix, plen) != 0 ||
	    (n > plen && uri[plen] != '/')) {
		r->path = xstrndup(uri, n);
		return -1;
	}
	r->path = xstrndup(uri + plen, n - plen);
	return 0;
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
server_handle(FCGX_Request *fr)
{
	struct request	 r;
	long		 usec;

	memset(&r, 0, sizeof(r));
	if (request_fill(&r, fr) == -1)
		resp_error(&r, ERR_NOT_FOUND, NULL);
	else if (r.body_too_large && r.method != METHOD_GET &&
	    !r.authorizer) {
		route_label(&r);
		resp_error(&r, ERR_TOO_LARGE, NULL);
	} else
		route_dispatch(&r);
	if (r.status == 0)
		resp_error(&r, ERR_INTERNAL, NULL);
	response_write(&r, fr);
	usec = (long)(now_us() - r.start_us);
	metrics_request(r.authorizer ? "/verify" : r.route, r.status, usec);
	log_request(r.id, r.method_name, r.path != NULL ? r.path : "-",
	    r.status, usec);
	request_free(&r);
}

static void
worker_set(struct worker *w, enum worker_state s, int fd)
{
	pthread_mutex_lock(&srv.lock);
	w->state = s;
	w->fd = fd;
	pthread_mutex_unlock(&srv.lock);
}

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	FCGX_Request	 fr;
	int		 stop;

	FCGX_InitRequest(&fr, srv.listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
	for (;;) {
		pthread_mutex_lock(&srv.lock);
		stop = srv.stopping;
		w->state = WORKER_IDLE;
		w->fd = fr.ipcFd;
		pthread_mutex_unlock(&srv.lock);
		if (stop)
			break;
		if (FCGX_Accept_r(&fr) < 0) {
			/* the read timeout, a passing error, or stopping:
			 * the top of the loop tells which */
			usleep(SERVER_ACCEPT_RETRY_MS * 1000);
			continue;
		}
		worker_set(w, WORKER_BUSY, fr.ipcFd);
		server_handle(&fr);
		FCGX_Finish_r(&fr);
	}
	FCGX_Free(&fr, 1);
	pthread_mutex_lock(&srv.lock);
	w->fd = -1;
	w->done = 1;
	srv.running--;
	pthread_cond_broadcast(&srv.cond);
	pthread_mutex_unlock(&srv.lock);
	return NULL;
}

/* Wake the workers parked on a kept-alive connection; srv.lock held. */
static void
server_wake_idle(void)
{
	long	 i;

	for (i = 0; i < srv.nworkers; i++)
		if (!srv.workers[i].done &&
		    srv.workers[i].state == WORKER_IDLE &&
		    srv.workers[i].fd >= 0)
			shutdown(srv.workers[i].fd, SHUT_RDWR);
}

/* Stop accepting: the listening socket's accept() fails from now on. */
static void
server_stop(void)
{
	pthread_mutex_lock(&srv.lock);
	srv.stopping = 1;
	FCGX_ShutdownPending();
	shutdown(srv.listen_fd, SHUT_RDWR);
	server_wake_idle();
	pthread_mutex_unlock(&srv.lock);
}

/*
 * Let busy workers finish their request, waking those that went idle on a
 * kept connection meanwhile; -1 if some are still busy after the drain time.
 */
static int
server_drain(void)
{
	long long	 deadline = now_ms() + SERVER_DRAIN_SECONDS * 1000LL;
	long long	 t;
	struct timespec	 ts;
	long		 i, left;

	pthread_mutex_lock(&srv.lock);
	while (srv.running > 0 && (t = now_ms()) < deadline) {
		server_wake_idle();
		t += SERVER_DRAIN_STEP_MS;
		ts.tv_sec = (time_t)(t / 1000);
		ts.tv_nsec = (long)(t % 1000) * 1000000L;
		pthread_cond_timedwait(&srv.cond, &srv.lock, &ts);
	}
	left = srv.running;
	pthread_mutex_unlock(&srv.lock);
	if (left > 0) {
		log_warn(NULL, "%ld workers still busy after %d s", left,
		    SERVER_DRAIN_SECONDS);
		return -1;
	}
	for (i = 0; i < srv.nworkers; i++)
		pthread_join(srv.workers[i].thread, NULL);
	return 0;
}

/*
 * Block the signals the main thread takes with sigwait().  Called before
 * any thread starts, so every thread inherits the mask: one that did not
 * would take SIGTERM into libfcgi's handler, which only sets a flag.
 */
void
server_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int
server_run(const struct config *c, const char *listen_override)
{
	pthread_attr_t	 attr;
	sigset_t	 set;
	char		*err = NULL;
	long		 i;
	int		 sig, rc = -1;

	(void)c;
	server_signals(&set);

	if (FCGX_Init() != 0) {
		log_error(NULL, "FCGX_Init failed");
		return -1;
	}
	srv.listen_fd = server_listen(listen_override != NULL ?
	    listen_override : cfg->listen, &err);
	if (srv.listen_fd == -1) {
		log_error(NULL, "%s", err);
		free(err);
		return -1;
	}
	/*
	 * Accepted connections inherit the listening socket's receive
	 * timeout: a peer that stalls mid-request (or a kept-alive connection
	 * idle past it) gives its worker back instead of holding it forever.
	 */
	if (cfg->read_timeout > 0) {
		struct timeval	 tv = { .tv_sec = cfg->read_timeout };

		if (setsockopt(srv.listen_fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
		    sizeof(tv)) == -1)
			log_warn(NULL, "read_timeout: %s", strerror(errno));
	}
	srv.nworkers = cfg->workers;
	srv.workers = xcalloc((size_t)srv.nworkers, sizeof(*srv.workers));
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, SERVER_STACK_SIZE);
	for (i = 0; i < srv.nworkers; i++) {
		srv.workers[i].fd = -1;
		if (pthread_create(&srv.workers[i].thread, &attr, worker_main,
		    &srv.workers[i]) != 0) {
			log_error(NULL, "cannot start worker %ld", i);
			srv.nworkers = i;
			break;
		}
		srv.running++;
	}
	pthread_attr_destroy(&attr);
	log_info(NULL, "fcgi-auth %s serving with %ld workers", VERSION,
	    srv.nworkers);

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT)
			break;
		/* SIGHUP, SIGUSR1: nothing to do yet */
	}
	log_info(NULL, "signal %d: draining", sig);
	server_stop();
	rc = server_drain();
	if (srv.unix_path != NULL)
		unlink(srv.unix_path);
	free(srv.unix_path);
	if (rc == 0)
		free(srv.workers);
	close(srv.listen_fd);
	return 0;
}
