/*
 * POST /auth/login.  Unknown email and wrong password take the same path
 * through the hash pool (a dummy hash) and give the same 401; the reason is
 * kept in the audit row only.  Success opens a session (session.c): in
 * Redis, then the audit row and the user.logged_in outbox row in one
 * transaction.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "extern.h"

enum login_fail {
	LOGIN_UNKNOWN_EMAIL,
	LOGIN_BAD_PASSWORD,
	LOGIN_DISABLED,
	LOGIN_RATE_LIMITED,
	LOGIN_CHANGED,		/* password or state changed during the login */
	LOGIN__MAX
};

static const char *const login_reasons[LOGIN__MAX] = {
	"unknown_email", "bad_password", "disabled", "rate_limited",
	"changed_during_login"
};

static void
login_audit_failure(struct request *r, const struct user *u,
    const char *email, enum login_fail why)
{
	struct audit	 a;
	json_t		*detail;

	detail = json_pack("{s:s}", "reason", login_reasons[why]);
	audit_init(&a, r, AUDIT_LOGIN_FAILURE,
	    u != NULL && u->id[0] != '\0' ? u->id : NULL, NULL);
	a.success = 0;
	a.email = email;
	a.detail = detail;
	if (db_audit(&a) != DB_OK)
		log_warn(r->id, "login failure not audited");
	json_decref(detail);
}

/*
 * Open the session (ip and ua: the client's at the password step) with its
 * aal and answer with the pair: 0, -1 when a backend failed, 1 when the
 * user changed under the login (session_open: nothing was answered).
 */
int
route_login_session(struct request *r, const struct user *u, const char *ip,
    const char *rawua, int aal)
{
	struct session_pair	 p;
	int			 rc;

	if ((rc = session_open(r, u, ip, rawua, aal, &p)) == 0)
		resp_pair(r, &p);
	session_pair_free(&p);
	return rc;
}

/*
 * The password was right and the user has MFA: no session yet, but an
 * mfaToken for POST /mfa/verify, bound to the user and to this client's
 * address and agent for the session it may become.  -1: Redis failed.
 */
static int
login_mfa_challenge(struct request *r, const struct user *u)
{
	struct store_mfa	 m;
	char			 text[OTP_MFA_TOKEN_LEN + 1];
	char			 hash[FA_HASH_HEX + 1];

	memset(&m, 0, sizeof(m));
	snprintf(m.uid, sizeof(m.uid), "%s", u->id);
	snprintf(m.ip, sizeof(m.ip), "%s", r->ip);
	text_clean(m.ua, sizeof(m.ua), r->user_agent,
	    r->user_agent != NULL ? strlen(r->user_agent) : 0);
	otp_token_new(text, hash);
	if (hash[0] == '\0' ||
	    store_mfa_create(hash, &m, cfg->mfa_token_ttl) == -1)
		return -1;
	resp_json(r, err_status(ERR_MFA_REQUIRED), json_pack("{s:s, s:s, "
	    "s:s, s:I}", "error", err_code(ERR_MFA_REQUIRED), "message",
	    "A second factor is required: send a code with this mfaToken "
	    "to /mfa/verify.", "mfaToken", text,
	    "expiresIn", (json_int_t)cfg->mfa_token_ttl));
	resp_header(r, "Cache-Control", "no-store");
	sodium_memzero(text, sizeof(text));
	return 0;
}

/*
 * Types first (either field, one reason), then the email's form: a
 * malformed email is not an account's, so nothing is counted, looked up
 * or audited under it.
 */
enum { LOGIN_EMAIL, LOGIN_PASSWORD, LOGIN_FIELDS };
static const struct field_spec login_fields[LOGIN_FIELDS] = {
	[LOGIN_EMAIL] = { "email", FIELD_EMAIL, FIELD_REQUIRED,
	    VALIDATE_WHY_SECRET, VALIDATE_WHY_SECRET },
	[LOGIN_PASSWORD] = { "password", FIELD_SECRET, FIELD_REQUIRED,
	    VALIDATE_WHY_SECRET, VALIDATE_WHY_SECRET },
};

void
route_login(struct request *r)
{
	struct ratelimit_guess	 g;
	struct user		 u;
	struct field_value	 v[LOGIN_FIELDS];
	json_t			*body;
	char			 hash[128];
	const char		*email, *pw;
	size_t			 pwlen;
	long			 retry;
	int			 rc, rehash = 0, found;

	memset(&u, 0, sizeof(u));
	memset(&g, 0, sizeof(g));
	if ((body = request_json(r)) == NULL)
		return;
	if (route_fields(r, body, login_fields, LOGIN_FIELDS, VALIDATE_FIRST,
	    v) == -1)
		goto out;
	email = v[LOGIN_EMAIL].email;
	pw = v[LOGIN_PASSWORD].s;
	pwlen = v[LOGIN_PASSWORD].len;
	/* reserved before the hash, for known and unknown emails alike */
	if ((rc = ratelimit_guess(&g, email, r->ip, &retry)) != 0) {
		if (rc == 1) {
			metrics_login(0);
			login_audit_failure(r, NULL, email,
			    LOGIN_RATE_LIMITED);
			resp_too_many(r, retry);
		} else
			resp_unavailable(r);
		goto out;
	}
	rc = db_user_by_email(email, &u);
	if (rc == DB_ERROR) {
		(void)ratelimit_guess_settle(&g, GUESS_UNCHECKED);
		resp_unavailable(r);
		goto out;
	}
	found = rc == DB_OK;
	rc = password_verify(found ? u.password_hash : NULL, pw, pwlen,
	    &rehash);
	if (rc == -1) {
		(void)ratelimit_guess_settle(&g, GUESS_UNCHECKED);
		resp_error(r, ERR_INTERNAL, NULL);
		goto out;
	}
	if (rc != 0 || !found || u.disabled) {
		metrics_login(0);
		login_audit_failure(r, &u, email, !found ? LOGIN_UNKNOWN_EMAIL :
		    rc != 0 ? LOGIN_BAD_PASSWORD : LOGIN_DISABLED);
		resp_error(r, ERR_INVALID_CREDENTIALS, NULL);
		goto out;
	}
	if (cfg->email_verify_mode == EMAIL_VERIFY_REQUIRED &&
	    !u.email_verified) {
		/* the password was right: no guess to count */
		(void)ratelimit_guess_settle(&g, GUESS_RIGHT);
		metrics_login(0);
		resp_error(r, ERR_EMAIL_NOT_VERIFIED, NULL);
		goto out;
	}
	if (rehash && password_hash(pw, pwlen, hash) == 0) {
		if (db_user_set_password(u.id, hash, NULL) != DB_OK)
			log_warn(r->id, "password rehash not stored");
		else {
			free(u.password_hash);
			u.password_hash = xstrdup(hash);
		}
	}
	/*
	 * Redis down: answer now, not after a second timeout in the session.
	 * With MFA the login is not done: the guess is given back without
	 * clearing the counters, where wrong codes keep counting.
	 */
	if (ratelimit_guess_settle(&g, u.mfa_enabled ? GUESS_UNCHECKED :
	    GUESS_RIGHT) == -1)
		resp_unavailable(r);
	else if (u.mfa_enabled) {
		if (login_mfa_challenge(r, &u) == -1)
			resp_unavailable(r);
	} else if ((rc = route_login_session(r, &u, r->ip, r->user_agent,
	    TOKEN_AAL_MIN)) == -1)
		resp_unavailable(r);
	else if (rc == 1) {
		metrics_login(0);
		login_audit_failure(r, &u, email, LOGIN_CHANGED);
		resp_error(r, ERR_INVALID_CREDENTIALS, NULL);
	} else
		metrics_login(1);
out:
	json_decref(body);
	user_free(&u);
}
