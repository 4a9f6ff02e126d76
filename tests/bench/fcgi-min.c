/*
 * The ceiling of the FastCGI transport: a libfcgi responder that answers
 * 204 to everything, with the same worker threads as fcgi-auth.  With
 * "identity" it answers with the headers a verify answer carries (request
 * id, the four identity headers, Cache-Control), so the web server's own
 * work on them is in the baseline too.
 * usage: fcgi-min HOST:PORT|PATH THREADS [identity]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

static const char	*answer = "Status: 204\r\nContent-Length: 0\r\n\r\n";
static const char	*identity =
    "Status: 204 No Content\r\n"
    "X-Request-Id: 0123456789abcdef0123456789abcdef\r\n"
    "X-Auth-User-Id: 01234567-89ab-4cde-8f01-23456789abcd\r\n"
    "X-Auth-Email: bench@example.com\r\n"
    "X-Auth-Roles: user\r\n"
    "X-Auth-Session-Id: 0123456789abcdef0123456789abcdef\r\n"
    "Cache-Control: no-store\r\n"
    "Content-Length: 0\r\n\r\n";
static int		 sock;

static void *
worker(void *arg)
{
	FCGX_Request	 r;

	(void)arg;
	FCGX_InitRequest(&r, sock, 0);
	while (FCGX_Accept_r(&r) >= 0) {
		FCGX_PutS(answer, r.out);
		FCGX_Finish_r(&r);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t	 t;
	int		 i, n;

	if (argc < 3 || argc > 4 || (n = atoi(argv[2])) < 1 ||
	    (argc == 4 && strcmp(argv[3], "identity") != 0)) {
		fprintf(stderr, "usage: fcgi-min ADDR THREADS [identity]\n");
		return 2;
	}
	if (argc == 4)
		answer = identity;
	FCGX_Init();
	if ((sock = FCGX_OpenSocket(argv[1], 1024)) < 0)
		return 1;
	for (i = 1; i < n; i++)
		pthread_create(&t, NULL, worker, NULL);
	worker(NULL);
	return 0;
}
