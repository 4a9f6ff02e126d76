/*
 * connpool.c: the slot skeleton of a connection pool, without the
 * connections; both pools use it, PostgreSQL's (db.c) and Redis' (store.c).
 * The owner keeps its connections in an array of its own, indexed like the
 * slots; the pool only says which slot a thread may use.  What is the
 * owner's stays with it: connecting and the stale check after a borrow
 * (and for store.c the failover epoch, checked under its own lock right
 * after connpool_get), and the error counting.
 *
 *	connpool_init(p, n)	n slots, all free and empty
 *	connpool_get(p, deadline, &i, &live)
 *				borrow slot i before the deadline (mono_ms):
 *				a free slot that holds a connection if there is
 *				one, else a free empty one; *live says which.
 *				-1 when none is free in time.
 *	connpool_put(p, i, live)
 *				return slot i; live: it still holds a
 *				connection (the owner dropped it if 0)
 *	connpool_destroy(p)	free the slots (the owner closes its
 *				connections first)
 *
 * Thread-safe; waits use CLOCK_MONOTONIC.  Preferring live slots keeps the
 * number of open connections at what the load needs.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "extern.h"

int
connpool_init(struct connpool *p, size_t n)
{
	pthread_condattr_t	 ca;

	memset(p, 0, sizeof(*p));
	if (n == 0)
		n = 1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	p->busy = xcalloc(n, 1);
	p->live = xcalloc(n, 1);
	p->n = n;
	return 0;
}

void
connpool_destroy(struct connpool *p)
{
	if (p->busy == NULL)
		return;
	free(p->busy);
	free(p->live);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	memset(p, 0, sizeof(*p));
}

/* A free slot, a live one if any: its index, or -1.  Under p->mu. */
static long
connpool_pick(const struct connpool *p)
{
	long	 pick = -1;
	size_t	 i;

	for (i = 0; i < p->n; i++) {
		if (p->busy[i])
			continue;
		if (p->live[i])
			return (long)i;
		if (pick == -1)
			pick = (long)i;
	}
	return pick;
}

int
connpool_get(struct connpool *p, long long deadline, size_t *slot, int *live)
{
	struct timespec	 ts;
	long long	 left;
	long		 i;

	if (p->busy == NULL)
		return -1;
	pthread_mutex_lock(&p->mu);
	while ((i = connpool_pick(p)) == -1) {
		left = deadline - mono_ms();
		if (left <= 0) {
			pthread_mutex_unlock(&p->mu);
			return -1;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	}
	p->busy[i] = 1;
	*slot = (size_t)i;
	*live = p->live[i];
	pthread_mutex_unlock(&p->mu);
	return 0;
}

void
connpool_put(struct connpool *p, size_t slot, int live)
{
	if (p->busy == NULL || slot >= p->n)
		return;
	pthread_mutex_lock(&p->mu);
	p->busy[slot] = 0;
	p->live[slot] = live != 0;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}
