/*
 * fcgi-auth: the private header.  It reads as a table of contents: one
 * section per source file, in layer order (support, backends, services,
 * HTTP), with every limit and default as a named constant.
 */
#ifndef FA_EXTERN_H
#define FA_EXTERN_H

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

#include <jansson.h>

struct claims;
struct request;
struct token_set;
struct user;
struct revocation;

/* A limit's value as a string literal, for the messages that name it. */
#define FA_STR_(x)		#x
#define FA_STR(x)		FA_STR_(x)

/* Limits of the contract (API.md) and of the implementation. */
#define FA_EMAIL_MAX		254	/* bytes, canonical form (email.c) */
#define FA_PASSWORD_MIN		8	/* bytes */
#define FA_PASSWORD_MAX		1024	/* bytes */
#define FA_NAME_MAX		100	/* characters (UTF-8 code points) */
#define FA_NAME_BYTES		(FA_NAME_MAX * 4)	/* cleaned (text.c) */
#define FA_ROLE_TAIL		31	/* [a-z][a-z0-9_-]{0,31} */
#define FA_ROLE_MAX		(FA_ROLE_TAIL + 1)
#define FA_ROLE_PATTERN		"[a-z][a-z0-9_-]{0," FA_STR(FA_ROLE_TAIL) "}"
#define FA_ROLES_MAX		16	/* roles a user may hold */
#define FA_ROLES_LEN		(FA_ROLES_MAX * (FA_ROLE_MAX + 1))	/* "a,b,c" */
#define FA_UUID_LEN		36	/* text form, without NUL */
#define FA_JTI_BYTES		16	/* 128 random bits */
#define FA_JTI_LEN		22	/* base64url of FA_JTI_BYTES */
#define FA_REFRESH_RANDOM	32	/* 256 random bits in every refresh token */
#define FA_REFRESH_BYTES	(16 + 16 + FA_REFRESH_RANDOM)	/* uid|sid|random */
#define FA_REFRESH_LEN		86	/* base64url of FA_REFRESH_BYTES */
#define FA_HASH_HEX		64	/* hex of a 32-byte keyed hash */
#define FA_TOKEN_MAX		8192	/* longest bearer token we look at */
#define FA_UA_MAX		512	/* user agent kept per session */
#define FA_IP_MAX		46	/* INET6_ADDRSTRLEN */
#define FA_REQID_MAX		64	/* longest one we take ([A-Za-z0-9-]) */
#define FA_HEADERS_MAX		16	/* response headers per answer */
#define FA_AUDIT_LIMIT_MAX	500
#define FA_AUDIT_LIMIT_DEF	50
#define FA_AUDIT_EVENT_MAX	63	/* longest event name in a filter */

/* xmalloc.c: allocators that never return NULL (they abort). */
void		*xmalloc(size_t);
void		*xcalloc(size_t, size_t);
void		*xrealloc(void *, size_t);
char		*xstrdup(const char *);
char		*xstrndup(const char *, size_t);
int		 xasprintf(char **, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/* log.c: leveled lines on stderr (or log_file); never a secret, client
 * bytes escaped. */
enum log_level {
	LOGL_ERROR,
	LOGL_WARN,
	LOGL_INFO,
	LOGL_DEBUG,
	LOGL__MAX
};
#define LOG_FILE_MODE		0640
enum log_format {
	LOGF_TEXT,
	LOGF_JSON,
	LOGF__MAX
};
#define LOG_LINE_MAX		2048	/* a line is cut to this */
#define LOG_FIELD_MAX		512	/* a client field (path, agent) */
void		 log_set_level(enum log_level);
/* Text or JSON lines; under systemd (JOURNAL_STREAM) text lines carry no
 * time of their own.  Set at start and reload. */
void		 log_set_format(enum log_format);
int		 log_format_parse(const char *, enum log_format *);
/* Send the log (stderr) to path, appending; "" = the stderr we began with.
 * Called again, it reopens (SIGHUP, after a rotation).  Main thread only. */
int		 log_open(const char *path, char **errstr);
int		 log_level_parse(const char *, enum log_level *);
const char	*log_level_name(enum log_level);
void		 log_msg(enum log_level, const char *reqid, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
#define log_error(id, ...)	log_msg(LOGL_ERROR, (id), __VA_ARGS__)
#define log_warn(id, ...)	log_msg(LOGL_WARN, (id), __VA_ARGS__)
#define log_info(id, ...)	log_msg(LOGL_INFO, (id), __VA_ARGS__)
#define log_debug(id, ...)	log_msg(LOGL_DEBUG, (id), __VA_ARGS__)
/* One access line: what log_request writes. */
struct log_access {
	const char	*reqid;
	const char	*method;
	const char	*route;		/* the matched pattern, or NULL */
	int		 status;
	long		 usec;
	const char	*ip;
	const char	*user_id;	/* "" or NULL when not known */
	size_t		 bytes;		/* of the response body */
	const char	*user_agent;	/* the client's, NULL when absent */
};
void		 log_request(const struct log_access *);
#define LOG_BATCH_MAX		(4 * LOG_LINE_MAX)	/* a thread's access
							   lines, unwritten */
#define LOG_FLUSH_MS		20	/* ... written at least this often */
/* The thread that writes buffered access lines; stop writes the rest. */
int		 log_flush_start(void);
void		 log_flush_stop(void);
void		 log_flush(void);
/* Format an access line (no newline) into buf; its length.  Pure. */
size_t		 log_access_format(char *buf, size_t sz, enum log_format,
		    int stamp, long long now_ms, const struct log_access *);
/* Copy at most outsz-1 bytes of in, replacing control and non-ASCII bytes. */
void		 log_escape(char *out, size_t outsz, const char *in);
/*
 * The JSON string body of in (no quotes): quotes, backslashes and control
 * characters escaped, invalid UTF-8 bytes as U+FFFD, cut at a character to
 * fit outsz-1 bytes.  Returns the length written.
 */
size_t		 log_json_escape(char *out, size_t outsz, const char *in);
/* A request id we accept from the web server: [A-Za-z0-9-]{1,64}. */
int		 log_reqid_ok(const char *);

/* b64url.c: RFC 4648 section 5, no padding. */
#define B64URL_LEN(n)	(((n) * 4 + 2) / 3)
/* Writes B64URL_LEN(len) chars and a NUL into out (outsz must fit both). */
int		 b64url_encode(char *out, size_t outsz,
		    const unsigned char *in, size_t len);
/* Strict: rejects padding, whitespace and non-canonical trailing bits. */
int		 b64url_decode(unsigned char *out, size_t outsz, size_t *outlen,
		    const char *in, size_t len);

/* uuid.c */
void		 uuid_format(char out[FA_UUID_LEN + 1], const unsigned char in[16]);
int		 uuid_parse(unsigned char out[16], const char *in, size_t len);
void		 uuid_random(unsigned char out[16]);	/* v4, libsodium */

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
 * connpool.c: the slots of a connection pool (its comment has the API);
 * the owner keeps the connections, indexed like the slots.
 */
struct connpool {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	unsigned char	*busy;		/* under mu */
	unsigned char	*live;		/* holds a connection; under mu */
	size_t		 n;
};
int		 connpool_init(struct connpool *, size_t n);
void		 connpool_destroy(struct connpool *);
int		 connpool_get(struct connpool *, long long deadline,
		    size_t *slot, int *live);
void		 connpool_put(struct connpool *, size_t slot, int live);

/*
 * The records the backend and the services share: the user (user.c), the
 * audit row (audit.c) and the event kinds (event.c).
 */
struct user {
	char		 id[FA_UUID_LEN + 1];
	char		 email[FA_EMAIL_MAX + 1];
	char		*password_hash;		/* owned */
	char		*first_name;		/* owned, may be NULL */
	char		*last_name;		/* owned, may be NULL */
	char		 roles[FA_ROLES_LEN];	/* "user,admin" */
	char		 created_at[40];	/* RFC 3339 UTC */
	int		 disabled;
	int		 email_verified;
	int		 mfa_enabled;
};
void		 user_free(struct user *);	/* frees members, not the struct */
void		 user_list_free(struct user *, size_t n);	/* and the array */
json_t		*user_json(const struct user *);	/* API.md user object */

/* One audit row; strings may be NULL.  detail is borrowed. */
enum audit_event {
	AUDIT_REGISTER,
	AUDIT_LOGIN_SUCCESS,
	AUDIT_LOGIN_FAILURE,
	AUDIT_REFRESH,
	AUDIT_REFRESH_REUSE,
	AUDIT_LOGOUT,
	AUDIT_LOGOUT_ALL,
	AUDIT_PASSWORD_CHANGE,
	AUDIT_SESSION_REVOKE,
	AUDIT_ROLE_CHANGE,
	AUDIT_USER_IMPORT,
	AUDIT_USER_DELETE,
	AUDIT_MFA_ENABLE,
	AUDIT_MFA_DISABLE,
	AUDIT_MFA_FAILURE,
	AUDIT_RESET_REQUESTED,
	AUDIT_PASSWORD_RESET,
	AUDIT_VERIFY_REQUESTED,
	AUDIT_EMAIL_VERIFIED,
	AUDIT_EMAIL_CHANGE_REQUESTED,
	AUDIT_EMAIL_CHANGED,
	AUDIT_MAIL_DROPPED,
	AUDIT__MAX
};
const char	*audit_event_name(enum audit_event);	/* "login.success" */

/* Events of API.md; the outbox row is written with the change. */
enum event_kind {
	EVENT_NONE = -1,
	EVENT_USER_REGISTERED,
	EVENT_USER_LOGGED_IN,
	EVENT_USER_LOGGED_OUT,
	EVENT_USER_PASSWORD_CHANGED,
	EVENT_SESSION_REVOKED,
	EVENT_TOKEN_REUSE_DETECTED,
	EVENT_USER_DELETED,
	EVENT_USER_MFA_ENABLED,
	EVENT_USER_MFA_DISABLED,
	EVENT_PASSWORD_RESET_REQUESTED,
	EVENT_PASSWORD_RESET,
	EVENT_EMAIL_VERIFIED,
	EVENT_EMAIL_CHANGED,
	EVENT__MAX
};
const char	*event_kind_name(enum event_kind);	/* "user.registered" */

struct audit {
	enum audit_event event;
	const char	*user_id;
	const char	*email;
	const char	*session_id;
	const char	*ip;
	const char	*user_agent;
	int		 success;
	json_t		*detail;	/* borrowed, may be NULL */
	/* the event written to the outbox in the same transaction */
	enum event_kind	 outbox_event;	/* EVENT_NONE for no event */
	json_t		*outbox_data;	/* borrowed; eventId is added */
};
/*
 * audit.c: a filled from the request r (ip, user agent; r may be NULL)
 * with event ev of user uid and session sid (both may be NULL), success
 * set, no detail and no outbox event.  Pure.
 */
void		 audit_init(struct audit *a, const struct request *r,
		    enum audit_event ev, const char *uid, const char *sid);
/* One stored audit row, as GET /admin/audit lists it; strings owned, NULL
 * for SQL NULL; detail is the JSON text.  audit_entry_json: the API.md
 * entry object. */
struct audit_entry {
	long long	 id;
	char		 occurred_at[40];	/* RFC 3339 UTC */
	char		*event;
	char		*user_id;
	char		*email;
	char		*session_id;
	char		*ip;
	char		*user_agent;
	int		 success;
	char		*detail;
};
json_t		*audit_entry_json(const struct audit_entry *);
void		 audit_entries_free(struct audit_entry *, size_t n);


/*
 * sentinel.c: the Redis master by Redis Sentinel.  sentinel_master asks
 * the sentinels of redis_sentinels in turn for redis_master_name and
 * checks with ROLE that the server named is a master; 0 and host/port, or
 * -1 (no sentinel answered with a master), all within the deadline given.
 * Thread-safe.  sentinel_next parses one "host:port" (or "[v6]:port") off
 * a comma list: 1 one parsed, 0 end, -1 malformed; no I/O.
 * sentinel_check validates both keys (0 ok; -1 and *errstr owned).
 */
#define SENTINEL_MAX		16	/* sentinels in redis_sentinels */
#define SENTINEL_HOST_MAX	256	/* host name, with its NUL */
#define SENTINEL_NAME_MAX	64	/* redis_master_name */
int		 sentinel_master(const struct config *, long long deadline,
		    char *host, size_t hostsz, int *port);
/*
 * The failover watcher (serve only): a thread subscribed to one sentinel's
 * +switch-master and +promoted-slave that calls fn (store_failover) for
 * redis_master_name.  sentinel_event_names: 1 if a message of that channel
 * is about the master called name; no I/O.
 */
typedef void	(*sentinel_failover_fn)(const char *why);
int		 sentinel_watch_start(const struct config *,
		    sentinel_failover_fn);
void		 sentinel_watch_stop(void);
int		 sentinel_event_names(const char *chan, const char *msg,
		    size_t len, const char *name);
#define SENTINEL_SWITCH_CHANNEL		"+switch-master"
#define SENTINEL_PROMOTED_CHANNEL	"+promoted-slave"
#define SENTINEL_WATCH_PING_MS	1000	/* PING the sentinel this often */
#define SENTINEL_WATCH_TICK_MS	100	/* poll step, to see stop */
#define SENTINEL_WATCH_RETRY_MS	500	/* between two failed subscribes */
int		 sentinel_next(const char **list, char *host, size_t hostsz,
		    int *port);
int		 sentinel_check(const char *list, const char *master_name,
		    char **errstr);

/* refresh.c: refresh token format. */
struct refresh {
	unsigned char	 raw[FA_REFRESH_BYTES];
	char		 text[FA_REFRESH_LEN + 1];
	char		 uid[FA_UUID_LEN + 1];
	char		 sid[FA_UUID_LEN + 1];
	char		 hash[FA_HASH_HEX + 1];
};
void		 refresh_new(struct refresh *, const char *uid,
		    const char *sid);
void		 refresh_finish(struct refresh *);
int		 refresh_parse(struct refresh *, const char *text, size_t len);
int		 refresh_hash_previous(const struct refresh *,
		    char out[FA_HASH_HEX + 1]);
int		 refresh_seal(const struct refresh *, char **out);
int		 refresh_open(struct refresh *, const char *sealed);

/*
 * ratelimit.c: 0 allowed, 1 limited (*retry), -1 Redis down.  A password
 * guess (login, password change, later account deletion and second-factor
 * codes) is reserved in every scope before the secret is checked, then
 * settled: a wrong guess stays counted; a right one is given back.
 */
#define RATELIMIT_NET_MAX	(FA_IP_MAX + 4)	/* an address, or a /64 */
#define RATELIMIT_KEY_MAX	96	/* "{lf}:en:" hash ":" network */
enum ratelimit_scope {
	RATELIMIT_ACCOUNT_NET,	/* login_fail_per_email */
	RATELIMIT_ACCOUNT,	/* login_fail_per_account */
	RATELIMIT_NET,		/* login_fail_per_ip */
	RATELIMIT__MAX
};
struct ratelimit_guess {
	char		 key[RATELIMIT__MAX][RATELIMIT_KEY_MAX];
	int		 held;	/* reserved, not yet given back */
};
enum guess_outcome {
	GUESS_WRONG,		/* stays counted */
	GUESS_RIGHT,		/* given back; account-network counter cleared */
	GUESS_UNCHECKED,	/* not checked (backend failure): given back */
};
/* The client network of ip: IPv4 as is, IPv6 as its /64, mapped as IPv4. */
void		 ratelimit_net(char out[RATELIMIT_NET_MAX], const char *ip);
int		 ratelimit_guess(struct ratelimit_guess *, const char *email,
		    const char *ip, long *retry);
int		 ratelimit_guess_settle(struct ratelimit_guess *,
		    enum guess_outcome);
int		 ratelimit_register(const char *ip, long *retry);
/* A mail to email from ip: mail_per_email and mail_per_ip, reserved
 * together (neither counts when one is full), known or unknown. */
int		 ratelimit_mail(const char *email, const char *ip, long *retry);

/* tcache.c: verified access tokens, so verify skips the signature. */
#define TCACHE_SLOTS		4096	/* power of two */
#define TCACHE_SHARDS		64
#define TCACHE_HASH		32
int		 tcache_init(void);
void		 tcache_shutdown(void);
/* token_verify() with a cache in front: 0 valid, -1 invalid */
int		 tcache_verify(const char *tok, size_t len, struct claims *);
/* Milliseconds since the epoch for the exp check; NULL: now_ms (tests). */
void		 tcache_set_clock(long long (*)(void));

/* password.c: Argon2id on a bounded pool; bcrypt imports verify. */
#define PASSWORD_THREADS_MAX	64	/* hash_threads upper bound */
#define PASSWORD_DUMMY_BYTES	32	/* random password of the dummy hash */
#define PASSWORD_NICE		10	/* hash threads yield to the fast routes */
int		 password_init(const struct config *);
void		 password_shutdown(void);
/* out must hold 128 bytes (crypto_pwhash_STRBYTES). */
int		 password_hash(const char *pw, size_t len, char *out);
/*
 * 0 match, 1 mismatch, -1 error.  stored NULL verifies against a dummy hash
 * (same cost) and reports a mismatch.  *rehash is set when the stored hash
 * is bcrypt or of an older cost.
 */
int		 password_verify(const char *stored, const char *pw, size_t len,
		    int *rehash);

/*
 * validate.c: pure checks of client input, and the one path that checks
 * a JSON body or a query string against a route's declared fields.
 */
#define VALIDATE_WHY_REQUIRED	"is required"
#define VALIDATE_WHY_STRING	"must be a string"
/* a password to check (login, account deletion) */
#define VALIDATE_WHY_SECRET	"is required and must be a string of at " \
				"most " FA_STR(FA_PASSWORD_MAX) " bytes"
enum field_kind {
	FIELD_STRING,		/* any string */
	FIELD_SECRET,		/* a password to check: at most
				   FA_PASSWORD_MAX bytes, nothing else */
	FIELD_PASSWORD,		/* a new password: validate_password */
	FIELD_EMAIL,		/* email_canon: v->email */
	FIELD_NAME,		/* validate_name; null or "" is absent */
	FIELD__MAX
};
#define FIELD_REQUIRED		0x01
struct field_spec {
	const char	*name;
	enum field_kind	 kind;
	int		 flags;
	const char	*why_missing;	/* NULL: VALIDATE_WHY_REQUIRED */
	const char	*why_type;	/* not a string, too long; NULL:
					   VALIDATE_WHY_STRING */
};
struct field_value {
	const char	*s;	/* NULL: absent; borrowed from the body */
	size_t		 len;
	char		 email[FA_EMAIL_MAX + 1];	/* FIELD_EMAIL */
};
#define VALIDATE_FIRST		0x01	/* stop at the first field refused */
/*
 * Check body against spec[0..n) into v[0..n): first the presence and type
 * of every field, then the values (policy, canonical email, ...).  Each
 * refused field is named in fields with its reason.  0, or -1.
 */
int		 validate_fields(const json_t *body, const struct field_spec *,
		    size_t n, int flags, struct field_value *v,
		    json_t *fields);
enum param_kind {
	PARAM_UUID,
	PARAM_NAME,		/* [a-z0-9._]+ */
	PARAM_NUMBER,		/* decimal digits, from min to max */
	PARAM__MAX
};
#define PARAM_VALUE_MAX		64	/* longest value looked at */
#define PARAM_NUMBER_MAX	23	/* digits of a number looked at */
struct param_spec {
	const char	*name;
	enum param_kind	 kind;
	size_t		 maxlen;	/* longer is malformed; at most
					   PARAM_VALUE_MAX */
	long long	 min, max;	/* PARAM_NUMBER */
	const char	*why;		/* malformed, repeated or too long */
};
struct param_value {
	int		 present;
	char		 s[PARAM_VALUE_MAX + 1];
	long long	 n;		/* PARAM_NUMBER */
};
/* The same for query parameters; each may appear once. */
int		 validate_params(const struct request *,
		    const struct param_spec *, size_t n,
		    struct param_value *v, json_t *fields);
int		 validate_password(const char *in, size_t len, const char **why);
int		 validate_name(const char *in, size_t len, const char **why);
int		 validate_role(const char *in, size_t len);
int		 validate_utf8(const char *in, size_t len);
/* Parse one JSON object; -1 for anything else (dup keys, NUL, bad UTF-8). */
json_t		*json_parse_object(const char *buf, size_t len);

/*
 * email.c: the canonical email of API.md (see email.c).  0 and the
 * canonical form in out, or -1 with *why a short reason for the client.
 * Pure: no I/O.
 */
#define EMAIL_IN_MAX		1024	/* bytes looked at, after the trim */
#define EMAIL_LOCAL_MAX		64	/* RFC 5321 local part */
#define EMAIL_LABEL_MAX		63	/* a DNS label */
int		 email_canon(const char *in, size_t len,
		    char out[FA_EMAIL_MAX + 1], const char **why);

/*
 * text.c: client text that is stored or shown again (user agents, names),
 * cleaned: invalid UTF-8, C0, DEL, C1, U+2028/9 become U+FFFD; at most
 * outsz-1 bytes (cut at a character) and a NUL.  Returns the length.
 * text_clean_dup: the same into an owned copy of at most max bytes; NULL
 * for NULL.
 */
size_t		 text_clean(char *out, size_t outsz, const char *in,
		    size_t len);
char		*text_clean_dup(const char *in, size_t max);

/*
 * csv.c: RFC 4180 records from memory.  csv_next parses the record at
 * buf[*off], advancing *off and *line (lines consumed, quoted line breaks
 * included): 1 a record in *r (caller frees with csv_record_free), 0 the
 * end, -1 malformed (*why says how, r->line where the record starts).
 */
#define CSV_FIELD_MAX		8192	/* bytes of one field */
#define CSV_FIELDS_MAX		64	/* fields of one record */
#define CSV_RECORD_MAX		65536	/* bytes of one record */
struct csv_record {
	char		**field;	/* owned, NUL-terminated */
	size_t		 nfield;
	size_t		 line;		/* 1-based line the record starts on */
};
int		 csv_next(const char *buf, size_t len, size_t *off,
		    size_t *line, struct csv_record *r, const char **why);
void		 csv_record_free(struct csv_record *);

/*
 * hashfmt.c: could a stored hash ever verify?  bcrypt $2a$/$2b$/$2y$ (cost,
 * 53 characters, canonical) or an Argon2id PHC string within the bounds
 * below; HASHFMT_BAD (and *why) for anything else.
 */
enum hashfmt {
	HASHFMT_BAD = -1,
	HASHFMT_BCRYPT,
	HASHFMT_ARGON2ID
};
#define HASHFMT_BCRYPT_LEN	60
#define HASHFMT_BCRYPT_COST_MIN	4
#define HASHFMT_BCRYPT_COST_MAX	31
#define HASHFMT_ARGON2ID_PREFIX	"$argon2id$"
/* costs beyond these would stall the hash pool at the first login */
#define HASHFMT_ARGON2_M_MAX	(1024 * 1024)	/* KiB: 1 GiB */
#define HASHFMT_ARGON2_T_MAX	16	/* passes */
#define HASHFMT_ARGON2_P_MAX	16	/* lanes (libsodium runs them all) */
#define HASHFMT_ARGON2_SALT_MIN	8	/* bytes, Argon2's minimum */
#define HASHFMT_ARGON2_SALT_MAX	64
#define HASHFMT_ARGON2_OUT_MIN	16	/* bytes, libsodium's minimum */
#define HASHFMT_ARGON2_OUT_MAX	64
int		 hashfmt_check(const char *h, size_t len, const char **why);

/* request.c / response.c: what handlers see of HTTP. */
enum method {
	METHOD_GET,
	METHOD_POST,
	METHOD_PUT,
	METHOD_DELETE,
	METHOD_PATCH,
	METHOD_HEAD,
	METHOD_OPTIONS,
	METHOD_OTHER,
	METHOD__MAX
};

enum err {
	ERR_INVALID_JSON,
	ERR_VALIDATION,
	ERR_INVALID_CREDENTIALS,
	ERR_INVALID_TOKEN,
	ERR_FORBIDDEN,
	ERR_NOT_FOUND,
	ERR_METHOD,
	ERR_EMAIL_TAKEN,
	ERR_EMAIL_NOT_VERIFIED,
	ERR_TOO_LARGE,
	ERR_MEDIA_TYPE,
	ERR_TOO_MANY,
	ERR_UNAVAILABLE,
	ERR_MFA_REQUIRED,
	ERR_INVALID_CODE,
	ERR_MFA_ENABLED,
	ERR_MFA_NOT_ENABLED,
	ERR_INTERNAL,
	ERR__MAX
};

struct header {
	const char	*name;		/* static */
	char		*value;		/* owned */
};

struct request {
	/* in */
	enum method	 method;
	const char	*method_name;
	char		*path;		/* below the prefix, e.g. "/login" */
	char		*query;		/* raw, may be "" */
	const char	*content_type;
	const char	*authorization;
	const char	*user_agent;
	char		 ip[FA_IP_MAX + 1];
	char		 id[FA_REQID_MAX + 1];
	char		 user_id[FA_UUID_LEN + 1];	/* when known: logs */
	char		*body;		/* NUL-terminated, owned */
	size_t		 bodylen;
	int		 body_too_large;
	int		 authorizer;	/* FastCGI Authorizer role */
	const char	*required_role;	/* AUTH_REQUIRED_ROLE param */
	const char	*required_aal;	/* AUTH_REQUIRED_AAL param */
	const char	*required_verified;	/* AUTH_REQUIRED_VERIFIED param */
	const char	*route;		/* matched pattern, for the log */
	size_t		 route_id;	/* its table row + 1, for metrics */
	char		*params[8];	/* path parameters, owned */
	size_t		 nparams;
	/* out */
	int		 status;
	struct header	 headers[FA_HEADERS_MAX];
	size_t		 nheaders;
	char		*out;		/* response body, owned */
	size_t		 outlen;
	/* private to server.c/request.c */
	void		*fcgx;
	long long	 start_us;
};

const char	*request_param(const struct request *);
/* URI -> the path below prefix and the query; -1: not below prefix. */
int		 request_split_uri(const char *uri, const char *prefix,
		    char **path, char **query);
#define REQUEST_QUERY_NAME_MAX	32	/* longest parameter name we match */
/* A query parameter: absent, present (decoded into out) or malformed
 * (undecodable, too long for out, or repeated); see request.c. */
enum query_state {
	QUERY_ABSENT,
	QUERY_PRESENT,
	QUERY_MALFORMED
};
enum query_state request_query_lookup(const struct request *,
		    const char *name, char *out, size_t outsz);
/* 0 and the token, or -1: no/malformed "Authorization: Bearer x" */
int		 request_bearer(const char *hdr, const char **tok, size_t *len);
/* Checks content type and parses the body as one object; on failure the
 * error answer is already set and NULL returned. */
json_t		*request_json(struct request *);
void		 request_free(struct request *);

/* Header values are visible ASCII (0x20-0x7e); resp_header writes a space
 * for any other byte, so check identity values first and refuse them. */
int		 resp_header_value_ok(const char *v);
void		 resp_header(struct request *, const char *name, const char *v);
void		 resp_json(struct request *, int status, json_t *);	/* steals */
void		 resp_empty(struct request *, int status);
void		 resp_error(struct request *, enum err, const char *message);
void		 resp_error_fields(struct request *, json_t *fields);	/* steals */
void		 resp_unavailable(struct request *);
void		 resp_too_many(struct request *, long retry);	/* 429 */
struct session_pair;
void		 resp_pair(struct request *, const struct session_pair *);
int		 err_status(enum err);
const char	*err_code(enum err);

/* otp.c: TOTP (RFC 6238, liboath), secrets sealed at rest, recovery
 * codes stored as keyed hashes, mfaTokens, the enrolment QR code. */
#define OTP_SECRET_BYTES	20	/* RFC 4226's recommended 160 bits */
#define OTP_SECRET_B32		32	/* base32 of OTP_SECRET_BYTES */
#define OTP_DIGITS		6
#define OTP_PERIOD		30	/* seconds per step */
#define OTP_WINDOW		1	/* steps accepted either side of now */
#define OTP_RECOVERY_CODES	10
#define OTP_RECOVERY_CHARS	12	/* base32: 60 bits per code */
#define OTP_RECOVERY_LEN	(OTP_RECOVERY_CHARS + 2)	/* xxxx-xxxx-xxxx */
#define OTP_RECOVERY_INPUT_MAX	32	/* longest recoveryCode looked at */
#define OTP_MFA_TOKEN_BYTES	32	/* 256 random bits */
#define OTP_MFA_TOKEN_LEN	43	/* base64url of OTP_MFA_TOKEN_BYTES */
#define OTP_MFA_WRONG_MAX	5	/* wrong codes that void an mfaToken */
#define OTP_QR_MARGIN		4	/* quiet zone, in modules */
#define OTP_QR_SCALE		8	/* SVG user units per module */
#define OTP_SVG_HEAD_MAX	512	/* bytes of the SVG around the rects */
#define OTP_SVG_RECT_MAX	64	/* bytes of one "<rect .../>" */
#define OTP_CTX_SEAL		"fcgi-auth totp-seal v1"
#define OTP_CTX_HASH		"fcgi-auth mfa-hash v1"
void		 otp_secret_new(unsigned char out[OTP_SECRET_BYTES]);
int		 otp_base32(char out[OTP_SECRET_B32 + 1],
		    const unsigned char secret[OTP_SECRET_BYTES]);
/* The otpauth:// URI for authenticator apps; *out owned. */
int		 otp_uri(char **out, const char *issuer, const char *email,
		    const char *b32);
/* secretbox under the TOTP key; *hex owned. */
int		 otp_seal(char **hex, const unsigned char *secret);
int		 otp_open(unsigned char out[OTP_SECRET_BYTES], const char *hex);
/*
 * Tri-state: 0 code matches a step within OTP_WINDOW of now (*step set),
 * 1 it does not (or is malformed), -1 could not check.
 */
int		 otp_check(const unsigned char *secret, const char *code,
		    size_t len, long long now_s, long long *step);
/* OTP_RECOVERY_CODES codes "xxxx-xxxx-xxxx" and their hashes for uid. */
void		 otp_recovery_new(char codes[][OTP_RECOVERY_LEN + 1],
		    char hashes[][FA_HASH_HEX + 1], const char *uid);
/* The stored hash of a recovery code as typed; -1 if malformed. */
int		 otp_recovery_hash(char out[FA_HASH_HEX + 1], const char *uid,
		    const char *code, size_t len);
void		 otp_token_new(char text[OTP_MFA_TOKEN_LEN + 1],
		    char hash[FA_HASH_HEX + 1]);
int		 otp_token_hash(char out[FA_HASH_HEX + 1], const char *text,
		    size_t len);
/* An SVG of the QR code of text; *out owned. */
int		 otp_qr_svg(const char *text, char **out, size_t *len);

/* route.c: method + pattern -> handler. */
typedef void	(*handler_fn)(struct request *);
struct route {
	enum method	 method;
	const char	*pattern;	/* "/sessions/:" : = one segment */
	const char	*label;		/* metrics: "/sessions/{id}" */
	handler_fn	 fn;
};
#define ROUTE_IDS_MAX		48	/* route ids are 1..this; 0 other */
/* Routes in the table, and the metrics label of id (1..; else "other"). */
size_t		 route_table_size(void);
const char	*route_table_label(size_t id);
void		 route_dispatch(struct request *);
/* The method of a REQUEST_METHOD ("GET" ...), METHOD_OTHER if none. */
enum method	 route_method(const char *);
/* Sets r->route to the pattern r->path matches, any method (metrics label). */
void		 route_label(struct request *);
/* auth_check on the request: 0, or -1 with the 401/503 answer set */
int		 route_bearer(struct request *, struct claims *);
/* validate_fields with the refusal answered (400): 0, or -1 */
int		 route_fields(struct request *, const json_t *body,
		    const struct field_spec *, size_t n, int flags,
		    struct field_value *);

/* route_*.c: one file per group; each handler answers through resp_*. */
void		 route_health(struct request *);
void		 route_health_live(struct request *);
void		 route_health_ready(struct request *);
void		 route_register(struct request *);
void		 route_login(struct request *);
void		 route_refresh(struct request *);
void		 route_logout(struct request *);
void		 route_logout_all(struct request *);
void		 route_me(struct request *);
void		 route_sessions_list(struct request *);
void		 route_sessions_revoke(struct request *);
void		 route_password(struct request *);
void		 route_verify(struct request *);
#define VERIFY_VALUE_MAX	FA_ROLE_MAX	/* longest requirement value */
void		 route_introspect(struct request *);
void		 route_jwks(struct request *);
void		 route_admin_audit(struct request *);
void		 route_admin_roles(struct request *);
void		 route_metrics(struct request *);
void		 route_mfa_totp(struct request *);
void		 route_mfa_confirm(struct request *);
void		 route_mfa_disable(struct request *);
void		 route_mfa_qr(struct request *);
void		 route_mfa_verify(struct request *);
/*
 * A sensitive change by a user with MFA needs an aal 2 session: 0 it may
 * go on, -1 the 403 answer is set.
 */
int		 route_mfa_step_up(struct request *, const struct claims *,
		    const struct user *);
/* route_login.c: the session and token pair of a login (aal 1 or 2). */
int		 route_login_session(struct request *, const struct user *,
		    const char *ip, const char *ua, int aal);
void		 route_openapi(struct request *);
void		 route_password_forgot(struct request *);
void		 route_password_reset(struct request *);
void		 route_email_verify(struct request *);
void		 route_email_verify_resend(struct request *);
void		 route_email_change(struct request *);
void		 route_me_delete(struct request *);
/* After register: the verification mail, when a mailer is configured and
 * email_verification is not off.  Failures are logged, never answered. */
void		 account_register_mail(struct request *, const char *email);
#define ACCOUNT_TTL_TEXT	24	/* the "{ttl_minutes}" value */
/* cli_audit.c */
#define AUDIT_PRUNE_DAYS_MAX	36500	/* audit prune --older-than */
/* auth.c: Bearer check shared by routes */
/* 0 live, 1 invalid or revoked, -1 could not check (503) */
int		 auth_check(const char *authorization, struct claims *);
/* auth_check for a bare token (no "Bearer "): the same three answers */
int		 auth_check_token(const char *tok, size_t len, struct claims *);
int		 auth_has_role(const struct claims *, const char *role);

/*
 * roles.c: a user's roles, comma-joined ("user,admin") in struct user and
 * struct claims, a JSON array on the wire.  Pure.
 */
#define ROLES_DEDUP		0x01	/* roles_from_json: drop repeats */
int		 roles_has(const char *csv, const char *role);
json_t		*roles_json(const char *csv);	/* new reference */
/* A JSON array of at most FA_ROLES_MAX valid names into out: 0, or -1. */
int		 roles_from_json(const json_t *, int flags, char *out,
		    size_t sz);
/* Add or remove one role of csv: 0, or -1 (FA_ROLES_MAX held already). */
int		 roles_edit(char *csv, size_t sz, const char *role, int add);

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

/* event.c: outbox publisher and relay. */
int		 event_init(void);
void		 event_shutdown(void);
/* The outbox row's message (event.c's comment); owned, NULL on bad input. */
char		*event_envelope(enum event_kind, const json_t *data,
		    json_t *extra, const char *evid, long long now_ms);
enum event_kind	 event_enabled(enum event_kind);	/* or EVENT_NONE */

/* session.c: the end of a session, recorded (API.md "more session detail"). */
enum session_end {
	SESSION_END_USER,		/* DELETE /sessions/{id} */
	SESSION_END_LOGOUT_ALL,
	SESSION_END_PASSWORD_CHANGE,
	SESSION_END_PASSWORD_RESET,
	SESSION_END_REUSE,
	SESSION_END_DISABLED,
	SESSION_END_DELETED,
	SESSION_END_ADMIN,
	SESSION_END_LIMIT,		/* past max_sessions_per_user */
	SESSION_END__MAX
};
const char	*session_end_reason(enum session_end);	/* "logout_all" */
/*
 * One session.revoke audit row and its session.revoked event (data userId,
 * sessionId, reason) in one transaction.  r may be NULL (no ip, user agent
 * or request id); email may be NULL.  0, or -1 (logged: not recorded).
 */
int		 session_revoked(struct request *r, const char *uid,
		    const char *email, const char *sid, enum session_end);
/* The same with by ("cli", ...; NULL: none) in the audit detail. */
int		 session_revoked_by(struct request *r, const char *uid,
		    const char *email, const char *sid, enum session_end,
		    const char *by);
/*
 * The service layer over store.c and db.c for a session's life: open
 * (login, second factor), the token pair (open and refresh), end all
 * (logout-all, CLI).  Answers nothing: routes turn results into answers.
 */
struct session_pair {
	char		 uid[FA_UUID_LEN + 1];
	char		 sid[FA_UUID_LEN + 1];
	char		 refresh[FA_REFRESH_LEN + 1];
	char		*access;	/* owned; NULL: could not be signed */
};
/* Sign u's access token for sid: 0, or -1 (logged; p->access NULL). */
int		 session_pair(struct request *, const struct user *u,
		    const char *sid, const char *refresh_text, long long gen,
		    int aal, struct session_pair *p);
void		 session_pair_free(struct session_pair *);	/* wipes */
/*
 * Create a session for u (ip and raw user agent: the client's at the
 * password step) with its aal, trim the user's oldest past the limit and
 * record the login; *p then holds the pair.  0, -1 a backend failed, 1 the
 * user changed under the login (password, disabled, deleted).
 */
int		 session_open(struct request *, const struct user *u,
		    const char *ip, const char *rawua, int aal,
		    struct session_pair *p);
/*
 * End every session of u and cut off its access tokens issued until now;
 * each ended session is recorded with why, then one logout-all row with
 * by ("cli", ...) in its detail.  *n: the sessions ended.  0, or -1 (Redis
 * down: nothing recorded).
 */
int		 session_end_all(struct request *, const struct user *u,
		    enum session_end why, const char *by, size_t *n);

/* revoke.c: in-memory revocation cache (see revoke.c). */
#define REVOKE_PING_MS		25	/* heartbeat on the subscription */
#define REVOKE_FRESH_MS		80	/* trust the cache this long after a
					   PING was sent whose PONG came back
					   (API.md: 100 ms between instances) */
#define REVOKE_DEAD_MS		1000	/* no PONG for this long: reconnect */
#define REVOKE_BACKOFF_MIN_MS	50	/* reconnect backoff, doubling */
#define REVOKE_BACKOFF_MAX_MS	2000
#define REVOKE_SWEEP_MS		1000	/* expired entries dropped this often */
#define REVOKE_SWEEP_SLICES	16	/* a sweep visits buckets/16 buckets */
#define REVOKE_SWEEP_MIN	1024	/* ... and at least this many */
#define REVOKE_SWEEP_BATCH	64	/* buckets per hold of the write lock */
#define REVOKE_BUCKETS_MIN	1024	/* initial buckets (a power of two) */
#define REVOKE_ENTRIES_MAX	(1L << 20)	/* beyond: verify asks Redis */
#define REVOKE_RESET_MS		30000	/* a cut-off this close to its end may
					   be replaced by a lower one */
struct revoke_stats {
	int		 live;		/* verify answers from memory now */
	size_t		 entries;
	unsigned long long syncs;	/* subscribe + load done */
	unsigned long long messages;	/* revocations received */
	unsigned long long fallbacks;	/* checks handed to Redis */
};
int		 revoke_init(void);	/* starts the listener */
void		 revoke_shutdown(void);
/*
 * 0 alive, 1 revoked (jti blacklisted, session revoked, or gen below the
 * user's cut-off), -1 the cache is not live: ask store_token_revoked.
 * No allocation, no system call, a read lock for three lookups.
 */
int		 revoke_check(const char *uid, const char *sid, const char *jti,
		    long long gen);
/* This process's own revocations, in the cache at once (from store.c). */
void		 revoke_note_jti(const char *uid, const char *jti, long ttl_s);
void		 revoke_note_session(const char *uid, const char *sid,
		    long ttl_s);
void		 revoke_note_cutoff(const char *uid, long long cutoff,
		    long ttl_s);
void		 revoke_stats(struct revoke_stats *);
/* 1 when the table may answer at now (pure: the state is passed in). */
int		 revoke_live(int synced, int full, long long fresh_ms,
		    long long now_ms);
/*
 * The table itself, pure (no lock, no clock: now_ms is any monotonic ms),
 * for the unit tests.  rtab_put merges (latest expiry; highest cut-off,
 * unless the old one is within REVOKE_RESET_MS of its end) and is -1 when
 * full.  rtab_sweep visits up to budget buckets from where it stopped and
 * returns the entries it dropped.
 */
struct rtab;
struct rtab	*rtab_new(size_t max_entries);
void		 rtab_free(struct rtab *);
int		 rtab_put(struct rtab *, const struct revocation *,
		    long long now_ms);
int		 rtab_check(const struct rtab *, const char *uid,
		    const char *sid, const char *jti, long long gen,
		    long long now_ms);
size_t		 rtab_sweep(struct rtab *, long long now_ms, size_t budget);
size_t		 rtab_count(const struct rtab *);
size_t		 rtab_buckets(const struct rtab *);

/*
 * rpc.c: auth.validate_token over the NestJS Redis transport.  A thread of
 * its own with its own Redis connections answers {"pattern", "data":
 * {"token"}, "id"} on <pattern>.reply with {"id", "response",
 * "isDisposed": true}; the checks are auth_check_token's.  rpc_parse is the
 * envelope parser, pure: RPC_OK (id and token), RPC_NO_TOKEN (answer
 * {"valid": false}) or RPC_DROP (*why says which rule).
 */
#define RPC_ID_MAX		128	/* bytes of the id as JSON text */
#define RPC_MSG_MAX		(FA_TOKEN_MAX + 1024)	/* bytes of a request */
#define RPC_BATCH_MAX		256	/* requests read per round */
#define RPC_CLAIM_TTL		30	/* s: fa:rpc:<id> keeps others quiet */
#define RPC_CLAIM_PREFIX	"fa:rpc:"
#define RPC_REPLY_SUFFIX	".reply"
#define RPC_PATTERN_MAX		200	/* rpc_validate_pattern bytes */
#define RPC_POLL_MS		25	/* longest wait for requests: a stop
					   is seen within this */
#define RPC_PING_MS		1000	/* heartbeat on the subscription */
#define RPC_DEAD_MS		3000	/* no PONG this long: reconnect */
#define RPC_BACKOFF_MIN_MS	50	/* reconnect backoff, doubling */
#define RPC_BACKOFF_MAX_MS	2000
#define RPC_LOG_EVERY_MS	10000	/* one drop line per this, with count */
#define RPC_NICE		10	/* the responder yields to workers */
enum rpc_parse {
	RPC_OK,
	RPC_NO_TOKEN,
	RPC_DROP
};
struct rpc_req {
	char		 id[RPC_ID_MAX + 1];	/* JSON text: "\"abc\"" or 42 */
	const char	*token;		/* into the parsed JSON; NULL: none */
	size_t		 toklen;
};
/* *root (owned, json_decref) keeps token alive; set whenever not DROP. */
enum rpc_parse	 rpc_parse(const char *msg, size_t len, struct rpc_req *,
		    json_t **root, const char **why);
/* The answer for claims (NULL: {"valid": false}), a new reference. */
json_t		*rpc_answer(const struct claims *);
int		 rpc_init(void);	/* no-op when off */
void		 rpc_shutdown(void);

/* metrics.c: Prometheus counters (see metrics.c). */
/*
 * Lock-free counters (C11 atomics) bumped on the request path and rendered
 * in the Prometheus text format by GET <prefix>/metrics.  Label sets are
 * fixed (the route table's patterns, the statuses we answer), so the number
 * of series is bounded whatever clients send.
 */
enum metrics_backend {
	METRICS_POSTGRES,
	METRICS_REDIS,
	METRICS_BACKEND__MAX
};
/* route: r->route (the matched pattern) or NULL for "other". */
#define METRICS_SHARDS		8	/* request counters, a set per thread
					   group, summed when scraped */
void		 metrics_request(size_t route_id, int status, long usec);
void		 metrics_login(int ok);
void		 metrics_refresh(void);
void		 metrics_reuse(void);
void		 metrics_backend_error(enum metrics_backend);
/* RPC responder: a request read, answered (usec from read to reply), or
 * dropped as malformed. */
void		 metrics_rpc_request(void);
void		 metrics_rpc_answer(long usec);
void		 metrics_rpc_drop(void);
enum metrics_mail {
	METRICS_MAIL_QUEUED,
	METRICS_MAIL_SENT,
	METRICS_MAIL_FAILED,
	METRICS_MAIL__MAX
};
void		 metrics_mail(enum metrics_mail);
/* The exposition text, owned by the caller; asks PostgreSQL for the outbox
 * lag (omitted when PostgreSQL is down). */
char		*metrics_render(size_t *len);
#define METRICS_PREFIX		"fcgi_auth_"
#define METRICS_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"

/*
 * once.c: one-time tokens of the account lifecycle: ONCE_BYTES random
 * bytes as base64url, kept only as a keyed BLAKE2b hash (hex); and the
 * seal of queued mail (secretbox, hex).  Keys are derived from jwt_secret
 * by once_init, before any thread starts.
 */
#define ONCE_BYTES		32	/* 256 random bits */
#define ONCE_LEN		43	/* base64url of ONCE_BYTES */
#define ONCE_CTX_HASH		"fcgi-auth one-time-hash v1"
#define ONCE_CTX_MAIL		"fcgi-auth mail-seal v1"
struct once {
	char		 text[ONCE_LEN + 1];
	char		 hash[FA_HASH_HEX + 1];
};
int		 once_init(const struct config *);
void		 once_shutdown(void);
void		 once_new(struct once *);
/* 0 and the hash, or -1: not ONCE_BYTES of base64url. */
int		 once_parse(struct once *, const char *text, size_t len);
int		 once_seal(char **out, const char *in, size_t len);
/* *out owned, NUL-terminated. */
int		 once_open(char **out, size_t *len, const char *hex);

/*
 * mail.c: the mails, built in memory (pure but for mail_init reading the
 * templates).  A template file is "Subject: ..." then a blank line and the
 * body; {name} placeholders are replaced, unknown ones kept.  Header values
 * are visible ASCII or RFC 2047 encoded-words: no CR or LF can reach a
 * header.  The body goes out as 8bit, or quoted-printable when a line is
 * too long for SMTP.
 */
enum mail_kind {
	MAIL_RESET,
	MAIL_VERIFY,
	MAIL_EMAIL_CHANGE,	/* to the new address, with the token */
	MAIL_EMAIL_CHANGED,	/* notice to the old address */
	MAIL__MAX
};
#define MAIL_TEMPLATE_MAX	16384	/* bytes of a template file */
#define MAIL_LINE_MAX		998	/* RFC 5322 line length */
#define MAIL_WORD_BYTES		45	/* bytes of text per encoded-word */
#define MAIL_MSGID_BYTES	16
struct mail_var {
	const char	*name;		/* without braces */
	const char	*value;
};
/* Boot: the templates of c, freed by mail_shutdown. */
int		 mail_init(struct config *, char **errstr);
void		 mail_shutdown(void);
/* A reloaded generation's: read mail_template_dir into c->mail when
 * smtp_url is set (-1 and *errstr owned: the reload is refused). */
int		 mail_templates_load(struct config *, char **errstr);
void		 mail_templates_free(struct config *);
int		 mail_enabled(void);	/* smtp_url and templates in cfg */
const char	*mail_kind_name(enum mail_kind);	/* template file name */
char		*mail_render(const char *tmpl, const struct mail_var *,
		    size_t nvars);
char		*mail_header_value(const char *in);
/* "Subject: x\n\nbody": 0 and owned subject/body, -1 malformed */
int		 mail_template_split(const char *text, char **subject,
		    char **body);
char		*mail_compose(const char *from, const char *to,
		    const char *subject, const char *body, long long ms);
/* The message of kind to rcpt, rendered and composed; NULL: no mailer. */
char		*mail_build(enum mail_kind, const char *rcpt,
		    const struct mail_var *, size_t nvars);
/* The link of a token: reset_url or verify_url with {token} replaced. */
char		*mail_link(enum mail_kind, const char *token);

/*
 * mailer.c: one thread sends the queue over SMTP (libcurl), woken by a
 * NOTIFY on fa_mail (db_listen_*) or every MAILER_POLL_MS; never on a
 * request's path.  Temporary failures are retried, the first after
 * mail_retry_min_seconds, then doubling up to MAILER_BACKOFF_MAX_S, for
 * mail_retry_hours; a 5xx answer drops the mail with an audit row.
 */
#define MAILER_POLL_MS		1000
#define MAILER_BATCH		20
#define MAILER_BACKOFF_MAX_S	3600
#define MAILER_LEASE_SLACK_S	30	/* past smtp_timeout_ms */
int		 mailer_init(void);
void		 mailer_shutdown(void);
int		 mailer_probe(char *err, size_t errsz);	/* doctor */

/*
 * db_probe.c: fcgi-auth doctor's look at PostgreSQL, on a connection of its
 * own: 0 (connected; the clock read if clock_ok), or -1 with the first
 * line of libpq's message in err.
 */
#define DB_PROBE_CONNECT_TIMEOUT "5"	/* seconds */
#define DB_PROBE_APPNAME	"fcgi-auth-doctor"
#define DB_PROBE_NAME_MAX	64	/* NAMEDATALEN */
struct db_probe {
	char		 db[DB_PROBE_NAME_MAX];	/* the database connected to */
	int		 version;	/* PQserverVersion: major * 10000 +
					   minor */
	int		 clock_ok;
	double		 skew;		/* seconds, PostgreSQL's clock minus
					   ours, the round trip halved */
};
int		 db_probe(const char *url, struct db_probe *, char *err,
		    size_t errsz);

/*
 * cli_doctor.c: fcgi-auth doctor, one line per check (backends, schema,
 * clock, secret files); 1 when one failed.  main.c's --config path.
 */
extern const char *config_path;
int		 cli_doctor(int, char **);
#define DOCTOR_LINE_MAX		1024	/* one line of output */
#define DOCTOR_CONNECT_TIMEOUT	"5"	/* seconds, PostgreSQL */
#define DOCTOR_SKEW_WARN	2	/* seconds of clock skew: warn */
#define DOCTOR_SKEW_FAIL	30	/* seconds of clock skew: fail */

/* time helpers (util.c) */
long long	 now_ms(void);
long long	 now_us(void);
void		 rfc3339(char out[40], long long ms);
long long	 mono_ms(void);		/* monotonic, for deadlines */
struct timeval	 ms_tv(long long ms);
/* the request's backend deadline (util.c): armed at the first backend wait */
void		 deadline_start(void);
void		 deadline_rearm(void);
long long	 deadline_at(long timeout_ms);
/* the decimal number parser and the small-file reader (util.c) */
int		 num_parse(const char *, long long, long long, long long *);
int		 file_read(const char *, size_t, char **, size_t *);

/* migrate.c (db_migrate, declared with db.c): the sql/NNN_*.sql files. */
#define MIGRATE_FILE_MAX	(1024 * 1024)	/* bytes of one file */

/*
 * auditq.c: group commit of the refresh path's user lookup + audit row
 * (see auditq.c).  auditq_user_refresh answers as db_user_refresh.
 */
#define AUDITQ_WRITERS		2	/* threads, each a transaction at once */
#define AUDITQ_BATCH_MAX	64	/* refreshes in one transaction */
int		 auditq_start(void);
void		 auditq_stop(void);
int		 auditq_user_refresh(const char *id, const struct audit *,
		    struct user *out);

/* Split modules, after every type above (see the top of this file). */
#include "cli.h"
#include "token.h"
#include "store.h"
#include "db.h"
#include "server.h"

#endif /* FA_EXTERN_H */
