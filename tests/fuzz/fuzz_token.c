/*
 * fuzz_token.c: access tokens and the codecs under them.  The first byte
 * picks the pinned algorithm (bits 0-1: HS256, RS256, ES256; RS256/ES256
 * keys are generated at start-up, see fuzz_common.c) and a mode (bits 2-3):
 *
 *  0  raw: the rest is a compact JWS handed to token_verify; whatever it
 *     accepts must satisfy the claim checks below.
 *  1  signed: the rest is "<header JSON>\n<payload JSON>"; the harness
 *     encodes both and signs them with the configured key, so the header
 *     pre-checks (alg pinning, kid/alg binding, typ, crit) and every claim
 *     check are reached.  Bit 4 makes small integer iat/exp/nbf relative
 *     to now.  Whatever token_verify accepts must have the pinned alg, the
 *     signer's kid, our iss and aud, a live exp and well-formed claims.
 *  2  issue and tamper: token_issue with fuzzed roles and email; a token
 *     with well-formed claims must verify and give them back; the same
 *     token with one byte changed must not verify.
 *  3  codecs: b64url decode/encode round trips (one spelling per value),
 *     refresh_parse, uuid_parse and token_open on fuzzed text.
 *
 * In modes 0-2 tcache_verify (the verify cache) must agree with
 * token_verify, both on a miss and on the hit that follows.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "fuzz.h"

#define MODE_RAW	0
#define MODE_SIGNED	1
#define MODE_ISSUE	2
#define MODE_CODEC	3
#define REL_MAX		10000000LL	/* |t| below this is "relative" */

static EVP_PKEY	*signer[FUZZ_ALG__MAX];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_setup(FUZZ_HS256);
	return 0;
}

static EVP_PKEY *
signer_key(enum fuzz_alg alg)
{
	FILE	*f;

	if (signer[alg] != NULL)
		return signer[alg];
	if ((f = fopen(fuzz_private_key(alg), "r")) == NULL)
		fuzz_fail("cannot open the fuzz signing key");
	signer[alg] = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (signer[alg] == NULL)
		fuzz_fail("cannot read the fuzz signing key");
	return signer[alg];
}

/* Signature of in under the current algorithm's key, base64url. */
static char *
sign(const char *in, size_t len)
{
	enum fuzz_alg	 alg = fuzz_current_alg();
	unsigned char	 sig[1024], raw[64];
	const unsigned char *p;
	const BIGNUM	*r, *s;
	ECDSA_SIG	*es;
	EVP_MD_CTX	*md;
	size_t		 n = sizeof(sig);
	char		*out;

	if (alg == FUZZ_HS256) {
		crypto_auth_hmacsha256_state st;

		crypto_auth_hmacsha256_init(&st,
		    (const unsigned char *)FUZZ_SECRET, strlen(FUZZ_SECRET));
		crypto_auth_hmacsha256_update(&st, (const unsigned char *)in,
		    len);
		crypto_auth_hmacsha256_final(&st, sig);
		n = crypto_auth_hmacsha256_BYTES;
	} else {
		if ((md = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
		    signer_key(alg)) != 1 ||
		    EVP_DigestSign(md, sig, &n, (const unsigned char *)in,
		    len) != 1)
			fuzz_fail("EVP_DigestSign failed");
		EVP_MD_CTX_free(md);
		if (alg == FUZZ_ES256) {
			/* DER to the r||s form of RFC 7518 section 3.4 */
			p = sig;
			if ((es = d2i_ECDSA_SIG(NULL, &p, (long)n)) == NULL)
				fuzz_fail("d2i_ECDSA_SIG failed");
			ECDSA_SIG_get0(es, &r, &s);
			if (BN_bn2binpad(r, raw, 32) != 32 ||
			    BN_bn2binpad(s, raw + 32, 32) != 32)
				fuzz_fail("BN_bn2binpad failed");
			ECDSA_SIG_free(es);
			memcpy(sig, raw, sizeof(raw));
			n = sizeof(raw);
		}
	}
	out = xmalloc(B64URL_LEN(n) + 1);
	b64url_encode(out, B64URL_LEN(n) + 1, sig, n);
	return out;
}

static int
is_uuid(const char *s)
{
	unsigned char	 b[16];
	char		 again[FA_UUID_LEN + 1];

	if (strlen(s) != FA_UUID_LEN || uuid_parse(b, s, FA_UUID_LEN) == -1)
		return 0;
	uuid_format(again, b);
	return strcmp(again, s) == 0;
}

/* What every accepted token's claims must look like. */
static void
check_claims(const struct claims *c)
{
	long long	 now = now_ms() / 1000;
	const char	*p;
	size_t		 len;

	if (!is_uuid(c->sub) || !is_uuid(c->sid))
		fuzz_fail("accepted token: sub/sid not a canonical uuid");
	if (c->jti[0] == '\0' || strspn(c->jti, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_") != strlen(c->jti))
		fuzz_fail("accepted token: bad jti");
	if (c->email[0] == '\0' || validate_utf8(c->email,
	    strlen(c->email)) == -1)
		fuzz_fail("accepted token: bad email claim");
	if (c->iat < 0 || c->gen < 0 || c->exp < c->iat ||
	    c->exp < now - fuzz_conf.jwt_leeway ||
	    c->iat > now + fuzz_conf.jwt_leeway)
		fuzz_fail("accepted token: iat %lld exp %lld now %lld", c->iat,
		    c->exp, now);
	for (p = c->roles; *p != '\0'; p += len + (p[len] == ',')) {
		len = strcspn(p, ",");
		if (validate_role(p, len) == -1)
			fuzz_fail("accepted token: bad role");
	}
}

static int
claims_eq(const struct claims *a, const struct claims *b)
{
	return strcmp(a->sub, b->sub) == 0 && strcmp(a->sid, b->sid) == 0 &&
	    strcmp(a->jti, b->jti) == 0 && strcmp(a->email, b->email) == 0 &&
	    strcmp(a->roles, b->roles) == 0 && a->iat == b->iat &&
	    a->exp == b->exp && a->gen == b->gen;
}

/*
 * token_verify, then tcache_verify twice (a miss, then a hit when valid):
 * the three must agree.  Returns token_verify's answer.
 */
static int
verify_all(const char *tok, size_t len, struct claims *c)
{
	struct claims	 t1, t2;
	int		 rc, r1, r2;

	rc = token_verify(tok, len, c);
	r1 = tcache_verify(tok, len, &t1);
	r2 = tcache_verify(tok, len, &t2);
	if (r1 != rc || r2 != rc)
		fuzz_fail("tcache_verify (%d, %d) and token_verify (%d) "
		    "disagree", r1, r2, rc);
	if (rc == 0 && (!claims_eq(c, &t1) || !claims_eq(c, &t2)))
		fuzz_fail("tcache_verify gives other claims");
	if (rc == 0)
		check_claims(c);
	return rc;
}

static json_t *
strict(const char *s, size_t n)
{
	json_t	*j;

	j = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

static int
str_is(const json_t *j, const char *s)
{
	return json_is_string(j) && json_string_length(j) == strlen(s) &&
	    memcmp(json_string_value(j), s, strlen(s)) == 0;
}

/* An accepted signed token: the header and payload we signed agree. */
static void
check_signed(const char *h, size_t hn, const char *p, size_t pn,
    const struct claims *c)
{
	static const char *const algs[] = { "HS256", "RS256", "ES256" };
	enum fuzz_alg	 alg = fuzz_current_alg();
	json_t		*hdr, *pay, *aud, *v;
	size_t		 i;
	int		 ok = 0;

	if ((hdr = strict(h, hn)) == NULL || (pay = strict(p, pn)) == NULL)
		fuzz_fail("accepted a token whose header or payload is not "
		    "one JSON object without duplicate keys");
	if (!str_is(json_object_get(hdr, "alg"), algs[alg]))
		fuzz_fail("accepted a token with another alg");
	if (json_object_get(hdr, "crit") != NULL)
		fuzz_fail("accepted a token with crit");
	if ((v = json_object_get(hdr, "typ")) != NULL && !str_is(v, "JWT"))
		fuzz_fail("accepted a token with typ other than JWT");
	if (alg != FUZZ_HS256 && !str_is(json_object_get(hdr, "kid"),
	    alg == FUZZ_RS256 ? FUZZ_KID_RS : FUZZ_KID_ES))
		fuzz_fail("accepted a token without the signer's kid");
	if (!str_is(json_object_get(pay, "iss"), FUZZ_ISSUER))
		fuzz_fail("accepted a token of another issuer");
	aud = json_object_get(pay, "aud");
	if (json_is_array(aud)) {
		json_array_foreach(aud, i, v)
			ok |= str_is(v, FUZZ_AUDIENCE);
	} else
		ok = str_is(aud, FUZZ_AUDIENCE);
	if (!ok)
		fuzz_fail("accepted a token for another audience");
	if (!json_is_integer(json_object_get(pay, "exp")) ||
	    json_integer_value(json_object_get(pay, "exp")) != c->exp)
		fuzz_fail("accepted token: exp differs from the claims");
	json_decref(hdr);
	json_decref(pay);
}

/* Make small integer times relative to now, so expiry can be passed. */
static char *
relative_times(const char *p, size_t n)
{
	static const char *const keys[] = { "iat", "exp", "nbf" };
	long long	 now = now_ms() / 1000;
	json_t		*j, *v;
	json_int_t	 t;
	char		*out;
	size_t		 i;

	if ((j = strict(p, n)) == NULL)
		return NULL;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (json_is_integer(v = json_object_get(j, keys[i])) &&
		    (t = json_integer_value(v)) > -REL_MAX && t < REL_MAX)
			json_integer_set(v, now + t);
	out = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return out;
}

static void
mode_signed(const uint8_t *d, size_t n, int rel)
{
	const uint8_t	*nl;
	struct claims	 c;
	char		*h, *p, *rp = NULL, *tok, *sig;
	size_t		 hn, pn, hl, pl, len;

	if ((nl = memchr(d, '\n', n)) == NULL)
		return;
	hn = (size_t)(nl - d);
	h = fuzz_strndup(d, hn);
	pn = n - hn - 1;
	p = fuzz_strndup(nl + 1, pn);
	if (rel && (rp = relative_times(p, pn)) != NULL) {
		free(p);
		p = rp;
		pn = strlen(p);
	}
	hl = B64URL_LEN(hn);
	pl = B64URL_LEN(pn);
	if (hl + pl + 2 > FA_TOKEN_MAX) {
		free(h);
		free(p);
		return;
	}
	tok = xmalloc(hl + pl + 2 + 1400);
	b64url_encode(tok, hl + 1, (const unsigned char *)h, hn);
	tok[hl] = '.';
	b64url_encode(tok + hl + 1, pl + 1, (const unsigned char *)p, pn);
	sig = sign(tok, hl + 1 + pl);
	tok[hl + 1 + pl] = '.';
	memcpy(tok + hl + pl + 2, sig, strlen(sig) + 1);
	len = strlen(tok);
	if (verify_all(tok, len, &c) == 0)
		check_signed(h, hn, p, pn, &c);
	free(sig);
	free(tok);
	free(h);
	free(p);
}

/* "role,role": 1..16 roles of [a-z][a-z0-9_-]{0,31}, nothing empty. */
static int
roles_ok(const char *s)
{
	const char	*p = s;
	size_t		 len, k = 0;

	if (*s == '\0')
		return 1;
	for (;;) {
		len = strcspn(p, ",");
		if (validate_role(p, len) == -1 || ++k > FA_ROLES_MAX)
			return 0;
		if (p[len] == '\0')
			return 1;
		p += len + 1;
	}
}

static void
mode_issue(const uint8_t *d, size_t n)
{
	struct claims	 c, v;
	const uint8_t	*p = d;
	char		*roles, *email, *tok = NULL;
	size_t		 left = n, len, pos;
	long long	 gen = 0;
	int		 well;

	if ((roles = fuzz_field(&p, &left)) == NULL)
		return;
	if ((email = fuzz_field(&p, &left)) == NULL) {
		free(roles);
		return;
	}
	memset(&c, 0, sizeof(c));
	snprintf(c.sub, sizeof(c.sub), "%s", FUZZ_UID);
	snprintf(c.sid, sizeof(c.sid), "%s", FUZZ_SID);
	snprintf(c.email, sizeof(c.email), "%s", email);
	snprintf(c.roles, sizeof(c.roles), "%s", roles);
	well = roles_ok(roles) && strlen(roles) < sizeof(c.roles) &&
	    email[0] != '\0' && strlen(email) <= FA_EMAIL_MAX &&
	    validate_utf8(email, strlen(email)) == 0;
	if (left >= 1) {	/* the revocation generation: 0 .. 2^16 */
		gen = (long long)p[0] << 8 | (left >= 2 ? p[1] : 0);
		p += left >= 2 ? 2 : 1;
		left -= left >= 2 ? 2 : 1;
	}
	if (token_issue(&c, gen, &tok) == -1) {
		if (well)
			fuzz_fail("token_issue failed on good claims");
		goto out;
	}
	len = strlen(tok);
	if (c.gen != gen)
		fuzz_fail("token_issue: gen %lld, asked for %lld", c.gen, gen);
	if (verify_all(tok, len, &v) == 0) {
		if (well && (v.gen != gen || strcmp(v.sub, c.sub) != 0 || strcmp(v.sid, c.sid) != 0 ||
		    strcmp(v.jti, c.jti) != 0 || v.iat != c.iat ||
		    v.exp != c.exp || strcmp(v.email, c.email) != 0 ||
		    strcmp(v.roles, c.roles) != 0))
			fuzz_fail("claims do not round-trip");
	} else if (well)
		fuzz_fail("a token we issued does not verify");
	if (left >= 3) {
		pos = ((size_t)p[0] << 8 | p[1]) % len;
		if (p[2] != 0 && (tok[pos] ^ (char)p[2]) != tok[pos]) {
			tok[pos] ^= (char)p[2];
			if (verify_all(tok, len, &v) == 0)
				fuzz_fail("a token changed at byte %zu still "
				    "verifies", pos);
		}
	}
out:
	free(tok);
	free(roles);
	free(email);
}

static void
mode_codec(const uint8_t *d, size_t n)
{
	unsigned char	 buf[4096], u[16];
	char		 enc[8192], *s;
	struct refresh	 rt;
	size_t		 m;

	if (n > 4096)
		return;
	if (b64url_decode(buf, sizeof(buf), &m, (const char *)d, n) == 0) {
		if (b64url_encode(enc, sizeof(enc), buf, m) == -1 ||
		    strlen(enc) != n || memcmp(enc, d, n) != 0)
			fuzz_fail("b64url: two spellings of one value");
	}
	if (b64url_encode(enc, sizeof(enc), d, n) == -1 ||
	    b64url_decode(buf, sizeof(buf), &m, enc, strlen(enc)) == -1 ||
	    m != n || memcmp(buf, d, n) != 0)
		fuzz_fail("b64url: encode/decode does not round-trip");
	if (refresh_parse(&rt, (const char *)d, n) == 0) {
		if (n != FA_REFRESH_LEN || memcmp(rt.text, d, n) != 0 ||
		    !is_uuid(rt.uid) || !is_uuid(rt.sid) ||
		    strlen(rt.hash) != FA_HASH_HEX)
			fuzz_fail("refresh_parse accepted a bad token");
	}
	if (uuid_parse(u, (const char *)d, n) == 0) {
		uuid_format(enc, u);
		if (n != FA_UUID_LEN || strncasecmp(enc, (const char *)d, n))
			fuzz_fail("uuid_parse/uuid_format disagree");
	}
	s = fuzz_strndup(d, n);
	if (token_open(rt.raw, sizeof(rt.raw), &m, s) == 0)
		fuzz_fail("token_open accepted fuzzed bytes");
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct claims	 c;
	int		 mode, rel;

	if (size < 1)
		return 0;
	fuzz_setup((enum fuzz_alg)((data[0] & 3) % FUZZ_ALG__MAX));
	mode = (data[0] >> 2) & 3;
	rel = data[0] & 0x10;
	data++;
	size--;
	switch (mode) {
	case MODE_RAW:
		(void)verify_all((const char *)data, size, &c);
		break;
	case MODE_SIGNED:
		mode_signed(data, size, rel);
		break;
	case MODE_ISSUE:
		mode_issue(data, size);
		break;
	case MODE_CODEC:
		mode_codec(data, size);
		break;
	}
	return 0;
}
