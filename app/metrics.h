/*
 * metrics.c: Prometheus counters; included at the end of extern.h, after
 * every type it uses.
 */
#ifndef FA_METRICS_H
#define FA_METRICS_H

/* metrics.c: Prometheus counters (see metrics.c). */
/*
 * Lock-free counters (C11 atomics) bumped on the request path and rendered
 * in the Prometheus text format by GET <prefix>/metrics.  Label sets are
 * fixed (the route table's patterns, the statuses we answer), so the number
 * of series is bounded whatever clients send.
 */
enum metrics_backend {
	METRICS_POSTGRES,
	METRICS_REDIS,
	METRICS_BACKEND__MAX
};
/* route: r->route (the matched pattern) or NULL for "other". */
#define METRICS_SHARDS		8	/* request counters, a set per thread
					   group, summed when scraped */
void		 metrics_request(size_t route_id, int status, long usec);
void		 metrics_login(int ok);
void		 metrics_refresh(void);
void		 metrics_reuse(void);
void		 metrics_backend_error(enum metrics_backend);
/* RPC responder: a request read, answered (usec from read to reply), or
 * dropped as malformed. */
void		 metrics_rpc_request(void);
void		 metrics_rpc_answer(long usec);
void		 metrics_rpc_drop(void);
enum metrics_mail {
	METRICS_MAIL_QUEUED,
	METRICS_MAIL_SENT,
	METRICS_MAIL_FAILED,
	METRICS_MAIL__MAX
};
void		 metrics_mail(enum metrics_mail);
/* The exposition text, owned by the caller; asks PostgreSQL for the outbox
 * lag (omitted when PostgreSQL is down). */
char		*metrics_render(size_t *len);
#define METRICS_PREFIX		"fcgi_auth_"
#define METRICS_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"

#endif /* FA_METRICS_H */
