/*
 * Operator commands on users: add, list, show, grant/revoke a role (how
 * the first admin is made), delete, and the dispatch of `user`; the
 * commands that end access are cli_session.c's, import-users is
 * cli_import.c's.  Everything goes through db.c, store.c and session.c;
 * every change writes its audit row.
 * Results on stdout (--json: one JSON document), errors on stderr naming
 * what to fix, and the exit codes below (fcgi-auth(8), EXIT STATUS).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "extern.h"
#include "cli_int.h"

/* The one usage text of `user`: its --help (main.c) and its errors. */
const char cli_user_usage[] =
"usage: fcgi-auth user add EMAIL [--first-name N] [--last-name N] "
"[--role R]...\n"
"                      [--password-file FILE|-] [--json]\n"
"       fcgi-auth user list [--limit N] [--offset N] [--json]\n"
"       fcgi-auth user show EMAIL [--json]\n"
"       fcgi-auth user disable|enable EMAIL [--json]\n"
"       fcgi-auth user grant|revoke EMAIL ROLE [--json]\n"
"       fcgi-auth user sessions EMAIL [--json]\n"
"       fcgi-auth user logout EMAIL [--session ID] [--json]\n"
"       fcgi-auth user set-password EMAIL [--password-file FILE|-] [--json]\n"
"       fcgi-auth user delete EMAIL [--json]\n"
"       fcgi-auth user mfa-reset EMAIL\n"
"Without --password-file, user add and set-password read the password from\n"
"standard input (prompting without echo on a terminal).  disable refuses\n"
"login and refresh and ends every session and access token at once; so do\n"
"set-password (for the old password's sessions) and delete, which also\n"
"erases the email, ip and user agent of the user's audit rows.  Exit\n"
"status: 0 done, 1 a backend failed, 2 usage, 3 no such user or session,\n"
"4 the email is taken.\n";

int
cli_fail(int code, const char *fmt, ...)
{
	va_list	 ap;

	fputs("fcgi-auth: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

void
cli_json_out(json_t *j, int compact)
{
	json_dumpf(j, stdout, compact ? JSON_COMPACT : JSON_INDENT(2));
	putchar('\n');
}

static int
parse_count(const char *opt, const char *v, long max, long *out)
{
	long long	 n;

	if (num_parse(v, 0, max, &n) == -1) {
		fprintf(stderr, "fcgi-auth: %s: expected a number from 0 to "
		    "%ld\n", opt, max);
		return -1;
	}
	*out = (long)n;
	return 0;
}

/*
 * Options of the user commands; allowed names the ones this subcommand
 * takes (the short letters).  0, or CLI_USAGE with the reason printed.
 */
static int
uopts_parse(int argc, char **argv, const char *allowed, struct uopts *o)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "password-file", required_argument, NULL, 'p' },
		{ "first-name", required_argument, NULL, 'f' },
		{ "last-name", required_argument, NULL, 'l' },
		{ "role", required_argument, NULL, 'r' },
		{ "session", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'n' },
		{ "offset", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*why;
	int		 ch;

	memset(o, 0, sizeof(*o));
	o->limit = CLI_LIST_DEFAULT;
	snprintf(o->roles, sizeof(o->roles), "user");
	optind = 0;	/* 0: glibc starts over, permuting (main used '+') */
	opterr = 1;
	while ((ch = getopt_long(argc, argv, "jp:f:l:r:s:n:o:", opts,
	    NULL)) != -1) {
		if (ch == '?' || ch == ':')
			return CLI_USAGE;
		if (strchr(allowed, ch) == NULL)
			return cli_fail(CLI_USAGE, "user %s: option %s does "
			    "not apply", argv[0], argv[optind - 1]);
		switch (ch) {
		case 'j':
			o->json = 1;
			break;
		case 'p':
			o->password_file = optarg;
			break;
		case 'f':
		case 'l':
			if (validate_name(optarg, strlen(optarg), &why) == -1)
				return cli_fail(CLI_USAGE, "--%s-name: %s",
				    ch == 'f' ? "first" : "last", why);
			if (ch == 'f')
				o->first = optarg;
			else
				o->last = optarg;
			break;
		case 'r':
			if (validate_role(optarg, strlen(optarg)) == -1)
				return cli_fail(CLI_USAGE, "--role %s: a role "
				    "must match " FA_ROLE_PATTERN, optarg);
			if (roles_edit(o->roles, sizeof(o->roles), optarg,
			    1) == -1)
				return cli_fail(CLI_USAGE, "--role: at most "
				    "%d roles", FA_ROLES_MAX);
			break;
		case 's':
			o->session = optarg;
			break;
		case 'n':
			if (parse_count("--limit", optarg, DB_USER_LIST_MAX,
			    &o->limit) == -1)
				return CLI_USAGE;
			break;
		case 'o':
			if (parse_count("--offset", optarg, 1L << 30,
			    &o->offset) == -1)
				return CLI_USAGE;
			break;
		}
	}
	return CLI_OK;
}

/* Look the user up; prints what went wrong and returns its exit code. */
int
cli_user_arg(const char *arg, struct user *u)
{
	char		 email[FA_EMAIL_MAX + 1];
	const char	*why;
	int		 rc;

	memset(u, 0, sizeof(*u));
	if (email_canon(arg, strlen(arg), email, &why) == -1)
		return cli_fail(CLI_USAGE, "email '%s' %s", arg, why);
	if ((rc = db_user_by_email(email, u)) == DB_NOTFOUND)
		return cli_fail(CLI_NOTFOUND, "no user with email %s "
		    "(see `fcgi-auth user list`)", email);
	if (rc != DB_OK)
		return cli_fail(CLI_FAIL, "PostgreSQL is unavailable "
		    "(check database_url and that the server is up)");
	return CLI_OK;
}

static json_t *
user_out(const struct user *u)
{
	json_t	*j = user_json(u);

	json_object_set_new(j, "disabled", json_boolean(u->disabled));
	return j;
}

void
cli_user_print(const struct user *u, int json)
{
	json_t	*j;

	if (json) {
		j = user_out(u);
		cli_json_out(j, 0);
		json_decref(j);
		return;
	}
	printf("id:        %s\nemail:     %s\nfirstName: %s\nlastName:  %s\n"
	    "roles:     %s\ndisabled:  %s\ncreatedAt: %s\n", u->id, u->email,
	    u->first_name ? u->first_name : "", u->last_name ? u->last_name :
	    "", u->roles, u->disabled ? "yes" : "no", u->created_at);
}

/* Read one password line: from file ("-": stdin), else stdin (no echo). */
int
cli_read_password(const char *file, const char *email, char *buf, size_t sz,
    size_t *len)
{
	struct termios	 old, quiet;
	FILE		*f = stdin;
	int		 tty = 0, rc = -1;

	if (file != NULL && strcmp(file, "-") != 0 &&
	    (f = fopen(file, "r")) == NULL) {
		fprintf(stderr, "fcgi-auth: --password-file %s: %s\n", file,
		    strerror(errno));
		return -1;
	}
	if (f == stdin && isatty(STDIN_FILENO) &&
	    tcgetattr(STDIN_FILENO, &old) == 0) {
		tty = 1;
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		fprintf(stderr, "Password for %s: ", email);
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	if (fgets(buf, (int)sz, f) == NULL) {
		fprintf(stderr, "%sfcgi-auth: no password given (use "
		    "--password-file FILE or standard input)\n", tty ? "\n" :
		    "");
		goto out;
	}
	*len = strcspn(buf, "\r\n");
	if (buf[*len] == '\0' && *len == sz - 1) {
		fprintf(stderr, "fcgi-auth: password: longer than %d bytes\n",
		    FA_PASSWORD_MAX);
		goto out;
	}
	buf[*len] = '\0';
	rc = 0;
out:
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (f != stdin)
		fclose(f);
	return rc;
}

static int
user_add(const char *arg, const struct uopts *o)
{
	struct user	 u, out;
	struct audit	 a;
	char		 email[FA_EMAIL_MAX + 1], pw[FA_PASSWORD_MAX + 2];
	char		 hash[128];
	const char	*why;
	json_t		*detail = NULL;
	size_t		 pwlen = 0;
	int		 rc = CLI_FAIL, dbrc;

	memset(&u, 0, sizeof(u));
	memset(&out, 0, sizeof(out));
	if (email_canon(arg, strlen(arg), email, &why) == -1)
		return cli_fail(CLI_USAGE, "email '%s' %s", arg, why);
	if (cli_read_password(o->password_file, email, pw, sizeof(pw),
	    &pwlen) == -1)
		return CLI_USAGE;
	if (validate_password(pw, pwlen, &why) == -1) {
		rc = cli_fail(CLI_USAGE, "password %s", why);
		goto out;
	}
	if (password_init(cfg) == -1) {
		rc = cli_fail(CLI_FAIL, "cannot start the password hashing "
		    "(password_memlimit too large for this machine?)");
		goto out;
	}
	dbrc = password_hash(pw, pwlen, hash);
	password_shutdown();
	if (dbrc == -1) {
		rc = cli_fail(CLI_FAIL, "cannot hash the password");
		goto out;
	}
	detail = json_pack("{s:s}", "by", "cli");
	audit_init(&a, NULL, AUDIT_REGISTER, NULL, NULL);
	a.email = email;
	a.detail = detail;
	a.outbox_event = event_enabled(EVENT_USER_REGISTERED);
	dbrc = db_user_create(email, hash, o->first, o->last, &a, &u);
	sodium_memzero(hash, sizeof(hash));
	if (dbrc == DB_CONFLICT) {
		rc = cli_fail(CLI_EXISTS, "a user with email %s exists "
		    "(`fcgi-auth user show %s`)", email, email);
		goto out;
	}
	if (dbrc != DB_OK) {
		rc = cli_fail(CLI_FAIL, "PostgreSQL is unavailable (check "
		    "database_url and that the server is up)");
		goto out;
	}
	if (strcmp(o->roles, "user") != 0) {
		audit_init(&a, NULL, AUDIT_ROLE_CHANGE, u.id, NULL);
		a.email = u.email;
		a.detail = detail;
		if (db_user_set_roles(u.id, o->roles, &a, &out) != DB_OK) {
			rc = cli_fail(CLI_FAIL, "user %s created, but the "
			    "roles were not stored: run `fcgi-auth user grant`",
			    email);
			goto out;
		}
		user_free(&u);
		u = out;
		memset(&out, 0, sizeof(out));
	}
	cli_user_print(&u, o->json);
	rc = CLI_OK;
out:
	sodium_memzero(pw, sizeof(pw));
	json_decref(detail);
	user_free(&u);
	user_free(&out);
	return rc;
}

static int
user_list(const struct uopts *o)
{
	struct user	*list;
	json_t		*users, *u;
	size_t		 i, count;

	if (db_user_list(o->limit, o->offset, &list, &count) != DB_OK)
		return cli_fail(CLI_FAIL, "PostgreSQL is unavailable (check "
		    "database_url and that the server is up)");
	users = json_array();
	for (i = 0; i < count; i++) {
		u = user_json(&list[i]);
		json_object_set_new(u, "disabled",
		    json_boolean(list[i].disabled));
		json_array_append_new(users, u);
	}
	user_list_free(list, count);
	if (o->json)
		cli_json_out(users, 0);
	else {
		printf("%-36s  %-8s  %-24s  %-24s  %s\n", "ID", "STATUS",
		    "CREATED", "ROLES", "EMAIL");
		json_array_foreach(users, i, u) {
			char	 roles[FA_ROLES_LEN];

			(void)roles_from_json(json_object_get(u, "roles"), 0,
			    roles, sizeof(roles));
			printf("%-36s  %-8s  %-24s  %-24s  %s\n",
			    json_string_value(json_object_get(u, "id")),
			    json_is_true(json_object_get(u, "disabled")) ?
			    "disabled" : "active",
			    json_string_value(json_object_get(u, "createdAt")),
			    roles,
			    json_string_value(json_object_get(u, "email")));
		}
	}
	json_decref(users);
	return CLI_OK;
}

static int
user_roles(const char *arg, const char *role, int add, const struct uopts *o)
{
	struct user	 u, out;
	struct audit	 a;
	json_t		*detail = NULL;
	long long	 cutoff;
	int		 rc;

	memset(&u, 0, sizeof(u));
	memset(&out, 0, sizeof(out));
	if (validate_role(role, strlen(role)) == -1)
		return cli_fail(CLI_USAGE, "role '%s' must match "
		    FA_ROLE_PATTERN, role);
	if ((rc = cli_user_arg(arg, &u)) != CLI_OK)
		goto out;
	rc = CLI_FAIL;
	detail = json_pack("{s:s, s:s}", "before", u.roles, "by", "cli");
	if (roles_edit(u.roles, sizeof(u.roles), role, add) == -1) {
		rc = cli_fail(CLI_USAGE, "%s has %d roles already, the most "
		    "a user may hold", u.email, FA_ROLES_MAX);
		goto out;
	}
	audit_init(&a, NULL, AUDIT_ROLE_CHANGE, u.id, NULL);
	a.email = u.email;
	a.detail = detail;
	if (db_user_set_roles(u.id, u.roles, &a, &out) != DB_OK) {
		rc = cli_fail(CLI_FAIL, "could not store the roles "
		    "(PostgreSQL unavailable?)");
		goto out;
	}
	if (store_user_cutoff(u.id, cfg->access_ttl, &cutoff) == -1) {
		rc = cli_fail(CLI_FAIL, "roles stored, but Redis is "
		    "unavailable: access tokens issued before keep their old "
		    "roles until they expire (check redis_host/redis_port)");
		goto out;
	}
	if (o->json)
		cli_user_print(&out, 1);
	else
		printf("%s: roles %s\n", out.email, out.roles);
	rc = CLI_OK;
out:
	json_decref(detail);
	user_free(&u);
	user_free(&out);
	return rc;
}

static int
user_show(const char *arg, const struct uopts *o)
{
	struct user	 u;
	int		 rc;

	if ((rc = cli_user_arg(arg, &u)) == CLI_OK)
		cli_user_print(&u, o->json);
	user_free(&u);
	return rc;
}

static int
user_delete(const char *arg, const struct uopts *o)
{
	struct user	 u;
	struct audit	 a;
	json_t		*detail = NULL, *data = NULL, *j;
	size_t		 n = 0;
	int		 rc;

	if ((rc = cli_user_arg(arg, &u)) != CLI_OK)
		goto out;
	if (session_end_all(NULL, &u, SESSION_END_DELETED, "cli",
	    &n) == -1) {
		rc = cli_fail(CLI_FAIL, "Redis is unavailable (check "
		    "redis_host, redis_port and redis_password); %s is not "
		    "deleted", u.email);
		goto out;
	}
	detail = json_pack("{s:s, s:I}", "by", "cli", "sessions",
	    (json_int_t)n);
	data = json_pack("{s:s}", "userId", u.id);
	audit_init(&a, NULL, AUDIT_USER_DELETE, u.id, NULL);
	a.detail = detail;
	a.outbox_event = event_enabled(EVENT_USER_DELETED);
	a.outbox_data = data;
	switch (db_user_delete(u.id, &a)) {
	case DB_OK:
		break;
	case DB_NOTFOUND:
		rc = cli_fail(CLI_NOTFOUND, "user %s was deleted meanwhile",
		    u.email);
		goto out;
	default:
		rc = cli_fail(CLI_FAIL, "%s: sessions ended, but the user was "
		    "not deleted (PostgreSQL unavailable?); run it again",
		    u.email);
		goto out;
	}
	if (o->json) {
		j = json_pack("{s:s, s:b, s:I}", "userId", u.id, "deleted", 1,
		    "sessionsEnded", (json_int_t)n);
		cli_json_out(j, 0);
		json_decref(j);
	} else
		printf("%s: deleted (%s), %zu session%s ended\n", u.email, u.id,
		    n, n == 1 ? "" : "s");
	rc = CLI_OK;
out:
	json_decref(detail);
	json_decref(data);
	user_free(&u);
	return rc;
}

static const struct ucmd {
	const char	*name;
	int		 nargs;		/* positional arguments after it */
	const char	*opts;		/* short letters of its options */
	int		 redis;		/* needs store_init */
} ucmds[] = {
	{ "add",	1, "jpflr",	0 },
	{ "list",	0, "jno",	0 },
	{ "show",	1, "j",		0 },
	{ "disable",	1, "j",		1 },
	{ "enable",	1, "j",		0 },
	{ "grant",	2, "j",		1 },
	{ "revoke",	2, "j",		1 },
	{ "sessions",	1, "j",		1 },
	{ "logout",	1, "sj",	1 },
	{ "set-password", 1, "pj",	1 },
	{ "delete",	1, "j",		1 },
};

int
cli_user(int argc, char **argv)
{
	const struct ucmd	*c = NULL;
	struct uopts		 o;
	char			**pos;
	size_t			 i;
	int			 rc;

	if (argc < 2) {
		fputs(cli_user_usage, stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "mfa-reset") == 0)
		return cli_session_mfa_reset(argc - 1, argv + 1);
	for (i = 0; i < sizeof(ucmds) / sizeof(ucmds[0]); i++)
		if (strcmp(argv[1], ucmds[i].name) == 0)
			c = &ucmds[i];
	if (c == NULL) {
		fprintf(stderr, "fcgi-auth: user: unknown command '%s'\n%s",
		    argv[1], cli_user_usage);
		return CLI_USAGE;
	}
	/* getopt permutes: the positional arguments end up last */
	if ((rc = uopts_parse(argc - 1, argv + 1, c->opts, &o)) != CLI_OK)
		return rc;
	if (argc - 1 - optind != c->nargs) {
		fprintf(stderr, "fcgi-auth: user %s: expected %d argument%s\n"
		    "%s", c->name, c->nargs, c->nargs == 1 ? "" : "s",
		    cli_user_usage);
		return CLI_USAGE;
	}
	pos = argv + 1 + optind;
	/* delete erases the audit rows of an email: may scan the log */
	if (strcmp(c->name, "delete") == 0 &&
	    cfg->backend_timeout_ms < IMPORT_TIMEOUT_MS)
		cfg->backend_timeout_ms = IMPORT_TIMEOUT_MS;
	if (db_init(cfg) == -1 || (c->redis && store_init(cfg) == -1))
		return cli_fail(CLI_FAIL, "cannot set up the backends");
	if (strcmp(c->name, "add") == 0)
		rc = user_add(pos[0], &o);
	else if (strcmp(c->name, "list") == 0)
		rc = user_list(&o);
	else if (strcmp(c->name, "show") == 0)
		rc = user_show(pos[0], &o);
	else if (strcmp(c->name, "disable") == 0)
		rc = cli_session_disable(pos[0], 1, &o);
	else if (strcmp(c->name, "enable") == 0)
		rc = cli_session_disable(pos[0], 0, &o);
	else if (strcmp(c->name, "grant") == 0)
		rc = user_roles(pos[0], pos[1], 1, &o);
	else if (strcmp(c->name, "revoke") == 0)
		rc = user_roles(pos[0], pos[1], 0, &o);
	else if (strcmp(c->name, "sessions") == 0)
		rc = cli_session_list(pos[0], &o);
	else if (strcmp(c->name, "set-password") == 0)
		rc = cli_session_password(pos[0], &o);
	else if (strcmp(c->name, "delete") == 0)
		rc = user_delete(pos[0], &o);
	else
		rc = cli_session_logout(pos[0], &o);
	if (c->redis)
		store_shutdown();
	db_shutdown();
	return rc;
}
