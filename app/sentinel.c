/*
 * sentinel.c: find the Redis master through Redis Sentinel.  The sentinels
 * of redis_sentinels ("host:port,host:port,...") are asked in turn
 * SENTINEL get-master-addr-by-name <redis_master_name>; the first address
 * whose server answers ROLE with "master" wins (a sentinel that has not yet
 * seen a failover, or one cut off from the others, may name a server that
 * is a replica now: that answer is skipped).  All of it is bounded by the
 * caller's deadline, split among the sentinels left, so a sentinel that
 * hangs cannot eat the time of the others.
 *
 * store.c calls sentinel_master() each time it makes a connection, with
 * the deadline of the borrow (the request's).  It drops a connection on any
 * error reply (READONLY included) and on a connection error, so the next
 * borrow asks the sentinels again.  The watcher at the end of this file
 * follows the sentinels' failover announcements and moves the pool to a
 * new epoch (store_failover) at once.  No other state is kept here but the
 * last master seen, for the log line that says it changed.
 */
#include "config.h"

#include <sys/time.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "extern.h"

static struct {
	pthread_mutex_t	 mu;
	char		 host[SENTINEL_HOST_MAX];
	int		 port;
	int		 down;		/* "no master" logged; under mu */
} last = { .mu = PTHREAD_MUTEX_INITIALIZER };

int
sentinel_next(const char **list, char *host, size_t hostsz, int *port)
{
	const char	*p = *list, *end, *colon, *h, *he;
	long long	 n;
	char		 pbuf[8];
	size_t		 len;

	while (*p == ' ' || *p == '\t' || *p == ',')
		p++;
	if (*p == '\0') {
		*list = p;
		return 0;
	}
	end = p + strcspn(p, ",");
	*list = end;
	he = end;
	while (he > p && (he[-1] == ' ' || he[-1] == '\t'))
		he--;
	/* the last ':' splits host and port; "[::1]:26379" for IPv6 */
	for (colon = he; colon > p && colon[-1] != ':'; colon--)
		;
	if (colon == p || colon == he)
		return -1;
	h = p;
	len = (size_t)(colon - 1 - p);
	if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
		h++;
		len -= 2;
	}
	if (len == 0 || len >= hostsz || memchr(h, ' ', len) != NULL)
		return -1;
	if ((size_t)(he - colon) >= sizeof(pbuf))
		return -1;
	memcpy(pbuf, colon, (size_t)(he - colon));
	pbuf[he - colon] = '\0';
	if (num_parse(pbuf, 1, 65535, &n) == -1)
		return -1;
	memcpy(host, h, len);
	host[len] = '\0';
	*port = (int)n;
	return 1;
}

int
sentinel_check(const char *list, const char *master_name, char **errstr)
{
	char	 host[SENTINEL_HOST_MAX];
	int	 port, r, n = 0;

	if (list == NULL || *list == '\0')
		return 0;
	while ((r = sentinel_next(&list, host, sizeof(host), &port)) == 1)
		n++;
	if (r == -1 || n == 0) {
		xasprintf(errstr, "redis_sentinels: expected host:port,"
		    "host:port,...");
		return -1;
	}
	if (n > SENTINEL_MAX) {
		xasprintf(errstr, "redis_sentinels: at most %d sentinels",
		    SENTINEL_MAX);
		return -1;
	}
	if (master_name == NULL || *master_name == '\0') {
		xasprintf(errstr, "redis_master_name: needed with "
		    "redis_sentinels");
		return -1;
	}
	if (strlen(master_name) > SENTINEL_NAME_MAX ||
	    strcspn(master_name, " \t\r\n") != strlen(master_name)) {
		xasprintf(errstr, "redis_master_name: at most %d bytes, "
		    "no blanks", SENTINEL_NAME_MAX);
		return -1;
	}
	return 0;
}

/* Connect to host:port, the socket timeout what is left of ms. */
static redisContext *
connect_by(const char *host, int port, long long deadline)
{
	redisContext	*c;
	long long	 left = deadline - mono_ms();

	if (left <= 0)
		return NULL;
	c = redisConnectWithTimeout(host, port, ms_tv(left));
	if (c == NULL)
		return NULL;
	if (c->err || (left = deadline - mono_ms()) <= 0 ||
	    redisSetTimeout(c, ms_tv(left)) != REDIS_OK) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/*
 * Ask one sentinel: 0 and the address, or -1 (down, does not know the
 * name, or a malformed answer); *why says which, for the log.
 */
static int
ask_sentinel(const char *shost, int sport, const char *name,
    long long deadline, char *host, size_t hostsz, int *port,
    const char **why)
{
	redisContext	*c;
	redisReply	*r = NULL;
	long long	 n;
	int		 rc = -1;

	if ((c = connect_by(shost, sport, deadline)) == NULL) {
		*why = "unreachable";
		return -1;
	}
	r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", name);
	if (r == NULL) {
		*why = "no answer";
		goto out;
	}
	if (r->type == REDIS_REPLY_NIL) {
		*why = "does not know the master name";
		goto out;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING ||
	    r->element[0]->len == 0 || r->element[0]->len >= hostsz) {
		*why = "unexpected answer";
		goto out;
	}
	if (num_parse(r->element[1]->str, 1, 65535, &n) == -1) {
		*why = "unexpected port";
		goto out;
	}
	memcpy(host, r->element[0]->str, r->element[0]->len + 1);
	*port = (int)n;
	rc = 0;
out:
	freeReplyObject(r);
	redisFree(c);
	return rc;
}

/*
 * 0 if host:port says ROLE master; -1 if it says otherwise or cannot be
 * asked.  With a password, AUTH goes first (ROLE needs it).
 */
static int
is_master(const struct config *conf, const char *host, int port,
    long long deadline, const char **why)
{
	redisContext	*c;
	redisReply	*r = NULL;
	int		 rc = -1, i, nsent = 0;
	void		*v;

	if ((c = connect_by(host, port, deadline)) == NULL) {
		*why = "master unreachable";
		return -1;
	}
	if (conf->redis_password != NULL && *conf->redis_password != '\0') {
		redisAppendCommand(c, "AUTH %s", conf->redis_password);
		nsent++;
	}
	redisAppendCommand(c, "ROLE");
	for (i = 0; i <= nsent; i++) {
		v = NULL;
		if (redisGetReply(c, &v) != REDIS_OK || v == NULL) {
			*why = "master does not answer ROLE";
			goto out;
		}
		freeReplyObject(r);
		r = v;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_STRING) {
		*why = "unexpected ROLE answer";
		goto out;
	}
	if (strcasecmp(r->element[0]->str, "master") != 0) {
		*why = "named server is not a master (yet)";
		goto out;
	}
	rc = 0;
out:
	freeReplyObject(r);
	redisFree(c);
	return rc;
}

int
sentinel_master(const struct config *conf, long long deadline, char *host,
    size_t hostsz, int *port)
{
	char		 shost[SENTINEL_HOST_MAX], mhost[SENTINEL_HOST_MAX];
	const char	*list, *why = "no sentinel configured";
	long long	 slice, now;
	int		 sport, mport, nleft = 0, changed, was;

	list = conf->redis_sentinels != NULL ? conf->redis_sentinels : "";
	while (sentinel_next(&list, shost, sizeof(shost), &sport) == 1)
		nleft++;
	list = conf->redis_sentinels != NULL ? conf->redis_sentinels : "";
	while (nleft > 0 &&
	    sentinel_next(&list, shost, sizeof(shost), &sport) == 1) {
		if ((now = mono_ms()) >= deadline) {
			why = "timed out";
			break;
		}
		/* a fair share of what is left: one slow sentinel cannot
		   starve the others */
		slice = now + (deadline - now) / nleft;
		nleft--;
		if (ask_sentinel(shost, sport, conf->redis_master_name, slice,
		    mhost, sizeof(mhost), &mport, &why) == -1) {
			log_debug(NULL, "sentinel %s:%d: %s", shost, sport, why);
			continue;
		}
		if (is_master(conf, mhost, mport, slice, &why) == -1) {
			log_debug(NULL, "sentinel %s:%d: %s:%d: %s", shost, sport,
			    mhost, mport, why);
			continue;
		}
		if (strlen(mhost) >= hostsz) {
			why = "master host name too long";
			break;
		}
		memcpy(host, mhost, strlen(mhost) + 1);
		*port = mport;
		pthread_mutex_lock(&last.mu);
		changed = last.port != mport || strcmp(last.host, mhost) != 0;
		was = last.down;
		last.down = 0;
		if (changed) {
			memcpy(last.host, mhost, strlen(mhost) + 1);
			last.port = mport;
		}
		pthread_mutex_unlock(&last.mu);
		if (changed || was)
			log_info(NULL, "sentinel: master %s is %s:%d (from "
			    "%s:%d)", conf->redis_master_name, mhost, mport,
			    shost, sport);
		return 0;
	}
	pthread_mutex_lock(&last.mu);
	was = last.down;
	last.down = 1;
	pthread_mutex_unlock(&last.mu);
	if (!was)
		log_warn(NULL, "sentinel: no master for %s: %s",
		    conf->redis_master_name ? conf->redis_master_name : "", why);
	return -1;
}

/*
 * The failover watcher: one subscription to a sentinel's +switch-master and
 * +promoted-slave, so that the pool stops using the old master the moment
 * a sentinel says a replica took over (watch.fn), instead of when the
 * old master is demoted, seconds later, with our writes lost on resync.
 * A lost subscription moves to the next sentinel; once it is back, a
 * failover may have gone unseen, so the pool reconnects then too.
 */
static struct {
	pthread_t	 thread;
	int		 started;
	atomic_int	 stop;
	const struct config *conf;
	sentinel_failover_fn fn;
} watch;

/* "+switch-master" "<name> <old ip> <old port> <new ip> <new port>" and
   "+promoted-slave" "slave <n> <ip> <port> @ <name> <ip> <port>": 1 if msg
   is about the master called name. */
int
sentinel_event_names(const char *chan, const char *msg, size_t len,
    const char *name)
{
	const char	*p, *end = msg + len;
	size_t		 nlen = strlen(name);

	if (strcmp(chan, SENTINEL_SWITCH_CHANNEL) == 0)
		p = msg;
	else if (strcmp(chan, SENTINEL_PROMOTED_CHANNEL) == 0) {
		if ((p = memchr(msg, '@', len)) == NULL)
			return 0;
		p++;
		while (p < end && *p == ' ')
			p++;
	} else
		return 0;
	return (size_t)(end - p) > nlen && memcmp(p, name, nlen) == 0 &&
	    p[nlen] == ' ';
}

static redisContext *
watch_subscribe(const struct config *conf, const char *shost, int sport)
{
	redisContext	*c;
	redisReply	*r;
	int		 ok;

	if ((c = connect_by(shost, sport, mono_ms() +
	    conf->backend_timeout_ms)) == NULL)
		return NULL;
	r = redisCommand(c, "SUBSCRIBE %s %s", SENTINEL_SWITCH_CHANNEL,
	    SENTINEL_PROMOTED_CHANNEL);
	ok = r != NULL && r->type == REDIS_REPLY_ARRAY;
	freeReplyObject(r);
	if (!ok) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/* One reply of the subscription; 0, or -1 if it makes no sense. */
static int
watch_reply(const struct config *conf, redisReply *r)
{
	redisReply	*kind;

	if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
	    (kind = r->element[0])->type != REDIS_REPLY_STRING)
		return -1;
	if (strcmp(kind->str, "message") != 0 || r->elements != 3 ||
	    r->element[1]->type != REDIS_REPLY_STRING ||
	    r->element[2]->type != REDIS_REPLY_STRING)
		return 0;	/* subscribe, pong */
	if (sentinel_event_names(r->element[1]->str, r->element[2]->str,
	    r->element[2]->len, conf->redis_master_name))
		watch.fn(r->element[1]->str);
	return 0;
}

/* Read the subscription until it is lost or stop is set. */
static void
watch_read(const struct config *conf, redisContext *c)
{
	struct pollfd	 pfd;
	long long	 last_rx = mono_ms(), last_ping = last_rx, now;
	void		*r;
	int		 n, done;

	while (!atomic_load(&watch.stop)) {
		now = mono_ms();
		if (now - last_rx > 3 * SENTINEL_WATCH_PING_MS)
			return;		/* the sentinel hangs */
		if (now - last_ping >= SENTINEL_WATCH_PING_MS) {
			last_ping = now;
			done = 0;
			if (redisAppendCommand(c, "PING") != REDIS_OK)
				return;
			while (!done)
				if (redisBufferWrite(c, &done) != REDIS_OK)
					return;
		}
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		n = poll(&pfd, 1, SENTINEL_WATCH_TICK_MS);
		if (n == 0 || (n == -1 && errno == EINTR))
			continue;
		if (n == -1 || redisBufferRead(c) != REDIS_OK)
			return;
		last_rx = mono_ms();
		for (;;) {
			r = NULL;
			if (redisGetReplyFromReader(c, &r) != REDIS_OK)
				return;
			if (r == NULL)
				break;
			n = watch_reply(conf, r);
			freeReplyObject(r);
			if (n == -1)
				return;
		}
	}
}

/* The k-th sentinel of the list (from 0): 0, or -1 past the end. */
static int
nth_sentinel(const char *all, int k, char *host, size_t hostsz, int *port)
{
	const char	*list = all;
	int		 i;

	for (i = 0; i <= k; i++)
		if (sentinel_next(&list, host, hostsz, port) != 1)
			return -1;
	return 0;
}

static void *
watch_main(void *arg)
{
	const struct config	*conf = watch.conf;
	redisContext		*c;
	char			 shost[SENTINEL_HOST_MAX];
	int			 sport, k = 0, lost = 0, waited;

	(void)arg;
	while (!atomic_load(&watch.stop)) {
		if (nth_sentinel(conf->redis_sentinels, k, shost,
		    sizeof(shost), &sport) == -1) {
			if (k == 0)
				break;		/* sentinel_check let none by */
			k = 0;
			continue;
		}
		if ((c = watch_subscribe(conf, shost, sport)) == NULL) {
			log_debug(NULL, "sentinel %s:%d: cannot subscribe",
			    shost, sport);
			k++;
			for (waited = 0; waited < SENTINEL_WATCH_RETRY_MS &&
			    !atomic_load(&watch.stop);
			    waited += SENTINEL_WATCH_TICK_MS)
				usleep(SENTINEL_WATCH_TICK_MS * 1000);
			continue;
		}
		log_info(NULL, "sentinel: following failovers of %s through "
		    "%s:%d", conf->redis_master_name, shost, sport);
		if (lost)
			watch.fn("subscription to the sentinels lost");
		watch_read(conf, c);
		redisFree(c);
		lost = 1;
		k++;
		if (!atomic_load(&watch.stop))
			log_warn(NULL, "sentinel %s:%d: subscription lost",
			    shost, sport);
	}
	return NULL;
}

int
sentinel_watch_start(const struct config *conf, sentinel_failover_fn fn)
{
	if (watch.started || conf->redis_sentinels == NULL ||
	    *conf->redis_sentinels == '\0')
		return 0;
	atomic_store(&watch.stop, 0);
	watch.conf = conf;
	watch.fn = fn;
	if (pthread_create(&watch.thread, NULL, watch_main, NULL) != 0) {
		log_error(NULL, "sentinel: cannot start the failover watcher");
		return -1;
	}
	watch.started = 1;
	return 0;
}

void
sentinel_watch_stop(void)
{
	if (!watch.started)
		return;
	atomic_store(&watch.stop, 1);
	pthread_join(watch.thread, NULL);
	watch.started = 0;
}
