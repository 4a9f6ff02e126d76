/*
 * The mailer: one thread that sends the mail queue (auth.mail_queue) over
 * SMTP with libcurl.  STARTTLS when the server offers it on smtp://
 * (CURLUSESSL_TRY), implicit TLS on smtps://, AUTH when smtp_user is set,
 * connect and overall timeouts.  Rows are leased (their next attempt moved
 * past the send's timeout) rather than locked, so no transaction stays open
 * while SMTP talks and a crashed sender's rows come back by themselves.
 * A 5xx answer is permanent: the mail is dropped with an audit row.  Any
 * other failure is retried, the first time after mail_retry_min_seconds,
 * then doubling, until mail_retry_hours after the mail was queued.
 *
 * The settings are live: each batch holds the generation it started with
 * (RELOAD_SLOT_MAILER) and passes it down, so a reload never frees the
 * strings a send is using and one send never mixes two generations.  The
 * thread runs from start; while smtp_url is empty it only waits.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "extern.h"

static struct {
	pthread_t	 thread;
	pthread_mutex_t	 lock;
	struct db_listen *listen;	/* fa_mail */
	int		 stop;
	int		 started;
} mr = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

/* libcurl reads the message from here. */
struct upload {
	const char	*p;
	size_t		 left;
};

static size_t
mailer_read(char *out, size_t size, size_t n, void *arg)
{
	struct upload	*u = arg;
	size_t		 want = size * n;

	if (want > u->left)
		want = u->left;
	memcpy(out, u->p, want);
	u->p += want;
	u->left -= want;
	return want;
}

enum send_result {
	SEND_OK,
	SEND_TEMPORARY,
	SEND_PERMANENT
};

/* Send msg to rcpt; err gets libcurl's reason and the SMTP code. */
static enum send_result
mailer_send(const struct config *cf, const char *rcpt, const char *msg,
    size_t len, char *err, size_t errsz)
{
	CURL			*c;
	struct curl_slist	*to = NULL;
	struct upload		 u = { msg, len };
	char			 cerr[CURL_ERROR_SIZE] = "", addr[FA_EMAIL_MAX + 3];
	char			 from[FA_EMAIL_MAX + 3];
	long			 code = 0;
	CURLcode		 rc;

	if ((c = curl_easy_init()) == NULL) {
		snprintf(err, errsz, "curl_easy_init failed");
		return SEND_TEMPORARY;
	}
	snprintf(addr, sizeof(addr), "<%s>", rcpt);
	snprintf(from, sizeof(from), "<%s>", cf->mail_from);
	to = curl_slist_append(to, addr);
	curl_easy_setopt(c, CURLOPT_URL, cf->smtp_url);
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	if (cf->smtp_user[0] != '\0') {
		curl_easy_setopt(c, CURLOPT_USERNAME, cf->smtp_user);
		curl_easy_setopt(c, CURLOPT_PASSWORD,
		    cf->smtp_password != NULL ? cf->smtp_password : "");
	}
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, to);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, mailer_read);
	curl_easy_setopt(c, CURLOPT_READDATA, &u);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	    cf->smtp_connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, cf->smtp_timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(to);
	curl_easy_cleanup(c);
	if (rc == CURLE_OK)
		return SEND_OK;
	snprintf(err, errsz, "%s (SMTP %ld)",
	    cerr[0] != '\0' ? cerr : curl_easy_strerror(rc), code);
	return code >= 500 && code < 600 ? SEND_PERMANENT : SEND_TEMPORARY;
}

/*
 * For doctor: can the SMTP server of smtp_url be reached, with STARTTLS
 * and AUTH as a send would use them?  0, or -1 and why in err.  It stops
 * after the greeting (CURLOPT_CONNECT_ONLY): no mail is sent.
 */
int
mailer_probe(char *err, size_t errsz)
{
	CURL		*c;
	char		 cerr[CURL_ERROR_SIZE] = "";
	CURLcode	 rc;

	if ((c = curl_easy_init()) == NULL) {
		snprintf(err, errsz, "curl_easy_init failed");
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_URL, cfg->smtp_url);
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	if (cfg->smtp_user[0] != '\0') {
		curl_easy_setopt(c, CURLOPT_USERNAME, cfg->smtp_user);
		curl_easy_setopt(c, CURLOPT_PASSWORD,
		    cfg->smtp_password != NULL ? cfg->smtp_password : "");
	}
	curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	    cfg->smtp_connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, cfg->smtp_timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	rc = curl_easy_perform(c);
	curl_easy_cleanup(c);
	if (rc == CURLE_OK)
		return 0;
	snprintf(err, errsz, "%s", cerr[0] != '\0' ? cerr :
	    curl_easy_strerror(rc));
	return -1;
}

/* Seconds until the next attempt after attempts failures, or -1: give up. */
static long
mailer_backoff(const struct config *cf, long attempts, double age)
{
	long	 d = cf->mail_retry_min_seconds;
	long	 i;

	for (i = 1; i < attempts && d < MAILER_BACKOFF_MAX_S; i++)
		d *= 2;
	if (d > MAILER_BACKOFF_MAX_S)
		d = MAILER_BACKOFF_MAX_S;
	if (age + (double)d > (double)cf->mail_retry_hours * 3600)
		return -1;
	return d;
}

static void
mailer_one(const struct config *cf, json_t *row)
{
	long long	 id = json_integer_value(json_object_get(row, "id"));
	const char	*kind = json_string_value(json_object_get(row, "kind"));
	const char	*rcpt = json_string_value(json_object_get(row, "rcpt"));
	const char	*sealed = json_string_value(json_object_get(row,
			    "message"));
	long		 attempts = (long)json_integer_value(json_object_get(row,
			    "attempts")) + 1, delay;
	double		 age = json_real_value(json_object_get(row,
			    "ageSeconds"));
	char		 err[DB_MAIL_ERROR_MAX] = "", *msg = NULL;
	size_t		 len;
	enum send_result res;

	if (kind == NULL || rcpt == NULL || sealed == NULL ||
	    once_open(&msg, &len, sealed) == -1) {
		log_error(NULL, "mail %lld: cannot open the sealed message "
		    "(jwt_secret changed?); dropped", id);
		(void)db_mail_fail(id, kind != NULL ? kind : "", "unsealable");
		metrics_mail(METRICS_MAIL_FAILED);
		return;
	}
	res = mailer_send(cf, rcpt, msg, len, err, sizeof(err));
	sodium_memzero(msg, len);
	free(msg);
	if (res == SEND_OK) {
		if (db_mail_done(id) != DB_OK)
			log_warn(NULL, "mail %lld sent, not marked sent", id);
		metrics_mail(METRICS_MAIL_SENT);
		log_info(NULL, "mail %lld (%s) sent", id, kind);
		return;
	}
	if (res == SEND_TEMPORARY &&
	    (delay = mailer_backoff(cf, attempts, age)) != -1) {
		log_warn(NULL, "mail %lld (%s): %s; again in %ld s", id, kind,
		    err, delay);
		(void)db_mail_retry(id, delay, err);
		return;
	}
	log_error(NULL, "mail %lld (%s): %s; dropped after %ld attempt(s)",
	    id, kind, err, attempts);
	(void)db_mail_fail(id, kind, err);
	metrics_mail(METRICS_MAIL_FAILED);
}

/*
 * Apply the requests of forgot and resend (route_account.c): look the user
 * up, store the token, queue the mail, write the audit row and event, and
 * delete the request, in one statement each.  The rows handled, or -1.
 */
static int
mailer_requests(void)
{
	struct once_req	 q;
	json_t		*rows = NULL, *row, *req;
	char		 uid[FA_UUID_LEN + 1];
	size_t		 i;
	int		 n;

	if (db_mail_request_claim(MAILER_BATCH, MAILER_LEASE_SLACK_S,
	    &rows) != DB_OK)
		return -1;
	json_array_foreach(rows, i, row) {
		req = json_object_get(row, "request");
		memset(&q, 0, sizeof(q));
		q.purpose = json_string_value(json_object_get(req, "purpose"));
		q.email = json_string_value(json_object_get(req, "email"));
		q.unverified_only = json_is_true(json_object_get(req,
		    "unverifiedOnly"));
		q.hash = json_string_value(json_object_get(req, "hash"));
		q.ttl = (long)json_integer_value(json_object_get(req, "ttl"));
		q.kind = json_string_value(json_object_get(req, "kind"));
		q.a_event = json_string_value(json_object_get(req, "aEvent"));
		q.ip = json_string_value(json_object_get(req, "ip"));
		q.user_agent = json_string_value(json_object_get(req,
		    "userAgent"));
		q.ev = (enum event_kind)json_integer_value(json_object_get(req,
		    "event"));
		if (q.ev < EVENT_NONE || q.ev >= EVENT__MAX)
			q.ev = EVENT_NONE;
		q.message = json_string_value(json_object_get(row, "message"));
		q.request_id = json_integer_value(json_object_get(row, "id"));
		if (q.purpose == NULL || q.kind == NULL ||
		    db_once_request(&q, uid) != DB_OK)
			log_warn(NULL, "mail request %lld not applied; again "
			    "in %d s", q.request_id, MAILER_LEASE_SLACK_S);
	}
	n = (int)json_array_size(rows);
	json_decref(rows);
	return n;
}

/* One batch of due mail; the rows handled, -1 when PostgreSQL failed. */
static int
mailer_batch(const struct config *cf)
{
	json_t	*rows = NULL, *row;
	size_t	 i;
	int	 n;

	if (db_mail_claim(MAILER_BATCH, cf->smtp_timeout_ms / 1000 +
	    MAILER_LEASE_SLACK_S, &rows) != DB_OK)
		return -1;
	json_array_foreach(rows, i, row) {
		if (mr.stop)
			break;	/* the rest come back when their lease ends */
		mailer_one(cf, row);
	}
	n = (int)json_array_size(rows);
	json_decref(rows);
	return n;
}

/*
 * One round under one generation: the requests, then the due mail.  1
 * when a full batch says more is waiting.
 */
static int
mailer_round(void)
{
	const struct config	*cf;
	int			 more = 0;

	reload_hold(RELOAD_SLOT_MAILER);
	cf = cfg;
	if (cf->smtp_url[0] != '\0')
		more = mailer_requests() == MAILER_BATCH ||
		    (!mr.stop && mailer_batch(cf) == MAILER_BATCH);
	reload_release(RELOAD_SLOT_MAILER);
	return more;
}

static void *
mailer_main(void *arg)
{
	int	 stop;

	(void)arg;
	for (;;) {
		while (!mr.stop && mailer_round())
			;
		/* a NOTIFY on fa_mail, mailer_shutdown, or the poll */
		(void)db_listen_wait(mr.listen, MAILER_POLL_MS);
		pthread_mutex_lock(&mr.lock);
		stop = mr.stop;
		pthread_mutex_unlock(&mr.lock);
		if (stop)
			break;
	}
	return NULL;
}

int
mailer_init(void)
{
	static const char *const channels[] = { DB_NOTIFY_MAIL, NULL };

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	if ((mr.listen = db_listen_open(channels)) == NULL)
		goto fail;
	if (pthread_create(&mr.thread, NULL, mailer_main, NULL) != 0)
		goto fail;
	mr.started = 1;
	return 0;
fail:
	db_listen_close(mr.listen);
	mr.listen = NULL;
	curl_global_cleanup();
	return -1;
}

void
mailer_shutdown(void)
{
	if (!mr.started)
		return;
	pthread_mutex_lock(&mr.lock);
	mr.stop = 1;
	pthread_mutex_unlock(&mr.lock);
	db_listen_wake(mr.listen);
	pthread_join(mr.thread, NULL);
	db_listen_close(mr.listen);
	mr.listen = NULL;
	curl_global_cleanup();
	mr.started = 0;
}
