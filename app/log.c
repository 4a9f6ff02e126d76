/*
 * Leveled log lines on stderr, one write(2) per line so threads do not
 * interleave.  Callers never pass secrets; client bytes go through
 * log_escape() first.  With log_file, stderr itself is pointed at the file
 * (dup2 swaps it atomically under concurrent writers), so whatever the
 * libraries print goes there too.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "extern.h"

#define LOG_LINE_MAX	2048

/* set by the main thread (at start and SIGHUP), read by every thread */
static enum log_level	 log_level = LOGL_INFO;
static int		 log_stderr = -1;	/* the stderr we began with */

static const char *const log_names[LOGL__MAX] = {
	"error", "warn", "info", "debug"
};

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

int
log_open(const char *path, char **errstr)
{
	int	 fd = -1, e;

	if (*path == '\0') {
		if (log_stderr != -1 && dup2(log_stderr, STDERR_FILENO) == -1)
			goto fail;
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

static size_t
log_stamp(char *buf, size_t sz)
{
	char	 ts[40];

	rfc3339(ts, now_ms());
	return (size_t)snprintf(buf, sz, "%s ", ts);
}

static void
log_write(char *buf, size_t n, size_t sz)
{
	if (n >= sz - 1)
		n = sz - 2;
	buf[n++] = '\n';
	(void)write(STDERR_FILENO, buf, n);
}

void
log_msg(enum log_level l, const char *reqid, const char *fmt, ...)
{
	char	 buf[LOG_LINE_MAX];
	size_t	 n;
	va_list	 ap;
	int	 rc;

	if (l > log_get_level())
		return;
	n = log_stamp(buf, sizeof(buf));
	rc = snprintf(buf + n, sizeof(buf) - n, "%s %s ", log_names[l],
	    reqid != NULL ? reqid : "-");
	if (rc > 0)
		n += (size_t)rc;
	va_start(ap, fmt);
	rc = vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (rc > 0)
		n += (size_t)rc;
	log_write(buf, n < sizeof(buf) ? n : sizeof(buf) - 1, sizeof(buf));
}

void
log_request(const char *reqid, const char *method, const char *path,
    int status, long usec)
{
	char	 buf[LOG_LINE_MAX], m[16], p[512];
	size_t	 n;
	int	 rc;

	if (LOGL_INFO > log_get_level())
		return;
	log_escape(m, sizeof(m), method);
	log_escape(p, sizeof(p), path);
	n = log_stamp(buf, sizeof(buf));
	rc = snprintf(buf + n, sizeof(buf) - n,
	    "access %s %s %s %d %ldus", reqid, m, p, status, usec);
	if (rc > 0)
		n += (size_t)rc;
	log_write(buf, n < sizeof(buf) ? n : sizeof(buf) - 1, sizeof(buf));
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
