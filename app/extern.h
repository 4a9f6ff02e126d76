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
#define FA_REQID_LEN		16	/* hex chars of a request id */
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
void		 log_set_level(enum log_level);
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
void		 log_request(const char *reqid, const char *method,
		    const char *path, int status, long usec);
/* Copy at most outsz-1 bytes of in, replacing control and non-ASCII bytes. */
void		 log_escape(char *out, size_t outsz, const char *in);

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
	long		 backend_timeout_ms;	/* connect and command */
	/* tokens */
	char		*jwt_alg;	/* HS256 | RS256 | ES256 */
	char		*jwt_secret;	/* secret, >= 32 bytes, always required */
	size_t		 jwt_secret_len;
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
};

extern struct config	*cfg;	/* the running configuration */

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
/* Cross-key checks (secret length, algorithms, ranges). */
int		 config_validate(struct config *, char **errstr);
/* defaults + file (NULL: default path, absent is fine) + env + validate */
int		 config_load(struct config *, const char *path, char **errstr);
void		 config_print(const struct config *, FILE *);	/* secrets masked */
void		 config_free(struct config *);

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
int		 db_user_import(const char *email, const char *hash,
		    const char *first, const char *last, const char *roles_csv);
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
 * sentinel.c: the Redis master by Redis Sentinel.  sentinel_master asks
 * the sentinels of redis_sentinels in turn for redis_master_name and
 * checks with ROLE that the server named is a master; 0 and host/port, or
 * -1 (no sentinel answered with a master), all within backend_timeout_ms.
 * Thread-safe.  sentinel_next parses one "host:port" (or "[v6]:port") off
 * a comma list: 1 one parsed, 0 end, -1 malformed; no I/O.
 * sentinel_check validates both keys (0 ok; -1 and *errstr owned).
 */
#define SENTINEL_MAX		16	/* sentinels in redis_sentinels */
#define SENTINEL_HOST_MAX	256	/* host name, with its NUL */
#define SENTINEL_NAME_MAX	64	/* redis_master_name */
int		 sentinel_master(const struct config *, char *host,
		    size_t hostsz, int *port);
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
		    long ttl, long max, char ***revoked, size_t *nrevoked,
		    long long *cutoff);
/*
 * Rotate presented hash to new hash (with new_enc the encrypted new token)
 * atomically.  On ROTATE_GRACE, *child_enc (owned by caller) holds the
 * encrypted current token.
 */
int		 store_session_rotate(const char *uid, const char *sid,
		    const char *presented, const char *newhash,
		    const char *new_enc, long grace, long ttl,
		    enum rotate_result *res, char **child_enc,
		    long long *cutoff);
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
struct claims {
	char		 sub[FA_UUID_LEN + 1];
	char		 sid[FA_UUID_LEN + 1];
	char		 jti[FA_JTI_LEN + 1];
	char		 email[FA_EMAIL_MAX + 1];
	char		 roles[FA_ROLES_LEN];	/* comma-joined */
	long long	 iat;
	long long	 exp;
	long long	 gen;	/* the user's revocation generation at issue */
};
/*
 * Load keys before any thread starts; errstr (owned) names the key or file.
 * Everything below is then thread-safe.  token_shutdown wipes the keys.
 */
int		 token_init(const struct config *, char **errstr);
void		 token_shutdown(void);
/*
 * Fills jti (random), iat (now, Unix seconds), exp and gen (the user's
 * revocation generation, written as claim "gen" when above 0); *out is
 * owned (free()).
 */
int		 token_issue(struct claims *, long long gen, char **out);
/* 0 valid (claims filled), -1 invalid for any reason. No I/O. */
int		 token_verify(const char *jwt, size_t len, struct claims *);
json_t		*token_jwks(void);	/* new reference, shared: read only */
/* keyed hash of a refresh token: hex into out[FA_HASH_HEX + 1] */
void		 token_refresh_hash(char *out, const unsigned char *tok,
		    size_t len);
/* secretbox under a server key; *out owned (hex) */
int		 token_seal(char **out, const unsigned char *in, size_t len);
int		 token_open(unsigned char *out, size_t outsz, size_t *outlen,
		    const char *hex);
/* alg "rs256" | "es256": DIR/KID.pem (0600), DIR/KID.pub.pem; no overwrite */
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
int		 refresh_seal(const struct refresh *, char **out);
int		 refresh_open(struct refresh *, const char *sealed);
void		 refresh_pair(struct request *, const struct user *,
		    const char *sid, const char *refresh_text, long long gen);

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
void		 ratelimit_answer(struct request *, long retry);

/* tcache.c: verified access tokens, so verify skips the signature. */
#define TCACHE_SLOTS		4096	/* power of two */
#define TCACHE_SHARDS		64
#define TCACHE_HASH		32
int		 tcache_init(void);
void		 tcache_shutdown(void);
/* token_verify() with a cache in front: 0 valid, -1 invalid */
int		 tcache_verify(const char *tok, size_t len, struct claims *);

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
	ERR_TOO_LARGE,
	ERR_MEDIA_TYPE,
	ERR_TOO_MANY,
	ERR_UNAVAILABLE,
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
	char		 id[FA_REQID_LEN + 1];
	char		*body;		/* NUL-terminated, owned */
	size_t		 bodylen;
	int		 body_too_large;
	int		 authorizer;	/* FastCGI Authorizer role */
	const char	*required_role;	/* AUTH_REQUIRED_ROLE param */
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

const char	*request_param(const struct request *, const char *name);
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

/* route.c: method + pattern -> handler. */
typedef void	(*handler_fn)(struct request *);
struct route {
	enum method	 method;
	const char	*pattern;	/* "/sessions/:" : = one segment */
	handler_fn	 fn;
};
void		 route_dispatch(struct request *);
/* Sets r->route to the pattern r->path matches, any method (metrics label). */
void		 route_label(struct request *);

/* route_*.c: one file per group; each handler answers through resp_*. */
void		 route_health(struct request *);
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
void		 route_openapi(struct request *);
/* auth.c: Bearer check shared by routes */
/* 0 live, 1 invalid or revoked, -1 could not check (503) */
int		 auth_check(const char *authorization, struct claims *);
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
/* before any thread starts: every thread inherits the blocked signals */
void		 server_signals(sigset_t *);
/* config_path (NULL: the default) is re-read at SIGHUP */
int		 server_run(const struct config *, const char *listen_override,
		    const char *config_path);

/* event.c: outbox publisher and relay. */
int		 event_init(const struct config *);
void		 event_shutdown(void);
void		 event_kick(void);	/* wake the relay after a commit */
enum event_kind	 event_enabled(enum event_kind);	/* or EVENT_NONE */

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
/* The exposition text, owned by the caller; asks PostgreSQL for the outbox
 * lag (omitted when PostgreSQL is down). */
char		*metrics_render(size_t *len);
#define METRICS_PREFIX		"fcgi_auth_"
#define METRICS_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"

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

#endif /* FA_EXTERN_H */
