/*
 * server_int.h: what server.c, server_listen.c and server_request.c share;
 * included by those files only.
 */
#ifndef FA_SERVER_INT_H
#define FA_SERVER_INT_H

struct sockaddr_storage;

/* server_listen.c: the allow-list, then the listening socket; -1 and
 * errstr (the caller's to free). */
int		 server_listen_open(const char *spec, char **errstr);
void		 server_listen_unlink(void);
int		 server_peer_allowed(const struct sockaddr_storage *);
void		 server_peer_name(const struct sockaddr_storage *, char *out,
		    size_t outsz);

/* server_request.c */
void		 server_reqid_init(void);
/* names[i]'s value in the FastCGI parameters, or NULL: one pass */
void		 server_params_find(char **envp, const char *const *names,
		    size_t n, const char **out);
/* Fill r from the FastCGI parameters; -1 when the path is not ours (404). */
int		 server_request_fill(struct request *, FCGX_Request *);
void		 server_response_write(struct request *, FCGX_Request *);

#endif /* FA_SERVER_INT_H */
