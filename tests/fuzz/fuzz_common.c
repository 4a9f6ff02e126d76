/*
 * fuzz_common.c: the configuration every harness runs with, keys made at
 * run time (never committed) and small input helpers.  Defines cfg, which
 * main.c owns in the service.
 */
#include "config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

struct config		*cfg;
struct config		 fuzz_conf;

static const char *const alg_names[FUZZ_ALG__MAX] = {
	"HS256", "RS256", "ES256"
};

static struct {
	int		 ready;
	enum fuzz_alg	 alg;
	char		 dir[PATH_MAX];
	int		 keys;		/* generated */
} fc;

static const char *const key_kids[] = {
	FUZZ_KID_RS, FUZZ_KID_RS2, FUZZ_KID_ES, FUZZ_KID_ES2
};
#define KEY_KIDS	(sizeof(key_kids) / sizeof(key_kids[0]))

void
fuzz_fail(const char *fmt, ...)
{
	va_list	 ap;

	fputs("FUZZ INVARIANT BROKEN: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static void
keys_remove(void)
{
	char	 p[PATH_MAX + 64];
	size_t	 i;

	if (!fc.keys)
		return;
	for (i = 0; i < KEY_KIDS; i++) {
		snprintf(p, sizeof(p), "%s/%s.pem", fc.dir, key_kids[i]);
		unlink(p);
		snprintf(p, sizeof(p), "%s/%s.pub.pem", fc.dir, key_kids[i]);
		unlink(p);
	}
	rmdir(fc.dir);
	fc.keys = 0;
}

static void
keys_make(void)
{
	const char	*tmp = getenv("TMPDIR");
	char		*err = NULL;
	size_t		 i;

	if (fc.keys)
		return;
	snprintf(fc.dir, sizeof(fc.dir), "%s/fa-fuzz-keys-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(fc.dir) == NULL)
		fuzz_fail("mkdtemp %s failed", fc.dir);
	fc.keys = 1;
	atexit(keys_remove);
	for (i = 0; i < KEY_KIDS; i++)
		if (token_keygen(strncmp(key_kids[i], "rs", 2) == 0 ?
		    "rs256" : "es256", key_kids[i], fc.dir, &err) == -1)
			fuzz_fail("keygen: %s", err != NULL ? err : "?");
}

const char *
fuzz_private_key(enum fuzz_alg alg)
{
	static char	 p[PATH_MAX + 64];

	snprintf(p, sizeof(p), "%s/%s.pem", fc.dir,
	    alg == FUZZ_RS256 ? FUZZ_KID_RS : FUZZ_KID_ES);
	return p;
}

static void
set_str(char **field, const char *v)
{
	free(*field);
	*field = xstrdup(v);
}

void
fuzz_setup(enum fuzz_alg alg)
{
	char	*err = NULL, *pub = NULL;

	if (fc.ready && fc.alg == alg)
		return;
	if (!fc.ready) {
		config_defaults(&fuzz_conf);
		fuzz_conf.jwt_secret = xstrdup(FUZZ_SECRET);
		fuzz_conf.jwt_secret_len = strlen(FUZZ_SECRET);
		set_str(&fuzz_conf.jwt_issuer, FUZZ_ISSUER);
		set_str(&fuzz_conf.jwt_audience, FUZZ_AUDIENCE);
		log_set_level(LOGL_ERROR);
		cfg = &fuzz_conf;
	}
	if (alg != FUZZ_HS256) {
		keys_make();
		set_str(&fuzz_conf.jwt_private_key_file, fuzz_private_key(alg));
		set_str(&fuzz_conf.jwt_kid, alg == FUZZ_RS256 ? FUZZ_KID_RS :
		    FUZZ_KID_ES);
		/* a second key of the same type and one of the other type */
		xasprintf(&pub, "%s=%s/%s.pub.pem, %s=%s/%s.pub.pem",
		    alg == FUZZ_RS256 ? FUZZ_KID_RS2 : FUZZ_KID_ES2, fc.dir,
		    alg == FUZZ_RS256 ? FUZZ_KID_RS2 : FUZZ_KID_ES2,
		    alg == FUZZ_RS256 ? FUZZ_KID_ES : FUZZ_KID_RS, fc.dir,
		    alg == FUZZ_RS256 ? FUZZ_KID_ES : FUZZ_KID_RS);
		set_str(&fuzz_conf.jwt_public_keys, pub);
		free(pub);
	} else {
		set_str(&fuzz_conf.jwt_private_key_file, "");
		set_str(&fuzz_conf.jwt_kid, "");
		set_str(&fuzz_conf.jwt_public_keys, "");
	}
	set_str(&fuzz_conf.jwt_alg, alg_names[alg]);
	if (config_validate(&fuzz_conf, &err) == -1 ||
	    token_init(&fuzz_conf, &err) == -1)
		fuzz_fail("setup %s: %s", alg_names[alg], err != NULL ? err :
		    "?");
	/* tokens verified under the old keys must not hit */
	tcache_shutdown();
	tcache_init();
	fc.alg = alg;
	fc.ready = 1;
}

enum fuzz_alg
fuzz_current_alg(void)
{
	return fc.alg;
}

char *
fuzz_strndup(const uint8_t *p, size_t n)
{
	char	*s = xmalloc(n + 1);

	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

char *
fuzz_field(const uint8_t **p, size_t *n)
{
	const uint8_t	*nl;
	char		*s;
	size_t		 len;

	if (*n == 0)
		return NULL;
	nl = memchr(*p, '\n', *n);
	len = nl != NULL ? (size_t)(nl - *p) : *n;
	s = fuzz_strndup(*p, len);
	*p += len + (nl != NULL);
	*n -= len + (nl != NULL);
	return s;
}
