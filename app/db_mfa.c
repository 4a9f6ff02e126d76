/*
 * db_mfa.c: the second factor's columns and recovery codes.  Secrets
 * arrive and leave sealed (otp.c).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "db_int.h"

/*
 * The second factor.  Unnamed statements (run once per call, not
 * prepared): they are rare next to logins and refreshes.
 */
#define MFA_SQL_GET \
	"SELECT mfa_enabled, mfa_secret, mfa_pending FROM auth.users" \
	" WHERE id = $1::uuid"
#define MFA_SQL_PENDING \
	"UPDATE auth.users SET mfa_pending = $2, updated_at = now()" \
	" WHERE id = $1::uuid AND NOT mfa_enabled RETURNING 1"
#define MFA_SQL_ENABLE \
	"WITH u AS (" \
	" UPDATE auth.users SET mfa_secret = mfa_pending, mfa_pending = NULL," \
	" mfa_enabled = true, mfa_last_step = $3::bigint, updated_at = now()" \
	" WHERE id = $1::uuid AND NOT mfa_enabled AND mfa_pending = $2" \
	" RETURNING id)," \
	" d AS (DELETE FROM auth.mfa_recovery_codes" \
	" WHERE user_id IN (SELECT id FROM u))," \
	" c AS (INSERT INTO auth.mfa_recovery_codes (user_id, code_hash)" \
	" SELECT u.id, h FROM u, unnest($4::text[]) h)," \
	AUDIT_ROWS(5) \
	" SELECT u.id::text, " NOTIFY_OUTBOX " FROM u"
#define MFA_SQL_USE_STEP \
	"UPDATE auth.users SET mfa_last_step = $2::bigint" \
	" WHERE id = $1::uuid AND mfa_enabled AND mfa_last_step < $2::bigint" \
	" RETURNING 1"
#define MFA_SQL_USE_RECOVERY \
	"UPDATE auth.mfa_recovery_codes SET used_at = now()" \
	" WHERE user_id = $1::uuid AND code_hash = $2 AND used_at IS NULL" \
	" RETURNING 1"
#define MFA_SQL_DISABLE \
	"WITH u AS (" \
	" UPDATE auth.users SET mfa_enabled = false, mfa_secret = NULL," \
	" mfa_pending = NULL, mfa_last_step = 0, updated_at = now()" \
	" WHERE id = $1::uuid AND mfa_enabled RETURNING id)," \
	" d AS (DELETE FROM auth.mfa_recovery_codes" \
	" WHERE user_id IN (SELECT id FROM u))," \
	AUDIT_ROWS(2) \
	" SELECT u.id::text, " NOTIFY_OUTBOX " FROM u"

int
db_mfa_get(const char *uid, struct db_mfa *out)
{
	PGresult	*res = NULL;
	int		 rc;

	memset(out, 0, sizeof(*out));
	if (!db_is_uuid(uid))
		return DB_NOTFOUND;
	rc = db_run(ST__MAX, MFA_SQL_GET, 1, &uid, &res);
	if (rc == DB_OK) {
		if (PQntuples(res) != 1)
			rc = DB_NOTFOUND;
		else {
			out->enabled = PQgetvalue(res, 0, 0)[0] == 't';
			if (!PQgetisnull(res, 0, 1))
				out->secret = xstrdup(PQgetvalue(res, 0, 1));
			if (!PQgetisnull(res, 0, 2))
				out->pending = xstrdup(PQgetvalue(res, 0, 2));
		}
	}
	PQclear(res);
	return rc;
}

int
db_mfa_pending(const char *uid, const char *sealed)
{
	const char	*v[2] = { uid, sealed };

	if (!db_is_uuid(uid))
		return DB_NOTFOUND;
	return db_touch(MFA_SQL_PENDING, 2, v, DB_CONFLICT);
}

/* {"h1","h2",...}: hex needs no quoting in a PostgreSQL array literal. */
static char *
mfa_array(char hashes[][FA_HASH_HEX + 1], size_t n)
{
	char	*out, *p;
	size_t	 i;

	p = out = xmalloc(2 + n * (FA_HASH_HEX + 1) + 1);
	*p++ = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			*p++ = ',';
		memcpy(p, hashes[i], FA_HASH_HEX);
		p += FA_HASH_HEX;
	}
	*p++ = '}';
	*p = '\0';
	return out;
}

int
db_mfa_enable(const char *uid, const char *pending_hex, long long step,
    char hashes[][FA_HASH_HEX + 1], size_t n, const struct audit *a)
{
	struct audit_params	 ap;
	const char		*v[4 + AUDIT_NPARAMS];
	char			 sstep[24], *arr = NULL;
	size_t			 i;
	int			 rc;

	if (!db_is_uuid(uid) || pending_hex == NULL)
		return DB_NOTFOUND;
	for (i = 0; i < n; i++)
		if (strlen(hashes[i]) != FA_HASH_HEX)
			return DB_ERROR;
	if (db_audit_params(&ap, a, NULL, NULL) == -1)
		return DB_ERROR;
	snprintf(sstep, sizeof(sstep), "%lld", step);
	arr = mfa_array(hashes, n);
	v[0] = uid;
	v[1] = pending_hex;
	v[2] = sstep;
	v[3] = arr;
	memcpy(v + 4, ap.v, sizeof(ap.v));
	rc = db_touch(MFA_SQL_ENABLE, 4 + AUDIT_NPARAMS, v, DB_CONFLICT);
	free(arr);
	db_audit_params_free(&ap);
	return rc;
}

int
db_mfa_use_step(const char *uid, long long step)
{
	const char	*v[2];
	char		 sstep[24];

	if (!db_is_uuid(uid))
		return DB_NOTFOUND;
	snprintf(sstep, sizeof(sstep), "%lld", step);
	v[0] = uid;
	v[1] = sstep;
	return db_touch(MFA_SQL_USE_STEP, 2, v, DB_NOTFOUND);
}

int
db_mfa_use_recovery(const char *uid, const char *hash)
{
	const char	*v[2] = { uid, hash };

	if (!db_is_uuid(uid) || hash == NULL)
		return DB_NOTFOUND;
	return db_touch(MFA_SQL_USE_RECOVERY, 2, v, DB_NOTFOUND);
}

int
db_mfa_disable(const char *uid, const struct audit *a)
{
	struct audit_params	 ap;
	const char		*v[1 + AUDIT_NPARAMS];
	int			 rc;

	if (!db_is_uuid(uid))
		return DB_NOTFOUND;
	if (db_audit_params(&ap, a, NULL, NULL) == -1)
		return DB_ERROR;
	v[0] = uid;
	memcpy(v + 1, ap.v, sizeof(ap.v));
	rc = db_touch(MFA_SQL_DISABLE, 1 + AUDIT_NPARAMS, v, DB_NOTFOUND);
	db_audit_params_free(&ap);
	return rc;
}
