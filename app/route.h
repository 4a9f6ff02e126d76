/*
 * route.c, route_*.c, auth.c and roles.c: the route table and its
 * handlers; included at the end of extern.h, after every type it uses.
 */
#ifndef FA_ROUTE_H
#define FA_ROUTE_H

/* route.c: method + pattern -> handler. */
typedef void	(*handler_fn)(struct request *);
struct route {
	enum method	 method;
	const char	*pattern;	/* "/sessions/:" : = one segment */
	const char	*label;		/* metrics: "/sessions/{id}" */
	handler_fn	 fn;
};
#define ROUTE_IDS_MAX		48	/* route ids are 1..this; 0 other */
/* Routes in the table, and the metrics label of id (1..; else "other"). */
size_t		 route_table_size(void);
const char	*route_table_label(size_t id);
void		 route_dispatch(struct request *);
/* The method of a REQUEST_METHOD ("GET" ...), METHOD_OTHER if none. */
enum method	 route_method(const char *);
/* Sets r->route to the pattern r->path matches, any method (metrics label). */
void		 route_label(struct request *);
/* auth_check on the request: 0, or -1 with the 401/503 answer set */
int		 route_bearer(struct request *, struct claims *);
/* validate_fields with the refusal answered (400): 0, or -1 */
int		 route_fields(struct request *, const json_t *body,
		    const struct field_spec *, size_t n, int flags,
		    struct field_value *);

/* route_*.c: one file per group; each handler answers through resp_*. */
void		 route_health(struct request *);
void		 route_health_live(struct request *);
void		 route_health_ready(struct request *);
void		 route_register(struct request *);
void		 route_login(struct request *);
void		 route_refresh(struct request *);
void		 route_logout(struct request *);
void		 route_logout_all(struct request *);
void		 route_me(struct request *);
void		 route_sessions_list(struct request *);
void		 route_sessions_revoke(struct request *);
void		 route_password(struct request *);
void		 route_verify(struct request *);
#define VERIFY_VALUE_MAX	FA_ROLE_MAX	/* longest requirement value */
void		 route_introspect(struct request *);
void		 route_jwks(struct request *);
void		 route_admin_audit(struct request *);
void		 route_admin_roles(struct request *);
void		 route_metrics(struct request *);
void		 route_mfa_totp(struct request *);
void		 route_mfa_confirm(struct request *);
void		 route_mfa_disable(struct request *);
void		 route_mfa_qr(struct request *);
void		 route_mfa_verify(struct request *);
/*
 * A sensitive change by a user with MFA needs an aal 2 session: 0 it may
 * go on, -1 the 403 answer is set.
 */
int		 route_mfa_step_up(struct request *, const struct claims *,
		    const struct user *);
/* route_login.c: the session and token pair of a login (aal 1 or 2). */
int		 route_login_session(struct request *, const struct user *,
		    const char *ip, const char *ua, int aal);
void		 route_openapi(struct request *);
void		 route_password_forgot(struct request *);
void		 route_password_reset(struct request *);
void		 route_email_verify(struct request *);
void		 route_email_verify_resend(struct request *);
void		 route_email_change(struct request *);
void		 route_me_delete(struct request *);
/* After register: the verification mail, when a mailer is configured and
 * email_verification is not off.  Failures are logged, never answered. */
void		 account_register_mail(struct request *, const char *email);
#define ACCOUNT_TTL_TEXT	24	/* the "{ttl_minutes}" value */
/* cli_audit.c */
#define AUDIT_PRUNE_DAYS_MAX	36500	/* audit prune --older-than */
/* auth.c: Bearer check shared by routes */
/* 0 live, 1 invalid or revoked, -1 could not check (503) */
int		 auth_check(const char *authorization, struct claims *);
/* auth_check for a bare token (no "Bearer "): the same three answers */
int		 auth_check_token(const char *tok, size_t len, struct claims *);
int		 auth_has_role(const struct claims *, const char *role);

/*
 * roles.c: a user's roles, comma-joined ("user,admin") in struct user and
 * struct claims, a JSON array on the wire.  Pure.
 */
#define ROLES_DEDUP		0x01	/* roles_from_json: drop repeats */
int		 roles_next(const char **p, const char **name, size_t *len);
int		 roles_has(const char *csv, const char *role);
json_t		*roles_json(const char *csv);	/* new reference */
/* A JSON array of at most FA_ROLES_MAX valid names into out: 0, or -1. */
int		 roles_from_json(const json_t *, int flags, char *out,
		    size_t sz);
/* Add or remove one role of csv: 0, or -1 (FA_ROLES_MAX held already). */
int		 roles_edit(char *csv, size_t sz, const char *role, int add);

#endif /* FA_ROUTE_H */
