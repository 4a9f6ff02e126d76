/*
 * The ceiling of the FastCGI transport: a libfcgi responder that answers
 * 204 to everything, with the same worker threads as fcgi-auth.
 * usage: fcgi-min HOST:PORT|PATH THREADS
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <fcgiapp.h>

static int	 sock;

static void *
worker(void *arg)
{
	FCGX_Request	 r;

	(void)arg;
	FCGX_InitRequest(&r, sock, 0);
	while (FCGX_Accept_r(&r) >= 0) {
		FCGX_FPrintF(r.out, "Status: 204\r\nContent-Length: 0\r\n\r\n");
		FCGX_Finish_r(&r);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t	 t;
	int		 i, n;

	if (argc != 3 || (n = atoi(argv[2])) < 1) {
		fprintf(stderr, "usage: fcgi-min ADDR THREADS\n");
		return 2;
	}
	FCGX_Init();
	if ((sock = FCGX_OpenSocket(argv[1], 1024)) < 0)
		return 1;
	for (i = 1; i < n; i++)
		pthread_create(&t, NULL, worker, NULL);
	worker(NULL);
	return 0;
}
