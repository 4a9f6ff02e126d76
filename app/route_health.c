/*
 * GET /auth/health and /auth/health/ready: 200 when PostgreSQL and Redis
 * answer, 503 otherwise.  GET /auth/health/live: 200 while the process
 * serves requests, whatever the backends (a liveness probe must not
 * restart a healthy process because Redis is away).
 */
#include "config.h"

#include "extern.h"

void
route_health(struct request *r)
{
	int	 pg = db_ping() == 0, rd = store_ping() == 0;

	resp_json(r, pg && rd ? 200 : 503, json_pack("{s:s, s:s, s:s, s:s}",
	    "status", pg && rd ? "ok" : "degraded",
	    "postgres", pg ? "ok" : "down",
	    "redis", rd ? "ok" : "down",
	    "version", VERSION));
	resp_header(r, "Cache-Control", "no-store");
}

void
route_health_ready(struct request *r)
{
	route_health(r);
}

void
route_health_live(struct request *r)
{
	resp_json(r, 200, json_pack("{s:s, s:s}", "status", "ok",
	    "version", VERSION));
	resp_header(r, "Cache-Control", "no-store");
}
