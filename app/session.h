/*
 * session.c: the service layer of a session; included at the end of
 * extern.h, after every type it uses.
 */
#ifndef FA_SESSION_H
#define FA_SESSION_H

/* session.c: the end of a session, recorded (API.md "more session detail"). */
enum session_end {
	SESSION_END_USER,		/* DELETE /sessions/{id} */
	SESSION_END_LOGOUT_ALL,
	SESSION_END_PASSWORD_CHANGE,
	SESSION_END_PASSWORD_RESET,
	SESSION_END_REUSE,
	SESSION_END_DISABLED,
	SESSION_END_DELETED,
	SESSION_END_ADMIN,
	SESSION_END_LIMIT,		/* past max_sessions_per_user */
	SESSION_END__MAX
};
const char	*session_end_reason(enum session_end);	/* "logout_all" */
/*
 * One session.revoke audit row and its session.revoked event (data userId,
 * sessionId, reason) in one transaction.  r may be NULL (no ip, user agent
 * or request id); email may be NULL.  0, or -1 (logged: not recorded).
 */
int		 session_revoked(struct request *r, const char *uid,
		    const char *email, const char *sid, enum session_end);
/* The same with by ("cli", ...; NULL: none) in the audit detail. */
int		 session_revoked_by(struct request *r, const char *uid,
		    const char *email, const char *sid, enum session_end,
		    const char *by);
/*
 * The service layer over store.c and db.c for a session's life: open
 * (login, second factor), the token pair (open and refresh), end all
 * (logout-all, CLI).  Answers nothing: routes turn results into answers.
 */
struct session_pair {
	char		 uid[FA_UUID_LEN + 1];
	char		 sid[FA_UUID_LEN + 1];
	char		 refresh[FA_REFRESH_LEN + 1];
	char		*access;	/* owned; NULL: could not be signed */
};
/* Sign u's access token for sid: 0, or -1 (logged; p->access NULL). */
int		 session_pair(struct request *, const struct user *u,
		    const char *sid, const char *refresh_text, long long gen,
		    int aal, struct session_pair *p);
void		 session_pair_free(struct session_pair *);	/* wipes */
/*
 * Create a session for u (ip and raw user agent: the client's at the
 * password step) with its aal, trim the user's oldest past the limit and
 * record the login; *p then holds the pair.  0, -1 a backend failed, 1 the
 * user changed under the login (password, disabled, deleted).
 */
int		 session_open(struct request *, const struct user *u,
		    const char *ip, const char *rawua, int aal,
		    struct session_pair *p);
/*
 * End every session of u and cut off its access tokens issued until now;
 * each ended session is recorded with why, then one logout-all row with
 * by ("cli", ...) in its detail.  *n: the sessions ended.  0, or -1 (Redis
 * down: nothing recorded).
 */
int		 session_end_all(struct request *, const struct user *u,
		    enum session_end why, const char *by, size_t *n);

#endif /* FA_SESSION_H */
