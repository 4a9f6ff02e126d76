/*
 * Operator commands on users: grant or revoke a role (how the first admin
 * is made), show a user, and import users with existing hashes (bcrypt from
 * the NestJS services this replaces, or Argon2id).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"

#define CLI_LINE_MAX	8192

int	 cli_user(int, char **);
int	 cli_import(int, char **);

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
user_by_email_arg(const char *arg, struct user *u)
{
	char		 email[FA_EMAIL_MAX + 1];
	const char	*why;
	int		 rc;

	if (validate_email(arg, strlen(arg), email, &why) == -1) {
		fprintf(stderr, "fcgi-auth: email %s\n", why);
		return -1;
	}
	if ((rc = db_user_by_email(email, u)) == DB_NOTFOUND)
		fprintf(stderr, "fcgi-auth: no user with email %s\n", email);
	else if (rc != DB_OK)
		fprintf(stderr, "fcgi-auth: PostgreSQL is unavailable "
		    "(check database_url)\n");
	return rc == DB_OK ? 0 : -1;
}

static int
user_roles(const char *arg, const char *role, int add)
{
	struct user	 u, out;
	struct audit	 a;
	json_t		*detail = NULL;
	long long	 cutoff;
	int		 rc = 1;

	memset(&u, 0, sizeof(u));
	memset(&out, 0, sizeof(out));
	if (validate_role(role, strlen(role)) == -1) {
		fprintf(stderr, "fcgi-auth: role must match "
		    "[a-z][a-z0-9_-]{0,31}\n");
		return 2;
	}
	if (user_by_email_arg(arg, &u) == -1)
		goto out;
	detail = json_pack("{s:s, s:s}", "before", u.roles, "by", "cli");
	if (roles_edit(u.roles, sizeof(u.roles), role, add) == -1) {
		fprintf(stderr, "fcgi-auth: too many roles\n");
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
		fprintf(stderr, "fcgi-auth: could not store the roles\n");
		goto out;
	}
	if (store_user_cutoff(u.id, cfg->access_ttl, &cutoff) == -1)
		fprintf(stderr, "fcgi-auth: warning: Redis is unavailable; "
		    "access tokens issued before keep their old roles until "
		    "they expire\n");
	printf("%s: roles %s\n", out.email, out.roles);
	rc = 0;
out:
	json_decref(detail);
	user_free(&u);
	user_free(&out);
	return rc;
}

static int
user_show(const char *arg)
{
	struct user	 u;
	json_t		*j;
	int		 rc = 1;

	memset(&u, 0, sizeof(u));
	if (user_by_email_arg(arg, &u) == -1)
		goto out;
	j = user_json(&u);
	json_object_set_new(j, "disabled", json_boolean(u.disabled));
	json_dumpf(j, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(j);
	rc = 0;
out:
	user_free(&u);
	return rc;
}

int
cli_user(int argc, char **argv)
{
	int	 rc;

	if (db_init(cfg) == -1 || store_init(cfg) == -1) {
		fprintf(stderr, "fcgi-auth: cannot set up the backends\n");
		return 1;
	}
	if (argc == 4 && strcmp(argv[1], "grant") == 0)
		rc = user_roles(argv[2], argv[3], 1);
	else if (argc == 4 && strcmp(argv[1], "revoke") == 0)
		rc = user_roles(argv[2], argv[3], 0);
	else if (argc == 3 && strcmp(argv[1], "show") == 0)
		rc = user_show(argv[2]);
	else {
		fprintf(stderr, "usage: fcgi-auth user grant|revoke EMAIL ROLE"
		    "\n       fcgi-auth user show EMAIL\n");
		rc = 2;
	}
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
		char *save = NULL, *p = line;
		for (i = 0; i < 4; i++) {
			f[i] = strsep(&p, ",");
			(void)save;
			if (f[i] == NULL)
				break;
		}
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
	int	 rc;

	if (argc != 2) {
		fprintf(stderr, "usage: fcgi-auth import-users FILE|-\n");
		return 2;
	}
	if (strcmp(argv[1], "-") == 0)
		f = stdin;
	else if ((f = fopen(argv[1], "r")) == NULL) {
		fprintf(stderr, "fcgi-auth: %s: cannot open\n", argv[1]);
		return 1;
	}
	if (db_init(cfg) == -1) {
		fprintf(stderr, "fcgi-auth: cannot set up PostgreSQL\n");
		return 1;
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
	return skipped > 0 ? 1 : 0;
}
