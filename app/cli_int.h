/*
 * cli_int.h: what the user commands (cli_user.c, cli_session.c,
 * cli_import.c) share.  Included by those files only.
 */
#ifndef FA_CLI_INT_H
#define FA_CLI_INT_H

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

/* "fcgi-auth: " and the message on stderr; returns code. */
int		 cli_fail(int code, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));
void		 cli_json_out(json_t *, int compact);
/* Look the user up; prints what went wrong and returns its exit code. */
int		 cli_user_arg(const char *arg, struct user *);
void		 cli_user_print(const struct user *, int json);
/* One password line: from file ("-": stdin), else stdin (no echo). */
int		 cli_read_password(const char *file, const char *email,
		    char *buf, size_t sz, size_t *len);

/* cli_session.c: the user subcommands that end access. */
int		 cli_session_disable(const char *arg, int disable,
		    const struct uopts *);
int		 cli_session_list(const char *arg, const struct uopts *);
int		 cli_session_logout(const char *arg, const struct uopts *);
int		 cli_session_password(const char *arg, const struct uopts *);
int		 cli_session_mfa_reset(int, char **);

#endif /* FA_CLI_INT_H */
