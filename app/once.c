/*
 * One-time tokens of the account lifecycle (reset, verify, email change)
 * and the seal of queued mail.  A token is ONCE_BYTES random bytes in
 * base64url; only its BLAKE2b hash, keyed with a subkey of the data secret
 * (config_data_secret), is
 * stored, so a database dump yields no usable token.  Queued messages
 * carry links with tokens: they are sealed (secretbox) under another
 * subkey.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "extern.h"

#define ONCE_SEAL_OVERHEAD \
	(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)

static struct {
	unsigned char	 hash_key[crypto_generichash_KEYBYTES];
	unsigned char	 seal_key[crypto_secretbox_KEYBYTES];
} ok;

/* BLAKE2b of ctx keyed with the secret (pre-hashed to a key's length). */
static void
once_subkey(unsigned char *out, size_t outlen, const char *ctx,
    const struct config *c)
{
	unsigned char	 k[crypto_generichash_KEYBYTES];
	const char	*sec;
	size_t		 len;

	config_data_secret(c, &sec, &len);
	crypto_generichash(k, sizeof(k), (const unsigned char *)sec, len,
	    NULL, 0);
	crypto_generichash(out, outlen, (const unsigned char *)ctx,
	    strlen(ctx), k, sizeof(k));
	sodium_memzero(k, sizeof(k));
}

int
once_init(const struct config *c)
{
	if (c->jwt_secret == NULL || c->jwt_secret_len == 0)
		return -1;
	once_subkey(ok.hash_key, sizeof(ok.hash_key), ONCE_CTX_HASH, c);
	once_subkey(ok.seal_key, sizeof(ok.seal_key), ONCE_CTX_MAIL, c);
	return 0;
}

void
once_shutdown(void)
{
	sodium_memzero(&ok, sizeof(ok));
}

static void
once_hash(struct once *o, const unsigned char *raw)
{
	unsigned char	 h[FA_HASH_HEX / 2];

	crypto_generichash(h, sizeof(h), raw, ONCE_BYTES, ok.hash_key,
	    sizeof(ok.hash_key));
	sodium_bin2hex(o->hash, sizeof(o->hash), h, sizeof(h));
}

void
once_new(struct once *o)
{
	unsigned char	 raw[ONCE_BYTES];

	randombytes_buf(raw, sizeof(raw));
	(void)b64url_encode(o->text, sizeof(o->text), raw, sizeof(raw));
	once_hash(o, raw);
	sodium_memzero(raw, sizeof(raw));
}

int
once_parse(struct once *o, const char *text, size_t len)
{
	unsigned char	 raw[ONCE_BYTES];
	size_t		 n;

	memset(o, 0, sizeof(*o));
	if (len != ONCE_LEN || b64url_decode(raw, sizeof(raw), &n, text,
	    len) == -1 || n != ONCE_BYTES)
		return -1;
	memcpy(o->text, text, len);
	once_hash(o, raw);
	sodium_memzero(raw, sizeof(raw));
	return 0;
}

int
once_seal(char **out, const char *in, size_t len)
{
	unsigned char	*box;
	size_t		 n;

	*out = NULL;
	if (len > (SIZE_MAX / 2 - 1) - ONCE_SEAL_OVERHEAD)
		return -1;
	n = ONCE_SEAL_OVERHEAD + len;
	box = xmalloc(n);
	randombytes_buf(box, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES,
	    (const unsigned char *)in, len, box, ok.seal_key);
	*out = xmalloc(2 * n + 1);
	sodium_bin2hex(*out, 2 * n + 1, box, n);
	free(box);
	return 0;
}

int
once_open(char **out, size_t *len, const char *hex)
{
	unsigned char	*box = NULL;
	size_t		 hexlen = strlen(hex), n;
	int		 rc = -1;

	*out = NULL;
	*len = 0;
	if (hexlen % 2 != 0 || hexlen / 2 < ONCE_SEAL_OVERHEAD)
		return -1;
	box = xmalloc(hexlen / 2);
	if (sodium_hex2bin(box, hexlen / 2, hex, hexlen, NULL, &n, NULL) != 0 ||
	    n != hexlen / 2)
		goto out;
	*out = xmalloc(n - ONCE_SEAL_OVERHEAD + 1);
	if (crypto_secretbox_open_easy((unsigned char *)*out,
	    box + crypto_secretbox_NONCEBYTES, n - crypto_secretbox_NONCEBYTES,
	    box, ok.seal_key) != 0) {
		free(*out);
		*out = NULL;
		goto out;
	}
	*len = n - ONCE_SEAL_OVERHEAD;
	(*out)[*len] = '\0';
	rc = 0;
out:
	free(box);
	return rc;
}
