/*
 * db_probe.c: what fcgi-auth doctor asks PostgreSQL, on a short-lived
 * connection of its own (not the service pool): that it answers, who it
 * is, and how far its clock is from ours.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "extern.h"

/* PostgreSQL's clock against ours, the round trip halved: 0 or -1. */
static int
probe_clock(PGconn *pg, double *skew)
{
	PGresult	*res;
	long long	 t0, t1;
	int		 rc = -1;

	t0 = now_us();
	res = PQexec(pg, "SELECT extract(epoch FROM clock_timestamp())");
	t1 = now_us();
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		*skew = strtod(PQgetvalue(res, 0, 0), NULL) -
		    (double)(t0 + t1) / 2e6;
		rc = 0;
	}
	PQclear(res);
	return rc;
}

int
db_probe(const char *url, struct db_probe *p, char *err, size_t errsz)
{
	const char	*keys[] = { "connect_timeout", "application_name",
	    "dbname", NULL };
	const char	*vals[] = { DB_PROBE_CONNECT_TIMEOUT, DB_PROBE_APPNAME,
	    url, NULL };
	PGconn		*pg;
	int		 rc = -1;

	memset(p, 0, sizeof(*p));
	pg = PQconnectdbParams(keys, vals, 1);
	if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
		/* libpq's messages end in a newline and may span lines */
		snprintf(err, errsz, "%s", pg != NULL ? PQerrorMessage(pg) :
		    "out of memory");
		err[strcspn(err, "\r\n")] = '\0';
		goto out;
	}
	snprintf(p->db, sizeof(p->db), "%s", PQdb(pg));
	p->version = PQserverVersion(pg);
	p->clock_ok = probe_clock(pg, &p->skew) == 0;
	rc = 0;
out:
	PQfinish(pg);
	return rc;
}
