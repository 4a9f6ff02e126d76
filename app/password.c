/*
 * password.c: password hashing (Argon2id, libsodium) and verification of
 * Argon2 and imported bcrypt hashes (libxcrypt).  Every hash and verify
 * runs on a small pool of threads fed by a queue: the calling thread
 * blocks until its job is done, so at most hash_threads memory-hard
 * computations run at once and the fast routes keep their CPU.
 *
 * Timing: a verify with no stored hash (unknown email) or an unusable one
 * spends the same work on a dummy hash of the configured cost and reports
 * a mismatch, so it looks like a wrong password.
 */
#include "config.h"

#include <crypt.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "extern.h"

enum job_kind {
	JOB_HASH,
	JOB_VERIFY
};

/* A request of a caller thread; lives on that thread's stack. */
struct job {
	enum job_kind	 kind;
	const char	*stored;	/* JOB_VERIFY, may be NULL */
	const char	*pw;
	size_t		 len;
	char		*out;		/* JOB_HASH: STRBYTES */
	int		 rehash;
	int		 rc;
	int		 done;
	pthread_cond_t	 cv;
	struct job	*next;
};

static struct {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;		/* work queued or stop */
	struct job	*head, *tail;
	pthread_t	*threads;
	size_t		 nthreads;
	int		 ready;
	int		 stop;
	int		 nice_warned;	/* once, not per thread */
	unsigned long long ops;
	size_t		 mem;
	char		 dummy[crypto_pwhash_STRBYTES];
} pool = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER
};

static int
has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static int
is_argon2(const char *s)
{
	return has_prefix(s, crypto_pwhash_argon2id_STRPREFIX) ||
	    has_prefix(s, crypto_pwhash_argon2i_STRPREFIX);
}

static int
is_bcrypt(const char *s)
{
	return has_prefix(s, "$2a$") || has_prefix(s, "$2b$") ||
	    has_prefix(s, "$2y$");
}

/* Spend the time of a verify; the answer is always a mismatch. */
static int
dummy_verify(const char *pw, size_t len)
{
	if (crypto_pwhash_str_verify(pool.dummy, pw, len) == 0)
		return 1;	/* a 256-bit random password: never */
	return 1;
}

/* 0 match, 1 mismatch, -1 error. */
static int
bcrypt_verify(const char *stored, const char *pw, size_t len)
{
	struct crypt_data	*cd = NULL;
	char			*buf = NULL;
	const char		*res;
	size_t			 n;
	int			 rc = 1;

	/* A NUL cannot have been part of a bcrypt password. */
	if (memchr(pw, '\0', len) != NULL)
		return dummy_verify(pw, len);
	cd = xcalloc(1, sizeof(*cd));
	buf = xmalloc(len + 1);
	memcpy(buf, pw, len);
	buf[len] = '\0';
	res = crypt_rn(buf, stored, cd, sizeof(*cd));
	if (res == NULL || res[0] == '*') {
		log_warn(NULL, "password: unusable bcrypt hash in store");
		goto out;
	}
	n = strlen(stored);
	if (strlen(res) == n && sodium_memcmp(res, stored, n) == 0)
		rc = 0;
out:
	sodium_memzero(buf, len + 1);
	sodium_memzero(cd, sizeof(*cd));
	free(buf);
	free(cd);
	return rc;
}

static void
job_run(struct job *j)
{
	j->rehash = 0;
	if (j->kind == JOB_HASH) {
		j->rc = crypto_pwhash_str(j->out, j->pw, j->len, pool.ops,
		    pool.mem) == 0 ? 0 : -1;
		return;
	}
	if (j->stored == NULL)
		j->rc = dummy_verify(j->pw, j->len);
	else if (is_argon2(j->stored)) {
		j->rc = crypto_pwhash_str_verify(j->stored, j->pw, j->len) == 0 ?
		    0 : 1;
		if (j->rc == 0)
			j->rehash = crypto_pwhash_str_needs_rehash(j->stored,
			    pool.ops, pool.mem) != 0;
	} else if (is_bcrypt(j->stored)) {
		j->rc = bcrypt_verify(j->stored, j->pw, j->len);
		j->rehash = j->rc == 0;
	} else {
		log_warn(NULL, "password: unknown hash format in store");
		j->rc = dummy_verify(j->pw, j->len);
	}
}

static void *
worker(void *arg)
{
	struct job	*j;
	int		 nice_errno = 0;

	(void)arg;
	/*
	 * Hash below the FastCGI workers: on Linux a thread's nice value is
	 * its own, so verify and refresh preempt a running Argon2 while logins
	 * still use every idle cycle.
	 */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
	    PASSWORD_NICE) == -1)
		nice_errno = errno;
	pthread_mutex_lock(&pool.mu);
	if (nice_errno != 0 && !pool.nice_warned) {
		pool.nice_warned = 1;
		log_warn(NULL, "password: cannot lower the hash threads' "
		    "priority (setpriority: %s); hashing competes with verify "
		    "and refresh", strerror(nice_errno));
	}
	for (;;) {
		while (pool.head == NULL && !pool.stop)
			pthread_cond_wait(&pool.cv, &pool.mu);
		if ((j = pool.head) == NULL)
			break;		/* stopping and drained */
		if ((pool.head = j->next) == NULL)
			pool.tail = NULL;
		pthread_mutex_unlock(&pool.mu);
		job_run(j);
		pthread_mutex_lock(&pool.mu);
		j->done = 1;
		pthread_cond_signal(&j->cv);
	}
	pthread_mutex_unlock(&pool.mu);
	return NULL;
}

/* Queue j and block until a pool thread has run it. */
static int
submit(struct job *j)
{
	pthread_cond_init(&j->cv, NULL);
	j->done = 0;
	j->next = NULL;
	pthread_mutex_lock(&pool.mu);
	if (!pool.ready || pool.stop) {
		pthread_mutex_unlock(&pool.mu);
		pthread_cond_destroy(&j->cv);
		return -1;
	}
	if (pool.tail != NULL)
		pool.tail->next = j;
	else
		pool.head = j;
	pool.tail = j;
	pthread_cond_signal(&pool.cv);
	while (!j->done)
		pthread_cond_wait(&j->cv, &pool.mu);
	pthread_mutex_unlock(&pool.mu);
	pthread_cond_destroy(&j->cv);
	deadline_rearm();	/* hashing is not backend time */
	return 0;
}

int
password_init(const struct config *c)
{
	unsigned char	 rnd[PASSWORD_DUMMY_BYTES];
	long		 n;

	password_shutdown();
	if (sodium_init() < 0) {
		log_error(NULL, "password: libsodium initialisation failed");
		return -1;
	}
	if (c->password_opslimit < (long)crypto_pwhash_OPSLIMIT_MIN ||
	    (unsigned long long)c->password_opslimit >
	    crypto_pwhash_OPSLIMIT_MAX ||
	    c->password_memlimit < (long)crypto_pwhash_MEMLIMIT_MIN ||
	    (size_t)c->password_memlimit > crypto_pwhash_MEMLIMIT_MAX) {
		log_error(NULL, "password: opslimit %ld or memlimit %ld out of "
		    "range", c->password_opslimit, c->password_memlimit);
		return -1;
	}
	pool.ops = (unsigned long long)c->password_opslimit;
	pool.mem = (size_t)c->password_memlimit;

	randombytes_buf(rnd, sizeof(rnd));
	if (crypto_pwhash_str(pool.dummy, (const char *)rnd, sizeof(rnd),
	    pool.ops, pool.mem) != 0) {
		sodium_memzero(rnd, sizeof(rnd));
		log_error(NULL, "password: cannot hash (memlimit %zu bytes)",
		    pool.mem);
		return -1;
	}
	sodium_memzero(rnd, sizeof(rnd));

	n = c->hash_threads > 0 ? c->hash_threads :
	    sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > PASSWORD_THREADS_MAX)
		n = PASSWORD_THREADS_MAX;
	pool.threads = xcalloc((size_t)n, sizeof(*pool.threads));
	pool.stop = 0;
	pool.ready = 1;
	/* serve blocked the signals before: the threads inherit that */
	for (pool.nthreads = 0; pool.nthreads < (size_t)n; pool.nthreads++)
		if (pthread_create(&pool.threads[pool.nthreads], NULL, worker,
		    NULL) != 0)
			break;
	if (pool.nthreads == 0) {
		log_error(NULL, "password: cannot start hash threads");
		password_shutdown();
		return -1;
	}
	return 0;
}

void
password_shutdown(void)
{
	size_t	 i;

	pthread_mutex_lock(&pool.mu);
	pool.stop = 1;
	pthread_cond_broadcast(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
	for (i = 0; i < pool.nthreads; i++)
		pthread_join(pool.threads[i], NULL);
	free(pool.threads);
	pool.threads = NULL;
	pool.nthreads = 0;
	pool.ready = 0;
	sodium_memzero(pool.dummy, sizeof(pool.dummy));
}

int
password_hash(const char *pw, size_t len, char *out)
{
	struct job	 j;

	memset(&j, 0, sizeof(j));
	j.kind = JOB_HASH;
	j.pw = pw;
	j.len = len;
	j.out = out;
	if (submit(&j) == -1)
		return -1;
	return j.rc;
}

int
password_verify(const char *stored, const char *pw, size_t len, int *rehash)
{
	struct job	 j;

	if (rehash != NULL)
		*rehash = 0;
	memset(&j, 0, sizeof(j));
	j.kind = JOB_VERIFY;
	j.stored = stored;
	j.pw = pw;
	j.len = len;
	if (submit(&j) == -1)
		return -1;
	if (rehash != NULL)
		*rehash = j.rehash;
	return j.rc;
}
