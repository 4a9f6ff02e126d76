/*
 * store_revoke.c: revocation markers in Redis: the blacklist of access
 * tokens, the verify path's check (store_token_revoked: one MGET, no
 * allocation of ours), and the load of every marker for revoke.c's cache
 * (SCAN on a connection of its own).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "extern.h"
#include "store_int.h"

/* SET the marker and PUBLISH it in one script; noted here at once. */
int
store_blacklist(const char *uid, const char *jti, long ttl)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 key[STORE_KEY_MAX], sttl[24];
	const char	*args[2];

	if (!store_id_ok(uid) || !store_id_ok(jti) ||
	    strlen(jti) > FA_JTI_LEN) {
		log_error(NULL, "redis: blacklist: bad arguments");
		return -1;
	}
	if (ttl < 1)
		ttl = 1;
	snprintf(key, sizeof(key), "fa:{%s}:bl:%s", uid, jti);
	snprintf(sttl, sizeof(sttl), "%ld", ttl);
	args[0] = sttl;
	args[1] = store_pool.chan;
	if (store_op_begin(&op, SC_BLACKLIST, key, 2, args, 1, &r) == -1)
		return -1;
	store_note_revoked(REVOKE_JTI, uid, jti, 1, ttl);
	return store_op_end(&op, r, 0);
}

/*
 * The verify hot path: one MGET of three keys in the user's slot, no
 * allocation but hiredis' own for the command and the reply.
 */
int
store_token_revoked(const char *uid, const char *sid, const char *jti,
    long long gen)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 bl[STORE_KEY_MAX], srev[STORE_KEY_MAX], cut[STORE_KEY_MAX];
	const char	*argv[4];
	size_t		 len[4];
	long long	 c;
	int		 rc = -1;

	if (!store_id_ok(uid) || !store_id_ok(sid) || jti == NULL ||
	    *jti == '\0' || strlen(jti) > FA_JTI_LEN)
		return 1;	/* not one of our tokens: never alive */
	argv[0] = "MGET";
	argv[1] = bl;
	argv[2] = srev;
	argv[3] = cut;
	len[0] = 4;
	len[1] = (size_t)snprintf(bl, sizeof(bl), "fa:{%s}:bl:%s", uid, jti);
	len[2] = (size_t)snprintf(srev, sizeof(srev), "fa:{%s}:srev:%s",
	    uid, sid);
	len[3] = (size_t)snprintf(cut, sizeof(cut), "fa:{%s}:cutoff", uid);
	if (store_pool_get(&op) == -1)
		return -1;
	if (store_op_cmd(&op, 4, argv, len, &r, "MGET") == -1)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
		op.broken = 1;
		goto out;
	}
	if (r->element[0]->type != REDIS_REPLY_NIL ||
	    r->element[1]->type != REDIS_REPLY_NIL)
		rc = 1;
	else if (r->element[2]->type == REDIS_REPLY_STRING &&
	    store_reply_int(r->element[2], &c) == 0 && gen < c)
		rc = 1;
	else
		rc = 0;
out:
	return store_op_end(&op, r, rc);
}

/*
 * Every revocation in Redis now, to fn (NULL after each batch, so the
 * caller can read its subscription meanwhile): SCAN the string keys of
 * users, then PTTL (and GET for cut-offs) pipelined per batch, on a
 * connection of its own.  0, or -1 (err filled) if Redis failed or fn
 * returned -1.
 */
int
store_revocations_load(store_rev_fn fn, void *arg, char *err, size_t errsz)
{
	redisContext		*c = NULL;
	redisReply		*r = NULL, *keys, *t = NULL, *v = NULL;
	struct revocation	*revs = NULL;
	char			 cursor[32] = "0", count[24];
	size_t			 i, n;
	int			 rc = -1;

	if ((c = store_ctx_open(err, errsz)) == NULL)
		return -1;
	snprintf(count, sizeof(count), "%d", STORE_SCAN_COUNT);
	do {
		/* only strings: skips sessions (hash), zsets and sets */
		r = redisCommand(c, "SCAN %s MATCH fa:{* COUNT %s TYPE string",
		    cursor, count);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY ||
		    r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[0]->len >= sizeof(cursor) ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			snprintf(err, errsz, "SCAN: %.96s", r == NULL ?
			    c->errstr : r->type == REDIS_REPLY_ERROR ? r->str :
			    "bad reply");
			goto out;
		}
		memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
		keys = r->element[1];
		free(revs);
		revs = xcalloc(keys->elements + 1, sizeof(*revs));
		for (i = n = 0; i < keys->elements; i++) {
			if (keys->element[i]->type != REDIS_REPLY_STRING ||
			    store_revocation_key(keys->element[i]->str,
			    keys->element[i]->len, &revs[n]) == -1)
				continue;
			redisAppendCommand(c, "PTTL %b", keys->element[i]->str,
			    keys->element[i]->len);
			if (revs[n].kind == REVOKE_CUTOFF)
				redisAppendCommand(c, "GET %b",
				    keys->element[i]->str,
				    keys->element[i]->len);
			n++;
		}
		freeReplyObject(r);
		r = NULL;
		for (i = 0; i < n; i++) {
			if (redisGetReply(c, (void **)&t) != REDIS_OK ||
			    t == NULL || (revs[i].kind == REVOKE_CUTOFF &&
			    (redisGetReply(c, (void **)&v) != REDIS_OK ||
			    v == NULL))) {
				snprintf(err, errsz, "PTTL: %.96s", c->errstr);
				goto out;
			}
			revs[i].value = 1;
			/* a cut-off that is not a number is skipped (0) */
			if (v != NULL && store_reply_int(v, &revs[i].value) == -1)
				revs[i].value = 0;
			/* -2: gone since the SCAN; -1: no TTL (never set so) */
			revs[i].ttl_ms = t->type != REDIS_REPLY_INTEGER ? -2 :
			    t->integer == -1 ?
			    store_revoke_ttl(store_pool.access_ttl) * 1000LL :
			    t->integer;
			freeReplyObject(t);
			freeReplyObject(v);
			t = v = NULL;
			if (revs[i].ttl_ms >= 0 && (revs[i].kind !=
			    REVOKE_CUTOFF || revs[i].value > 0) &&
			    fn(arg, &revs[i]) == -1) {
				snprintf(err, errsz, "load stopped");
				goto out;
			}
		}
		if (fn(arg, NULL) == -1) {
			snprintf(err, errsz, "load stopped");
			goto out;
		}
	} while (strcmp(cursor, "0") != 0);
	rc = 0;
out:
	freeReplyObject(t);
	freeReplyObject(v);
	freeReplyObject(r);
	free(revs);
	redisFree(c);
	return rc;
}
