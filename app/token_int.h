/*
 * token_int.h: what token.c (sign, verify), token_keys.c (loading, JWKS,
 * keygen) and token_seal.c (server subkeys, sealing) share.  Included by
 * those files only; it needs libjwt, OpenSSL and libsodium.
 */
#ifndef FA_TOKEN_INT_H
#define FA_TOKEN_INT_H

enum token_alg {
	ALG_HS256,
	ALG_RS256,
	ALG_ES256,
	ALG__MAX
};

extern const char *const token_alg_names[ALG__MAX];
extern const jwt_alg_t token_alg_jwt[ALG__MAX];

#define HS256_BYTES	crypto_auth_hmacsha256_BYTES
#define ES256_SIG	(2 * TOKEN_EC_COORD)
#define SEAL_OVERHEAD	(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
#define GROUP_NAME_MAX	64	/* OpenSSL curve names are shorter */
/*
 * How header and payload are dumped: libjwt's way, so an HS256 token is
 * byte for byte the one libjwt would make of the same claims.
 */
#define JWS_JSON_FLAGS	(JSON_COMPACT | JSON_SORT_KEYS)
/* Longest decoded header or payload of a token of FA_TOKEN_MAX chars. */
#define SEGMENT_MAX	(FA_TOKEN_MAX / 4 * 3)

/* The claims segment's text, JWS_JSON_FLAGS' bytes (owned), or NULL. */
char	*token_claims_text(const struct token_set *, const struct claims *);

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
	/* HS256: the header segment of every token we make (base64url) */
	char			*hs_hdr;
	size_t			 hs_hdrlen;
	/* HS256: the HMAC states of sign [0] and prev [1] (token.c) */
	EVP_MD_CTX		*hs_in[2], *hs_out[2];
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

/* BLAKE2b keyed with secret: a subkey for ctx.  0, or -1. */
int		 token_subkey(unsigned char *out, size_t outlen,
		    const char *ctx, const unsigned char *secret, size_t len);
/* Set the key of data at rest from c, once per process (token_seal.c). */
void		 token_data_key(const struct config *);
void		 token_data_key_wipe(void);

/* The HS256 header segment of tk, made once by token_init: 0, or -1. */
int		 token_hs_header(struct token_set *tk);
/* The HMAC states of its HS256 keys (after sign and prev are set): 0/-1. */
int		 token_hs_keys(struct token_set *tk);

/* The keys of the running generation, or NULL. */
static inline const struct token_set *
tk_cur(void)
{
	const struct config	*c = cfg;

	return c != NULL && c->tokens != NULL && c->tokens->ready ?
	    c->tokens : NULL;
}

#endif /* FA_TOKEN_INT_H */
