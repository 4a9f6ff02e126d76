/*
 * Group commit for the refresh path.  A refresh's audit row must be
 * committed before it is answered (nothing answered is lost), and with
 * PostgreSQL's synchronous_commit each commit waits for a WAL flush.  So a
 * refreshing worker queues its user lookup + audit row here and sleeps;
 * AUDITQ_WRITERS threads each take what is queued (up to AUDITQ_BATCH_MAX)
 * and run it as one statement (db_user_refresh_batch): one round trip
 * and one WAL flush for many refreshes.  Each waiting worker is
 * released once its batch committed, with its user; if the batch failed,
 * each runs its refresh alone (db_user_refresh: its own retry and
 * deadline), so PostgreSQL down still answers 503 as before.
 *
 * A job lives on its worker's stack: the worker does not return before a
 * writer marked it done, and writers only block on PostgreSQL within
 * pool_timeout.  Not started (the CLI, tests): the call is db_user_refresh.
 */
#include "config.h"

#include <pthread.h>
#include <string.h>

#include "extern.h"

struct auditq_job {
	struct db_refresh	 r;
	struct auditq_job	*next;
	pthread_cond_t		 cond;	/* done set */
	int			 done;	/* 1 committed, -1 batch failed */
};

static struct {
	pthread_mutex_t		 lock;
	pthread_cond_t		 work;	/* a job queued, or stop */
	struct auditq_job	*head, **tail;
	pthread_t		 thread[AUDITQ_WRITERS];
	int			 nthreads;
	int			 stop;
} aq = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
	.tail = &aq.head,
};

/* Take up to AUDITQ_BATCH_MAX queued jobs; aq.lock held. */
static size_t
auditq_take(struct auditq_job **batch)
{
	size_t	 n = 0;

	while (aq.head != NULL && n < AUDITQ_BATCH_MAX) {
		batch[n++] = aq.head;
		if ((aq.head = aq.head->next) == NULL)
			aq.tail = &aq.head;
	}
	return n;
}

static void *
auditq_main(void *arg)
{
	struct auditq_job	*batch[AUDITQ_BATCH_MAX];
	struct db_refresh	 r[AUDITQ_BATCH_MAX];
	size_t			 i, n;
	int			 rc;

	(void)arg;
	pthread_mutex_lock(&aq.lock);
	for (;;) {
		while (aq.head == NULL && !aq.stop)
			pthread_cond_wait(&aq.work, &aq.lock);
		if ((n = auditq_take(batch)) == 0)
			break;	/* stopping, and nothing is left */
		pthread_mutex_unlock(&aq.lock);
		for (i = 0; i < n; i++)
			r[i] = batch[i]->r;
		rc = db_user_refresh_batch(r, n);
		pthread_mutex_lock(&aq.lock);
		for (i = 0; i < n; i++) {
			batch[i]->r.rc = r[i].rc;
			batch[i]->done = rc == DB_OK ? 1 : -1;
			pthread_cond_signal(&batch[i]->cond);
		}
	}
	pthread_mutex_unlock(&aq.lock);
	return NULL;
}

int
auditq_start(void)
{
	int	 i;

	if (aq.nthreads > 0)
		return 0;
	aq.stop = 0;
	for (i = 0; i < AUDITQ_WRITERS; i++) {
		if (pthread_create(&aq.thread[i], NULL, auditq_main,
		    NULL) != 0) {
			log_error(NULL, "auditq: cannot start a writer");
			break;
		}
		aq.nthreads++;
	}
	return aq.nthreads > 0 ? 0 : -1;
}

/* After the workers: what is queued is written, then the writers end. */
void
auditq_stop(void)
{
	int	 i;

	pthread_mutex_lock(&aq.lock);
	aq.stop = 1;
	pthread_cond_broadcast(&aq.work);
	pthread_mutex_unlock(&aq.lock);
	for (i = 0; i < aq.nthreads; i++)
		pthread_join(aq.thread[i], NULL);
	aq.nthreads = 0;
}

int
auditq_user_refresh(const char *id, const struct audit *a, struct user *out)
{
	struct auditq_job	 j;
	int			 queued = 0;

	memset(&j, 0, sizeof(j));
	pthread_cond_init(&j.cond, NULL);
	j.r.id = id;
	j.r.a = a;
	j.r.out = out;
	pthread_mutex_lock(&aq.lock);
	if (aq.nthreads > 0 && !aq.stop) {
		*aq.tail = &j;
		aq.tail = &j.next;
		queued = 1;
		pthread_cond_signal(&aq.work);
		while (j.done == 0)
			pthread_cond_wait(&j.cond, &aq.lock);
	}
	pthread_mutex_unlock(&aq.lock);
	pthread_cond_destroy(&j.cond);
	if (queued && j.done == 1)
		return j.r.rc;
	return db_user_refresh(id, a, out);
}
