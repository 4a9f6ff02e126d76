/*
 * The configuration: a table of keys with their type, default and bounds.
 * Sources, later ones winning: defaults, the file (key = value, # comments),
 * FCGI_AUTH_<KEY> environment variables.  A secret key may instead be given
 * as <key>_file, naming a file that holds it.  Nothing here has a default
 * secret: validation refuses to start without jwt_secret, unless the
 * command loading the configuration signs nothing (config_load's flags).
 *
 * Each key is live (a reload applies it: the LIVE_ macros) or
 * restart-only (the plain ones; a reload keeps the running value and logs
 * that a restart is needed).  That flag, here, is the only place that
 * decides it.  access_ttl and jwt_leeway stay restart-only: store.c sizes
 * the revocation markers in Redis by them (pool.access_ttl), and a marker
 * must outlive every token it revokes.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "extern.h"

#define CONFIG_SECRET_FILE_MAX	65536
#define CONFIG_FILE_MAX		(CONFIG_SECRET_FILE_MAX * 16)
#define CONFIG_ENV_PREFIX	"FCGI_AUTH_"

enum ctype {
	CT_STR,
	CT_SECRET,	/* a string that is masked and may come from a file */
	CT_LONG,	/* decimal */
	CT_MODE,	/* octal, a file mode */
	CT_BOOL
};

struct ckey {
	const char	*name;
	enum ctype	 type;
	size_t		 off;
	const char	*def;
	long		 min;
	long		 max;
	int		 live;	/* a reload applies it */
};

#define CK(n, t, d, lo, hi, live) \
	{ #n, t, offsetof(struct config, n), d, lo, hi, live }
#define S(n, d)		CK(n, CT_STR, d, 0, 0, 0)
#define X(n)		CK(n, CT_SECRET, NULL, 0, 0, 0)
#define L(n, d, lo, hi)	CK(n, CT_LONG, #d, lo, hi, 0)
#define M(n, d)		CK(n, CT_MODE, #d, 0, 0777, 0)
#define B(n, d)		CK(n, CT_BOOL, d, 0, 1, 0)
#define LIVE_S(n, d)	CK(n, CT_STR, d, 0, 0, 1)
#define LIVE_X(n)	CK(n, CT_SECRET, NULL, 0, 0, 1)
#define LIVE_L(n, d, lo, hi) CK(n, CT_LONG, #d, lo, hi, 1)
#define LIVE_B(n, d)	CK(n, CT_BOOL, d, 0, 1, 1)

static const struct ckey ckeys[] = {
	S(listen, ""),
	M(listen_mode, 0660),
	L(workers, 64, 1, 4096),
	L(backlog, 1024, 1, 65535),
	L(read_timeout, 300, 0, 86400),
	L(request_timeout, 10, 1, 86400),
	S(prefix, "/auth"),
	LIVE_L(max_body, 16384, 64, 16777216),
	LIVE_S(trusted_proxies, ""),
	LIVE_S(real_ip_header, ""),
	LIVE_S(log_level, "info"),
	LIVE_S(log_format, "text"),
	LIVE_S(log_file, ""),
	S(sql_dir, PKGDATADIR "/sql"),
	X(database_url),
	L(db_pool, 8, 1, 256),
	S(redis_host, "127.0.0.1"),
	L(redis_port, 6379, 1, 65535),
	X(redis_password),
	L(redis_db, 0, 0, 1024),
	L(redis_pool, 64, 1, 1024),
	S(redis_sentinels, ""),
	S(redis_master_name, ""),
	L(redis_revoke_replicas, 0, 0, 16),
	L(backend_timeout_ms, 1000, 50, 60000),
	LIVE_S(jwt_alg, "HS256"),
	LIVE_X(jwt_secret),
	LIVE_X(jwt_secret_previous),
	X(data_secret),
	LIVE_S(jwt_issuer, "fcgi-auth"),
	LIVE_S(jwt_audience, "fcgi-auth"),
	L(jwt_leeway, 30, 0, 3600),
	LIVE_S(jwt_private_key_file, ""),
	LIVE_S(jwt_kid, ""),
	LIVE_S(jwt_public_keys, ""),
	LIVE_L(jwks_max_age, 300, 0, 86400),
	L(access_ttl, 900, 1, 86400),
	LIVE_L(refresh_ttl, 604800, 1, 31536000),
	LIVE_L(refresh_reuse_grace, 10, 0, 3600),
	L(password_opslimit, 2, 1, 64),
	L(password_memlimit, 19922944, 8192, 4294967295L),
	L(hash_threads, 0, 0, 256),
	LIVE_L(max_sessions_per_user, 20, 1, 10000),
	LIVE_B(ratelimit, "on"),
	LIVE_L(ratelimit_window, 900, 1, 86400),
	LIVE_L(login_fail_per_email, 10, 1, 1000000),
	LIVE_L(login_fail_per_account, 100, 1, 1000000),
	LIVE_L(login_fail_per_ip, 100, 1, 1000000),
	LIVE_L(register_per_ip, 20, 1, 1000000),
	LIVE_S(verify_headers, "default"),
	S(events_prefix, ""),
	S(events_enabled, "all"),
	S(events_stream, ""),
	L(events_stream_maxlen, 10000, 1, 100000000),
	L(outbox_retention, 86400, 0, 31536000),
	LIVE_B(rpc_enabled, "on"),
	LIVE_S(rpc_validate_pattern, "auth.validate_token"),
	S(mfa_issuer, ""),
	L(mfa_token_ttl, 300, 1, 3600),
	LIVE_S(smtp_url, ""),
	LIVE_S(smtp_user, ""),
	LIVE_X(smtp_password),
	LIVE_S(mail_from, "fcgi-auth@localhost"),
	LIVE_S(public_url, "http://localhost"),
	LIVE_S(reset_url, ""),
	LIVE_S(verify_url, ""),
	LIVE_S(mail_template_dir, PKGDATADIR "/mail"),
	LIVE_S(email_verification, "optional"),
	LIVE_L(reset_ttl, 3600, 60, 604800),
	LIVE_L(verify_ttl, 86400, 60, 2592000),
	LIVE_L(email_change_ttl, 3600, 60, 604800),
	LIVE_L(mail_per_email, 5, 1, 1000000),
	LIVE_L(mail_per_ip, 50, 1, 1000000),
	LIVE_L(mail_retry_hours, 24, 1, 720),
	LIVE_L(mail_retry_min_seconds, 30, 1, 3600),
	LIVE_L(smtp_timeout_ms, 10000, 100, 600000),
	LIVE_L(smtp_connect_timeout_ms, 5000, 100, 600000),
};
#define CKEYS_MAX	(sizeof(ckeys) / sizeof(ckeys[0]))

static char **
ck_str(struct config *c, const struct ckey *k)
{
	return (void *)((char *)c + k->off);
}

static long *
ck_long(struct config *c, const struct ckey *k)
{
	return (void *)((char *)c + k->off);
}

static int *
ck_bool(struct config *c, const struct ckey *k)
{
	return (void *)((char *)c + k->off);
}

/* The same fields, read only. */
static char *
ck_cstr(const struct config *c, const struct ckey *k)
{
	char *const	*p = (const void *)((const char *)c + k->off);

	return *p;
}

static long
ck_clong(const struct config *c, const struct ckey *k)
{
	const long	*p = (const void *)((const char *)c + k->off);

	return *p;
}

static int
ck_cbool(const struct config *c, const struct ckey *k)
{
	const int	*p = (const void *)((const char *)c + k->off);

	return *p;
}

static const struct ckey *
ck_find(const char *name, size_t len, int *isfile)
{
	size_t	 i, n;

	*isfile = 0;
	for (i = 0; i < CKEYS_MAX; i++) {
		n = strlen(ckeys[i].name);
		if (len == n && strncmp(name, ckeys[i].name, n) == 0)
			return &ckeys[i];
		if (ckeys[i].type == CT_SECRET && len == n + 5 &&
		    strncmp(name, ckeys[i].name, n) == 0 &&
		    strncmp(name + n, "_file", 5) == 0) {
			*isfile = 1;
			return &ckeys[i];
		}
	}
	return NULL;
}

/*
 * Decimal; a leading zero is refused, as "010" meant eight (octal) before
 * numbers became decimal only.  A CT_MODE is octal.
 */
static int
parse_long(const char *v, const struct ckey *k, long *out)
{
	long long	 n;
	char		*end;

	if (k->type == CT_MODE) {
		if (strspn(v, "01234567") != strlen(v) || *v == '\0')
			return -1;
		n = strtoll(v, &end, 8);
	} else if ((v[0] == '0' || (v[0] == '-' && v[1] == '0')) &&
	    v[1] != '\0')
		return -1;
	else if (num_parse(v, k->min, k->max, &n) == -1)
		return -1;
	if (n < k->min || n > k->max)
		return -1;
	*out = (long)n;
	return 0;
}

static int
parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "on", "yes", "true", "1", NULL };
	static const char *const no[] = { "off", "no", "false", "0", NULL };

	return bool_parse(v, yes, no, out);
}

/* Read a secret file whole, dropping one trailing newline. */
static int
read_secret_file(const char *path, char **out, size_t *outlen)
{
	char	*buf;
	size_t	 n;

	if (file_read(path, CONFIG_SECRET_FILE_MAX, &buf, &n) == -1)
		return -1;
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return 0;
}

static void
set_secret(struct config *c, const struct ckey *k, char *v, size_t len)
{
	char	**p = ck_str(c, k);

	if (*p != NULL) {
		sodium_memzero(*p, strlen(*p));
		free(*p);
	}
	*p = v;
	if (p == &c->jwt_secret)
		c->jwt_secret_len = len;
	else if (p == &c->jwt_secret_previous)
		c->jwt_secret_previous_len = len;
	else if (p == &c->data_secret)
		c->data_secret_len = len;
}

/* Set one key from text; errstr says which key is wrong, never its value. */
static int
config_set(struct config *c, const char *name, size_t namelen,
    const char *v, const char *where, char **errstr)
{
	const struct ckey	*k;
	char			*sec;
	size_t			 seclen;
	int			 isfile;

	if ((k = ck_find(name, namelen, &isfile)) == NULL) {
		xasprintf(errstr, "%s: unknown key '%.*s'", where,
		    (int)(namelen > 64 ? 64 : namelen), name);
		return -1;
	}
	switch (k->type) {
	case CT_SECRET:
		if (isfile) {
			if (read_secret_file(v, &sec, &seclen) == -1) {
				/* e.g. a systemd credential outside the unit */
				if (c->secret_optional &&
				    strcmp(k->name, "jwt_secret") == 0)
					return 0;
				xasprintf(errstr, "%s: %s_file: cannot read "
				    "the file", where, k->name);
				return -1;
			}
			set_secret(c, k, sec, seclen);
		} else
			set_secret(c, k, xstrdup(v), strlen(v));
		return 0;
	case CT_STR:
		free(*ck_str(c, k));
		*ck_str(c, k) = xstrdup(v);
		return 0;
	case CT_LONG:
		if (parse_long(v, k, ck_long(c, k)) == -1) {
			xasprintf(errstr, "%s: %s: expected a number from "
			    "%ld to %ld", where, k->name, k->min, k->max);
			return -1;
		}
		return 0;
	case CT_MODE:
		if (parse_long(v, k, ck_long(c, k)) == -1) {
			xasprintf(errstr, "%s: %s: expected an octal mode "
			    "from 0 to 0%lo", where, k->name, k->max);
			return -1;
		}
		return 0;
	case CT_BOOL:
		if (parse_bool(v, ck_bool(c, k)) == -1) {
			xasprintf(errstr, "%s: %s: expected on or off",
			    where, k->name);
			return -1;
		}
		return 0;
	}
	return -1;
}

void
config_defaults(struct config *c)
{
	size_t	 i;
	char	*err = NULL;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < CKEYS_MAX; i++) {
		if (ckeys[i].def == NULL)
			continue;
		if (config_set(c, ckeys[i].name, strlen(ckeys[i].name),
		    ckeys[i].def, "default", &err) == -1)
			abort();	/* a bad default is a programming error */
	}
}

static char *
trim(char *s, char **end)
{
	while (isspace((unsigned char)*s))
		s++;
	*end = s + strlen(s);
	while (*end > s && isspace((unsigned char)(*end)[-1]))
		(*end)--;
	**end = '\0';
	return s;
}

int
config_parse(struct config *c, const char *buf, size_t len, char **errstr)
{
	char		 line[CONFIG_LINE_MAX], where[32], *end, *eq, *k;
	const char	*p = buf, *nl, *v;
	size_t		 n, lineno = 0;

	while (p < buf + len) {
		lineno++;
		nl = memchr(p, '\n', (size_t)(buf + len - p));
		n = (size_t)((nl != NULL ? nl : buf + len) - p);
		snprintf(where, sizeof(where), "line %zu", lineno);
		if (n >= sizeof(line) || memchr(p, '\0', n) != NULL) {
			xasprintf(errstr, "%s: line too long or binary", where);
			return -1;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p += n + (nl != NULL);
		k = trim(line, &end);
		if (*k == '\0' || *k == '#')
			continue;
		if ((eq = strchr(k, '=')) == NULL) {
			xasprintf(errstr, "%s: expected key = value", where);
			return -1;
		}
		*eq = '\0';
		trim(k, &end);
		v = trim(eq + 1, &end);
		if (*k == '\0') {
			xasprintf(errstr, "%s: expected key = value", where);
			return -1;
		}
		/* a value may be quoted to keep leading/trailing blanks */
		if (end - v >= 2 && *v == '"' && end[-1] == '"') {
			end[-1] = '\0';
			v++;
		}
		if (config_set(c, k, strlen(k), v, where, errstr) == -1)
			return -1;
	}
	return 0;
}

int
config_env(struct config *c, char *const *env, char **errstr)
{
	char		 name[64], where[96];
	const char	*e, *eq;
	size_t		 plen = strlen(CONFIG_ENV_PREFIX), n, i;

	for (; env != NULL && *env != NULL; env++) {
		e = *env;
		if (strncmp(e, CONFIG_ENV_PREFIX, plen) != 0 ||
		    (eq = strchr(e, '=')) == NULL)
			continue;
		n = (size_t)(eq - e) - plen;
		if (n == 0 || n >= sizeof(name))
			continue;
		for (i = 0; i < n; i++)
			name[i] = (char)tolower((unsigned char)e[plen + i]);
		name[n] = '\0';
		snprintf(where, sizeof(where), "%.*s", (int)(eq - e), e);
		if (config_set(c, name, n, eq + 1, where, errstr) == -1)
			return -1;
	}
	return 0;
}

/*
 * The secret that keys data at rest (TOTP secrets, recovery codes, one-time
 * tokens, queued mail): data_secret, else jwt_secret.  Read once, from the
 * configuration the process starts with (token.c, once.c), so a reload
 * that rotates jwt_secret changes nothing stored; before the next restart
 * data_secret is set to the old jwt_secret (DEPLOYMENT.md, Secret and key
 * rotation).
 */
void
config_data_secret(const struct config *c, const char **sec, size_t *len)
{
	if (c->data_secret != NULL && c->data_secret_len > 0) {
		*sec = c->data_secret;
		*len = c->data_secret_len;
	} else {
		*sec = c->jwt_secret;
		*len = c->jwt_secret_len;
	}
}

int
config_load(struct config *c, const char *path, int flags, char **errstr)
{
	extern char	**environ;
	const char	 *file = path != NULL ? path : CONFIG_DEFAULT_PATH;
	char		 *buf = NULL, *err = NULL;
	size_t		  n;
	int		  rc = -1;

	config_defaults(c);
	c->secret_optional = (flags & CONFIG_SECRET_OPTIONAL) != 0;
	if (file_read(file, CONFIG_FILE_MAX, &buf, &n) == -1) {
		if (path != NULL || errno != ENOENT) {
			xasprintf(errstr, "%s: %s", file, errno == EFBIG ?
			    "cannot read" : strerror(errno));
			return -1;
		}
	} else {
		if (config_parse(c, buf, n, &err) == -1) {
			xasprintf(errstr, "%s: %s", file, err);
			goto out;
		}
	}
	if (config_env(c, environ, errstr) == -1 ||
	    config_validate(c, errstr) == -1)
		goto out;
	rc = 0;
out:
	free(err);
	free(buf);
	return rc;
}

void
config_print(const struct config *c, FILE *f)
{
	size_t		 i;
	const struct ckey *k;
	const char	*s;

	for (i = 0; i < CKEYS_MAX; i++) {
		k = &ckeys[i];
		switch (k->type) {
		case CT_SECRET:
			s = ck_cstr(c, k);
			fprintf(f, "%s = %s\n", k->name,
			    s == NULL || *s == '\0' ? "" : "********");
			break;
		case CT_STR:
			fprintf(f, "%s = %s\n", k->name, ck_cstr(c, k));
			break;
		case CT_LONG:
			fprintf(f, "%s = %ld\n", k->name, ck_clong(c, k));
			break;
		case CT_MODE:
			fprintf(f, "%s = 0%lo\n", k->name, ck_clong(c, k));
			break;
		case CT_BOOL:
			fprintf(f, "%s = %s\n", k->name,
			    ck_cbool(c, k) ? "on" : "off");
			break;
		}
	}
}

void
config_free(struct config *c)
{
	size_t	 i;
	char	**p;

	for (i = 0; i < CKEYS_MAX; i++) {
		if (ckeys[i].type != CT_STR && ckeys[i].type != CT_SECRET)
			continue;
		if (c->shares_restart && !ckeys[i].live)
			continue;	/* borrowed from the running one */
		p = ck_str(c, &ckeys[i]);
		if (*p != NULL && ckeys[i].type == CT_SECRET)
			sodium_memzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

static int
ck_same(const struct config *a, const struct config *b, const struct ckey *k)
{
	const char	*x, *y;

	switch (k->type) {
	case CT_STR:
	case CT_SECRET:
		x = ck_cstr(a, k);
		y = ck_cstr(b, k);
		return strcmp(x != NULL ? x : "", y != NULL ? y : "") == 0;
	case CT_LONG:
	case CT_MODE:
		return ck_clong(a, k) == ck_clong(b, k);
	case CT_BOOL:
		return ck_cbool(a, k) == ck_cbool(b, k);
	}
	return 0;
}

int
config_keep_restart(struct config *next, const struct config *run,
    void (*note)(const char *key))
{
	const struct config *r = run;
	char		**p;
	size_t		 i;
	int		 n = 0;

	for (i = 0; i < CKEYS_MAX; i++) {
		if (ckeys[i].live)
			continue;
		if (!ck_same(next, r, &ckeys[i])) {
			note(ckeys[i].name);
			n++;
		}
		switch (ckeys[i].type) {
		case CT_STR:
		case CT_SECRET:
			p = ck_str(next, &ckeys[i]);
			if (*p != NULL && ckeys[i].type == CT_SECRET)
				sodium_memzero(*p, strlen(*p));
			free(*p);
			*p = ck_cstr(r, &ckeys[i]);
			break;
		case CT_LONG:
		case CT_MODE:
			*ck_long(next, &ckeys[i]) = ck_clong(r, &ckeys[i]);
			break;
		case CT_BOOL:
			*ck_bool(next, &ckeys[i]) = ck_cbool(r, &ckeys[i]);
			break;
		}
	}
	next->shares_restart = 1;
	return n;
}
