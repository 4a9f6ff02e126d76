/*
 * POST /auth/login.  Unknown email and wrong password take the same path
 * through the hash pool (a dummy hash) and give the same 401; the reason is
 * kept in the audit row only.  Success creates a session in Redis, then
 * writes the audit row and the user.logged_in outbox row in one transaction.
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

/* Trim the user's oldest sessions past the limit: audit and event each. */
static void
login_trimmed(struct request *r, const struct user *u, char **sids,
    size_t n)
{
	size_t		 i;

	for (i = 0; i < n; i++) {
		(void)session_revoked(r, u->id, u->email, sids[i],
		    SESSION_END_LIMIT);
		free(sids[i]);
	}
	free(sids);
}

/*
 * The user as it is now that the session holds the revocation generation.
 * The row read before the hash may be stale: a role or password change that
 * ran meanwhile cut off before it committed, so a change committed before
 * this read is in it, and one committed after ends the session by its own
 * cut-off.  1 when the password checked is no longer the user's, or the
 * user was disabled or deleted; -1 PostgreSQL down.
 */
static int
login_recheck(const struct user *u, struct user *now)
{
	int	 rc;

	if ((rc = db_user_by_id(u->id, now)) == DB_ERROR)
		return -1;
	if (rc != DB_OK || now->disabled || now->password_hash == NULL ||
	    u->password_hash == NULL ||
	    strcmp(now->password_hash, u->password_hash) != 0)
		return 1;
	return 0;
}

/*
 * Create the session (ip and ua: the client's at the password step) with
 * its aal and answer with the pair: 0, -1 when a backend failed, 1 when the
 * user changed under the login (login_recheck: nothing was answered).
 */
int
route_login_session(struct request *r, const struct user *u, const char *ip,
    const char *rawua, int aal)
{
	struct user	 now;
	struct refresh	 rt;
	struct audit	 a;
	unsigned char	 sidb[16];
	char		 sid[FA_UUID_LEN + 1], ua[FA_UA_MAX + 1], **trim = NULL;
	size_t		 ntrim = 0;
	long long	 cutoff = 0;
	json_t		*data, *detail;
	int		 rc;

	uuid_random(sidb);
	uuid_format(sid, sidb);
	refresh_new(&rt, u->id, sid);
	text_clean(ua, sizeof(ua), rawua, rawua != NULL ? strlen(rawua) : 0);
	if (store_session_create(u->id, sid, rt.hash, ip, ua, aal,
	    cfg->refresh_ttl, cfg->max_sessions_per_user, &trim, &ntrim,
	    &cutoff) == -1)
		return -1;
	memset(&now, 0, sizeof(now));
	if ((rc = login_recheck(u, &now)) != 0) {
		(void)store_session_revoke(u->id, sid, cfg->access_ttl);
		if (trim != NULL)
			login_trimmed(r, u, trim, ntrim);
		user_free(&now);
		sodium_memzero(&rt, sizeof(rt));
		return rc;
	}
	data = json_pack("{s:s, s:s, s:s, s:s}", "userId", u->id,
	    "sessionId", sid, "ip", ip, "userAgent", ua);
	detail = json_pack("{s:o, s:i}", "amr", token_amr(aal), "aal", aal);
	audit_init(&a, r, AUDIT_LOGIN_SUCCESS, u->id, sid);
	a.email = u->email;
	a.detail = detail;
	a.outbox_event = event_enabled(EVENT_USER_LOGGED_IN);
	a.outbox_data = data;
	rc = db_audit(&a);
	json_decref(data);
	json_decref(detail);
	if (rc != DB_OK) {
		/* not recorded, so not granted */
		(void)store_session_revoke(u->id, sid, cfg->access_ttl);
		if (trim != NULL)
			login_trimmed(r, u, trim, ntrim);
		user_free(&now);
		return -1;
	}
	if (trim != NULL)
		login_trimmed(r, u, trim, ntrim);
	refresh_pair(r, &now, sid, rt.text, cutoff, aal);
	sodium_memzero(&rt, sizeof(rt));
	user_free(&now);
	return 0;
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

void
route_login(struct request *r)
{
	struct ratelimit_guess	 g;
	struct user		 u;
	json_t			*body, *e, *p;
	char			 email[FA_EMAIL_MAX + 1], hash[128];
	const char		*why, *pw;
	size_t			 pwlen;
	long			 retry;
	int			 rc, rehash = 0, found;

	memset(&u, 0, sizeof(u));
	memset(&g, 0, sizeof(g));
	if ((body = request_json(r)) == NULL)
		return;
	e = json_object_get(body, "email");
	p = json_object_get(body, "password");
	if (!json_is_string(e) || !json_is_string(p) ||
	    json_string_length(p) > FA_PASSWORD_MAX) {
		resp_error_fields(r, json_pack("{s:s}",
		    !json_is_string(e) ? "email" : "password",
		    "is required and must be a string of at most 1024 bytes"));
		goto out;
	}
	pw = json_string_value(p);
	pwlen = json_string_length(p);
	/* not an account's form: nothing to count, look up or audit */
	if (email_canon(json_string_value(e), json_string_length(e),
	    email, &why) == -1) {
		resp_error_fields(r, json_pack("{s:s}", "email", why));
		goto out;
	}
	/* reserved before the hash, for known and unknown emails alike */
	if ((rc = ratelimit_guess(&g, email, r->ip, &retry)) != 0) {
		if (rc == 1) {
			metrics_login(0);
			login_audit_failure(r, NULL, email,
			    LOGIN_RATE_LIMITED);
			ratelimit_answer(r, retry);
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
