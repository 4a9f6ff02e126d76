/*
 * fuzz_config.c: the configuration file and environment.  The input is the
 * file text, optionally followed by a NUL byte and NUL-separated
 * FCGI_AUTH_<KEY>=value environment entries.  Runs config_defaults,
 * config_parse, config_env, config_validate and config_print, then frees
 * everything (LeakSanitizer watches config_free).  Checked:
 *  - a failure always comes with an error string, success never leaves one;
 *  - after validate: jwt_secret is >= 32 bytes, jwt_alg is one of the
 *    three, prefix starts with '/', the numbers are inside their bounds;
 *  - config_print never shows a secret (lines of secret keys are empty or
 *    "********").
 * Inputs naming a secret's *_file key outside a comment are skipped: they
 * would read arbitrary files
 * (/dev/stdin would block the fuzzer); tests/unit/test_config.c covers
 * them.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"

#define ENV_MAX		32

/* Secret keys given as <key>_file read that file. */
static const char *const file_keys[] = {
	"database_url_file", "redis_password_file", "jwt_secret_file"
};

/*
 * True when a line of s (n bytes) names a *_file key; with comments set,
 * lines starting with '#' do not count.
 */
static int
names_file(const char *s, size_t n, int comments)
{
	const char	*line = s, *end = s + n, *nl;
	size_t		 i, k, len;

	while (line < end) {
		nl = memchr(line, '\n', (size_t)(end - line));
		len = (size_t)((nl != NULL ? nl : end) - line);
		while (len > 0 && (*line == ' ' || *line == '\t')) {
			line++;
			len--;
		}
		if (len > 0 && (!comments || *line != '#'))
			for (i = 0; i < sizeof(file_keys) /
			    sizeof(file_keys[0]); i++)
				for (k = 0; k + strlen(file_keys[i]) <= len;
				    k++)
					if (strncasecmp(line + k, file_keys[i],
					    strlen(file_keys[i])) == 0)
						return 1;
		line += len + (nl != NULL);
	}
	return 0;
}

static void
check_print(const struct config *c)
{
	static const char *const secrets[] = {
		"database_url = ", "redis_password = ", "jwt_secret = "
	};
	char	*out = NULL, *line, *save = NULL;
	size_t	 len = 0, i;
	FILE	*f;

	if ((f = open_memstream(&out, &len)) == NULL)
		fuzz_fail("open_memstream");
	config_print(c, f);
	fclose(f);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
			if (strncmp(line, secrets[i], strlen(secrets[i])) == 0 &&
			    strcmp(line + strlen(secrets[i]), "") != 0 &&
			    strcmp(line + strlen(secrets[i]), "********") != 0)
				fuzz_fail("config_print shows a secret: %s",
				    secrets[i]);
	free(out);
}

static void
check_valid(const struct config *c)
{
	if (c->jwt_secret == NULL || c->jwt_secret_len < CONFIG_SECRET_MIN ||
	    strlen(c->jwt_secret) > c->jwt_secret_len)
		fuzz_fail("validated config with a short secret");
	if (strcmp(c->jwt_alg, "HS256") != 0 &&
	    strcmp(c->jwt_alg, "RS256") != 0 &&
	    strcmp(c->jwt_alg, "ES256") != 0)
		fuzz_fail("validated config with jwt_alg %s", c->jwt_alg);
	if (c->prefix[0] != '/')
		fuzz_fail("validated config with a relative prefix");
	if (c->max_body < 64 || c->workers < 1 || c->access_ttl < 1 ||
	    c->refresh_ttl < 1 || c->jwt_leeway < 0 ||
	    c->refresh_reuse_grace < 0 || c->password_opslimit < 1 ||
	    c->backend_timeout_ms < 50 || c->max_sessions_per_user < 1)
		fuzz_fail("validated config with a number out of bounds");
	if ((int)c->verify_preset < 0 ||
	    c->verify_preset >= VERIFY_PRESET__MAX)
		fuzz_fail("validated config with a bad verify preset");
	if (c->database_url == NULL || c->redis_password == NULL)
		fuzz_fail("validate left a secret NULL");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	 c;
	const uint8_t	*nul;
	char		*env[ENV_MAX + 1], *err = NULL;
	size_t		 textlen, nenv = 0, i;
	int		 rc;

	nul = memchr(data, '\0', size);
	textlen = nul != NULL ? (size_t)(nul - data) : size;
	/* reads files: not here (see above); env entries are NUL-separated */
	if (names_file((const char *)data, textlen, 1) ||
	    (nul != NULL && names_file((const char *)nul + 1,
	    size - textlen - 1, 0)))
		return -1;
	if (nul != NULL) {
		const uint8_t	*p = nul + 1, *end = data + size, *q;

		while (p < end && nenv < ENV_MAX) {
			q = memchr(p, '\0', (size_t)(end - p));
			if (q == NULL)
				q = end;
			env[nenv++] = fuzz_strndup(p, (size_t)(q - p));
			p = q + 1;
			/* a newline in a value could fake a line of the
			 * config_print output that check_print reads */
			if (strpbrk(env[nenv - 1], "\r\n") != NULL) {
				for (i = 0; i < nenv; i++)
					free(env[i]);
				return -1;
			}
		}
	}
	env[nenv] = NULL;

	config_defaults(&c);
	rc = config_parse(&c, (const char *)data, textlen, &err);
	if (rc == 0 && err != NULL)
		fuzz_fail("config_parse succeeded with an error string");
	if (rc == -1 && err == NULL)
		fuzz_fail("config_parse failed without an error string");
	free(err);
	err = NULL;
	if (rc == 0) {
		rc = config_env(&c, env, &err);
		if ((rc == -1) != (err != NULL))
			fuzz_fail("config_env: rc %d, error %p", rc,
			    (void *)err);
		free(err);
		err = NULL;
	}
	if (rc == 0) {
		rc = config_validate(&c, &err);
		if ((rc == -1) != (err != NULL))
			fuzz_fail("config_validate: rc %d, error %p", rc,
			    (void *)err);
		if (rc == 0)
			check_valid(&c);
		free(err);
		err = NULL;
	}
	check_print(&c);
	config_free(&c);
	for (i = 0; i < nenv; i++)
		free(env[i]);
	return 0;
}
