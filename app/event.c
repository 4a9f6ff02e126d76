/*
 * Events through the transactional outbox.  Writers put the outbox row in
 * the same transaction as the change (db*.c), built by audit_envelope, and
 * NOTIFY fa_outbox; the relay thread LISTENs on a connection of its own
 * (db_listen_*), so a write by any process wakes the relays of every
 * instance at once.  It publishes pending rows in order of creation, marks
 * them published and commits.  It also wakes every EVENT_POLL_MS (and
 * polls at that pace while it has no listener), so rows are never left
 * behind.  Rows are claimed
 * FOR UPDATE SKIP LOCKED: two relays never publish the same row at once.
 * Delivery is at least once; eventId lets subscribers drop duplicates.
 *
 * After a failed publish (Redis down, stopped or timing out) the relay
 * holds the backlog until Redis answers a PING again and then for
 * EVENT_RESUME_MS more: pub/sub only reaches subscribers connected at the
 * time, and subscribers of a restarted Redis need a moment to reconnect.
 * Published rows are pruned after outbox_retention seconds, checked every
 * min(outbox_retention, 60) seconds (at least every second).
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"

#define EVENT_POLL_MS		500
#define EVENT_BATCH		100
#define EVENT_PRUNE_MS		60000	/* at most this long between prunes */
#define EVENT_PRUNE_MIN_MS	1000	/* at least this long */
#define EVENT_RESUME_MS		1000	/* Redis back: wait before publishing */
#define EVENT_CHANNEL_MAX	256

static struct {
	pthread_t	 thread;
	pthread_mutex_t	 lock;
	struct db_listen *listen;	/* fa_outbox */
	int		 stop;
	int		 started;
	/* relay thread only */
	int		 redis_down;	/* the last publish failed */
	long long	 resume_at;	/* Redis answered again; publish from */
} ev = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

/* k when the configuration enables it, else EVENT_NONE. */
enum event_kind
event_enabled(enum event_kind k)
{
	const char	*p = cfg->events_enabled, *name = audit_outbox_name(k);
	size_t		 n, len;

	if (name == NULL)
		return EVENT_NONE;
	if (strcmp(p, "all") == 0)
		return k;
	n = strlen(name);
	while (*p != '\0') {
		p += strspn(p, ", ");
		len = strcspn(p, ", ");
		if (len == n && strncmp(p, name, n) == 0)
			return k;
		p += len;
	}
	return EVENT_NONE;
}

/*
 * 1 when the relay may publish: Redis did not fail last time, or it
 * answers again and EVENT_RESUME_MS have passed since it first did.
 */
static int
event_redis_ready(void)
{
	long long	 t;

	if (!ev.redis_down)
		return 1;
	if (store_ping() == -1) {
		ev.resume_at = 0;
		return 0;
	}
	t = mono_ms();
	if (ev.resume_at == 0) {
		ev.resume_at = t + EVENT_RESUME_MS;
		log_info(NULL, "events: redis answers again; publishing the "
		    "backlog in %d ms", EVENT_RESUME_MS);
	}
	if (t < ev.resume_at)
		return 0;
	ev.redis_down = 0;
	ev.resume_at = 0;
	return 1;
}

/* Milliseconds between prunes: the retention, within [1 s, 60 s]. */
static long long
event_prune_ms(void)
{
	long long	 ms = (long long)cfg->outbox_retention * 1000;

	if (ms > EVENT_PRUNE_MS)
		ms = EVENT_PRUNE_MS;
	if (ms < EVENT_PRUNE_MIN_MS)
		ms = EVENT_PRUNE_MIN_MS;
	return ms;
}

/*
 * Publish one batch in order; stop at the first failure so no event
 * overtakes an earlier one.  Returns the rows published, -1 on failure.
 */
static int
event_relay_batch(void)
{
	struct db_batch	*b = NULL;
	json_t		*rows = NULL, *row;
	char		 channel[EVENT_CHANNEL_MAX];
	const char	*name, *msg;
	size_t		 i;
	int		 done = 0, rc;

	if (!event_redis_ready())
		return -1;
	rc = db_outbox_begin(EVENT_BATCH, &b, &rows);
	if (rc == DB_NOTFOUND)
		return 0;
	if (rc != DB_OK)
		return -1;
	json_array_foreach(rows, i, row) {
		name = json_string_value(json_object_get(row, "event"));
		msg = json_string_value(json_object_get(row, "message"));
		if (name == NULL || msg == NULL)
			continue;
		snprintf(channel, sizeof(channel), "%s%s", cfg->events_prefix,
		    name);
		if (store_publish(channel, msg, cfg->events_stream,
		    cfg->events_stream_maxlen) == -1) {
			ev.redis_down = 1;
			(void)db_outbox_retry(b, (long long)json_integer_value(
			    json_object_get(row, "id")));
			done = -1;
			break;
		}
		if (db_outbox_done(b, (long long)json_integer_value(
		    json_object_get(row, "id"))) != DB_OK) {
			done = -1;
			break;
		}
		done++;
	}
	if (db_outbox_end(b, 1) != DB_OK)
		done = -1;
	json_decref(rows);
	return done;
}

static void *
event_main(void *arg)
{
	long long	 t, last_prune = 0;
	int		 n, stop;

	(void)arg;
	for (;;) {
		do {
			n = event_relay_batch();
		} while (n == EVENT_BATCH);
		if ((t = mono_ms()) - last_prune >= event_prune_ms()) {
			(void)db_outbox_prune(cfg->outbox_retention);
			last_prune = t;
		}
		/* a NOTIFY on fa_outbox, event_shutdown, or the poll */
		(void)db_listen_wait(ev.listen, EVENT_POLL_MS);
		pthread_mutex_lock(&ev.lock);
		stop = ev.stop;
		pthread_mutex_unlock(&ev.lock);
		if (stop)
			break;
	}
	return NULL;
}

int
event_init(void)
{
	static const char *const channels[] = { DB_NOTIFY_CHANNEL, NULL };

	if ((ev.listen = db_listen_open(channels)) == NULL)
		return -1;
	if (pthread_create(&ev.thread, NULL, event_main, NULL) != 0) {
		db_listen_close(ev.listen);
		ev.listen = NULL;
		return -1;
	}
	ev.started = 1;
	return 0;
}

void
event_shutdown(void)
{
	if (!ev.started)
		return;
	pthread_mutex_lock(&ev.lock);
	ev.stop = 1;
	pthread_mutex_unlock(&ev.lock);
	db_listen_wake(ev.listen);
	pthread_join(ev.thread, NULL);
	db_listen_close(ev.listen);
	ev.listen = NULL;
	/* one last pass: what the drain committed goes out now */
	(void)event_relay_batch();
	ev.started = 0;
}
