/*
 * The FastCGI server: a pool of worker threads, the accept loop, and the
 * signals (the listening socket: server_listen.c; one request's fill and
 * answer: server_request.c).
 * libfcgi pins a thread to each kept-alive connection, so the worker count
 * must exceed the connections nginx keeps alive.
 *
 * Workers accept connections themselves (one at a time, polling the
 * listening socket and a wake pipe) and hand each to libfcgi, which never
 * accepts nor owns a descriptor it did not get from us.  That lets us
 * check FCGI_WEB_SERVER_ADDRS for every peer, wake idle workers at
 * shutdown (through the pipe, or SERVER_SIG_WAKE for those waiting on a
 * kept connection), and bound a request in time: from its first
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
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "extern.h"
#include "server_int.h"

enum worker_state {
	WORKER_ACCEPT,	/* waiting for a connection */
	WORKER_IDLE,	/* waiting for a kept connection's next request */
	WORKER_IO,	/* taking a request or giving its answer: deadline */
	WORKER_BUSY	/* handling one */
};

struct worker {
	pthread_t		 thread;
	pthread_mutex_t		 lock;		/* state and deadline */
	enum worker_state	 state;
	long long		 deadline;	/* mono_ms, in WORKER_IO */
	long long		 since;		/* mono_ms, in WORKER_IDLE */
	int			 kicked;	/* sent SERVER_SIG_WAKE while idle */
	int			 shed;		/* atomic: give up the kept one */
	int			 done;		/* srv.lock */
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
	int		 stopping;	/* atomic: set with wake */
	/* restart-only, copied at start: read between requests */
	long		 read_timeout;
	long		 request_timeout;
} srv = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.accept_lock = PTHREAD_MUTEX_INITIALIZER,
	.listen_fd = -1,
	.wake = { -1, -1 },
};


static void
worker_set(struct worker *w, enum worker_state s, long long deadline)
{
	int	 kicked;

	/* its own lock, not srv.lock: four times a request in every worker */
	pthread_mutex_lock(&w->lock);
	w->state = s;
	w->deadline = deadline;
	w->since = s == WORKER_IDLE ? mono_ms() : 0;
	kicked = w->kicked;
	w->kicked = 0;
	__atomic_store_n(&w->shed, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&w->lock);
	/*
	 * A wake sent while it was idle (stopping, or shedding) but after its
	 * request arrived is taken now, by a system call that cannot block,
	 * and not by the read of that request, which it would break.
	 */
	if (kicked)
		(void)getppid();
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
	ours = server_request_fill(&r, fr);
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
	server_response_write(&r, fr);
	usec = (long)(now_us() - r.start_us);
	metrics_request(r.route_id, r.status, usec);
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

/*
 * 1 when a kept connection has a request (or news) for us; 0 when it idled
 * past read_timeout (the socket's SO_RCVTIMEO) or we are stopping.  A
 * blocking one-byte peek, not a poll of the connection and the wake pipe:
 * one wait queue instead of two on every request.  At shutdown the main
 * thread interrupts it with SERVER_SIG_WAKE (server_watch).
 */
static int
conn_wait(struct worker *w, int fd)
{
	char	 c;
	ssize_t	 n;

	do {
		if (__atomic_load_n(&srv.stopping, __ATOMIC_ACQUIRE) ||
		    __atomic_load_n(&w->shed, __ATOMIC_ACQUIRE))
			return 0;
	} while ((n = recv(fd, &c, 1, MSG_PEEK)) == -1 && errno == EINTR);
	if (n >= 0)
		return 1;	/* a byte, or EOF that libfcgi then sees */
	return errno != EAGAIN && errno != EWOULDBLOCK;
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
		if (server_peer_allowed(&ss))
			break;
		server_peer_name(&ss, peer, sizeof(peer));
		log_warn(NULL, "connection from %s refused: not in "
		    "FCGI_WEB_SERVER_ADDRS", peer);
		close(fd);
		fd = -1;
	}
	pthread_mutex_unlock(&srv.accept_lock);
	if (fd == -1)
		return -1;
	if (ss.ss_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	else if (srv.read_timeout > 0) {
		/* TCP connections inherit the listener's; AF_UNIX ones don't */
		struct timeval	 tv = { .tv_sec = srv.read_timeout };

		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
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
		if (fr.ipcFd >= 0) {
			worker_set(w, WORKER_IDLE, 0);
			if (!conn_wait(w, fr.ipcFd))
				conn_close(&fr, 0);
		}
		if (fr.ipcFd < 0) {
			worker_set(w, WORKER_ACCEPT, 0);
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

/* 1 when a connection waits to be accepted. */
static int
server_backlog(void)
{
	struct pollfd	 p = { .fd = srv.listen_fd, .events = POLLIN };

	return srv.listen_fd >= 0 && poll(&p, 1, 0) == 1 &&
	    (p.revents & POLLIN);
}

/*
 * Every worker is held by a connection and another waits in the backlog:
 * the one kept idle the longest gives its connection up, or the waiting one
 * would wait until the web server times it out (its kept connections can
 * outnumber the workers: nginx keeps up to `keepalive` idle ones per
 * worker process besides those in use).  One a tick; srv.lock held.
 */
static void
server_shed(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	if (w->state == WORKER_IDLE) {
		__atomic_store_n(&w->shed, 1, __ATOMIC_RELEASE);
		w->kicked = 1;
		pthread_kill(w->thread, SERVER_SIG_WAKE);
		log_info(NULL, "every worker holds a connection and another "
		    "waits: the one kept idle longest is closed (workers fewer "
		    "than the web server's connections; see workers)");
	}
	pthread_mutex_unlock(&w->lock);
}

/*
 * Interrupt the reads and writes of workers past their deadline, and once
 * stopping the wait of idle ones on a kept connection; srv.lock held.
 * Sent again at every tick: a signal that lands between two system calls
 * is lost, the next one is not.  A worker that left WORKER_IO took its
 * lock after the signal was sent, and so has taken it already.  And shed
 * a kept connection when one waits and no worker is free.
 */
static long
server_watch(void)
{
	struct worker	*w, *oldest = NULL;
	long long	 now = mono_ms(), oldest_since = 0;
	long		 i, active = 0, accepting = 0;

	for (i = 0; i < srv.nworkers; i++) {
		w = &srv.workers[i];
		if (w->done)
			continue;
		pthread_mutex_lock(&w->lock);
		if (w->state == WORKER_IO || w->state == WORKER_BUSY)
			active++;
		if (w->state == WORKER_ACCEPT)
			accepting++;
		if (w->state == WORKER_IDLE && (oldest == NULL ||
		    w->since < oldest_since)) {
			oldest = w;
			oldest_since = w->since;
		}
		if (w->state == WORKER_IO && now >= w->deadline)
			pthread_kill(w->thread, SERVER_SIG_WAKE);
		else if (w->state == WORKER_IDLE && srv.stopping) {
			w->kicked = 1;
			pthread_kill(w->thread, SERVER_SIG_WAKE);
		}
		pthread_mutex_unlock(&w->lock);
	}
	if (!srv.stopping && accepting == 0 && oldest != NULL &&
	    server_backlog())
		server_shed(oldest);
	return active;
}

/*
 * Hand the memory freed after a burst back to the system once every worker
 * has been idle for SERVER_TRIM_IDLE_MS (glibc keeps it in its arenas
 * otherwise, and idle RSS creeps up load after load); once per idle spell.
 */
static void
server_trim(long active)
{
	static long long	 idle_since;
	static int		 trimmed = 1;
	long long		 now = mono_ms();

	if (active > 0) {
		idle_since = 0;
		trimmed = 0;
		return;
	}
	if (idle_since == 0)
		idle_since = now;
	if (!trimmed && now - idle_since >= SERVER_TRIM_IDLE_MS) {
		(void)malloc_trim(0);
		trimmed = 1;
	}
}

/* Stop accepting and wake idle workers (those waiting on a kept connection
 * through server_watch's signal); no descriptor of theirs touched. */
static void
server_stop(void)
{
	__atomic_store_n(&srv.stopping, 1, __ATOMIC_RELEASE);
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
	if ((srv.listen_fd = server_listen_open(listen, errstr)) == -1)
		return -1;
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
    const char *conf_path)
{
	pthread_attr_t	 attr;
	sigset_t	 set;
	struct timespec	 tick = { .tv_sec = SERVER_TICK_MS / 1000,
			    .tv_nsec = (SERVER_TICK_MS % 1000) * 1000000L };
	char		*err = NULL;
	long		 i, active;
	int		 sig;

	server_signals(&set);
	/* glibc's default is 8 arenas a core: 64 workers on a big machine
	 * hold 64 arenas of memory after a burst.  Not fewer than 16: with 4,
	 * a verify spent 15-20 % more CPU (16 workers to an arena lock, for
	 * libfcgi's 8 KiB buffers); idle RSS is malloc_trim's either way */
	(void)mallopt(M_ARENA_MAX, SERVER_ARENA_MAX);
	/* glibc raises the threshold past each large block freed, so big
	 * blocks then stay in the heap for good: keep it where it starts */
	(void)mallopt(M_MMAP_THRESHOLD, SERVER_MMAP_MIN);
	if (server_setup(listen_override != NULL ? listen_override :
	    c->listen, &err) == -1) {
		log_error(NULL, "%s", err);
		free(err);
		return -1;
	}
	srv.read_timeout = c->read_timeout;
	srv.request_timeout = c->request_timeout;
	server_reqid_init();
	if (auditq_start() == -1)
		log_warn(NULL, "no group commit: refreshes commit one by one");
	if (log_flush_start() == -1)
		log_warn(NULL, "cannot start the log flusher: access lines "
		    "are written one by one");
	srv.nworkers = c->workers;
	srv.workers = xcalloc((size_t)srv.nworkers, sizeof(*srv.workers));
	for (i = 0; i < srv.nworkers; i++)
		pthread_mutex_init(&srv.workers[i].lock, NULL);
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
		active = server_watch();
		pthread_mutex_unlock(&srv.lock);
		server_trim(active);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP)
			(void)reload_run(conf_path);
		reload_reap();
	}
	log_info(NULL, "signal %d: draining", sig);
	server_stop();
	if (server_drain() == -1) {
		/* they still use cfg, the pools and the caches: never free
		 * those under them */
		server_listen_unlink();
		log_error(NULL, "exiting without cleanup");
		log_flush();
		_exit(SERVER_EXIT_STUCK);
	}
	server_listen_unlink();
	auditq_stop();
	log_flush_stop();
	for (i = 0; i < srv.nworkers; i++)
		pthread_mutex_destroy(&srv.workers[i].lock);
	free(srv.workers);
	close(srv.wake[0]);
	close(srv.wake[1]);
	close(srv.listen_fd);
	return 0;
}
