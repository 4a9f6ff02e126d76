/*
 * `fcgi-auth audit prune --older-than DAYS`: delete audit rows older than
 * DAYS days (the log is otherwise append-only; see sql/004_lifecycle.sql).
 * Exit codes as in cli_user.c.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"

#define CLI_OK			0
#define CLI_FAIL		1	/* a backend failed */
#define CLI_USAGE		2	/* bad command, option or value */

int	 cli_audit(int, char **);

static const char *const audit_usage =
"usage: fcgi-auth audit prune --older-than DAYS\n";

static int
audit_prune(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "older-than", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 }
	};
	long long	 count, days = -1;
	int		 ch, rc;

	optind = 0;	/* 0: glibc starts over, permuting (main used '+') */
	while ((ch = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		if (ch != 'o') {
			fputs(audit_usage, stderr);
			return CLI_USAGE;
		}
		if (num_parse(optarg, 0, AUDIT_PRUNE_DAYS_MAX, &days) == -1) {
			fprintf(stderr, "fcgi-auth: --older-than: expected 0 "
			    "to %d days\n", AUDIT_PRUNE_DAYS_MAX);
			return CLI_USAGE;
		}
	}
	if (days < 0 || optind != argc) {
		fputs(audit_usage, stderr);
		return CLI_USAGE;
	}
	if (db_init(cfg) == -1)
		return CLI_FAIL;
	rc = db_audit_prune(days, &count);
	db_shutdown();
	if (rc != DB_OK) {
		fprintf(stderr, "fcgi-auth: PostgreSQL is unavailable (check "
		    "database_url and that the server is up)\n");
		return CLI_FAIL;
	}
	printf("%lld audit row(s) older than %lld day(s) deleted\n", count,
	    days);
	return CLI_OK;
}

int
cli_audit(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "prune") == 0)
		return audit_prune(argc - 1, argv + 1);
	fputs(audit_usage, stderr);
	return CLI_USAGE;
}
