/*
 * GET /auth/metrics: the Prometheus text exposition (metrics.c).  No token:
 * the shipped nginx and lighttpd configs allow it to internal clients only,
 * like /auth/introspect.
 */
#include "config.h"

#include <stdlib.h>

#include "extern.h"

void
route_metrics(struct request *r)
{
	size_t	 len;
	char	*text;

	text = metrics_render(&len);
	free(r->out);
	r->out = text;
	r->outlen = len;
	r->status = 200;
	resp_header(r, "Content-Type", METRICS_CONTENT_TYPE);
	resp_header(r, "Cache-Control", "no-store");
}
