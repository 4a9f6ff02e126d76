/*
 * CSV as RFC 4180 writes it, from memory: fields separated by commas,
 * records by CRLF or LF; a field in double quotes may hold commas, line
 * breaks and "" for one quote.  A quote inside an unquoted field, text after
 * a closing quote, an unterminated quote, a NUL byte or a record beyond the
 * limits is malformed.  No I/O: the import reads the file, this splits it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "extern.h"

void
csv_record_free(struct csv_record *r)
{
	size_t	 i;

	for (i = 0; i < r->nfield; i++)
		free(r->field[i]);
	free(r->field);
	memset(r, 0, sizeof(*r));
}

/* Append the field buf[0..n) to r. */
static void
csv_push(struct csv_record *r, const char *buf, size_t n)
{
	r->field = xrealloc(r->field, (r->nfield + 1) * sizeof(*r->field));
	r->field[r->nfield++] = xstrndup(buf, n);
}

int
csv_next(const char *buf, size_t len, size_t *off, size_t *line,
    struct csv_record *r, const char **why)
{
	char		*fld;
	size_t		 p = *off, n = 0, start = *off, first = *line + 1;
	int		 quoted, rc = -1;

	memset(r, 0, sizeof(*r));
	r->line = first;
	if (p >= len)
		return 0;
	fld = xmalloc(CSV_FIELD_MAX + 1);
	for (;;) {
		n = 0;
		quoted = p < len && buf[p] == '"';
		if (quoted)
			p++;
		for (;;) {
			if (p >= len) {
				if (quoted) {
					*why = "a quoted field is not closed";
					goto out;
				}
				break;
			}
			if (buf[p] == '\0') {
				*why = "a NUL byte";
				goto out;
			}
			if (quoted && buf[p] == '"') {
				if (p + 1 < len && buf[p + 1] == '"')
					p++;
				else {
					p++;
					break;
				}
			} else if (!quoted && (buf[p] == ',' ||
			    buf[p] == '\n' || buf[p] == '\r'))
				break;
			else if (!quoted && buf[p] == '"') {
				*why = "a quote inside an unquoted field";
				goto out;
			}
			if (buf[p] == '\n')
				(*line)++;
			if (n == CSV_FIELD_MAX) {
				*why = "a field longer than the limit";
				goto out;
			}
			fld[n++] = buf[p++];
		}
		if (p - start > CSV_RECORD_MAX || r->nfield == CSV_FIELDS_MAX) {
			*why = "a record longer than the limit";
			goto out;
		}
		csv_push(r, fld, n);
		if (p >= len)
			break;
		if (buf[p] == ',') {
			p++;
			continue;
		}
		if (buf[p] == '\r' && p + 1 < len && buf[p + 1] == '\n')
			p++;
		if (buf[p] != '\n' && !(buf[p] == '\r' && p + 1 >= len)) {
			*why = quoted ? "text after a closing quote" :
			    "a carriage return without a line feed";
			goto out;
		}
		p++;
		break;
	}
	(*line)++;
	*off = p;
	rc = 1;
out:
	free(fld);
	if (rc == -1) {
		csv_record_free(r);
		r->line = first;
	}
	return rc;
}
