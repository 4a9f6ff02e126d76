/*
 * fcgi-auth: the command line.  Every subcommand loads the configuration
 * the same way (--config FILE, else the default path if present, then
 * FCGI_AUTH_* variables) and answers --help and --version.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "extern.h"

struct config	*cfg;
const char	*config_path;	/* --config, re-read by serve at SIGHUP */

static const char *const usage_top =
"usage: fcgi-auth [--config FILE] COMMAND [ARGS]\n"
"\n"
"commands:\n"
"  serve [--listen ADDR] [--workers N]   run the FastCGI server\n"
"  migrate [status]                      apply or list sql/NNN_*.sql\n"
"  check-config                          validate and print the config\n"
"  user add|list|show|disable|enable ... manage users (fcgi-auth user --help)\n"
"  user grant|revoke EMAIL ROLE          change a user's roles\n"
"  user sessions|logout EMAIL            list or end a user's sessions\n"
"  user set-password|delete EMAIL        set a password (stdin), delete\n"
"  import-users [--dry-run] FILE|-       import users (JSON lines or CSV)\n"
"  user mfa-reset EMAIL                  turn off a user's second factor\n"
"  outbox status|replay                  inspect or re-send events\n"
"  audit prune --older-than DAYS         delete old audit rows\n"
"  keygen rs256|es256 --kid ID [--dir D] write a signing key pair\n"
"  doctor                                check backends, schema, clock, keys\n"
"\n"
"options:\n"
"  -c, --config FILE   configuration file (default " CONFIG_DEFAULT_PATH ")\n"
"  -h, --help          this help\n"
"  -V, --version       print the version\n"
"\n"
"exit status: 0 done, 1 failed (a backend, a file), 2 usage, 3 not found,\n"
"4 already exists.  See fcgi-auth(8) and fcgi-auth.conf(5).\n";

static int
want_help(int argc, char **argv, const char *text)
{
	int	 i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			fputs(text, stdout);
			return 1;
		}
		if (strcmp(argv[i], "--version") == 0 ||
		    strcmp(argv[i], "-V") == 0) {
			printf("fcgi-auth %s\n", VERSION);
			return 1;
		}
	}
	return 0;
}

static int
load_config(const char *path, int flags)
{
	char		*err = NULL;
	enum log_level	 l;
	enum log_format	 f;

	cfg = xcalloc(1, sizeof(*cfg));
	if (config_load(cfg, path, flags, &err) == -1) {
		fprintf(stderr, "fcgi-auth: %s\n", err);
		free(err);
		config_free(cfg);
		free(cfg);
		cfg = NULL;
		return -1;
	}
	if (log_level_parse(cfg->log_level, &l) == 0)
		log_set_level(l);
	if (log_format_parse(cfg->log_format, &f) == 0)
		log_set_format(f);
	return 0;
}

static void
unload_config(void)
{
	if (cfg != NULL) {
		config_free(cfg);
		free(cfg);
		cfg = NULL;
	}
}

static int
cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "workers", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*listen = NULL;
	sigset_t	 sigs;
	char		*err = NULL;
	long long	 n;
	int		 ch, rc = 1;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "l:w:", opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			listen = optarg;
			break;
		case 'w':
			if (num_parse(optarg, 1, 4096, &n) == -1) {
				fprintf(stderr, "fcgi-auth: --workers: "
				    "expected 1 to 4096\n");
				return 2;
			}
			cfg->workers = n;
			/* so that a reload reads the same, not "restart needed" */
			setenv("FCGI_AUTH_WORKERS", optarg, 1);
			break;
		default:
			return 2;
		}
	}
	if (cfg->database_url[0] == '\0') {
		fprintf(stderr, "fcgi-auth: database_url: missing\n");
		return 1;
	}
	server_signals(&sigs);
	if (log_open(cfg->log_file, &err) == -1) {
		fprintf(stderr, "fcgi-auth: %s\n", err);
		free(err);
		return 1;
	}
	if (token_init(cfg, &err) == -1) {
		fprintf(stderr, "fcgi-auth: %s\n", err);
		free(err);
		return 1;
	}
	tcache_init();
	if (password_init(cfg) == -1) {
		fprintf(stderr, "fcgi-auth: cannot start the hash pool\n");
		goto out_token;
	}
	if (db_init(cfg) == -1 || store_init(cfg) == -1) {
		fprintf(stderr, "fcgi-auth: cannot set up the backends\n");
		goto out_password;
	}
	if (event_init() == -1) {
		fprintf(stderr, "fcgi-auth: cannot start the event relay\n");
		goto out_backends;
	}
	if (sentinel_watch_start(cfg, store_failover) == -1) {
		fprintf(stderr, "fcgi-auth: cannot start the failover "
		    "watcher\n");
		goto out_events;
	}
	reload_start(cfg, cfg->workers);	/* before the mailer and rpc */
	if (once_init(cfg) == -1 || mail_init(cfg, &err) == -1 ||
	    mailer_init() == -1) {
		fprintf(stderr, "fcgi-auth: %s\n", err != NULL ? err :
		    "cannot start the mailer");
		free(err);
		goto out_mail;
	}
	if (revoke_init() == -1) {
		fprintf(stderr, "fcgi-auth: cannot start the revocation "
		    "listener\n");
		goto out_mail;
	}
	if (rpc_init() == -1) {
		fprintf(stderr, "fcgi-auth: cannot start the RPC responder\n");
		goto out_revoke;
	}
	if (server_run(cfg, listen, config_path) == 0)
		rc = 0;
	rpc_shutdown();
out_revoke:
	revoke_shutdown();
out_mail:
	mailer_shutdown();
	mail_shutdown();
	once_shutdown();
out_events:
	sentinel_watch_stop();
	event_shutdown();
	reload_stop();	/* cfg is the boot generation again */
out_backends:
	store_shutdown();
	db_shutdown();
out_password:
	password_shutdown();
out_token:
	tcache_shutdown();
	token_shutdown();
	return rc;
}

static int
cmd_migrate(int argc, char **argv)
{
	char	*err = NULL;
	int	 status = 0;

	if (argc > 2 || (argc == 2 && strcmp(argv[1], "status") != 0)) {
		fprintf(stderr, "usage: fcgi-auth migrate [status]\n");
		return 2;
	}
	status = argc == 2;
	if (cfg->database_url[0] == '\0') {
		fprintf(stderr, "fcgi-auth: database_url: missing\n");
		return 1;
	}
	if (db_migrate(cfg->database_url, cfg->sql_dir, status, stdout,
	    &err) == -1) {
		fprintf(stderr, "fcgi-auth: migrate: %s\n", err);
		free(err);
		return 1;
	}
	return 0;
}

static int
cmd_check_config(int argc, char **argv)
{
	char	*err = NULL;

	(void)argc;
	(void)argv;
	if (token_init(cfg, &err) == -1) {
		fprintf(stderr, "fcgi-auth: %s\n", err);
		free(err);
		return 1;
	}
	token_shutdown();
	config_print(cfg, stdout);
	return 0;
}

static int
cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kid", required_argument, NULL, 'k' },
		{ "dir", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*kid = NULL, *dir = ".";
	char		*err = NULL;
	int		 ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "k:d:", opts, NULL)) != -1) {
		if (ch == 'k')
			kid = optarg;
		else if (ch == 'd')
			dir = optarg;
		else
			return 2;
	}
	if (optind + 1 != argc || kid == NULL) {
		fprintf(stderr, "usage: fcgi-auth keygen rs256|es256 --kid ID "
		    "[--dir DIR]\n");
		return 2;
	}
	if (token_keygen_check(argv[optind], kid, &err) == -1) {
		fprintf(stderr, "fcgi-auth: keygen: %s\n", err);
		free(err);
		return 2;
	}
	if (token_keygen(argv[optind], kid, dir, &err) == -1) {
		fprintf(stderr, "fcgi-auth: keygen: %s\n", err);
		free(err);
		return 1;
	}
	return 0;
}

/* What a command needs loaded before it runs. */
#define CMD_CONFIG	0x01	/* the configuration */
#define CMD_SECRET	0x02	/* and jwt_secret: it signs */

static const struct command {
	const char	*name;
	int		(*fn)(int, char **);
	int		 needs;
	const char	*help;
} commands[] = {
	{ "serve", cmd_serve, CMD_CONFIG | CMD_SECRET,
	    "usage: fcgi-auth serve [--listen PATH|HOST:PORT] [--workers N]\n"
	    "Without a listen address, the socket on fd 0 (spawn-fcgi, "
	    "lighttpd bin-path)\nor systemd's LISTEN_FDS is used.\n" },
	{ "migrate", cmd_migrate, CMD_CONFIG,
	    "usage: fcgi-auth migrate [status]\n"
	    "Applies sql_dir/NNN_*.sql in order, each in a transaction, once;\n"
	    "refuses a file whose checksum changed after it was applied.\n" },
	{ "check-config", cmd_check_config, CMD_CONFIG | CMD_SECRET,
	    "usage: fcgi-auth check-config\n"
	    "Validates the configuration and prints the effective values, "
	    "secrets masked.\n" },
	{ "user", cli_user, CMD_CONFIG, cli_user_usage },
	{ "outbox", cli_outbox, CMD_CONFIG, cli_outbox_usage },
	{ "audit", cli_audit, CMD_CONFIG,
	    "usage: fcgi-auth audit prune --older-than DAYS\n"
	    "Deletes audit rows older than DAYS days and prints how many.\n" },
	{ "import-users", cli_import, CMD_CONFIG, cli_import_usage },
	{ "keygen", cmd_keygen, 0,
	    "usage: fcgi-auth keygen rs256|es256 --kid ID [--dir DIR]\n"
	    "Writes DIR/ID.pem (private, 0600) and DIR/ID.pub.pem.\n" },
	{ "doctor", cli_doctor, 1,
	    "usage: fcgi-auth doctor\n"
	    "Checks PostgreSQL, Redis (and Sentinel), the schema, the clock "
	    "against\nPostgreSQL and the secret files: one line per check, "
	    "exit 1 on a FAIL.\n" },
};

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const struct command	*c = NULL;
	const char		*path = NULL;
	size_t			 i;
	int			 ch, rc;

	if (sodium_init() < 0) {
		fprintf(stderr, "fcgi-auth: libsodium failed to start\n");
		return 1;
	}
	/* stop at the command: its options are its own */
	while ((ch = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			fputs(usage_top, stdout);
			return 0;
		case 'V':
			printf("fcgi-auth %s\n", VERSION);
			return 0;
		default:
			fputs(usage_top, stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		fputs(usage_top, stderr);
		return 2;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			c = &commands[i];
	if (c == NULL) {
		fprintf(stderr, "fcgi-auth: unknown command '%s'\n%s",
		    argv[0], usage_top);
		return 2;
	}
	if (want_help(argc, argv, c->help))
		return 0;
	config_path = path;
	if ((c->needs & CMD_CONFIG) && load_config(path,
	    (c->needs & CMD_SECRET) ? 0 : CONFIG_SECRET_OPTIONAL) == -1)
		return 1;
	rc = c->fn(argc, argv);
	unload_config();
	return rc;
}
