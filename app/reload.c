/*
 * Reload without restart: configuration generations.
 *
 * cfg points at the current generation, a struct config with its keys
 * (c->tokens) that nothing writes once it is published.  A reload (SIGHUP,
 * systemctl reload) builds the next one beside it from the file, the
 * environment and the key files; any failure leaves the running one as it
 * is.  Restart-only keys keep their running values (config.c's table says
 * which); each one that changed is logged as needing a restart.  Then the
 * main thread publishes the next generation (cfg, then the generation
 * number) and retires the old one.
 *
 * Freeing the old one is the delicate part: workers read cfg without a
 * lock.  Each worker holds, for the length of a request, the generation
 * number it saw at the start (reload_hold: store it, then check that it is
 * still the current one, so a reload cannot slip between the two); code in
 * that request may read cfg as often as it likes, and sees the held
 * generation or a newer one.  A retired generation is freed by the main
 * thread's tick (reload_reap) once no worker holds it or an older one, and
 * RELOAD_GRACE_MS have passed: threads outside the request path (the
 * outbox relay) read cfg for an instant, never across a blocking call,
 * and the restart-only strings they pass to blocking calls belong to the
 * boot generation, which lives until exit.  The mailer and the RPC
 * responder pass live keys to blocking calls (SMTP, Redis): each has a
 * slot of its own after the workers' (RELOAD_SLOT_*) and holds a
 * generation for a batch as a worker does for a request.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "extern.h"

struct retired {
	struct config	*c;
	unsigned long	 gen;
	long long	 at;		/* mono_ms when retired */
	struct retired	*next;
};

static struct {
	struct config	*boot;		/* generation 1: lives until exit */
	unsigned long	 gen;		/* the current generation's number */
	unsigned long	*held;		/* per slot: generation, 0 none */
	long		 nworkers;
	long		 nslots;	/* workers, then RELOAD_THREAD_SLOTS */
	struct retired	*retired;
} rl;

void
reload_free(struct config *c)
{
	if (c == NULL)
		return;
	token_free(c->tokens);
	c->tokens = NULL;
	mail_templates_free(c);
	config_free(c);
	free(c);
}

int
reload_load(const char *path, struct config **out, char **errstr)
{
	struct config	*c;

	*out = NULL;
	c = xcalloc(1, sizeof(*c));
	if (config_load(c, path, 0, errstr) == -1 ||
	    token_init(c, errstr) == -1 ||
	    mail_templates_load(c, errstr) == -1) {
		reload_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

/* A previous secret is for the overlap of a rotation, not for keeps. */
static void
reload_warn_previous(const struct config *c)
{
	if (c->jwt_secret_previous_len > 0)
		log_warn(NULL, "jwt_secret_previous is set: what the old secret "
		    "signed is still accepted; remove it once refresh_ttl "
		    "(%ld s) has passed since the rotation", c->refresh_ttl);
}

void
reload_start(struct config *boot, long nworkers)
{
	reload_warn_previous(boot);
	rl.boot = boot;
	rl.gen = 1;
	rl.nworkers = nworkers;
	rl.nslots = nworkers + RELOAD_THREAD_SLOTS;
	rl.held = xcalloc((size_t)rl.nslots, sizeof(*rl.held));
}

/* A worker's slot, or a thread's (RELOAD_SLOT_*, negative); -1: none. */
static long
reload_slot(long w)
{
	if (rl.held == NULL)
		return -1;
	if (w < 0)
		w = rl.nworkers - 1 - w;
	return w < rl.nslots ? w : -1;
}

unsigned long
reload_generation(void)
{
	return __atomic_load_n(&rl.gen, __ATOMIC_SEQ_CST);
}

void
reload_hold(long w)
{
	unsigned long	 g;

	if ((w = reload_slot(w)) == -1)
		return;
	do {
		g = __atomic_load_n(&rl.gen, __ATOMIC_SEQ_CST);
		__atomic_store_n(&rl.held[w], g, __ATOMIC_SEQ_CST);
	} while (__atomic_load_n(&rl.gen, __ATOMIC_SEQ_CST) != g);
}

void
reload_release(long w)
{
	if ((w = reload_slot(w)) == -1)
		return;
	__atomic_store_n(&rl.held[w], 0, __ATOMIC_RELEASE);
}

/* 1 when some worker holds generation gen or an older one. */
static int
reload_in_use(unsigned long gen)
{
	unsigned long	 h;
	long		 i;

	for (i = 0; i < rl.nslots; i++) {
		h = __atomic_load_n(&rl.held[i], __ATOMIC_SEQ_CST);
		if (h != 0 && h <= gen)
			return 1;
	}
	return 0;
}

void
reload_reap(void)
{
	struct retired	**pp = &rl.retired, *r;
	long long	  now = mono_ms();

	while ((r = *pp) != NULL) {
		if (now - r->at < RELOAD_GRACE_MS || reload_in_use(r->gen)) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		reload_free(r->c);
		free(r);
	}
}

static void
reload_note(const char *key)
{
	log_warn(NULL, "SIGHUP: %s changed: restart needed to apply it (the "
	    "running value is kept)", key);
}

int
reload_run(const char *path)
{
	struct config	*next = NULL, *old;
	struct retired	*r;
	enum log_level	 l;
	enum log_format	 f;
	char		*err = NULL;

	if (reload_load(path, &next, &err) == -1 ||
	    log_level_parse(next->log_level, &l) == -1 ||
	    log_format_parse(next->log_format, &f) == -1 ||
	    log_open(next->log_file, &err) == -1) {
		log_error(NULL, "SIGHUP: %s; running configuration kept",
		    err != NULL ? err : "log_level or log_format");
		free(err);
		reload_free(next);
		return -1;
	}
	(void)config_keep_restart(next, rl.boot, reload_note);
	log_set_level(l);
	log_set_format(f);
	old = cfg;
	__atomic_store_n(&cfg, next, __ATOMIC_SEQ_CST);
	__atomic_store_n(&rl.gen, rl.gen + 1, __ATOMIC_SEQ_CST);
	if (old != rl.boot) {
		r = xcalloc(1, sizeof(*r));
		r->c = old;
		r->gen = rl.gen - 1;
		r->at = mono_ms();
		r->next = rl.retired;
		rl.retired = r;
	}
	log_info(NULL, "SIGHUP: log reopened, log_level %s, log_format %s; "
	    "configuration and keys reloaded (generation %lu)",
	    log_level_name(l), next->log_format, rl.gen);
	reload_warn_previous(next);
	return 0;
}

void
reload_stop(void)
{
	struct retired	*r;
	struct config	*cur = cfg;

	if (rl.boot == NULL)
		return;
	__atomic_store_n(&cfg, rl.boot, __ATOMIC_SEQ_CST);
	if (cur != rl.boot)
		reload_free(cur);
	while ((r = rl.retired) != NULL) {
		rl.retired = r->next;
		reload_free(r->c);
		free(r);
	}
	free(rl.held);
	memset(&rl, 0, sizeof(rl));
}
