/*
 * fuzz_csv.c: the import's parsers on raw file bytes.  csv_next over the
 * whole input, and hashfmt_check on every field, with these properties:
 *  - records advance: *off grows, r->line never goes back, a record has
 *    1..CSV_FIELDS_MAX fields of at most CSV_FIELD_MAX bytes and no NUL;
 *  - written back in RFC 4180 (every field quoted, quotes doubled, CRLF)
 *    and parsed again, a record gives the same fields;
 *  - a hash accepted as bcrypt is 60 bytes, as Argon2id starts with
 *    $argon2id$v=19$m=.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static void
check_roundtrip(const struct csv_record *r)
{
	struct csv_record	 again;
	const char		*why = NULL;
	char			*buf, *o;
	size_t			 i, cap = 2, off = 0, line = 0;

	for (i = 0; i < r->nfield; i++)
		cap += 2 * strlen(r->field[i]) + 3;
	o = buf = xmalloc(cap + 1);
	for (i = 0; i < r->nfield; i++) {
		const char *s;

		if (i > 0)
			*o++ = ',';
		*o++ = '"';
		for (s = r->field[i]; *s != '\0'; s++) {
			if (*s == '"')
				*o++ = '"';
			*o++ = *s;
		}
		*o++ = '"';
	}
	*o++ = '\r';
	*o++ = '\n';
	/* quoting may make it longer than the record limit: then no check */
	if (csv_next(buf, (size_t)(o - buf), &off, &line, &again, &why) != 1) {
		free(buf);
		return;
	}
	if (again.nfield != r->nfield)
		fuzz_fail("round trip: %zu fields, then %zu", r->nfield,
		    again.nfield);
	for (i = 0; i < r->nfield; i++)
		if (strcmp(again.field[i], r->field[i]) != 0)
			fuzz_fail("round trip: field %zu differs", i);
	if (off != (size_t)(o - buf))
		fuzz_fail("round trip: %zu of %zu bytes used", off,
		    (size_t)(o - buf));
	csv_record_free(&again);
	free(buf);
}

static void
check_hash(const char *s)
{
	const char	*why = NULL;
	size_t		 n = strlen(s);

	switch (hashfmt_check(s, n, &why)) {
	case HASHFMT_BCRYPT:
		if (n != HASHFMT_BCRYPT_LEN)
			fuzz_fail("bcrypt of %zu bytes accepted", n);
		break;
	case HASHFMT_ARGON2ID:
		if (strncmp(s, "$argon2id$v=19$m=", 17) != 0)
			fuzz_fail("argon2id without its prefix accepted");
		break;
	case HASHFMT_BAD:
		if (why == NULL)
			fuzz_fail("hashfmt_check: no reason");
		break;
	default:
		fuzz_fail("hashfmt_check: unknown answer");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csv_record	 r;
	const char		*why = NULL, *buf = (const char *)data;
	size_t			 off = 0, line = 0, prev = 0, last = 0, i;
	int			 rc;

	while ((rc = csv_next(buf, size, &off, &line, &r, &why)) == 1) {
		if (off <= prev || off > size)
			fuzz_fail("offset %zu after %zu (size %zu)", off, prev,
			    size);
		if (r.line < last || r.line > line)
			fuzz_fail("record line %zu (last %zu, now %zu)",
			    r.line, last, line);
		if (r.nfield < 1 || r.nfield > CSV_FIELDS_MAX)
			fuzz_fail("%zu fields", r.nfield);
		for (i = 0; i < r.nfield; i++) {
			if (strlen(r.field[i]) > CSV_FIELD_MAX)
				fuzz_fail("field of %zu bytes",
				    strlen(r.field[i]));
			check_hash(r.field[i]);
		}
		check_roundtrip(&r);
		prev = off;
		last = r.line;
		csv_record_free(&r);
	}
	if (rc == -1 && (why == NULL || r.field != NULL || r.nfield != 0))
		fuzz_fail("malformed: no reason, or fields left behind");
	if (rc == 0 && off < size)
		fuzz_fail("end at %zu of %zu bytes", off, size);
	return 0;
}
