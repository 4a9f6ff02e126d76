/*
 * Leveled log lines on stderr, one write(2) per line so threads do not
 * interleave.  Callers never pass secrets; client bytes go through
 * log_escape() first.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "extern.h"

#define LOG_LINE_MAX	2048

static enum log_level	 log_level = LOGL_INFO;

static const char *const log_names[LOGL__MAX] = {
	"error", "warn", "info", "debug"
};

void
log_set_level(enum log_level l)
{
	log_level = l;
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

	if (l > log_level)
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

	if (LOGL_INFO > log_level)
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
