/*
 * The account lifecycle (API.md v2): POST /auth/password/forgot and
 * /auth/password/reset, POST /auth/email/verify and /verify/resend, POST
 * /auth/email (change), DELETE /auth/me.
 *
 * Mail requests (forgot, resend, change) never wait for SMTP: the mailer
 * thread sends the sealed message.  forgot and resend do the same work for
 * a known and an unknown email: a token, the message rendered and sealed,
 * one row handed to the mailer thread, which looks the user up and stores
 * the token, the mail, the audit row and the event, or only the audit row
 * (db_mail_request); they are limited per email and per network whether
 * or not the address exists, and answer 202 {} either way.
 *
 * A token is applied in two steps: a look-up that names its user, the
 * revocations in Redis (safe to repeat), then one statement that consumes
 * the token and applies it, so a token is burnt only with its effect.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "extern.h"

static const struct {
	enum mail_kind	 kind;
	const char	*purpose;
	enum audit_event audit;
	enum event_kind	 event;
} requests[] = {
	{ MAIL_RESET, "reset", AUDIT_RESET_REQUESTED,
	    EVENT_PASSWORD_RESET_REQUESTED },
	{ MAIL_VERIFY, "verify", AUDIT_VERIFY_REQUESTED, EVENT_NONE },
	{ MAIL_EMAIL_CHANGE, "email_change", AUDIT_EMAIL_CHANGE_REQUESTED,
	    EVENT_NONE },
};

static long
account_ttl(enum mail_kind k)
{
	switch (k) {
	case MAIL_RESET:
		return cfg->reset_ttl;
	case MAIL_VERIFY:
		return cfg->verify_ttl;
	default:
		return cfg->email_change_ttl;
	}
}

/*
 * Issue a token of kind i for the user of email (or uid), mail it to rcpt
 * (NULL: the user's address) and write the audit row; with send 0 (no
 * mailer, verification off) only the audit row.  The same work whether the
 * user exists or not.  0, or -1 when PostgreSQL failed.
 */
static int
account_request(struct request *r, size_t i, const char *email,
    const char *uid, const char *rcpt, const char *new_email, int send,
    int unverified_only)
{
	struct once_req	 q;
	struct once	 o;
	struct mail_var	 v[4];
	char		 ttl[ACCOUNT_TTL_TEXT], found[FA_UUID_LEN + 1];
	char		*link = NULL, *msg = NULL, *sealed = NULL;
	int		 rc;

	once_new(&o);
	link = mail_link(requests[i].kind, o.text);
	snprintf(ttl, sizeof(ttl), "%ld", account_ttl(requests[i].kind) / 60);
	v[0] = (struct mail_var){ "link", link };
	v[1] = (struct mail_var){ "email", rcpt != NULL ? rcpt : email };
	v[2] = (struct mail_var){ "ttl_minutes", ttl };
	v[3] = (struct mail_var){ "new_email", new_email };
	if (send && (msg = mail_build(requests[i].kind,
	    rcpt != NULL ? rcpt : email, v, 4)) != NULL &&
	    once_seal(&sealed, msg, strlen(msg)) == -1)
		send = 0;
	memset(&q, 0, sizeof(q));
	q.purpose = requests[i].purpose;
	q.email = email;
	q.user_id = uid;
	q.unverified_only = unverified_only;
	q.hash = sealed != NULL ? o.hash : NULL;
	q.ttl = account_ttl(requests[i].kind);
	q.new_email = new_email;
	q.kind = mail_kind_name(requests[i].kind);
	q.rcpt = rcpt;
	q.message = sealed;
	q.a_event = audit_event_name(requests[i].audit);
	q.ip = r->ip;
	q.user_agent = r->user_agent;
	q.ev = event_enabled(requests[i].event);
	/* by email (forgot, resend): the mailer thread looks the user up */
	if (email != NULL && sealed != NULL)
		rc = db_mail_request(&q);
	else
		rc = db_once_request(&q, found);
	if (msg != NULL) {
		sodium_memzero(msg, strlen(msg));
		free(msg);
	}
	if (link != NULL) {
		sodium_memzero(link, strlen(link));
		free(link);
	}
	free(sealed);
	sodium_memzero(&o, sizeof(o));
	return rc == DB_OK ? 0 : -1;
}

static const struct field_spec account_new_password = { "newPassword",
    FIELD_PASSWORD, FIELD_REQUIRED, NULL, VALIDATE_WHY_REQUIRED };
/* a password to check, as at login */
static const struct field_spec account_password_field = { "password",
    FIELD_SECRET, FIELD_REQUIRED, VALIDATE_WHY_SECRET, VALIDATE_WHY_SECRET };

/* The canonical email of field, or -1 with the 400 answered. */
static int
account_email(struct request *r, json_t *body, const char *field,
    char out[FA_EMAIL_MAX + 1])
{
	const struct field_spec	 f = { field, FIELD_EMAIL, FIELD_REQUIRED,
	    NULL, VALIDATE_WHY_REQUIRED };
	struct field_value	 v;

	if (route_fields(r, body, &f, 1, 0, &v) == -1)
		return -1;
	memcpy(out, v.email, sizeof(v.email));
	return 0;
}

/* The token of the body, or -1 with the 400 answered. */
static int
account_token(struct request *r, json_t *body, struct once *o)
{
	json_t	*t = json_object_get(body, "token");

	if (!json_is_string(t) || once_parse(o, json_string_value(t),
	    json_string_length(t)) == -1) {
		resp_error_fields(r, json_pack("{s:s}", "token",
		    "is required and must be a token from the mail"));
		return -1;
	}
	return 0;
}

/* forgot and resend: 202 for any well-formed email, known or not. */
static void
account_mail_route(struct request *r, size_t i, int send, int unverified)
{
	json_t	*body;
	char	 email[FA_EMAIL_MAX + 1];
	long	 retry;
	int	 rc;

	if ((body = request_json(r)) == NULL)
		return;
	if (account_email(r, body, "email", email) == -1)
		goto out;
	if ((rc = ratelimit_mail(email, r->ip, &retry)) != 0) {
		if (rc == 1)
			resp_too_many(r, retry);
		else
			resp_unavailable(r);
		goto out;
	}
	if (account_request(r, i, email, NULL, NULL, NULL, send,
	    unverified) == -1) {
		resp_unavailable(r);
		goto out;
	}
	resp_json(r, 202, json_object());
out:
	json_decref(body);
}

void
route_password_forgot(struct request *r)
{
	account_mail_route(r, 0, mail_enabled(), 0);
}

void
route_email_verify_resend(struct request *r)
{
	account_mail_route(r, 1, mail_enabled() &&
	    cfg->email_verify_mode != EMAIL_VERIFY_OFF, 1);
}

void
account_register_mail(struct request *r, const char *email)
{
	if (!mail_enabled() || cfg->email_verify_mode == EMAIL_VERIFY_OFF)
		return;
	if (account_request(r, 1, email, NULL, NULL, NULL, 1, 1) == -1)
		log_warn(r->id, "register: verification mail not queued");
}

/* session.revoked for each session that ended, with reason. */
static void
account_sessions_ended(struct request *r, const char *uid,
    const struct session_info *s, size_t n, const char *reason)
{
	struct audit	 a;
	json_t		*data, *detail;
	size_t		 i;

	for (i = 0; i < n; i++) {
		detail = json_pack("{s:s}", "reason", reason);
		data = json_pack("{s:s, s:s, s:s}", "userId", uid,
		    "sessionId", s[i].id, "reason", reason);
		audit_init(&a, NULL, AUDIT_SESSION_REVOKE, uid, s[i].id);
		a.ip = r->ip;
		a.detail = detail;
		a.outbox_event = event_enabled(EVENT_SESSION_REVOKED);
		a.outbox_data = data;
		if (db_audit(&a) != DB_OK)
			log_warn(r->id, "session end not audited");
		json_decref(detail);
		json_decref(data);
	}
}

/* Revoke every session of uid (and raise its generation), listing them. */
static int
account_revoke_all(const char *uid, struct session_info **s, size_t *n)
{
	long long	 cutoff;

	*s = NULL;
	*n = 0;
	if (store_session_list(uid, s, n) == -1)
		return -1;
	return store_user_revoke_all(uid, NULL, cfg->access_ttl, &cutoff);
}

void
route_password_reset(struct request *r)
{
	struct session_info	*s = NULL;
	struct once		 o;
	struct audit		 a;
	struct field_value	 pw;
	json_t			*body, *data = NULL;
	char			 uid[FA_UUID_LEN + 1], purpose[16], hash[128];
	char			*ne = NULL;
	size_t			 n = 0;
	int			 rc;

	if ((body = request_json(r)) == NULL)
		return;
	if (account_token(r, body, &o) == -1)
		goto out;
	if (route_fields(r, body, &account_new_password, 1, 0, &pw) == -1)
		goto out;
	if ((rc = db_once_peek(o.hash, "reset", uid, purpose, &ne)) != DB_OK) {
		if (rc == DB_NOTFOUND)
			resp_error(r, ERR_INVALID_TOKEN, NULL);
		else
			resp_unavailable(r);
		goto out;
	}
	if (password_hash(pw.s, pw.len, hash) == -1) {
		resp_error(r, ERR_INTERNAL, NULL);
		goto out;
	}
	/* revoke first: a retry is safe, a live session after a reset not */
	if (account_revoke_all(uid, &s, &n) == -1) {
		resp_unavailable(r);
		goto out;
	}
	data = json_pack("{s:s}", "userId", uid);
	audit_init(&a, r, AUDIT_PASSWORD_RESET, uid, NULL);
	a.outbox_event = event_enabled(EVENT_PASSWORD_RESET);
	a.outbox_data = data;
	if ((rc = db_once_apply(o.hash, "reset", hash, &a)) != DB_OK) {
		if (rc == DB_NOTFOUND)
			resp_error(r, ERR_INVALID_TOKEN, NULL);
		else
			resp_unavailable(r);
		goto out;
	}
	account_sessions_ended(r, uid, s, n, "password_reset");
	resp_empty(r, 204);
out:
	sodium_memzero(&o, sizeof(o));
	free(s);
	free(ne);
	json_decref(data);
	json_decref(body);
}

void
route_email_verify(struct request *r)
{
	struct once	 o;
	struct user	 u;
	struct audit	 a;
	json_t		*body, *data = NULL;
	char		 uid[FA_UUID_LEN + 1], purpose[16];
	char		*ne = NULL;
	long long	 cutoff;
	int		 rc, change;

	memset(&u, 0, sizeof(u));
	if ((body = request_json(r)) == NULL)
		return;
	if (account_token(r, body, &o) == -1)
		goto out;
	rc = db_once_peek(o.hash, "verify,email_change", uid, purpose, &ne);
	if (rc == DB_OK)
		rc = db_user_by_id(uid, &u);
	if (rc != DB_OK) {
		if (rc == DB_NOTFOUND)
			resp_error(r, ERR_INVALID_TOKEN, NULL);
		else
			resp_unavailable(r);
		goto out;
	}
	change = strcmp(purpose, "email_change") == 0;
	/* tokens issued before carry the old email: cut them off first */
	if (change && store_user_cutoff(uid, cfg->access_ttl, &cutoff) == -1) {
		resp_unavailable(r);
		goto out;
	}
	if (change)
		data = json_pack("{s:s, s:s, s:s?}", "userId", uid,
		    "oldEmail", u.email, "newEmail", ne);
	else
		data = json_pack("{s:s, s:s}", "userId", uid, "email",
		    u.email);
	audit_init(&a, r, change ? AUDIT_EMAIL_CHANGED : AUDIT_EMAIL_VERIFIED,
	    uid, NULL);
	a.email = change ? ne : u.email;
	a.outbox_event = event_enabled(change ? EVENT_EMAIL_CHANGED :
	    EVENT_EMAIL_VERIFIED);
	a.outbox_data = data;
	if ((rc = db_once_apply(o.hash, purpose, NULL, &a)) != DB_OK) {
		if (rc == DB_CONFLICT)
			resp_error(r, ERR_EMAIL_TAKEN, NULL);
		else if (rc == DB_NOTFOUND)
			resp_error(r, ERR_INVALID_TOKEN, NULL);
		else
			resp_unavailable(r);
		goto out;
	}
	resp_empty(r, 204);
out:
	sodium_memzero(&o, sizeof(o));
	free(ne);
	json_decref(data);
	json_decref(body);
	user_free(&u);
}

/*
 * The password check of POST /auth/email and DELETE /auth/me: a guess,
 * reserved before the hash like a login's.  0 right; -1 answered.
 */
static int
account_password(struct request *r, const struct user *u, json_t *pw)
{
	struct ratelimit_guess	 g;
	long			 retry;
	int			 rc, rehash;

	if ((rc = ratelimit_guess(&g, u->email, r->ip, &retry)) != 0) {
		if (rc == 1)
			resp_too_many(r, retry);
		else
			resp_unavailable(r);
		return -1;
	}
	rc = password_verify(u->password_hash, json_string_value(pw),
	    json_string_length(pw), &rehash);
	if (rc == 1) {
		resp_error(r, ERR_INVALID_CREDENTIALS,
		    "The password is wrong.");
		return -1;
	}
	if (rc != 0) {
		(void)ratelimit_guess_settle(&g, GUESS_UNCHECKED);
		resp_error(r, ERR_INTERNAL, NULL);
		return -1;
	}
	if (ratelimit_guess_settle(&g, GUESS_RIGHT) == -1) {
		resp_unavailable(r);
		return -1;
	}
	return 0;
}

/* Bearer, body and the caller's user row; -1 answered. */
static int
account_caller(struct request *r, struct claims *c, json_t **body,
    json_t **pw, struct user *u)
{
	struct field_value	 v;
	int			 rc;

	*body = NULL;
	if (route_bearer(r, c) == -1)
		return -1;
	if ((*body = request_json(r)) == NULL)
		return -1;
	if (route_fields(r, *body, &account_password_field, 1, 0,
	    &v) == -1)
		return -1;
	*pw = json_object_get(*body, "password");
	if ((rc = db_user_by_id(c->sub, u)) != DB_OK) {
		if (rc == DB_NOTFOUND)
			resp_error(r, ERR_INVALID_TOKEN, NULL);
		else
			resp_unavailable(r);
		return -1;
	}
	return 0;
}

void
route_email_change(struct request *r)
{
	struct claims	 c;
	struct user	 u, other;
	struct mail_var	 v[2];
	json_t		*body = NULL, *pw;
	char		 email[FA_EMAIL_MAX + 1], *msg = NULL, *sealed = NULL;
	long		 retry;
	int		 rc;

	memset(&u, 0, sizeof(u));
	memset(&other, 0, sizeof(other));
	if (account_caller(r, &c, &body, &pw, &u) == -1)
		goto out;
	if (account_email(r, body, "newEmail", email) == -1)
		goto out;
	if (strcmp(email, u.email) == 0) {
		resp_error_fields(r, json_pack("{s:s}", "newEmail",
		    "is the current email"));
		goto out;
	}
	if (account_password(r, &u, pw) == -1)
		goto out;
	if ((rc = db_user_by_email(email, &other)) != DB_NOTFOUND) {
		if (rc == DB_OK)
			resp_error(r, ERR_EMAIL_TAKEN, NULL);
		else
			resp_unavailable(r);
		goto out;
	}
	/* a victim's inbox is capped like forgot's */
	if ((rc = ratelimit_mail(email, r->ip, &retry)) != 0) {
		if (rc == 1)
			resp_too_many(r, retry);
		else
			resp_unavailable(r);
		goto out;
	}
	if (account_request(r, 2, NULL, u.id, email, email, mail_enabled(),
	    0) == -1) {
		resp_unavailable(r);
		goto out;
	}
	v[0] = (struct mail_var){ "email", u.email };
	v[1] = (struct mail_var){ "new_email", email };
	if ((msg = mail_build(MAIL_EMAIL_CHANGED, u.email, v, 2)) != NULL &&
	    (once_seal(&sealed, msg, strlen(msg)) == -1 ||
	    db_mail_enqueue(mail_kind_name(MAIL_EMAIL_CHANGED), u.email, u.id,
	    sealed) != DB_OK))
		log_warn(r->id, "email change: notice to the old address not "
		    "queued");
	resp_json(r, 202, json_object());
out:
	free(msg);
	free(sealed);
	json_decref(body);
	user_free(&u);
	user_free(&other);
}

void
route_me_delete(struct request *r)
{
	struct session_info	*s = NULL;
	struct claims		 c;
	struct user		 u;
	struct audit		 a;
	json_t			*body = NULL, *pw, *data = NULL;
	size_t			 n = 0;
	int			 rc;

	memset(&u, 0, sizeof(u));
	if (account_caller(r, &c, &body, &pw, &u) == -1)
		goto out;
	if (account_password(r, &u, pw) == -1)
		goto out;
	if (account_revoke_all(u.id, &s, &n) == -1) {
		resp_unavailable(r);
		goto out;
	}
	/* their rows are erased with the user's below */
	account_sessions_ended(r, u.id, s, n, "deleted");
	data = json_pack("{s:s}", "userId", u.id);
	audit_init(&a, NULL, AUDIT_USER_DELETE, u.id, c.sid);
	a.outbox_event = event_enabled(EVENT_USER_DELETED);
	a.outbox_data = data;
	if ((rc = db_user_delete(u.id, &a)) != DB_OK) {
		if (rc == DB_NOTFOUND)
			resp_error(r, ERR_INVALID_TOKEN, NULL);
		else
			resp_unavailable(r);
		goto out;
	}
	resp_empty(r, 204);
out:
	free(s);
	json_decref(data);
	json_decref(body);
	user_free(&u);
}
