-- fcgi-auth 001: users, the append-only audit log and the event outbox.
-- Applied by "fcgi-auth migrate" inside one transaction; do not edit once
-- released (the migrator refuses a changed checksum): add 002_*.sql instead.

CREATE SCHEMA IF NOT EXISTS auth;

-- Users.  Emails are stored trimmed and lower-cased by the service; the
-- unique index on lower(email) keeps them unique case-insensitively even for
-- rows written by other tools.
CREATE TABLE auth.users (
	id		uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	email		text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
	password_hash	text NOT NULL,
	first_name	text,
	last_name	text,
	roles		text[] NOT NULL DEFAULT '{user}',
	disabled	boolean NOT NULL DEFAULT false,
	created_at	timestamptz NOT NULL DEFAULT now(),
	updated_at	timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON auth.users (lower(email));

-- Audit log: one row per security-relevant event, written in the same
-- transaction as the change.  Never a password, a token or a hash.
-- ip is text, not inet: a malformed address must never fail a login.
CREATE TABLE auth.audit_log (
	id		bigserial PRIMARY KEY,
	occurred_at	timestamptz NOT NULL DEFAULT now(),
	event		text NOT NULL,
	user_id		uuid,
	email		text,
	session_id	uuid,
	ip		text,
	user_agent	text,
	success		boolean NOT NULL,
	detail		jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_user_idx ON auth.audit_log (user_id, id DESC);
CREATE INDEX audit_log_event_idx ON auth.audit_log (event, id DESC);

-- Append-only: rows can be inserted and read, never changed or removed.
-- (A retention job run by the owner must drop the trigger explicitly.)
CREATE FUNCTION auth.audit_log_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'auth.audit_log is append-only (% refused)', TG_OP
	    USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON auth.audit_log
	FOR EACH ROW EXECUTE FUNCTION auth.audit_log_immutable();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON auth.audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION auth.audit_log_immutable();
REVOKE UPDATE, DELETE, TRUNCATE ON auth.audit_log FROM PUBLIC;

-- Outbox: events written with the change, published after commit by the
-- relay, kept published for outbox_retention seconds.  payload is the whole
-- message, {"pattern": event, "data": {..., "eventId": event_id}}.
CREATE TABLE auth.outbox (
	id		bigserial PRIMARY KEY,
	event_id	uuid NOT NULL UNIQUE,
	event		text NOT NULL,
	payload		jsonb NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	published_at	timestamptz,
	attempts	integer NOT NULL DEFAULT 0
);
CREATE INDEX outbox_pending_idx ON auth.outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_idx ON auth.outbox (published_at)
	WHERE published_at IS NOT NULL;
