/*
 * config.c and reload.c: the configuration, its key table and its
 * generations; included at the end of extern.h, after every type it uses.
 */
#ifndef FA_CONF_H
#define FA_CONF_H

/* config.c: key = value file, FCGI_AUTH_<KEY> overrides, *_file secrets. */
enum verify_preset {
	VERIFY_PRESET_DEFAULT,	/* X-Auth-User-Id, X-Auth-Email, ... */
	VERIFY_PRESET_AUTHELIA,	/* Remote-User, Remote-Email, ... */
	VERIFY_PRESET_OAUTH2_PROXY,	/* X-Auth-Request-User, ... */
	VERIFY_PRESET__MAX
};

struct config {
	/* server */
	char		*listen;	/* unix path or host:port; "" = fd 0 */
	long		 listen_mode;	/* unix socket permission bits */
	long		 workers;	/* FastCGI threads */
	long		 backlog;
	long		 read_timeout;	/* s a FastCGI read may stall; 0 = off */
	long		 request_timeout;	/* s to deliver a whole request */
	char		*prefix;	/* route prefix, "/auth" */
	long		 max_body;	/* bytes */
	char		*trusted_proxies;	/* comma list of peer IPs */
	char		*real_ip_header;	/* e.g. "X-Real-IP" */
	char		*log_level;
	char		*log_format;	/* text | json */
	char		*log_file;	/* "" = stderr */
	char		*sql_dir;
	/* PostgreSQL */
	char		*database_url;	/* libpq conninfo or URI (secret) */
	long		 db_pool;
	/* Redis */
	char		*redis_host;
	long		 redis_port;
	char		*redis_password;	/* secret */
	long		 redis_db;
	long		 redis_pool;
	char		*redis_sentinels;	/* "host:port,..."; "" = none */
	char		*redis_master_name;	/* with redis_sentinels */
	long		 redis_revoke_replicas;	/* WAIT for so many; 0 = off */
	long		 backend_timeout_ms;	/* connect and command */
	/* tokens */
	char		*jwt_alg;	/* HS256 | RS256 | ES256 */
	char		*jwt_secret;	/* secret, >= 32 bytes, see below */
	size_t		 jwt_secret_len;
	int		 secret_optional;	/* CONFIG_SECRET_OPTIONAL */
	char		*jwt_secret_previous;	/* still verifies; "" = none */
	size_t		 jwt_secret_previous_len;
	char		*data_secret;	/* keys data at rest; "" = jwt_secret */
	size_t		 data_secret_len;
	char		*jwt_issuer;
	char		*jwt_audience;
	long		 jwt_leeway;	/* seconds */
	char		*jwt_private_key_file;	/* RS256/ES256 signing key (PEM) */
	char		*jwt_kid;	/* kid of the signing key */
	char		*jwt_public_keys;	/* "kid=path.pem,kid=path.pem" */
	long		 jwks_max_age;	/* Cache-Control of the JWKS */
	long		 access_ttl;	/* seconds */
	long		 refresh_ttl;	/* seconds */
	long		 refresh_reuse_grace;	/* seconds, 0 = off */
	/* passwords */
	long		 password_opslimit;
	long		 password_memlimit;	/* bytes */
	long		 hash_threads;	/* 0 = number of cores */
	/* sessions and limits */
	long		 max_sessions_per_user;
	int		 ratelimit;	/* bool */
	long		 ratelimit_window;	/* seconds */
	long		 login_fail_per_email;	/* per account and network */
	long		 login_fail_per_account;	/* all networks */
	long		 login_fail_per_ip;
	long		 register_per_ip;
	/* verify */
	char		*verify_headers;	/* preset name */
	enum verify_preset verify_preset;
	/* events */
	char		*events_prefix;
	char		*events_enabled;	/* "all" or comma list */
	char		*events_stream;		/* "" = no XADD */
	long		 events_stream_maxlen;
	long		 outbox_retention;	/* seconds */
	/* service-to-service RPC (NestJS Redis transport) */
	int		 rpc_enabled;	/* bool */
	char		*rpc_validate_pattern;	/* request channel */
	/* second factor */
	char		*mfa_issuer;	/* "" = jwt_issuer */
	long		 mfa_token_ttl;	/* seconds an mfaToken lives */
	/* mail and the account lifecycle */
	char		*smtp_url;	/* "" = no mail */
	char		*smtp_user;
	char		*smtp_password;	/* secret */
	char		*mail_from;
	char		*public_url;
	char		*reset_url;	/* "" = <public_url>/reset-password... */
	char		*verify_url;	/* "" = <public_url>/verify-email... */
	char		*mail_template_dir;
	char		*email_verification;	/* off | optional | required */
	int		 email_verify_mode;	/* enum email_verify */
	long		 reset_ttl;	/* seconds */
	long		 verify_ttl;
	long		 email_change_ttl;
	long		 mail_per_email;	/* per ratelimit_window */
	long		 mail_per_ip;
	long		 mail_retry_hours;
	long		 mail_retry_min_seconds;	/* first retry */
	long		 smtp_timeout_ms;
	long		 smtp_connect_timeout_ms;
	/* not keys: set when the configuration is put to use */
	struct token_set *tokens;	/* token.c: keys of this generation */
	struct mail_templates *mail;	/* mail.c: its templates, or NULL */
	int		 shares_restart;	/* restart-only strings borrowed */
};
enum email_verify {
	EMAIL_VERIFY_OFF,
	EMAIL_VERIFY_OPTIONAL,
	EMAIL_VERIFY_REQUIRED,
	EMAIL_VERIFY__MAX
};

/*
 * The running configuration.  Under serve it is one generation of
 * reload.c, swapped whole at a reload: read it, never keep a pointer into
 * it across a blocking call, except the restart-only strings, which live
 * as long as the process.
 */
extern struct config	*cfg;

/* Defaults and bounds live in the key table in config.c. */
#define CONFIG_DEFAULT_PATH	SYSCONFDIR "/fcgi-auth.conf"
#define CONFIG_SECRET_MIN	32
#define CONFIG_LINE_MAX		4096

void		 config_defaults(struct config *);
/* Parse key = value text from memory; errstr names the line and key. */
int		 config_parse(struct config *, const char *buf, size_t len,
		    char **errstr);
/* Apply FCGI_AUTH_<KEY> from environ, then resolve *_file keys. */
int		 config_env(struct config *, char *const *env, char **errstr);
/* Cross-key checks (secret length, algorithms, ranges): config_validate.c. */
int		 config_validate(struct config *, char **errstr);
/*
 * defaults + file (NULL: default path, absent is fine) + env + validate.
 * CONFIG_SECRET_OPTIONAL: for commands that sign nothing (migrate, user,
 * import-users, outbox), jwt_secret may be missing, short or in a file not
 * readable yet; serve and check-config require it.
 */
#define CONFIG_SECRET_OPTIONAL	0x01
void		 config_data_secret(const struct config *, const char **,
		    size_t *);
int		 config_load(struct config *, const char *path, int flags,
		    char **errstr);
void		 config_print(const struct config *, FILE *);	/* secrets masked */
void		 config_free(struct config *);
/*
 * For a reload: every restart-only key of next that differs from run is
 * named to note (once per key), and next takes run's value (strings
 * borrowed from run, which must outlive next).  Live keys keep next's.
 */
int		 config_keep_restart(struct config *next,
		    const struct config *run, void (*note)(const char *key));

/*
 * reload.c: configuration generations.  cfg points at the current one;
 * a reload builds the next (file, environment, keys) beside it, keeps the
 * restart-only keys, publishes it and frees the old one once no worker
 * holds it (see reload.c).  Main thread: reload_start, reload_run,
 * reload_reap, reload_stop; workers: reload_hold/reload_release.
 */
#define RELOAD_GRACE_MS		2000	/* a retired generation lives at least
					   this long after no worker holds it */
void		 reload_start(struct config *boot, long nworkers);
/* 0 applied, -1 the running configuration kept (the reason logged). */
int		 reload_run(const char *config_path);
void		 reload_reap(void);	/* free the unused retired ones */
void		 reload_stop(void);	/* workers stopped: cfg = boot again */
void		 reload_hold(long worker);	/* a request starts */
void		 reload_release(long worker);	/* ... and ends */
/* reload_hold's slots of the threads that hold a generation per batch */
#define RELOAD_SLOT_MAILER	(-1)
#define RELOAD_SLOT_RPC		(-2)
#define RELOAD_THREAD_SLOTS	2
unsigned long	 reload_generation(void);	/* changes at each reload */
/* check-config and reload: load path and its keys; -1 and *errstr owned. */
int		 reload_load(const char *path, struct config **out,
		    char **errstr);
void		 reload_free(struct config *);

#endif /* FA_CONF_H */
