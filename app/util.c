/* Clock, number and file helpers shared by every layer. */
#include "config.h"

#include <sys/time.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "extern.h"

long long
now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long long
now_ms(void)
{
	return now_us() / 1000;
}

/* Format milliseconds since the epoch as "2026-01-02T03:04:05.678Z". */
void
rfc3339(char out[40], long long ms)
{
	struct tm	 tm;
	time_t		 t = (time_t)(ms / 1000);

	gmtime_r(&t, &tm);
	/* years past 9999 do not occur; the cast keeps gcc's bound check happy */
	snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100,
	    tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100,
	    (int)(ms % 1000));
}

/* Milliseconds on the monotonic clock, for deadlines. */
long long
mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A socket timeout of ms, at least 1 ms: a zero timeval means "never". */
struct timeval
ms_tv(long long ms)
{
	struct timeval	 tv;

	if (ms < 1)
		ms = 1;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return tv;
}

/*
 * One backend deadline per request.  server.c calls deadline_start when a
 * request begins; the first backend wait after that (pool borrow, connect,
 * command, Sentinel lookup) arms the deadline at now + timeout_ms, and every
 * later wait of the request meets that same deadline, so a frozen backend
 * costs a request one backend_timeout_ms in all, never one per call.  A
 * password hash re-arms it (deadline_rearm): queueing for Argon2 is not
 * backend time.  Outside a request (relay, subscriber, CLI) each call gets
 * a deadline of its own.  Thread-local: a worker serves one request at once.
 */
static __thread int		 dl_active;
static __thread long long	 dl_at;		/* 0: not armed yet */

void
deadline_start(void)
{
	dl_active = 1;
	dl_at = 0;
}

void
deadline_rearm(void)
{
	dl_at = 0;
}

long long
deadline_at(long timeout_ms)
{
	long long	 d = mono_ms() + (timeout_ms > 0 ? timeout_ms : 1);

	if (!dl_active)
		return d;
	if (dl_at == 0)
		dl_at = d;
	return dl_at;
}

/*
 * The one number parser, after OpenBSD's strtonum(3) but decimal only:
 * an optional '-' and digits, nothing before or after them (no blank, no
 * '+', no 0x; "010" is ten), within [min, max].  0, or -1 leaving *out.
 */
int
num_parse(const char *s, long long min, long long max, long long *out)
{
	const char	*d = *s == '-' ? s + 1 : s;
	char		*end;
	long long	 n;

	if (*d < '0' || *d > '9')
		return -1;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

/*
 * A yes/no word: v (ignoring case) in yes (1) or no (0), both lists ended
 * by NULL; -1 for any other.
 */
int
bool_parse(const char *v, const char *const *yes, const char *const *no,
    int *out)
{
	size_t	 i;

	for (i = 0; yes[i] != NULL; i++)
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
	for (i = 0; no[i] != NULL; i++)
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	return -1;
}

/*
 * Read the file at path whole into *out (NUL-terminated, *outlen bytes,
 * the caller's to free).  -1 with errno set when it cannot be read, EFBIG
 * when it holds more than max bytes; what was read is wiped (it may be a
 * secret) and freed.
 */
int
file_read(const char *path, size_t max, char **out, size_t *outlen)
{
	FILE	*f;
	char	*buf;
	size_t	 n;
	int	 rc = -1, saved;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	buf = xmalloc(max + 1);
	n = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		errno = EIO;
		goto out;
	}
	if (n > max) {
		errno = EFBIG;
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	buf = NULL;
	rc = 0;
out:
	saved = errno;
	if (buf != NULL) {
		sodium_memzero(buf, max + 1);
		free(buf);
	}
	fclose(f);
	errno = saved;
	return rc;
}
