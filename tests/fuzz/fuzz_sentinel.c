/*
 * fuzz_sentinel.c: sentinel_next, the redis_sentinels list parser, on a
 * NUL-terminated copy of the input.  Byte 0 picks the host buffer's size
 * (1..SENTINEL_HOST_MAX, allocated exactly, so an overflow is an ASan
 * finding); the rest is the list.  Properties:
 *  - every call moves *list forward within the string, so the walk ends;
 *  - an accepted entry has a host of 1..hostsz-1 bytes without a blank or
 *    a comma and a port in 1..65535;
 *  - written back as "[host]:port" and parsed again, it gives the same
 *    host and port;
 *  - sentinel_check accepts the list only if every entry parses, and
 *    there are 1..SENTINEL_MAX of them.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static void
check_entry(const char *host, size_t hostsz, int port)
{
	char		 again[SENTINEL_HOST_MAX], buf[SENTINEL_HOST_MAX + 16];
	const char	*p = buf;
	size_t		 n = strlen(host);
	int		 port2;

	if (n == 0 || n >= hostsz || strpbrk(host, " ,") != NULL)
		fuzz_fail("host of %zu bytes (buffer %zu)", n, hostsz);
	if (port < 1 || port > 65535)
		fuzz_fail("port %d", port);
	snprintf(buf, sizeof(buf), "[%s]:%d", host, port);
	if (sentinel_next(&p, again, sizeof(again), &port2) != 1)
		fuzz_fail("written back, refused: %s", buf);
	if (strcmp(again, host) != 0 || port2 != port)
		fuzz_fail("written back, parsed differently: %s", buf);
	if (*p != '\0')
		fuzz_fail("written back, not all read: %s", buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		*list, *host, *errstr = NULL;
	const char	*p, *prev, *end;
	size_t		 hostsz;
	int		 port, rc, n = 0, bad = 0;

	if (size < 1)
		return 0;
	hostsz = (size_t)data[0] % SENTINEL_HOST_MAX + 1;
	list = fuzz_strndup(data + 1, size - 1);
	host = xmalloc(hostsz);
	end = list + strlen(list);
	p = list;
	for (;;) {
		prev = p;
		port = 0;
		rc = sentinel_next(&p, host, hostsz, &port);
		if (p < prev || p > end)
			fuzz_fail("list moved from %td to %td of %td",
			    prev - list, p - list, end - list);
		if (rc == 0) {
			if (*p != '\0')
				fuzz_fail("end reported before the end");
			break;
		}
		if (p == prev)
			fuzz_fail("no progress at %td", p - list);
		if (rc == 1) {
			check_entry(host, hostsz, port);
			n++;
		} else if (rc == -1)
			bad = 1;
		else
			fuzz_fail("sentinel_next: %d", rc);
	}
	/* sentinel_check parses with the full-size buffer */
	if (hostsz == SENTINEL_HOST_MAX && *list != '\0') {
		rc = sentinel_check(list, "mymaster", &errstr);
		if (rc == 0 && (bad || n == 0 || n > SENTINEL_MAX))
			fuzz_fail("sentinel_check took a list with %d entries%s",
			    n, bad ? " and a bad one" : "");
		if (rc == -1 && !bad && n >= 1 && n <= SENTINEL_MAX)
			fuzz_fail("sentinel_check refused %d good entries", n);
		free(errstr);
	}
	free(host);
	free(list);
	return 0;
}
