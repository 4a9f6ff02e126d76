/*
 * Operator commands that end a user's access: disable/enable, list and end
 * sessions, set a password, reset the second factor.  Each goes through
 * session.c, db.c and store.c and writes its audit rows, like cli_user.c.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "extern.h"
#include "cli_int.h"

/*
 * disable: refused at login and refresh from now on (db), and every
 * session and access token ends at once (Redis cut-off).
 */
int
cli_session_disable(const char *arg, int disable, const struct uopts *o)
{
	struct user	 u, out;
	size_t		 n = 0;
	int		 rc;

	memset(&out, 0, sizeof(out));
	if ((rc = cli_user_arg(arg, &u)) != CLI_OK)
		goto out;
	rc = db_user_set_disabled(u.id, disable, "cli", &out);
	if (rc == DB_NOTFOUND) {
		rc = cli_fail(CLI_NOTFOUND, "user %s was deleted meanwhile",
		    u.email);
		goto out;
	}
	if (rc != DB_OK) {
		rc = cli_fail(CLI_FAIL, "PostgreSQL is unavailable (check "
		    "database_url and that the server is up)");
		goto out;
	}
	if (disable && session_end_all(NULL, &out, SESSION_END_DISABLED,
	    "cli", &n) == -1) {
		rc = cli_fail(CLI_FAIL, "%s is disabled (no login, no "
		    "refresh), but Redis is unavailable: its access tokens "
		    "stay valid until they expire; run `fcgi-auth user logout "
		    "%s` once Redis is back", out.email, out.email);
		goto out;
	}
	if (o->json)
		cli_user_print(&out, 1);
	else if (disable)
		printf("%s: disabled, %zu session%s ended\n", out.email, n,
		    n == 1 ? "" : "s");
	else
		printf("%s: enabled\n", out.email);
	rc = CLI_OK;
out:
	user_free(&u);
	user_free(&out);
	return rc;
}

int
cli_session_list(const char *arg, const struct uopts *o)
{
	struct session_info	*list = NULL;
	struct user		 u;
	char			 created[40], used[40];
	json_t			*arr;
	size_t			 n = 0, i;
	int			 rc;

	if ((rc = cli_user_arg(arg, &u)) != CLI_OK)
		goto out;
	if (store_session_list(u.id, &list, &n) == -1) {
		rc = cli_fail(CLI_FAIL, "Redis is unavailable (check "
		    "redis_host, redis_port and redis_password)");
		goto out;
	}
	arr = json_array();
	if (!o->json)
		printf("%-36s  %-24s  %-24s  %-15s  %s\n", "SESSION",
		    "CREATED", "LAST USED", "IP", "USER AGENT");
	for (i = 0; i < n; i++) {
		rfc3339(created, list[i].created_ms);
		rfc3339(used, list[i].last_used_ms);
		if (o->json)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s,"
			    " s:s, s:s}", "id", list[i].id, "createdAt",
			    created, "lastUsedAt", used, "ip", list[i].ip,
			    "userAgent", list[i].user_agent));
		else
			printf("%-36s  %-24s  %-24s  %-15s  %s\n",
			    list[i].id, created, used, list[i].ip,
			    list[i].user_agent);
	}
	if (o->json) {
		json_t *j = json_pack("{s:s, s:o}", "userId", u.id,
		    "sessions", arr);
		cli_json_out(j, 0);
		json_decref(j);
	} else
		json_decref(arr);
	rc = CLI_OK;
out:
	free(list);
	user_free(&u);
	return rc;
}

/*
 * The audit row of the operator's change to u ({"by": "cli"}) and its event
 * ek, when enabled, with {"userId"}: *detail and *data are the caller's.
 */
static void
operator_audit(struct audit *a, enum audit_event ev, enum event_kind ek,
    const struct user *u, json_t **detail, json_t **data)
{
	*detail = json_pack("{s:s}", "by", "cli");
	*data = json_pack("{s:s}", "userId", u->id);
	audit_init(a, NULL, ev, u->id, NULL);
	a->email = u->email;
	a->detail = *detail;
	a->outbox_event = event_enabled(ek);
	a->outbox_data = *data;
}

/* user logout --json: {"userId", "email", "sessionsEnded", "sessionId"?} */
static void
logout_json(const struct user *u, size_t n, const char *sid)
{
	json_t	*j;

	j = json_pack("{s:s, s:s, s:I, s:s*}", "userId", u->id, "email",
	    u->email, "sessionsEnded", (json_int_t)n, "sessionId", sid);
	cli_json_out(j, 0);
	json_decref(j);
}

int
cli_session_logout(const char *arg, const struct uopts *o)
{
	struct user	 u;
	unsigned char	 b[16];
	size_t		 n = 0;
	int		 rc;

	if (o->session != NULL && uuid_parse(b, o->session,
	    strlen(o->session)) == -1)
		return cli_fail(CLI_USAGE, "--session %s: not a session id "
		    "(see `fcgi-auth user sessions EMAIL`)", o->session);
	if ((rc = cli_user_arg(arg, &u)) != CLI_OK)
		goto out;
	if (o->session == NULL) {
		if (session_end_all(NULL, &u, SESSION_END_ADMIN, "cli",
		    &n) == -1) {
			rc = cli_fail(CLI_FAIL, "Redis is unavailable (check "
			    "redis_host, redis_port and redis_password)");
			goto out;
		}
		if (o->json)
			logout_json(&u, n, NULL);
		else
			printf("%s: %zu session%s ended, access tokens "
			    "revoked\n", u.email, n, n == 1 ? "" : "s");
		rc = CLI_OK;
		goto out;
	}
	switch (store_session_revoke(u.id, o->session, cfg->access_ttl)) {
	case 0:
		(void)session_revoked_by(NULL, u.id, u.email, o->session,
		    SESSION_END_ADMIN, "cli");
		if (o->json)
			logout_json(&u, 1, o->session);
		else
			printf("%s: session %s ended\n", u.email, o->session);
		rc = CLI_OK;
		break;
	case 1:
		rc = cli_fail(CLI_NOTFOUND, "%s has no session %s (see "
		    "`fcgi-auth user sessions %s`)", u.email, o->session,
		    u.email);
		break;
	default:
		rc = cli_fail(CLI_FAIL, "Redis is unavailable (check "
		    "redis_host, redis_port and redis_password)");
		break;
	}
out:
	user_free(&u);
	return rc;
}

/*
 * set-password: the register policy, an Argon2id hash, then as a password
 * change: every session and access token of the user ends (first: a retry
 * is safe, a live session under the old password is not), audit row and
 * user.password_changed event.
 */
int
cli_session_password(const char *arg, const struct uopts *o)
{
	struct user	 u;
	struct audit	 a;
	char		 pw[FA_PASSWORD_MAX + 2], hash[128];
	const char	*why;
	json_t		*detail = NULL, *data = NULL;
	size_t		 pwlen = 0, n = 0;
	int		 rc;

	memset(hash, 0, sizeof(hash));
	memset(pw, 0, sizeof(pw));
	if ((rc = cli_user_arg(arg, &u)) != CLI_OK)
		goto out;
	rc = CLI_USAGE;
	if (cli_read_password(o->password_file, u.email, pw, sizeof(pw),
	    &pwlen) == -1)
		goto out;
	if (validate_password(pw, pwlen, &why) == -1) {
		rc = cli_fail(CLI_USAGE, "password %s", why);
		goto out;
	}
	rc = CLI_FAIL;
	if (password_init(cfg) == -1) {
		rc = cli_fail(CLI_FAIL, "cannot start the password hashing "
		    "(password_memlimit too large for this machine?)");
		goto out;
	}
	if (password_hash(pw, pwlen, hash) == -1) {
		password_shutdown();
		rc = cli_fail(CLI_FAIL, "cannot hash the password");
		goto out;
	}
	password_shutdown();
	if (session_end_all(NULL, &u, SESSION_END_PASSWORD_CHANGE, "cli",
	    &n) == -1) {
		rc = cli_fail(CLI_FAIL, "Redis is unavailable (check "
		    "redis_host, redis_port and redis_password); the password "
		    "is unchanged");
		goto out;
	}
	operator_audit(&a, AUDIT_PASSWORD_CHANGE, EVENT_USER_PASSWORD_CHANGED,
	    &u, &detail, &data);
	if (db_user_set_password(u.id, hash, &a) != DB_OK) {
		rc = cli_fail(CLI_FAIL, "%s: sessions ended, but the password "
		    "was not stored (PostgreSQL unavailable?); run it again",
		    u.email);
		goto out;
	}
	if (o->json)
		logout_json(&u, n, NULL);
	else
		printf("%s: password set, %zu session%s ended\n", u.email, n,
		    n == 1 ? "" : "s");
	rc = CLI_OK;
out:
	sodium_memzero(pw, sizeof(pw));
	sodium_memzero(hash, sizeof(hash));
	json_decref(detail);
	json_decref(data);
	user_free(&u);
	return rc;
}

/*
 * delete (API.md, Account deletion): sessions and access tokens end first
 * (Redis down: nothing deleted), then in one statement the row goes, the
 * user's audit rows lose email, ip and user agent, and the user.delete
 * audit row (no email) and the user.deleted event are written.
 */

/*
 * user mfa-reset EMAIL: a lost device.  MFA off, secret and recovery codes
 * gone, with the mfa.disable audit row and the user.mfa_disabled event.
 */
int
cli_session_mfa_reset(int argc, char **argv)
{
	struct audit	 a;
	struct user	 u;
	json_t		*detail = NULL, *data = NULL;
	int		 rc;

	if (argc != 2) {
		fputs(cli_user_usage, stderr);
		return CLI_USAGE;
	}
	if (db_init(cfg) == -1)
		return cli_fail(CLI_FAIL, "cannot set up PostgreSQL");
	if ((rc = cli_user_arg(argv[1], &u)) != CLI_OK)
		goto out;
	operator_audit(&a, AUDIT_MFA_DISABLE, EVENT_USER_MFA_DISABLED, &u,
	    &detail, &data);
	switch (db_mfa_disable(u.id, &a)) {
	case DB_OK:
		printf("%s: second factor off; the user may enrol again\n",
		    u.email);
		rc = CLI_OK;
		break;
	case DB_NOTFOUND:
		rc = cli_fail(CLI_NOTFOUND, "%s has no second factor "
		    "enabled", u.email);
		break;
	default:
		rc = cli_fail(CLI_FAIL, "PostgreSQL is unavailable (check "
		    "database_url and that the server is up)");
		break;
	}
out:
	json_decref(detail);
	json_decref(data);
	user_free(&u);
	db_shutdown();
	return rc;
}
