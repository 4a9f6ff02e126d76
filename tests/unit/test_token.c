/*
 * test_token.c: access tokens are issued and verified with the pinned
 * algorithm (HS256, RS256, ES256); forged, tampered, mis-addressed,
 * expired and malformed tokens are rejected; keys rotate by kid; the JWKS,
 * the refresh-token hash and the sealed box behave.  Keys are generated
 * at test time in a temporary directory.  token.c makes and checks HS256
 * tokens with libsodium and RS256/ES256 ones through libjwt, so tokens are
 * also made and checked here with libjwt, libsodium and bare OpenSSL: a
 * quirk of either side cannot hide on both.
 */
#include "config.h"

#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "extern.h"

/* The config's strings are char *: the tests lend it literals, never freed. */
static char *
mut(const char *s)
{
	return (char *)(uintptr_t)s;
}


struct config	*cfg;

#define SECRET		"0123456789abcdef0123456789abcdef-unit-test"
#define ISSUER		"https://auth.example.test"
#define AUDIENCE	"example-api"
#define LEEWAY		30
#define TTL		900
#define SUB		"5d1c9a4e-3b7f-4f0e-9a51-2c8e7d6b1a90"
#define SID		"0b9f6a2c-7e34-4c1d-8f25-6a7b3c9d0e11"

static char		 dir[] = "/tmp/fa-test-token-XXXXXX";
static struct config	 conf;

static char *
path(const char *name)
{
	char	*p;

	xasprintf(&p, "%s/%s", dir, name);
	return p;
}

/* (Re)initialise the token module; keys are file names in dir. */
static int
setup_alg(const char *alg, const char *keyfile, const char *kid,
    const char *pubkeys)
{
	char	*err = NULL, *kf = NULL;
	int	 rc;

	free(conf.jwt_private_key_file);
	free(conf.jwt_public_keys);
	token_free(conf.tokens);	/* the keys hang on the config */
	memset(&conf, 0, sizeof(conf));
	conf.jwt_alg = mut(alg);
	conf.jwt_secret = mut(SECRET);
	conf.jwt_secret_len = strlen(SECRET);
	conf.jwt_issuer = mut(ISSUER);
	conf.jwt_audience = mut(AUDIENCE);
	conf.jwt_leeway = LEEWAY;
	conf.access_ttl = TTL;
	conf.jwt_kid = mut(kid);
	if (keyfile != NULL)
		kf = path(keyfile);
	conf.jwt_private_key_file = kf;
	conf.jwt_public_keys = NULL;
	if (pubkeys != NULL) {
		/* "kid=file" pairs relative to dir. */
		char	*copy = xstrdup(pubkeys), *save = NULL, *it, *out;

		out = xstrdup("");
		for (it = strtok_r(copy, ",", &save); it != NULL;
		    it = strtok_r(NULL, ",", &save)) {
			char	*eq = strchr(it, '='), *n;

			*eq = '\0';
			xasprintf(&n, "%s%s%s=%s/%s", out, *out ? "," : "",
			    it, dir, eq + 1);
			free(out);
			out = n;
		}
		free(copy);
		conf.jwt_public_keys = out;
	}
	cfg = &conf;
	rc = token_init(&conf, &err);
	if (rc == -1)
		print_message("token_init: %s\n", err);
	free(err);
	return rc;
}

static void
mk_claims(struct claims *c, const char *roles)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->sub, sizeof(c->sub), "%s", SUB);
	snprintf(c->sid, sizeof(c->sid), "%s", SID);
	snprintf(c->email, sizeof(c->email), "%s", "ada@example.test");
	snprintf(c->roles, sizeof(c->roles), "%s", roles);
}

static char *
issue(void)
{
	struct claims	 c;
	char		*tok = NULL;

	mk_claims(&c, "user,admin");
	assert_int_equal(token_issue(&c, 0, &tok), 0);
	assert_non_null(tok);
	return tok;
}

static int
verify(const char *tok)
{
	struct claims	 c;

	return token_verify(tok, strlen(tok), &c);
}

static char *
b64(const void *in, size_t len)
{
	char	*out = xmalloc(B64URL_LEN(len) + 1);

	assert_int_equal(b64url_encode(out, B64URL_LEN(len) + 1, in, len), 0);
	return out;
}

/* Decode segment i (0 header, 1 payload) of tok as JSON. */
static json_t *
segment(const char *tok, int i)
{
	unsigned char	 buf[FA_TOKEN_MAX];
	const char	*s = tok, *e;
	size_t		 n;

	while (i-- > 0)
		s = strchr(s, '.') + 1;
	e = strchr(s, '.');
	assert_int_equal(b64url_decode(buf, sizeof(buf), &n, s,
	    (size_t)(e - s)), 0);
	return json_loadb((const char *)buf, n, 0, NULL);
}

/* A token with the given header and payload text, HMAC-SHA256 with key. */
static char *
craft_hs(const char *hdr, const char *pay, const void *key, size_t keylen)
{
	crypto_auth_hmacsha256_state	 st;
	unsigned char			 mac[crypto_auth_hmacsha256_BYTES];
	char				*h, *p, *in, *m, *tok;

	h = b64(hdr, strlen(hdr));
	p = b64(pay, strlen(pay));
	xasprintf(&in, "%s.%s", h, p);
	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, (unsigned char *)in, strlen(in));
	crypto_auth_hmacsha256_final(&st, mac);
	m = b64(mac, sizeof(mac));
	xasprintf(&tok, "%s.%s", in, m);
	free(h);
	free(p);
	free(in);
	free(m);
	return tok;
}

/*
 * The standard payload with up to two changes: key set to val (a JSON
 * text), or removed when val is NULL; key2 set to val2.  Returned as
 * compact JSON text.
 */
static char *
payload2(const char *key, const char *val, const char *key2,
    const char *val2)
{
	json_t		*j;
	char		*s;
	long long	 now = (long long)time(NULL);

	j = json_pack("{s:s, s:s, s:s, s:s, s:[s], s:s, s:s, s:I, s:I}",
	    "iss", ISSUER, "aud", AUDIENCE, "sub", SUB,
	    "email", "ada@example.test", "roles", "user", "sid", SID,
	    "jti", "AAAAAAAAAAAAAAAAAAAAAA", "iat", (json_int_t)now,
	    "exp", (json_int_t)(now + TTL));
	assert_non_null(j);
	if (key != NULL && val == NULL)
		json_object_del(j, key);
	else if (key != NULL)
		json_object_set_new(j, key, json_loads(val, JSON_DECODE_ANY,
		    NULL));
	if (key2 != NULL)
		json_object_set_new(j, key2, json_loads(val2, JSON_DECODE_ANY,
		    NULL));
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

static char *
payload(const char *key, const char *val)
{
	return payload2(key, val, NULL, NULL);
}

#define HS_HDR	"{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* HS256 token with a payload change, signed with the right secret. */
static int
verify_hs_payload2(const char *key, const char *val, const char *key2,
    const char *val2)
{
	char	*p, *tok;
	int	 rc;

	p = payload2(key, val, key2, val2);
	tok = craft_hs(HS_HDR, p, SECRET, strlen(SECRET));
	rc = verify(tok);
	free(p);
	free(tok);
	return rc;
}

static int
verify_hs_payload(const char *key, const char *val)
{
	return verify_hs_payload2(key, val, NULL, NULL);
}

static int
verify_hs_header(const char *hdr)
{
	char	*p, *tok;
	int	 rc;

	p = payload(NULL, NULL);
	tok = craft_hs(hdr, p, SECRET, strlen(SECRET));
	rc = verify(tok);
	free(p);
	free(tok);
	return rc;
}

static char *
slurp(const char *name, size_t *len)
{
	char	*p = path(name), *buf;
	FILE	*f;
	long	 n;

	assert_non_null(f = fopen(p, "r"));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = xmalloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	free(p);
	*len = (size_t)n;
	return buf;
}

/* Sign payload text with libjwt and a private key file from dir. */
static char *
libjwt_sign(jwt_alg_t alg, const char *keyfile, const char *kid,
    const char *pay)
{
	jwt_t	*j = NULL;
	char	*key, *tok;
	size_t	 len;

	key = slurp(keyfile, &len);
	assert_int_equal(jwt_new(&j), 0);
	assert_int_equal(jwt_add_grants_json(j, pay), 0);
	if (kid != NULL)
		assert_int_equal(jwt_add_header(j, "kid", kid), 0);
	assert_int_equal(jwt_set_alg(j, alg, (unsigned char *)key, (int)len),
	    0);
	tok = jwt_encode_str(j);
	assert_non_null(tok);
	jwt_free(j);
	free(key);
	return tok;
}

static EVP_PKEY *
pem_key(const char *name, int private)
{
	EVP_PKEY	*k;
	BIO		*bio;
	char		*pem;
	size_t		 len;

	pem = slurp(name, &len);
	assert_non_null(bio = BIO_new_mem_buf(pem, (int)len));
	k = private ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) :
	    PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	assert_non_null(k);
	BIO_free(bio);
	free(pem);
	return k;
}

/*
 * Sign header and payload text with bare OpenSSL and a private key file:
 * RS256, or ES256 as raw r||s (JOSE) unless der is set.
 */
static char *
craft_pem(const char *hdr, const char *pay, const char *keyfile, int der)
{
	EVP_PKEY		*k = pem_key(keyfile, 1);
	EVP_MD_CTX		*md;
	ECDSA_SIG		*es;
	const BIGNUM		*r, *s;
	const unsigned char	*p;
	unsigned char		 sig[1024], raw[64];
	char			*h, *b, *in, *m, *tok;
	size_t			 n = sizeof(sig);

	h = b64(hdr, strlen(hdr));
	b = b64(pay, strlen(pay));
	xasprintf(&in, "%s.%s", h, b);
	assert_non_null(md = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k),
	    1);
	assert_int_equal(EVP_DigestSign(md, sig, &n, (unsigned char *)in,
	    strlen(in)), 1);
	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC && !der) {
		p = sig;
		assert_non_null(es = d2i_ECDSA_SIG(NULL, &p, (long)n));
		ECDSA_SIG_get0(es, &r, &s);
		assert_int_equal(BN_bn2binpad(r, raw, 32), 32);
		assert_int_equal(BN_bn2binpad(s, raw + 32, 32), 32);
		ECDSA_SIG_free(es);
		m = b64(raw, sizeof(raw));
	} else
		m = b64(sig, n);
	xasprintf(&tok, "%s.%s", in, m);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	free(h);
	free(b);
	free(in);
	free(m);
	return tok;
}

/* 1 if bare OpenSSL accepts tok's ES256 (r||s) signature under pubfile. */
static int
openssl_es256_ok(const char *tok, const char *pubfile)
{
	EVP_PKEY	*k = pem_key(pubfile, 0);
	EVP_MD_CTX	*md;
	ECDSA_SIG	*es;
	BIGNUM		*r, *s;
	unsigned char	 sig[128], *der = NULL;
	const char	*dot = strrchr(tok, '.');
	size_t		 n;
	int		 dlen, ok;

	assert_int_equal(b64url_decode(sig, sizeof(sig), &n, dot + 1,
	    strlen(dot + 1)), 0);
	assert_int_equal(n, 64);
	assert_non_null(es = ECDSA_SIG_new());
	assert_non_null(r = BN_bin2bn(sig, 32, NULL));
	assert_non_null(s = BN_bin2bn(sig + 32, 32, NULL));
	assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
	assert_true((dlen = i2d_ECDSA_SIG(es, &der)) > 0);
	assert_non_null(md = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL,
	    k), 1);
	ok = EVP_DigestVerify(md, der, (size_t)dlen, (const unsigned char *)tok,
	    (size_t)(dot - tok)) == 1;
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	EVP_PKEY_free(k);
	return ok;
}

/* Set the unused low bits of the last base64url character of tok. */
static void
noncanonical_tail(char *tok)
{
	static const char	 alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	char			*last = tok + strlen(tok) - 1;

	*last = alpha[(strchr(alpha, *last) - alpha) ^ 1];
}

static int
group_setup(void **state)
{
	static const char *const gen[][2] = {
		{ "rs256", "rk1" }, { "rs256", "rk2" },
		{ "es256", "ek1" }, { "es256", "ek2" },
	};
	char	*err = NULL;
	size_t	 i;

	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	for (i = 0; i < sizeof(gen) / sizeof(gen[0]); i++)
		if (token_keygen(gen[i][0], gen[i][1], dir, &err) == -1) {
			print_message("keygen: %s\n", err);
			free(err);
			return -1;
		}
	return 0;
}

static int
group_teardown(void **state)
{
	static const char *const files[] = {
		"rk1.pem", "rk1.pub.pem", "rk2.pem", "rk2.pub.pem",
		"ek1.pem", "ek1.pub.pem", "ek2.pem", "ek2.pub.pem",
		"kg.pem", "kg.pub.pem",
	};
	size_t	 i;
	char	*p;

	(void)state;
	token_shutdown();
	free(conf.jwt_private_key_file);
	free(conf.jwt_public_keys);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		p = path(files[i]);
		unlink(p);
		free(p);
	}
	return rmdir(dir);
}

static int
hs_setup(void **state)
{
	(void)state;
	return setup_alg("HS256", NULL, NULL, NULL);
}

static void
hs256_issue_then_verify_round_trips(void **state)
{
	struct claims	 in, out;
	char		*tok = NULL;
	json_t		*h, *p;
	long long	 now = (long long)time(NULL);

	(void)state;
	mk_claims(&in, "user,admin");
	assert_int_equal(token_issue(&in, 0, &tok), 0);
	assert_int_equal(strlen(in.jti), FA_JTI_LEN);
	assert_true(in.iat >= now && in.iat <= now + 1);
	assert_int_equal(in.exp, in.iat + TTL);
	assert_int_equal(token_verify(tok, strlen(tok), &out), 0);
	assert_string_equal(out.sub, SUB);
	assert_string_equal(out.sid, SID);
	assert_string_equal(out.email, "ada@example.test");
	assert_string_equal(out.roles, "user,admin");
	assert_string_equal(out.jti, in.jti);
	assert_int_equal(out.iat, in.iat);
	assert_int_equal(out.exp, in.exp);

	h = segment(tok, 0);
	assert_string_equal(json_string_value(json_object_get(h, "alg")),
	    "HS256");
	assert_string_equal(json_string_value(json_object_get(h, "typ")),
	    "JWT");
	assert_null(json_object_get(h, "kid"));
	p = segment(tok, 1);
	assert_string_equal(json_string_value(json_object_get(p, "iss")),
	    ISSUER);
	assert_string_equal(json_string_value(json_object_get(p, "aud")),
	    AUDIENCE);
	assert_true(json_is_array(json_object_get(p, "roles")));
	assert_int_equal(json_array_size(json_object_get(p, "roles")), 2);
	json_decref(h);
	json_decref(p);
	free(tok);
}

static void
issue_gives_fresh_jti_each_time(void **state)
{
	struct claims	 a, b;
	char		*t1 = NULL, *t2 = NULL;

	(void)state;
	mk_claims(&a, "user");
	mk_claims(&b, "user");
	assert_int_equal(token_issue(&a, 0, &t1), 0);
	assert_int_equal(token_issue(&b, 0, &t2), 0);
	assert_string_not_equal(a.jti, b.jti);
	assert_string_not_equal(t1, t2);
	free(t1);
	free(t2);
}

static void
issue_carries_the_revocation_generation(void **state)
{
	struct claims	 c, out;
	char		*tok = NULL;
	long long	 now = (long long)time(NULL);

	(void)state;
	mk_claims(&c, "user");
	assert_int_equal(token_issue(&c, 7, &tok), 0);
	assert_true(c.iat >= now && c.iat <= now + 1);
	assert_int_equal(c.exp, c.iat + TTL);
	assert_int_equal(c.gen, 7);
	assert_int_equal(token_verify(tok, strlen(tok), &out), 0);
	assert_int_equal(out.gen, 7);
	free(tok);
	/* generation 0 writes no claim, and reads back as 0 */
	assert_int_equal(token_issue(&c, 0, &tok), 0);
	assert_int_equal(token_verify(tok, strlen(tok), &out), 0);
	assert_int_equal(out.gen, 0);
	free(tok);
}

static void
empty_roles_become_empty_array(void **state)
{
	struct claims	 c, out;
	char		*tok = NULL;
	json_t		*p;

	(void)state;
	mk_claims(&c, "");
	assert_int_equal(token_issue(&c, 0, &tok), 0);
	p = segment(tok, 1);
	assert_true(json_is_array(json_object_get(p, "roles")));
	assert_int_equal(json_array_size(json_object_get(p, "roles")), 0);
	assert_int_equal(token_verify(tok, strlen(tok), &out), 0);
	assert_string_equal(out.roles, "");
	json_decref(p);
	free(tok);
}

/*
 * The claims segment is written without jansson; it must be exactly what
 * jansson dumps of the claims object with libjwt's flags (compact, keys
 * sorted): escapes, C0 bytes, UTF-8, empty and repeated commas in roles,
 * gen absent and present, aal 1 and 2.  A string that is not UTF-8 fails
 * the issue, as json_pack failed it.
 */
static void
claims_text_is_what_jansson_dumps(void **state)
{
	static const struct {
		const char	*email, *roles, *iss, *aud;
		long long	 gen;
		int		 aal, verified;
	} cases[] = {
		{ "ada@example.test", "user", ISSUER, AUDIENCE, 0, 1, 0 },
		{ "o'\"neil\\/\xc3\xa9@example.test", "user,admin,a-b_c",
		    "iss \"q\" \\ \x01\x1f\t\n\r\b\f \x7f /",
		    "aud\xe2\x80\xa8\xf0\x9f\x98\x80", 7, 2, 1 },
		{ "x@y.test", "", "", "a", 1, 1, 1 },
		{ "x@y.test", ",,user,,admin,", ISSUER, AUDIENCE, 0, 2, 0 },
	};
	struct claims	 c;
	json_t		*want;
	unsigned char	 pay[FA_TOKEN_MAX];
	char		*tok, *text;
	const char	*d1, *d2;
	size_t		 i, n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		conf.jwt_issuer = mut(cases[i].iss);
		conf.jwt_audience = mut(cases[i].aud);
		mk_claims(&c, cases[i].roles);
		snprintf(c.email, sizeof(c.email), "%s", cases[i].email);
		c.aal = cases[i].aal;
		c.email_verified = cases[i].verified;
		tok = NULL;
		assert_int_equal(token_issue(&c, cases[i].gen, &tok), 0);
		d1 = strchr(tok, '.');
		d2 = strchr(d1 + 1, '.');
		assert_int_equal(b64url_decode(pay, sizeof(pay) - 1, &n,
		    d1 + 1, (size_t)(d2 - d1 - 1)), 0);
		pay[n] = '\0';
		want = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, "
		    "s:o, s:o, s:i, s:b, s:o*}",
		    "iss", cases[i].iss, "aud", cases[i].aud, "sub", c.sub,
		    "email", c.email, "sid", c.sid, "jti", c.jti,
		    "iat", (json_int_t)c.iat, "exp", (json_int_t)c.exp,
		    "roles", roles_json(c.roles), "amr", token_amr(c.aal),
		    "aal", c.aal, "email_verified", c.email_verified != 0,
		    "gen", cases[i].gen > 0 ?
		    json_integer((json_int_t)cases[i].gen) : NULL);
		assert_non_null(want);
		text = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
		assert_string_equal((const char *)pay, text);
		free(text);
		json_decref(want);
		free(tok);
	}
	conf.jwt_issuer = mut("not \xc3 UTF-8");
	mk_claims(&c, "user");
	tok = NULL;
	assert_int_equal(token_issue(&c, 0, &tok), -1);
	assert_null(tok);
	conf.jwt_issuer = mut(ISSUER);
	conf.jwt_audience = mut(AUDIENCE);
}

static void
libjwt_accepts_our_hs256_tokens(void **state)
{
	jwt_t	*j = NULL;
	char	*tok = issue();

	(void)state;
	assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)SECRET,
	    (int)strlen(SECRET)), 0);
	assert_int_equal(jwt_get_alg(j), JWT_ALG_HS256);
	assert_string_equal(jwt_get_grant(j, "sub"), SUB);
	jwt_free(j);
	free(tok);
}

/* libjwt's HS256 (or other alg) token of payload text, under key. */
static char *
libjwt_hs(jwt_alg_t alg, const char *pay, const char *key)
{
	jwt_t	*j = NULL;
	char	*tok;

	assert_int_equal(jwt_new(&j), 0);
	assert_int_equal(jwt_add_grants_json(j, pay), 0);
	assert_int_equal(jwt_set_alg(j, alg, (const unsigned char *)key,
	    key != NULL ? (int)strlen(key) : 0), 0);
	assert_non_null(tok = jwt_encode_str(j));
	jwt_free(j);
	return tok;
}

static void
hs256_tokens_are_what_libjwt_makes(void **state)
{
	struct claims	 c, out;
	jwt_t		*j = NULL;
	json_t		*h;
	unsigned char	 pay[FA_TOKEN_MAX];
	char		*tok = NULL, *theirs;
	const char	*d1, *d2;
	size_t		 n;

	(void)state;
	mk_claims(&c, "user,admin");
	snprintf(c.email, sizeof(c.email), "%s",
	    "o'\"neil\\/\xc3\xa9@example.test");	/* jansson escapes it */
	c.aal = TOKEN_AAL_MFA;
	c.email_verified = 1;
	assert_int_equal(token_issue(&c, 5, &tok), 0);
	/* Exactly alg HS256 and typ JWT in the header. */
	assert_non_null(h = segment(tok, 0));
	assert_int_equal(json_object_size(h), 2);
	assert_string_equal(json_string_value(json_object_get(h, "alg")),
	    "HS256");
	assert_string_equal(json_string_value(json_object_get(h, "typ")),
	    "JWT");
	json_decref(h);
	/* libjwt checks it with the same key... */
	assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)SECRET,
	    (int)strlen(SECRET)), 0);
	assert_int_equal(jwt_get_alg(j), JWT_ALG_HS256);
	assert_string_equal(jwt_get_grant(j, "email"), c.email);
	assert_int_equal(jwt_get_grant_int(j, "gen"), 5);
	jwt_free(j);
	/* ...and makes the very same token of the same payload. */
	d1 = strchr(tok, '.');
	d2 = strchr(d1 + 1, '.');
	assert_int_equal(b64url_decode(pay, sizeof(pay) - 1, &n, d1 + 1,
	    (size_t)(d2 - d1 - 1)), 0);
	pay[n] = '\0';
	theirs = libjwt_hs(JWT_ALG_HS256, (const char *)pay, SECRET);
	assert_string_equal(theirs, tok);
	free(theirs);
	assert_int_equal(token_verify(tok, strlen(tok), &out), 0);
	assert_string_equal(out.email, c.email);
	assert_int_equal(out.aal, TOKEN_AAL_MFA);
	assert_int_equal(out.email_verified, 1);
	assert_int_equal(out.gen, 5);
	free(tok);
}

/*
 * A secret longer than SHA-256's block is hashed first (RFC 2104): libjwt
 * (OpenSSL's HMAC) and we agree on tokens under a 100-byte secret, both
 * ways, and under the current secret with a long previous one.
 */
static void
long_secret_hmac_agrees_with_libjwt(void **state)
{
	static const char	 longsec[] =
	    "a secret of one hundred bytes, longer than the sixty-four of "
	    "a SHA-256 block, as RFC 7518 permits!!!";
	struct claims		 c, out;
	jwt_t			*j = NULL;
	char			*tok = NULL, *err = NULL, *theirs;
	const char		*p = "{\"sub\":\"" SUB "\",\"sid\":\"" SID
	    "\",\"email\":\"a@b.test\",\"roles\":[\"user\"],"
	    "\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\","
	    "\"jti\":\"abcdefghijklmnopqrstuv\",\"iat\":1,"
	    "\"exp\":4102444800}";

	(void)state;
	assert_int_equal(sizeof(longsec) - 1, 100);
	conf.jwt_secret = mut(longsec);
	conf.jwt_secret_len = sizeof(longsec) - 1;
	assert_int_equal(token_init(&conf, &err), 0);
	mk_claims(&c, "user");
	assert_int_equal(token_issue(&c, 0, &tok), 0);
	assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)longsec,
	    (int)sizeof(longsec) - 1), 0);
	jwt_free(j);
	assert_int_equal(token_verify(tok, strlen(tok), &out), 0);
	free(tok);
	theirs = libjwt_hs(JWT_ALG_HS256, p, longsec);
	assert_int_equal(token_verify(theirs, strlen(theirs), &out), 0);
	/* signed under the long one, now the previous: still good */
	conf.jwt_secret = mut(SECRET);
	conf.jwt_secret_len = strlen(SECRET);
	conf.jwt_secret_previous = mut(longsec);
	conf.jwt_secret_previous_len = sizeof(longsec) - 1;
	assert_int_equal(token_init(&conf, &err), 0);
	assert_int_equal(token_verify(theirs, strlen(theirs), &out), 0);
	free(theirs);
	theirs = libjwt_hs(JWT_ALG_HS256, p, "another secret of enough length!!");
	assert_int_equal(token_verify(theirs, strlen(theirs), &out), -1);
	free(theirs);
	conf.jwt_secret_previous = NULL;
	conf.jwt_secret_previous_len = 0;
	assert_int_equal(token_init(&conf, &err), 0);
}

static void
libjwt_hs256_tokens_verify(void **state)
{
	struct claims	 out;
	char		*p = payload(NULL, NULL), *tok;

	(void)state;
	tok = libjwt_hs(JWT_ALG_HS256, p, SECRET);
	assert_int_equal(token_verify(tok, strlen(tok), &out), 0);
	assert_string_equal(out.sub, SUB);
	assert_string_equal(out.roles, "user");
	free(tok);
	/* Not under another key. */
	tok = libjwt_hs(JWT_ALG_HS256, p, "another secret of enough length!!");
	assert_int_equal(verify(tok), -1);
	free(tok);
	free(p);
}

/* Every token made by flipping one bit of one decoded segment of tok. */
static void
each_bit_flipped(const char *tok, int seg)
{
	unsigned char	 buf[FA_TOKEN_MAX];
	const char	*s = tok, *e;
	char		*enc, *forged;
	size_t		 n, i;
	int		 b;

	for (i = 0; i < (size_t)seg; i++)
		s = strchr(s, '.') + 1;
	e = seg < 2 ? strchr(s, '.') : s + strlen(s);
	assert_int_equal(b64url_decode(buf, sizeof(buf), &n, s,
	    (size_t)(e - s)), 0);
	for (i = 0; i < n; i++)
		for (b = 0; b < 8; b++) {
			buf[i] ^= (unsigned char)(1 << b);
			enc = b64(buf, n);
			xasprintf(&forged, "%.*s%s%s", (int)(s - tok), tok, enc,
			    e);
			assert_int_equal(verify(forged), -1);
			free(forged);
			free(enc);
			buf[i] ^= (unsigned char)(1 << b);
		}
}

static void
one_bit_changed_anywhere_is_rejected(void **state)
{
	char	*tok = issue();

	(void)state;
	each_bit_flipped(tok, 0);
	each_bit_flipped(tok, 1);
	each_bit_flipped(tok, 2);
	assert_int_equal(verify(tok), 0);
	free(tok);
}

#define PREV_SECRET	"fedcba9876543210fedcba9876543210-the-old-one"

static void
previous_secret_verifies_only_while_set(void **state)
{
	jwt_t	*j = NULL;
	char	*err = NULL, *p = payload(NULL, NULL), *old, *cur, *other;
	char	*tok = NULL;

	(void)state;
	old = craft_hs(HS_HDR, p, PREV_SECRET, strlen(PREV_SECRET));
	cur = craft_hs(HS_HDR, p, SECRET, strlen(SECRET));
	other = craft_hs(HS_HDR, p, "another secret of enough length!!", 33);
	assert_int_equal(setup_alg("HS256", NULL, NULL, NULL), 0);
	assert_int_equal(verify(old), -1);
	assert_int_equal(verify(cur), 0);
	conf.jwt_secret_previous = mut(PREV_SECRET);
	conf.jwt_secret_previous_len = strlen(PREV_SECRET);
	assert_int_equal(token_init(&conf, &err), 0);
	assert_int_equal(verify(old), 0);
	assert_int_equal(verify(cur), 0);
	assert_int_equal(verify(other), -1);
	/* New tokens are signed under the current secret only. */
	tok = issue();
	assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)SECRET,
	    (int)strlen(SECRET)), 0);
	jwt_free(j);
	j = NULL;
	assert_int_not_equal(jwt_decode(&j, tok,
	    (const unsigned char *)PREV_SECRET, (int)strlen(PREV_SECRET)), 0);
	jwt_free(j);
	/* The previous secret removed: its tokens die. */
	assert_int_equal(setup_alg("HS256", NULL, NULL, NULL), 0);
	assert_int_equal(verify(old), -1);
	assert_int_equal(verify(tok), 0);
	free(tok);
	free(old);
	free(cur);
	free(other);
	free(p);
}

static void
rejects_libjwt_tokens_of_other_algs(void **state)
{
	char	*p = payload(NULL, NULL), *tok;

	(void)state;
	tok = libjwt_hs(JWT_ALG_HS384, p, SECRET);
	assert_int_equal(verify(tok), -1);
	free(tok);
	tok = libjwt_hs(JWT_ALG_HS512, p, SECRET);
	assert_int_equal(verify(tok), -1);
	free(tok);
	tok = libjwt_hs(JWT_ALG_NONE, p, NULL);
	assert_int_equal(verify(tok), -1);
	free(tok);
	free(p);
}

static void
rejects_alg_none(void **state)
{
	char	*p = payload(NULL, NULL), *h, *tok;

	(void)state;
	h = b64("{\"alg\":\"none\",\"typ\":\"JWT\"}", 27);
	{
		char	*pb = b64(p, strlen(p));

		xasprintf(&tok, "%s.%s.", h, pb);
		assert_int_equal(verify(tok), -1);
		free(tok);
		xasprintf(&tok, "%s.%s.AAAA", h, pb);
		assert_int_equal(verify(tok), -1);
		free(tok);
		free(pb);
	}
	free(h);
	/* Even with a valid HMAC over it. */
	tok = craft_hs("{\"alg\":\"none\",\"typ\":\"JWT\"}", p, SECRET,
	    strlen(SECRET));
	assert_int_equal(verify(tok), -1);
	free(tok);
	free(p);
}

static void
rejects_alg_other_than_configured(void **state)
{
	(void)state;
	assert_int_equal(verify_hs_header("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"),
	    0);
	assert_int_equal(verify_hs_header("{\"alg\":\"HS384\",\"typ\":\"JWT\"}"),
	    -1);
	assert_int_equal(verify_hs_header("{\"alg\":\"hs256\",\"typ\":\"JWT\"}"),
	    -1);
	assert_int_equal(verify_hs_header("{\"alg\":\"RS256\",\"typ\":\"JWT\"}"),
	    -1);
	assert_int_equal(verify_hs_header("{\"typ\":\"JWT\"}"), -1);
	assert_int_equal(verify_hs_header("{\"alg\":[\"HS256\"]}"), -1);
}

static void
rejects_bad_header(void **state)
{
	(void)state;
	/* typ is optional but must be JWT when present. */
	assert_int_equal(verify_hs_header("{\"alg\":\"HS256\"}"), 0);
	assert_int_equal(verify_hs_header("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}"),
	    -1);
	assert_int_equal(verify_hs_header("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}"),
	    -1);
	assert_int_equal(verify_hs_header("{\"alg\":\"HS256\",\"alg\":\"HS256\"}"),
	    -1);
	assert_int_equal(verify_hs_header("[\"HS256\"]"), -1);
	assert_int_equal(verify_hs_header("{\"alg\":\"HS256\""), -1);
}

static void
rejects_tampered_payload_signature_and_header(void **state)
{
	char	*tok = issue(), *p, *forged, *d1, *d2;

	(void)state;
	d1 = strchr(tok, '.');
	d2 = strchr(d1 + 1, '.');
	/* Same header and signature, another subject. */
	{
		char	*pl = payload("sub",
		    "\"11111111-2222-4333-8444-555555555555\"");

		p = b64(pl, strlen(pl));
		xasprintf(&forged, "%.*s.%s%s", (int)(d1 - tok), tok, p, d2);
		assert_int_equal(verify(forged), -1);
		free(forged);
		free(p);
		free(pl);
	}
	/* One signature character changed. */
	forged = xstrdup(tok);
	forged[d2 - tok + 1] = forged[d2 - tok + 1] == 'A' ? 'B' : 'A';
	assert_int_equal(verify(forged), -1);
	free(forged);
	/* Signature truncated. */
	forged = xstrndup(tok, strlen(tok) - 4);
	assert_int_equal(verify(forged), -1);
	free(forged);
	/* Same MAC bytes, non-canonical base64url. */
	forged = xstrdup(tok);
	noncanonical_tail(forged);
	assert_int_equal(verify(forged), -1);
	free(forged);
	/* Header changed (still valid JSON, same alg). */
	p = b64("{\"typ\":\"JWT\",\"alg\":\"HS256\"}", 27);
	xasprintf(&forged, "%s%s", p, d1);
	assert_int_equal(verify(forged), -1);
	free(forged);
	free(p);
	/* Signed with another secret. */
	p = payload(NULL, NULL);
	forged = craft_hs(HS_HDR, p, "another secret of enough length!!", 33);
	assert_int_equal(verify(forged), -1);
	free(forged);
	free(p);
	assert_int_equal(verify(tok), 0);
	free(tok);
}

static void
rejects_wrong_issuer_or_audience(void **state)
{
	(void)state;
	assert_int_equal(verify_hs_payload(NULL, NULL), 0);
	assert_int_equal(verify_hs_payload("iss", "\"https://evil.test\""), -1);
	assert_int_equal(verify_hs_payload("iss", NULL), -1);
	assert_int_equal(verify_hs_payload("aud", "\"other-api\""), -1);
	assert_int_equal(verify_hs_payload("aud", NULL), -1);
	assert_int_equal(verify_hs_payload("aud", "[\"other-api\"]"), -1);
	assert_int_equal(verify_hs_payload("aud", "[]"), -1);
	assert_int_equal(verify_hs_payload("aud",
	    "[\"other-api\",\"" AUDIENCE "\"]"), 0);
}

static void
rejects_expired_beyond_leeway(void **state)
{
	char	 v[32], iat[32];
	long long now = (long long)time(NULL);

	(void)state;
	snprintf(v, sizeof(v), "%lld", now - LEEWAY - 5);
	snprintf(iat, sizeof(iat), "%lld", now - LEEWAY - 5 - TTL);
	assert_int_equal(verify_hs_payload2("exp", v, "iat", iat), -1);
	snprintf(v, sizeof(v), "%lld", now - 3600);
	snprintf(iat, sizeof(iat), "%lld", now - 3600 - TTL);
	assert_int_equal(verify_hs_payload2("exp", v, "iat", iat), -1);
}

static void
accepts_expired_within_leeway(void **state)
{
	char	 v[32], iat[32];
	long long now = (long long)time(NULL);

	(void)state;
	snprintf(v, sizeof(v), "%lld", now - LEEWAY / 2);
	snprintf(iat, sizeof(iat), "%lld", now - LEEWAY / 2 - TTL);
	assert_int_equal(verify_hs_payload2("exp", v, "iat", iat), 0);
	/* Issued after it expired: nonsense. */
	assert_int_equal(verify_hs_payload("exp", v), -1);
}

static void
rejects_iat_in_the_future(void **state)
{
	char	 v[32];
	long long now = (long long)time(NULL);

	(void)state;
	snprintf(v, sizeof(v), "%lld", now + LEEWAY + 60);
	assert_int_equal(verify_hs_payload("iat", v), -1);
	snprintf(v, sizeof(v), "%lld", now + LEEWAY + 60);
	assert_int_equal(verify_hs_payload("nbf", v), -1);
}

static void
rejects_missing_or_malformed_claims(void **state)
{
	static const char *const missing[] = {
		"sub", "sid", "jti", "exp", "iat", "email", "roles",
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(missing) / sizeof(missing[0]); i++)
		assert_int_equal(verify_hs_payload(missing[i], NULL), -1);
	assert_int_equal(verify_hs_payload("sub", "\"not-a-uuid\""), -1);
	assert_int_equal(verify_hs_payload("sid", "42"), -1);
	assert_int_equal(verify_hs_payload("jti", "\"\""), -1);
	assert_int_equal(verify_hs_payload("jti",
	    "\"AAAAAAAAAAAAAAAAAAAAAAA\""), -1);	/* 23 chars */
	assert_int_equal(verify_hs_payload("jti", "\"a b\""), -1);
	assert_int_equal(verify_hs_payload("exp", "\"soon\""), -1);
	assert_int_equal(verify_hs_payload("exp", "1e30"), -1);
	assert_int_equal(verify_hs_payload("roles", "\"user\""), -1);
	assert_int_equal(verify_hs_payload("roles", "[\"Admin\"]"), -1);
	assert_int_equal(verify_hs_payload("roles", "[\"user,admin\"]"), -1);
	assert_int_equal(verify_hs_payload("roles", "[1]"), -1);
	assert_int_equal(verify_hs_payload("roles",
	    "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\","
	    "\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]"), -1);
	assert_int_equal(verify_hs_payload("roles",
	    "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\","
	    "\"k\",\"l\",\"m\",\"n\",\"o\",\"p\"]"), 0);
	assert_int_equal(verify_hs_payload("email", "null"), -1);
}

static void
rejects_malformed_tokens(void **state)
{
	static const char *const bad[] = {
		"", ".", "..", "...", "abc", "abc.def", "abc.def.ghi.jkl",
		"a.b.c", "eyJhbGciOiJIUzI1NiJ9..sig", ".eyJ9.sig",
		"eyJhbGciOiJIUzI1NiJ9.eyJ9.",
	};
	struct claims	 c;
	char		*tok = issue(), *huge, *t;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(token_verify(bad[i], strlen(bad[i]), &c), -1);
	/* A valid token with a fourth segment, padding or whitespace. */
	xasprintf(&t, "%s.%s", tok, "e30");
	assert_int_equal(verify(t), -1);
	free(t);
	xasprintf(&t, "%s=", tok);
	assert_int_equal(verify(t), -1);
	free(t);
	xasprintf(&t, " %s", tok);
	assert_int_equal(verify(t), -1);
	free(t);
	/* Only the given length counts, and it may not hide a NUL. */
	assert_int_equal(token_verify(tok, strlen(tok) - 1, &c), -1);
	assert_int_equal(token_verify(tok, strlen(tok) + 1, &c), -1);
	/* Huge input is refused before any work. */
	huge = xmalloc(FA_TOKEN_MAX * 2 + 1);
	memset(huge, 'A', FA_TOKEN_MAX * 2);
	huge[FA_TOKEN_MAX * 2] = '\0';
	huge[10] = '.';
	huge[20] = '.';
	assert_int_equal(verify(huge), -1);
	free(huge);
	assert_int_equal(token_verify(NULL, 0, &c), -1);
	free(tok);
}

static void
jwks_is_empty_for_hs256(void **state)
{
	json_t	*j = token_jwks();

	(void)state;
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "keys")), 0);
	json_decref(j);
}

static void
refresh_hash_is_deterministic_and_keyed(void **state)
{
	const unsigned char	 tok[] = "refresh-token-value";
	char			 a[FA_HASH_HEX + 1], b[FA_HASH_HEX + 1];
	char			 c[FA_HASH_HEX + 1], d[FA_HASH_HEX + 1];
	char			*err = NULL;

	(void)state;
	token_refresh_hash(a, tok, sizeof(tok) - 1);
	token_refresh_hash(b, tok, sizeof(tok) - 1);
	assert_int_equal(strlen(a), FA_HASH_HEX);
	assert_string_equal(a, b);
	token_refresh_hash(c, tok, sizeof(tok) - 2);
	assert_string_not_equal(a, c);
	/* Another server secret gives another hash. */
	conf.jwt_secret = mut("another-secret-another-secret-another");
	conf.jwt_secret_len = strlen(conf.jwt_secret);
	assert_int_equal(token_init(&conf, &err), 0);
	token_refresh_hash(d, tok, sizeof(tok) - 1);
	assert_string_not_equal(a, d);
	/* A secret longer than a BLAKE2b key works too. */
	conf.jwt_secret = mut(SECRET SECRET SECRET);
	conf.jwt_secret_len = strlen(conf.jwt_secret);
	assert_int_equal(token_init(&conf, &err), 0);
	token_refresh_hash(d, tok, sizeof(tok) - 1);
	assert_string_not_equal(a, d);
	assert_int_equal(setup_alg("HS256", NULL, NULL, NULL), 0);
	token_refresh_hash(d, tok, sizeof(tok) - 1);
	assert_string_equal(a, d);
}

static void
seal_then_open_round_trips(void **state)
{
	const unsigned char	 msg[] = "the child refresh token";
	unsigned char		 out[64];
	char			*a = NULL, *b = NULL;
	size_t			 n = 0;

	(void)state;
	assert_int_equal(token_seal(&a, msg, sizeof(msg)), 0);
	assert_int_equal(token_seal(&b, msg, sizeof(msg)), 0);
	assert_string_not_equal(a, b);		/* random nonce */
	assert_null(strstr(a, "child"));
	assert_int_equal(token_open(out, sizeof(out), &n, a), 0);
	assert_int_equal(n, sizeof(msg));
	assert_memory_equal(out, msg, n);
	/* Too small an output buffer. */
	assert_int_equal(token_open(out, sizeof(msg) - 1, &n, a), -1);
	free(a);
	free(b);
	assert_int_equal(token_seal(&a, msg, 0), 0);
	assert_int_equal(token_open(out, sizeof(out), &n, a), 0);
	assert_int_equal(n, 0);
	free(a);
}

static void
open_rejects_tampering(void **state)
{
	const unsigned char	 msg[] = "secret";
	unsigned char		 out[64];
	char			*a = NULL, *t;
	size_t			 n, i;
	char			*err = NULL;

	(void)state;
	assert_int_equal(token_seal(&a, msg, sizeof(msg)), 0);
	for (i = 0; i < strlen(a); i += 7) {
		t = xstrdup(a);
		t[i] = t[i] == '0' ? '1' : '0';
		assert_int_equal(token_open(out, sizeof(out), &n, t), -1);
		free(t);
	}
	t = xstrndup(a, strlen(a) - 2);
	assert_int_equal(token_open(out, sizeof(out), &n, t), -1);
	free(t);
	xasprintf(&t, "%s00", a);
	assert_int_equal(token_open(out, sizeof(out), &n, t), -1);
	free(t);
	xasprintf(&t, "%sx", a);
	assert_int_equal(token_open(out, sizeof(out), &n, t), -1);
	free(t);
	assert_int_equal(token_open(out, sizeof(out), &n, ""), -1);
	assert_int_equal(token_open(out, sizeof(out), &n, "zz"), -1);
	/* Another secret cannot open it. */
	conf.jwt_secret = mut("another-secret-another-secret-another");
	conf.jwt_secret_len = strlen(conf.jwt_secret);
	assert_int_equal(token_init(&conf, &err), 0);
	assert_int_equal(token_open(out, sizeof(out), &n, a), -1);
	free(a);
	assert_int_equal(setup_alg("HS256", NULL, NULL, NULL), 0);
}

/* RS256 and ES256. */

static void
rs256_issue_then_verify_round_trips(void **state)
{
	struct claims	 out;
	char		*tok;
	json_t		*h;

	(void)state;
	assert_int_equal(setup_alg("RS256", "rk1.pem", "rk1", NULL), 0);
	tok = issue();
	h = segment(tok, 0);
	assert_string_equal(json_string_value(json_object_get(h, "alg")),
	    "RS256");
	assert_string_equal(json_string_value(json_object_get(h, "kid")),
	    "rk1");
	assert_string_equal(json_string_value(json_object_get(h, "typ")),
	    "JWT");
	assert_int_equal(token_verify(tok, strlen(tok), &out), 0);
	assert_string_equal(out.sub, SUB);
	assert_string_equal(out.roles, "user,admin");
	json_decref(h);
	free(tok);
}

static void
es256_issue_then_verify_round_trips(void **state)
{
	struct claims	 out;
	unsigned char	 sig[128];
	char		*tok;
	size_t		 n;
	json_t		*h;
	int		 i;

	(void)state;
	assert_int_equal(setup_alg("ES256", "ek1.pem", "ek1", NULL), 0);
	/* Several times: r or s with leading zero bytes must still work. */
	for (i = 0; i < 32; i++) {
		tok = issue();
		assert_int_equal(token_verify(tok, strlen(tok), &out), 0);
		/* JOSE form: raw r||s, 64 bytes, not DER. */
		assert_int_equal(b64url_decode(sig, sizeof(sig), &n,
		    strrchr(tok, '.') + 1, strlen(strrchr(tok, '.') + 1)), 0);
		assert_int_equal(n, 64);
		free(tok);
	}
	tok = issue();
	h = segment(tok, 0);
	assert_string_equal(json_string_value(json_object_get(h, "alg")),
	    "ES256");
	assert_string_equal(json_string_value(json_object_get(h, "kid")),
	    "ek1");
	json_decref(h);
	free(tok);
}

static void
libjwt_interoperates_for_rs256_and_es256(void **state)
{
	static const struct {
		const char	*alg, *priv, *pub, *kid;
		jwt_alg_t	 jalg;
	} t[] = {
		{ "RS256", "rk1.pem", "rk1.pub.pem", "rk1", JWT_ALG_RS256 },
		{ "ES256", "ek1.pem", "ek1.pub.pem", "ek1", JWT_ALG_ES256 },
	};
	jwt_t	*j;
	char	*tok, *pub, *p;
	size_t	 i, len;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(setup_alg(t[i].alg, t[i].priv, t[i].kid,
		    NULL), 0);
		/* libjwt verifies ours. */
		tok = issue();
		pub = slurp(t[i].pub, &len);
		j = NULL;
		assert_int_equal(jwt_decode(&j, tok, (unsigned char *)pub,
		    (int)len), 0);
		assert_int_equal(jwt_get_alg(j), t[i].jalg);
		assert_string_equal(jwt_get_grant(j, "sid"), SID);
		jwt_free(j);
		free(tok);
		free(pub);
		/* We verify libjwt's. */
		p = payload(NULL, NULL);
		tok = libjwt_sign(t[i].jalg, t[i].priv, t[i].kid, p);
		assert_int_equal(verify(tok), 0);
		free(tok);
		/* ... but not without a kid, nor with one we do not know. */
		tok = libjwt_sign(t[i].jalg, t[i].priv, NULL, p);
		assert_int_equal(verify(tok), -1);
		free(tok);
		tok = libjwt_sign(t[i].jalg, t[i].priv, "unknown", p);
		assert_int_equal(verify(tok), -1);
		free(tok);
		free(p);
	}
}

static void
bare_openssl_interoperates_for_rs256_and_es256(void **state)
{
	char	*p, *tok, *t;

	(void)state;
	p = payload(NULL, NULL);
	/* Our ES256 signatures are JOSE r||s that OpenSSL itself accepts. */
	assert_int_equal(setup_alg("ES256", "ek1.pem", "ek1", NULL), 0);
	tok = issue();
	assert_true(openssl_es256_ok(tok, "ek1.pub.pem"));
	assert_false(openssl_es256_ok(tok, "ek2.pub.pem"));
	/* A valid signature, one unused bit set: refused, not decoded. */
	t = xstrdup(tok);
	noncanonical_tail(t);
	assert_int_equal(verify(t), -1);
	free(t);
	free(tok);
	/* We accept what OpenSSL signs, in the JOSE form only. */
	tok = craft_pem("{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"ek1\"}",
	    p, "ek1.pem", 0);
	assert_int_equal(verify(tok), 0);
	free(tok);
	tok = craft_pem("{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"ek1\"}",
	    p, "ek1.pem", 1);
	assert_int_equal(verify(tok), -1);
	free(tok);
	tok = craft_pem("{\"alg\":\"ES256\",\"kid\":\"ek1\"}", p, "ek2.pem",
	    0);
	assert_int_equal(verify(tok), -1);
	free(tok);
	assert_int_equal(setup_alg("RS256", "rk1.pem", "rk1", NULL), 0);
	tok = craft_pem("{\"alg\":\"RS256\",\"kid\":\"rk1\"}", p, "rk1.pem",
	    0);
	assert_int_equal(verify(tok), 0);
	free(tok);
	tok = craft_pem("{\"alg\":\"RS256\",\"kid\":\"rk1\"}", p, "rk2.pem",
	    0);
	assert_int_equal(verify(tok), -1);
	free(tok);
	free(p);
}

static void
rejects_hs256_signed_with_public_key_when_rs256(void **state)
{
	char	*pem, *p, *tok;
	size_t	 len;

	(void)state;
	assert_int_equal(setup_alg("RS256", "rk1.pem", "rk1", NULL), 0);
	pem = slurp("rk1.pub.pem", &len);
	p = payload(NULL, NULL);
	tok = craft_hs("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"rk1\"}",
	    p, pem, len);
	assert_int_equal(verify(tok), -1);
	free(tok);
	/* The classic confusion: the header claims RS256, HMAC signature. */
	tok = craft_hs("{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"rk1\"}",
	    p, pem, len);
	assert_int_equal(verify(tok), -1);
	free(tok);
	/* And the configured secret is no key for RS256 either. */
	tok = craft_hs("{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"rk1\"}",
	    p, SECRET, strlen(SECRET));
	assert_int_equal(verify(tok), -1);
	free(tok);
	free(p);
	free(pem);
}

static void
rejects_key_of_other_type_than_alg(void **state)
{
	char	*p, *tok;

	(void)state;
	/* RS256 configured, an ES256 key listed for verification. */
	assert_int_equal(setup_alg("RS256", "rk1.pem", "rk1", "ek1=ek1.pub.pem"),
	    0);
	p = payload(NULL, NULL);
	tok = libjwt_sign(JWT_ALG_ES256, "ek1.pem", "ek1", p);
	assert_int_equal(verify(tok), -1);
	free(tok);
	/* An RS256 header naming the EC key's kid. */
	tok = libjwt_sign(JWT_ALG_RS256, "rk1.pem", "ek1", p);
	assert_int_equal(verify(tok), -1);
	free(tok);
	free(p);
}

static void
verifies_old_key_only_while_listed(void **state)
{
	char	*old_rs, *old_es;

	(void)state;
	assert_int_equal(setup_alg("RS256", "rk1.pem", "rk1", NULL), 0);
	old_rs = issue();
	assert_int_equal(verify(old_rs), 0);
	/* Rotate: rk2 signs, rk1 still verifies. */
	assert_int_equal(setup_alg("RS256", "rk2.pem", "rk2",
	    "rk1=rk1.pub.pem"), 0);
	assert_int_equal(verify(old_rs), 0);
	/* A private key file is accepted as a verification key too. */
	assert_int_equal(setup_alg("RS256", "rk2.pem", "rk2", "rk1=rk1.pem"),
	    0);
	assert_int_equal(verify(old_rs), 0);
	/* rk1 retired. */
	assert_int_equal(setup_alg("RS256", "rk2.pem", "rk2", NULL), 0);
	assert_int_equal(verify(old_rs), -1);

	assert_int_equal(setup_alg("ES256", "ek1.pem", "ek1", NULL), 0);
	old_es = issue();
	assert_int_equal(setup_alg("ES256", "ek2.pem", "ek2",
	    "ek1=ek1.pub.pem"), 0);
	assert_int_equal(verify(old_es), 0);
	assert_int_equal(setup_alg("ES256", "ek2.pem", "ek2", NULL), 0);
	assert_int_equal(verify(old_es), -1);
	free(old_rs);
	free(old_es);
}

static void
rejects_key_swapped_under_same_kid(void **state)
{
	char	*tok;

	(void)state;
	assert_int_equal(setup_alg("RS256", "rk1.pem", "rk1", NULL), 0);
	tok = issue();
	/* The kid rk1 now names another key. */
	assert_int_equal(setup_alg("RS256", "rk2.pem", "rk1", NULL), 0);
	assert_int_equal(verify(tok), -1);
	free(tok);
}

static void
jwks_lists_rsa_and_ec_public_keys(void **state)
{
	unsigned char	 buf[512];
	json_t		*j, *k;
	size_t		 n;

	(void)state;
	assert_int_equal(setup_alg("RS256", "rk2.pem", "rk2",
	    "rk1=rk1.pub.pem,ek1=ek1.pub.pem"), 0);
	j = token_jwks();
	assert_int_equal(json_array_size(json_object_get(j, "keys")), 3);
	k = json_array_get(json_object_get(j, "keys"), 0);
	assert_string_equal(json_string_value(json_object_get(k, "kty")), "RSA");
	assert_string_equal(json_string_value(json_object_get(k, "kid")), "rk2");
	assert_string_equal(json_string_value(json_object_get(k, "alg")),
	    "RS256");
	assert_string_equal(json_string_value(json_object_get(k, "use")), "sig");
	assert_string_equal(json_string_value(json_object_get(k, "e")), "AQAB");
	assert_int_equal(b64url_decode(buf, sizeof(buf), &n,
	    json_string_value(json_object_get(k, "n")),
	    json_string_length(json_object_get(k, "n"))), 0);
	assert_int_equal(n, TOKEN_RSA_BITS / 8);
	assert_true(buf[0] & 0x80);
	assert_null(json_object_get(k, "d"));
	k = json_array_get(json_object_get(j, "keys"), 1);
	assert_string_equal(json_string_value(json_object_get(k, "kid")), "rk1");
	k = json_array_get(json_object_get(j, "keys"), 2);
	assert_string_equal(json_string_value(json_object_get(k, "kty")), "EC");
	assert_string_equal(json_string_value(json_object_get(k, "kid")), "ek1");
	assert_string_equal(json_string_value(json_object_get(k, "alg")),
	    "ES256");
	assert_string_equal(json_string_value(json_object_get(k, "crv")),
	    "P-256");
	assert_int_equal(json_string_length(json_object_get(k, "x")), 43);
	assert_int_equal(json_string_length(json_object_get(k, "y")), 43);
	assert_null(json_object_get(k, "d"));
	json_decref(j);
}

static void
init_reports_bad_key_configuration(void **state)
{
	struct claims	 c;
	char		*err = NULL, *kf, *tok = NULL;

	(void)state;
	free(conf.jwt_private_key_file);
	free(conf.jwt_public_keys);
	token_free(conf.tokens);
	memset(&conf, 0, sizeof(conf));
	conf.jwt_alg = mut("RS256");
	conf.jwt_secret = mut(SECRET);
	conf.jwt_secret_len = strlen(SECRET);
	conf.jwt_issuer = mut(ISSUER);
	conf.jwt_audience = mut(AUDIENCE);
	conf.jwt_kid = mut("k");

	conf.jwt_private_key_file = mut("/nonexistent/key.pem");
	assert_int_equal(token_init(&conf, &err), -1);
	assert_non_null(strstr(err, "/nonexistent/key.pem"));
	free(err);

	kf = path("ek1.pem");	/* an EC key for RS256 */
	conf.jwt_private_key_file = kf;
	assert_int_equal(token_init(&conf, &err), -1);
	assert_non_null(strstr(err, "ek1.pem"));
	free(err);

	conf.jwt_alg = mut("ES256");
	conf.jwt_public_keys = mut("x=/nonexistent/old.pem");
	assert_int_equal(token_init(&conf, &err), -1);
	assert_non_null(strstr(err, "/nonexistent/old.pem"));
	free(err);
	conf.jwt_public_keys = mut("k=/dev/null");
	assert_int_equal(token_init(&conf, &err), -1);
	free(err);
	conf.jwt_public_keys = NULL;
	conf.jwt_kid = NULL;
	assert_int_equal(token_init(&conf, &err), -1);
	free(err);
	conf.jwt_kid = mut("k");
	assert_int_equal(token_init(&conf, &err), 0);
	free(kf);

	conf.jwt_alg = mut("PS256");
	assert_int_equal(token_init(&conf, &err), -1);
	free(err);
	conf.jwt_alg = mut("none");
	assert_int_equal(token_init(&conf, &err), -1);
	free(err);
	conf.jwt_alg = mut("HS256");
	conf.jwt_secret_len = CONFIG_SECRET_MIN - 1;
	assert_int_equal(token_init(&conf, &err), -1);
	free(err);
	/* A failed init leaves nothing usable behind. */
	mk_claims(&c, "user");
	assert_int_equal(token_issue(&c, 0, &tok), -1);
	assert_null(tok);
	token_free(conf.tokens);
	memset(&conf, 0, sizeof(conf));
	assert_int_equal(setup_alg("HS256", NULL, NULL, NULL), 0);
}

static void
keygen_writes_private_key_0600_and_never_overwrites(void **state)
{
	struct stat	 st;
	char		*err = NULL, *p;

	(void)state;
	assert_int_equal(token_keygen("es256", "kg", dir, &err), 0);
	p = path("kg.pem");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	free(p);
	p = path("kg.pub.pem");
	assert_int_equal(stat(p, &st), 0);
	free(p);
	assert_int_equal(token_keygen("es256", "kg", dir, &err), -1);
	assert_non_null(strstr(err, "kg.pem"));
	free(err);
	assert_int_equal(token_keygen("rs256", "../kg", dir, &err), -1);
	free(err);
	assert_int_equal(token_keygen("hs256", "kh", dir, &err), -1);
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(hs256_issue_then_verify_round_trips,
		    hs_setup),
		cmocka_unit_test_setup(issue_gives_fresh_jti_each_time,
		    hs_setup),
		cmocka_unit_test_setup(issue_carries_the_revocation_generation,
		    hs_setup),
		cmocka_unit_test_setup(empty_roles_become_empty_array, hs_setup),
		cmocka_unit_test_setup(claims_text_is_what_jansson_dumps,
		    hs_setup),
		cmocka_unit_test_setup(long_secret_hmac_agrees_with_libjwt,
		    hs_setup),
		cmocka_unit_test_setup(libjwt_accepts_our_hs256_tokens,
		    hs_setup),
		cmocka_unit_test_setup(hs256_tokens_are_what_libjwt_makes,
		    hs_setup),
		cmocka_unit_test_setup(libjwt_hs256_tokens_verify, hs_setup),
		cmocka_unit_test_setup(one_bit_changed_anywhere_is_rejected,
		    hs_setup),
		cmocka_unit_test(previous_secret_verifies_only_while_set),
		cmocka_unit_test_setup(rejects_libjwt_tokens_of_other_algs,
		    hs_setup),
		cmocka_unit_test_setup(rejects_alg_none, hs_setup),
		cmocka_unit_test_setup(rejects_alg_other_than_configured,
		    hs_setup),
		cmocka_unit_test_setup(rejects_bad_header, hs_setup),
		cmocka_unit_test_setup(
		    rejects_tampered_payload_signature_and_header, hs_setup),
		cmocka_unit_test_setup(rejects_wrong_issuer_or_audience,
		    hs_setup),
		cmocka_unit_test_setup(rejects_expired_beyond_leeway, hs_setup),
		cmocka_unit_test_setup(accepts_expired_within_leeway, hs_setup),
		cmocka_unit_test_setup(rejects_iat_in_the_future, hs_setup),
		cmocka_unit_test_setup(rejects_missing_or_malformed_claims,
		    hs_setup),
		cmocka_unit_test_setup(rejects_malformed_tokens, hs_setup),
		cmocka_unit_test_setup(jwks_is_empty_for_hs256, hs_setup),
		cmocka_unit_test_setup(refresh_hash_is_deterministic_and_keyed,
		    hs_setup),
		cmocka_unit_test_setup(seal_then_open_round_trips, hs_setup),
		cmocka_unit_test_setup(open_rejects_tampering, hs_setup),
		cmocka_unit_test(rs256_issue_then_verify_round_trips),
		cmocka_unit_test(es256_issue_then_verify_round_trips),
		cmocka_unit_test(libjwt_interoperates_for_rs256_and_es256),
		cmocka_unit_test(bare_openssl_interoperates_for_rs256_and_es256),
		cmocka_unit_test(rejects_hs256_signed_with_public_key_when_rs256),
		cmocka_unit_test(rejects_key_of_other_type_than_alg),
		cmocka_unit_test(verifies_old_key_only_while_listed),
		cmocka_unit_test(rejects_key_swapped_under_same_kid),
		cmocka_unit_test(jwks_lists_rsa_and_ec_public_keys),
		cmocka_unit_test(init_reports_bad_key_configuration),
		cmocka_unit_test(keygen_writes_private_key_0600_and_never_overwrites),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
