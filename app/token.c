/*
 * token.c: access tokens (JWS compact JWTs) and the server keys derived
 * from the configuration.  The algorithm is pinned by the configuration:
 * a token's header must name exactly that algorithm and, for RS256/ES256,
 * a kid we hold a public key for, before any signature is looked at.
 * libjwt 1.10 makes and checks the signatures (HMAC-SHA256, RSA PKCS#1
 * v1.5, ECDSA P-256 in the raw r||s form of RFC 7518 section 3.4) but
 * trusts the header's alg, so it is only ever handed a token whose header
 * already passed our checks, with the one key that alg and kid select.
 * OpenSSL loads the keys, derives public halves, exports the JWKS and
 * generates keys, which libjwt cannot do.  Verification does no I/O.
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

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/buffer.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "extern.h"

enum token_alg {
	ALG_HS256,
	ALG_RS256,
	ALG_ES256,
	ALG__MAX
};

static const char *const alg_names[ALG__MAX] = {
	"HS256",	/* ALG_HS256 */
	"RS256",	/* ALG_RS256 */
	"ES256",	/* ALG_ES256 */
};

static const jwt_alg_t alg_jwt[ALG__MAX] = {
	JWT_ALG_HS256,	/* ALG_HS256 */
	JWT_ALG_RS256,	/* ALG_RS256 */
	JWT_ALG_ES256,	/* ALG_ES256 */
};

#define HS256_BYTES	crypto_auth_hmacsha256_BYTES
#define ES256_SIG	(2 * TOKEN_EC_COORD)
#define SEAL_OVERHEAD	(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
#define GROUP_NAME_MAX	64	/* OpenSSL curve names are shorter */
/* Longest decoded header or payload of a token of FA_TOKEN_MAX chars. */
#define SEGMENT_MAX	(FA_TOKEN_MAX / 4 * 3)

/* A verification key: public half only. */
struct token_key {
	char		 kid[TOKEN_KID_MAX + 1];
	enum token_alg	 alg;
	EVP_PKEY	*pub;		/* for the JWKS */
	char		*pem;		/* SubjectPublicKeyInfo, for libjwt */
	int		 pemlen;
	size_t		 siglen;	/* bytes of every valid signature */
};

struct token_set {
	int			 ready;
	unsigned long		 serial;	/* token_serial() */
	const struct config	*cfg;
	enum token_alg		 alg;		/* the pinned algorithm */
	/* libjwt's signing key: HS256 secret, or unencrypted PKCS#8 PEM. */
	unsigned char		*sign;
	int			 signlen;
	char			 kid[TOKEN_KID_MAX + 1];	/* of sign */
	struct token_key	 keys[TOKEN_KEYS_MAX];
	size_t			 nkeys;
	unsigned char		 refresh_key[TOKEN_SUBKEY_BYTES];
	unsigned char		 seal_key[crypto_secretbox_KEYBYTES];
	/* jwt_secret_previous: HS256 key and subkeys, when set */
	int			 has_prev;
	unsigned char		*prev;
	int			 prevlen;
	unsigned char		 prev_refresh_key[TOKEN_SUBKEY_BYTES];
	unsigned char		 prev_seal_key[crypto_secretbox_KEYBYTES];
	json_t			*jwks;
};

static unsigned long	 token_serials;	/* token_init, main thread only */

/*
 * The key of data at rest (token_derive): config_data_secret of the first
 * token_init, the configuration the process started with, and never again
 * until token_shutdown.  A reload that rotates jwt_secret leaves it be, so
 * sealed TOTP secrets and recovery-code hashes stay readable; data_secret
 * itself is restart-only.  Pre-hashed like subkey() does, when longer.
 */
static struct {
	unsigned char	 key[crypto_generichash_KEYBYTES_MAX];
	size_t		 len;
	int		 set;
} td;

static void	 token_data_key(const struct config *);

/* The keys of the running generation, or NULL. */
static const struct token_set *
tk_cur(void)
{
	const struct config	*c = cfg;

	return c != NULL && c->tokens != NULL && c->tokens->ready ?
	    c->tokens : NULL;
}

static int
alg_parse(const char *s, enum token_alg *out)
{
	int	 i;

	for (i = 0; i < ALG__MAX && s != NULL; i++)
		if (strcasecmp(s, alg_names[i]) == 0) {
			*out = (enum token_alg)i;
			return 0;
		}
	return -1;
}

/* True if j is a JSON string equal to s, byte for byte. */
static int
json_str_eq(const json_t *j, const char *s)
{
	size_t	 n = strlen(s);

	return json_is_string(j) && json_string_length(j) == n &&
	    memcmp(json_string_value(j), s, n) == 0;
}

static int
kid_ok(const char *kid, size_t len)
{
	size_t	 i;

	if (len == 0 || len > TOKEN_KID_MAX || kid[0] == '.')
		return 0;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)kid[i]) && kid[i] != '.' &&
		    kid[i] != '_' && kid[i] != '-' && kid[i] != ':')
			return 0;
	return 1;
}

static int
pem_nopass(char *buf, int size, int rw, void *u)
{
	(void)buf; (void)size; (void)rw; (void)u;
	return -1;	/* encrypted keys are not supported: never prompt */
}

/* A new key holding only the public half of k. */
static EVP_PKEY *
pkey_public(EVP_PKEY *k)
{
	unsigned char		*der = NULL;
	const unsigned char	*p;
	EVP_PKEY		*pub = NULL;
	int			 n;

	if ((n = i2d_PUBKEY(k, &der)) <= 0)
		return NULL;
	p = der;
	pub = d2i_PUBKEY(NULL, &p, n);
	OPENSSL_free(der);
	return pub;
}

/* RS256 for RSA (>= TOKEN_RSA_BITS), ES256 for P-256; -1 otherwise. */
static int
pkey_alg(EVP_PKEY *k, enum token_alg *alg)
{
	char	 group[GROUP_NAME_MAX];

	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA) {
		if (EVP_PKEY_get_bits(k) < TOKEN_RSA_BITS ||
		    EVP_PKEY_get_size(k) > TOKEN_SIG_MAX)
			return -1;
		*alg = ALG_RS256;
		return 0;
	}
	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC &&
	    EVP_PKEY_get_group_name(k, group, sizeof(group), NULL) == 1 &&
	    strcmp(group, SN_X9_62_prime256v1) == 0) {
		*alg = ALG_ES256;
		return 0;
	}
	return -1;
}

/*
 * Read a PEM key.  want_private: a private key only.  Otherwise a public
 * key, or a private key whose public half is kept.
 */
static EVP_PKEY *
pem_load(const char *path, int want_private)
{
	BIO		*bio = NULL;
	EVP_PKEY	*k = NULL, *priv = NULL;

	if ((bio = BIO_new_file(path, "r")) == NULL)
		goto out;
	if (want_private) {
		k = PEM_read_bio_PrivateKey(bio, NULL, pem_nopass, NULL);
		goto out;
	}
	if ((k = PEM_read_bio_PUBKEY(bio, NULL, pem_nopass, NULL)) != NULL)
		goto out;
	if (BIO_reset(bio) < 0)
		goto out;
	ERR_clear_error();
	if ((priv = PEM_read_bio_PrivateKey(bio, NULL, pem_nopass, NULL)) !=
	    NULL)
		k = pkey_public(priv);
out:
	EVP_PKEY_free(priv);
	BIO_free(bio);
	ERR_clear_error();
	return k;
}

/*
 * The PEM text of k (private: unencrypted PKCS#8, else the public key),
 * NUL-terminated, owned by the caller; NULL on failure.
 */
static char *
pem_text(EVP_PKEY *k, int private, int *len)
{
	BIO	*bio;
	BUF_MEM	*mem = NULL;
	char	*out = NULL;
	int	 ok;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	ok = private ? PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL,
	    NULL) : PEM_write_bio_PUBKEY(bio, k);
	if (ok == 1 && BIO_get_mem_ptr(bio, &mem) == 1 && mem != NULL &&
	    mem->length > 0 && mem->length < INT_MAX) {
		out = xmalloc(mem->length + 1);
		memcpy(out, mem->data, mem->length);
		out[mem->length] = '\0';
		*len = (int)mem->length;
	}
	BIO_free(bio);	/* a memory BIO clears its buffer when freed */
	ERR_clear_error();
	return out;
}

/*
 * Takes pub on success; the same kid with the same key listed again (the
 * signing key in jwt_public_keys) is published once.
 */
static int
key_add(struct token_set *tk, const char *kid, EVP_PKEY *pub,
    const char *what, char **errstr)
{
	struct token_key	*key;
	size_t			 i;

	if (!kid_ok(kid, strlen(kid))) {
		xasprintf(errstr, "%s: invalid kid \"%s\"", what, kid);
		return -1;
	}
	for (i = 0; i < tk->nkeys; i++) {
		if (strcmp(tk->keys[i].kid, kid) != 0)
			continue;
		if (EVP_PKEY_eq(tk->keys[i].pub, pub) == 1) {
			EVP_PKEY_free(pub);
			return 0;
		}
		xasprintf(errstr, "%s: duplicate kid \"%s\" with a different "
		    "key", what, kid);
		return -1;
	}
	if (tk->nkeys == TOKEN_KEYS_MAX) {
		xasprintf(errstr, "%s: more than %d keys", what,
		    TOKEN_KEYS_MAX);
		return -1;
	}
	key = &tk->keys[tk->nkeys];
	if (pkey_alg(pub, &key->alg) == -1) {
		xasprintf(errstr, "%s: key \"%s\" is neither RSA of %d to %d "
		    "bits nor EC P-256", what, kid, TOKEN_RSA_BITS,
		    TOKEN_SIG_MAX * 8);
		return -1;
	}
	if ((key->pem = pem_text(pub, 0, &key->pemlen)) == NULL) {
		xasprintf(errstr, "%s: cannot export key \"%s\"", what, kid);
		return -1;
	}
	snprintf(key->kid, sizeof(key->kid), "%s", kid);
	key->siglen = key->alg == ALG_ES256 ? ES256_SIG :
	    (size_t)EVP_PKEY_get_size(pub);
	key->pub = pub;
	tk->nkeys++;
	return 0;
}

/* "kid=path.pem,kid2=path2.pem" */
static int
keys_parse(struct token_set *tk, const char *list, char **errstr)
{
	char		*copy, *item, *save = NULL, *eq, *kid, *path;
	EVP_PKEY	*pub;
	int		 rc = -1;

	copy = xstrdup(list);
	for (item = strtok_r(copy, ",", &save); item != NULL;
	    item = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*item))
			item++;
		if (*item == '\0')
			continue;
		if ((eq = strchr(item, '=')) == NULL) {
			xasprintf(errstr, "jwt_public_keys: \"%s\" is not "
			    "kid=path", item);
			goto out;
		}
		*eq = '\0';
		kid = item;
		path = eq + 1;
		while (eq > kid && isspace((unsigned char)eq[-1]))
			*--eq = '\0';
		while (isspace((unsigned char)*path))
			path++;
		for (eq = path + strlen(path);
		    eq > path && isspace((unsigned char)eq[-1]); )
			*--eq = '\0';
		if ((pub = pem_load(path, 0)) == NULL) {
			xasprintf(errstr, "jwt_public_keys: %s: cannot read "
			    "PEM key for kid \"%s\"", path, kid);
			goto out;
		}
		if (key_add(tk, kid, pub, "jwt_public_keys", errstr) == -1) {
			EVP_PKEY_free(pub);
			goto out;
		}
	}
	rc = 0;
out:
	free(copy);
	return rc;
}

static char *
bn_b64url(const BIGNUM *bn, int pad)
{
	unsigned char	 buf[TOKEN_SIG_MAX];
	char		*out;
	int		 n;

	n = pad > 0 ? pad : BN_num_bytes(bn);
	if (n <= 0 || n > (int)sizeof(buf) ||
	    BN_bn2binpad(bn, buf, n) != n)
		return NULL;
	out = xmalloc(B64URL_LEN((size_t)n) + 1);
	b64url_encode(out, B64URL_LEN((size_t)n) + 1, buf, (size_t)n);
	return out;
}

/* The JWK of one public key, or NULL. */
static json_t *
jwk(const struct token_key *key)
{
	BIGNUM	*a = NULL, *b = NULL;
	char	*sa = NULL, *sb = NULL;
	json_t	*j = NULL;
	int	 rsa = key->alg == ALG_RS256;

	if (!EVP_PKEY_get_bn_param(key->pub, rsa ? OSSL_PKEY_PARAM_RSA_N :
	    OSSL_PKEY_PARAM_EC_PUB_X, &a) ||
	    !EVP_PKEY_get_bn_param(key->pub, rsa ? OSSL_PKEY_PARAM_RSA_E :
	    OSSL_PKEY_PARAM_EC_PUB_Y, &b))
		goto out;
	if ((sa = bn_b64url(a, rsa ? 0 : TOKEN_EC_COORD)) == NULL ||
	    (sb = bn_b64url(b, rsa ? 0 : TOKEN_EC_COORD)) == NULL)
		goto out;
	if (rsa)
		j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "RSA",
		    "kid", key->kid, "use", "sig", "alg", "RS256",
		    "n", sa, "e", sb);
	else
		j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
		    "kty", "EC", "kid", key->kid, "use", "sig",
		    "alg", "ES256", "crv", "P-256", "x", sa, "y", sb);
out:
	BN_free(a);
	BN_free(b);
	free(sa);
	free(sb);
	ERR_clear_error();
	return j;
}

/* BLAKE2b keyed with the secret (pre-hashed if longer than a key). */
static int
subkey(unsigned char *out, size_t outlen, const char *ctx,
    const unsigned char *secret, size_t len)
{
	unsigned char	 k[crypto_generichash_KEYBYTES_MAX];
	int		 rc;

	if (len > sizeof(k)) {
		crypto_generichash(k, sizeof(k), secret, len, NULL, 0);
		secret = k;
		len = sizeof(k);
	}
	rc = crypto_generichash(out, outlen, (const unsigned char *)ctx,
	    strlen(ctx), secret, len);
	sodium_memzero(k, sizeof(k));
	return rc == 0 ? 0 : -1;
}

/* The HS256 key and subkeys of jwt_secret_previous. */
static int
token_init_previous(struct token_set *tk, const struct config *c,
    char **errstr)
{
	const unsigned char	*prev = (const unsigned char *)
				    c->jwt_secret_previous;
	size_t			 len = c->jwt_secret_previous_len;

	if (len < CONFIG_SECRET_MIN || len > INT_MAX) {
		xasprintf(errstr, "jwt_secret_previous: at least %d bytes "
		    "required", CONFIG_SECRET_MIN);
		return -1;
	}
	if (subkey(tk->prev_refresh_key, sizeof(tk->prev_refresh_key),
	    TOKEN_CTX_REFRESH, prev, len) == -1 ||
	    subkey(tk->prev_seal_key, sizeof(tk->prev_seal_key),
	    TOKEN_CTX_SEAL, prev, len) == -1) {
		*errstr = xstrdup("jwt_secret_previous: cannot derive server "
		    "keys");
		return -1;
	}
	tk->prev = xmalloc(len);
	memcpy(tk->prev, prev, len);
	tk->prevlen = (int)len;
	tk->has_prev = 1;
	return 0;
}

int
token_init(struct config *c, char **errstr)
{
	struct token_set	*tk;
	const unsigned char	*secret;
	EVP_PKEY		*priv = NULL, *pub = NULL;
	json_t			*arr;
	size_t			 i;

	*errstr = NULL;
	token_free(c->tokens);
	c->tokens = NULL;
	if (sodium_init() < 0) {
		*errstr = xstrdup("libsodium initialisation failed");
		return -1;
	}
	tk = xcalloc(1, sizeof(*tk));
	tk->cfg = c;
	if (alg_parse(c->jwt_alg, &tk->alg) == -1) {
		xasprintf(errstr, "jwt_alg: \"%s\" is not HS256, RS256 or "
		    "ES256", c->jwt_alg != NULL ? c->jwt_alg : "");
		goto fail;
	}
	if (c->jwt_secret == NULL || c->jwt_secret_len < CONFIG_SECRET_MIN ||
	    c->jwt_secret_len > INT_MAX) {
		xasprintf(errstr, "jwt_secret: at least %d bytes required",
		    CONFIG_SECRET_MIN);
		goto fail;
	}
	secret = (const unsigned char *)c->jwt_secret;
	if (subkey(tk->refresh_key, sizeof(tk->refresh_key), TOKEN_CTX_REFRESH,
	    secret, c->jwt_secret_len) == -1 ||
	    subkey(tk->seal_key, sizeof(tk->seal_key), TOKEN_CTX_SEAL,
	    secret, c->jwt_secret_len) == -1) {
		*errstr = xstrdup("jwt_secret: cannot derive server keys");
		goto fail;
	}
	if (c->jwt_secret_previous != NULL &&
	    c->jwt_secret_previous_len > 0 &&
	    token_init_previous(tk, c, errstr) == -1)
		goto fail;

	if ((arr = json_array()) == NULL ||
	    (tk->jwks = json_pack("{s:o}", "keys", arr)) == NULL) {
		*errstr = xstrdup("out of memory");
		goto fail;
	}
	if (tk->alg == ALG_HS256) {
		tk->sign = xmalloc(c->jwt_secret_len);
		memcpy(tk->sign, secret, c->jwt_secret_len);
		tk->signlen = (int)c->jwt_secret_len;
		goto done;
	}

	/* RS256/ES256: the signing key, its public half, then the others. */
	if (c->jwt_private_key_file == NULL || *c->jwt_private_key_file == '\0') {
		xasprintf(errstr, "jwt_private_key_file: required for %s",
		    alg_names[tk->alg]);
		goto fail;
	}
	if (c->jwt_kid == NULL || !kid_ok(c->jwt_kid, strlen(c->jwt_kid))) {
		xasprintf(errstr, "jwt_kid: missing or invalid (1 to %d of "
		    "A-Z a-z 0-9 . _ : -)", TOKEN_KID_MAX);
		goto fail;
	}
	if ((priv = pem_load(c->jwt_private_key_file, 1)) == NULL) {
		xasprintf(errstr, "jwt_private_key_file: %s: cannot read PEM "
		    "private key", c->jwt_private_key_file);
		goto fail;
	}
	if ((pub = pkey_public(priv)) == NULL) {
		xasprintf(errstr, "jwt_private_key_file: %s: cannot derive "
		    "the public key", c->jwt_private_key_file);
		goto fail;
	}
	if (key_add(tk, c->jwt_kid, pub, "jwt_private_key_file", errstr) ==
	    -1) {
		EVP_PKEY_free(pub);
		goto fail;
	}
	if (tk->keys[0].alg != tk->alg) {
		xasprintf(errstr, "jwt_private_key_file: %s: not a %s key",
		    c->jwt_private_key_file, alg_names[tk->alg]);
		goto fail;
	}
	/* libjwt parses the key from PEM text at each signature. */
	if ((tk->sign = (unsigned char *)pem_text(priv, 1, &tk->signlen)) ==
	    NULL) {
		xasprintf(errstr, "jwt_private_key_file: %s: cannot export "
		    "the key", c->jwt_private_key_file);
		goto fail;
	}
	EVP_PKEY_free(priv);
	priv = NULL;
	snprintf(tk->kid, sizeof(tk->kid), "%s", c->jwt_kid);
	if (c->jwt_public_keys != NULL &&
	    keys_parse(tk, c->jwt_public_keys, errstr) == -1)
		goto fail;
	for (i = 0; i < tk->nkeys; i++) {
		json_t	*k;

		if ((k = jwk(&tk->keys[i])) == NULL ||
		    json_array_append_new(arr, k) == -1) {
			xasprintf(errstr, "JWKS: cannot export key \"%s\"",
			    tk->keys[i].kid);
			goto fail;
		}
	}
done:
	token_data_key(c);
	tk->serial = ++token_serials;
	tk->ready = 1;
	c->tokens = tk;
	return 0;
fail:
	EVP_PKEY_free(priv);
	token_free(tk);
	return -1;
}

void
token_shutdown(void)
{
	sodium_memzero(&td, sizeof(td));
	if (cfg != NULL) {
		token_free(cfg->tokens);
		cfg->tokens = NULL;
	}
}

unsigned long
token_serial(void)
{
	const struct token_set	*tk = tk_cur();

	return tk != NULL ? tk->serial : 0;
}

void
token_free(struct token_set *tk)
{
	size_t	 i;

	if (tk == NULL)
		return;
	for (i = 0; i < tk->nkeys; i++) {
		EVP_PKEY_free(tk->keys[i].pub);
		free(tk->keys[i].pem);
	}
	if (tk->sign != NULL) {
		sodium_memzero(tk->sign, (size_t)tk->signlen);
		free(tk->sign);
	}
	if (tk->prev != NULL) {
		sodium_memzero(tk->prev, (size_t)tk->prevlen);
		free(tk->prev);
	}
	json_decref(tk->jwks);
	sodium_memzero(tk, sizeof(*tk));
	free(tk);
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
	    jwt_set_alg(jwt, alg_jwt[tk->alg], tk->sign, tk->signlen) != 0 ||
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
	    !json_str_eq(json_object_get(hdr, "alg"), alg_names[tk->alg]) ||
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
	    jwt_get_alg(jwt) != alg_jwt[tk->alg])
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

static void
refresh_hash(char *out, const unsigned char *tok, size_t len,
    const unsigned char *key)
{
	unsigned char	 h[FA_HASH_HEX / 2];

	crypto_generichash(h, sizeof(h), tok, len, key, TOKEN_SUBKEY_BYTES);
	sodium_bin2hex(out, FA_HASH_HEX + 1, h, sizeof(h));
}

int
token_derive(unsigned char *out, size_t len, const char *ctx)
{
	if (!td.set)
		return -1;
	return subkey(out, len, ctx, td.key, td.len);
}

static void
token_data_key(const struct config *c)
{
	const char	*sec;
	size_t		 len;

	if (td.set)
		return;
	config_data_secret(c, &sec, &len);
	if (len > sizeof(td.key)) {
		crypto_generichash(td.key, sizeof(td.key),
		    (const unsigned char *)sec, len, NULL, 0);
		td.len = sizeof(td.key);
	} else {
		memcpy(td.key, sec, len);
		td.len = len;
	}
	td.set = 1;
}

void
token_refresh_hash(char *out, const unsigned char *tok, size_t len)
{
	static const unsigned char	 none[TOKEN_SUBKEY_BYTES];
	const struct token_set		*tk = tk_cur();

	refresh_hash(out, tok, len, tk != NULL ? tk->refresh_key : none);
}

int
token_refresh_hash_previous(char *out, const unsigned char *tok, size_t len)
{
	const struct token_set	*tk = tk_cur();

	if (tk == NULL || !tk->has_prev)
		return -1;
	refresh_hash(out, tok, len, tk->prev_refresh_key);
	return 0;
}

int
token_seal(char **out, const unsigned char *in, size_t len)
{
	const struct token_set	*tk = tk_cur();
	unsigned char		*box;
	size_t			 n;

	*out = NULL;
	if (tk == NULL || len > (SIZE_MAX / 2 - 1) - SEAL_OVERHEAD)
		return -1;
	n = SEAL_OVERHEAD + len;
	box = xmalloc(n);
	randombytes_buf(box, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, in, len, box,
	    tk->seal_key);
	*out = xmalloc(2 * n + 1);
	sodium_bin2hex(*out, 2 * n + 1, box, n);
	free(box);
	return 0;
}

int
token_open(unsigned char *out, size_t outsz, size_t *outlen, const char *hex)
{
	const struct token_set	*tk = tk_cur();
	unsigned char		*box = NULL;
	const char		*end;
	size_t			 hexlen, n;
	int			 rc = -1;

	if (tk == NULL || hex == NULL)
		return -1;
	hexlen = strlen(hex);
	if (hexlen % 2 != 0 || hexlen / 2 < SEAL_OVERHEAD ||
	    hexlen / 2 - SEAL_OVERHEAD > outsz)
		return -1;
	box = xmalloc(hexlen / 2);
	if (sodium_hex2bin(box, hexlen / 2, hex, hexlen, NULL, &n, &end) != 0 ||
	    n != hexlen / 2 || end != hex + hexlen)
		goto out;
	/* sealed under jwt_secret, or before a rotation under the previous */
	if (crypto_secretbox_open_easy(out,
	    box + crypto_secretbox_NONCEBYTES, n - crypto_secretbox_NONCEBYTES,
	    box, tk->seal_key) != 0 && (!tk->has_prev ||
	    crypto_secretbox_open_easy(out, box + crypto_secretbox_NONCEBYTES,
	    n - crypto_secretbox_NONCEBYTES, box, tk->prev_seal_key) != 0))
		goto out;
	*outlen = n - SEAL_OVERHEAD;
	rc = 0;
out:
	free(box);
	return rc;
}

/* Write pem with mode, refusing to replace an existing file. */
static int
pem_write(const char *path, mode_t mode, EVP_PKEY *k, int private)
{
	FILE	*f;
	int	 fd, ok, save;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) ==
	    -1)
		return -1;
	if ((f = fdopen(fd, "w")) == NULL) {
		save = errno;
		close(fd);
		unlink(path);
		errno = save;
		return -1;
	}
	errno = 0;
	ok = private ? PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) :
	    PEM_write_PUBKEY(f, k);
	if (fclose(f) != 0 || ok != 1) {
		save = errno;
		unlink(path);
		errno = save;
		return -1;
	}
	return 0;
}

int
token_keygen_check(const char *alg, const char *kid, char **errstr)
{
	*errstr = NULL;
	if (kid == NULL || !kid_ok(kid, strlen(kid))) {
		xasprintf(errstr, "kid: 1 to %d of A-Z a-z 0-9 . _ : -, not "
		    "starting with '.'", TOKEN_KID_MAX);
		return -1;
	}
	if (alg == NULL || (strcasecmp(alg, "rs256") != 0 &&
	    strcasecmp(alg, "es256") != 0)) {
		xasprintf(errstr, "alg: \"%s\" is not rs256 or es256",
		    alg != NULL ? alg : "");
		return -1;
	}
	return 0;
}

int
token_keygen(const char *alg, const char *kid, const char *dir,
    char **errstr)
{
	EVP_PKEY	*k = NULL;
	char		*priv = NULL, *pub = NULL;
	int		 rc = -1;

	if (token_keygen_check(alg, kid, errstr) == -1)
		return -1;
	if (strcasecmp(alg, "rs256") == 0)
		k = EVP_RSA_gen(TOKEN_RSA_BITS);
	else
		k = EVP_EC_gen(SN_X9_62_prime256v1);
	if (k == NULL) {
		xasprintf(errstr, "%s: key generation failed", alg);
		goto out;
	}
	xasprintf(&priv, "%s/%s.pem", dir, kid);
	xasprintf(&pub, "%s/%s.pub.pem", dir, kid);
	if (pem_write(priv, S_IRUSR | S_IWUSR, k, 1) == -1) {
		xasprintf(errstr, "%s: %s", priv, errno != 0 ?
		    strerror(errno) : "cannot write");
		goto out;
	}
	if (pem_write(pub, S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH, k, 0) ==
	    -1) {
		xasprintf(errstr, "%s: %s", pub, errno != 0 ?
		    strerror(errno) : "cannot write");
		unlink(priv);
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_free(k);
	free(priv);
	free(pub);
	ERR_clear_error();
	return rc;
}
