/*
 * store_session.c: sessions in Redis: create (trimmed to the user's
 * maximum), rotate (reuse detection, grace), revoke one or all, raise the
 * user's cut-off, list.  Every change of a user is one script in the
 * user's slot; each revocation it makes is handed up at once
 * (store_note_revoked) before the call returns.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "extern.h"
#include "store_int.h"

/* The user's key prefix and sessions key. */
static void
user_keys(const char *uid, char prefix[STORE_KEY_MAX], char zkey[STORE_KEY_MAX])
{
	snprintf(prefix, STORE_KEY_MAX, "fa:{%s}:", uid);
	snprintf(zkey, STORE_KEY_MAX, "fa:{%s}:sessions", uid);
}

/* A session revoked by this process, handed up at once (store_on_revoke). */
static void
session_noted(const char *uid, const char *sid, long access_ttl)
{
	store_note_revoked(REVOKE_SESSION, uid, sid, 1,
	    store_revoke_ttl(access_ttl));
}

int
store_session_create(const char *uid, const char *sid, const char *rhash,
    const char *ip, const char *ua, int aal, long ttl, long max,
    char ***revoked, size_t *nrevoked, long long *cutoff)
{
	struct rop	 op;
	redisReply	*r = NULL, *list;
	char		 p[STORE_KEY_MAX], z[STORE_KEY_MAX];
	char		 now[24], sttl[24], smax[24], rttl[24], saal[12];
	char		 uabuf[FA_UA_MAX + 1], ipbuf[FA_IP_MAX + 1];
	const char	*args[11];
	char		**out = NULL;
	size_t		 i, n = 0;
	int		 rc = -1;

	*revoked = NULL;
	*nrevoked = 0;
	*cutoff = 0;
	if (!store_id_ok(uid) || !store_id_ok(sid) || rhash == NULL ||
	    *rhash == '\0') {
		log_error(NULL, "redis: session create: bad arguments");
		return -1;
	}
	snprintf(ipbuf, sizeof(ipbuf), "%s", ip ? ip : "");
	snprintf(uabuf, sizeof(uabuf), "%s", ua ? ua : "");
	user_keys(uid, p, z);
	snprintf(now, sizeof(now), "%lld", now_ms());
	snprintf(sttl, sizeof(sttl), "%ld", ttl > 0 ? ttl : 1);
	snprintf(smax, sizeof(smax), "%ld", max > 0 ? max : 0);
	snprintf(rttl, sizeof(rttl), "%ld",
	    store_revoke_ttl(store_pool.access_ttl));
	args[0] = p;
	args[1] = sid;
	args[2] = rhash;
	args[3] = ipbuf;
	args[4] = uabuf;
	args[5] = now;
	args[6] = sttl;
	args[7] = smax;
	args[8] = rttl;
	snprintf(saal, sizeof(saal), "%d", aal >= TOKEN_AAL_MIN &&
	    aal <= TOKEN_AAL_MAX ? aal : TOKEN_AAL_MIN);
	args[9] = saal;
	args[10] = store_pool.chan;
	if (store_op_begin(&op, SC_CREATE, z, 11, args, 0, &r) == -1)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    store_reply_int(r->element[0], cutoff) == -1 ||
	    r->element[1]->type != REDIS_REPLY_ARRAY) {
		log_error(NULL, "redis: session create: bad reply");
		op.broken = 1;
		goto out;
	}
	list = r->element[1];
	if (list->elements > 0) {
		out = xcalloc(list->elements, sizeof(*out));
		for (i = 0; i < list->elements; i++)
			if (list->element[i]->type == REDIS_REPLY_STRING) {
				out[n++] = xstrdup(list->element[i]->str);
				session_noted(uid, list->element[i]->str,
				    store_pool.access_ttl);
			}
	}
	*revoked = out;
	*nrevoked = n;
	out = NULL;
	rc = 0;
out:
	free(out);
	return store_op_end(&op, r, rc);
}

int
store_session_rotate(const char *uid, const char *sid, const char *presented,
    const char *newhash, const char *new_enc, long grace, long ttl,
    enum rotate_result *res, char **child_enc, long long *cutoff, int *aal)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 p[STORE_KEY_MAX], z[STORE_KEY_MAX];
	char		 sgrace[24], sttl[24], now[24], rttl[24];
	const char	*args[10];
	long long	 code, v;
	int		 rc = -1;

	*res = ROTATE_UNKNOWN;
	*child_enc = NULL;
	*cutoff = 0;
	*aal = TOKEN_AAL_MIN;
	if (!store_id_ok(uid) || !store_id_ok(sid) || presented == NULL ||
	    *presented == '\0')
		return 0;	/* such a token cannot name a session */
	if (newhash == NULL || *newhash == '\0' || new_enc == NULL) {
		log_error(NULL, "redis: rotate: bad arguments");
		return -1;
	}
	user_keys(uid, p, z);
	snprintf(sgrace, sizeof(sgrace), "%ld", grace > 0 ? grace : 0);
	snprintf(sttl, sizeof(sttl), "%ld", ttl > 0 ? ttl : 1);
	snprintf(now, sizeof(now), "%lld", now_ms());
	snprintf(rttl, sizeof(rttl), "%ld",
	    store_revoke_ttl(store_pool.access_ttl));
	args[0] = p;
	args[1] = sid;
	args[2] = presented;
	args[3] = newhash;
	args[4] = new_enc;
	args[5] = sgrace;
	args[6] = sttl;
	args[7] = now;
	args[8] = rttl;
	args[9] = store_pool.chan;
	if (store_op_begin(&op, SC_ROTATE, z, 10, args, 0, &r) == -1)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
	    store_reply_int(r->element[0], &code) == -1 ||
	    store_reply_int(r->element[1], cutoff) == -1 ||
	    r->element[2]->type != REDIS_REPLY_STRING ||
	    store_reply_int(r->element[3], &v) == -1 ||
	    code < ROTATE_OK || code > ROTATE_UNKNOWN) {
		log_error(NULL, "redis: rotate: bad reply");
		op.broken = 1;
		goto out;
	}
	*res = (enum rotate_result)code;
	if (v >= TOKEN_AAL_MIN && v <= TOKEN_AAL_MAX)
		*aal = (int)v;
	if (*res == ROTATE_REUSE)
		session_noted(uid, sid, store_pool.access_ttl);
	if (*res == ROTATE_GRACE)
		*child_enc = xstrdup(r->element[2]->str);
	rc = 0;
out:
	return store_op_end(&op, r, rc);
}

/*
 * Revoke session sid of uid with script sc: SC_REVOKE (rhash NULL) or
 * SC_REVOKE_REFRESH (only if rhash is one of the session's refresh hashes).
 * 0 revoked (and noted in this process's cache), 1 no such session or
 * token, -1 unavailable.
 */
static int
session_revoke(enum script sc, const char *uid, const char *sid,
    const char *rhash, long access_ttl)
{
	struct rop	 op;
	redisReply	*r = NULL;
	char		 p[STORE_KEY_MAX], z[STORE_KEY_MAX], rttl[24];
	const char	*args[5];
	long long	 v;
	int		 n = 0;

	if (!store_id_ok(uid) || !store_id_ok(sid) ||
	    (sc == SC_REVOKE_REFRESH && (rhash == NULL || *rhash == '\0')))
		return 1;
	user_keys(uid, p, z);
	snprintf(rttl, sizeof(rttl), "%ld", store_revoke_ttl(access_ttl));
	args[n++] = p;
	args[n++] = sid;
	if (sc == SC_REVOKE_REFRESH)
		args[n++] = rhash;
	args[n++] = rttl;
	args[n++] = store_pool.chan;
	if (store_op_begin(&op, sc, z, n, args, 1, &r) == -1)
		return -1;
	if (store_op_int(&op, r, &v) == -1)
		return store_op_end(&op, r, -1);
	if (v == 0)
		session_noted(uid, sid, access_ttl);
	return store_op_end(&op, r, v == 0 ? 0 : 1);
}

int
store_session_revoke(const char *uid, const char *sid, long access_ttl)
{
	return session_revoke(SC_REVOKE, uid, sid, NULL, access_ttl);
}

int
store_session_revoke_refresh(const char *uid, const char *sid,
    const char *rhash, long access_ttl)
{
	return session_revoke(SC_REVOKE_REFRESH, uid, sid, rhash, access_ttl);
}

/*
 * SC_CUTOFF answers the new cut-off, SC_REVOKE_ALL {cutoff, {revoked sids}};
 * both are noted in this process's cache before returning.
 */
static int
cutoff_script(enum script sc, const char *uid, const char *keep_sid,
    long access_ttl, long long *cutoff, char ***sids, size_t *nsids)
{
	struct rop	 op;
	redisReply	*r = NULL, *c, *list = NULL;
	char		 p[STORE_KEY_MAX], z[STORE_KEY_MAX], now[24], rttl[24];
	const char	*args[5];
	size_t		 i;
	int		 n = 0, rc = -1;

	*cutoff = 0;
	if (!store_id_ok(uid)) {
		log_error(NULL, "redis: revoke: bad user id");
		return -1;
	}
	user_keys(uid, p, z);
	snprintf(now, sizeof(now), "%lld", now_ms() / 1000);
	snprintf(rttl, sizeof(rttl), "%ld", store_revoke_ttl(access_ttl));
	args[n++] = p;
	if (sc == SC_REVOKE_ALL)
		args[n++] = keep_sid != NULL ? keep_sid : "";
	args[n++] = now;
	args[n++] = rttl;
	args[n++] = store_pool.chan;
	if (store_op_begin(&op, sc, z, n, args, 1, &r) == -1)
		return -1;
	c = r;
	if (sc == SC_REVOKE_ALL) {
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			op.broken = 1;
			goto out;
		}
		c = r->element[0];
		list = r->element[1];
	}
	if (store_op_int(&op, c, cutoff) == -1)
		goto out;
	store_note_revoked(REVOKE_CUTOFF, uid, "", *cutoff,
	    store_revoke_ttl(access_ttl));
	if (sids != NULL && list != NULL && list->elements > 0)
		*sids = xcalloc(list->elements, sizeof(**sids));
	for (i = 0; list != NULL && i < list->elements; i++)
		if (list->element[i]->type == REDIS_REPLY_STRING) {
			session_noted(uid, list->element[i]->str, access_ttl);
			if (sids != NULL)
				(*sids)[(*nsids)++] =
				    xstrdup(list->element[i]->str);
		}
	rc = 0;
out:
	return store_op_end(&op, r, rc);
}

int
store_user_revoke_all(const char *uid, const char *keep_sid, long access_ttl,
    long long *cutoff)
{
	return cutoff_script(SC_REVOKE_ALL, uid, keep_sid, access_ttl, cutoff,
	    NULL, NULL);
}

int
store_user_revoke_sessions(const char *uid, const char *keep_sid,
    long access_ttl, long long *cutoff, char ***sids, size_t *nsids)
{
	*sids = NULL;
	*nsids = 0;
	return cutoff_script(SC_REVOKE_ALL, uid, keep_sid, access_ttl, cutoff,
	    sids, nsids);
}

int
store_user_cutoff(const char *uid, long access_ttl, long long *cutoff)
{
	return cutoff_script(SC_CUTOFF, uid, NULL, access_ttl, cutoff, NULL,
	    NULL);
}

int
store_session_list(const char *uid, struct session_info **list, size_t *n)
{
	struct rop		 op;
	redisReply		*r = NULL, **e;
	struct session_info	*out = NULL, *s;
	char			 p[STORE_KEY_MAX], z[STORE_KEY_MAX];
	const char		*args[1];
	size_t			 i, k = 0;
	int			 rc = -1;

	*list = NULL;
	*n = 0;
	if (!store_id_ok(uid))
		return 0;
	user_keys(uid, p, z);
	args[0] = p;
	if (store_op_begin(&op, SC_LIST, z, 1, args, 0, &r) == -1)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 5 != 0) {
		op.broken = 1;
		goto out;
	}
	if (r->elements > 0)
		out = xcalloc(r->elements / 5, sizeof(*out));
	for (i = 0; i < r->elements; i += 5) {
		e = r->element + i;
		if (e[0]->type != REDIS_REPLY_STRING ||
		    e[3]->type != REDIS_REPLY_STRING ||
		    e[4]->type != REDIS_REPLY_STRING)
			continue;
		s = &out[k++];
		snprintf(s->id, sizeof(s->id), "%s", e[0]->str);
		store_reply_int(e[1], &s->created_ms);
		store_reply_int(e[2], &s->last_used_ms);
		snprintf(s->ip, sizeof(s->ip), "%s", e[3]->str);
		/* sessions written before text.c kept the raw header */
		text_clean(s->user_agent, sizeof(s->user_agent), e[4]->str,
		    e[4]->len);
	}
	*list = out;
	*n = k;
	out = NULL;
	rc = 0;
out:
	free(out);
	return store_op_end(&op, r, rc);
}
