/*
 * otp.c: the second factor; included at the end of extern.h, after every
 * type it uses.
 */
#ifndef FA_OTP_H
#define FA_OTP_H

/* otp.c: TOTP (RFC 6238, liboath), secrets sealed at rest, recovery
 * codes stored as keyed hashes, mfaTokens, the enrolment QR code. */
#define OTP_SECRET_BYTES	20	/* RFC 4226's recommended 160 bits */
#define OTP_SECRET_B32		32	/* base32 of OTP_SECRET_BYTES */
#define OTP_DIGITS		6
#define OTP_PERIOD		30	/* seconds per step */
#define OTP_WINDOW		1	/* steps accepted either side of now */
#define OTP_RECOVERY_CODES	10
#define OTP_RECOVERY_CHARS	12	/* base32: 60 bits per code */
#define OTP_RECOVERY_LEN	(OTP_RECOVERY_CHARS + 2)	/* xxxx-xxxx-xxxx */
#define OTP_RECOVERY_INPUT_MAX	32	/* longest recoveryCode looked at */
#define OTP_MFA_TOKEN_BYTES	32	/* 256 random bits */
#define OTP_MFA_TOKEN_LEN	43	/* base64url of OTP_MFA_TOKEN_BYTES */
#define OTP_MFA_WRONG_MAX	5	/* wrong codes that void an mfaToken */
#define OTP_QR_MARGIN		4	/* quiet zone, in modules */
#define OTP_QR_SCALE		8	/* SVG user units per module */
#define OTP_SVG_HEAD_MAX	512	/* bytes of the SVG around the rects */
#define OTP_SVG_RECT_MAX	64	/* bytes of one "<rect .../>" */
#define OTP_CTX_SEAL		"fcgi-auth totp-seal v1"
#define OTP_CTX_HASH		"fcgi-auth mfa-hash v1"
void		 otp_secret_new(unsigned char out[OTP_SECRET_BYTES]);
int		 otp_base32(char out[OTP_SECRET_B32 + 1],
		    const unsigned char secret[OTP_SECRET_BYTES]);
/* The otpauth:// URI for authenticator apps; *out owned. */
int		 otp_uri(char **out, const char *issuer, const char *email,
		    const char *b32);
/* secretbox under the TOTP key; *hex owned. */
int		 otp_seal(char **hex, const unsigned char *secret);
int		 otp_open(unsigned char out[OTP_SECRET_BYTES], const char *hex);
/*
 * Tri-state: 0 code matches a step within OTP_WINDOW of now (*step set),
 * 1 it does not (or is malformed), -1 could not check.
 */
int		 otp_check(const unsigned char *secret, const char *code,
		    size_t len, long long now_s, long long *step);
/* OTP_RECOVERY_CODES codes "xxxx-xxxx-xxxx" and their hashes for uid. */
void		 otp_recovery_new(char codes[][OTP_RECOVERY_LEN + 1],
		    char hashes[][FA_HASH_HEX + 1], const char *uid);
/* The stored hash of a recovery code as typed; -1 if malformed. */
int		 otp_recovery_hash(char out[FA_HASH_HEX + 1], const char *uid,
		    const char *code, size_t len);
void		 otp_token_new(char text[OTP_MFA_TOKEN_LEN + 1],
		    char hash[FA_HASH_HEX + 1]);
int		 otp_token_hash(char out[FA_HASH_HEX + 1], const char *text,
		    size_t len);
/* An SVG of the QR code of text; *out owned. */
int		 otp_qr_svg(const char *text, char **out, size_t *len);

#endif /* FA_OTP_H */
