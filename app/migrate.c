/*
 * migrate.c: apply sql/NNN_*.sql in order, each in its own transaction,
 * recorded with its SHA-256 in auth.schema_migrations.  A session advisory
 * lock serializes concurrent migrators; an applied file whose checksum
 * changed is refused by name.  A migration may have a step in C that runs
 * after its SQL in the same transaction (migrate_steps).  Runs from the CLI
 * with a plain blocking connection, not the service pool.
 */
#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "extern.h"

#define STR_(x)		#x
#define STR(x)		STR_(x)

#define MIGRATE_BOOKKEEPING \
	"CREATE SCHEMA IF NOT EXISTS auth;" \
	"CREATE TABLE IF NOT EXISTS auth.schema_migrations (" \
	" version text PRIMARY KEY," \
	" checksum text NOT NULL," \
	" applied_at timestamptz NOT NULL DEFAULT now())"

struct migration {
	char	*name;		/* "001_init.sql" */
	char	*sql;
	char	 sum[crypto_hash_sha256_BYTES * 2 + 1];
};

static int
name_cmp(const void *a, const void *b)
{
	const struct migration	*x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* NNN_*.sql: three digits, an underscore, a name, ".sql". */
static int
is_migration(const char *name)
{
	size_t	 len = strlen(name);

	if (len < 9 || len > DB_MIGRATE_NAME_MAX)
		return 0;
	if (!isdigit((unsigned char)name[0]) ||
	    !isdigit((unsigned char)name[1]) ||
	    !isdigit((unsigned char)name[2]) || name[3] != '_')
		return 0;
	return strcmp(name + len - 4, ".sql") == 0;
}

static int
read_file(const char *path, char **out, size_t *outlen, char **errstr)
{
	if (file_read(path, MIGRATE_FILE_MAX, out, outlen) == -1) {
		xasprintf(errstr, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (memchr(*out, '\0', *outlen) != NULL) {
		xasprintf(errstr, "%s: contains a NUL byte", path);
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

static void
migrations_free(struct migration *m, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		free(m[i].name);
		free(m[i].sql);
	}
	free(m);
}

/* Read and checksum every migration of dir, sorted by name. */
static int
migrations_load(const char *dir, struct migration **out, size_t *nout,
    char **errstr)
{
	DIR			*d;
	struct dirent		*de;
	struct migration	*m = NULL;
	unsigned char		 sum[crypto_hash_sha256_BYTES];
	char			*path;
	size_t			 n = 0, len;
	int			 rc = -1;

	if ((d = opendir(dir)) == NULL) {
		xasprintf(errstr, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (!is_migration(de->d_name))
			continue;
		m = xrealloc(m, (n + 1) * sizeof(*m));
		memset(&m[n], 0, sizeof(m[n]));
		m[n].name = xstrdup(de->d_name);
		n++;
		xasprintf(&path, "%s/%s", dir, de->d_name);
		if (read_file(path, &m[n - 1].sql, &len, errstr) == -1) {
			free(path);
			goto out;
		}
		free(path);
		crypto_hash_sha256(sum, (unsigned char *)m[n - 1].sql, len);
		sodium_bin2hex(m[n - 1].sum, sizeof(m[n - 1].sum), sum,
		    sizeof(sum));
	}
	if (n == 0) {
		xasprintf(errstr, "%s: no NNN_*.sql migrations", dir);
		goto out;
	}
	qsort(m, n, sizeof(*m), name_cmp);
	*out = m;
	*nout = n;
	m = NULL;
	rc = 0;
out:
	if (m != NULL)
		migrations_free(m, n);
	closedir(d);
	return rc;
}

/* Run sql (no parameters) and expect success; errstr names what. */
static int
exec_ok(PGconn *pg, const char *sql, const char *what, char **errstr)
{
	PGresult	*res;
	ExecStatusType	 st;

	res = PQexec(pg, sql);
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		xasprintf(errstr, "%s: %s", what, res != NULL ?
		    PQresultErrorMessage(res) : PQerrorMessage(pg));
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

/* The recorded checksum of version, NULL if not applied. */
static int
applied_sum(PGconn *pg, int have_table, const char *version, char **sum,
    char **errstr)
{
	PGresult	*res;
	const char	*v[1] = { version };

	*sum = NULL;
	if (!have_table)
		return 0;
	res = PQexecParams(pg, "SELECT checksum FROM auth.schema_migrations"
	    " WHERE version = $1", 1, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		xasprintf(errstr, "reading auth.schema_migrations: %s",
		    PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	if (PQntuples(res) == 1)
		*sum = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* One row whose email changes to its canonical form. */
struct canon_row {
	char	*id;
	char	*email;
	char	 canon[FA_EMAIL_MAX + 1];
};

static int
canon_cmp(const void *a, const void *b)
{
	const struct canon_row	*x = a, *y = b;

	return strcmp(x->canon, y->canon);
}

static void
canon_print(FILE *out, const char *what, const char *id, const char *email,
    const char *rest)
{
	char	 e[FA_EMAIL_MAX * 4 + 1];

	log_escape(e, sizeof(e), email);
	fprintf(out, "002: %s: user %s '%s'%s\n", what, id, e, rest);
}

/*
 * Every row of the cursor fa_emails whose email is not canonical: those
 * with a canonical form into *rows, the others listed and counted.
 */
static int
canon_scan(PGconn *pg, FILE *out, struct canon_row **rows, size_t *nrows,
    size_t *nbad, char **errstr)
{
	PGresult	*res = NULL;
	const char	*id, *email, *why;
	char		 canon[FA_EMAIL_MAX + 1];
	int		 i, n;

	do {
		PQclear(res);
		res = PQexec(pg, "FETCH " STR(DB_MIGRATE_FETCH)
		    " FROM fa_emails");
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			xasprintf(errstr, "002: reading auth.users: %s",
			    PQresultErrorMessage(res));
			PQclear(res);
			return -1;
		}
		n = PQntuples(res);
		for (i = 0; i < n; i++) {
			id = PQgetvalue(res, i, 0);
			email = PQgetvalue(res, i, 1);
			if (email_canon(email, strlen(email), canon,
			    &why) == -1) {
				canon_print(out, "no canonical form, left as"
				    " is (no login can reach it)", id, email,
				    "");
				(*nbad)++;
				continue;
			}
			if (strcmp(canon, email) == 0)
				continue;
			*rows = xrealloc(*rows, (*nrows + 1) * sizeof(**rows));
			(*rows)[*nrows].id = xstrdup(id);
			(*rows)[*nrows].email = xstrdup(email);
			memcpy((*rows)[*nrows].canon, canon, sizeof(canon));
			(*nrows)++;
		}
	} while (n > 0);
	PQclear(res);
	return 0;
}

/*
 * Collisions: two changed rows with one canonical form, or a changed row
 * whose canonical form another (already canonical) row holds.  rows is
 * sorted by canon.  Each is listed; the count is returned, -1 on error.
 */
static long
canon_collisions(PGconn *pg, FILE *out, const struct canon_row *rows,
    size_t n, char **errstr)
{
	PGresult	*res;
	const char	*v[1];
	char		 rest[FA_EMAIL_MAX + 64];
	size_t		 i;
	long		 count = 0;

	for (i = 0; i < n; i++) {
		if (i + 1 < n &&
		    strcmp(rows[i].canon, rows[i + 1].canon) == 0) {
			snprintf(rest, sizeof(rest), " and user %s are both"
			    " '%s'", rows[i + 1].id, rows[i].canon);
			canon_print(out, "collision", rows[i].id,
			    rows[i].email, rest);
			count++;
		}
		v[0] = rows[i].canon;
		res = PQexecParams(pg, "SELECT id::text FROM auth.users"
		    " WHERE email = $1", 1, NULL, v, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			xasprintf(errstr, "002: %s", PQresultErrorMessage(res));
			PQclear(res);
			return -1;
		}
		if (PQntuples(res) > 0) {
			snprintf(rest, sizeof(rest), " would become '%s' of"
			    " user %s", rows[i].canon, PQgetvalue(res, 0, 0));
			canon_print(out, "collision", rows[i].id,
			    rows[i].email, rest);
			count++;
		}
		PQclear(res);
	}
	return count;
}

/*
 * The C step of 002_canonical_email.sql: rewrite every email to its
 * canonical form (email.c), which SQL cannot compute (IDNA2008).  A
 * collision refuses the whole migration rather than merge two accounts.
 */
static int
migrate_emails(PGconn *pg, FILE *out, char **errstr)
{
	struct canon_row	*rows = NULL;
	PGresult		*res;
	const char		*v[2];
	size_t			 n = 0, nbad = 0, i;
	long			 coll;
	int			 rc = -1;

	if (exec_ok(pg, "DECLARE fa_emails NO SCROLL CURSOR FOR"
	    " SELECT id::text, email FROM auth.users ORDER BY id",
	    "002: reading auth.users", errstr) == -1)
		return -1;
	if (canon_scan(pg, out, &rows, &n, &nbad, errstr) == -1 ||
	    exec_ok(pg, "CLOSE fa_emails", "002", errstr) == -1)
		goto out;
	if (n > 0)
		qsort(rows, n, sizeof(*rows), canon_cmp);
	if ((coll = canon_collisions(pg, out, rows, n, errstr)) == -1)
		goto out;
	if (coll > 0) {
		xasprintf(errstr, "002_canonical_email.sql: %ld email(s)"
		    " collide once canonical (listed above); nothing was"
		    " changed: keep one account of each (fcgi-auth user"
		    " disable, or delete the other row) and migrate again",
		    coll);
		goto out;
	}
	for (i = 0; i < n; i++) {
		v[0] = rows[i].id;
		v[1] = rows[i].canon;
		res = PQexecParams(pg, "UPDATE auth.users SET email = $2,"
		    " updated_at = now() WHERE id = $1::uuid", 2, NULL, v,
		    NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			xasprintf(errstr, "002: user %s: %s", rows[i].id,
			    PQresultErrorMessage(res));
			PQclear(res);
			goto out;
		}
		PQclear(res);
	}
	fprintf(out, "002: %zu email(s) rewritten to their canonical form,"
	    " %zu without one\n", n, nbad);
	rc = 0;
out:
	for (i = 0; i < n; i++) {
		free(rows[i].id);
		free(rows[i].email);
	}
	free(rows);
	return rc;
}

/* Steps in C run after a migration's SQL, in its transaction. */
static const struct {
	const char	*name;
	int		(*fn)(PGconn *, FILE *, char **);
} migrate_steps[] = {
	{ "002_canonical_email.sql", migrate_emails },
};

static int
apply_one(PGconn *pg, const struct migration *m, FILE *out, char **errstr)
{
	PGresult	*res;
	const char	*v[2] = { m->name, m->sum };
	char		*what = NULL;
	size_t		 i;
	int		 rc = -1;

	if (exec_ok(pg, "BEGIN", "BEGIN", errstr) == -1)
		return -1;
	xasprintf(&what, "%s", m->name);
	if (exec_ok(pg, m->sql, what, errstr) == -1)
		goto out;
	for (i = 0; i < sizeof(migrate_steps) / sizeof(migrate_steps[0]); i++)
		if (strcmp(migrate_steps[i].name, m->name) == 0 &&
		    migrate_steps[i].fn(pg, out, errstr) == -1)
			goto out;
	res = PQexecParams(pg, "INSERT INTO auth.schema_migrations"
	    " (version, checksum) VALUES ($1, $2)", 2, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		xasprintf(errstr, "%s: recording: %s", m->name,
		    PQresultErrorMessage(res));
		PQclear(res);
		goto out;
	}
	PQclear(res);
	if (exec_ok(pg, "COMMIT", what, errstr) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		PQclear(PQexec(pg, "ROLLBACK"));
	free(what);
	return rc;
}

/*
 * Apply pending migrations of sql_dir (or with status_only, report each
 * one as "applied", "pending" or "CHANGED" and change nothing).  Prints
 * "applied NNN_x.sql" for each migration applied.  0 on success; -1 with
 * *errstr (owned by the caller) otherwise, including a changed migration.
 */
int
db_migrate(const char *conninfo, const char *sql_dir, int status_only,
    FILE *out, char **errstr)
{
	const char		*keys[] = { "connect_timeout",
	    "application_name", "dbname", NULL };
	const char		*vals[4];
	struct migration	*m = NULL;
	PGconn			*pg = NULL;
	PGresult		*res;
	char			*sum = NULL;
	size_t			 n = 0, i, changed = 0, applied = 0, len;
	int			 have_table = 1, rc = -1;

	*errstr = NULL;
	if (sodium_init() == -1) {
		xasprintf(errstr, "libsodium failed to initialize");
		return -1;
	}
	if (migrations_load(sql_dir, &m, &n, errstr) == -1)
		return -1;

	vals[0] = DB_MIGRATE_CONNECT_TIMEOUT;
	vals[1] = "fcgi-auth-migrate";
	vals[2] = conninfo != NULL ? conninfo : "";
	vals[3] = NULL;
	pg = PQconnectdbParams(keys, vals, 1);
	if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
		xasprintf(errstr, "cannot connect to PostgreSQL: %s",
		    pg != NULL ? PQerrorMessage(pg) : "out of memory");
		goto out;
	}
	PQclear(PQexec(pg, "SET client_min_messages = warning"));
	if (exec_ok(pg, "SELECT pg_advisory_lock("
	    STR(DB_MIGRATE_LOCK_KEY) ")", "taking the migration lock",
	    errstr) == -1)
		goto out;

	if (status_only) {
		res = PQexec(pg, "SELECT to_regclass("
		    "'auth.schema_migrations') IS NOT NULL");
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			xasprintf(errstr, "%s", PQresultErrorMessage(res));
			PQclear(res);
			goto out;
		}
		have_table = PQgetvalue(res, 0, 0)[0] == 't';
		PQclear(res);
	} else if (exec_ok(pg, MIGRATE_BOOKKEEPING,
	    "creating auth.schema_migrations", errstr) == -1)
		goto out;

	for (i = 0; i < n; i++) {
		free(sum);
		if (applied_sum(pg, have_table, m[i].name, &sum, errstr) == -1)
			goto out;
		if (sum != NULL && strcmp(sum, m[i].sum) != 0) {
			changed++;
			if (status_only) {
				fprintf(out, "CHANGED %s\n", m[i].name);
				continue;
			}
			xasprintf(errstr, "%s was changed after it was applied"
			    " (applied checksum %.12s, file %.12s); add a new"
			    " migration instead", m[i].name, sum, m[i].sum);
			goto out;
		}
		if (status_only) {
			fprintf(out, "%s %s\n", sum ? "applied" : "pending",
			    m[i].name);
			continue;
		}
		if (sum != NULL)
			continue;
		if (apply_one(pg, &m[i], out, errstr) == -1)
			goto out;
		fprintf(out, "applied %s\n", m[i].name);
		applied++;
	}
	if (changed) {
		xasprintf(errstr, "%zu applied migration(s) changed", changed);
		goto out;
	}
	if (!status_only && applied == 0)
		fprintf(out, "up to date\n");
	rc = 0;
out:
	if (rc == -1 && *errstr != NULL) {
		/* server messages end in a newline */
		len = strlen(*errstr);
		while (len > 0 && isspace((unsigned char)(*errstr)[len - 1]))
			(*errstr)[--len] = '\0';
	}
	free(sum);
	if (pg != NULL) {
		/* the lock goes with the session */
		PQfinish(pg);
	}
	migrations_free(m, n);
	return rc;
}
