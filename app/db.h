/*
 * db.h: the PostgreSQL backend (db.c and db_*.c, private parts in
 * db_int.h); every operation returns DB_* codes.  Included at the end of
 * extern.h.
 */
#ifndef FA_DB_H
#define FA_DB_H

enum db_rc {
	DB_OK = 0,
	DB_ERROR = -1,		/* unreachable, timeout, unexpected: 503 */
	DB_NOTFOUND = 1,
	DB_CONFLICT = 2		/* unique violation */
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
 * one transaction (one statement where possible); an outbox row NOTIFYs
 * DB_NOTIFY_CHANNEL in the same transaction.  db_user_create makes the id and
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
/* One refresh of a batch (auditq.c): in id, a; out rc, *out. */
struct db_refresh {
	const char		*id;
	const struct audit	*a;
	struct user		*out;
	int			 rc;
};
/*
 * db_refresh.c: db_user_refresh of n at once in one transaction; DB_OK once
 * committed, else DB_ERROR and nothing answered (run them one by one).
 */
int		 db_user_refresh_batch(struct db_refresh *, size_t n);
int		 db_user_set_password(const char *id, const char *hash,
		    const struct audit *);	/* audit may be NULL (rehash) */
int		 db_user_set_roles(const char *id, const char *roles_csv,
		    const struct audit *, struct user *out);
int		 db_audit(const struct audit *);
/* Newest first; *entries (caller frees with audit_entries_free, NULL when
 * *count is 0) of the rows matching q. */
int		 db_audit_list(const struct audit_query *,
		    struct audit_entry **entries, size_t *count);
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
/* Delete rows published more than retention seconds ago. */
int		 db_outbox_prune(long retention_seconds);
#define DB_NOTIFY_CHANNEL	"fa_outbox"	/* NOTIFYed with each outbox row */
#define DB_NOTIFY_MAIL		"fa_mail"	/* NOTIFYed with each queued mail */
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
 * users oldest first, *users (caller frees with user_list_free, NULL when
 * *count is 0).
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
int		 db_user_list(long limit, long offset, struct user **users,
		    size_t *count);
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
 * A listener: a connection outside the pool that LISTENs to channels (a
 * NULL-terminated list that must outlive it), so a thread can sleep until
 * a NOTIFY.  db_listen_open makes it (no I/O; NULL only when out of
 * descriptors).  db_listen_wait connects (again) if need be and sleeps:
 * 1 on a notification, a db_listen_wake (any thread may call it) or a new
 * connection (what came before its LISTEN is unknown), 0 when timeout_ms
 * passed; without PostgreSQL it just sleeps.  One waiting thread.
 */
struct db_listen;
struct db_listen *db_listen_open(const char *const *channels);
int		 db_listen_wait(struct db_listen *, long timeout_ms);
void		 db_listen_wake(struct db_listen *);
void		 db_listen_close(struct db_listen *);
#define DB_LISTEN_SQL_MAX	128	/* "LISTEN \"channel\"" */

/* What the backend counts, for metrics.c: connection-level failures and
 * timeouts, and mails queued. */
struct db_stats {
	unsigned long long	 errors;
	unsigned long long	 mail_queued;
};
void		 db_stats(struct db_stats *);

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

#endif /* FA_DB_H */
