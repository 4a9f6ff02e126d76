/*
 * fuzz.h: what the libFuzzer harnesses share (fuzz_common.c) and the
 * controls of the backend stubs (stubs.c).  Harnesses are built only with
 * ./configure --enable-fuzzing (CC=clang); see tests/fuzz/README.md.
 */
#ifndef FA_FUZZ_H
#define FA_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "extern.h"

/* libFuzzer entry points. */
int		 LLVMFuzzerInitialize(int *, char ***);
int		 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* fuzz_common.c */
#define FUZZ_SECRET	"fuzz-only-secret-0123456789abcdef-not-a-real-one"
#define FUZZ_ISSUER	"https://auth.fuzz.test"
#define FUZZ_AUDIENCE	"fuzz-api"
#define FUZZ_UID	"5d1c9a4e-3b7f-4f0e-9a51-2c8e7d6b1a90"
#define FUZZ_SID	"0b9f6a2c-7e34-4c1d-8f25-6a7b3c9d0e11"
#define FUZZ_KID_RS	"rs-fuzz-1"
#define FUZZ_KID_RS2	"rs-fuzz-2"
#define FUZZ_KID_ES	"es-fuzz-1"
#define FUZZ_KID_ES2	"es-fuzz-2"

enum fuzz_alg {
	FUZZ_HS256,
	FUZZ_RS256,
	FUZZ_ES256,
	FUZZ_ALG__MAX
};

extern struct config	 fuzz_conf;	/* cfg points here */

/* Crash (abort) with a message: a broken invariant is a finding. */
void		 fuzz_fail(const char *, ...)
		    __attribute__((format(printf, 1, 2), noreturn));
/*
 * Defaults, the fuzz secret, issuer and audience, then token_init with
 * alg.  RS256/ES256 keys are generated on first use into a private
 * temporary directory (removed at exit), never committed; the verifier
 * also holds a second key of each type, so a kid of the wrong type must
 * be refused.  Cheap when alg is already the current one.
 */
void		 fuzz_setup(enum fuzz_alg);
enum fuzz_alg	 fuzz_current_alg(void);
/* Path of the private key of the current RS256/ES256 signer. */
const char	*fuzz_private_key(enum fuzz_alg);
/* A NUL-terminated copy of n bytes (owned). */
char		*fuzz_strndup(const uint8_t *, size_t);
/* Next '\n'-terminated field of (*p, *n); NULL when none is left. */
char		*fuzz_field(const uint8_t **p, size_t *n);

/* stubs.c: canned answers of db.c, store.c and password.c. */
struct fuzz_backend {
	int		 pg_down;	/* db_*: DB_ERROR */
	int		 redis_down;	/* store_*: -1 */
	int		 user_missing;	/* lookups: DB_NOTFOUND */
	int		 user_disabled;
	int		 user_admin;	/* stored roles "user,admin" */
	int		 email_taken;	/* db_user_create: DB_CONFLICT */
	int		 pw_mismatch;	/* password_verify: 1 */
	int		 rehash;	/* password_verify sets *rehash */
	char		 stored_hash[256];	/* set by db_user_set_password */
	int		 hash_fail;	/* password_hash/verify: -1 (500) */
	int		 limited;	/* rate limits: over */
	int		 revoked;	/* store_token_revoked: 1 */
	int		 no_session;	/* session revoke: 1 */
	int		 trim;		/* session create trims two */
	int		 child_bad;	/* grace: garbage child */
	enum rotate_result rotate;
	size_t		 nsessions;	/* store_session_list */
	const char	*user_agent;	/* stored with sessions */
	int		 mfa;		/* the user has MFA on */
	int		 mfa_pending;	/* a secret waits for confirm */
	/* what the handlers did */
	int		 calls_password;	/* password_verify calls */
	int		 wrote;			/* successful state changes */
};
extern struct fuzz_backend	 stub;

#endif /* FA_FUZZ_H */
