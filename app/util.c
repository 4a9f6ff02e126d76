/* Clock helpers shared by every layer. */
#include "config.h"

#include <sys/time.h>

#include <time.h>

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
