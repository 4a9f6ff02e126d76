/*
 * fuzz_revocation.c: store_revocation_parse, the revocation feed's parser
 * (every message on the channel goes through it), on raw bytes, with these
 * properties:
 *  - only len bytes are read (the input is not NUL-terminated);
 *  - an accepted message names a known kind and a user id (and, but for a
 *    cut-off, a jti or session id) that could go into our keys, with
 *    ttl_ms a whole number of seconds and a value of at least 0;
 *  - written back as "fa:{U}:<kind><id> <ttl> <value>" and parsed again,
 *    it gives the same revocation.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static const char *const tags[REVOKE__MAX] = {
	[REVOKE_JTI] = "bl:",
	[REVOKE_SESSION] = "srev:",
	[REVOKE_CUTOFF] = "cutoff",
};

/* [A-Za-z0-9_-], 1..FA_UUID_LEN bytes: what store.c lets into keys. */
static int
id_ok(const char *s)
{
	size_t	 n = strlen(s);

	return n >= 1 && n <= FA_UUID_LEN && strspn(s,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_-") == n;
}

static void
check(const struct revocation *r)
{
	struct revocation	 again;
	char			 msg[STORE_KEY_MAX + 64];
	int			 n;

	if ((int)r->kind < 0 || r->kind >= REVOKE__MAX)
		fuzz_fail("kind %d", (int)r->kind);
	if (!id_ok(r->uid))
		fuzz_fail("user id not fit for a key");
	if (r->kind == REVOKE_CUTOFF ? r->key[0] != '\0' : !id_ok(r->key))
		fuzz_fail("key not fit for a key");
	if (r->ttl_ms < 0 || r->ttl_ms % 1000 != 0 || r->value < 0)
		fuzz_fail("ttl_ms %lld, value %lld", r->ttl_ms, r->value);
	n = snprintf(msg, sizeof(msg), "fa:{%s}:%s%s %lld %lld", r->uid,
	    tags[r->kind], r->key, r->ttl_ms / 1000, r->value);
	if (n < 0 || (size_t)n >= sizeof(msg))
		fuzz_fail("written back: %d bytes", n);
	if (store_revocation_parse(msg, (size_t)n, &again) == -1)
		fuzz_fail("written back, refused: %s", msg);
	if (again.kind != r->kind || strcmp(again.uid, r->uid) != 0 ||
	    strcmp(again.key, r->key) != 0 || again.ttl_ms != r->ttl_ms ||
	    again.value != r->value)
		fuzz_fail("written back, parsed differently: %s", msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct revocation	 r;
	char			*buf;

	/* an exact-size copy: a read past len is an ASan finding */
	buf = xmalloc(size > 0 ? size : 1);
	memcpy(buf, data, size);
	if (store_revocation_parse(buf, size, &r) == 0)
		check(&r);
	free(buf);
	return 0;
}
