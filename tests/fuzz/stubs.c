/*
 * stubs.c: fuzz-only stand-ins for the storage boundary (db.c, store.c,
 * password.c), so route_dispatch runs every handler without PostgreSQL,
 * Redis or Argon2.  The answers come from struct fuzz_backend, which
 * fuzz_request.c fills from the input: backends up or down, the user found
 * or not, the password right or wrong, a rotation's outcome, and so on.
 * Every stub also checks what the handlers hand it against the contract in
 * extern.h (ids are canonical uuids, hashes 64 hex digits, passwords at
 * most 1024 bytes, audit rows well-formed) and aborts when it is broken.
 * The name tables (audit.c, event.c) are the service's own.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

struct fuzz_backend	 stub;

#define STUB_HASH	"$argon2id$v=19$m=19456,t=2,p=1$ZnV6enNhbHQ$ZnV6emhhc2g"
#define STUB_OTHER_SID	"6f1e2d3c-4b5a-4697-8877-665544332211"
#define STUB_CREATED	"2026-01-02T03:04:05.678Z"
#define STUB_GEN	3	/* the user's revocation generation */

/* ---- contract checks ------------------------------------------------ */

static void
need_uuid(const char *what, const char *s)
{
	unsigned char	 b[16];

	if (s == NULL || strlen(s) != FA_UUID_LEN ||
	    uuid_parse(b, s, FA_UUID_LEN) == -1)
		fuzz_fail("%s: not a uuid", what);
}

static void
need_hex(const char *what, const char *s)
{
	if (s == NULL || strlen(s) != FA_HASH_HEX ||
	    strspn(s, "0123456789abcdef") != FA_HASH_HEX)
		fuzz_fail("%s: not %d hex digits", what, FA_HASH_HEX);
}

static void
need_audit(const struct audit *a)
{
	if (a == NULL)
		return;
	if ((int)a->event < 0 || a->event >= AUDIT__MAX)
		fuzz_fail("audit: event %d", (int)a->event);
	if ((int)a->outbox_event < EVENT_NONE ||
	    a->outbox_event >= EVENT__MAX)
		fuzz_fail("audit: outbox event %d", (int)a->outbox_event);
	if (a->outbox_event != EVENT_NONE && a->outbox_data == NULL &&
	    a->event != AUDIT_REGISTER)
		fuzz_fail("audit: outbox event %s without data",
		    audit_outbox_name(a->outbox_event));
	if (a->user_id != NULL)
		need_uuid("audit user_id", a->user_id);
	if (a->session_id != NULL)
		need_uuid("audit session_id", a->session_id);
	if (a->ip != NULL && strlen(a->ip) > FA_IP_MAX)
		fuzz_fail("audit: ip too long");
	if (a->email != NULL)
		(void)strlen(a->email);
	if (a->user_agent != NULL)
		(void)strlen(a->user_agent);
}

static void
fill_user(struct user *u, const char *id, const char *email)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->id, sizeof(u->id), "%s", id != NULL ? id : FUZZ_UID);
	snprintf(u->email, sizeof(u->email), "%s",
	    email != NULL ? email : "user@example.test");
	u->password_hash = xstrdup(stub.stored_hash[0] != '\0' ?
	    stub.stored_hash : STUB_HASH);
	u->first_name = xstrdup("Ada");
	u->last_name = NULL;
	snprintf(u->roles, sizeof(u->roles), "%s",
	    stub.user_admin ? "user,admin" : "user");
	snprintf(u->created_at, sizeof(u->created_at), "%s", STUB_CREATED);
	u->disabled = stub.user_disabled;
	u->mfa_enabled = stub.mfa;
}

/* ---- db.c ------------------------------------------------------------ */

int
db_init(const struct config *c)
{
	(void)c;
	return 0;
}

void
db_stats(struct db_stats *s)
{
	memset(s, 0, sizeof(*s));
}

struct db_listen *
db_listen_open(const char *const *channels)
{
	(void)channels;
	return NULL;
}

int
db_listen_wait(struct db_listen *l, long timeout_ms)
{
	(void)l; (void)timeout_ms;
	return 0;
}

void
db_listen_wake(struct db_listen *l)
{
	(void)l;
}

void
db_listen_close(struct db_listen *l)
{
	(void)l;
}

void
db_shutdown(void)
{
}

int
db_ping(void)
{
	return stub.pg_down ? -1 : 0;
}

int
db_user_create(const char *email, const char *hash, const char *first,
    const char *last, const struct audit *a, struct user *out)
{
	char		 canon[FA_EMAIL_MAX + 1];
	const char	*why;

	if (email_canon(email, strlen(email), canon, &why) == -1 ||
	    strcmp(canon, email) != 0)
		fuzz_fail("db_user_create: email not canonical");
	if (hash == NULL || strncmp(hash, "$argon2id$", 10) != 0)
		fuzz_fail("db_user_create: not an Argon2id hash");
	if (first != NULL && validate_name(first, strlen(first), &why) == -1)
		fuzz_fail("db_user_create: bad first name");
	if (last != NULL && validate_name(last, strlen(last), &why) == -1)
		fuzz_fail("db_user_create: bad last name");
	need_audit(a);
	if (stub.pg_down)
		return DB_ERROR;
	if (stub.email_taken)
		return DB_CONFLICT;
	fill_user(out, NULL, email);
	free(out->first_name);
	/* the real one stores them cleaned */
	out->first_name = text_clean_dup(first, FA_NAME_BYTES);
	out->last_name = text_clean_dup(last, FA_NAME_BYTES);
	snprintf(out->roles, sizeof(out->roles), "user");
	stub.wrote++;
	return DB_OK;
}

int
db_user_by_email(const char *email, struct user *out)
{
	char		 canon[FA_EMAIL_MAX + 1];
	const char	*why;

	if (email_canon(email, strlen(email), canon, &why) == -1 ||
	    strcmp(canon, email) != 0)
		fuzz_fail("db_user_by_email: email not canonical");
	if (stub.pg_down)
		return DB_ERROR;
	if (stub.user_missing)
		return DB_NOTFOUND;
	fill_user(out, NULL, email);
	return DB_OK;
}

int
db_user_by_id(const char *id, struct user *out)
{
	need_uuid("db_user_by_id", id);
	if (stub.pg_down)
		return DB_ERROR;
	if (stub.user_missing)
		return DB_NOTFOUND;
	fill_user(out, id, NULL);
	return DB_OK;
}

int
db_user_refresh(const char *id, const struct audit *a, struct user *out)
{
	need_uuid("db_user_refresh", id);
	need_audit(a);
	if (a->outbox_event != EVENT_NONE)
		fuzz_fail("db_user_refresh: an event on the refresh path");
	if (stub.pg_down)
		return DB_ERROR;
	if (stub.user_missing)
		return DB_NOTFOUND;
	fill_user(out, id, NULL);
	return DB_OK;
}

/* auditq.c: the group commit answers as db_user_refresh does */
int
auditq_user_refresh(const char *id, const struct audit *a, struct user *out)
{
	return db_user_refresh(id, a, out);
}

int
db_user_set_password(const char *id, const char *hash,
    const struct audit *a)
{
	need_uuid("db_user_set_password", id);
	if (hash == NULL || strncmp(hash, "$argon2id$", 10) != 0)
		fuzz_fail("db_user_set_password: not an Argon2id hash");
	need_audit(a);
	if (stub.pg_down)
		return DB_ERROR;
	snprintf(stub.stored_hash, sizeof(stub.stored_hash), "%s", hash);
	stub.wrote++;
	return DB_OK;
}

int
db_user_set_roles(const char *id, const char *roles_csv,
    const struct audit *a, struct user *out)
{
	const char	*p;
	size_t		 len, n = 0;

	need_uuid("db_user_set_roles", id);
	for (p = roles_csv; *p != '\0'; p += len + (p[len] == ',')) {
		len = strcspn(p, ",");
		if (validate_role(p, len) == -1 || ++n > FA_ROLES_MAX)
			fuzz_fail("db_user_set_roles: bad roles");
	}
	need_audit(a);
	if (stub.pg_down)
		return DB_ERROR;
	if (stub.user_missing)
		return DB_NOTFOUND;
	fill_user(out, id, NULL);
	snprintf(out->roles, sizeof(out->roles), "%s", roles_csv);
	stub.wrote++;
	return DB_OK;
}

int
db_audit(const struct audit *a)
{
	need_audit(a);
	return stub.pg_down ? DB_ERROR : DB_OK;
}

int
db_audit_list(const struct audit_query *q, struct audit_entry **entries,
    size_t *count)
{
	*entries = NULL;
	*count = 0;
	if (q->limit < 1 || q->limit > FA_AUDIT_LIMIT_MAX || q->before < 0)
		fuzz_fail("db_audit_list: limit %ld before %lld", q->limit,
		    q->before);
	if (q->user_id != NULL)
		need_uuid("db_audit_list user_id", q->user_id);
	if (stub.pg_down)
		return DB_ERROR;
	*entries = xcalloc(1, sizeof(**entries));
	(*entries)->id = 1;
	snprintf((*entries)->occurred_at, sizeof((*entries)->occurred_at),
	    "%s", STUB_CREATED);
	(*entries)->event = xstrdup("login.success");
	(*entries)->success = 1;
	*count = 1;
	return DB_OK;
}

int
db_user_import(json_t *users, const char *by, int dry_run, json_t **clashes)
{
	(void)users; (void)by; (void)dry_run;
	*clashes = NULL;
	return DB_ERROR;
}

int
db_outbox_begin(long limit, struct db_batch **batch, json_t **rows)
{
	(void)limit;
	*batch = NULL;
	*rows = NULL;
	return stub.pg_down ? DB_ERROR : DB_NOTFOUND;
}

int
db_outbox_done(struct db_batch *b, long long id)
{
	(void)b; (void)id;
	return DB_OK;
}

int
db_outbox_retry(struct db_batch *b, long long id)
{
	(void)b; (void)id;
	return DB_OK;
}

int
db_outbox_end(struct db_batch *b, int commit)
{
	(void)b; (void)commit;
	return DB_OK;
}

int
db_outbox_prune(long retention_seconds)
{
	(void)retention_seconds;
	return DB_OK;
}

int
db_user_list(long limit, long offset, struct user **users, size_t *count)
{
	*users = NULL;
	*count = 0;
	if (limit < 1 || limit > DB_USER_LIST_MAX || offset < 0)
		fuzz_fail("db_user_list: limit %ld offset %ld", limit, offset);
	if (stub.pg_down)
		return DB_ERROR;
	return DB_OK;
}

int
db_user_set_disabled(const char *id, int disabled, const char *by,
    struct user *out)
{
	need_uuid("db_user_set_disabled", id);
	(void)by;
	if (stub.pg_down)
		return DB_ERROR;
	if (stub.user_missing)
		return DB_NOTFOUND;
	fill_user(out, id, NULL);
	out->disabled = disabled != 0;
	stub.wrote++;
	return DB_OK;
}

int
db_outbox_lag(long long *pending, double *lag_seconds)
{
	*pending = 0;
	*lag_seconds = 0;
	return stub.pg_down ? DB_ERROR : DB_OK;
}

int
db_outbox_status(json_t **status)
{
	*status = NULL;
	if (stub.pg_down)
		return DB_ERROR;
	*status = json_pack("{s:I, s:I}", "pending", (json_int_t)0,
	    "published", (json_int_t)0);
	return DB_OK;
}

int
db_outbox_replay(const char *event_id, long long from, long long to,
    long long *count)
{
	(void)event_id; (void)from; (void)to;
	*count = 0;
	return stub.pg_down ? DB_ERROR : DB_NOTFOUND;
}

/* ---- db.c: the account lifecycle ------------------------------------- */

static void
need_once(const struct once_req *q)
{
	if (q->purpose == NULL || q->kind == NULL)
		fuzz_fail("once request: no purpose or kind");
	if (q->hash != NULL)
		need_hex("once hash", q->hash);
	if (q->user_id != NULL)
		need_uuid("once user_id", q->user_id);
	if (q->email == NULL && q->user_id == NULL)
		fuzz_fail("once request: neither email nor user id");
	if (q->ev < EVENT_NONE || q->ev >= EVENT__MAX)
		fuzz_fail("once request: event %d", (int)q->ev);
}

int
db_once_request(const struct once_req *q, char uid[FA_UUID_LEN + 1])
{
	need_once(q);
	uid[0] = '\0';
	if (stub.pg_down)
		return DB_ERROR;
	if (!stub.user_missing)
		snprintf(uid, FA_UUID_LEN + 1, "%s", FUZZ_UID);
	stub.wrote++;
	return DB_OK;
}

int
db_mail_request(const struct once_req *q)
{
	need_once(q);
	if (q->message == NULL)
		fuzz_fail("mail request without a message");
	return stub.pg_down ? DB_ERROR : DB_OK;
}

int
db_once_peek(const char *hash, const char *purposes, char uid[FA_UUID_LEN + 1],
    char purpose[16], char **new_email)
{
	need_hex("peek hash", hash);
	uid[0] = purpose[0] = '\0';
	*new_email = NULL;
	if (stub.pg_down)
		return DB_ERROR;
	if (stub.user_missing)
		return DB_NOTFOUND;
	snprintf(uid, FA_UUID_LEN + 1, "%s", FUZZ_UID);
	snprintf(purpose, 16, "%.*s", (int)strcspn(purposes, ","), purposes);
	return DB_OK;
}

int
db_once_apply(const char *hash, const char *purpose, const char *pwhash,
    const struct audit *a)
{
	need_hex("apply hash", hash);
	need_audit(a);
	if (strcmp(purpose, "reset") == 0 && pwhash == NULL)
		fuzz_fail("reset without a password hash");
	if (stub.pg_down)
		return DB_ERROR;
	stub.wrote++;
	return stub.email_taken ? DB_CONFLICT : DB_OK;
}

int
db_mail_enqueue(const char *kind, const char *rcpt, const char *uid,
    const char *message)
{
	if (kind == NULL || rcpt == NULL || message == NULL)
		fuzz_fail("mail enqueue: missing field");
	if (uid != NULL)
		need_uuid("mail user id", uid);
	return stub.pg_down ? DB_ERROR : DB_OK;
}

int
db_mail_stats(long long *pending, double *oldest_seconds)
{
	*pending = 0;
	*oldest_seconds = 0;
	return stub.pg_down ? DB_ERROR : DB_OK;
}

int
db_user_delete(const char *id, const struct audit *a)
{
	need_uuid("delete id", id);
	need_audit(a);
	if (a != NULL && (a->email != NULL || a->ip != NULL ||
	    a->user_agent != NULL))
		fuzz_fail("user delete: the audit row keeps personal data");
	if (stub.pg_down)
		return DB_ERROR;
	stub.wrote++;
	return DB_OK;
}

/* ---- store.c --------------------------------------------------------- */

int
store_init(const struct config *c)
{
	(void)c;
	return 0;
}

void
store_shutdown(void)
{
}

int
store_ping(void)
{
	return stub.redis_down ? -1 : 0;
}

void
store_stats(struct store_stats *s)
{
	memset(s, 0, sizeof(*s));
}

void
store_on_revoke(store_note_fn fn, void *arg)
{
	(void)fn;
	(void)arg;
}

int
store_session_create(const char *uid, const char *sid, const char *rhash,
    const char *ip, const char *ua, int aal, long ttl, long max,
    char ***revoked, size_t *nrevoked, long long *cutoff)
{
	char	 clean[FA_UA_MAX + 1];

	need_uuid("store_session_create uid", uid);
	need_uuid("store_session_create sid", sid);
	need_hex("store_session_create rhash", rhash);
	if (ip == NULL || strlen(ip) > FA_IP_MAX || ua == NULL ||
	    strlen(ua) > FA_UA_MAX || ttl < 1 || max < 1 ||
	    aal < TOKEN_AAL_MIN || aal > TOKEN_AAL_MAX)
		fuzz_fail("store_session_create: bad ip/ua/aal/ttl/max");
	/* GET /sessions shows it: UTF-8 (json_pack) without controls */
	text_clean(clean, sizeof(clean), ua, strlen(ua));
	if (strcmp(clean, ua) != 0)
		fuzz_fail("store_session_create: user agent not clean");
	*revoked = NULL;
	*nrevoked = 0;
	*cutoff = 0;
	if (stub.redis_down)
		return -1;
	*cutoff = STUB_GEN;
	if (stub.trim) {
		*revoked = xcalloc(2, sizeof(**revoked));
		(*revoked)[0] = xstrdup(STUB_OTHER_SID);
		(*revoked)[1] = xstrdup(FUZZ_SID);
		*nrevoked = 2;
	}
	stub.wrote++;
	return 0;
}

int
store_session_rotate(const char *uid, const char *sid, const char *presented,
    const char *newhash, const char *new_enc, long grace, long ttl,
    enum rotate_result *res, char **child_enc, long long *cutoff, int *aal)
{
	struct refresh	 rt;

	need_uuid("store_session_rotate uid", uid);
	need_uuid("store_session_rotate sid", sid);
	need_hex("store_session_rotate presented", presented);
	need_hex("store_session_rotate new", newhash);
	if (new_enc == NULL || grace < 0 || ttl < 1)
		fuzz_fail("store_session_rotate: bad enc/grace/ttl");
	*child_enc = NULL;
	*cutoff = 0;
	*aal = TOKEN_AAL_MIN;
	if (stub.redis_down)
		return -1;
	*cutoff = STUB_GEN;
	*aal = stub.mfa ? TOKEN_AAL_MAX : TOKEN_AAL_MIN;
	*res = stub.rotate;
	if (stub.rotate == ROTATE_GRACE) {
		if (stub.child_bad)
			*child_enc = xstrdup("00ff");
		else {
			refresh_new(&rt, uid, sid);
			if (refresh_seal(&rt, child_enc) == -1)
				fuzz_fail("refresh_seal failed");
		}
	}
	if (stub.rotate == ROTATE_OK)
		stub.wrote++;
	return 0;
}

int
store_session_revoke(const char *uid, const char *sid, long access_ttl)
{
	need_uuid("store_session_revoke uid", uid);
	need_uuid("store_session_revoke sid", sid);
	if (access_ttl < 1)
		fuzz_fail("store_session_revoke: ttl %ld", access_ttl);
	if (stub.redis_down)
		return -1;
	if (stub.no_session)
		return 1;
	stub.wrote++;
	return 0;
}

int
store_session_revoke_refresh(const char *uid, const char *sid,
    const char *rhash, long access_ttl)
{
	need_uuid("store_session_revoke_refresh uid", uid);
	need_uuid("store_session_revoke_refresh sid", sid);
	need_hex("store_session_revoke_refresh rhash", rhash);
	if (access_ttl < 1)
		fuzz_fail("store_session_revoke_refresh: ttl %ld", access_ttl);
	if (stub.redis_down)
		return -1;
	if (stub.no_session)
		return 1;
	stub.wrote++;
	return 0;
}

int
store_user_revoke_all(const char *uid, const char *keep_sid,
    long access_ttl, long long *cutoff)
{
	need_uuid("store_user_revoke_all uid", uid);
	if (keep_sid != NULL)
		need_uuid("store_user_revoke_all keep", keep_sid);
	if (access_ttl < 1)
		fuzz_fail("store_user_revoke_all: ttl %ld", access_ttl);
	*cutoff = 0;
	if (stub.redis_down)
		return -1;
	*cutoff = STUB_GEN + 1;	/* the generation, raised */
	stub.wrote++;
	return 0;
}

/* As the service: the other session ended, unless none is left. */
int
store_user_revoke_sessions(const char *uid, const char *keep_sid,
    long access_ttl, long long *cutoff, char ***sids, size_t *nsids)
{
	*sids = NULL;
	*nsids = 0;
	if (store_user_revoke_all(uid, keep_sid, access_ttl, cutoff) == -1)
		return -1;
	if (stub.no_session)
		return 0;
	*sids = xcalloc(1, sizeof(**sids));
	(*sids)[0] = xstrdup(STUB_OTHER_SID);
	*nsids = 1;
	return 0;
}

int
store_user_cutoff(const char *uid, long access_ttl, long long *cutoff)
{
	need_uuid("store_user_cutoff uid", uid);
	if (access_ttl < 1)
		fuzz_fail("store_user_cutoff: ttl %ld", access_ttl);
	*cutoff = 0;
	if (stub.redis_down)
		return -1;
	*cutoff = STUB_GEN + 1;
	stub.wrote++;
	return 0;
}

/*
 * Sessions as store.c returns them: the user agent is the request's when it
 * is one that store_session_create accepts (valid UTF-8, cut to FA_UA_MAX
 * bytes), which is what a login would have stored.
 */
int
store_session_list(const char *uid, struct session_info **list, size_t *n)
{
	struct session_info	*s;
	size_t			 i;

	need_uuid("store_session_list uid", uid);
	*list = NULL;
	*n = 0;
	if (stub.redis_down)
		return -1;
	if (stub.nsessions == 0)
		return 0;
	s = xcalloc(stub.nsessions, sizeof(*s));
	for (i = 0; i < stub.nsessions; i++) {
		snprintf(s[i].id, sizeof(s[i].id), "%s",
		    i == 0 ? FUZZ_SID : STUB_OTHER_SID);
		s[i].created_ms = 1767225600000LL + (long long)i;
		s[i].last_used_ms = 1767225600000LL + 1000 * (long long)i;
		snprintf(s[i].ip, sizeof(s[i].ip), "%s", "203.0.113.7");
		if (stub.user_agent != NULL && strlen(stub.user_agent) <=
		    FA_UA_MAX && validate_utf8(stub.user_agent,
		    strlen(stub.user_agent)) == 0)
			snprintf(s[i].user_agent, sizeof(s[i].user_agent),
			    "%s", stub.user_agent);
		else
			snprintf(s[i].user_agent, sizeof(s[i].user_agent),
			    "%s", "legacy/1.0");
	}
	*list = s;
	*n = stub.nsessions;
	return 0;
}

int
store_blacklist(const char *uid, const char *jti, long ttl)
{
	need_uuid("store_blacklist uid", uid);
	if (jti == NULL || *jti == '\0' || strlen(jti) > FA_JTI_LEN ||
	    ttl < 1)
		fuzz_fail("store_blacklist: bad jti or ttl");
	if (stub.redis_down)
		return -1;
	stub.wrote++;
	return 0;
}

int
store_token_revoked(const char *uid, const char *sid, const char *jti,
    long long gen)
{
	need_uuid("store_token_revoked uid", uid);
	need_uuid("store_token_revoked sid", sid);
	if (jti == NULL || *jti == '\0' || gen < 0)
		fuzz_fail("store_token_revoked: bad jti or generation");
	if (stub.redis_down)
		return -1;
	return stub.revoked ? 1 : 0;
}

/* store.c refuses (-1, a 503) keys that do not fit "fa:rl:<key>". */
static int
rate_key_ok(const char *key)
{
	return key != NULL && strlen(key) + sizeof("fa:rl:") <= STORE_KEY_MAX;
}

int
store_rate_hit(const char *key, long limit, long window, long *retry)
{
	if (!rate_key_ok(key) || limit < 1 || window < 1)
		fuzz_fail("store_rate_hit: bad key, limit or window");
	*retry = 0;
	if (stub.redis_down)
		return -1;
	if (stub.limited) {
		*retry = window;
		return 1;
	}
	return 0;
}

int
store_rate_reserve(const struct store_rate *c, size_t n, long window,
    long *retry)
{
	size_t	 i;

	if (n == 0 || n > STORE_RATE_KEYS || window < 1)
		fuzz_fail("store_rate_reserve: bad count or window");
	for (i = 0; i < n; i++)
		if (!rate_key_ok(c[i].key) || c[i].limit < 1)
			fuzz_fail("store_rate_reserve: bad key or limit");
	*retry = 0;
	if (stub.redis_down)
		return -1;
	if (stub.limited) {
		*retry = 42;
		return 1;
	}
	return 0;
}

int
store_rate_release(const struct store_rate *c, size_t n)
{
	size_t	 i;

	if (n == 0 || n > STORE_RATE_KEYS)
		fuzz_fail("store_rate_release: bad count");
	for (i = 0; i < n; i++)
		if (!rate_key_ok(c[i].key))
			fuzz_fail("store_rate_release: bad key");
	return stub.redis_down ? -1 : 0;
}

int
store_publish(const char *channel, const char *msg, const char *stream,
    long maxlen)
{
	(void)channel; (void)msg; (void)stream; (void)maxlen;
	return stub.redis_down ? -1 : 0;
}

int
store_mfa_create(const char *hash, const struct store_mfa *m, long ttl)
{
	need_hex("store_mfa_create hash", hash);
	need_uuid("store_mfa_create uid", m->uid);
	if (ttl < 1 || validate_utf8(m->ua, strlen(m->ua)) == -1)
		fuzz_fail("store_mfa_create: bad ttl or user agent");
	if (stub.redis_down)
		return -1;
	stub.wrote++;
	return 0;
}

int
store_mfa_get(const char *hash, struct store_mfa *m)
{
	need_hex("store_mfa_get hash", hash);
	memset(m, 0, sizeof(*m));
	if (stub.redis_down)
		return -1;
	if (stub.no_session)
		return 1;
	snprintf(m->uid, sizeof(m->uid), "%s", FUZZ_UID);
	snprintf(m->ip, sizeof(m->ip), "%s", "203.0.113.7");
	snprintf(m->ua, sizeof(m->ua), "%s", "fuzz");
	return 0;
}

int
store_mfa_wrong(const char *hash, long max, int *voided)
{
	need_hex("store_mfa_wrong hash", hash);
	if (max < 1)
		fuzz_fail("store_mfa_wrong: max %ld", max);
	*voided = 0;
	return stub.redis_down ? -1 : 0;
}

int
store_mfa_take(const char *hash)
{
	need_hex("store_mfa_take hash", hash);
	if (stub.redis_down)
		return -1;
	return stub.no_session ? 1 : 0;
}

/* ---- db.c: the second factor ---------------------------------------- */

/* A sealed stand-in secret, as db.c would hold it. */
static char *
stub_sealed(void)
{
	unsigned char	 s[OTP_SECRET_BYTES];
	char		*hex = NULL;

	memset(s, 'k', sizeof(s));
	if (otp_seal(&hex, s) == -1)
		fuzz_fail("otp_seal failed");
	return hex;
}

static void
need_sealed(const char *what, const char *hex)
{
	unsigned char	 s[OTP_SECRET_BYTES];

	if (otp_open(s, hex) == -1)
		fuzz_fail("%s: not a sealed secret", what);
}

int
db_mfa_get(const char *uid, struct db_mfa *out)
{
	need_uuid("db_mfa_get", uid);
	memset(out, 0, sizeof(*out));
	if (stub.pg_down)
		return DB_ERROR;
	if (stub.user_missing)
		return DB_NOTFOUND;
	out->enabled = stub.mfa;
	if (stub.mfa)
		out->secret = stub_sealed();
	if (stub.mfa_pending)
		out->pending = stub_sealed();
	return DB_OK;
}

int
db_mfa_pending(const char *uid, const char *sealed)
{
	need_uuid("db_mfa_pending", uid);
	need_sealed("db_mfa_pending", sealed);
	if (stub.pg_down)
		return DB_ERROR;
	if (stub.mfa)
		return DB_CONFLICT;
	stub.wrote++;
	return DB_OK;
}

int
db_mfa_enable(const char *uid, const char *pending_hex, long long step,
    char hashes[][FA_HASH_HEX + 1], size_t n, const struct audit *a)
{
	size_t	 i;

	need_uuid("db_mfa_enable", uid);
	need_sealed("db_mfa_enable", pending_hex);
	need_audit(a);
	if (step < 1 || n != OTP_RECOVERY_CODES)
		fuzz_fail("db_mfa_enable: step %lld, %zu codes", step, n);
	for (i = 0; i < n; i++)
		need_hex("db_mfa_enable hash", hashes[i]);
	if (stub.pg_down)
		return DB_ERROR;
	if (stub.mfa)
		return DB_CONFLICT;
	stub.wrote++;
	return DB_OK;
}

int
db_mfa_use_step(const char *uid, long long step)
{
	need_uuid("db_mfa_use_step", uid);
	if (step < 1)
		fuzz_fail("db_mfa_use_step: step %lld", step);
	if (stub.pg_down)
		return DB_ERROR;
	return stub.pw_mismatch ? DB_NOTFOUND : DB_OK;
}

int
db_mfa_use_recovery(const char *uid, const char *hash)
{
	need_uuid("db_mfa_use_recovery", uid);
	need_hex("db_mfa_use_recovery hash", hash);
	if (stub.pg_down)
		return DB_ERROR;
	return stub.pw_mismatch ? DB_NOTFOUND : DB_OK;
}

int
db_mfa_disable(const char *uid, const struct audit *a)
{
	need_uuid("db_mfa_disable", uid);
	need_audit(a);
	if (stub.pg_down)
		return DB_ERROR;
	if (!stub.mfa)
		return DB_NOTFOUND;
	stub.wrote++;
	return DB_OK;
}

/* ---- password.c ------------------------------------------------------ */

int
password_init(const struct config *c)
{
	(void)c;
	return 0;
}

void
password_shutdown(void)
{
}

int
password_hash(const char *pw, size_t len, char *out)
{
	if (pw == NULL || len > FA_PASSWORD_MAX)
		fuzz_fail("password_hash: %zu bytes", len);
	if (stub.hash_fail)
		return -1;
	snprintf(out, 128, "%s", STUB_HASH);
	return 0;
}

int
password_verify(const char *stored, const char *pw, size_t len, int *rehash)
{
	if (pw == NULL || len > FA_PASSWORD_MAX)
		fuzz_fail("password_verify: %zu bytes (unbounded hashing)",
		    len);
	stub.calls_password++;
	if (rehash != NULL)	/* may be NULL, as in password.c */
		*rehash = 0;
	if (stub.hash_fail)
		return -1;
	if (stored == NULL || stub.pw_mismatch)
		return 1;
	if (rehash != NULL)
		*rehash = stub.rehash;
	return 0;
}

/*
 * The revocation feed: the fuzzers never start the listener (revoke_init),
 * so these only satisfy the linker and say "no subscription".
 */
int
store_sub_open(struct store_sub **sub)
{
	*sub = NULL;
	return -1;
}

int
store_sub_ping(struct store_sub *sub)
{
	(void)sub;
	return -1;
}

int
store_sub_read(struct store_sub *sub, long timeout_ms, store_rev_fn fn,
    void *arg)
{
	(void)sub;
	(void)timeout_ms;
	(void)fn;
	(void)arg;
	return -1;
}

const char *
store_sub_error(const struct store_sub *sub)
{
	(void)sub;
	return "fuzz stub";
}

void
store_sub_close(struct store_sub *sub)
{
	(void)sub;
}

/* The RPC responder: never started by the fuzzers (rpc_init), likewise. */
int
store_rpc_open(struct store_rpc **rpc, const char *channel)
{
	(void)channel;
	*rpc = NULL;
	return -1;
}

int
store_rpc_ping(struct store_rpc *rpc)
{
	(void)rpc;
	return -1;
}

int
store_rpc_read(struct store_rpc *rpc, long timeout_ms, size_t max,
    store_msg_fn fn, void *arg)
{
	(void)rpc;
	(void)timeout_ms;
	(void)max;
	(void)fn;
	(void)arg;
	return -1;
}

int
store_rpc_claim(struct store_rpc *rpc, const char *const *keys, size_t n,
    long ttl, int *won)
{
	(void)rpc;
	(void)keys;
	(void)n;
	(void)ttl;
	(void)won;
	return -1;
}

int
store_rpc_publish(struct store_rpc *rpc, const char *channel,
    char *const *msgs, size_t n)
{
	(void)rpc;
	(void)channel;
	(void)msgs;
	(void)n;
	return -1;
}

const char *
store_rpc_error(const struct store_rpc *rpc)
{
	(void)rpc;
	return "fuzz stub";
}

void
store_rpc_close(struct store_rpc *rpc)
{
	(void)rpc;
}

int
store_revocations_load(store_rev_fn fn, void *arg, char *err, size_t errsz)
{
	(void)fn;
	(void)arg;
	snprintf(err, errsz, "fuzz stub");
	return -1;
}
