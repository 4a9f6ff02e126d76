/*
 * Operator commands on the event outbox: `outbox status` (what is waiting,
 * how old the oldest is, attempts) and `outbox replay` (mark published
 * events unpublished again, so a running service's relay sends them once
 * more -- e.g. after a subscriber lost them).  Replay only reaches rows
 * still kept (outbox_retention).  Exit codes as in cli_user.c.
 */
#include "config.h"

#include <limits.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"

#define CLI_OK			0
#define CLI_FAIL		1	/* a backend failed */
#define CLI_USAGE		2	/* bad command, option or value */
#define CLI_NOTFOUND		3	/* nothing matched */

int	 cli_outbox(int, char **);
extern const char cli_outbox_usage[];

/* The one usage text of `outbox`: its --help (main.c) and its errors. */
const char cli_outbox_usage[] =
"usage: fcgi-auth outbox status [--json]\n"
"       fcgi-auth outbox replay --event-id UUID | --from ID [--to ID]\n"
"replay marks kept events unpublished again; a running fcgi-auth serve\n"
"publishes them within a second.  Exit status: 0 done, 1 PostgreSQL\n"
"failed, 2 usage, 3 no such event.\n";

static int
outbox_status(int json)
{
	json_t		*st = NULL, *ev;
	const char	*name;

	if (db_outbox_status(&st) != DB_OK) {
		fprintf(stderr, "fcgi-auth: PostgreSQL is unavailable (check "
		    "database_url and that the server is up)\n");
		return CLI_FAIL;
	}
	if (json) {
		json_dumpf(st, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		printf("pending:          %lld\n",
		    (long long)json_integer_value(json_object_get(st,
		    "pending")));
		printf("published (kept): %lld\n",
		    (long long)json_integer_value(json_object_get(st,
		    "published")));
		printf("lag:              %.1f s\n",
		    json_real_value(json_object_get(st, "lagSeconds")));
		printf("max attempts:     %lld\n",
		    (long long)json_integer_value(json_object_get(st,
		    "maxAttempts")));
		printf("last published:   %s\n",
		    json_is_string(json_object_get(st, "lastPublishedAt")) ?
		    json_string_value(json_object_get(st, "lastPublishedAt")) :
		    "never");
		json_object_foreach(json_object_get(st, "events"), name, ev)
			printf("  %-24s pending %lld, published %lld\n", name,
			    (long long)json_integer_value(json_object_get(ev,
			    "pending")),
			    (long long)json_integer_value(json_object_get(ev,
			    "published")));
	}
	json_decref(st);
	return CLI_OK;
}

static int
parse_id(const char *opt, const char *v, long long *out)
{
	if (num_parse(v, 1, LLONG_MAX, out) == -1) {
		fprintf(stderr, "fcgi-auth: %s: expected an outbox row id (a "
		    "positive number)\n", opt);
		return -1;
	}
	return 0;
}

static int
outbox_replay(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "event-id", required_argument, NULL, 'e' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*event_id = NULL;
	unsigned char	 b[16];
	long long	 from = 0, to = 0, n = 0;
	int		 ch, rc;

	optind = 0;	/* 0: glibc starts over, permuting (main used '+') */
	while ((ch = getopt_long(argc, argv, "e:f:t:", opts, NULL)) != -1) {
		switch (ch) {
		case 'e':
			if (uuid_parse(b, optarg, strlen(optarg)) == -1) {
				fprintf(stderr, "fcgi-auth: --event-id %s: not "
				    "an event id (the eventId of the message, "
				    "a UUID)\n", optarg);
				return CLI_USAGE;
			}
			event_id = optarg;
			break;
		case 'f':
			if (parse_id("--from", optarg, &from) == -1)
				return CLI_USAGE;
			break;
		case 't':
			if (parse_id("--to", optarg, &to) == -1)
				return CLI_USAGE;
			break;
		default:
			return CLI_USAGE;
		}
	}
	if (optind != argc || (event_id == NULL) == (from == 0) ||
	    (event_id != NULL && to != 0) || (to != 0 && to < from)) {
		fprintf(stderr, "fcgi-auth: outbox replay: give --event-id, "
		    "or --from (and --to not below it)\n%s", cli_outbox_usage);
		return CLI_USAGE;
	}
	rc = db_outbox_replay(event_id, from, to, &n);
	if (rc == DB_NOTFOUND) {
		if (event_id != NULL)
			fprintf(stderr, "fcgi-auth: no outbox event %s (pruned "
			    "after outbox_retention, or never written)\n",
			    event_id);
		else if (to != 0)
			fprintf(stderr, "fcgi-auth: no published outbox row "
			    "with an id from %lld to %lld (see `fcgi-auth "
			    "outbox status`)\n", from, to);
		else
			fprintf(stderr, "fcgi-auth: no published outbox row "
			    "with an id from %lld on (see `fcgi-auth outbox "
			    "status`)\n", from);
		return CLI_NOTFOUND;
	}
	if (rc != DB_OK) {
		fprintf(stderr, "fcgi-auth: PostgreSQL is unavailable (check "
		    "database_url and that the server is up)\n");
		return CLI_FAIL;
	}
	printf("%lld event%s queued for publishing again\n", n,
	    n == 1 ? "" : "s");
	return CLI_OK;
}

int
cli_outbox(int argc, char **argv)
{
	int	 rc;

	if (argc >= 2 && strcmp(argv[1], "status") == 0) {
		if (argc > 3 || (argc == 3 && strcmp(argv[2], "--json") != 0)) {
			fputs(cli_outbox_usage, stderr);
			return CLI_USAGE;
		}
		if (db_init(cfg) == -1)
			return CLI_FAIL;
		rc = outbox_status(argc == 3);
	} else if (argc >= 2 && strcmp(argv[1], "replay") == 0) {
		if (db_init(cfg) == -1)
			return CLI_FAIL;
		rc = outbox_replay(argc - 1, argv + 1);
	} else {
		fputs(cli_outbox_usage, stderr);
		return CLI_USAGE;
	}
	db_shutdown();
	return rc;
}
