/*
 * fcgi-auth: the private header.  It reads as a table of contents: one
 * section per source file, in layer order (support, backends, services,
 * HTTP), with every limit and default as a named constant.  The shared
 * types and the small support modules are here; a module with more to
 * declare has a header of its own (conf.h, input.h, otp.h, route.h,
 * session.h, revoke.h, rpc.h, metrics.h, mail.h, token.h, store.h, db.h,
 * server.h, cli.h), included at the end of this one so that every type
 * above is declared, and never included on its own.  A backend's private
 * declarations (db_int.h, store_int.h, server_int.h, token_int.h,
 * cli_int.h) are included only by that module's files.
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
struct config;
struct field_spec;
struct field_value;
struct session_pair;
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
#define FA_HEADER_BYTES		1024	/* their values kept in the request */
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
#define LOG_GATHER_MAX		(64 * 1024)	/* a flush's write, at most */
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

/* jsonw.c: compact JSON text written directly (jansson's escaping). */
struct jsonw {
	char	*buf;
	size_t	 len, cap, max;
	int	 err;		/* too long, or a string not UTF-8 */
	int	 sep;		/* the next value needs a comma */
};
void		 jsonw_init(struct jsonw *, size_t max);
void		 jsonw_open(struct jsonw *, char);	/* '{' or '[' */
void		 jsonw_close(struct jsonw *, char);
void		 jsonw_key(struct jsonw *, const char *);	/* a literal */
void		 jsonw_str(struct jsonw *, const char *, size_t);
void		 jsonw_strz(struct jsonw *, const char *);
void		 jsonw_num(struct jsonw *, long long);
void		 jsonw_lit(struct jsonw *, const char *);
void		 jsonw_raw(struct jsonw *, const char *, size_t);
char		*jsonw_done(struct jsonw *);

/* b64url.c: RFC 4648 section 5, no padding. */
#define B64URL_LEN(n)	(((n) * 4 + 2) / 3)
/* Writes B64URL_LEN(len) chars and a NUL into out (outsz must fit both). */
int		 b64url_encode(char *out, size_t outsz,
		    const unsigned char *in, size_t len);
/* The same, not constant-time: only for bytes that are not secret. */
int		 b64url_encode_public(char *out, size_t outsz,
		    const unsigned char *in, size_t len);
/* Strict: rejects padding, whitespace and non-canonical trailing bits. */
int		 b64url_decode(unsigned char *out, size_t outsz, size_t *outlen,
		    const char *in, size_t len);

/* uuid.c */
void		 uuid_format(char out[FA_UUID_LEN + 1], const unsigned char in[16]);
int		 uuid_parse(unsigned char out[16], const char *in, size_t len);
void		 uuid_random(unsigned char out[16]);	/* v4, libsodium */

/* util.c: time helpers, the request's backend deadline, small parsers. */
long long	 now_ms(void);
long long	 now_us(void);
void		 rfc3339(char out[40], long long ms);
long long	 mono_ms(void);		/* monotonic, for deadlines */
struct timeval	 ms_tv(long long ms);
/* the request's backend deadline: armed at the first backend wait */
void		 deadline_start(void);
void		 deadline_rearm(void);
long long	 deadline_at(long timeout_ms);
/* the decimal number parser and the small-file reader */
int		 num_parse(const char *, long long, long long, long long *);
int		 file_read(const char *, size_t, char **, size_t *);
/* a yes/no word of the NULL-ended lists yes and no: 1, 0, or -1 */
int		 bool_parse(const char *, const char *const *yes,
		    const char *const *no, int *);

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
const char	*audit_outbox_name(enum event_kind); /* "user.registered" */

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
/* The outbox row's message (audit.c's comment); owned, NULL on bad input. */
char		*audit_envelope(enum event_kind, const json_t *data,
		    json_t *extra, const char *evid, long long now_ms);
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
	char		*value;		/* in the request's hbuf, or owned */
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
	char		 hbuf[FA_HEADER_BYTES];	/* values, while they fit */
	size_t		 hbuflen;
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
/* Free a header value unless it lives in r->hbuf. */
void		 request_header_free(struct request *, char *);

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

/* event.c: outbox publisher and relay. */
int		 event_init(void);
void		 event_shutdown(void);
enum event_kind	 event_enabled(enum event_kind);	/* or EVENT_NONE */

/* migrate.c (db_migrate, declared with db.c): the sql/NNN_*.sql files. */
#define MIGRATE_FILE_MAX	(1024 * 1024)	/* bytes of one file */

/*
 * auditq.c: group commit of the refresh path's user lookup + audit row
 * (see auditq.c).  auditq_user_refresh answers as db_user_refresh.
 */
/* one writer: while its batch commits the next one gathers, so batches are
 * larger (64 concurrent refreshes: PostgreSQL 70 us a refresh with one
 * writer, 90 with two, 125 with four; throughput 2-4 % over two) */
#define AUDITQ_WRITERS		1	/* threads, each a transaction at once */
#define AUDITQ_BATCH_MAX	64	/* refreshes in one transaction */
int		 auditq_start(void);
void		 auditq_stop(void);
int		 auditq_user_refresh(const char *id, const struct audit *,
		    struct user *out);

/* Split modules, after every type above (see the top of this file). */
#include "conf.h"
#include "input.h"
#include "otp.h"
#include "route.h"
#include "session.h"
#include "revoke.h"
#include "rpc.h"
#include "metrics.h"
#include "mail.h"
#include "token.h"
#include "store.h"
#include "db.h"
#include "server.h"
#include "cli.h"

#endif /* FA_EXTERN_H */
