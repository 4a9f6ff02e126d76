/*
 * token.c: access tokens (JWS compact JWTs) and the server keys derived
 * from the configuration.  The algorithm is pinned by the configuration:
 * a token's header must name exactly that algorithm and, for RS256/ES256,
 * a kid we hold a public key for, before any signature is looked at.
 * libjwt 1.10 makes and checks the signatures (HMAC-SHA256, RSA PKCS#1
 * v1.5, ECDSA P-256 in the raw r||s form of RFC 7518 section 3.4) but
 * trusts the header's alg, so it is only ever handed a token whose header
 * already passed our checks, with the one key that alg and kid select.
 * The keys are loaded by token_keys.c (OpenSSL: libjwt cannot load,
 * derive or export them); the server subkeys and sealing are
 * token_seal.c's.  Verification does no I/O.
 *
 * The key material of a configuration is a token_set hung on it
 * (c->tokens) by token_init(): a reload builds the next generation's set
 * beside the running one, so a key that fails to load changes nothing.  A
 * set is only read once made; every function but token_init/token_free
 * reads the set of cfg (the running generation) and is safe to call from
 * any thread (libjwt only touches the jwt_t each call makes for itself).
 *
 * jwt_secret_previous (rotation without mass logout): HS256 tokens signed
 * with it still verify, and refresh hashes and sealed children made under
 * it are still found and opened; nothing new is made with it.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "extern.h"
#include "token_int.h"

const char *const token_alg_names[ALG__MAX] = {
	"HS256",	/* ALG_HS256 */
	"RS256",	/* ALG_RS256 */
	"ES256",	/* ALG_ES256 */
};

const jwt_alg_t token_alg_jwt[ALG__MAX] = {
	JWT_ALG_HS256,	/* ALG_HS256 */
	JWT_ALG_RS256,	/* ALG_RS256 */
	JWT_ALG_ES256,	/* ALG_ES256 */
};

/* True if j is a JSON string equal to s, byte for byte. */
static int
json_str_eq(const json_t *j, const char *s)
{
	size_t	 n = strlen(s);

	return json_is_string(j) && json_string_length(j) == n &&
	    memcmp(json_string_value(j), s, n) == 0;
}

/* RFC 8176 methods of an aal: a password, then a one-time code. */
json_t *
token_amr(int aal)
{
	return aal >= TOKEN_AAL_MFA ? json_pack("[s, s]", "pwd", "otp") :
	    json_pack("[s]", "pwd");
}

int
token_issue(struct claims *c, long long gen, char **out)
{
	unsigned char	 jti[FA_JTI_BYTES];
	json_t		*pay = NULL, *roles = NULL;
	jwt_t		*jwt = NULL;
	char		*grants = NULL, *tok = NULL;
	const struct token_set *tk = tk_cur();
	long long	 now;
	int		 rc = -1;

	*out = NULL;
	if (tk == NULL)
		return -1;
	randombytes_buf(jti, sizeof(jti));
	if (b64url_encode(c->jti, sizeof(c->jti), jti, sizeof(jti)) == -1)
		return -1;
	now = now_ms() / 1000;
	c->iat = now;
	c->exp = c->iat + tk->cfg->access_ttl;
	c->gen = gen > 0 ? gen : 0;
	if (c->aal < TOKEN_AAL_MIN || c->aal > TOKEN_AAL_MAX)
		c->aal = TOKEN_AAL_MIN;

	if ((roles = roles_json(c->roles)) == NULL)
		goto out;
	if ((pay = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}",
	    "iss", tk->cfg->jwt_issuer, "aud", tk->cfg->jwt_audience,
	    "sub", c->sub, "email", c->email, "sid", c->sid, "jti", c->jti,
	    "iat", (json_int_t)c->iat, "exp", (json_int_t)c->exp)) == NULL ||
	    json_object_set(pay, "roles", roles) == -1 ||
	    json_object_set_new(pay, "amr", token_amr(c->aal)) == -1 ||
	    json_object_set_new(pay, "aal", json_integer(c->aal)) == -1 ||
	    json_object_set_new(pay, "email_verified",
	    json_boolean(c->email_verified)) == -1 ||
	    (c->gen > 0 && json_object_set_new(pay, "gen",
	    json_integer((json_int_t)c->gen)) == -1) ||
	    (grants = json_dumps(pay, JSON_COMPACT)) == NULL)
		goto out;

	/* libjwt writes the header: alg, typ "JWT", and kid if added. */
	if (jwt_new(&jwt) != 0 ||
	    jwt_set_alg(jwt, token_alg_jwt[tk->alg], tk->sign, tk->signlen) != 0 ||
	    (tk->alg != ALG_HS256 &&
	    jwt_add_header(jwt, "kid", tk->kid) != 0) ||
	    jwt_add_grants_json(jwt, grants) != 0 ||
	    (tok = jwt_encode_str(jwt)) == NULL ||
	    strlen(tok) > FA_TOKEN_MAX)
		goto out;
	*out = xstrdup(tok);
	rc = 0;
out:
	free(tok);
	jwt_free(jwt);
	free(grants);
	json_decref(roles);
	json_decref(pay);
	ERR_clear_error();
	return rc;
}

/* Decode one segment and parse it as a JSON object (no duplicate keys). */
static json_t *
seg_object(const char *in, size_t len)
{
	unsigned char	 buf[SEGMENT_MAX];
	size_t		 n;
	json_t		*j;

	if (b64url_decode(buf, sizeof(buf), &n, in, len) == -1)
		return NULL;
	j = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* Copy a JSON string of 1..max bytes into out[max + 1]. */
static int
str_copy(char *out, size_t max, const json_t *j)
{
	size_t	 n;

	if (!json_is_string(j) || (n = json_string_length(j)) == 0 || n > max)
		return -1;
	memcpy(out, json_string_value(j), n);
	out[n] = '\0';
	return 0;
}

static int
uuid_claim(char out[FA_UUID_LEN + 1], const json_t *j)
{
	unsigned char	 u[16];

	if (!json_is_string(j) || uuid_parse(u, json_string_value(j),
	    json_string_length(j)) == -1)
		return -1;
	uuid_format(out, u);
	return 0;
}

static int
int_claim(long long *out, const json_t *j)
{
	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return -1;
	*out = json_integer_value(j);
	return 0;
}

static int
claims_check(const struct token_set *tk, const json_t *pay, struct claims *c)
{
	const json_t	*aud, *v;
	long long	 now, leeway, nbf;
	size_t		 i;

	now = now_ms() / 1000;
	leeway = tk->cfg->jwt_leeway > 0 ? tk->cfg->jwt_leeway : 0;
	if (!json_str_eq(json_object_get(pay, "iss"), tk->cfg->jwt_issuer))
		return -1;
	aud = json_object_get(pay, "aud");
	if (json_is_array(aud)) {
		json_array_foreach(aud, i, v)
			if (json_str_eq(v, tk->cfg->jwt_audience))
				break;
		if (i == json_array_size(aud))
			return -1;
	} else if (!json_str_eq(aud, tk->cfg->jwt_audience))
		return -1;
	if (int_claim(&c->exp, json_object_get(pay, "exp")) == -1 ||
	    int_claim(&c->iat, json_object_get(pay, "iat")) == -1 ||
	    now - leeway > c->exp || c->iat > now + leeway || c->iat > c->exp)
		return -1;
	/* email_verified: absent (tokens of older versions) means false */
	v = json_object_get(pay, "email_verified");
	if (v != NULL && !json_is_boolean(v))
		return -1;
	c->email_verified = json_is_true(v);
	/* gen: the revocation generation; absent means 0 */
	c->gen = 0;
	if ((v = json_object_get(pay, "gen")) != NULL &&
	    (int_claim(&c->gen, v) == -1 || c->gen < 0))
		return -1;
	/* aal: 1 or 2; absent (a token from before MFA) means 1 */
	c->aal = TOKEN_AAL_MIN;
	if ((v = json_object_get(pay, "aal")) != NULL &&
	    (!json_is_integer(v) || json_integer_value(v) < TOKEN_AAL_MIN ||
	    json_integer_value(v) > TOKEN_AAL_MAX))
		return -1;
	if (v != NULL)
		c->aal = (int)json_integer_value(v);
	if ((v = json_object_get(pay, "nbf")) != NULL &&
	    (int_claim(&nbf, v) == -1 || nbf > now + leeway))
		return -1;
	if (uuid_claim(c->sub, json_object_get(pay, "sub")) == -1 ||
	    uuid_claim(c->sid, json_object_get(pay, "sid")) == -1 ||
	    str_copy(c->jti, FA_JTI_LEN, json_object_get(pay, "jti")) == -1 ||
	    str_copy(c->email, FA_EMAIL_MAX, json_object_get(pay, "email")) ==
	    -1)
		return -1;
	for (i = 0; c->jti[i] != '\0'; i++)
		if (!isalnum((unsigned char)c->jti[i]) && c->jti[i] != '-' &&
		    c->jti[i] != '_')
			return -1;
	return roles_from_json(json_object_get(pay, "roles"), 0, c->roles,
	    sizeof(c->roles));
}

/*
 * libjwt checks the signature of the C string tok with vkey; for HS256 a
 * token that fails under jwt_secret is tried under jwt_secret_previous.
 */
static int
sig_check(const struct token_set *tk, char *tok, const unsigned char *vkey,
    int vkeylen, jwt_t **jwt)
{
	if (jwt_decode(jwt, tok, vkey, vkeylen) == 0 && *jwt != NULL)
		return 0;
	jwt_free(*jwt);
	*jwt = NULL;
	if (tk->alg != ALG_HS256 || !tk->has_prev)
		return -1;
	if (jwt_decode(jwt, tok, tk->prev, tk->prevlen) == 0 && *jwt != NULL)
		return 0;
	jwt_free(*jwt);
	*jwt = NULL;
	return -1;
}

int
token_verify(const char *tok, size_t len, struct claims *c)
{
	const struct token_set	*tk = tk_cur();
	const struct token_key	*key = NULL;
	const unsigned char	*vkey;
	const char		*d1, *d2;
	const json_t		*v;
	json_t			*hdr = NULL, *pay = NULL;
	jwt_t			*jwt = NULL;
	unsigned char		 sig[TOKEN_SIG_MAX];
	char			*copy = NULL;
	size_t			 siglen, n, i;
	int			 vkeylen, rc = -1;

	memset(c, 0, sizeof(*c));
	if (tk == NULL || tok == NULL || len == 0 || len > FA_TOKEN_MAX ||
	    memchr(tok, '\0', len) != NULL)
		return -1;
	/* Exactly three non-empty segments. */
	if ((d1 = memchr(tok, '.', len)) == NULL ||
	    (d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok))) == NULL ||
	    memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL ||
	    d1 == tok || d2 == d1 + 1 || d2 + 1 == tok + len)
		return -1;

	/* The header pins the algorithm and the key, before any crypto. */
	if ((hdr = seg_object(tok, (size_t)(d1 - tok))) == NULL ||
	    !json_str_eq(json_object_get(hdr, "alg"), token_alg_names[tk->alg]) ||
	    json_object_get(hdr, "crit") != NULL)
		goto out;
	if ((v = json_object_get(hdr, "typ")) != NULL &&
	    !json_str_eq(v, TOKEN_TYP))
		goto out;
	if (tk->alg == ALG_HS256) {
		vkey = tk->sign;
		vkeylen = tk->signlen;
		siglen = HS256_BYTES;
	} else {
		v = json_object_get(hdr, "kid");
		for (i = 0; i < tk->nkeys && key == NULL; i++)
			if (json_str_eq(v, tk->keys[i].kid) &&
			    tk->keys[i].alg == tk->alg)
				key = &tk->keys[i];
		if (key == NULL)
			goto out;
		vkey = (const unsigned char *)key->pem;
		vkeylen = key->pemlen;
		siglen = key->siglen;
	}
	/*
	 * The signature must be canonical base64url of the exact size the
	 * key makes: libjwt's own decoder is lenient.
	 */
	if (b64url_decode(sig, sizeof(sig), &n, d2 + 1,
	    len - (size_t)(d2 + 1 - tok)) == -1 || n != siglen)
		goto out;

	/* libjwt wants a C string and checks the signature with our key. */
	copy = xmalloc(len + 1);
	memcpy(copy, tok, len);
	copy[len] = '\0';
	if (sig_check(tk, copy, vkey, vkeylen, &jwt) == -1 ||
	    jwt_get_alg(jwt) != token_alg_jwt[tk->alg])
		goto out;

	/* Claims from our own strict parse (libjwt allows duplicate keys). */
	if ((pay = seg_object(d1 + 1, (size_t)(d2 - d1 - 1))) == NULL ||
	    claims_check(tk, pay, c) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		memset(c, 0, sizeof(*c));
	jwt_free(jwt);
	free(copy);
	json_decref(hdr);
	json_decref(pay);
	ERR_clear_error();
	return rc;
}

/* Shared and read-only: callers must not modify it. */
json_t *
token_jwks(void)
{
	const struct token_set	*tk = tk_cur();

	return tk != NULL && tk->jwks != NULL ? json_incref(tk->jwks) : NULL;
}

