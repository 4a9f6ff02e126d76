/*
 * fuzz_json.c: request bodies.  json_parse_object on the raw bytes, then
 * every validator on every string member (and on the raw bytes), with the
 * properties the handlers rely on checked after each call:
 *  - validate_utf8 agrees with jansson's own UTF-8 check (no NUL case);
 *  - an accepted email is canonical: 1..254 printable ASCII bytes, no
 *    upper case, one '@' with something on both sides, and its own
 *    canonical form;
 *  - an accepted password is 8..1024 bytes of UTF-8; a name has at most
 *    100 code points; a role matches [a-z][a-z0-9_-]{0,31};
 *  - cleaned text (text.c) is valid UTF-8 without C0, DEL or C1, fits, and
 *    is its own cleaned form;
 *  - a parsed object never holds a duplicate key or a NUL in a string;
 *  - rpc_parse (the NestJS request envelope) answers only with an id of at
 *    most RPC_ID_MAX bytes that, echoed into the reply envelope as rpc.c
 *    does, makes one JSON object whose id equals the request's, and a
 *    token of 1..FA_TOKEN_MAX bytes.
 */
#include "config.h"

#include <string.h>

#include "fuzz.h"

static size_t
codepoints(const char *s, size_t n)
{
	size_t	 i, k = 0;

	for (i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			k++;
	return k;
}

static void
check_utf8(const char *s, size_t n)
{
	json_t	*j;
	int	 ours;

	ours = validate_utf8(s, n);
	if (memchr(s, '\0', n) != NULL) {
		if (ours == 0)
			fuzz_fail("validate_utf8 accepted a NUL byte");
		return;
	}
	j = json_stringn(s, n);	/* NULL when jansson finds bad UTF-8 */
	if ((j != NULL) != (ours == 0))
		fuzz_fail("validate_utf8 (%d) and jansson disagree on %zu "
		    "bytes", ours, n);
	json_decref(j);
}

static void
check_email(const char *s, size_t n)
{
	char		 out[FA_EMAIL_MAX + 1];
	const char	*why = NULL, *at;
	size_t		 len, i;

	memset(out, 'X', sizeof(out));
	if (email_canon(s, n, out, &why) == -1) {
		if (why == NULL)
			fuzz_fail("email_canon: no reason");
		return;
	}
	len = strnlen(out, sizeof(out));
	if (len == 0 || len > FA_EMAIL_MAX)
		fuzz_fail("email_canon: %zu bytes accepted", len);
	if ((at = strchr(out, '@')) == NULL || strchr(at + 1, '@') != NULL ||
	    at == out || at[1] == '\0')
		fuzz_fail("email_canon: accepted without one inner '@'");
	for (i = 0; i < len; i++)
		if ((unsigned char)out[i] <= 0x20 ||
		    (unsigned char)out[i] >= 0x7f ||
		    (out[i] >= 'A' && out[i] <= 'Z'))
			fuzz_fail("email_canon: byte 0x%02x kept",
			    (unsigned char)out[i]);
	if (validate_utf8(out, len) == -1)
		fuzz_fail("email_canon: output is not UTF-8");
	/* idempotent: the canonical form is its own canonical form */
	{
		char	 again[FA_EMAIL_MAX + 1];

		if (email_canon(out, len, again, &why) == -1 ||
		    strcmp(again, out) != 0)
			fuzz_fail("email_canon: not idempotent");
	}
}

static void
check_clean(const char *s, size_t n)
{
	char		 out[FA_UA_MAX + 1], again[FA_UA_MAX + 1];
	const unsigned char *u = (const unsigned char *)out;
	size_t		 len, i;

	len = text_clean(out, sizeof(out), s, n);
	if (len != strlen(out) || len > FA_UA_MAX)
		fuzz_fail("text_clean: length %zu", len);
	if (validate_utf8(out, len) == -1)
		fuzz_fail("text_clean: output is not UTF-8");
	for (i = 0; i < len; i++)
		if (u[i] < 0x20 || u[i] == 0x7f || (u[i] == 0xc2 &&
		    u[i + 1] >= 0x80 && u[i + 1] <= 0x9f))
			fuzz_fail("text_clean: kept a control at %zu", i);
	if (text_clean(again, sizeof(again), out, len) != len ||
	    strcmp(again, out) != 0)
		fuzz_fail("text_clean: not idempotent");
}

static void
check_string(const char *s, size_t n)
{
	const char	*why;

	check_utf8(s, n);
	check_email(s, n);
	if (validate_password(s, n, &why) == 0 &&
	    (n < FA_PASSWORD_MIN || n > FA_PASSWORD_MAX ||
	    validate_utf8(s, n) == -1))
		fuzz_fail("validate_password accepted %zu bytes", n);
	if (validate_name(s, n, &why) == 0 &&
	    (validate_utf8(s, n) == -1 || codepoints(s, n) > FA_NAME_MAX))
		fuzz_fail("validate_name accepted bad UTF-8 or too long");
	check_clean(s, n);
	if (validate_role(s, n) == 0) {
		size_t	 i;

		if (n == 0 || n > FA_ROLE_MAX || s[0] < 'a' || s[0] > 'z')
			fuzz_fail("validate_role accepted a bad start/length");
		for (i = 0; i < n; i++)
			if (strchr("abcdefghijklmnopqrstuvwxyz0123456789_-",
			    s[i]) == NULL || s[i] == '\0')
				fuzz_fail("validate_role accepted 0x%02x",
				    (unsigned char)s[i]);
	}
}

static void
walk(json_t *j, int depth)
{
	const char	*k;
	json_t		*v;
	size_t		 i;

	if (depth > 64)
		return;
	if (json_is_string(j)) {
		if (memchr(json_string_value(j), '\0',
		    json_string_length(j)) != NULL)
			fuzz_fail("a parsed string holds a NUL");
		check_string(json_string_value(j), json_string_length(j));
	} else if (json_is_object(j)) {
		json_object_foreach(j, k, v) {
			check_string(k, strlen(k));
			walk(v, depth + 1);
		}
	} else if (json_is_array(j))
		json_array_foreach(j, i, v)
			walk(v, depth + 1);
}

static void
check_rpc(const char *buf, size_t size)
{
	struct rpc_req	 req;
	json_t		*root, *reply;
	const char	*why;
	char		*msg;
	enum rpc_parse	 rc;

	rc = rpc_parse(buf, size, &req, &root, &why);
	if (rc == RPC_DROP) {
		if (root != NULL || why == NULL)
			fuzz_fail("rpc_parse: a drop with a root or no reason");
		return;
	}
	if (root == NULL || req.id[0] == '\0' ||
	    strlen(req.id) > RPC_ID_MAX)
		fuzz_fail("rpc_parse: accepted without a root or an id");
	if (rc == RPC_OK && (req.token == NULL || req.toklen == 0 ||
	    req.toklen > FA_TOKEN_MAX))
		fuzz_fail("rpc_parse: token of %zu bytes", req.toklen);
	if (xasprintf(&msg, "{\"id\":%s,\"response\":{\"valid\":false},"
	    "\"isDisposed\":true}", req.id) == -1)
		fuzz_fail("xasprintf");
	if ((reply = json_parse_object(msg, strlen(msg))) == NULL ||
	    json_object_size(reply) != 3 ||
	    !json_equal(json_object_get(reply, "id"),
	    json_object_get(root, "id")))
		fuzz_fail("rpc reply envelope does not echo the id: %s", msg);
	json_decref(reply);
	free(msg);
	json_decref(root);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*buf = (const char *)data;
	json_t		*j;
	char		*dump;

	j = json_parse_object(buf, size);
	if (j != NULL) {
		if (!json_is_object(j))
			fuzz_fail("json_parse_object returned a non-object");
		if (memchr(buf, '\0', size) != NULL)
			fuzz_fail("json_parse_object accepted a NUL byte");
		walk(j, 0);
		/* what the handlers answer with must parse again */
		if ((dump = json_dumps(j, JSON_COMPACT)) == NULL)
			fuzz_fail("json_dumps failed on a parsed object");
		json_decref(j);
		if ((j = json_parse_object(dump, strlen(dump))) == NULL)
			fuzz_fail("re-parse of our own dump failed");
		free(dump);
		json_decref(j);
	}
	check_rpc(buf, size);
	/* the validators on the raw bytes too (bounded, they are linear) */
	if (size <= 4 * FA_PASSWORD_MAX)
		check_string(buf, size);
	return 0;
}
