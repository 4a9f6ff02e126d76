/*
 * Operator commands on users: add, list, show, disable/enable, grant/revoke
 * a role (how the first admin is made), list and end sessions, set a
 * password, delete, and import users with existing hashes (bcrypt from the
 * NestJS services this replaces, or Argon2id) all or nothing.  Everything
 * goes through db.c and store.c; every change writes its audit row.
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

#define CLI_LINE_MAX		8192
#define CLI_LIST_DEFAULT	1000	/* user list --limit */
#define IMPORT_FILE_MAX		(64 * 1024 * 1024)	/* bytes */
#define IMPORT_FILE_MAX_TEXT	"64 MiB"
#define IMPORT_TIMEOUT_MS	300000	/* ms: import, delete */

/* Exit codes, the same for every command (fcgi-auth(8), EXIT STATUS). */
#define CLI_OK			0
#define CLI_FAIL		1	/* a backend failed; partly done */
#define CLI_USAGE		2	/* bad command, option or value */
#define CLI_NOTFOUND		3	/* no such user or session */
#define CLI_EXISTS		4	/* user add: the email is taken */

int	 cli_user(int, char **);
int	 cli_import(int, char **);
extern const char cli_import_usage[];
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
	if (email_canon(arg, strlen(arg), email, &why) == -1)
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
		json_out(users, 0);
	else {
		printf("%-36s  %-8s  %-24s  %-24s  %s\n", "ID", "STATUS",
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
	audit_init(&a, NULL, AUDIT_SESSION_REVOKE, u->id, sid);
	a.email = u->email;
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
	audit_init(&a, NULL, AUDIT_LOGOUT_ALL, u->id, NULL);
	a.email = u->email;
	a.detail = detail;
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
		printf("%-36s  %-24s  %-24s  %-15s  %s\n", "SESSION",
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
			printf("%-36s  %-24s  %-24s  %-15s  %s\n",
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

/* user logout --json: {"userId", "email", "sessionsEnded", "sessionId"?} */
static void
logout_json(const struct user *u, size_t n, const char *sid)
{
	json_t	*j;

	j = json_pack("{s:s, s:s, s:I, s:s*}", "userId", u->id, "email",
	    u->email, "sessionsEnded", (json_int_t)n, "sessionId", sid);
	json_out(j, 0);
	json_decref(j);
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
		if (o->json)
			logout_json(&u, n, NULL);
		else
			printf("%s: %zu session%s ended, access tokens "
			    "revoked\n", u.email, n, n == 1 ? "" : "s");
		rc = CLI_OK;
		goto out;
	}
	switch (store_session_revoke(u.id, o->session, cfg->access_ttl)) {
	case 0:
		session_ended(&u, o->session, "admin");
		if (o->json)
			logout_json(&u, 1, o->session);
		else
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

/*
 * set-password: the register policy, an Argon2id hash, then as a password
 * change: every session and access token of the user ends (first: a retry
 * is safe, a live session under the old password is not), audit row and
 * user.password_changed event.
 */
static int
user_set_password(const char *arg, const struct uopts *o)
{
	struct user	 u;
	struct audit	 a;
	char		 pw[FA_PASSWORD_MAX + 2], hash[128];
	const char	*why;
	json_t		*detail = NULL, *data = NULL;
	size_t		 pwlen = 0, n = 0;
	int		 rc;

	memset(hash, 0, sizeof(hash));
	memset(pw, 0, sizeof(pw));
	if ((rc = user_by_email_arg(arg, &u)) != CLI_OK)
		goto out;
	rc = CLI_USAGE;
	if (read_password(o->password_file, u.email, pw, sizeof(pw),
	    &pwlen) == -1)
		goto out;
	if (validate_password(pw, pwlen, &why) == -1) {
		rc = cli_fail(CLI_USAGE, "password %s", why);
		goto out;
	}
	rc = CLI_FAIL;
	if (password_init(cfg) == -1) {
		rc = cli_fail(CLI_FAIL, "cannot start the password hashing "
		    "(password_memlimit too large for this machine?)");
		goto out;
	}
	if (password_hash(pw, pwlen, hash) == -1) {
		password_shutdown();
		rc = cli_fail(CLI_FAIL, "cannot hash the password");
		goto out;
	}
	password_shutdown();
	if (sessions_end_all(&u, "password_change", &n) == -1) {
		rc = cli_fail(CLI_FAIL, "Redis is unavailable (check "
		    "redis_host, redis_port and redis_password); the password "
		    "is unchanged");
		goto out;
	}
	detail = json_pack("{s:s}", "by", "cli");
	data = json_pack("{s:s}", "userId", u.id);
	audit_init(&a, NULL, AUDIT_PASSWORD_CHANGE, u.id, NULL);
	a.email = u.email;
	a.detail = detail;
	a.outbox_event = event_enabled(EVENT_USER_PASSWORD_CHANGED);
	a.outbox_data = data;
	if (db_user_set_password(u.id, hash, &a) != DB_OK) {
		rc = cli_fail(CLI_FAIL, "%s: sessions ended, but the password "
		    "was not stored (PostgreSQL unavailable?); run it again",
		    u.email);
		goto out;
	}
	if (o->json)
		logout_json(&u, n, NULL);
	else
		printf("%s: password set, %zu session%s ended\n", u.email, n,
		    n == 1 ? "" : "s");
	rc = CLI_OK;
out:
	sodium_memzero(pw, sizeof(pw));
	sodium_memzero(hash, sizeof(hash));
	json_decref(detail);
	json_decref(data);
	user_free(&u);
	return rc;
}

/*
 * delete (API.md, Account deletion): sessions and access tokens end first
 * (Redis down: nothing deleted), then in one statement the row goes, the
 * user's audit rows lose email, ip and user agent, and the user.delete
 * audit row (no email) and the user.deleted event are written.
 */
static int
user_delete(const char *arg, const struct uopts *o)
{
	struct user	 u;
	struct audit	 a;
	json_t		*detail = NULL, *data = NULL, *j;
	size_t		 n = 0;
	int		 rc;

	if ((rc = user_by_email_arg(arg, &u)) != CLI_OK)
		goto out;
	if (sessions_end_all(&u, "deleted", &n) == -1) {
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
		json_out(j, 0);
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
		rc = user_disable(pos[0], 1, &o);
	else if (strcmp(c->name, "enable") == 0)
		rc = user_disable(pos[0], 0, &o);
	else if (strcmp(c->name, "grant") == 0)
		rc = user_roles(pos[0], pos[1], 1, &o);
	else if (strcmp(c->name, "revoke") == 0)
		rc = user_roles(pos[0], pos[1], 0, &o);
	else if (strcmp(c->name, "sessions") == 0)
		rc = user_sessions(pos[0], &o);
	else if (strcmp(c->name, "set-password") == 0)
		rc = user_set_password(pos[0], &o);
	else if (strcmp(c->name, "delete") == 0)
		rc = user_delete(pos[0], &o);
	else
		rc = user_logout(pos[0], &o);
	if (c->redis)
		store_shutdown();
	db_shutdown();
	return rc;
}


/*
 * import-users: users with their existing hashes, all or nothing.  Every
 * line is checked first (format, hash, id, dates, clashes with the
 * database and within the file); any refused line and nothing is written.
 * Otherwise one statement inserts them all with an audit row each.
 */
const char cli_import_usage[] =
"usage: fcgi-auth import-users [--dry-run] FILE|-\n"
"FILE holds JSON lines (one object per line) or CSV (RFC 4180) with a\n"
"header row naming the columns, in any order: id (UUID, kept), email,\n"
"password (or passwordHash: bcrypt $2a$/$2b$/$2y$ or Argon2id), firstName,\n"
"lastName, roles, isActive or disabled, createdAt and updatedAt (RFC 3339).\n"
"Without a header: email,password[,firstName,lastName].  A refused line\n"
"(named by its number) imports nothing; --dry-run checks and writes\n"
"nothing.  bcrypt hashes become Argon2id at the next login.  Exit status:\n"
"0 imported, 1 a line was refused or a backend failed, 2 usage.\n";

enum imp_field {
	IMP_ID,
	IMP_EMAIL,
	IMP_HASH,
	IMP_FIRST,
	IMP_LAST,
	IMP_ROLES,
	IMP_ACTIVE,
	IMP_DISABLED,
	IMP_CREATED,
	IMP_UPDATED,
	IMP__MAX
};

/* Column and key names, NestJS's and snake_case, matched ignoring case. */
static const struct {
	const char	*name;
	enum imp_field	 field;
} imp_names[] = {
	{ "id",			IMP_ID },
	{ "email",		IMP_EMAIL },
	{ "password",		IMP_HASH },
	{ "passwordHash",	IMP_HASH },
	{ "password_hash",	IMP_HASH },
	{ "firstName",		IMP_FIRST },
	{ "first_name",		IMP_FIRST },
	{ "lastName",		IMP_LAST },
	{ "last_name",		IMP_LAST },
	{ "roles",		IMP_ROLES },
	{ "isActive",		IMP_ACTIVE },
	{ "is_active",		IMP_ACTIVE },
	{ "disabled",		IMP_DISABLED },
	{ "createdAt",		IMP_CREATED },
	{ "created_at",		IMP_CREATED },
	{ "updatedAt",		IMP_UPDATED },
	{ "updated_at",		IMP_UPDATED },
};

/* The columns of a CSV file without a header row. */
static const enum imp_field imp_legacy[] = {
	IMP_EMAIL, IMP_HASH, IMP_FIRST, IMP_LAST
};

struct imp {
	json_t		*users;		/* rows for db_user_import */
	json_t		*warned;	/* unknown names reported once */
	size_t		 refused;
	size_t		 disabled;
	int		 dry_run;
};

static int
imp_field_of(const char *name)
{
	size_t	 i;

	for (i = 0; i < sizeof(imp_names) / sizeof(imp_names[0]); i++)
		if (strcasecmp(name, imp_names[i].name) == 0)
			return (int)imp_names[i].field;
	return -1;
}

static void
imp_unknown(struct imp *im, const char *name)
{
	char	 esc[80];

	if (json_object_get(im->warned, name) != NULL)
		return;
	json_object_set_new(im->warned, name, json_true());
	log_escape(esc, sizeof(esc), name);
	fprintf(stderr, "fcgi-auth: warning: field '%s' is not imported\n",
	    esc);
}

/* what may be a name from the file: escaped, like every byte of it */
static int
imp_refuse(struct imp *im, size_t line, const char *what, const char *why)
{
	char	 esc[80];

	log_escape(esc, sizeof(esc), what);
	fprintf(stderr, "line %zu: %s%s%s, refused\n", line, esc,
	    *esc != '\0' ? ": " : "", why);
	im->refused++;
	return -1;
}

/* true/false as JSON, psql (t/f) and spreadsheets (1/0, yes/no) write it. */
static int
imp_bool(const char *v, int *out)
{
	static const char *const yes[] = { "true", "t", "1", "yes" };
	static const char *const no[] = { "false", "f", "0", "no" };
	size_t	 i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

static int
imp_digits(const char *s, int n, int lo, int hi, int *out)
{
	int	 i, v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* RFC 3339 date-time: 2024-02-29T13:05:00[.frac](Z|+hh:mm), strictly. */
static int
imp_rfc3339(const char *s)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	int	 y, mo, d, h, mi, sec, x;
	size_t	 i = 19, n;

	if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' &&
	    s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':' ||
	    imp_digits(s, 4, 1, 9999, &y) == -1 ||
	    imp_digits(s + 5, 2, 1, 12, &mo) == -1 ||
	    imp_digits(s + 8, 2, 1, mdays[mo - 1], &d) == -1 ||
	    imp_digits(s + 11, 2, 0, 23, &h) == -1 ||
	    imp_digits(s + 14, 2, 0, 59, &mi) == -1 ||
	    imp_digits(s + 17, 2, 0, 59, &sec) == -1)
		return -1;
	if (mo == 2 && d == 29 && (y % 4 != 0 || (y % 100 == 0 &&
	    y % 400 != 0)))
		return -1;
	if (s[i] == '.') {
		n = strspn(s + i + 1, "0123456789");
		if (n < 1 || n > 9)
			return -1;
		i += 1 + n;
	}
	if ((s[i] == 'Z' || s[i] == 'z') && s[i + 1] == '\0')
		return 0;
	if ((s[i] != '+' && s[i] != '-') || strlen(s + i) != 6 ||
	    s[i + 3] != ':' || imp_digits(s + i + 1, 2, 0, 23, &x) == -1 ||
	    imp_digits(s + i + 4, 2, 0, 59, &x) == -1)
		return -1;
	return 0;
}

/* roles as "a,b", {a,b} (PostgreSQL) or ["a","b"]: checked, joined. */
static int
imp_roles(const char *v, char *out, size_t outsz, const char **why)
{
	char	 buf[FA_ROLES_LEN * 2], *tok, *save = NULL, *e;
	size_t	 len = strlen(v), n = 0, k;

	*out = '\0';
	if (len >= sizeof(buf)) {
		*why = "too many roles";
		return -1;
	}
	memcpy(buf, v, len + 1);
	tok = buf;
	if (len >= 2 && ((buf[0] == '{' && buf[len - 1] == '}') ||
	    (buf[0] == '[' && buf[len - 1] == ']'))) {
		buf[len - 1] = '\0';
		tok++;
	}
	for (tok = strtok_r(tok, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ' || *tok == '"')
			tok++;
		e = tok + strlen(tok);
		while (e > tok && (e[-1] == ' ' || e[-1] == '"'))
			*--e = '\0';
		if (validate_role(tok, strlen(tok)) == -1) {
			*why = "a role must match [a-z][a-z0-9_-]{0,31}";
			return -1;
		}
		if (++n > FA_ROLES_MAX) {
			*why = "more roles than a user may hold";
			return -1;
		}
		k = strlen(out);
		snprintf(out + k, outsz - k, "%s%s", k ? "," : "", tok);
	}
	return 0;
}

/* Check one user's fields (NULL: absent) and add the row; -1 refused. */
static int
imp_user(struct imp *im, size_t line, const char *const *v)
{
	char		 email[FA_EMAIL_MAX + 1], id[FA_UUID_LEN + 1];
	char		 roles[FA_ROLES_LEN] = "user";
	unsigned char	 raw[16];
	const char	*why;
	int		 disabled = 0, b;
	json_t		*row;
	char		*first, *last;

	if (v[IMP_EMAIL] == NULL || email_canon(v[IMP_EMAIL],
	    strlen(v[IMP_EMAIL]), email, &why) == -1)
		return imp_refuse(im, line, "email", v[IMP_EMAIL] == NULL ?
		    "missing" : why);
	if (v[IMP_HASH] == NULL)
		return imp_refuse(im, line, "password hash", "missing");
	if (hashfmt_check(v[IMP_HASH], strlen(v[IMP_HASH]), &why) ==
	    HASHFMT_BAD)
		return imp_refuse(im, line, "password hash", why);
	if (v[IMP_ID] != NULL) {
		if (uuid_parse(raw, v[IMP_ID], strlen(v[IMP_ID])) == -1)
			return imp_refuse(im, line, "id", "not a UUID");
	} else
		uuid_random(raw);
	uuid_format(id, raw);
	if ((v[IMP_FIRST] != NULL && validate_name(v[IMP_FIRST],
	    strlen(v[IMP_FIRST]), &why) == -1))
		return imp_refuse(im, line, "firstName", why);
	if ((v[IMP_LAST] != NULL && validate_name(v[IMP_LAST],
	    strlen(v[IMP_LAST]), &why) == -1))
		return imp_refuse(im, line, "lastName", why);
	if (v[IMP_ROLES] != NULL && *v[IMP_ROLES] != '\0' &&
	    imp_roles(v[IMP_ROLES], roles, sizeof(roles), &why) == -1)
		return imp_refuse(im, line, "roles", why);
	if (v[IMP_ACTIVE] != NULL) {
		if (imp_bool(v[IMP_ACTIVE], &b) == -1)
			return imp_refuse(im, line, "isActive",
			    "expected true or false");
		disabled = !b;
	}
	if (v[IMP_DISABLED] != NULL) {
		if (imp_bool(v[IMP_DISABLED], &b) == -1)
			return imp_refuse(im, line, "disabled",
			    "expected true or false");
		if (v[IMP_ACTIVE] != NULL && b != disabled)
			return imp_refuse(im, line, "disabled",
			    "contradicts isActive");
		disabled = b;
	}
	if (v[IMP_CREATED] != NULL && imp_rfc3339(v[IMP_CREATED]) == -1)
		return imp_refuse(im, line, "createdAt",
		    "expected an RFC 3339 date-time");
	if (v[IMP_UPDATED] != NULL && imp_rfc3339(v[IMP_UPDATED]) == -1)
		return imp_refuse(im, line, "updatedAt",
		    "expected an RFC 3339 date-time");
	if (strcmp(roles, "user") != 0)
		fprintf(stderr, "line %zu: %s gets roles %s\n", line, email,
		    roles);
	/* stored as register stores them: control characters replaced */
	first = text_clean_dup(v[IMP_FIRST], FA_NAME_BYTES);
	last = text_clean_dup(v[IMP_LAST], FA_NAME_BYTES);
	row = json_pack("{s:I, s:s, s:s, s:s, s:s?, s:s?, s:s, s:b, s:s?, "
	    "s:s?}", "line", (json_int_t)line, "id", id, "email", email,
	    "hash", v[IMP_HASH], "firstName", first, "lastName", last,
	    "roles", roles, "disabled", disabled, "createdAt",
	    v[IMP_CREATED], "updatedAt", v[IMP_UPDATED]);
	free(first);
	free(last);
	if (row == NULL)
		return imp_refuse(im, line, "", "not valid UTF-8");
	json_array_append_new(im->users, row);
	im->disabled += disabled;
	return 0;
}

/* One JSON line: strings, booleans, null (absent), roles as an array. */
static int
imp_json_line(struct imp *im, size_t line, const char *buf, size_t len)
{
	const char	*v[IMP__MAX] = { NULL }, *key;
	char		 roles[FA_ROLES_LEN * 2] = "";
	char		*tmp[IMP__MAX] = { NULL };
	json_t		*j, *val, *r;
	size_t		 i, n;
	int		 f, rc = -1;

	if ((j = json_parse_object(buf, len)) == NULL)
		return imp_refuse(im, line, "", "not a JSON object");
	json_object_foreach(j, key, val) {
		if ((f = imp_field_of(key)) == -1) {
			imp_unknown(im, key);
			continue;
		}
		if (json_is_null(val))
			continue;
		if (v[f] != NULL) {
			rc = imp_refuse(im, line, key, "given twice");
			goto out;
		}
		if (json_is_string(val))
			v[f] = json_string_value(val);
		else if (json_is_boolean(val))
			v[f] = json_is_true(val) ? "true" : "false";
		else if (f == IMP_ROLES && json_is_array(val)) {
			json_array_foreach(val, i, r) {
				n = strlen(roles);
				if (!json_is_string(r) || n +
				    json_string_length(r) + 2 >
				    sizeof(roles)) {
					rc = imp_refuse(im, line, key,
					    "expected few short strings");
					goto out;
				}
				snprintf(roles + n, sizeof(roles) - n, "%s%s",
				    n ? "," : "", json_string_value(r));
			}
			v[f] = tmp[f] = xstrdup(roles);
		} else {
			rc = imp_refuse(im, line, key, "unexpected type");
			goto out;
		}
	}
	rc = imp_user(im, line, v);
out:
	for (i = 0; i < IMP__MAX; i++)
		free(tmp[i]);
	json_decref(j);
	return rc;
}

static void
imp_json(struct imp *im, const char *buf, size_t len)
{
	const char	*p = buf, *nl, *end = buf + len;
	size_t		 n, line = 0;

	for (; p < end; p = nl != NULL ? nl + 1 : end) {
		line++;
		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((nl != NULL ? nl : end) - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n == 0 || p[0] == '#')
			continue;
		if (n > CSV_RECORD_MAX)
			imp_refuse(im, line, "", "longer than the limit");
		else
			imp_json_line(im, line, p, n);
	}
}

/* The header row: the field of each column, -1 for an unknown name. */
static int
imp_header(struct imp *im, const struct csv_record *r, int *col)
{
	int	 seen[IMP__MAX] = { 0 };
	size_t	 i;

	for (i = 0; i < r->nfield; i++) {
		if ((col[i] = imp_field_of(r->field[i])) == -1) {
			imp_unknown(im, r->field[i]);
			continue;
		}
		if (seen[col[i]]++)
			return imp_refuse(im, r->line, r->field[i],
			    "a second column for the same field");
	}
	return 0;
}

static void
imp_csv(struct imp *im, const char *buf, size_t len)
{
	struct csv_record	 r;
	const char		*why, *v[IMP__MAX];
	size_t			 off = 0, line = 0, i, ncol = 0;
	int			 col[CSV_FIELDS_MAX], rc, first = 1;

	while ((rc = csv_next(buf, len, &off, &line, &r, &why)) == 1) {
		if (r.nfield == 1 && r.field[0][0] == '\0')
			goto next;		/* a blank line */
		if (first) {
			first = 0;
			if (imp_field_of(r.field[0]) != -1 ||
			    imp_field_of(r.field[r.nfield - 1]) != -1) {
				ncol = r.nfield;
				if (imp_header(im, &r, col) == -1) {
					csv_record_free(&r);
					return;
				}
				goto next;
			}
			ncol = sizeof(imp_legacy) / sizeof(imp_legacy[0]);
			for (i = 0; i < ncol; i++)
				col[i] = (int)imp_legacy[i];
		}
		if (r.nfield > ncol || (r.nfield < ncol && ncol !=
		    sizeof(imp_legacy) / sizeof(imp_legacy[0]))) {
			imp_refuse(im, r.line, "", "not as many fields as "
			    "columns");
			goto next;
		}
		memset(v, 0, sizeof(v));
		for (i = 0; i < r.nfield; i++)
			if (col[i] != -1 && r.field[i][0] != '\0')
				v[col[i]] = r.field[i];
		imp_user(im, r.line, v);
next:
		csv_record_free(&r);
	}
	if (rc == -1)
		imp_refuse(im, r.line, "", why);
}

/* Read FILE or standard input whole, up to IMPORT_FILE_MAX bytes. */
static int
imp_read(const char *path, char **out, size_t *outlen)
{
	FILE	*f;
	char	*buf;
	size_t	 n;
	int	 rc = CLI_FAIL;

	if (strcmp(path, "-") == 0)
		f = stdin;
	else if ((f = fopen(path, "r")) == NULL)
		return cli_fail(CLI_FAIL, "%s: %s", path, strerror(errno));
	buf = xmalloc(IMPORT_FILE_MAX + 1);
	n = fread(buf, 1, IMPORT_FILE_MAX + 1, f);
	if (ferror(f))
		rc = cli_fail(CLI_FAIL, "%s: read error", path);
	else if (n > IMPORT_FILE_MAX)
		rc = cli_fail(CLI_FAIL, "%s: larger than " IMPORT_FILE_MAX_TEXT
		    ": split it", path);
	else {
		buf[n] = '\0';
		*out = buf;
		*outlen = n;
		buf = NULL;
		rc = CLI_OK;
	}
	if (f != stdin)
		fclose(f);
	free(buf);
	return rc;
}

static int
imp_store(struct imp *im)
{
	json_t		*clashes = NULL, *c;
	size_t		 i, n = json_array_size(im->users);
	int		 dbrc;

	dbrc = db_user_import(im->users, "cli", im->dry_run, &clashes);
	if (dbrc == DB_CONFLICT && clashes != NULL) {
		json_array_foreach(clashes, i, c)
			imp_refuse(im, (size_t)json_integer_value(
			    json_object_get(c, "line")), json_string_value(
			    json_object_get(c, "field")), "taken (in the "
			    "database or on an earlier line)");
		json_decref(clashes);
		return CLI_FAIL;
	}
	json_decref(clashes);
	if (dbrc == DB_CONFLICT)
		return cli_fail(CLI_FAIL, "an id or email was taken while "
		    "importing; nothing imported, run it again");
	if (dbrc != DB_OK)
		return cli_fail(CLI_FAIL, "PostgreSQL is unavailable (check "
		    "database_url and that the server is up); nothing "
		    "imported");
	printf("%s %zu users (%zu disabled)\n", im->dry_run ? "would import" :
	    "imported", n, im->disabled);
	return CLI_OK;
}

int
cli_import(int argc, char **argv)
{
	struct imp	 im;
	char		*buf = NULL;
	const char	*p;
	size_t		 len = 0, skip;
	int		 rc, i, nargs = 0;
	const char	*path = NULL;

	memset(&im, 0, sizeof(im));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dry-run") == 0)
			im.dry_run = 1;
		else if (argv[i][0] == '-' && argv[i][1] != '\0')
			nargs = 2;
		else {
			path = argv[i];
			nargs++;
		}
	}
	if (nargs != 1 || path == NULL) {
		fputs(cli_import_usage, stderr);
		return CLI_USAGE;
	}
	if ((rc = imp_read(path, &buf, &len)) != CLI_OK)
		return rc;
	im.users = json_array();
	im.warned = json_object();
	/* a UTF-8 byte order mark, as spreadsheets write */
	skip = len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
	for (p = buf + skip; p < buf + len && strchr(" \t\r\n", *p); p++)
		;
	if (p < buf + len && *p == '{')
		imp_json(&im, buf + skip, len - skip);
	else
		imp_csv(&im, buf + skip, len - skip);
	rc = CLI_FAIL;
	if (im.refused > 0) {
		printf("refused %zu line%s, nothing imported\n", im.refused,
		    im.refused == 1 ? "" : "s");
		goto out;
	}
	if (json_array_size(im.users) == 0) {
		printf("imported 0 users: no user in %s\n", path);
		rc = CLI_OK;
		goto out;
	}
	if (cfg->backend_timeout_ms < IMPORT_TIMEOUT_MS)
		cfg->backend_timeout_ms = IMPORT_TIMEOUT_MS;
	if (db_init(cfg) == -1) {
		rc = cli_fail(CLI_FAIL, "cannot set up PostgreSQL");
		goto out;
	}
	rc = imp_store(&im);
	if (rc != CLI_OK && im.refused > 0)
		printf("refused %zu line%s, nothing imported\n", im.refused,
		    im.refused == 1 ? "" : "s");
	db_shutdown();
out:
	json_decref(im.users);
	json_decref(im.warned);
	free(buf);
	return rc;
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
	audit_init(&a, NULL, AUDIT_MFA_DISABLE, u.id, NULL);
	a.email = u.email;
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
