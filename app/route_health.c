/* GET /auth/health: 200 when PostgreSQL and Redis answer, 503 otherwise. */
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
