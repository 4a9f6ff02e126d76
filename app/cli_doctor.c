/*
 * fcgi-auth doctor: what an operator runs first when something is wrong.
 * One line per check on stdout, "ok   what: detail", "warn what: detail"
 * or "FAIL what: detail"; exit 1 when any check failed.  It reaches each
 * backend with its own short-lived connection (not the service pools:
 * db_probe, store_probe) and never prints a secret: only key names, paths,
 * modes and server answers.
 */
#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "extern.h"

enum doctor_status {
	DOCTOR_OK,
	DOCTOR_WARN,
	DOCTOR_FAIL,
	DOCTOR_SKIP,
	DOCTOR__MAX
};

static const char *const doctor_tags[DOCTOR__MAX] = {
	"ok  ", "warn", "FAIL", "skip"
};

static int	 doctor_failed;

static void
say(enum doctor_status st, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
say(enum doctor_status st, const char *what, const char *fmt, ...)
{
	va_list	 ap;
	char	 buf[DOCTOR_LINE_MAX], esc[DOCTOR_LINE_MAX];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_escape(esc, sizeof(esc), buf);
	printf("%s %s: %s\n", doctor_tags[st], what, esc);
	if (st == DOCTOR_FAIL)
		doctor_failed = 1;
}

static int
check_postgres(struct db_probe *p)
{
	char	 err[DOCTOR_LINE_MAX];

	if (cfg->database_url[0] == '\0') {
		say(DOCTOR_FAIL, "postgres", "database_url is not set");
		return -1;
	}
	if (db_probe(cfg->database_url, p, err, sizeof(err)) == -1) {
		say(DOCTOR_FAIL, "postgres", "cannot connect: %s", err);
		return -1;
	}
	say(DOCTOR_OK, "postgres", "connected to database %s, server %d.%d",
	    p->db, p->version / 10000, p->version % 10000);
	return 0;
}

/* Every sql_dir/NNN_*.sql recorded as applied: migrate.c's status. */
static void
check_schema(void)
{
	FILE	*f;
	char	*text = NULL, *err = NULL, *line, *save = NULL;
	char	 pending[DOCTOR_LINE_MAX] = "";
	size_t	 len = 0, napplied = 0, npending = 0;

	if ((f = open_memstream(&text, &len)) == NULL) {
		say(DOCTOR_FAIL, "schema", "%s", strerror(errno));
		return;
	}
	if (db_migrate(cfg->database_url, cfg->sql_dir, 1, f, &err) == -1) {
		fclose(f);
		say(DOCTOR_FAIL, "schema", "%s (fcgi-auth migrate status)",
		    err != NULL ? err : "migrate status failed");
		goto out;
	}
	fclose(f);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "applied ", 8) == 0)
			napplied++;
		else if (strncmp(line, "pending ", 8) == 0) {
			if (npending++ > 0)
				strncat(pending, " ", sizeof(pending) -
				    strlen(pending) - 1);
			strncat(pending, line + 8, sizeof(pending) -
			    strlen(pending) - 1);
		}
	}
	if (npending > 0)
		say(DOCTOR_FAIL, "schema", "%zu of %zu migration(s) of %s not "
		    "applied: %s (run fcgi-auth migrate)", npending,
		    npending + napplied, cfg->sql_dir, pending);
	else
		say(DOCTOR_OK, "schema", "all %zu migration(s) of %s applied",
		    napplied, cfg->sql_dir);
out:
	free(err);
	free(text);
}

/* PostgreSQL's clock against ours (db_probe). */
static void
check_clock(const struct db_probe *p)
{
	double	 mag;

	if (!p->clock_ok) {
		say(DOCTOR_FAIL, "clock", "SELECT clock_timestamp() failed");
		return;
	}
	mag = p->skew < 0 ? -p->skew : p->skew;
	if (mag > DOCTOR_SKEW_FAIL)
		say(DOCTOR_FAIL, "clock", "%+.3f s from PostgreSQL (more than "
		    "%d s: tokens will be refused; check NTP)", p->skew,
		    DOCTOR_SKEW_FAIL);
	else if (mag > DOCTOR_SKEW_WARN)
		say(DOCTOR_WARN, "clock", "%+.3f s from PostgreSQL (more than "
		    "%d s; check NTP)", p->skew, DOCTOR_SKEW_WARN);
	else
		say(DOCTOR_OK, "clock", "%+.3f s from PostgreSQL", p->skew);
}

static void
check_redis(void)
{
	char	 host[SENTINEL_HOST_MAX], err[DOCTOR_LINE_MAX];
	int	 port = (int)cfg->redis_port;

	snprintf(host, sizeof(host), "%s", cfg->redis_host);
	if (cfg->redis_sentinels[0] != '\0') {
		if (sentinel_master(cfg, mono_ms() + cfg->backend_timeout_ms,
		    host, sizeof(host), &port) == -1) {
			say(DOCTOR_FAIL, "sentinel", "no sentinel of %s named "
			    "a master for %s", cfg->redis_sentinels,
			    cfg->redis_master_name);
			return;
		}
		say(DOCTOR_OK, "sentinel", "master %s is %s:%d",
		    cfg->redis_master_name, host, port);
	}
	if (store_probe(cfg, host, port, err, sizeof(err)) == -1) {
		say(DOCTOR_FAIL, "redis", "%s:%d: %s", host, port, err);
		return;
	}
	say(DOCTOR_OK, "redis", "%s:%d db %ld answers PING", host, port,
	    cfg->redis_db);
}

/*
 * A file that holds a secret: a regular file, owned by root or by us (the
 * service user), neither readable nor writable by others and not writable
 * by its group.
 */
static void
check_secret_file(const char *key, const char *path)
{
	struct stat	 st;
	char		 what[DOCTOR_LINE_MAX];
	unsigned	 mode;

	snprintf(what, sizeof(what), "%s %s", key, path);
	if (stat(path, &st) == -1) {
		say(DOCTOR_FAIL, what, "%s", strerror(errno));
		return;
	}
	mode = (unsigned)st.st_mode & 07777;
	if (!S_ISREG(st.st_mode))
		say(DOCTOR_FAIL, what, "not a regular file");
	else if (mode & (S_IROTH | S_IWOTH))
		say(DOCTOR_FAIL, what, "mode %04o: readable by every user "
		    "(chmod o-rwx)", mode);
	else if (mode & S_IWGRP)
		say(DOCTOR_FAIL, what, "mode %04o: writable by its group "
		    "(chmod g-w)", mode);
	else if (st.st_uid != 0 && st.st_uid != geteuid())
		say(DOCTOR_FAIL, what, "owned by uid %u, not root",
		    (unsigned)st.st_uid);
	else
		say(DOCTOR_OK, what, "mode %04o, uid %u, gid %u", mode,
		    (unsigned)st.st_uid, (unsigned)st.st_gid);
}

/* A database_url that carries a password (key word or URI user:pass@). */
static int
url_has_password(const char *v)
{
	const char	*s, *at;

	if (strstr(v, "password") != NULL)
		return 1;
	if ((s = strstr(v, "://")) == NULL || (at = strchr(s, '@')) == NULL)
		return 0;
	return memchr(s + 3, ':', (size_t)(at - s - 3)) != NULL;
}

/* Whether s ends in suffix. */
static int
ends_with(const char *s, const char *suffix)
{
	size_t	 n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/*
 * key = value with a secret in the value itself, not in a *_file: the
 * jwt_secret keys, *_password, *_secret, and a *_url with a password.
 */
static int
inline_secret(const char *key, const char *v)
{
	if (*v == '\0')
		return 0;
	if (ends_with(key, "_url"))
		return url_has_password(v);
	return strncmp(key, "jwt_secret", 10) == 0 ||
	    ends_with(key, "_password") || ends_with(key, "_secret");
}

/* Keys naming a file that holds a secret: <secret>_file, private keys. */
static int
secret_file_key(const char *key)
{
	return strcmp(key, "log_file") != 0 && ends_with(key, "_file");
}

/* Trim blanks and one pair of quotes in place. */
static char *
strip(char *s)
{
	char	*e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	if (e - s >= 2 && *s == '"' && e[-1] == '"') {
		e[-1] = '\0';
		s++;
	}
	return s;
}

/*
 * The configuration file, and every *_file key in it and in FCGI_AUTH_*
 * variables.  config.c resolves those keys into their contents and keeps
 * no path, so the file's lines are read again here for the names.
 */
static void
check_files(const char *path)
{
	extern char	**environ;
	struct stat	 st;
	FILE		*f;
	char		 line[CONFIG_LINE_MAX], name[CONFIG_LINE_MAX];
	char		*k, *v, *eq, **e;
	size_t		 i, plen = strlen("FCGI_AUTH_");
	int		 secrets = 0;

	if ((f = fopen(path, "r")) == NULL) {
		if (errno == ENOENT && config_path == NULL)
			say(DOCTOR_WARN, "config", "%s: absent (defaults and "
			    "FCGI_AUTH_* variables only)", path);
		else
			say(DOCTOR_FAIL, "config", "%s: %s", path,
			    strerror(errno));
	} else {
		while (fgets(line, sizeof(line), f) != NULL) {
			k = strip(line);
			if (*k == '#' || (eq = strchr(k, '=')) == NULL)
				continue;
			*eq = '\0';
			k = strip(k);
			v = strip(eq + 1);
			if (secret_file_key(k)) {
				if (*v != '\0')
					check_secret_file(k, v);
			} else if (inline_secret(k, v))
				secrets = 1;
		}
		if (fstat(fileno(f), &st) == -1)
			say(DOCTOR_FAIL, "config", "%s: %s", path,
			    strerror(errno));
		else if (st.st_mode & S_IWOTH)
			say(DOCTOR_FAIL, "config", "%s: mode %04o: writable "
			    "by every user", path,
			    (unsigned)st.st_mode & 07777);
		else if (secrets && (st.st_mode & S_IROTH))
			say(DOCTOR_FAIL, "config", "%s: mode %04o: holds a "
			    "secret and is readable by every user (chmod "
			    "o-r, or move it to a *_file)", path,
			    (unsigned)st.st_mode & 07777);
		else
			say(DOCTOR_OK, "config", "%s: mode %04o", path,
			    (unsigned)st.st_mode & 07777);
		fclose(f);
	}
	for (e = environ; *e != NULL; e++) {
		if (strncmp(*e, "FCGI_AUTH_", plen) != 0 ||
		    (eq = strchr(*e, '=')) == NULL ||
		    (size_t)(eq - *e) - plen >= sizeof(name))
			continue;
		for (i = 0; *e + plen + i < eq; i++)
			name[i] = (char)tolower((unsigned char)(*e)[plen + i]);
		name[i] = '\0';
		if (secret_file_key(name) && eq[1] != '\0')
			check_secret_file(name, eq + 1);
	}
}

static void
check_smtp(void)
{
	char	 err[DOCTOR_LINE_MAX];

	if (cfg->smtp_url[0] == '\0') {
		say(DOCTOR_SKIP, "smtp", "smtp_url not set: no mail is sent");
		return;
	}
	if (mailer_probe(err, sizeof(err)) == -1) {
		say(DOCTOR_FAIL, "smtp", "%s: %s", cfg->smtp_url, err);
		return;
	}
	say(DOCTOR_OK, "smtp", "%s answers", cfg->smtp_url);
}

int
cli_doctor(int argc, char **argv)
{
	struct db_probe	 pg;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: fcgi-auth doctor\n");
		return 2;
	}
	doctor_failed = 0;
	check_files(config_path != NULL ? config_path : CONFIG_DEFAULT_PATH);
	if (check_postgres(&pg) == 0) {
		check_schema();
		check_clock(&pg);
	} else {
		say(DOCTOR_SKIP, "schema", "no PostgreSQL");
		say(DOCTOR_SKIP, "clock", "no PostgreSQL");
	}
	check_redis();
	check_smtp();
	fflush(stdout);
	return doctor_failed ? 1 : 0;
}
