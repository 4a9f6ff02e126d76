/*
 * token_seal.c: the server subkeys of jwt_secret and what they do: the
 * keyed hash of refresh tokens, sealing under a server key (under either
 * secret while jwt_secret_previous is set), and the key of data at rest.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "extern.h"
#include "token_int.h"

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

/* BLAKE2b keyed with the secret (pre-hashed if longer than a key). */
int
token_subkey(unsigned char *out, size_t outlen, const char *ctx,
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
	return token_subkey(out, len, ctx, td.key, td.len);
}

void
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


void
token_data_key_wipe(void)
{
	sodium_memzero(&td, sizeof(td));
}
