/*
 * token.c: access tokens (JWS compact JWTs) and the server keys derived
 * from the configuration.  The algorithm is pinned by the configuration:
 * a token's header must name exactly that algorithm and, for RS256/ES256,
 * a kid we hold a public key for, before any signature is looked at.
 *
 * HS256 tokens are made and checked here: HMAC-SHA256 from pad states
 * made once per key set (any key length, as libjwt took it) and a
 * constant-time compare; the header segment is made once per key set, the
 * claims are written directly in libjwt's spelling (jsonw.c).  Through
 * libjwt 1.10, token_issue was a quarter of the CPU of a refresh (the
 * claims dumped, parsed again by jwt_add_grants_json, dumped again by
 * jwt_encode_str, and OpenSSL 3 fetching the HMAC algorithm at every
 * EVP_Q_mac).
 *
 * RS256/ES256 still go through libjwt 1.10 (RSA PKCS#1 v1.5, ECDSA P-256
 * in the raw r||s form of RFC 7518 section 3.4), which trusts the
 * header's alg: it is only ever handed a token whose header already
 * passed our checks, with the one key that alg and kid select.  The keys
 * are loaded by token_keys.c (OpenSSL: libjwt cannot load, derive or
 * export them); the server subkeys and sealing are token_seal.c's.
 * Verification does no I/O.
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

/*
 * The claims segment as jansson dumps the claims object with
 * JWS_JSON_FLAGS (compact, keys in byte order: the text libjwt writes),
 * written directly (jsonw.c): packing and dumping the object was half of
 * token_issue's work.  Owned text, or NULL if a string is not UTF-8 or the
 * text is longer than a token may be.
 */
char *
token_claims_text(const struct token_set *tk, const struct claims *c)
{
	struct jsonw	 w;
	const char	*p = c->roles, *name;
	size_t		 len;

	jsonw_init(&w, FA_TOKEN_MAX);
	jsonw_open(&w, '{');
	jsonw_key(&w, "aal");
	jsonw_num(&w, c->aal);
	jsonw_key(&w, "amr");
	jsonw_lit(&w, c->aal >= TOKEN_AAL_MFA ? "[\"pwd\",\"otp\"]" :
	    "[\"pwd\"]");
	jsonw_key(&w, "aud");
	jsonw_strz(&w, tk->cfg->jwt_audience);
	jsonw_key(&w, "email");
	jsonw_strz(&w, c->email);
	jsonw_key(&w, "email_verified");
	jsonw_lit(&w, c->email_verified ? "true" : "false");
	jsonw_key(&w, "exp");
	jsonw_num(&w, c->exp);
	if (c->gen > 0) {
		jsonw_key(&w, "gen");
		jsonw_num(&w, c->gen);
	}
	jsonw_key(&w, "iat");
	jsonw_num(&w, c->iat);
	jsonw_key(&w, "iss");
	jsonw_strz(&w, tk->cfg->jwt_issuer);
	jsonw_key(&w, "jti");
	jsonw_strz(&w, c->jti);
	jsonw_key(&w, "roles");
	jsonw_open(&w, '[');
	while (roles_next(&p, &name, &len))
		jsonw_str(&w, name, len);
	jsonw_close(&w, ']');
	jsonw_key(&w, "sid");
	jsonw_strz(&w, c->sid);
	jsonw_key(&w, "sub");
	jsonw_strz(&w, c->sub);
	jsonw_close(&w, '}');
	return jsonw_done(&w);
}

int
token_hs_header(struct token_set *tk)
{
	json_t	*hdr;
	char	*s = NULL;
	size_t	 n;
	int	 rc = -1;

	if ((hdr = json_pack("{s:s, s:s}", "alg", token_alg_names[ALG_HS256],
	    "typ", TOKEN_TYP)) == NULL ||
	    (s = json_dumps(hdr, JWS_JSON_FLAGS)) == NULL)
		goto out;
	n = strlen(s);
	tk->hs_hdrlen = B64URL_LEN(n);
	tk->hs_hdr = xmalloc(tk->hs_hdrlen + 1);
	rc = b64url_encode(tk->hs_hdr, tk->hs_hdrlen + 1,
	    (const unsigned char *)s, n);
out:
	free(s);
	json_decref(hdr);
	return rc;
}

/*
 * HMAC-SHA256 (RFC 2104) under one key, any length as RFC 7518 allows: the
 * digest states after the key's inner and outer pads are made once per key
 * set, and a MAC starts from copies of them.  OpenSSL's SHA-256 uses the
 * CPU's SHA extensions where it has them; libsodium's portable one, with
 * the pads hashed again each time, was an eighth of a refresh's
 * instructions.  The states are only read after token_init.
 */
#define HS256_BLOCK	64

static int
hs_key_init(EVP_MD_CTX **in, EVP_MD_CTX **out, const unsigned char *key,
    int keylen)
{
	unsigned char	 k[HS256_BLOCK], pad[HS256_BLOCK];
	size_t		 i;
	int		 rc = -1;

	memset(k, 0, sizeof(k));
	if ((size_t)keylen > sizeof(k)) {
		if (EVP_Digest(key, (size_t)keylen, k, NULL, EVP_sha256(),
		    NULL) != 1)
			goto out;
	} else
		memcpy(k, key, (size_t)keylen);
	if ((*in = EVP_MD_CTX_new()) == NULL ||
	    (*out = EVP_MD_CTX_new()) == NULL)
		goto out;
	for (i = 0; i < sizeof(pad); i++)
		pad[i] = k[i] ^ 0x36;
	if (EVP_DigestInit_ex(*in, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(*in, pad, sizeof(pad)) != 1)
		goto out;
	for (i = 0; i < sizeof(pad); i++)
		pad[i] = k[i] ^ 0x5c;
	if (EVP_DigestInit_ex(*out, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(*out, pad, sizeof(pad)) != 1)
		goto out;
	rc = 0;
out:
	sodium_memzero(k, sizeof(k));
	sodium_memzero(pad, sizeof(pad));
	ERR_clear_error();
	return rc;	/* on failure token_free frees what was made */
}

int
token_hs_keys(struct token_set *tk)
{
	if (hs_key_init(&tk->hs_in[0], &tk->hs_out[0], tk->sign,
	    tk->signlen) == -1)
		return -1;
	if (tk->has_prev && hs_key_init(&tk->hs_in[1], &tk->hs_out[1],
	    tk->prev, tk->prevlen) == -1)
		return -1;
	return 0;
}

/* The MAC of msg under key k (0 jwt_secret, 1 jwt_secret_previous). */
static int
hs256_mac(unsigned char mac[HS256_BYTES], const struct token_set *tk,
    int k, const char *msg, size_t len)
{
	EVP_MD_CTX	*c;
	unsigned char	 ih[HS256_BYTES];
	int		 rc = -1;

	if ((c = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_MD_CTX_copy_ex(c, tk->hs_in[k]) == 1 &&
	    EVP_DigestUpdate(c, msg, len) == 1 &&
	    EVP_DigestFinal_ex(c, ih, NULL) == 1 &&
	    EVP_MD_CTX_copy_ex(c, tk->hs_out[k]) == 1 &&
	    EVP_DigestUpdate(c, ih, sizeof(ih)) == 1 &&
	    EVP_DigestFinal_ex(c, mac, NULL) == 1)
		rc = 0;
	EVP_MD_CTX_free(c);
	sodium_memzero(ih, sizeof(ih));
	if (rc == -1) {
		sodium_memzero(mac, HS256_BYTES);
		ERR_clear_error();
	}
	return rc;
}

/*
 * HS256 without libjwt: the set's header segment, the payload text in
 * base64url, the MAC of both under jwt_secret.  *out is owned.
 */
static int
hs256_sign(const struct token_set *tk, const char *pay, char **out)
{
	unsigned char	 mac[HS256_BYTES];
	size_t		 paylen = strlen(pay), n, len;
	char		*tok;

	if (paylen > FA_TOKEN_MAX)
		return -1;
	n = tk->hs_hdrlen + 1 + B64URL_LEN(paylen);
	len = n + 1 + B64URL_LEN(sizeof(mac));
	if (len > FA_TOKEN_MAX)
		return -1;
	tok = xmalloc(len + 1);
	memcpy(tok, tk->hs_hdr, tk->hs_hdrlen);
	tok[tk->hs_hdrlen] = '.';
	if (b64url_encode_public(tok + tk->hs_hdrlen + 1,
	    len - tk->hs_hdrlen, (const unsigned char *)pay, paylen) == -1)
		goto fail;
	if (hs256_mac(mac, tk, 0, tok, n) == -1)
		goto fail;
	tok[n] = '.';
	if (b64url_encode(tok + n + 1, len - n, mac, sizeof(mac)) == -1)
		goto fail;
	*out = tok;
	return 0;
fail:
	free(tok);
	return -1;
}

/* RS256/ES256 through libjwt: it writes the header (alg, kid, typ). */
static int
pem_sign(const struct token_set *tk, const char *pay, char **out)
{
	jwt_t	*jwt = NULL;
	char	*tok = NULL;
	int	 rc = -1;

	if (jwt_new(&jwt) != 0 || jwt_set_alg(jwt, token_alg_jwt[tk->alg],
	    tk->sign, tk->signlen) != 0 ||
	    jwt_add_header(jwt, "kid", tk->kid) != 0 ||
	    jwt_add_grants_json(jwt, pay) != 0 ||
	    (tok = jwt_encode_str(jwt)) == NULL ||
	    strlen(tok) > FA_TOKEN_MAX)
		goto out;
	*out = xstrdup(tok);
	rc = 0;
out:
	free(tok);
	jwt_free(jwt);
	ERR_clear_error();
	return rc;
}

int
token_issue(struct claims *c, long long gen, char **out)
{
	unsigned char	 jti[FA_JTI_BYTES];
	char		*text;
	const struct token_set *tk = tk_cur();
	int		 rc;

	*out = NULL;
	if (tk == NULL)
		return -1;
	randombytes_buf(jti, sizeof(jti));
	if (b64url_encode(c->jti, sizeof(c->jti), jti, sizeof(jti)) == -1)
		return -1;
	c->iat = now_ms() / 1000;
	c->exp = c->iat + tk->cfg->access_ttl;
	c->gen = gen > 0 ? gen : 0;
	if (c->aal < TOKEN_AAL_MIN || c->aal > TOKEN_AAL_MAX)
		c->aal = TOKEN_AAL_MIN;
	if ((text = token_claims_text(tk, c)) == NULL)
		return -1;
	rc = tk->alg == ALG_HS256 ? hs256_sign(tk, text, out) :
	    pem_sign(tk, text, out);
	free(text);
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
 * HS256: sig must be the MAC of the first two segments, in[0..len), under
 * jwt_secret or, while it is set, jwt_secret_previous.  Constant time.
 */
static int
hs256_check(const struct token_set *tk, const char *in, size_t len,
    const unsigned char sig[HS256_BYTES])
{
	unsigned char	 mac[HS256_BYTES];
	int		 rc;

	rc = hs256_mac(mac, tk, 0, in, len) == 0 ?
	    crypto_verify_32(mac, sig) : -1;
	if (rc != 0 && tk->has_prev)
		rc = hs256_mac(mac, tk, 1, in, len) == 0 ?
		    crypto_verify_32(mac, sig) : -1;
	sodium_memzero(mac, sizeof(mac));
	return rc == 0 ? 0 : -1;
}

/*
 * RS256/ES256: libjwt checks the signature of tok with the public key
 * (PEM) the header's kid selected; it wants a C string.
 */
static int
pem_check(const struct token_set *tk, const char *tok, size_t len,
    const struct token_key *key)
{
	jwt_t	*jwt = NULL;
	char	*copy;
	int	 rc = -1;

	copy = xmalloc(len + 1);
	memcpy(copy, tok, len);
	copy[len] = '\0';
	if (jwt_decode(&jwt, copy, (const unsigned char *)key->pem,
	    key->pemlen) == 0 && jwt != NULL &&
	    jwt_get_alg(jwt) == token_alg_jwt[tk->alg])
		rc = 0;
	jwt_free(jwt);
	free(copy);
	ERR_clear_error();
	return rc;
}

int
token_verify(const char *tok, size_t len, struct claims *c)
{
	const struct token_set	*tk = tk_cur();
	const struct token_key	*key = NULL;
	const char		*d1, *d2;
	const json_t		*v;
	json_t			*hdr = NULL, *pay = NULL;
	unsigned char		 sig[TOKEN_SIG_MAX];
	size_t			 siglen, n, i;
	int			 rc = -1;

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
	if (tk->alg == ALG_HS256)
		siglen = HS256_BYTES;
	else {
		v = json_object_get(hdr, "kid");
		for (i = 0; i < tk->nkeys && key == NULL; i++)
			if (json_str_eq(v, tk->keys[i].kid) &&
			    tk->keys[i].alg == tk->alg)
				key = &tk->keys[i];
		if (key == NULL)
			goto out;
		siglen = key->siglen;
	}
	/*
	 * The signature must be canonical base64url of the exact size the
	 * key makes: libjwt's own decoder is lenient.
	 */
	if (b64url_decode(sig, sizeof(sig), &n, d2 + 1,
	    len - (size_t)(d2 + 1 - tok)) == -1 || n != siglen)
		goto out;

	if (tk->alg == ALG_HS256 ? hs256_check(tk, tok, (size_t)(d2 - tok),
	    sig) == -1 : pem_check(tk, tok, len, key) == -1)
		goto out;

	/* Claims from our own strict parse (libjwt allows duplicate keys). */
	if ((pay = seg_object(d1 + 1, (size_t)(d2 - d1 - 1))) == NULL ||
	    claims_check(tk, pay, c) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		memset(c, 0, sizeof(*c));
	json_decref(hdr);
	json_decref(pay);
	return rc;
}

/* Shared and read-only: callers must not modify it. */
json_t *
token_jwks(void)
{
	const struct token_set	*tk = tk_cur();

	return tk != NULL && tk->jwks != NULL ? json_incref(tk->jwks) : NULL;
}

