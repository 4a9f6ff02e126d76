/*
 * revoke.c: the revocation cache on the verify path.  Every process keeps
 * the blacklisted jtis, the revoked sessions and the users' cut-offs in a
 * hash table, so verify answers without a Redis round trip.
 *
 * One listener thread keeps the table current: it subscribes to the
 * revocation channel (store_sub_open), then loads what Redis holds
 * (store_revocations_load, which SCANs on a connection of its own; what is
 * published meanwhile is applied too, merging is idempotent), and then
 * reads the channel, sending a PING every REVOKE_PING_MS.  Redis answers a
 * PING after every message published before it, so when the PONG of a PING
 * sent at time s arrives, the table holds every revocation made before s:
 * fresh_ms = s.  The table is trusted only while it is "live": subscribed,
 * loaded, and fresh within REVOKE_FRESH_MS; otherwise revoke_check answers
 * -1 and the caller asks Redis (store_token_revoked).  So a revocation made
 * anywhere at time T is seen here from T + REVOKE_FRESH_MS on at the
 * latest, whatever failed in between: a slow or stalled Redis, a lost
 * subscription (EOF, CLIENT KILL, restart: not live at once, then
 * resubscribe, reload, live again), a stalled listener thread.  Revocations
 * made by this process come up from the store through the hook revoke_init
 * registers (store_on_revoke) before the request returns, so they hold
 * here at once.
 *
 * The table: chained buckets (a power of two, doubling past one entry per
 * bucket), SipHash-2-4 with a random key, entries of fixed size.  Lookups
 * allocate nothing and take the read lock of a writer-preferring rwlock;
 * the listener sweeps expired entries a slice at a time, taking the write
 * lock for REVOKE_SWEEP_BATCH buckets at once.  Entries expire
 * when their Redis keys do (bl: the token's exp; srev and cutoff: access
 * ttl + leeway + slack), so memory is bounded by the revocations of one
 * token lifetime, and by REVOKE_ENTRIES_MAX beyond which verify asks Redis.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "extern.h"

#define HASH_IN_MAX	(1 + FA_UUID_LEN + 1 + FA_UUID_LEN)

struct rnode {
	struct rnode	*next;
	uint64_t	 hash;
	long long	 value;		/* the cut-off; 1 for the others */
	long long	 expires;	/* monotonic ms */
	enum revoke_kind kind;
	char		 uid[FA_UUID_LEN + 1];
	char		 key[FA_UUID_LEN + 1];
};

struct rtab {
	struct rnode	**b;
	size_t		 nb;		/* a power of two */
	size_t		 n;
	size_t		 max;
	size_t		 cursor;	/* next bucket to sweep */
	unsigned char	 seed[crypto_shorthash_KEYBYTES];
};

static struct {
	pthread_rwlock_t lock;		/* guards tab and its entries */
	struct rtab	*tab;
	pthread_t	 thread;
	int		 started;
	atomic_int	 stop;
	atomic_int	 synced;	/* subscribed and loaded */
	atomic_int	 full;		/* a revocation did not fit */
	atomic_llong	 fresh_ms;	/* the table holds every revocation
					   made before this (monotonic ms) */
	atomic_ullong	 syncs;
	atomic_ullong	 messages;
	atomic_ullong	 fallbacks;
} rv = {
	.lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP,
};

/* The listener's state for one subscription. */
struct listen {
	struct store_sub *sub;
	long long	 ping_sent;	/* monotonic ms of the PING in flight */
};

/* ---------------------------------------------------------------- table */

struct rtab *
rtab_new(size_t max)
{
	struct rtab	*t;

	t = xcalloc(1, sizeof(*t));
	t->nb = REVOKE_BUCKETS_MIN;
	t->b = xcalloc(t->nb, sizeof(*t->b));
	t->max = max > 0 ? max : (size_t)REVOKE_ENTRIES_MAX;
	crypto_shorthash_keygen(t->seed);
	return t;
}

void
rtab_free(struct rtab *t)
{
	struct rnode	*e, *next;
	size_t		 i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nb; i++)
		for (e = t->b[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(t->b);
	free(t);
}

size_t
rtab_count(const struct rtab *t)
{
	return t->n;
}

size_t
rtab_buckets(const struct rtab *t)
{
	return t->nb;
}

/* 0 and the hash of (kind, uid, key), or -1: too long to be in the table. */
static int
rtab_hash(const struct rtab *t, enum revoke_kind kind, const char *uid,
    const char *key, uint64_t *h)
{
	unsigned char	 in[HASH_IN_MAX], out[crypto_shorthash_BYTES];
	size_t		 ul, kl;

	if ((ul = strnlen(uid, FA_UUID_LEN + 1)) > FA_UUID_LEN ||
	    (kl = strnlen(key, FA_UUID_LEN + 1)) > FA_UUID_LEN)
		return -1;
	in[0] = (unsigned char)kind;
	memcpy(in + 1, uid, ul);
	in[1 + ul] = '\0';
	memcpy(in + 2 + ul, key, kl);
	crypto_shorthash(out, in, 2 + ul + kl, t->seed);
	memcpy(h, out, sizeof(*h));
	return 0;
}

static struct rnode *
rtab_find(const struct rtab *t, enum revoke_kind kind, const char *uid,
    const char *key)
{
	struct rnode	*e;
	uint64_t	 h;

	if (rtab_hash(t, kind, uid, key, &h) == -1)
		return NULL;
	for (e = t->b[h & (t->nb - 1)]; e != NULL; e = e->next)
		if (e->hash == h && e->kind == kind &&
		    strcmp(e->uid, uid) == 0 && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static void
rtab_grow(struct rtab *t)
{
	struct rnode	**nb, *e, *next;
	size_t		 i, n = t->nb * 2;

	nb = xcalloc(n, sizeof(*nb));
	for (i = 0; i < t->nb; i++)
		for (e = t->b[i]; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	free(t->b);
	t->b = nb;
	t->nb = n;
	t->cursor = 0;
}

/*
 * Add a revocation, or merge it into the one there: the latest expiry and
 * the highest cut-off.  A cut-off can go down only after its key expired in
 * Redis and was set anew; an old one within REVOKE_RESET_MS of its end is
 * therefore replaced, which is safe: every token below it was issued more
 * than a token lifetime ago.  0, or -1 when the table is full.
 */
int
rtab_put(struct rtab *t, const struct revocation *r, long long now)
{
	struct rnode	*e;
	long long	 expires;
	uint64_t	 h;

	if (r->ttl_ms <= 0)
		return 0;	/* already gone from Redis */
	expires = now + r->ttl_ms;
	if ((e = rtab_find(t, r->kind, r->uid, r->key)) != NULL) {
		if (e->expires <= now ||
		    (r->kind == REVOKE_CUTOFF && r->value < e->value &&
		    e->expires - now < REVOKE_RESET_MS)) {
			e->value = r->value;
			e->expires = expires;
			return 0;
		}
		if (r->value > e->value)
			e->value = r->value;
		if (expires > e->expires)
			e->expires = expires;
		return 0;
	}
	if (rtab_hash(t, r->kind, r->uid, r->key, &h) == -1)
		return 0;	/* no token can carry such ids */
	if (t->n >= t->max)
		return -1;
	if (t->n >= t->nb)
		rtab_grow(t);
	e = xcalloc(1, sizeof(*e));
	e->hash = h;
	e->kind = r->kind;
	e->value = r->value;
	e->expires = expires;
	memcpy(e->uid, r->uid, sizeof(e->uid));
	memcpy(e->key, r->key, sizeof(e->key));
	e->uid[FA_UUID_LEN] = e->key[FA_UUID_LEN] = '\0';
	e->next = t->b[h & (t->nb - 1)];
	t->b[h & (t->nb - 1)] = e;
	t->n++;
	return 0;
}

/* 0 alive, 1 revoked at now.  Three lookups, no allocation. */
int
rtab_check(const struct rtab *t, const char *uid, const char *sid,
    const char *jti, long long gen, long long now)
{
	const struct rnode	*e;

	if (t->n == 0)		/* the common case: three hashes saved */
		return 0;
	if ((e = rtab_find(t, REVOKE_JTI, uid, jti)) != NULL &&
	    e->expires > now)
		return 1;
	if ((e = rtab_find(t, REVOKE_SESSION, uid, sid)) != NULL &&
	    e->expires > now)
		return 1;
	if ((e = rtab_find(t, REVOKE_CUTOFF, uid, "")) != NULL &&
	    e->expires > now && gen < e->value)
		return 1;
	return 0;
}

size_t
rtab_sweep(struct rtab *t, long long now, size_t budget)
{
	struct rnode	**pp, *e;
	size_t		 dropped = 0;

	if (budget > t->nb)
		budget = t->nb;
	while (budget-- > 0) {
		pp = &t->b[t->cursor];
		while ((e = *pp) != NULL) {
			if (e->expires <= now) {
				*pp = e->next;
				free(e);
				t->n--;
				dropped++;
			} else
				pp = &e->next;
		}
		t->cursor = (t->cursor + 1) & (t->nb - 1);
	}
	return dropped;
}

/* ---------------------------------------------------------------- cache */

/*
 * Whether the table may answer at now: subscribed and loaded, not full, and
 * a PING sent at fresh (0: none yet) answered within REVOKE_FRESH_MS.
 */
int
revoke_live(int synced, int full, long long fresh, long long now)
{
	return synced && !full && fresh != 0 && now - fresh >= 0 &&
	    now - fresh <= REVOKE_FRESH_MS;
}

static void
revoke_lost(void)
{
	atomic_store(&rv.synced, 0);
	atomic_store(&rv.fresh_ms, 0);
}

/* Into the table; -1 when full (and the cache is not live from now). */
static int
revoke_apply(const struct revocation *r)
{
	int	 rc = 0;

	pthread_rwlock_wrlock(&rv.lock);
	if (rv.tab != NULL)
		rc = rtab_put(rv.tab, r, mono_ms());
	pthread_rwlock_unlock(&rv.lock);
	if (rc == -1) {
		if (!atomic_exchange(&rv.full, 1))
			log_error(NULL, "revoke: more than %ld revocations; "
			    "verify asks Redis", (long)REVOKE_ENTRIES_MAX);
		revoke_lost();
	}
	return rc;
}

int
revoke_check(const char *uid, const char *sid, const char *jti,
    long long gen)
{
	long long	 now = mono_ms();
	int		 rc = -1;

	if (revoke_live(atomic_load_explicit(&rv.synced, memory_order_acquire),
	    atomic_load_explicit(&rv.full, memory_order_relaxed),
	    atomic_load_explicit(&rv.fresh_ms, memory_order_acquire), now)) {
		pthread_rwlock_rdlock(&rv.lock);
		if (rv.tab != NULL)
			rc = rtab_check(rv.tab, uid, sid, jti, gen, now);
		pthread_rwlock_unlock(&rv.lock);
	}
	if (rc == -1)
		atomic_fetch_add_explicit(&rv.fallbacks, 1,
		    memory_order_relaxed);
	return rc;
}

void
revoke_stats(struct revoke_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->live = revoke_live(atomic_load(&rv.synced), atomic_load(&rv.full),
	    atomic_load(&rv.fresh_ms), mono_ms());
	pthread_rwlock_rdlock(&rv.lock);
	s->entries = rv.tab != NULL ? rtab_count(rv.tab) : 0;
	pthread_rwlock_unlock(&rv.lock);
	s->syncs = atomic_load(&rv.syncs);
	s->messages = atomic_load(&rv.messages);
	s->fallbacks = atomic_load(&rv.fallbacks);
}

/* ------------------------------------------------------------- listener */

/* From the subscription: a revocation, or NULL for the PONG. */
static int
on_feed(void *arg, const struct revocation *r)
{
	struct listen	*l = arg;

	if (r == NULL) {
		if (l->ping_sent != 0 && atomic_load(&rv.synced))
			atomic_store_explicit(&rv.fresh_ms, l->ping_sent,
			    memory_order_release);
		l->ping_sent = 0;
		return 0;
	}
	atomic_fetch_add_explicit(&rv.messages, 1, memory_order_relaxed);
	return revoke_apply(r);
}

/* From the load: a revocation, or NULL between batches. */
static int
on_load(void *arg, const struct revocation *r)
{
	struct listen	*l = arg;

	if (atomic_load(&rv.stop))
		return -1;
	if (r != NULL)
		return revoke_apply(r);
	/* keep the subscription read while the load goes on */
	return store_sub_read(l->sub, 0, on_feed, l);
}

/*
 * Visit budget buckets (0: a slice of the table), REVOKE_SWEEP_BATCH at a
 * time under the write lock, so a verify waits behind one batch at most.
 */
static void
revoke_sweep(size_t budget)
{
	size_t	 step;

	pthread_rwlock_rdlock(&rv.lock);
	if (budget == 0 && rv.tab != NULL)
		budget = rv.tab->nb / REVOKE_SWEEP_SLICES;
	if (budget > 0 && rv.tab != NULL && budget > rv.tab->nb)
		budget = rv.tab->nb;
	pthread_rwlock_unlock(&rv.lock);
	if (budget < REVOKE_SWEEP_MIN)
		budget = REVOKE_SWEEP_MIN;
	while (budget > 0 && !atomic_load(&rv.stop)) {
		step = budget < REVOKE_SWEEP_BATCH ? budget :
		    REVOKE_SWEEP_BATCH;
		pthread_rwlock_wrlock(&rv.lock);
		if (rv.tab != NULL)
			(void)rtab_sweep(rv.tab, mono_ms(), step);
		pthread_rwlock_unlock(&rv.lock);
		budget -= step;
	}
}

/*
 * Read the subscription, PING it, sweep, until it is lost or we stop:
 * returns the reason.
 */
static const char *
revoke_listen(struct listen *l)
{
	long long	 now, last_ping = 0, next_sweep, wait;

	next_sweep = mono_ms() + REVOKE_SWEEP_MS;
	while (!atomic_load(&rv.stop)) {
		if (atomic_load(&rv.full))
			return "table full";
		now = mono_ms();
		if (l->ping_sent == 0 && now - last_ping >= REVOKE_PING_MS) {
			if (store_sub_ping(l->sub) == -1)
				return store_sub_error(l->sub);
			l->ping_sent = last_ping = now;
		} else if (l->ping_sent != 0 &&
		    now - l->ping_sent > REVOKE_DEAD_MS)
			return "no answer to PING";
		if (now >= next_sweep) {
			revoke_sweep(0);
			next_sweep = now + REVOKE_SWEEP_MS;
		}
		if (l->ping_sent != 0)
			wait = l->ping_sent + REVOKE_DEAD_MS - now;
		else
			wait = last_ping + REVOKE_PING_MS - now;
		if (wait > REVOKE_PING_MS)
			wait = REVOKE_PING_MS;
		if (wait < 1)
			wait = 1;
		if (store_sub_read(l->sub, (long)wait, on_feed, l) == -1)
			return store_sub_error(l->sub);
	}
	return "stopping";
}

static void
revoke_sleep(long ms)
{
	struct timespec	 ts;
	long		 step;

	while (ms > 0 && !atomic_load(&rv.stop)) {
		step = ms < REVOKE_PING_MS ? ms : REVOKE_PING_MS;
		ts.tv_sec = 0;
		ts.tv_nsec = step * 1000000L;
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static void *
revoke_main(void *arg)
{
	struct listen	 l;
	char		 err[160];
	const char	*why;
	long		 backoff = REVOKE_BACKOFF_MIN_MS;
	long long	 t0;
	size_t		 n;
	int		 quiet = 0;	/* this outage is logged already */

	(void)arg;
	while (!atomic_load(&rv.stop)) {
		memset(&l, 0, sizeof(l));
		if (atomic_load(&rv.full)) {
			/* make room before loading again */
			revoke_sweep((size_t)-1);
			atomic_store(&rv.full, 0);
		}
		t0 = mono_ms();
		if (store_sub_open(&l.sub) == -1) {
			why = store_sub_error(l.sub);
			goto lost;
		}
		if (store_revocations_load(on_load, &l, err,
		    sizeof(err)) == -1) {
			why = err;
			goto lost;
		}
		if (atomic_load(&rv.full)) {
			why = "table full";
			goto lost;
		}
		/* live once the first PING is answered */
		atomic_store(&rv.synced, 1);
		atomic_fetch_add(&rv.syncs, 1);
		pthread_rwlock_rdlock(&rv.lock);
		n = rv.tab != NULL ? rtab_count(rv.tab) : 0;
		pthread_rwlock_unlock(&rv.lock);
		log_info(NULL, "revoke: subscribed, %zu revocations in memory "
		    "(%lld ms); verify answers from memory", n, mono_ms() - t0);
		quiet = 0;
		backoff = REVOKE_BACKOFF_MIN_MS;
		why = revoke_listen(&l);
lost:
		revoke_lost();
		if (why != err)	/* it may live in l.sub */
			snprintf(err, sizeof(err), "%s", why);
		store_sub_close(l.sub);
		l.sub = NULL;
		if (atomic_load(&rv.stop))
			break;
		if (!quiet)
			log_warn(NULL, "revoke: subscription lost (%s); verify "
			    "asks Redis until it is back", err);
		else
			log_debug(NULL, "revoke: resubscribe: %s", err);
		quiet = 1;
		revoke_sleep(backoff);
		backoff = backoff * 2 > REVOKE_BACKOFF_MAX_MS ?
		    REVOKE_BACKOFF_MAX_MS : backoff * 2;
	}
	return NULL;
}

/* store.c's hook: this process's own revocations, in the cache at once. */
static void
revoke_noted(const struct revocation *r, void *arg)
{
	(void)arg;
	(void)revoke_apply(r);
}

/*
 * Make the table and start the listener (store_init first).  Until the
 * first subscription is loaded and answered, revoke_check says -1.
 */
int
revoke_init(void)
{
	int		 rc;

	if (rv.started)
		return 0;
	pthread_rwlock_wrlock(&rv.lock);
	rv.tab = rtab_new(REVOKE_ENTRIES_MAX);
	pthread_rwlock_unlock(&rv.lock);
	atomic_store(&rv.stop, 0);
	atomic_store(&rv.full, 0);
	revoke_lost();
	/* serve blocked the signals before: the thread inherits that */
	rc = pthread_create(&rv.thread, NULL, revoke_main, NULL);
	if (rc != 0) {
		log_error(NULL, "revoke: cannot start the listener");
		goto fail;
	}
	rv.started = 1;
	store_on_revoke(revoke_noted, NULL);
	return 0;
fail:
	pthread_rwlock_wrlock(&rv.lock);
	rtab_free(rv.tab);
	rv.tab = NULL;
	pthread_rwlock_unlock(&rv.lock);
	return -1;
}

void
revoke_shutdown(void)
{
	if (!rv.started)
		return;
	atomic_store(&rv.stop, 1);
	pthread_join(rv.thread, NULL);
	rv.started = 0;
	revoke_lost();
	pthread_rwlock_wrlock(&rv.lock);
	rtab_free(rv.tab);
	rv.tab = NULL;
	pthread_rwlock_unlock(&rv.lock);
}
