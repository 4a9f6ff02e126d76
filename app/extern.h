/*
 * fcgi-auth: the private header.  It reads as a table of contents: one
 * section per source file, in layer order (support, backends, services,
 * HTTP), with every limit and default as a named constant.
 */
#ifndef FA_EXTERN_H
#define FA_EXTERN_H

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

#include <jansson.h>

struct request;
struct token_set;
struct user;

/* Limits of the contract (API.md) and of the implementation. */
#define FA_EMAIL_MAX		254	/* bytes, canonical form (email.c) */
#define FA_PASSWORD_MIN		8	/* bytes */
#define FA_PASSWORD_MAX		1024	/* bytes */
#define FA_NAME_MAX		100	/* characters (UTF-8 code points) */
#define FA_NAME_BYTES		(FA_NAME_MAX * 4)	/* cleaned (text.c) */
#define FA_ROLE_MAX		32	/* [a-z][a-z0-9_-]{0,31} */
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

/* db.c: PostgreSQL pool; every operation returns DB_* codes. */
enum db_rc {
	DB_OK = 0,
	DB_ERROR = -1,		/* unreachable, timeout, unexpected: 503 */
	DB_NOTFOUND = 1,
	DB_CONFLICT = 2		/* unique violation */
};

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

struct audit_query {
	const char	*user_id;	/* NULL = any */
	const char	*event;		/* NULL = any */
	long		 limit;
	long long	 before;	/* 0 = newest */
};

int		 db_init(const struct config *);
void		 db_shutdown(void);
int		 db_ping(void);		/* 0 up, -1 down */
int		 db_migrate(const char *conninfo, const char *sql_dir,
		    int status_only, FILE *out, char **errstr);
/*
 * The writes below commit the change, its audit row and its outbox row in
 * one transaction (one statement where possible), then call event_kick()
 * when an outbox row was written.  db_user_create makes the id and
 * created_at itself and fills them (with email and names) into the audit
 * row and the outbox data ("userId", "email", "firstName", "lastName",
 * "createdAt"); outbox_data may then be NULL.  Malformed uuids are
 * DB_NOTFOUND (or NULL in an audit row), never sent to PostgreSQL.
 */
int		 db_user_create(const char *email, const char *hash,
		    const char *first, const char *last, const struct audit *,
		    struct user *out);
int		 db_user_by_email(const char *email, struct user *out);
int		 db_user_by_id(const char *id, struct user *out);
/* by id, plus the audit row (no event) unless disabled: one round trip */
int		 db_user_refresh(const char *id, const struct audit *,
		    struct user *out);
int		 db_user_set_password(const char *id, const char *hash,
		    const struct audit *);	/* audit may be NULL (rehash) */
int		 db_user_set_roles(const char *id, const char *roles_csv,
		    const struct audit *, struct user *out);
int		 db_audit(const struct audit *);
int		 db_audit_list(const struct audit_query *, json_t **entries);
/*
 * Import users all or nothing.  users: a JSON array of {"line", "id",
 * "email", "hash", "firstName"?, "lastName"?, "roles" ("a,b"), "disabled",
 * "createdAt"?, "updatedAt"?}, all checked by the caller.  An id or email
 * taken in the database or by an earlier element is DB_CONFLICT with
 * *clashes (caller frees) a JSON array of {"line", "field": "id"|"email"},
 * and nothing written; else every user is inserted with a "user.import"
 * audit row ({"by": by, ...}) in one statement.  dry_run: the check only.
 */
int		 db_user_import(json_t *users, const char *by, int dry_run,
		    json_t **clashes);
/*
 * Delete the user id (API.md, Account deletion) in one statement: the row
 * goes, the user's audit rows keep user_id but lose email, ip and user
 * agent, and a's audit row and outbox event are written.  DB_NOTFOUND when
 * there is no such user.
 */
int		 db_user_delete(const char *id, const struct audit *a);
/*
 * Outbox relay API.  A batch holds one pooled connection and one open
 * transaction: db_outbox_begin claims up to limit unpublished rows (oldest
 * first, FOR UPDATE SKIP LOCKED, so concurrent relays in other processes
 * never publish the same row at the same time) and returns them in *rows as
 * a JSON array of {"id": int, "event": "user.registered", "message":
 * "<the full {\"pattern\",\"data\"} text to publish>", "attempts": int}.
 * DB_NOTFOUND: nothing pending (no batch is open, *batch and *rows NULL).
 * After publishing a row call db_outbox_done (marks it published) or
 * db_outbox_retry (counts a failed attempt); db_outbox_end commits (commit
 * != 0) or rolls back, returns the connection and frees the batch -- always
 * call it once begin returned DB_OK, even after a failed done/retry.
 */
struct db_batch;
int		 db_outbox_begin(long limit, struct db_batch **batch,
		    json_t **rows);
int		 db_outbox_done(struct db_batch *, long long id);
int		 db_outbox_retry(struct db_batch *, long long id);
int		 db_outbox_end(struct db_batch *, int commit);
/* Mark one row published outside a batch (publish-after-commit path). */
int		 db_outbox_mark(long long id);
/* Delete rows published more than retention seconds ago. */
int		 db_outbox_prune(long retention_seconds);
int		 db_outbox_pending(long long *count);	/* unpublished rows */
#define DB_NOTIFY_CHANNEL	"fa_outbox"	/* NOTIFYed with each outbox row */
#define DB_OUTBOX_BATCH_MAX	1000	/* rows per db_outbox_begin */
#define DB_OUTBOX_PRUNE_MAX	10000	/* rows deleted per prune call */
#define DB_KEEPALIVE_IDLE	30	/* seconds: TCP keepalive */
#define DB_KEEPALIVE_INTERVAL	10
#define DB_KEEPALIVE_COUNT	3
#define DB_IDLE_TXN_TIMEOUT_MS	60000	/* server ends a forgotten transaction */
#define DB_LOCK_TIMEOUT_MS	1000	/* row/table lock waits */
#define DB_MIGRATE_CONNECT_TIMEOUT	"10"	/* seconds, migrate only */
#define DB_MIGRATE_LOCK_KEY	7370874634563633	/* pg_advisory_lock */
#define DB_MIGRATE_NAME_MAX	255
#define DB_MIGRATE_FETCH	1000	/* rows per FETCH of a C step */
#define DB_LOG_LINE		512	/* server messages are cut to this */
/*
 * Operator queries (cli_user.c, cli_outbox.c, metrics.c).  db_user_list:
 * users oldest first as a JSON array of user objects with "disabled".
 * db_user_set_disabled writes a "user.disable"/"user.enable" audit row with
 * {"by": by} in the same statement; DB_NOTFOUND for no such user.
 * db_outbox_lag: unpublished rows and the age in seconds of the oldest (0
 * when none).  db_outbox_status: {"pending", "published", "oldestPendingId",
 * "lagSeconds", "maxAttempts", "lastPublishedAt", "events": {name:
 * {"pending", "published"}}}.  db_outbox_replay marks rows unpublished
 * again so the relay sends them once more: the row of event_id (pending or
 * not), else the published rows with from <= id <= to (to 0: no end);
 * *count rows matched, DB_NOTFOUND when none.
 */
int		 db_user_list(long limit, long offset, json_t **users);
int		 db_user_set_disabled(const char *id, int disabled,
		    const char *by, struct user *out);
int		 db_outbox_lag(long long *pending, double *lag_seconds);
int		 db_outbox_status(json_t **status);
int		 db_outbox_replay(const char *event_id, long long from,
		    long long to, long long *count);
#define DB_USER_LIST_MAX	100000	/* rows per db_user_list */
/*
 * Second factor (end of db.c).  Secrets arrive and leave sealed (otp.c).
 * pending: DB_CONFLICT when MFA is on.  enable moves the pending secret
 * (only if it is still pending_hex) to the active one with the step of the
 * confirming code and replaces the recovery hashes; DB_CONFLICT when MFA
 * is on or the pending secret changed.  use_step is a compare-and-set: DB_OK
 * only when step is above the last one used (a code is accepted once);
 * use_recovery marks an unused code used: DB_OK once, else DB_NOTFOUND.
 * disable: DB_NOTFOUND when MFA is off.
 */
struct db_mfa {
	int		 enabled;
	char		*secret;	/* sealed hex, owned, may be NULL */
	char		*pending;	/* sealed hex, owned, may be NULL */
};
void		 db_mfa_free(struct db_mfa *);
int		 db_mfa_get(const char *uid, struct db_mfa *);
int		 db_mfa_pending(const char *uid, const char *sealed);
int		 db_mfa_enable(const char *uid, const char *pending_hex,
		    long long step, char hashes[][FA_HASH_HEX + 1], size_t n,
		    const struct audit *);
int		 db_mfa_use_step(const char *uid, long long step);
int		 db_mfa_use_recovery(const char *uid, const char *hash);
int		 db_mfa_disable(const char *uid, const struct audit *);

/*
 * The account lifecycle (route_account.c, mailer.c, cli_audit.c).
 * db_once_request: for the user found by email (or user_id), enabled (and,
 * with unverified_only, not verified), in one statement: void that user's
 * older tokens of the purpose and store hash (unless NULL), queue the
 * sealed message (unless NULL) to rcpt (NULL: the user's address), write
 * the audit row a_event (user id or NULL, whether or not a user was found;
 * NULL: none) and, for a user, the outbox event ev with userId, email and
 * expiresAt.  The same work for a known and an unknown email.  *uid gets
 * the user's id or "".
 */
struct once_req {
	const char	*purpose;	/* "reset", "verify", "email_change" */
	const char	*email;
	const char	*user_id;
	int		 unverified_only;
	const char	*hash;
	long		 ttl;
	const char	*new_email;
	const char	*kind;		/* mail kind */
	const char	*rcpt;
	const char	*message;	/* sealed */
	const char	*a_event;
	const char	*ip;
	const char	*user_agent;
	enum event_kind	 ev;
	long long	 request_id;	/* the mail_requests row it applies */
};
int		 db_once_request(const struct once_req *,
		    char uid[FA_UUID_LEN + 1]);
/*
 * forgot and resend hand their request to the mailer thread: one row
 * whatever the email (db_mail_request), leased back by
 * db_mail_request_claim as [{"id", "request": {...}, "message"}] and
 * applied by db_once_request with request_id set (which deletes the row).
 */
int		 db_mail_request(const struct once_req *);
int		 db_mail_request_claim(long limit, long lease, json_t **rows);
/* The live token of hash among purposes ("reset" or "verify,email_change"):
 * its user, purpose and new email (owned, may be NULL); DB_NOTFOUND. */
int		 db_once_peek(const char *hash, const char *purposes,
		    char uid[FA_UUID_LEN + 1], char purpose[16],
		    char **new_email);
/*
 * Consume the token and apply it in one statement with its audit/outbox
 * rows: reset (pwhash set, email verified), verify (email verified) or
 * email_change (email set and verified; DB_CONFLICT when taken).
 * DB_NOTFOUND when the token is no longer live.
 */
int		 db_once_apply(const char *hash, const char *purpose,
		    const char *pwhash, const struct audit *);
/* Queue one sealed message without a token (the email-changed notice). */
int		 db_mail_enqueue(const char *kind, const char *rcpt,
		    const char *uid, const char *message);
/*
 * The mailer's queue.  db_mail_claim leases up to limit due rows for
 * lease seconds and returns [{"id", "kind", "rcpt", "message", "attempts",
 * "ageSeconds"}].  done: sent.  retry: due again in delay seconds, error
 * kept.  fail: dropped for good, with a "mail.dropped" audit row.
 */
int		 db_mail_claim(long limit, long lease, json_t **rows);
int		 db_mail_done(long long id);
int		 db_mail_retry(long long id, long delay, const char *error);
int		 db_mail_fail(long long id, const char *kind, const char *error);
int		 db_mail_stats(long long *pending, double *oldest_seconds);
/* Delete the user, erase email/ip/user agent of its audit rows, add the
 * audit row and event of a (whose email, ip and agent must be NULL). */
int		 db_user_delete(const char *id, const struct audit *);
/* Delete audit rows older than days; *count rows deleted. */
int		 db_audit_prune(long days, long long *count);
#define DB_MAIL_ERROR_MAX	200	/* bytes of an SMTP error kept */

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

/* store.c: Redis pool, Lua scripts by EVALSHA; 0 ok, -1 unavailable. */
struct session_info {
	char		 id[FA_UUID_LEN + 1];
	long long	 created_ms;
	long long	 last_used_ms;
	char		 ip[FA_IP_MAX + 1];
	char		 user_agent[FA_UA_MAX + 1];
};

enum rotate_result {
	ROTATE_OK,		/* rotated: the new token is now current */
	ROTATE_GRACE,		/* parent within grace: child_enc returned */
	ROTATE_REUSE,		/* reuse: the session is revoked now */
	ROTATE_REVOKED,		/* an old token of a session already revoked
				   (for reuse): 401, nothing more to record */
	ROTATE_UNKNOWN		/* no such token or session: nothing changed */
	/* ROTATE_UNKNOWN is the last: store.c range-checks the script's code */
};

int		 store_init(const struct config *);
void		 store_shutdown(void);
/* A failover was announced (why, for the log): the pool moves to a new
   epoch, every context made before is dropped, and a revocation written on
   one is not acknowledged. */
void		 store_failover(const char *why);
int		 store_ping(void);
/*
 * Create a session holding refresh hash rhash; trims the user's sessions to
 * max, returning the revoked ids (caller frees the array and strings).
 * *cutoff receives the user's revocation generation (0 if none): the
 * cut-off is a counter that every logout-all, password change and role
 * change raises by one; a token carries the generation it was issued under
 * (claim gen) and is dead once the user's generation is higher.  Exact, and
 * free of clocks: two cut-offs within one second still separate the token
 * issued between them.
 */
int		 store_session_create(const char *uid, const char *sid,
		    const char *rhash, const char *ip, const char *ua,
		    int aal, long ttl, long max, char ***revoked,
		    size_t *nrevoked, long long *cutoff);
/*
 * Rotate presented hash to new hash (with new_enc the encrypted new token)
 * atomically.  On ROTATE_GRACE, *child_enc (owned by caller) holds the
 * encrypted current token.
 */
int		 store_session_rotate(const char *uid, const char *sid,
		    const char *presented, const char *newhash,
		    const char *new_enc, long grace, long ttl,
		    enum rotate_result *res, char **child_enc,
		    long long *cutoff, int *aal);
/* 0 revoked, 1 no such session, -1 unavailable */
int		 store_session_revoke(const char *uid, const char *sid,
		    long access_ttl);
/*
 * Logout by refresh token: revoke session sid of uid only if rhash is one
 * of its refresh hashes (current, parent or rotated away), so a made-up
 * token revokes nothing.  0 revoked, 1 no such session or not its token,
 * -1 unavailable.
 */
int		 store_session_revoke_refresh(const char *uid, const char *sid,
		    const char *rhash, long access_ttl);
/* Revoke all sessions except keep_sid (NULL = all); raise the generation. */
int		 store_user_revoke_all(const char *uid, const char *keep_sid,
		    long access_ttl, long long *cutoff);
/* As store_user_revoke_all, and the ids of the sessions it ended (caller
 * frees the array and strings; NULL and 0 when none). */
int		 store_user_revoke_sessions(const char *uid,
		    const char *keep_sid, long access_ttl, long long *cutoff,
		    char ***sids, size_t *nsids);
int		 store_user_cutoff(const char *uid, long access_ttl,
		    long long *cutoff);	/* role change */
int		 store_session_list(const char *uid,
		    struct session_info **list, size_t *n);
int		 store_blacklist(const char *uid, const char *jti, long ttl);
/*
 * 0: the token is alive; 1: revoked (blacklisted jti, revoked session or
 * issued under an older generation than the user's); -1: could not check.
 */
int		 store_token_revoked(const char *uid, const char *sid,
		    const char *jti, long long gen);
/*
 * Fixed-window counters: 0 under limit, 1 over (*retry seconds), -1 down.
 * hit counts and is over past limit hits in the window.  reserve counts
 * one attempt in up to STORE_RATE_KEYS counters atomically, only if none
 * already holds its limit; release gives one back to each (or clears it).
 */
#define STORE_RATE_KEYS		4
struct store_rate {
	const char	*key;
	long		 limit;
	int		 clear;		/* release: delete, not give one back */
};
int		 store_rate_hit(const char *key, long limit, long window,
		    long *retry);
int		 store_rate_reserve(const struct store_rate *, size_t n,
		    long window, long *retry);
int		 store_rate_release(const struct store_rate *, size_t n);
int		 store_publish(const char *channel, const char *msg,
		    const char *stream, long maxlen);
/*
 * mfaTokens: fa:mfa:<keyed hash> holds what the second step needs, for
 * ttl seconds.  get: 0 found, 1 none, -1 down.  wrong counts a wrong code
 * and deletes the token at max (*voided).  take deletes it: 0 taken by
 * this call, 1 already gone (single use), -1 down.
 */
struct store_mfa {
	char		 uid[FA_UUID_LEN + 1];
	char		 ip[FA_IP_MAX + 1];
	char		 ua[FA_UA_MAX + 1];
};
int		 store_mfa_create(const char *hash, const struct store_mfa *,
		    long ttl);
int		 store_mfa_get(const char *hash, struct store_mfa *);
int		 store_mfa_wrong(const char *hash, long max, int *voided);
int		 store_mfa_take(const char *hash);
#define STORE_KEY_MAX		160	/* longest key we build */
#define STORE_REVOKE_SLACK	60	/* seconds past access_ttl + leeway */
#define STORE_TIMEOUT_SLACK_MS	50	/* tolerated overshoot of a deadline */
/*
 * The revocation feed for revoke.c.  Each revocation is published on
 * STORE_REVOKE_CHANNEL ":<redis_db>" as "<key> <ttl seconds> <value>" in the
 * script that makes it; a struct revocation is that message (or a loaded
 * key) parsed.
 */
#define STORE_REVOKE_CHANNEL	"fa:revocations"
#define STORE_SCAN_COUNT	1000	/* SCAN COUNT of the revocation load */
enum revoke_kind {
	REVOKE_JTI,		/* fa:{U}:bl:<jti>: that access token */
	REVOKE_SESSION,		/* fa:{U}:srev:<sid>: the session's tokens */
	REVOKE_CUTOFF,		/* fa:{U}:cutoff: tokens below value */
	REVOKE__MAX
};
struct revocation {
	enum revoke_kind kind;
	char		 uid[FA_UUID_LEN + 1];
	char		 key[FA_UUID_LEN + 1];	/* jti or sid; "" for a cut-off */
	long long	 value;		/* the cut-off; 1 for the others */
	long long	 ttl_ms;	/* left to live */
};
/* "<key> <ttl seconds> <value>" -> *out; 0 or -1.  No I/O. */
int		 store_revocation_parse(const char *msg, size_t len,
		    struct revocation *out);
/* Return -1 to stop the feed.  NULL: see store_sub_read, the load. */
typedef int	(*store_rev_fn)(void *arg, const struct revocation *);
struct store_sub;
/* Always sets *sub (free with store_sub_close); -1: see store_sub_error. */
int		 store_sub_open(struct store_sub **sub);
int		 store_sub_ping(struct store_sub *);
/* Revocations to fn, NULL for each PONG; -1 once the subscription is lost. */
int		 store_sub_read(struct store_sub *, long timeout_ms,
		    store_rev_fn fn, void *arg);
const char	*store_sub_error(const struct store_sub *);
void		 store_sub_close(struct store_sub *);
/* Every revocation in Redis to fn, NULL after each SCAN batch. */
int		 store_revocations_load(store_rev_fn fn, void *arg, char *err,
		    size_t errsz);
/*
 * The RPC responder's two connections (rpc.c), outside the pool: one
 * subscribed to the request channel, one for claims and replies.
 * store_rpc_read hands each message published on the channel to fn (NULL
 * for a PONG), at most max of them per call; -1 once the subscription is
 * lost.  store_rpc_claim pipelines SET key 1 NX EX ttl for n keys: won[i]
 * is 1 when this process took keys[i] first.  store_rpc_publish pipelines
 * PUBLISH channel msgs[i].  All 0 or -1 (see store_rpc_error).
 */
typedef int	(*store_msg_fn)(void *arg, const char *msg, size_t len);
struct store_rpc;
/* Always sets *rpc (free with store_rpc_close). */
int		 store_rpc_open(struct store_rpc **rpc, const char *channel);
int		 store_rpc_ping(struct store_rpc *);
int		 store_rpc_read(struct store_rpc *, long timeout_ms, size_t max,
		    store_msg_fn fn, void *arg);
int		 store_rpc_claim(struct store_rpc *, const char *const *keys,
		    size_t n, long ttl, int *won);
int		 store_rpc_publish(struct store_rpc *, const char *channel,
		    char *const *msgs, size_t n);
const char	*store_rpc_error(const struct store_rpc *);
void		 store_rpc_close(struct store_rpc *);

/* token.c: JWT issue/verify with a pinned algorithm, keys by kid. */
#define TOKEN_TYP		"JWT"
#define TOKEN_KEYS_MAX		16	/* verification keys (with the signer) */
#define TOKEN_KID_MAX		64	/* [A-Za-z0-9._:-], not leading '.' */
#define TOKEN_RSA_BITS		2048	/* keygen size and accepted minimum */
#define TOKEN_SIG_MAX		1024	/* bytes: RSA up to 8192 bits */
#define TOKEN_EC_COORD		32	/* P-256 coordinate and r, s bytes */
#define TOKEN_SUBKEY_BYTES	32	/* server subkeys derived from the secret */
#define TOKEN_CTX_REFRESH	"fcgi-auth refresh-hash v1"
#define TOKEN_CTX_SEAL		"fcgi-auth seal v1"
#define TOKEN_AAL_MIN		1	/* aal of a token without the claim */
#define TOKEN_AAL_MFA		2	/* the password and a second factor */
#define TOKEN_AAL_MAX		TOKEN_AAL_MFA
struct claims {
	char		 sub[FA_UUID_LEN + 1];
	char		 sid[FA_UUID_LEN + 1];
	char		 jti[FA_JTI_LEN + 1];
	char		 email[FA_EMAIL_MAX + 1];
	char		 roles[FA_ROLES_LEN];	/* comma-joined */
	long long	 iat;
	long long	 exp;
	long long	 gen;	/* the user's revocation generation at issue */
	int		 aal;	/* 1 password, 2 and a second factor */
	int		 email_verified;	/* OIDC claim email_verified */
};
/*
 * Load the keys of c into c->tokens (replacing those it had); errstr
 * (owned) names the key or file, and c->tokens is then NULL.  The functions
 * below use the keys of cfg, the running generation, and are thread-safe.
 * token_free wipes one set; token_shutdown wipes cfg's.
 */
int		 token_init(struct config *c, char **errstr);
void		 token_free(struct token_set *);
void		 token_shutdown(void);
/* A number that changes whenever cfg's keys may have (0: none loaded). */
unsigned long	 token_serial(void);
/*
 * Fills jti (random), iat (now, Unix seconds), exp and gen (the user's
 * revocation generation, written as claim "gen" when above 0); *out is
 * owned (free()).
 */
int		 token_issue(struct claims *, long long gen, char **out);
/* 0 valid (claims filled), -1 invalid for any reason. No I/O. */
int		 token_verify(const char *jwt, size_t len, struct claims *);
json_t		*token_amr(int aal);	/* the amr claim of an aal */
/* A key for data at rest, purpose ctx, from config_data_secret. */
int		 token_derive(unsigned char *out, size_t len, const char *ctx);
json_t		*token_jwks(void);	/* new reference, shared: read only */
/* keyed hash of a refresh token: hex into out[FA_HASH_HEX + 1] */
void		 token_refresh_hash(char *out, const unsigned char *tok,
		    size_t len);
/* The same under jwt_secret_previous: 0, or -1 when there is none. */
int		 token_refresh_hash_previous(char *out,
		    const unsigned char *tok, size_t len);
/* secretbox under a server key; *out owned (hex) */
int		 token_seal(char **out, const unsigned char *in, size_t len);
int		 token_open(unsigned char *out, size_t outsz, size_t *outlen,
		    const char *hex);
/* alg "rs256" | "es256": DIR/KID.pem (0600), DIR/KID.pub.pem; no overwrite */
int		 token_keygen_check(const char *alg, const char *kid,
		    char **errstr);	/* the values only: 0, or -1 (usage) */
int		 token_keygen(const char *alg, const char *kid,
		    const char *dir, char **errstr);

/* refresh.c: refresh token format and the token pair. */
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
void		 refresh_pair(struct request *, const struct user *,
		    const char *sid, const char *refresh_text, long long gen,
		    int aal);

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
void		 ratelimit_answer(struct request *, long retry);

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

/* validate.c: pure checks of client input. */
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
	const char	*route;		/* matched pattern, for metrics */
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
	handler_fn	 fn;
};
void		 route_dispatch(struct request *);
/* The method of a REQUEST_METHOD ("GET" ...), METHOD_OTHER if none. */
enum method	 route_method(const char *);
/* Sets r->route to the pattern r->path matches, any method (metrics label). */
void		 route_label(struct request *);

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
/* 0 ok, -1 the error answer is set */
int		 auth_bearer(struct request *, struct claims *);
int		 auth_has_role(const struct claims *, const char *role);
json_t		*auth_roles_json(const char *roles_csv);

/* server.c */
#define SERVER_TICK_MS		200	/* signal wait and deadline watch */
#define SERVER_LINGER_MS	2000	/* closing: wait this long per read */
#define SERVER_ALLOW_MAX	64	/* FCGI_WEB_SERVER_ADDRS entries */
#define SERVER_SIG_WAKE		SIGUSR2	/* interrupts a worker's read */
#define SERVER_EXIT_STUCK	1	/* drain failed: exit, free nothing */
#define SERVER_ID_PREFIX	4	/* random bytes of our request ids */
/* before any thread starts: every thread inherits the blocked signals */
void		 server_signals(sigset_t *);
/* config_path (NULL: the default) is re-read at SIGHUP */
int		 server_run(const struct config *, const char *listen_override,
		    const char *config_path);

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
int		 event_init(const struct config *);
void		 event_shutdown(void);
void		 event_kick(void);	/* wake the relay after a commit */
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
int		 revoke_init(const struct config *);	/* starts the listener */
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
int		 rpc_init(const struct config *);	/* no-op when off */
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
void		 metrics_request(const char *route, int status, long usec);
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
 * mailer.c: one thread sends the queue over SMTP (libcurl), woken by
 * mailer_kick after a commit or every MAILER_POLL_MS; never on a
 * request's path.  Temporary failures are retried, the first after
 * mail_retry_min_seconds, then doubling up to MAILER_BACKOFF_MAX_S, for
 * mail_retry_hours; a 5xx answer drops the mail with an audit row.
 */
#define MAILER_POLL_MS		1000
#define MAILER_BATCH		20
#define MAILER_BACKOFF_MAX_S	3600
#define MAILER_LEASE_SLACK_S	30	/* past smtp_timeout_ms */
int		 mailer_init(const struct config *);
void		 mailer_shutdown(void);
void		 mailer_kick(void);
int		 mailer_probe(char *err, size_t errsz);	/* doctor */

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

#endif /* FA_EXTERN_H */
