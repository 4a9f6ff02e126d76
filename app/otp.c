/*
 * otp.c: the second factor's primitives.  TOTP (RFC 6238: HMAC-SHA-1, 6
 * digits, 30 s steps, one step either side) is liboath's (OATH Toolkit),
 * which also reports the matched step, so the caller can refuse a step
 * already used.  Secrets (20 random bytes) are sealed at rest with
 * secretbox under a key derived from jwt_secret with its own purpose label.
 *
 * Recovery codes (12 base32 characters, 60 random bits) and mfaTokens (256
 * random bits) are stored as keyed BLAKE2b hashes, not Argon2id: with 60
 * bits and more of entropy nobody enumerates them, a server key guards the
 * hashes too, and a fast hash gives an indexed, constant-cost lookup where
 * ten Argon2id checks per attempt would be a denial-of-service lever.
 *
 * The QR code of the otpauth URI is libqrencode's, written as SVG rects.
 * No I/O; keys are derived per call and wiped.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <liboath/oath.h>
#include <qrencode.h>
#include <sodium.h>

#include "extern.h"

#define OTP_SEALED_BYTES \
	(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + \
	OTP_SECRET_BYTES)

static const char otp_b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static pthread_once_t	 otp_once = PTHREAD_ONCE_INIT;
static int		 otp_ready;

static void
otp_init(void)
{
	otp_ready = oath_init() == OATH_OK;
}

void
otp_secret_new(unsigned char out[OTP_SECRET_BYTES])
{
	randombytes_buf(out, OTP_SECRET_BYTES);
}

int
otp_base32(char out[OTP_SECRET_B32 + 1],
    const unsigned char secret[OTP_SECRET_BYTES])
{
	char	*b = NULL;
	size_t	 n = 0;
	int	 rc = -1;

	pthread_once(&otp_once, otp_init);
	if (!otp_ready || oath_base32_encode((const char *)secret,
	    OTP_SECRET_BYTES, &b, &n) != OATH_OK)
		return -1;
	if (n == OTP_SECRET_B32) {
		memcpy(out, b, n);
		out[n] = '\0';
		rc = 0;
	}
	sodium_memzero(b, n);
	free(b);
	return rc;
}

/* RFC 3986 percent-encoding of everything but the unreserved characters. */
static void
otp_pct(char *out, const char *in)
{
	static const char	 hex[] = "0123456789ABCDEF";
	unsigned char		 c;

	for (; *in != '\0'; in++) {
		c = (unsigned char)*in;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~')
			*out++ = (char)c;
		else {
			*out++ = '%';
			*out++ = hex[c >> 4];
			*out++ = hex[c & 15];
		}
	}
	*out = '\0';
}

int
otp_uri(char **out, const char *issuer, const char *email, const char *b32)
{
	char	*iss, *em;

	*out = NULL;
	iss = xcalloc(3, strlen(issuer) + 1);
	em = xcalloc(3, strlen(email) + 1);
	otp_pct(iss, issuer);
	otp_pct(em, email);
	xasprintf(out, "otpauth://totp/%s:%s?secret=%s&issuer=%s"
	    "&algorithm=SHA1&digits=%d&period=%d", iss, em, b32, iss,
	    OTP_DIGITS, OTP_PERIOD);
	free(iss);
	free(em);
	return 0;
}

int
otp_seal(char **hex, const unsigned char *secret)
{
	unsigned char	 key[crypto_secretbox_KEYBYTES];
	unsigned char	 box[OTP_SEALED_BYTES];

	*hex = NULL;
	if (token_derive(key, sizeof(key), OTP_CTX_SEAL) == -1)
		return -1;
	randombytes_buf(box, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, secret,
	    OTP_SECRET_BYTES, box, key);
	sodium_memzero(key, sizeof(key));
	*hex = xmalloc(2 * sizeof(box) + 1);
	sodium_bin2hex(*hex, 2 * sizeof(box) + 1, box, sizeof(box));
	return 0;
}

int
otp_open(unsigned char out[OTP_SECRET_BYTES], const char *hex)
{
	unsigned char	 key[crypto_secretbox_KEYBYTES];
	unsigned char	 box[OTP_SEALED_BYTES];
	size_t		 n;
	int		 rc = -1;

	if (hex == NULL || strlen(hex) != 2 * sizeof(box) ||
	    sodium_hex2bin(box, sizeof(box), hex, strlen(hex), NULL, &n,
	    NULL) != 0 || n != sizeof(box) ||
	    token_derive(key, sizeof(key), OTP_CTX_SEAL) == -1)
		return -1;
	if (crypto_secretbox_open_easy(out, box + crypto_secretbox_NONCEBYTES,
	    sizeof(box) - crypto_secretbox_NONCEBYTES, box, key) == 0)
		rc = 0;
	sodium_memzero(key, sizeof(key));
	return rc;
}

int
otp_check(const unsigned char *secret, const char *code, size_t len,
    long long now_s, long long *step)
{
	char		 c[OTP_DIGITS + 1];
	uint64_t	 counter = 0;
	size_t		 i;
	int		 pos, rc;

	*step = 0;
	if (len != OTP_DIGITS)
		return 1;
	for (i = 0; i < len; i++)
		if (code[i] < '0' || code[i] > '9')
			return 1;
	memcpy(c, code, len);
	c[len] = '\0';
	pthread_once(&otp_once, otp_init);
	if (!otp_ready)
		return -1;
	rc = oath_totp_validate3((const char *)secret, OTP_SECRET_BYTES,
	    (time_t)now_s, OTP_PERIOD, OATH_TOTP_DEFAULT_START_TIME,
	    OTP_WINDOW, &pos, &counter, c);
	if (rc == OATH_INVALID_OTP)
		return 1;
	if (rc < 0)
		return -1;
	*step = (long long)counter;
	return 0;
}

/* Keyed BLAKE2b of "uid:text" under the MFA hash key, as hex. */
static int
otp_keyed_hash(char out[FA_HASH_HEX + 1], const char *uid, const char *text,
    size_t len)
{
	crypto_generichash_state	 st;
	unsigned char			 key[crypto_generichash_KEYBYTES];
	unsigned char			 h[FA_HASH_HEX / 2];

	if (token_derive(key, sizeof(key), OTP_CTX_HASH) == -1)
		return -1;
	crypto_generichash_init(&st, key, sizeof(key), sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)uid,
	    strlen(uid));
	crypto_generichash_update(&st, (const unsigned char *)":", 1);
	crypto_generichash_update(&st, (const unsigned char *)text, len);
	crypto_generichash_final(&st, h, sizeof(h));
	sodium_memzero(key, sizeof(key));
	sodium_bin2hex(out, FA_HASH_HEX + 1, h, sizeof(h));
	return 0;
}

void
otp_recovery_new(char codes[][OTP_RECOVERY_LEN + 1],
    char hashes[][FA_HASH_HEX + 1], const char *uid)
{
	char	 plain[OTP_RECOVERY_CHARS];
	size_t	 i, j, o;

	for (i = 0; i < OTP_RECOVERY_CODES; i++) {
		for (j = 0, o = 0; j < OTP_RECOVERY_CHARS; j++) {
			plain[j] = otp_b32[randombytes_uniform(32)];
			if (j > 0 && j % 4 == 0)
				codes[i][o++] = '-';
			codes[i][o++] = plain[j];
		}
		codes[i][o] = '\0';
		if (otp_keyed_hash(hashes[i], uid, plain, sizeof(plain)) == -1)
			hashes[i][0] = '\0';
	}
	sodium_memzero(plain, sizeof(plain));
}

/* As typed: case, dashes and spaces do not matter. */
int
otp_recovery_hash(char out[FA_HASH_HEX + 1], const char *uid,
    const char *code, size_t len)
{
	char	 plain[OTP_RECOVERY_CHARS];
	size_t	 i, n = 0;
	char	 c;

	if (len > OTP_RECOVERY_INPUT_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		c = code[i];
		if (c == '-' || c == ' ')
			continue;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (strchr(otp_b32, c) == NULL || c == '\0' ||
		    n == sizeof(plain))
			return -1;
		plain[n++] = c;
	}
	if (n != sizeof(plain))
		return -1;
	i = (size_t)otp_keyed_hash(out, uid, plain, n);
	sodium_memzero(plain, sizeof(plain));
	return i == 0 ? 0 : -1;
}

void
otp_token_new(char text[OTP_MFA_TOKEN_LEN + 1], char hash[FA_HASH_HEX + 1])
{
	unsigned char	 raw[OTP_MFA_TOKEN_BYTES];

	randombytes_buf(raw, sizeof(raw));
	b64url_encode(text, OTP_MFA_TOKEN_LEN + 1, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	if (otp_token_hash(hash, text, OTP_MFA_TOKEN_LEN) == -1)
		hash[0] = '\0';
}

int
otp_token_hash(char out[FA_HASH_HEX + 1], const char *text, size_t len)
{
	unsigned char	 raw[OTP_MFA_TOKEN_BYTES];
	size_t		 n;

	if (len != OTP_MFA_TOKEN_LEN || b64url_decode(raw, sizeof(raw), &n,
	    text, len) == -1 || n != sizeof(raw))
		return -1;
	return otp_keyed_hash(out, "mfa-token", text, len);
}

int
otp_qr_svg(const char *text, char **out, size_t *len)
{
	QRcode		*qr;
	char		*svg, *p;
	size_t		 cap, x, y, w, side;
	int		 n;

	*out = NULL;
	*len = 0;
	if ((qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8,
	    1)) == NULL)
		return -1;
	w = (size_t)qr->width;
	side = (w + 2 * OTP_QR_MARGIN) * OTP_QR_SCALE;
	cap = OTP_SVG_HEAD_MAX + w * w * OTP_SVG_RECT_MAX;
	p = svg = xmalloc(cap);
	n = snprintf(p, cap, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
	    "width=\"%zu\" height=\"%zu\" viewBox=\"0 0 %zu %zu\" "
	    "shape-rendering=\"crispEdges\">\n"
	    "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
	    side, side, side, side);
	p += n;
	for (y = 0; y < w; y++)
		for (x = 0; x < w; x++) {
			if (!(qr->data[y * w + x] & 1))
				continue;
			n = snprintf(p, cap - (size_t)(p - svg),
			    "<rect x=\"%zu\" y=\"%zu\" width=\"%d\" "
			    "height=\"%d\"/>\n",
			    (x + OTP_QR_MARGIN) * OTP_QR_SCALE,
			    (y + OTP_QR_MARGIN) * OTP_QR_SCALE, OTP_QR_SCALE,
			    OTP_QR_SCALE);
			p += n;
		}
	n = snprintf(p, cap - (size_t)(p - svg), "</svg>\n");
	p += n;
	QRcode_free(qr);
	*out = svg;
	*len = (size_t)(p - svg);
	return 0;
}
