/*
 * Metrics in the Prometheus text format (version 0.0.4).  The request path
 * only does relaxed atomic adds on fixed arrays: no lock, no allocation;
 * the per-request counters come in METRICS_SHARDS sets, a thread adding to
 * its own set (threads share a set only past METRICS_SHARDS), summed when
 * scraped, so the workers do not fight over cache lines.  Labels come from
 * closed sets -- the route table's labels (route.c; anything else is
 * "other") and the statuses the service answers (anything else is
 * "other") -- so the number of series is bounded whatever clients send.
 * The outbox gauges are read from PostgreSQL when scraped.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"

typedef _Atomic unsigned long long	counter_t;

static const int mstatuses[] = {
	200, 201, 202, 204, 400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 503
};
#define MSTATUSES	(sizeof(mstatuses) / sizeof(mstatuses[0]))

/* Upper bounds in microseconds, and as Prometheus writes them. */
static const struct {
	long		 usec;
	const char	*le;
} mbuckets[] = {
	{ 1000, "0.001" }, { 2500, "0.0025" }, { 5000, "0.005" },
	{ 10000, "0.01" }, { 25000, "0.025" }, { 50000, "0.05" },
	{ 100000, "0.1" }, { 250000, "0.25" }, { 500000, "0.5" },
	{ 1000000, "1" }, { 2500000, "2.5" }, { 5000000, "5" },
	{ 10000000, "10" },
};
#define MBUCKETS	(sizeof(mbuckets) / sizeof(mbuckets[0]))

static const char *const mbackends[METRICS_BACKEND__MAX] = {
	"postgres", "redis"
};

/* By route id (0: other), a set per shard. */
struct mshard {
	counter_t	 requests[ROUTE_IDS_MAX + 1][MSTATUSES + 1];
	counter_t	 buckets[ROUTE_IDS_MAX + 1][MBUCKETS + 1];	/* +Inf */
	counter_t	 usec_sum[ROUTE_IDS_MAX + 1];
} __attribute__((aligned(64)));

static struct mshard	 mshards[METRICS_SHARDS];
static unsigned int	 mthreads;	/* shards handed out */

static struct {
	counter_t	 logins[2];	/* failed, ok */
	counter_t	 refreshes;
	counter_t	 reuse;
	counter_t	 backend_errors[METRICS_BACKEND__MAX];
	counter_t	 rpc_requests;
	counter_t	 rpc_answers;
	counter_t	 rpc_drops;
	counter_t	 rpc_buckets[MBUCKETS + 1];	/* last: +Inf */
	counter_t	 rpc_usec_sum;
	counter_t	 mail[METRICS_MAIL__MAX];
} m;

static const char *const mmail[METRICS_MAIL__MAX] = {
	"queued", "sent", "failed"
};

static void
bump(counter_t *c, unsigned long long n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static unsigned long long
get(counter_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* This thread's set of request counters. */
static struct mshard *
mshard(void)
{
	static __thread struct mshard	*mine;

	if (mine == NULL)
		mine = &mshards[__atomic_fetch_add(&mthreads, 1,
		    __ATOMIC_RELAXED) % METRICS_SHARDS];
	return mine;
}

enum mwhich {
	MW_REQUESTS,	/* col: the status */
	MW_BUCKETS,	/* col: the bucket */
	MW_USEC_SUM
};

/* Summed over the shards and the route ids that share id's label (one
 * series each). */
static unsigned long long
get_label(size_t id, size_t col, enum mwhich w)
{
	const char		*label = route_table_label(id);
	unsigned long long	 v = 0;
	size_t			 k, i, n = route_table_size();
	struct mshard		*sh;

	for (k = 0; k <= n; k++) {
		if (k != id && strcmp(route_table_label(k), label) != 0)
			continue;
		for (i = 0; i < METRICS_SHARDS; i++) {
			sh = &mshards[i];
			v += get(w == MW_REQUESTS ? &sh->requests[k][col] :
			    w == MW_BUCKETS ? &sh->buckets[k][col] :
			    &sh->usec_sum[k]);
		}
	}
	return v;
}

/* 1 when an earlier id has id's label: its series is written there. */
static int
label_seen(size_t id)
{
	size_t	 k;

	for (k = 1; k < id; k++)
		if (strcmp(route_table_label(k), route_table_label(id)) == 0)
			return 1;
	return 0;
}

void
metrics_request(size_t route_id, int status, long usec)
{
	struct mshard	*sh = mshard();
	size_t		 ri = route_id <= ROUTE_IDS_MAX ? route_id : 0, si, bi;

	for (si = 0; si < MSTATUSES; si++)
		if (mstatuses[si] == status)
			break;
	if (usec < 0)
		usec = 0;
	for (bi = 0; bi < MBUCKETS; bi++)
		if (usec <= mbuckets[bi].usec)
			break;
	bump(&sh->requests[ri][si], 1);
	bump(&sh->buckets[ri][bi], 1);
	bump(&sh->usec_sum[ri], (unsigned long long)usec);
}

void
metrics_login(int ok)
{
	bump(&m.logins[ok != 0], 1);
}

void
metrics_refresh(void)
{
	bump(&m.refreshes, 1);
}

void
metrics_reuse(void)
{
	bump(&m.reuse, 1);
}

void
metrics_mail(enum metrics_mail what)
{
	if ((int)what >= 0 && what < METRICS_MAIL__MAX)
		bump(&m.mail[what], 1);
}

void
metrics_backend_error(enum metrics_backend b)
{
	if ((int)b >= 0 && b < METRICS_BACKEND__MAX)
		bump(&m.backend_errors[b], 1);
}

void
metrics_rpc_request(void)
{
	bump(&m.rpc_requests, 1);
}

void
metrics_rpc_drop(void)
{
	bump(&m.rpc_drops, 1);
}

void
metrics_rpc_answer(long usec)
{
	size_t	 bi;

	if (usec < 0)
		usec = 0;
	for (bi = 0; bi < MBUCKETS; bi++)
		if (usec <= mbuckets[bi].usec)
			break;
	bump(&m.rpc_answers, 1);
	bump(&m.rpc_buckets[bi], 1);
	bump(&m.rpc_usec_sum, (unsigned long long)usec);
}

static void
meta(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP " METRICS_PREFIX "%s %s\n", name, help);
	fprintf(f, "# TYPE " METRICS_PREFIX "%s %s\n", name, type);
}

/* Route ids in the order written: the table's, then "other". */
static size_t
route_nth(size_t i)
{
	return i < route_table_size() ? i + 1 : 0;
}

static void
render_requests(FILE *f)
{
	unsigned long long	 v, cum, b[MBUCKETS + 1];
	size_t			 i, ri, si, bi, n = route_table_size() + 1;
	char			 status[16];

	meta(f, "requests_total", "counter",
	    "Requests answered, by route pattern and HTTP status.");
	for (i = 0; i < n; i++) {
		if (label_seen(ri = route_nth(i)))
			continue;
		for (si = 0; si <= MSTATUSES; si++) {
			if ((v = get_label(ri, si, MW_REQUESTS)) == 0)
				continue;
			if (si < MSTATUSES)
				snprintf(status, sizeof(status), "%d",
				    mstatuses[si]);
			else
				snprintf(status, sizeof(status), "other");
			fprintf(f, METRICS_PREFIX "requests_total{route=\"%s\","
			    "status=\"%s\"} %llu\n", route_table_label(ri),
			    status, v);
		}
	}
	meta(f, "request_duration_seconds", "histogram",
	    "Time from reading the request to the answer being written.");
	for (i = 0; i < n; i++) {
		if (label_seen(ri = route_nth(i)))
			continue;
		/* one snapshot, so the buckets and the count agree */
		for (bi = 0, cum = 0; bi <= MBUCKETS; bi++)
			cum += b[bi] = get_label(ri, bi, MW_BUCKETS);
		if (cum == 0)
			continue;
		for (bi = 0, cum = 0; bi <= MBUCKETS; bi++) {
			cum += b[bi];
			fprintf(f, METRICS_PREFIX "request_duration_seconds_bucket"
			    "{route=\"%s\",le=\"%s\"} %llu\n",
			    route_table_label(ri), bi < MBUCKETS ?
			    mbuckets[bi].le : "+Inf", cum);
		}
		v = get_label(ri, 0, MW_USEC_SUM);
		fprintf(f, METRICS_PREFIX "request_duration_seconds_sum"
		    "{route=\"%s\"} %llu.%06llu\n", route_table_label(ri),
		    v / 1000000, v % 1000000);
		fprintf(f, METRICS_PREFIX "request_duration_seconds_count"
		    "{route=\"%s\"} %llu\n", route_table_label(ri), cum);
	}
}

static void
render_rpc(FILE *f)
{
	unsigned long long	 v, cum, b[MBUCKETS + 1];
	size_t			 bi;

	meta(f, "rpc_requests_total", "counter",
	    "Messages on the RPC request channel (auth.validate_token).");
	fprintf(f, METRICS_PREFIX "rpc_requests_total %llu\n",
	    get(&m.rpc_requests));
	meta(f, "rpc_answers_total", "counter",
	    "RPC requests answered by this instance (claimed first).");
	fprintf(f, METRICS_PREFIX "rpc_answers_total %llu\n",
	    get(&m.rpc_answers));
	meta(f, "rpc_drops_total", "counter",
	    "Malformed RPC requests dropped unanswered.");
	fprintf(f, METRICS_PREFIX "rpc_drops_total %llu\n", get(&m.rpc_drops));
	meta(f, "rpc_duration_seconds", "histogram",
	    "Time from reading an RPC request to its reply being published.");
	for (bi = 0, cum = 0; bi <= MBUCKETS; bi++)
		cum += b[bi] = get(&m.rpc_buckets[bi]);
	for (bi = 0, cum = 0; bi <= MBUCKETS; bi++) {
		cum += b[bi];
		fprintf(f, METRICS_PREFIX "rpc_duration_seconds_bucket"
		    "{le=\"%s\"} %llu\n", bi < MBUCKETS ? mbuckets[bi].le :
		    "+Inf", cum);
	}
	v = get(&m.rpc_usec_sum);
	fprintf(f, METRICS_PREFIX "rpc_duration_seconds_sum %llu.%06llu\n",
	    v / 1000000, v % 1000000);
	fprintf(f, METRICS_PREFIX "rpc_duration_seconds_count %llu\n", cum);
}

static void
render_outbox(FILE *f)
{
	long long	 pending;
	double		 lag;

	if (db_outbox_lag(&pending, &lag) != DB_OK)
		return;		/* counted as a backend error by db.c */
	meta(f, "outbox_pending", "gauge",
	    "Events written to the outbox and not yet published to Redis.");
	fprintf(f, METRICS_PREFIX "outbox_pending %lld\n", pending);
	meta(f, "outbox_lag_seconds", "gauge",
	    "Age of the oldest unpublished outbox event (0 when none).");
	fprintf(f, METRICS_PREFIX "outbox_lag_seconds %.3f\n", lag);
}

static void
render_mail(FILE *f)
{
	struct db_stats	 ds;
	long long	 pending;
	double		 age;
	size_t		 i;

	db_stats(&ds);
	meta(f, "mails_total", "counter",
	    "Mails queued, sent, and dropped (5xx, or past mail_retry_hours).");
	for (i = 0; i < METRICS_MAIL__MAX; i++)
		fprintf(f, METRICS_PREFIX "mails_total{result=\"%s\"} %llu\n",
		    mmail[i], i == METRICS_MAIL_QUEUED ? ds.mail_queued :
		    get(&m.mail[i]));
	if (db_mail_stats(&pending, &age) != DB_OK)
		return;
	meta(f, "mail_queue_pending", "gauge", "Mails waiting to be sent.");
	fprintf(f, METRICS_PREFIX "mail_queue_pending %lld\n", pending);
	meta(f, "mail_queue_age_seconds", "gauge",
	    "Age of the oldest mail waiting (0 when none).");
	fprintf(f, METRICS_PREFIX "mail_queue_age_seconds %.3f\n", age);
}

char *
metrics_render(size_t *len)
{
	struct db_stats		 ds;
	FILE			*f;
	char			*buf = NULL;
	struct store_stats	 ss;
	size_t			 i;

	*len = 0;
	db_stats(&ds);
	if ((f = open_memstream(&buf, len)) == NULL)
		abort();	/* out of memory, as xmalloc does */
	meta(f, "build_info", "gauge", "Always 1; the version as a label.");
	fprintf(f, METRICS_PREFIX "build_info{version=\"%s\"} 1\n", VERSION);
	render_requests(f);
	meta(f, "logins_total", "counter",
	    "Password logins, by result (failed: wrong credentials, unknown "
	    "or disabled user, rate limited).");
	fprintf(f, METRICS_PREFIX "logins_total{result=\"ok\"} %llu\n",
	    get(&m.logins[1]));
	fprintf(f, METRICS_PREFIX "logins_total{result=\"failed\"} %llu\n",
	    get(&m.logins[0]));
	meta(f, "refreshes_total", "counter",
	    "Successful refresh-token rotations (grace answers included).");
	fprintf(f, METRICS_PREFIX "refreshes_total %llu\n", get(&m.refreshes));
	meta(f, "refresh_reuse_total", "counter",
	    "Refresh tokens presented again after rotation: sessions revoked.");
	fprintf(f, METRICS_PREFIX "refresh_reuse_total %llu\n", get(&m.reuse));
	meta(f, "backend_errors_total", "counter",
	    "Failed connections, timeouts and broken replies, by backend.");
	store_stats(&ss);
	for (i = 0; i < METRICS_BACKEND__MAX; i++)
		fprintf(f, METRICS_PREFIX "backend_errors_total{backend=\"%s\"} "
		    "%llu\n", mbackends[i], i == METRICS_REDIS ? ss.errors :
		    i == METRICS_POSTGRES ? ds.errors :
		    get(&m.backend_errors[i]));
	render_rpc(f);
	render_outbox(f);
	render_mail(f);
	if (fclose(f) != 0 || buf == NULL)
		abort();
	return buf;
}
