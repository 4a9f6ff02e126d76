/*
 * server.h: the FastCGI server's public section (server.c, server_listen.c,
 * server_request.c), included from the end of extern.h.
 */
#ifndef FA_SERVER_H
#define FA_SERVER_H

/* server.c */
#define SERVER_TICK_MS		200	/* signal wait and deadline watch */
#define SERVER_LINGER_MS	2000	/* closing: wait this long per read */
#define SERVER_SIG_WAKE		SIGUSR2	/* interrupts a worker's read */
#define SERVER_EXIT_STUCK	1	/* drain failed: exit, free nothing */
#define SERVER_STACK_SIZE	(512 * 1024)
#define SERVER_DRAIN_SECONDS	5
#define SERVER_ACCEPT_RETRY_MS	10
#define SERVER_ARENA_MAX	16	/* malloc arenas (M_ARENA_MAX) */
#define SERVER_MMAP_MIN		(128 * 1024)	/* M_MMAP_THRESHOLD, fixed */
#define SERVER_TRIM_IDLE_MS	2000	/* idle this long: malloc_trim */
/* before any thread starts: every thread inherits the blocked signals */
void		 server_signals(sigset_t *);
/* config_path (NULL: the default) is re-read at SIGHUP */
int		 server_run(const struct config *, const char *listen_override,
		    const char *config_path);

/* server_listen.c */
#define SERVER_ALLOW_MAX	64	/* FCGI_WEB_SERVER_ADDRS entries */

/* server_request.c */
#define SERVER_ID_PREFIX	4	/* random bytes of our request ids */
#define SERVER_DISCARD_MAX	(64L * 1024 * 1024)	/* body past max_body
							   read and dropped */
#define SERVER_PARAMS_MAX	16	/* names one server_params_find takes */
#define SERVER_PARAM_NAME_MAX	63	/* longer names: found, more slowly */
#define SERVER_HEADER_MAX	(FA_TOKEN_MAX + 512)	/* one header line */

#endif /* FA_SERVER_H */
