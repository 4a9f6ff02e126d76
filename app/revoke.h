/*
 * revoke.c: the in-memory revocation cache; included at the end of
 * extern.h, after every type it uses.
 */
#ifndef FA_REVOKE_H
#define FA_REVOKE_H

/* revoke.c: in-memory revocation cache (see revoke.c). */
#define REVOKE_PING_MS		25	/* heartbeat on the subscription */
#define REVOKE_FRESH_MS		80	/* trust the cache this long after a
					   PING was sent whose PONG came back
					   (API.md: 100 ms between instances) */
#define REVOKE_DEAD_MS		1000	/* no PONG for this long: reconnect */
#define REVOKE_BACKOFF_MIN_MS	50	/* reconnect backoff, doubling */
#define REVOKE_BACKOFF_MAX_MS	2000
#define REVOKE_SWEEP_MS		1000	/* expired entries dropped this often */
#define REVOKE_SWEEP_SLICES	16	/* a sweep visits buckets/16 buckets */
#define REVOKE_SWEEP_MIN	1024	/* ... and at least this many */
#define REVOKE_SWEEP_BATCH	64	/* buckets per hold of the write lock */
#define REVOKE_BUCKETS_MIN	1024	/* initial buckets (a power of two) */
#define REVOKE_ENTRIES_MAX	(1L << 20)	/* beyond: verify asks Redis */
#define REVOKE_RESET_MS		30000	/* a cut-off this close to its end may
					   be replaced by a lower one */
struct revoke_stats {
	int		 live;		/* verify answers from memory now */
	size_t		 entries;
	unsigned long long syncs;	/* subscribe + load done */
	unsigned long long messages;	/* revocations received */
	unsigned long long fallbacks;	/* checks handed to Redis */
};
int		 revoke_init(void);	/* starts the listener */
void		 revoke_shutdown(void);
/*
 * 0 alive, 1 revoked (jti blacklisted, session revoked, or gen below the
 * user's cut-off), -1 the cache is not live: ask store_token_revoked.
 * No allocation, no system call, a read lock for three lookups.
 */
int		 revoke_check(const char *uid, const char *sid, const char *jti,
		    long long gen);
void		 revoke_stats(struct revoke_stats *);
/* 1 when the table may answer at now (pure: the state is passed in). */
int		 revoke_live(int synced, int full, long long fresh_ms,
		    long long now_ms);
/*
 * The table itself, pure (no lock, no clock: now_ms is any monotonic ms),
 * for the unit tests.  rtab_put merges (latest expiry; highest cut-off,
 * unless the old one is within REVOKE_RESET_MS of its end) and is -1 when
 * full.  rtab_sweep visits up to budget buckets from where it stopped and
 * returns the entries it dropped.
 */
struct rtab;
struct rtab	*rtab_new(size_t max_entries);
void		 rtab_free(struct rtab *);
int		 rtab_put(struct rtab *, const struct revocation *,
		    long long now_ms);
int		 rtab_check(const struct rtab *, const char *uid,
		    const char *sid, const char *jti, long long gen,
		    long long now_ms);
size_t		 rtab_sweep(struct rtab *, long long now_ms, size_t budget);
size_t		 rtab_count(const struct rtab *);
size_t		 rtab_buckets(const struct rtab *);

#endif /* FA_REVOKE_H */
