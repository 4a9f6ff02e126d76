/*
 * Leveled log lines on stderr, one write(2) per line so threads do not
 * interleave.  Callers never pass secrets; client bytes go through
 * log_escape() first.  With log_file, stderr itself is pointed at the file
 * (dup2 swaps it atomically under concurrent writers), so whatever the
 * libraries print goes there too.
 *
 * log_format = json writes one JSON object per line, every client byte
 * escaped (invalid UTF-8 as U+FFFD), so a line parses whatever was sent.
 * Text lines under systemd (JOURNAL_STREAM naming our stderr) carry no
 * time: the journal stamps each line itself.
 *
 * Access lines are the one per-request write: each thread appends its own
 * to a buffer of its own (a mutex nobody else takes but the flusher), and
 * writes it when it is nearly full, before any other line of that thread
 * (so a thread's lines keep their order), and every LOG_FLUSH_MS from a
 * thread of ours: a line reaches the log that soon, one write(2) carries
 * many.  log_flush_stop() writes what is left.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "extern.h"

#define LOG_STAMP_MAX	40	/* rfc3339() */
#define LOG_STAMP_MS	20	/* offset of the milliseconds in a stamp */
#define LOG_JSON_TAIL	16	/* room kept after a JSON field: "}, NL */

/* set by the main thread (at start and SIGHUP), read by every thread */
static enum log_level	 log_level = LOGL_INFO;
static enum log_format	 log_format = LOGF_TEXT;
static int		 log_journal;	/* stderr is the journal's stream */
static int		 log_stderr = -1;	/* the stderr we began with */

static const char *const log_names[LOGL__MAX] = {
	"error", "warn", "info", "debug"
};

static const char *const log_formats[LOGF__MAX] = {
	"text", "json"
};

/* A thread's access lines not yet written; lives as long as the process. */
struct log_buf {
	pthread_mutex_t	 lock;
	struct log_buf	*next;
	size_t		 n;
	char		 b[LOG_BATCH_MAX];
};

static struct {
	pthread_mutex_t	 lock;		/* the list, and the flusher's state */
	pthread_cond_t	 cond;
	struct log_buf	*bufs;
	pthread_t	 thread;
	int		 started;
	int		 stop;
	size_t		 n;		/* gathered: the flush's one write */
	char		 all[LOG_GATHER_MAX];
} lb = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

static __thread struct log_buf	*log_tbuf;

void
log_set_level(enum log_level l)
{
	__atomic_store_n(&log_level, l, __ATOMIC_RELAXED);
}

static enum log_level
log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

void
log_set_format(enum log_format f)
{
	__atomic_store_n(&log_format, f, __ATOMIC_RELAXED);
}

static enum log_format
log_get_format(void)
{
	return __atomic_load_n(&log_format, __ATOMIC_RELAXED);
}

int
log_format_parse(const char *s, enum log_format *out)
{
	int	 i;

	for (i = 0; i < LOGF__MAX; i++)
		if (strcmp(s, log_formats[i]) == 0) {
			*out = (enum log_format)i;
			return 0;
		}
	return -1;
}

/* systemd sets JOURNAL_STREAM to "dev:ino" of the stream it gave us. */
static void
log_journal_check(void)
{
	const char		*js = getenv("JOURNAL_STREAM");
	struct stat		 st;
	uintmax_t		 dev, ino;
	int			 j = 0;

	if (js != NULL && sscanf(js, "%ju:%ju", &dev, &ino) == 2 &&
	    fstat(STDERR_FILENO, &st) == 0 && (uintmax_t)st.st_dev == dev &&
	    (uintmax_t)st.st_ino == ino)
		j = 1;
	__atomic_store_n(&log_journal, j, __ATOMIC_RELAXED);
}

int
log_open(const char *path, char **errstr)
{
	int	 fd = -1, e;

	if (*path == '\0') {
		if (log_stderr != -1 && dup2(log_stderr, STDERR_FILENO) == -1)
			goto fail;
		log_journal_check();
		return 0;
	}
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    LOG_FILE_MODE)) == -1)
		goto fail;
	if (log_stderr == -1 &&
	    (log_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3)) == -1)
		goto fail;
	if (dup2(fd, STDERR_FILENO) == -1)
		goto fail;
	close(fd);
	log_journal_check();
	return 0;
fail:
	e = errno;
	if (fd != -1)
		close(fd);
	xasprintf(errstr, "log_file: %s: %s", path, strerror(e));
	return -1;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	int	 i;

	for (i = 0; i < LOGL__MAX; i++)
		if (strcmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

const char *
log_level_name(enum log_level l)
{
	return l < LOGL__MAX ? log_names[l] : "?";
}

/* rfc3339(), formatted once a second per thread: the hot path's clock. */
static void
log_time(char out[LOG_STAMP_MAX], long long ms)
{
	static __thread long long	 sec = -1;
	static __thread char		 cache[LOG_STAMP_MAX];
	int				 m = (int)(ms % 1000);

	if (ms / 1000 != sec) {
		sec = ms / 1000;
		rfc3339(cache, ms);
	}
	memcpy(out, cache, LOG_STAMP_MAX);
	out[LOG_STAMP_MS] = (char)('0' + m / 100);
	out[LOG_STAMP_MS + 1] = (char)('0' + m / 10 % 10);
	out[LOG_STAMP_MS + 2] = (char)('0' + m % 10);
}

/* The time and a blank, unless the journal stamps the line itself. */
static size_t
log_stamp(char *buf, size_t sz, long long ms)
{
	char	 ts[LOG_STAMP_MAX];

	if (__atomic_load_n(&log_journal, __ATOMIC_RELAXED))
		return 0;
	log_time(ts, ms);
	return (size_t)snprintf(buf, sz, "%s ", ts);
}

/* The last resort: a failed write has nowhere left to be reported. */
static void
log_out(const char *buf, size_t n)
{
	ssize_t	 w;

	while (n > 0) {
		if ((w = write(STDERR_FILENO, buf, n)) == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		buf += w;
		n -= (size_t)w;
	}
}

/* Cut to sz - 2 and end with a newline: the length to write. */
static size_t
log_end(char *buf, size_t n, size_t sz)
{
	if (n >= sz - 1)
		n = sz - 2;
	buf[n++] = '\n';
	return n;
}

static void
log_write(char *buf, size_t n, size_t sz)
{
	log_out(buf, log_end(buf, n, sz));
}

/* Write out b's lines; b->lock held. */
static void
log_buf_write(struct log_buf *b)
{
	if (b->n > 0)
		log_out(b->b, b->n);
	__atomic_store_n(&b->n, 0, __ATOMIC_RELAXED);
}

static void
log_buf_flush(struct log_buf *b)
{
	if (b == NULL || __atomic_load_n(&b->n, __ATOMIC_RELAXED) == 0)
		return;
	pthread_mutex_lock(&b->lock);
	log_buf_write(b);
	pthread_mutex_unlock(&b->lock);
}

/* Move b's lines to lb.all (lb.lock held): a copy under b's lock, no write. */
static void
log_buf_gather(struct log_buf *b)
{
	if (b == NULL || __atomic_load_n(&b->n, __ATOMIC_RELAXED) == 0)
		return;
	pthread_mutex_lock(&b->lock);
	if (lb.n + b->n > sizeof(lb.all)) {
		log_out(lb.all, lb.n);
		lb.n = 0;
	}
	memcpy(lb.all + lb.n, b->b, b->n);
	lb.n += b->n;
	__atomic_store_n(&b->n, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&b->lock);
}

/* This thread's buffer, made at its first access line. */
static struct log_buf *
log_buf_get(void)
{
	struct log_buf	*b;

	if ((b = log_tbuf) != NULL)
		return b;
	b = xmalloc(sizeof(*b));
	pthread_mutex_init(&b->lock, NULL);
	b->n = 0;
	pthread_mutex_lock(&lb.lock);
	b->next = lb.bufs;
	lb.bufs = b;
	pthread_mutex_unlock(&lb.lock);
	return log_tbuf = b;
}

void
log_flush(void)
{
	struct log_buf	*b;

	/* every thread's lines in one write, not a write per thread */
	pthread_mutex_lock(&lb.lock);
	for (b = lb.bufs; b != NULL; b = b->next)
		log_buf_gather(b);
	log_out(lb.all, lb.n);
	lb.n = 0;
	pthread_mutex_unlock(&lb.lock);
}

static void *
log_flusher(void *arg)
{
	struct timespec	 ts;

	(void)arg;
	pthread_mutex_lock(&lb.lock);
	while (!lb.stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += LOG_FLUSH_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&lb.cond, &lb.lock, &ts);
		pthread_mutex_unlock(&lb.lock);
		log_flush();
		pthread_mutex_lock(&lb.lock);
	}
	pthread_mutex_unlock(&lb.lock);
	return NULL;
}

int
log_flush_start(void)
{
	if (lb.started)
		return 0;
	lb.stop = 0;
	if (pthread_create(&lb.thread, NULL, log_flusher, NULL) != 0)
		return -1;
	lb.started = 1;
	return 0;
}

void
log_flush_stop(void)
{
	if (lb.started) {
		pthread_mutex_lock(&lb.lock);
		lb.stop = 1;
		pthread_cond_signal(&lb.cond);
		pthread_mutex_unlock(&lb.lock);
		pthread_join(lb.thread, NULL);
		lb.started = 0;
	}
	log_flush();
}

/* Append to buf[*n] within sz, keeping one byte free for the newline. */
static void
log_add(char *buf, size_t sz, size_t *n, const char *fmt, ...)
{
	va_list	 ap;
	int	 rc;

	if (*n + 1 >= sz)
		return;
	va_start(ap, fmt);
	rc = vsnprintf(buf + *n, sz - *n - 1, fmt, ap);
	va_end(ap);
	if (rc > 0)
		*n += (size_t)rc < sz - *n - 1 ? (size_t)rc : sz - *n - 2;
}

/* log_add of a string or a number, without a format to parse. */
static void
log_put(char *buf, size_t sz, size_t *n, const char *s)
{
	size_t	 len, room;

	if (*n + 1 >= sz)
		return;
	room = sz - *n - 2;
	if ((len = strlen(s)) > room)
		len = room;
	memcpy(buf + *n, s, len);
	*n += len;
	buf[*n] = '\0';
}

static void
log_put_num(char *buf, size_t sz, size_t *n, long long v, const char *unit)
{
	char			 d[32], *p = d + sizeof(d) - 1;
	unsigned long long	 u = v < 0 ? 0 - (unsigned long long)v :
				    (unsigned long long)v;

	*p = '\0';
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--p = '-';
	log_put(buf, sz, n, p);
	log_put(buf, sz, n, unit);
}

/* Append a JSON string (quoted) of in: at most LOG_FIELD_MAX * 2 escaped
 * bytes, and LOG_JSON_TAIL bytes left after it. */
static void
log_add_json(char *buf, size_t sz, size_t *n, const char *in)
{
	size_t	 room;

	if (*n + 2 + LOG_JSON_TAIL + 1 > sz)
		return;
	room = sz - *n - 2 - LOG_JSON_TAIL;
	if (room > LOG_FIELD_MAX * 2)
		room = LOG_FIELD_MAX * 2;
	buf[(*n)++] = '"';
	*n += log_json_escape(buf + *n, room, in != NULL ? in : "");
	buf[(*n)++] = '"';
	buf[*n] = '\0';
}

void
log_msg(enum log_level l, const char *reqid, const char *fmt, ...)
{
	char	 buf[LOG_LINE_MAX], msg[LOG_LINE_MAX], ts[LOG_STAMP_MAX];
	char	 esc[LOG_LINE_MAX];
	size_t	 n = 0;
	va_list	 ap;

	if (l > log_get_level())
		return;
	log_buf_flush(log_tbuf);	/* this thread's earlier access lines */
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_get_format() == LOGF_JSON) {
		log_time(ts, now_ms());
		log_json_escape(esc, sizeof(esc) - LOG_FIELD_MAX, msg);
		log_add(buf, sizeof(buf), &n, "{\"time\":\"%s\","
		    "\"level\":\"%s\",\"id\":", ts, log_names[l]);
		log_add_json(buf, sizeof(buf), &n, reqid != NULL ? reqid : "");
		log_add(buf, sizeof(buf), &n, ",\"msg\":\"%s\"}", esc);
	} else {
		n = log_stamp(buf, sizeof(buf), now_ms());
		log_add(buf, sizeof(buf), &n, "%s %s %s", log_names[l],
		    reqid != NULL ? reqid : "-", msg);
	}
	log_write(buf, n, sizeof(buf));
}

size_t
log_access_format(char *buf, size_t sz, enum log_format f, int stamp,
    long long ms, const struct log_access *a)
{
	char		 ts[LOG_STAMP_MAX], m[16], ua[LOG_FIELD_MAX];
	const char	*uid = a->user_id != NULL && *a->user_id != '\0' ?
			    a->user_id : NULL;
	size_t		 n = 0;

	if (sz < 2)
		return 0;
	buf[0] = '\0';
	log_escape(m, sizeof(m), a->method);
	if (f == LOGF_JSON) {
		log_time(ts, ms);
		log_add(buf, sz, &n, "{\"time\":\"%s\",\"level\":\"info\","
		    "\"type\":\"access\",\"id\":", ts);
		log_add_json(buf, sz, &n, a->reqid);
		log_add(buf, sz, &n, ",\"method\":");
		log_add_json(buf, sz, &n, m);
		log_add(buf, sz, &n, ",\"route\":");
		log_add_json(buf, sz, &n, a->route != NULL ? a->route : "-");
		log_add(buf, sz, &n, ",\"status\":%d,\"latency_us\":%ld,"
		    "\"ip\":", a->status, a->usec);
		log_add_json(buf, sz, &n, a->ip);
		log_add(buf, sz, &n, ",\"user\":");
		if (uid != NULL)
			log_add_json(buf, sz, &n, uid);
		else
			log_add(buf, sz, &n, "null");
		log_add(buf, sz, &n, ",\"bytes\":%zu,\"ua\":", a->bytes);
		log_add_json(buf, sz, &n, a->user_agent);
		log_add(buf, sz, &n, "}");
		/* cut short: close the object rather than leave it open */
		if (n + 2 >= sz && sz > 3) {
			n = 0;
			log_add(buf, sz, &n, "{\"time\":\"%s\",\"type\":"
			    "\"access\",\"status\":%d}", ts, a->status);
		}
		return n;
	}
	if (stamp) {
		log_time(ts, ms);
		log_put(buf, sz, &n, ts);
		log_put(buf, sz, &n, " ");
	}
	/* "access ID METHOD ROUTE STATUS LATENCYus IP USER BYTES ua=UA",
	 * put piece by piece: a printf of it was 3 % of a verify's CPU */
	log_escape(ua, sizeof(ua), a->user_agent);
	log_put(buf, sz, &n, "access ");
	log_put(buf, sz, &n, a->reqid != NULL ? a->reqid : "(null)");
	log_put(buf, sz, &n, " ");
	log_put(buf, sz, &n, m);
	log_put(buf, sz, &n, " ");
	log_put(buf, sz, &n, a->route != NULL ? a->route : "-");
	log_put(buf, sz, &n, " ");
	log_put_num(buf, sz, &n, a->status, " ");
	log_put_num(buf, sz, &n, a->usec, "us ");
	log_put(buf, sz, &n, a->ip != NULL && *a->ip != '\0' ? a->ip : "-");
	log_put(buf, sz, &n, " ");
	log_put(buf, sz, &n, uid != NULL ? uid : "-");
	log_put(buf, sz, &n, " ");
	log_put_num(buf, sz, &n, (long long)a->bytes, " ua=");
	log_put(buf, sz, &n, ua);
	return n;
}

void
log_request(const struct log_access *a)
{
	struct log_buf	*b;
	char		*p;
	size_t		 n;

	if (LOGL_INFO > log_get_level())
		return;
	b = log_buf_get();
	pthread_mutex_lock(&b->lock);
	if (b->n + LOG_LINE_MAX > sizeof(b->b))
		log_buf_write(b);
	p = b->b + b->n;
	n = log_access_format(p, LOG_LINE_MAX, log_get_format(),
	    !__atomic_load_n(&log_journal, __ATOMIC_RELAXED), now_ms(), a);
	__atomic_store_n(&b->n, b->n + log_end(p, n, LOG_LINE_MAX),
	    __ATOMIC_RELAXED);
	if (!lb.started)	/* no flusher: at once (the CLI, tests) */
		log_buf_write(b);
	pthread_mutex_unlock(&b->lock);
}

void
log_escape(char *out, size_t outsz, const char *in)
{
	size_t	 i = 0;

	if (outsz == 0)
		return;
	for (; in != NULL && *in != '\0' && i + 1 < outsz; in++) {
		unsigned char c = (unsigned char)*in;
		out[i++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	out[i] = '\0';
}

/* Bytes of the valid UTF-8 character at p (NUL-terminated), or 0. */
static size_t
utf8_len(const unsigned char *p)
{
	unsigned int	 cp;
	size_t		 n, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

size_t
log_json_escape(char *out, size_t outsz, const char *in)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*p = (const unsigned char *)in;
	char			 e[8];
	size_t			 i = 0, n, k;

	if (outsz == 0)
		return 0;
	while (p != NULL && *p != '\0') {
		if (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') {
			if (i + 2 > outsz)
				break;
			out[i++] = (char)*p++;
			continue;
		}
		if ((n = utf8_len(p)) == 0) {
			memcpy(e, "\\ufffd", 6);	/* invalid byte */
			k = 6;
			n = 1;
		} else if (*p == '"' || *p == '\\') {
			e[0] = '\\';
			e[1] = (char)*p;
			k = 2;
		} else if (*p < 0x20 || *p == 0x7f) {
			memcpy(e, "\\u00", 4);
			e[4] = hex[*p >> 4];
			e[5] = hex[*p & 0xf];
			k = 6;
		} else {
			memcpy(e, p, n);
			k = n;
		}
		if (i + k + 1 > outsz)
			break;
		memcpy(out + i, e, k);
		i += k;
		p += n;
	}
	out[i] = '\0';
	return i;
}

int
log_reqid_ok(const char *s)
{
	size_t	 n;

	if (s == NULL)
		return 0;
	for (n = 0; n <= FA_REQID_MAX && s[n] != '\0'; n++)
		if (!(s[n] >= 'a' && s[n] <= 'z') &&
		    !(s[n] >= 'A' && s[n] <= 'Z') &&
		    !(s[n] >= '0' && s[n] <= '9') && s[n] != '-')
			return 0;
	return n > 0 && n <= FA_REQID_MAX;
}
