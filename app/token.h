/*
 * token.h: the public section of the token modules (token.c signs and
 * verifies, token_keys.c loads keys, token_seal.c derives and seals),
 * included from the end of extern.h.
 */
#ifndef FA_TOKEN_H
#define FA_TOKEN_H

/* JWT issue/verify with a pinned algorithm, keys by kid. */
#define TOKEN_TYP		"JWT"
#define TOKEN_KEYS_MAX		16	/* verification keys (with the signer) */
#define TOKEN_KID_MAX		64	/* [A-Za-z0-9._:-], not leading '.' */
#define TOKEN_RSA_BITS		2048	/* keygen size and accepted minimum */
#define TOKEN_SIG_MAX		1024	/* bytes: RSA up to 8192 bits */
#define TOKEN_EC_COORD		32	/* P-256 coordinate and r, s bytes */
#define TOKEN_SUBKEY_BYTES	32	/* server subkeys derived from the secret */
#define TOKEN_CTX_REFRESH	"fcgi-auth refresh-hash v1"
#define TOKEN_CTX_SEAL		"fcgi-auth seal v1"
#define TOKEN_AAL_MIN		1	/* aal of a token without the claim */
#define TOKEN_AAL_MFA		2	/* the password and a second factor */
#define TOKEN_AAL_MAX		TOKEN_AAL_MFA
struct claims {
	char		 sub[FA_UUID_LEN + 1];
	char		 sid[FA_UUID_LEN + 1];
	char		 jti[FA_JTI_LEN + 1];
	char		 email[FA_EMAIL_MAX + 1];
	char		 roles[FA_ROLES_LEN];	/* comma-joined */
	long long	 iat;
	long long	 exp;
	long long	 gen;	/* the user's revocation generation at issue */
	int		 aal;	/* 1 password, 2 and a second factor */
	int		 email_verified;	/* OIDC claim email_verified */
};
/*
 * Load the keys of c into c->tokens (replacing those it had); errstr
 * (owned) names the key or file, and c->tokens is then NULL.  The functions
 * below use the keys of cfg, the running generation, and are thread-safe.
 * token_free wipes one set; token_shutdown wipes cfg's.
 */
int		 token_init(struct config *c, char **errstr);
void		 token_free(struct token_set *);
void		 token_shutdown(void);
/* A number that changes whenever cfg's keys may have (0: none loaded). */
unsigned long	 token_serial(void);
/*
 * Fills jti (random), iat (now, Unix seconds), exp and gen (the user's
 * revocation generation, written as claim "gen" when above 0); *out is
 * owned (free()).
 */
int		 token_issue(struct claims *, long long gen, char **out);
/* 0 valid (claims filled), -1 invalid for any reason. No I/O. */
int		 token_verify(const char *jwt, size_t len, struct claims *);
json_t		*token_amr(int aal);	/* the amr claim of an aal */
/* A key for data at rest, purpose ctx, from config_data_secret. */
int		 token_derive(unsigned char *out, size_t len, const char *ctx);
json_t		*token_jwks(void);	/* new reference, shared: read only */
/* keyed hash of a refresh token: hex into out[FA_HASH_HEX + 1] */
void		 token_refresh_hash(char *out, const unsigned char *tok,
		    size_t len);
/* The same under jwt_secret_previous: 0, or -1 when there is none. */
int		 token_refresh_hash_previous(char *out,
		    const unsigned char *tok, size_t len);
/* secretbox under a server key; *out owned (hex) */
int		 token_seal(char **out, const unsigned char *in, size_t len);
int		 token_open(unsigned char *out, size_t outsz, size_t *outlen,
		    const char *hex);
/* alg "rs256" | "es256": DIR/KID.pem (0600), DIR/KID.pub.pem; no overwrite */
int		 token_keygen_check(const char *alg, const char *kid,
		    char **errstr);	/* the values only: 0, or -1 (usage) */
int		 token_keygen(const char *alg, const char *kid,
		    const char *dir, char **errstr);

#endif /* FA_TOKEN_H */
