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
