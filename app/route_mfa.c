/*
 * The second factor (TOTP): enrol (POST /mfa/totp), the QR code of the
 * pending secret, confirm, disable (DELETE /mfa/totp), and the second step
 * of a login (POST /mfa/verify, with the mfaToken login answered).
 *
 * A code or recovery code at verify and disable is a guess like a
 * password: reserved in the account's counters before it is checked, so N
 * parallel guesses past the limit are 429 unchecked.  A code is accepted
 * once per user: the step it matched must be above the last one used, set
 * by a compare-and-set in PostgreSQL, so of two parallel submissions of one
 * code exactly one wins.  A recovery code is marked used the same way.
 * Confirm takes no guess: the caller made the secret it confirms.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "extern.h"

/* A code or a recovery code, as the body gave it. */
struct mfa_proof {
	int		 recovery;
	const char	*v;
	size_t		 len;
};

static const char *
mfa_issuer(void)
{
	return cfg->mfa_issuer != NULL && *cfg->mfa_issuer != '\0' ?
	    cfg->mfa_issuer : cfg->jwt_issuer;
}

/*
 * The Bearer's user, live and enabled, into u (the caller frees it): 0, or
 * -1 with the answer set and nothing held.
 */
static int
mfa_user(struct request *r, struct claims *c, struct user *u)
{
	int	 rc;

	memset(u, 0, sizeof(*u));
	if (route_bearer(r, c) == -1)
		return -1;
	if ((rc = db_user_by_id(c->sub, u)) == DB_OK && !u->disabled)
		return 0;
	user_free(u);
	if (rc == DB_ERROR)
		resp_unavailable(r);
	else
		resp_error(r, ERR_INVALID_TOKEN, NULL);
	return -1;
}

int
route_mfa_step_up(struct request *r, const struct claims *c,
    const struct user *u)
{
	if (!u->mfa_enabled || c->aal >= TOKEN_AAL_MFA)
		return 0;
	resp_error(r, ERR_FORBIDDEN, "This change needs a second factor: "
	    "sign in again with your authenticator code first.");
	return -1;
}

/*
 * Exactly one of "code" and "recoveryCode" (recovery only if allowed), a
 * string: 0, or -1 with the 400 set.
 */
static int
mfa_proof_parse(struct request *r, json_t *body, struct mfa_proof *p,
    int recovery_ok)
{
	json_t	*code, *rec;

	code = json_object_get(body, "code");
	rec = recovery_ok ? json_object_get(body, "recoveryCode") : NULL;
	if ((code == NULL) == (rec == NULL) ||
	    !json_is_string(code != NULL ? code : rec)) {
		resp_error_fields(r, json_pack("{s:s}", "code", recovery_ok ?
		    "exactly one of code and recoveryCode is required, a "
		    "string" : "is required, a string of 6 digits"));
		return -1;
	}
	p->recovery = rec != NULL;
	p->v = json_string_value(code != NULL ? code : rec);
	p->len = json_string_length(code != NULL ? code : rec);
	return 0;
}

/*
 * Tri-state: 0 the proof is right and now used up, 1 wrong, malformed or
 * already used, -1 could not check.
 */
static int
mfa_proof_check(const struct user *u, const struct mfa_proof *p)
{
	struct db_mfa	 m;
	unsigned char	 secret[OTP_SECRET_BYTES];
	char		 hash[FA_HASH_HEX + 1];
	long long	 step;
	int		 rc;

	if (p->recovery) {
		if (otp_recovery_hash(hash, u->id, p->v, p->len) == -1)
			return 1;
		rc = db_mfa_use_recovery(u->id, hash);
		return rc == DB_OK ? 0 : rc == DB_NOTFOUND ? 1 : -1;
	}
	if ((rc = db_mfa_get(u->id, &m)) != DB_OK)
		return rc == DB_NOTFOUND ? 1 : -1;
	rc = -1;
	if (!m.enabled || m.secret == NULL) {
		rc = 1;
		goto out;
	}
	if (otp_open(secret, m.secret) == -1) {
		log_error(NULL, "mfa: a stored secret does not open "
		    "(jwt_secret changed?)");
		goto out;
	}
	rc = otp_check(secret, p->v, p->len, now_ms() / 1000, &step);
	if (rc == 0) {
		rc = db_mfa_use_step(u->id, step);
		rc = rc == DB_OK ? 0 : rc == DB_NOTFOUND ? 1 : -1;
	}
out:
	sodium_memzero(secret, sizeof(secret));
	db_mfa_free(&m);
	return rc;
}

static void
mfa_audit_failure(struct request *r, const struct user *u, const char *sid,
    const struct mfa_proof *p)
{
	struct audit	 a;
	json_t		*detail;

	detail = json_pack("{s:s}", "method", p->recovery ? "recovery" :
	    "totp");
	audit_init(&a, r, AUDIT_MFA_FAILURE, u->id, sid);
	a.success = 0;
	a.email = u->email;
	a.detail = detail;
	if (db_audit(&a) != DB_OK)
		log_warn(r->id, "mfa failure not audited");
	json_decref(detail);
}

/*
 * The proof as a guess: reserved, checked, settled.  0 right; 1 wrong
 * (401 invalid_code set, audited); -1 another answer set (429, 503).
 */
static int
mfa_guess(struct request *r, const struct user *u, const char *sid,
    const struct mfa_proof *p)
{
	struct ratelimit_guess	 g;
	long			 retry;
	int			 rc;

	if ((rc = ratelimit_guess(&g, u->email, r->ip, &retry)) != 0) {
		if (rc == 1)
			resp_too_many(r, retry);
		else
			resp_unavailable(r);
		return -1;
	}
	switch (mfa_proof_check(u, p)) {
	case 0:
		if (ratelimit_guess_settle(&g, GUESS_RIGHT) == -1) {
			resp_unavailable(r);
			return -1;
		}
		return 0;
	case 1:
		mfa_audit_failure(r, u, sid, p);
		resp_error(r, ERR_INVALID_CODE, NULL);
		return 1;
	default:
		(void)ratelimit_guess_settle(&g, GUESS_UNCHECKED);
		resp_unavailable(r);
		return -1;
	}
}

/* POST /mfa/totp: a new pending secret (replacing one not confirmed). */
void
route_mfa_totp(struct request *r)
{
	struct claims	 c;
	struct user	 u;
	unsigned char	 secret[OTP_SECRET_BYTES];
	char		 b32[OTP_SECRET_B32 + 1], *sealed = NULL, *uri = NULL;
	int		 rc;

	if (mfa_user(r, &c, &u) == -1)
		return;
	if (u.mfa_enabled) {
		resp_error(r, ERR_MFA_ENABLED, NULL);
		goto out;
	}
	otp_secret_new(secret);
	if (otp_base32(b32, secret) == -1 || otp_seal(&sealed, secret) == -1) {
		resp_error(r, ERR_INTERNAL, NULL);
		goto out;
	}
	if ((rc = db_mfa_pending(u.id, sealed)) != DB_OK) {
		if (rc == DB_CONFLICT)
			resp_error(r, ERR_MFA_ENABLED, NULL);
		else if (rc == DB_NOTFOUND)
			resp_error(r, ERR_INVALID_TOKEN, NULL);
		else
			resp_unavailable(r);
		goto out;
	}
	otp_uri(&uri, mfa_issuer(), u.email, b32);
	resp_json(r, 200, json_pack("{s:s, s:s}", "secret", b32,
	    "otpauthUri", uri));
	resp_header(r, "Cache-Control", "no-store");
out:
	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(b32, sizeof(b32));
	free(sealed);
	free(uri);
	user_free(&u);
}

/*
 * The pending secret of u, opened: 0, or -1 with the answer set (none
 * pending: 404 for the QR code, 409 mfa_not_enabled for confirm).
 */
static int
mfa_pending(struct request *r, const struct user *u,
    unsigned char secret[OTP_SECRET_BYTES], char **sealed, enum err none)
{
	struct db_mfa	 m;
	int		 rc;

	*sealed = NULL;
	if ((rc = db_mfa_get(u->id, &m)) != DB_OK) {
		if (rc == DB_NOTFOUND)
			resp_error(r, ERR_INVALID_TOKEN, NULL);
		else
			resp_unavailable(r);
		return -1;
	}
	rc = -1;
	if (m.enabled)
		resp_error(r, ERR_MFA_ENABLED, NULL);
	else if (m.pending == NULL)
		resp_error(r, none, "No secret is pending: POST /mfa/totp "
		    "first.");
	else if (otp_open(secret, m.pending) == -1) {
		log_error(r->id, "mfa: a pending secret does not open");
		resp_error(r, ERR_INTERNAL, NULL);
	} else {
		*sealed = m.pending;
		m.pending = NULL;
		rc = 0;
	}
	db_mfa_free(&m);
	return rc;
}

/* GET /mfa/totp/qr.svg: the QR code of the pending secret's URI. */
void
route_mfa_qr(struct request *r)
{
	struct claims	 c;
	struct user	 u;
	unsigned char	 secret[OTP_SECRET_BYTES];
	char		 b32[OTP_SECRET_B32 + 1], *sealed = NULL, *uri = NULL;
	char		*svg = NULL;
	size_t		 len;

	if (mfa_user(r, &c, &u) == -1)
		return;
	if (mfa_pending(r, &u, secret, &sealed, ERR_NOT_FOUND) == -1)
		goto out;
	if (otp_base32(b32, secret) == -1 || otp_uri(&uri, mfa_issuer(),
	    u.email, b32) == -1 || otp_qr_svg(uri, &svg, &len) == -1) {
		resp_error(r, ERR_INTERNAL, NULL);
		goto out;
	}
	free(r->out);
	r->out = svg;
	r->outlen = len;
	r->status = 200;
	svg = NULL;
	resp_header(r, "Content-Type", "image/svg+xml");
	resp_header(r, "Cache-Control", "no-store");
out:
	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(b32, sizeof(b32));
	free(sealed);
	free(uri);
	free(svg);
	user_free(&u);
}

/* POST /mfa/totp/confirm {"code"}: MFA on, recovery codes shown once. */
void
route_mfa_confirm(struct request *r)
{
	struct mfa_proof p;
	struct claims	 c;
	struct user	 u;
	struct audit	 a;
	unsigned char	 secret[OTP_SECRET_BYTES];
	char		 codes[OTP_RECOVERY_CODES][OTP_RECOVERY_LEN + 1];
	char		 hashes[OTP_RECOVERY_CODES][FA_HASH_HEX + 1];
	char		*sealed = NULL;
	json_t		*body = NULL, *list = NULL, *data = NULL;
	long long	 step;
	size_t		 i;
	int		 rc;

	memset(secret, 0, sizeof(secret));
	if (mfa_user(r, &c, &u) == -1)
		return;
	if ((body = request_json(r)) == NULL ||
	    mfa_proof_parse(r, body, &p, 0) == -1 ||
	    mfa_pending(r, &u, secret, &sealed, ERR_MFA_NOT_ENABLED) == -1)
		goto out;
	if ((rc = otp_check(secret, p.v, p.len, now_ms() / 1000,
	    &step)) != 0) {
		if (rc == 1)
			resp_error(r, ERR_INVALID_CODE, NULL);
		else
			resp_error(r, ERR_INTERNAL, NULL);
		goto out;
	}
	otp_recovery_new(codes, hashes, u.id);
	data = json_pack("{s:s}", "userId", u.id);
	audit_init(&a, r, AUDIT_MFA_ENABLE, u.id, c.sid);
	a.email = u.email;
	a.outbox_event = event_enabled(EVENT_USER_MFA_ENABLED);
	a.outbox_data = data;
	if ((rc = db_mfa_enable(u.id, sealed, step, hashes,
	    OTP_RECOVERY_CODES, &a)) != DB_OK) {
		if (rc == DB_CONFLICT)	/* enabled, or re-enrolled, meanwhile */
			resp_error(r, ERR_MFA_ENABLED, NULL);
		else
			resp_unavailable(r);
		goto out;
	}
	list = json_array();
	for (i = 0; i < OTP_RECOVERY_CODES; i++)
		json_array_append_new(list, json_string(codes[i]));
	resp_json(r, 200, json_pack("{s:O}", "recoveryCodes", list));
	resp_header(r, "Cache-Control", "no-store");
out:
	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(codes, sizeof(codes));
	free(sealed);
	json_decref(list);
	json_decref(data);
	json_decref(body);
	user_free(&u);
}

/* DELETE /mfa/totp {"code"} or {"recoveryCode"}, from an aal 2 session. */
void
route_mfa_disable(struct request *r)
{
	struct mfa_proof p;
	struct claims	 c;
	struct user	 u;
	struct audit	 a;
	json_t		*body = NULL, *data = NULL;
	int		 rc;

	if (mfa_user(r, &c, &u) == -1)
		return;
	if ((body = request_json(r)) == NULL ||
	    mfa_proof_parse(r, body, &p, 1) == -1)
		goto out;
	if (!u.mfa_enabled) {
		resp_error(r, ERR_MFA_NOT_ENABLED, NULL);
		goto out;
	}
	if (route_mfa_step_up(r, &c, &u) == -1 ||
	    mfa_guess(r, &u, c.sid, &p) != 0)
		goto out;
	data = json_pack("{s:s}", "userId", u.id);
	audit_init(&a, r, AUDIT_MFA_DISABLE, u.id, c.sid);
	a.email = u.email;
	a.outbox_event = event_enabled(EVENT_USER_MFA_DISABLED);
	a.outbox_data = data;
	if ((rc = db_mfa_disable(u.id, &a)) == DB_OK)
		resp_empty(r, 204);
	else if (rc == DB_NOTFOUND)
		resp_error(r, ERR_MFA_NOT_ENABLED, NULL);
	else
		resp_unavailable(r);
out:
	json_decref(data);
	json_decref(body);
	user_free(&u);
}

/*
 * POST /mfa/verify {"mfaToken", "code" | "recoveryCode"}: the session,
 * at aal 2.  A wrong code counts on the mfaToken too; at
 * OTP_MFA_WRONG_MAX it is void.  The token is taken (single use) only
 * after the code was right, so a wrong guess cannot burn it for the owner.
 */
static const struct field_spec mfa_token = { "mfaToken", FIELD_STRING,
    FIELD_REQUIRED, NULL, VALIDATE_WHY_REQUIRED };

void
route_mfa_verify(struct request *r)
{
	struct mfa_proof p;
	struct store_mfa m;
	struct user	 u;
	struct field_value t;
	json_t		*body;
	char		 hash[FA_HASH_HEX + 1];
	int		 rc, voided;

	memset(&u, 0, sizeof(u));
	if ((body = request_json(r)) == NULL)
		return;
	if (route_fields(r, body, &mfa_token, 1, 0, &t) == -1)
		goto out;
	if (mfa_proof_parse(r, body, &p, 1) == -1)
		goto out;
	if (otp_token_hash(hash, t.s, t.len) == -1) {
		resp_error(r, ERR_INVALID_TOKEN, NULL);
		goto out;
	}
	if ((rc = store_mfa_get(hash, &m)) != 0) {
		if (rc == 1)
			resp_error(r, ERR_INVALID_TOKEN, NULL);
		else
			resp_unavailable(r);
		goto out;
	}
	if ((rc = db_user_by_id(m.uid, &u)) == DB_ERROR) {
		resp_unavailable(r);
		goto out;
	}
	if (rc != DB_OK || u.disabled || !u.mfa_enabled) {
		(void)store_mfa_take(hash);
		resp_error(r, ERR_INVALID_TOKEN, NULL);
		goto out;
	}
	if ((rc = mfa_guess(r, &u, NULL, &p)) != 0) {
		if (rc == 1 && store_mfa_wrong(hash, OTP_MFA_WRONG_MAX,
		    &voided) == -1)
			log_warn(r->id, "mfa: wrong code not counted on the "
			    "mfaToken");
		goto out;
	}
	if ((rc = store_mfa_take(hash)) != 0) {
		if (rc == 1)	/* used or voided by a parallel request */
			resp_error(r, ERR_INVALID_TOKEN, NULL);
		else
			resp_unavailable(r);
		goto out;
	}
	if ((rc = route_login_session(r, &u, m.ip, m.ua, TOKEN_AAL_MFA)) == -1)
		resp_unavailable(r);
	else if (rc == 1)	/* changed or disabled since the code's check */
		resp_error(r, ERR_INVALID_TOKEN, NULL);
	else
		metrics_login(1);
out:
	json_decref(body);
	user_free(&u);
}
