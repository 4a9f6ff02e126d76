/*
 * token_keys.c: the key set of a configuration (token_init: the pinned
 * algorithm, the signing key, the other verification keys by kid, the
 * JWKS, the subkeys of jwt_secret and jwt_secret_previous) and keygen.
 * OpenSSL loads the keys, derives public halves, exports the JWKS and
 * generates keys, which libjwt cannot do.  A set is only read once made:
 * token_init builds it beside the running one.
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
#include "token_int.h"

static unsigned long	 token_serials;	/* token_init, main thread only */

static int
alg_parse(const char *s, enum token_alg *out)
{
	int	 i;

	for (i = 0; i < ALG__MAX && s != NULL; i++)
		if (strcasecmp(s, token_alg_names[i]) == 0) {
			*out = (enum token_alg)i;
			return 0;
		}
	return -1;
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
	if (token_subkey(tk->prev_refresh_key, sizeof(tk->prev_refresh_key),
	    TOKEN_CTX_REFRESH, prev, len) == -1 ||
	    token_subkey(tk->prev_seal_key, sizeof(tk->prev_seal_key),
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
	if (token_subkey(tk->refresh_key, sizeof(tk->refresh_key), TOKEN_CTX_REFRESH,
	    secret, c->jwt_secret_len) == -1 ||
	    token_subkey(tk->seal_key, sizeof(tk->seal_key), TOKEN_CTX_SEAL,
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
		if (token_hs_header(tk) == -1 || token_hs_keys(tk) == -1) {
			*errstr = xstrdup("out of memory");
			goto fail;
		}
		goto done;
	}

	/* RS256/ES256: the signing key, its public half, then the others. */
	if (c->jwt_private_key_file == NULL || *c->jwt_private_key_file == '\0') {
		xasprintf(errstr, "jwt_private_key_file: required for %s",
		    token_alg_names[tk->alg]);
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
		    c->jwt_private_key_file, token_alg_names[tk->alg]);
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
	token_data_key_wipe();
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
	free(tk->hs_hdr);
	for (i = 0; i < 2; i++) {
		EVP_MD_CTX_free(tk->hs_in[i]);
		EVP_MD_CTX_free(tk->hs_out[i]);
	}
	json_decref(tk->jwks);
	sodium_memzero(tk, sizeof(*tk));
	free(tk);
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
