/*
 * The listening socket of the FastCGI server: a unix path, host:port, fd 0
 * or systemd's LISTEN_FDS, and the FCGI_WEB_SERVER_ADDRS allow-list its
 * TCP peers are checked against.  Set up once by the main thread before
 * any worker starts, read-only afterwards.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "extern.h"
#include "server_int.h"

#define SD_LISTEN_FDS_START	3

static struct {
	char		*unix_path;	/* to unlink on exit */
	struct in6_addr	 allow[SERVER_ALLOW_MAX];	/* v4 as ::ffff:a.b.c.d */
	size_t		 nallow;	/* 0: every peer */
} sl;

static int
listen_unix(const char *path, long mode, long backlog, char **errstr)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		xasprintf(errstr, "listen: socket path too long");
		return -1;
	}
	strncpy(sun.sun_path, path, sizeof(sun.sun_path) - 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		goto fail;
	if (unlink(path) == -1 && errno != ENOENT)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(path, (mode_t)mode) == -1 || listen(fd, (int)backlog) == -1)
		goto fail;
	sl.unix_path = xstrdup(path);
	return fd;
fail:
	xasprintf(errstr, "listen: %s: %s", path, strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

/* "host:port", "[v6]:port" or ":port" (loopback). */
static int
listen_tcp(const char *spec, long backlog, char **errstr)
{
	struct addrinfo	 hints, *res = NULL;
	char		 host[256];
	const char	*colon, *h = host;
	int		 fd = -1, one = 1, rc;
	size_t		 n;

	if ((colon = strrchr(spec, ':')) == NULL ||
	    (n = (size_t)(colon - spec)) >= sizeof(host)) {
		xasprintf(errstr, "listen: expected a path or host:port");
		return -1;
	}
	memcpy(host, spec, n);
	host[n] = '\0';
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host[n - 1] = '\0';
		h = host + 1;
	} else if (n == 0)
		h = "127.0.0.1";
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	if ((rc = getaddrinfo(h, colon + 1, &hints, &res)) != 0) {
		xasprintf(errstr, "listen: %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	if ((fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC,
	    0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, (int)backlog) == -1) {
		xasprintf(errstr, "listen: %s: %s", spec, strerror(errno));
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static int
is_listening_socket(int fd)
{
	struct stat	 st;
	int		 v = 0;
	socklen_t	 len = sizeof(v);

	if (fstat(fd, &st) == -1 || !S_ISSOCK(st.st_mode))
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == -1)
		return 0;
	return v != 0;
}

/* systemd socket activation: LISTEN_PID must be us, one fd at 3. */
static int
listen_systemd(void)
{
	const char	*pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	long long	 p, n;

	if (pid == NULL || fds == NULL || num_parse(pid, 1, LLONG_MAX,
	    &p) == -1 || p != (long long)getpid() ||
	    num_parse(fds, 1, INT_MAX, &n) == -1)
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return SD_LISTEN_FDS_START;
}

static int
server_listen(const char *spec, char **errstr)
{
	int	 fd;

	if ((fd = listen_systemd()) != -1)
		return fd;
	if (spec == NULL || *spec == '\0') {
		if (is_listening_socket(STDIN_FILENO))
			return STDIN_FILENO;
		xasprintf(errstr, "listen: not set, and neither fd 0 nor "
		    "LISTEN_FDS is a listening socket");
		return -1;
	}
	if (strchr(spec, '/') != NULL)
		return listen_unix(spec, cfg->listen_mode, cfg->backlog,
		    errstr);
	return listen_tcp(spec, cfg->backlog, errstr);
}

/*
 * FCGI_WEB_SERVER_ADDRS, as libfcgi defines it: comma-separated addresses
 * of the web servers allowed to connect over TCP (libfcgi takes IPv4 only;
 * we take IPv6 too).  Unset or empty: any peer.  Unix socket peers are not
 * checked.  A malformed entry is refused rather than skipped, so a typo
 * cannot open the socket to every peer nor close it to all.
 */
static int
allow_parse(const char *list, char **errstr)
{
	struct in_addr	 v4;
	char		 a[INET6_ADDRSTRLEN];
	size_t		 n;

	sl.nallow = 0;
	while (list != NULL && *list != '\0') {
		list += strspn(list, ", ");
		if ((n = strcspn(list, ", ")) == 0)
			break;
		if (n >= sizeof(a) || sl.nallow == SERVER_ALLOW_MAX)
			goto fail;
		memcpy(a, list, n);
		a[n] = '\0';
		memset(&sl.allow[sl.nallow], 0, sizeof(sl.allow[0]));
		if (inet_pton(AF_INET, a, &v4) == 1) {
			sl.allow[sl.nallow].s6_addr[10] = 0xff;
			sl.allow[sl.nallow].s6_addr[11] = 0xff;
			memcpy(&sl.allow[sl.nallow].s6_addr[12], &v4, 4);
		} else if (inet_pton(AF_INET6, a, &sl.allow[sl.nallow]) != 1)
			goto fail;
		sl.nallow++;
		list += n;
	}
	return 0;
fail:
	xasprintf(errstr, "FCGI_WEB_SERVER_ADDRS: expected at most %d "
	    "comma-separated IP addresses", SERVER_ALLOW_MAX);
	return -1;
}

int
server_peer_allowed(const struct sockaddr_storage *ss)
{
	struct in6_addr	 a;
	size_t		 i;

	if (sl.nallow == 0 || ss->ss_family == AF_UNIX)
		return 1;
	memset(&a, 0, sizeof(a));
	if (ss->ss_family == AF_INET) {
		a.s6_addr[10] = a.s6_addr[11] = 0xff;
		memcpy(&a.s6_addr[12],
		    &((const struct sockaddr_in *)(const void *)ss)->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6)
		a = ((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr;
	else
		return 0;
	for (i = 0; i < sl.nallow; i++)
		if (memcmp(&a, &sl.allow[i], sizeof(a)) == 0)
			return 1;
	return 0;
}

void
server_peer_name(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
	const void	*a = NULL;

	if (ss->ss_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)ss)->sin_addr;
	else if (ss->ss_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr;
	if (a == NULL || inet_ntop(ss->ss_family, a, out,
	    (socklen_t)outsz) == NULL)
		snprintf(out, outsz, "?");
}

/* Warn when a TCP listener is reachable beyond loopback with no allow-list:
 * whoever can connect chooses REMOTE_ADDR and reaches internal routes. */
static void
listen_check_exposed(int fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	const struct in6_addr	*a6;
	char			 name[INET6_ADDRSTRLEN];
	int			 loop;

	if (sl.nallow > 0 || getsockname(fd, (struct sockaddr *)&ss,
	    &len) == -1)
		return;
	if (ss.ss_family == AF_INET)
		loop = (ntohl(((struct sockaddr_in *)(void *)&ss)->sin_addr.
		    s_addr) >> 24) == 127;
	else if (ss.ss_family == AF_INET6) {
		a6 = &((struct sockaddr_in6 *)(void *)&ss)->sin6_addr;
		loop = IN6_IS_ADDR_LOOPBACK(a6) ||
		    (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
	} else
		return;
	if (!loop) {
		server_peer_name(&ss, name, sizeof(name));
		log_warn(NULL, "listen: %s is reachable beyond loopback and "
		    "FCGI_WEB_SERVER_ADDRS is not set", name);
	}
}

/* The allow-list from the environment, then the socket; -1 and errstr. */
int
server_listen_open(const char *spec, char **errstr)
{
	int	 fd;

	if (allow_parse(getenv("FCGI_WEB_SERVER_ADDRS"), errstr) == -1)
		return -1;
	if ((fd = server_listen(spec, errstr)) == -1)
		return -1;
	listen_check_exposed(fd);
	return fd;
}

/* Remove the unix socket we bound, if any. */
void
server_listen_unlink(void)
{
	if (sl.unix_path != NULL)
		unlink(sl.unix_path);
	free(sl.unix_path);
	sl.unix_path = NULL;
}
