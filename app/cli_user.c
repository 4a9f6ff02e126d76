/*
 * Operator commands on users: add, list, show, disable/enable, grant/revoke
 * a role (how the first admin is made), list and end sessions, and import
 * users with existing hashes (bcrypt from the NestJS services this
 * replaces, or Argon2id).  Everything goes through db.c and store.c; every
 * change writes its audit row.  Results on stdout (--json: one JSON
 * document), errors on stderr naming what to fix, and the exit codes below
 * (fcgi-auth(8), EXIT STATUS).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "extern.h"

#define CLI_LINE_MAX		8192
#define CLI_LIST_DEFAULT	1000	/* user list --limit */

/* Exit codes, the same for every command (fcgi-auth(8), EXIT STATUS). */
#define CLI_OK			0
#define CLI_FAIL		1	/* a backend failed; partly done */
#define CLI_USAGE		2	/* bad command, option or value */
#define CLI_NOTFOUND		3	/* no such user or session */
#define CLI_EXISTS		4	/* user add: the email is taken */

int	 cli_user(int, char **);
int	 cli_import(int, char **);
int	 cli_user_mfa_reset(int, char **);

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
"       fcgi-auth user logout EMAIL [--session ID]\n"
"       fcgi-auth user mfa-reset EMAIL\n"
"Without --password-file, user add reads the password from standard input\n"
"(prompting without echo on a terminal).  disable refuses login and refresh\n"
"and ends every session and access token at once.  Exit status: 0 done,\n"
"1 a backend failed, 2 usage, 3 no such user or session, 4 the email is\n"
"taken.\n";

struct uopts {
	int		 json;
	const char	*password_file;
	const char	*first;
	const char	*last;
	const char	*session;
	char		 roles[FA_ROLES_LEN];
	long		 limit;
	long		 offset;
};

static int
cli_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
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

static void
json_out(json_t *j, int compact)
{
	json_dumpf(j, stdout, compact ? JSON_COMPACT : JSON_INDENT(2));
	putchar('\n');
}

static int
roles_edit(char *roles, size_t sz, const char *role, int add)
{
	char	 out[FA_ROLES_LEN] = "", *tok, *save = NULL, copy[FA_ROLES_LEN];
	int	 have = 0, n = 0;
	size_t	 len;

	snprintf(copy, sizeof(copy), "%s", roles);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, role) == 0) {
			have = 1;
			if (!add)
				continue;
		}
		len = strlen(out);
		snprintf(out + len, sizeof(out) - len, "%s%s",
		    len ? "," : "", tok);
		n++;
	}
	if (add && !have) {
		if (n >= FA_ROLES_MAX)
			return -1;
		len = strlen(out);
		snprintf(out + len, sizeof(out) - len, "%s%s", len ? "," : "",
		    role);
	}
	snprintf(roles, sz, "%s", out);
	return 0;
}

static int
parse_count(const char *opt, const char *v, long max, long *out)
{
	char	*end;
	long	 n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || errno != 0 || n < 0 || n > max) {
		fprintf(stderr, "fcgi-auth: %s: expected a number from 0 to "
		    "%ld\n", opt, max);
		return -1;
	}
	*out = n;
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
				    "must match [a-z][a-z0-9_-]{0,31}", optarg);
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
static int
user_by_email_arg(const char *arg, struct user *u)
{
	char		 email[FA_EMAIL_MAX + 1];
	const char	*why;
	int		 rc;

	memset(u, 0, sizeof(*u));
	if (validate_email(arg, strlen(arg), email, &why) == -1)
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

static void
user_print(const struct user *u, int json)
{
	json_t	*j;

	if (json) {
		j = user_out(u);
		json_out(j, 0);
		json_decref(j);
		return;
	}
	printf("id:        %s\nemail:     %s\nfirstName: %s\nlastName:  %s\n"
	    "roles:     %s\ndisabled:  %s\ncreatedAt: %s\n", u->id, u->email,
	    u->first_name ? u->first_name : "", u->last_name ? u->last_name :
	    "", u->roles, u->disabled ? "yes" : "no", u->created_at);
}

/* Read one password line: from file ("-": stdin), else stdin (no echo). */
static int
read_password(const char *file, const char *email, char *buf, size_t sz,
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
	if (validate_email(arg, strlen(arg), email, &why) == -1)
		return cli_fail(CLI_USAGE, "email '%s' %s", arg, why);
	if (read_password(o->password_file, email, pw, sizeof(pw),
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
	memset(&a, 0, sizeof(a));
	a.event = AUDIT_REGISTER;
	a.email = email;
	a.success = 1;
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
		memset(&a, 0, sizeof(a));
		a.event = AUDIT_ROLE_CHANGE;
		a.user_id = u.id;
		a.email = u.email;
		a.success = 1;
		a.detail = detail;
		a.outbox_event = EVENT_NONE;
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
	user_print(&u, o->json);
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
	json_t		*users = NULL, *u;
	size_t		 i;

	if (db_user_list(o->limit, o->offset, &users) != DB_OK)
		return cli_fail(CLI_FAIL, "PostgreSQL is unavailable (check "
		    "database_url and that the server is up)");
	if (o->json)
		json_out(users, 0);
	else {
		printf("%-36s  %-8s  %-20s  %-24s  %s\n", "ID", "STATUS",
		    "CREATED", "ROLES", "EMAIL");
		json_array_foreach(users, i, u) {
			json_t	*r = json_object_get(u, "roles"), *v;
			char	 roles[FA_ROLES_LEN] = "";
			size_t	 k, n;

			json_array_foreach(r, k, v) {
				n = strlen(roles);
				snprintf(roles + n, sizeof(roles) - n, "%s%s",
				    n ? "," : "", json_string_value(v));
			}
			printf("%-36s  %-8s  %-20.20s  %-24s  %s\n",
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
		    "[a-z][a-z0-9_-]{0,31}", role);
	if ((rc = user_by_email_arg(arg, &u)) != CLI_OK)
		goto out;
	rc = CLI_FAIL;
	detail = json_pack("{s:s, s:s}", "before", u.roles, "by", "cli");
	if (roles_edit(u.roles, sizeof(u.roles), role, add) == -1) {
		rc = cli_fail(CLI_USAGE, "%s has %d roles already, the most "
		    "a user may hold", u.email, FA_ROLES_MAX);
		goto out;
	}
	memset(&a, 0, sizeof(a));
	a.event = AUDIT_ROLE_CHANGE;
	a.user_id = u.id;
	a.email = u.email;
	a.success = 1;
	a.detail = detail;
	a.outbox_event = EVENT_NONE;
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
		user_print(&out, 1);
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

	if ((rc = user_by_email_arg(arg, &u)) == CLI_OK)
		user_print(&u, o->json);
	user_free(&u);
	return rc;
}

/* Record one ended session: audit row and session.revoked event. */
static void
session_ended(const struct user *u, const char *sid, const char *reason)
{
	struct audit	 a;
	json_t		*data, *detail;

	data = json_pack("{s:s, s:s, s:s}", "userId", u->id, "sessionId", sid,
	    "reason", reason);
	detail = json_pack("{s:s, s:s}", "reason", reason, "by", "cli");
	memset(&a, 0, sizeof(a));
	a.event = AUDIT_SESSION_REVOKE;
	a.user_id = u->id;
	a.email = u->email;
	a.session_id = sid;
	a.success = 1;
	a.detail = detail;
	a.outbox_event = event_enabled(EVENT_SESSION_REVOKED);
	a.outbox_data = data;
	if (db_audit(&a) != DB_OK)
		fprintf(stderr, "fcgi-auth: warning: session %s revoked but "
		    "not audited (PostgreSQL unavailable?)\n", sid);
	json_decref(data);
	json_decref(detail);
}

/*
 * End every session of u and cut off its access tokens issued until now;
 * reason goes into the audit rows and events.  0, or -1 (Redis down).
 */
static int
sessions_end_all(const struct user *u, const char *reason, size_t *n)
{
	struct session_info	*list = NULL;
	struct audit		 a;
	json_t			*detail;
	long long		 cutoff;
	size_t			 i;

	*n = 0;
	if (store_session_list(u->id, &list, n) == -1 ||
	    store_user_revoke_all(u->id, NULL, cfg->access_ttl,
	    &cutoff) == -1) {
		free(list);
		return -1;
	}
	for (i = 0; i < *n; i++)
		session_ended(u, list[i].id, reason);
	free(list);
	detail = json_pack("{s:s, s:s, s:I}", "reason", reason, "by", "cli",
	    "sessions", (json_int_t)*n);
	memset(&a, 0, sizeof(a));
	a.event = AUDIT_LOGOUT_ALL;
	a.user_id = u->id;
	a.email = u->email;
	a.success = 1;
	a.detail = detail;
	a.outbox_event = EVENT_NONE;
	if (db_audit(&a) != DB_OK)
		fprintf(stderr, "fcgi-auth: warning: logout of %s not audited "
		    "(PostgreSQL unavailable?)\n", u->email);
	json_decref(detail);
	return 0;
}

/*
 * disable: refused at login and refresh from now on (db), and every
 * session and access token ends at once (Redis cut-off).
 */
static int
user_disable(const char *arg, int disable, const struct uopts *o)
{
	struct user	 u, out;
	size_t		 n = 0;
	int		 rc;

	memset(&out, 0, sizeof(out));
	if ((rc = user_by_email_arg(arg, &u)) != CLI_OK)
		goto out;
	rc = db_user_set_disabled(u.id, disable, "cli", &out);
	if (rc == DB_NOTFOUND) {
		rc = cli_fail(CLI_NOTFOUND, "user %s was deleted meanwhile",
		    u.email);
		goto out;
	}
	if (rc != DB_OK) {
		rc = cli_fail(CLI_FAIL, "PostgreSQL is unavailable (check "
		    "database_url and that the server is up)");
		goto out;
	}
	if (disable && sessions_end_all(&out, "disabled", &n) == -1) {
		rc = cli_fail(CLI_FAIL, "%s is disabled (no login, no "
		    "refresh), but Redis is unavailable: its access tokens "
		    "stay valid until they expire; run `fcgi-auth user logout "
		    "%s` once Redis is back", out.email, out.email);
		goto out;
	}
	if (o->json)
		user_print(&out, 1);
	else if (disable)
		printf("%s: disabled, %zu session%s ended\n", out.email, n,
		    n == 1 ? "" : "s");
	else
		printf("%s: enabled\n", out.email);
	rc = CLI_OK;
out:
	user_free(&u);
	user_free(&out);
	return rc;
}

static int
user_sessions(const char *arg, const struct uopts *o)
{
	struct session_info	*list = NULL;
	struct user		 u;
	char			 created[40], used[40];
	json_t			*arr;
	size_t			 n = 0, i;
	int			 rc;

	if ((rc = user_by_email_arg(arg, &u)) != CLI_OK)
		goto out;
	if (store_session_list(u.id, &list, &n) == -1) {
		rc = cli_fail(CLI_FAIL, "Redis is unavailable (check "
		    "redis_host, redis_port and redis_password)");
		goto out;
	}
	arr = json_array();
	if (!o->json)
		printf("%-36s  %-20s  %-20s  %-15s  %s\n", "SESSION",
		    "CREATED", "LAST USED", "IP", "USER AGENT");
	for (i = 0; i < n; i++) {
		rfc3339(created, list[i].created_ms);
		rfc3339(used, list[i].last_used_ms);
		if (o->json)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s,"
			    " s:s, s:s}", "id", list[i].id, "createdAt",
			    created, "lastUsedAt", used, "ip", list[i].ip,
			    "userAgent", list[i].user_agent));
		else
			printf("%-36s  %-20.20s  %-20.20s  %-15s  %s\n",
			    list[i].id, created, used, list[i].ip,
			    list[i].user_agent);
	}
	if (o->json) {
		json_t *j = json_pack("{s:s, s:o}", "userId", u.id,
		    "sessions", arr);
		json_out(j, 0);
		json_decref(j);
	} else
		json_decref(arr);
	rc = CLI_OK;
out:
	free(list);
	user_free(&u);
	return rc;
}

static int
user_logout(const char *arg, const struct uopts *o)
{
	struct user	 u;
	unsigned char	 b[16];
	size_t		 n = 0;
	int		 rc;

	if (o->session != NULL && uuid_parse(b, o->session,
	    strlen(o->session)) == -1)
		return cli_fail(CLI_USAGE, "--session %s: not a session id "
		    "(see `fcgi-auth user sessions EMAIL`)", o->session);
	if ((rc = user_by_email_arg(arg, &u)) != CLI_OK)
		goto out;
	if (o->session == NULL) {
		if (sessions_end_all(&u, "admin", &n) == -1) {
			rc = cli_fail(CLI_FAIL, "Redis is unavailable (check "
			    "redis_host, redis_port and redis_password)");
			goto out;
		}
		printf("%s: %zu session%s ended, access tokens revoked\n",
		    u.email, n, n == 1 ? "" : "s");
		rc = CLI_OK;
		goto out;
	}
	switch (store_session_revoke(u.id, o->session, cfg->access_ttl)) {
	case 0:
		session_ended(&u, o->session, "admin");
		printf("%s: session %s ended\n", u.email, o->session);
		rc = CLI_OK;
		break;
	case 1:
		rc = cli_fail(CLI_NOTFOUND, "%s has no session %s (see "
		    "`fcgi-auth user sessions %s`)", u.email, o->session,
		    u.email);
		break;
	default:
		rc = cli_fail(CLI_FAIL, "Redis is unavailable (check "
		    "redis_host, redis_port and redis_password)");
		break;
	}
out:
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
	{ "logout",	1, "s",		1 },
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
		return cli_user_mfa_reset(argc - 1, argv + 1);
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
	if (db_init(cfg) == -1 || (c->redis && store_init(cfg) == -1))
		return cli_fail(CLI_FAIL, "cannot set up the backends");
	if (strcmp(c->name, "add") == 0)
		rc = user_add(pos[0], &o);
	else if (strcmp(c->name, "list") == 0)
		rc = user_list(&o);
	else if (strcmp(c->name, "show") == 0)
		rc = user_show(pos[0], &o);
	else if (strcmp(c->name, "disable") == 0)
		rc = user_disable(pos[0], 1, &o);
	else if (strcmp(c->name, "enable") == 0)
		rc = user_disable(pos[0], 0, &o);
	else if (strcmp(c->name, "grant") == 0)
		rc = user_roles(pos[0], pos[1], 1, &o);
	else if (strcmp(c->name, "revoke") == 0)
		rc = user_roles(pos[0], pos[1], 0, &o);
	else if (strcmp(c->name, "sessions") == 0)
		rc = user_sessions(pos[0], &o);
	else
		rc = user_logout(pos[0], &o);
	if (c->redis)
		store_shutdown();
	db_shutdown();
	return rc;
}

static int
hash_acceptable(const char *h)
{
	return strncmp(h, "$2a$", 4) == 0 || strncmp(h, "$2b$", 4) == 0 ||
	    strncmp(h, "$2y$", 4) == 0 || strncmp(h, "$argon2id$", 10) == 0;
}

/* One line: a JSON object, or CSV email,hash[,first,last]. */
static int
import_line(char *line, size_t lineno)
{
	char		 email[FA_EMAIL_MAX + 1], *f[4] = { NULL };
	const char	*why, *roles = "user", *hash, *first, *last;
	json_t		*j = NULL, *r;
	char		 rolebuf[FA_ROLES_LEN] = "";
	size_t		 i, n;
	int		 rc = -1, dbrc;

	if (line[0] == '{') {
		if ((j = json_parse_object(line, strlen(line))) == NULL)
			goto bad;
		f[0] = (char *)json_string_value(json_object_get(j, "email"));
		f[1] = (char *)json_string_value(json_object_get(j,
		    "passwordHash"));
		f[2] = (char *)json_string_value(json_object_get(j,
		    "firstName"));
		f[3] = (char *)json_string_value(json_object_get(j,
		    "lastName"));
		r = json_object_get(j, "roles");
		for (i = 0; json_is_array(r) && i < json_array_size(r); i++) {
			const char *s = json_string_value(json_array_get(r, i));
			if (s == NULL || validate_role(s, strlen(s)) == -1 ||
			    i >= FA_ROLES_MAX)
				goto bad;
			n = strlen(rolebuf);
			snprintf(rolebuf + n, sizeof(rolebuf) - n, "%s%s",
			    n ? "," : "", s);
		}
		if (rolebuf[0] != '\0')
			roles = rolebuf;
	} else {
		char *p = line;
		for (i = 0; i < 4; i++)
			if ((f[i] = strsep(&p, ",")) == NULL)
				break;
	}
	if (f[0] == NULL || f[1] == NULL || validate_email(f[0], strlen(f[0]),
	    email, &why) == -1 || !hash_acceptable(f[1]))
		goto bad;
	hash = f[1];
	first = f[2] != NULL && *f[2] != '\0' ? f[2] : NULL;
	last = f[3] != NULL && *f[3] != '\0' ? f[3] : NULL;
	if ((first && validate_name(first, strlen(first), &why) == -1) ||
	    (last && validate_name(last, strlen(last), &why) == -1))
		goto bad;
	dbrc = db_user_import(email, hash, first, last, roles);
	if (dbrc == DB_CONFLICT)
		fprintf(stderr, "line %zu: %s exists, skipped\n", lineno,
		    email);
	else if (dbrc != DB_OK) {
		fprintf(stderr, "line %zu: PostgreSQL is unavailable\n",
		    lineno);
		rc = -2;
		goto out;
	}
	rc = dbrc == DB_OK ? 0 : 1;
	goto out;
bad:
	fprintf(stderr, "line %zu: expected an email and a bcrypt or "
	    "Argon2id hash, skipped\n", lineno);
	rc = 1;
out:
	json_decref(j);
	return rc;
}

int
cli_import(int argc, char **argv)
{
	FILE	*f;
	char	*line = NULL;
	size_t	 cap = 0, lineno = 0, ok = 0, skipped = 0;
	ssize_t	 n;
	int	 rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: fcgi-auth import-users FILE|-\n");
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "-") == 0)
		f = stdin;
	else if ((f = fopen(argv[1], "r")) == NULL)
		return cli_fail(CLI_FAIL, "%s: %s", argv[1], strerror(errno));
	if (db_init(cfg) == -1) {
		if (f != stdin)
			fclose(f);
		return cli_fail(CLI_FAIL, "cannot set up PostgreSQL");
	}
	while ((n = getline(&line, &cap, f)) != -1) {
		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#' || (lineno == 1 &&
		    strncmp(line, "email,", 6) == 0))
			continue;
		if ((rc = import_line(line, lineno)) == -2)
			break;
		if (rc == 0)
			ok++;
		else
			skipped++;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	db_shutdown();
	printf("imported %zu users, skipped %zu\n", ok, skipped);
	return rc == -2 || skipped > 0 ? CLI_FAIL : CLI_OK;
}

/*
 * user mfa-reset EMAIL: a lost device.  MFA off, secret and recovery codes
 * gone, with the mfa.disable audit row and the user.mfa_disabled event.
 */
int
cli_user_mfa_reset(int argc, char **argv)
{
	struct audit	 a;
	struct user	 u;
	json_t		*detail = NULL, *data = NULL;
	int		 rc;

	if (argc != 2) {
		fputs(cli_user_usage, stderr);
		return CLI_USAGE;
	}
	if (db_init(cfg) == -1)
		return cli_fail(CLI_FAIL, "cannot set up PostgreSQL");
	if ((rc = user_by_email_arg(argv[1], &u)) != CLI_OK)
		goto out;
	detail = json_pack("{s:s}", "by", "cli");
	data = json_pack("{s:s}", "userId", u.id);
	memset(&a, 0, sizeof(a));
	a.event = AUDIT_MFA_DISABLE;
	a.user_id = u.id;
	a.email = u.email;
	a.success = 1;
	a.detail = detail;
	a.outbox_event = event_enabled(EVENT_USER_MFA_DISABLED);
	a.outbox_data = data;
	switch (db_mfa_disable(u.id, &a)) {
	case DB_OK:
		printf("%s: second factor off; the user may enrol again\n",
		    u.email);
		rc = CLI_OK;
		break;
	case DB_NOTFOUND:
		rc = cli_fail(CLI_NOTFOUND, "%s has no second factor "
		    "enabled", u.email);
		break;
	default:
		rc = cli_fail(CLI_FAIL, "PostgreSQL is unavailable (check "
		    "database_url and that the server is up)");
		break;
	}
out:
	json_decref(detail);
	json_decref(data);
	user_free(&u);
	db_shutdown();
	return rc;
}
