/*
 * import-users (bcrypt from the NestJS services this replaces, or
 * Argon2id): users with their existing hashes, all or nothing.  Every
 * line is checked first (format, hash, id, dates, clashes with the
 * database and within the file); any refused line and nothing is written.
 * Otherwise one statement inserts them all with an audit row each.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "extern.h"
#include "cli_int.h"

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
	static const char *const yes[] = { "true", "t", "1", "yes", NULL };
	static const char *const no[] = { "false", "f", "0", "no", NULL };

	return bool_parse(v, yes, no, out);
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
			*why = "a role must match " FA_ROLE_PATTERN;
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
