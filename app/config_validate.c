/*
 * The configuration's cross-key checks, run once every key is set
 * (config_load, and the reload through it): secrets, algorithms, the
 * prefix, the closed sets of names, Sentinel, RPC and mail settings.  It
 * writes only the fields derived from the text (verify_preset,
 * email_verify_mode) and the empty defaults of unset secrets.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"

static const char *const verify_presets[VERIFY_PRESET__MAX] = {
	"default", "authelia", "oauth2-proxy"
};

static const char *const email_verify_modes[EMAIL_VERIFY__MAX] = {
	"off", "optional", "required"
};

/* Mail settings: a known mode, and no byte that could break a header. */
static int
config_validate_mail(struct config *c, char **errstr)
{
	const char	*p;
	int		 i;

	for (i = 0; i < EMAIL_VERIFY__MAX; i++)
		if (strcmp(c->email_verification, email_verify_modes[i]) == 0)
			break;
	if (i == EMAIL_VERIFY__MAX) {
		xasprintf(errstr, "email_verification: expected off, optional "
		    "or required");
		return -1;
	}
	c->email_verify_mode = i;
	for (p = c->mail_from; *p != '\0'; p++)
		if (*p < 0x21 || *p > 0x7e || *p == '<' || *p == '>')
			break;
	if (*p != '\0' || strchr(c->mail_from, '@') == NULL) {
		xasprintf(errstr, "mail_from: expected an address, "
		    "local@domain");
		return -1;
	}
	if (c->smtp_url[0] != '\0' && strncmp(c->smtp_url, "smtp://", 7) != 0 &&
	    strncmp(c->smtp_url, "smtps://", 8) != 0) {
		xasprintf(errstr, "smtp_url: expected smtp://host:port or "
		    "smtps://host:port");
		return -1;
	}
	return 0;
}

/* A Redis channel name we subscribe to literally: visible ASCII. */
static int
config_rpc_pattern(const char *p)
{
	size_t	 i, n = strlen(p);

	if (n == 0 || n > RPC_PATTERN_MAX)
		return -1;
	for (i = 0; i < n; i++)
		if (p[i] <= ' ' || p[i] > '~')
			return -1;
	return 0;
}

int
config_validate(struct config *c, char **errstr)
{
	enum log_level	 l;
	enum log_format	 f;
	int		 i;

	if (c->secret_optional)
		goto nosecret;
	if (c->jwt_secret == NULL || c->jwt_secret_len == 0) {
		xasprintf(errstr, "jwt_secret: missing (set jwt_secret, "
		    "jwt_secret_file or FCGI_AUTH_JWT_SECRET; there is no "
		    "default)");
		return -1;
	}
	if (c->jwt_secret_len < CONFIG_SECRET_MIN) {
		xasprintf(errstr, "jwt_secret: shorter than %d bytes",
		    CONFIG_SECRET_MIN);
		return -1;
	}
	if (c->jwt_secret_previous_len > 0 &&
	    c->jwt_secret_previous_len < CONFIG_SECRET_MIN) {
		xasprintf(errstr, "jwt_secret_previous: shorter than %d bytes",
		    CONFIG_SECRET_MIN);
		return -1;
	}
	if (c->data_secret_len > 0 && c->data_secret_len < CONFIG_SECRET_MIN) {
		xasprintf(errstr, "data_secret: shorter than %d bytes",
		    CONFIG_SECRET_MIN);
		return -1;
	}
nosecret:
	if (strcmp(c->jwt_alg, "HS256") != 0 &&
	    strcmp(c->jwt_alg, "RS256") != 0 &&
	    strcmp(c->jwt_alg, "ES256") != 0) {
		xasprintf(errstr, "jwt_alg: expected HS256, RS256 or ES256");
		return -1;
	}
	if (strcmp(c->jwt_alg, "HS256") != 0 &&
	    (c->jwt_private_key_file[0] == '\0' || c->jwt_kid[0] == '\0')) {
		xasprintf(errstr, "jwt_private_key_file: %s needs a private "
		    "key file and jwt_kid", c->jwt_alg);
		return -1;
	}
	if (c->prefix[0] != '/' || strchr(c->prefix, '?') != NULL) {
		xasprintf(errstr, "prefix: must start with '/'");
		return -1;
	}
	if (log_level_parse(c->log_level, &l) == -1) {
		xasprintf(errstr, "log_level: expected error, warn, info or "
		    "debug");
		return -1;
	}
	if (log_format_parse(c->log_format, &f) == -1) {
		xasprintf(errstr, "log_format: expected text or json");
		return -1;
	}
	for (i = 0; i < VERIFY_PRESET__MAX; i++)
		if (strcmp(c->verify_headers, verify_presets[i]) == 0)
			break;
	if (i == VERIFY_PRESET__MAX) {
		xasprintf(errstr, "verify_headers: expected default, "
		    "authelia or oauth2-proxy");
		return -1;
	}
	c->verify_preset = (enum verify_preset)i;
	if (sentinel_check(c->redis_sentinels, c->redis_master_name,
	    errstr) == -1)
		return -1;
	if (config_rpc_pattern(c->rpc_validate_pattern) == -1) {
		xasprintf(errstr, "rpc_validate_pattern: 1 to %d visible "
		    "ASCII characters", RPC_PATTERN_MAX);
		return -1;
	}
	if (config_validate_mail(c, errstr) == -1)
		return -1;
	if (c->database_url == NULL)
		c->database_url = xstrdup("");
	if (c->redis_password == NULL)
		c->redis_password = xstrdup("");
	if (c->jwt_secret_previous == NULL)
		c->jwt_secret_previous = xstrdup("");
	if (c->data_secret == NULL)
		c->data_secret = xstrdup("");
	return 0;
}
