/*
 * db_stmt.c: the statement registry.  The prepared statements of the hot
 * paths and the relay, by enum stmt, each made lazily per connection by
 * db_exec (db.c); the rarer statements are written where they run, as
 * unnamed ones.
 */
#include "config.h"

#include "extern.h"
#include "db_int.h"

const struct db_stmt db_stmts[ST__MAX] = {
	[ST_PING] = { "fa_ping", 0, "SELECT 1" },
	[ST_USER_CREATE] = { "fa_user_create", 6 + AUDIT_NPARAMS,
	    "WITH u AS ("
	    " INSERT INTO auth.users (id, email, password_hash, first_name,"
	    " last_name, created_at, updated_at)"
	    " VALUES ($1::uuid, $2, $3, $4, $5,"
	    " 'epoch'::timestamptz + $6::bigint * interval '1 millisecond',"
	    " 'epoch'::timestamptz + $6::bigint * interval '1 millisecond')"
	    " RETURNING " USER_COLS "),"
	    AUDIT_ROWS(7)
	    " SELECT u.*, " NOTIFY_OUTBOX " FROM u" },
	[ST_USER_BY_EMAIL] = { "fa_user_by_email", 1,
	    "SELECT " USER_COLS " FROM auth.users WHERE email = $1" },
	[ST_USER_BY_ID] = { "fa_user_by_id", 1,
	    "SELECT " USER_COLS " FROM auth.users WHERE id = $1::uuid" },
	/* the refresh path: the user and, unless disabled, its audit row */
	[ST_USER_REFRESH] = { "fa_user_refresh", 7,
	    "WITH u AS (SELECT " USER_COLS " FROM auth.users"
	    " WHERE id = $1::uuid),"
	    " a AS (" AUDIT_INSERT
	    " SELECT $2, u.id::uuid, u.email, $3::uuid, $4, $5, $6::boolean,"
	    " coalesce($7::jsonb, '{}') FROM u WHERE NOT u.disabled)"
	    " SELECT u.* FROM u" },
	/*
	 * fa_user_refresh for a batch in one statement: $1 is a JSON array
	 * of {n, uid, event, sid, ip, ua, success, detail} (text as
	 * fa_user_refresh's $1..$7, cast the same way); one row per user
	 * found, USER_COLS then n, the job's position.  The LIMIT keeps the
	 * lookup a primary key probe per job: joined, a generic plan expects
	 * 100 jobs and scans a small users table whole.
	 */
	[ST_USER_REFRESH_BATCH] = { "fa_user_refresh_batch", 1,
	    "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x("
	    " n int, uid text, event text, sid text, ip text, ua text,"
	    " success text, detail text)),"
	    " u AS (SELECT s.*, r.n FROM r, LATERAL (SELECT " USER_COLS
	    " FROM auth.users WHERE id = r.uid::uuid LIMIT 1) s),"
	    " a AS (" AUDIT_INSERT
	    " SELECT r.event, u.id::uuid, u.email, r.sid::uuid, r.ip, r.ua,"
	    " r.success::boolean, coalesce(r.detail::jsonb, '{}')"
	    " FROM u JOIN r USING (n) WHERE NOT u.disabled ORDER BY n)"
	    " SELECT u.* FROM u" },
	[ST_USER_SET_PASSWORD] = { "fa_user_set_password", 2 + AUDIT_NPARAMS,
	    "WITH u AS ("
	    " UPDATE auth.users SET password_hash = $2, updated_at = now()"
	    " WHERE id = $1::uuid RETURNING id),"
	    AUDIT_ROWS(3)
	    " SELECT u.id::text, " NOTIFY_OUTBOX " FROM u" },
	[ST_USER_SET_ROLES] = { "fa_user_set_roles", 2 + AUDIT_NPARAMS,
	    "WITH u AS ("
	    " UPDATE auth.users SET roles = string_to_array($2, ','),"
	    " updated_at = now() WHERE id = $1::uuid RETURNING " USER_COLS "),"
	    AUDIT_ROWS(3)
	    " SELECT u.*, " NOTIFY_OUTBOX " FROM u" },
	/* $1: the rows of db_user_import, $2 the audit event, $3 "by" */
	[ST_USER_IMPORT] = { "fa_user_import", 3,
	    "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x("
	    " line bigint, id uuid, email text, hash text, \"firstName\" text,"
	    " \"lastName\" text, roles text, disabled boolean,"
	    " \"createdAt\" timestamptz, \"updatedAt\" timestamptz)),"
	    " u AS (INSERT INTO auth.users (id, email, password_hash,"
	    " first_name, last_name, roles, disabled, created_at, updated_at)"
	    " SELECT id, email, hash, \"firstName\", \"lastName\","
	    " string_to_array(roles, ','), disabled,"
	    " coalesce(\"createdAt\", now()),"
	    " coalesce(\"updatedAt\", \"createdAt\", now())"
	    " FROM r ORDER BY line RETURNING id, email, roles, disabled),"
	    " a AS (" AUDIT_INSERT
	    " SELECT $2, u.id, u.email, NULL::uuid, NULL, NULL, true,"
	    " jsonb_build_object('by', $3::text, 'roles', u.roles,"
	    " 'disabled', u.disabled) FROM u)"
	    " SELECT count(*) FROM u" },
	/* ids and emails taken in the table or by an earlier line */
	[ST_USER_IMPORT_CHECK] = { "fa_user_import_check", 1,
	    "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x("
	    " line bigint, id uuid, email text)),"
	    " d AS (SELECT line, id, email,"
	    " row_number() OVER (PARTITION BY id ORDER BY line) AS nid,"
	    " row_number() OVER (PARTITION BY email ORDER BY line)"
	    " AS nemail FROM r)"
	    " SELECT line, CASE WHEN nid > 1 OR EXISTS (SELECT 1 FROM"
	    " auth.users u WHERE u.id = d.id) THEN 'id' ELSE 'email' END"
	    " FROM d WHERE nid > 1 OR nemail > 1"
	    " OR EXISTS (SELECT 1 FROM auth.users u WHERE u.id = d.id)"
	    " OR EXISTS (SELECT 1 FROM auth.users u"
	    " WHERE u.email = d.email) ORDER BY line" },
	/* API.md, Account deletion; 003_audit_erase.sql allows the UPDATE */
	[ST_USER_DELETE] = { "fa_user_delete", 1 + AUDIT_NPARAMS,
	    "WITH u AS (DELETE FROM auth.users WHERE id = $1::uuid"
	    " RETURNING id, email),"
	    /* by id, and the rows of its email without one (login failures) */
	    " e AS (UPDATE auth.audit_log SET email = NULL, ip = NULL,"
	    " user_agent = NULL WHERE (user_id IN (SELECT id FROM u)"
	    " OR lower(email) IN (SELECT lower(email) FROM u))"
	    " AND (email IS NOT NULL OR ip IS NOT NULL"
	    " OR user_agent IS NOT NULL)),"
	    AUDIT_ROWS(2)
	    " SELECT u.id::text, " NOTIFY_OUTBOX " FROM u" },
	[ST_AUDIT] = { "fa_audit", AUDIT_NPARAMS,
	    "WITH a AS (" AUDIT_INSERT
	    " VALUES ($1, $2::uuid, $3, $4::uuid, $5, $6, $7::boolean,"
	    " coalesce($8::jsonb, '{}'))),"
	    " o AS (" OUTBOX_INSERT
	    " SELECT $9::uuid, $10, $11::jsonb WHERE $10::text IS NOT NULL"
	    " RETURNING 1)"
	    " SELECT " NOTIFY_OUTBOX },
	[ST_OUTBOX_CLAIM] = { "fa_outbox_claim", 1,
	    "SELECT id, event, payload::text, attempts FROM auth.outbox"
	    " WHERE published_at IS NULL ORDER BY id"
	    " LIMIT $1::bigint FOR UPDATE SKIP LOCKED" },
	[ST_OUTBOX_DONE] = { "fa_outbox_done", 1,
	    "UPDATE auth.outbox SET published_at = now(),"
	    " attempts = attempts + 1"
	    " WHERE id = $1::bigint AND published_at IS NULL" },
	[ST_OUTBOX_RETRY] = { "fa_outbox_retry", 1,
	    "UPDATE auth.outbox SET attempts = attempts + 1"
	    " WHERE id = $1::bigint AND published_at IS NULL" },
	[ST_OUTBOX_PRUNE] = { "fa_outbox_prune", 1,
	    "DELETE FROM auth.outbox WHERE id IN (SELECT id FROM auth.outbox"
	    " WHERE published_at < now() - make_interval(secs => $1::bigint)"
	    " LIMIT " STR(DB_OUTBOX_PRUNE_MAX) ")" },
	/* operator queries */
	[ST_USER_LIST] = { "fa_user_list", 2,
	    "SELECT " USER_COLS " FROM auth.users ORDER BY created_at, id"
	    " LIMIT $1::bigint OFFSET $2::bigint" },
	[ST_USER_SET_DISABLED] = { "fa_user_set_disabled", 3,
	    "WITH u AS ("
	    " UPDATE auth.users SET disabled = $2::boolean, updated_at = now()"
	    " WHERE id = $1::uuid RETURNING " USER_COLS "),"
	    " a AS (" AUDIT_INSERT
	    " SELECT CASE WHEN $2::boolean THEN 'user.disable'"
	    " ELSE 'user.enable' END, u.id::uuid, u.email, NULL::uuid, NULL, NULL,"
	    " true, jsonb_build_object('by', $3::text) FROM u)"
	    " SELECT u.* FROM u" },
	[ST_OUTBOX_LAG] = { "fa_outbox_lag", 0,
	    "SELECT count(*), coalesce(extract(epoch FROM"
	    " clock_timestamp() - min(created_at)), 0)::float8"
	    " FROM auth.outbox WHERE published_at IS NULL" },
	[ST_OUTBOX_STATUS] = { "fa_outbox_status", 0,
	    "SELECT event,"
	    " count(*) FILTER (WHERE published_at IS NULL),"
	    " count(*) FILTER (WHERE published_at IS NOT NULL),"
	    " coalesce(max(attempts) FILTER (WHERE published_at IS NULL), 0),"
	    " coalesce(extract(epoch FROM clock_timestamp() - min(created_at)"
	    " FILTER (WHERE published_at IS NULL)), 0)::float8,"
	    " coalesce(min(id) FILTER (WHERE published_at IS NULL), 0),"
	    " coalesce((extract(epoch FROM max(published_at)) * 1000)::bigint,"
	    " 0) FROM auth.outbox GROUP BY event ORDER BY event" },
	[ST_OUTBOX_REPLAY_ID] = { "fa_outbox_replay_id", 1,
	    "WITH o AS (UPDATE auth.outbox SET published_at = NULL"
	    " WHERE event_id = $1::uuid RETURNING 1)"
	    " SELECT (SELECT count(*) FROM o), " NOTIFY_OUTBOX },
	[ST_OUTBOX_REPLAY_RANGE] = { "fa_outbox_replay_range", 2,
	    "WITH o AS (UPDATE auth.outbox SET published_at = NULL"
	    " WHERE id >= $1::bigint AND ($2::bigint <= 0 OR id <= $2::bigint)"
	    " AND published_at IS NOT NULL RETURNING 1)"
	    " SELECT (SELECT count(*) FROM o), " NOTIFY_OUTBOX },
};

/*
 * Statements that change nothing (or nothing more when run twice): safe to
 * run again after a failure that leaves unknown whether they ran.
 */
int
db_stmt_idempotent(enum stmt st)
{
	switch (st) {
	case ST_PING:
	case ST_USER_BY_EMAIL:
	case ST_USER_BY_ID:
	case ST_OUTBOX_DONE:
	case ST_OUTBOX_PRUNE:
	case ST_USER_LIST:
	case ST_OUTBOX_LAG:
	case ST_OUTBOX_STATUS:
		return 1;
	default:
		return 0;
	}
}
