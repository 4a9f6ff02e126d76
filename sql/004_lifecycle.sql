-- fcgi-auth 004: account lifecycle (API.md v2 "Mail", "Password recovery",
-- "Email verification and change", "Account deletion").

-- Whether the user proved they read mail at this address.  The second
-- factor's migration adds the same column; IF NOT EXISTS lets both run.
ALTER TABLE auth.users
	ADD COLUMN IF NOT EXISTS email_verified boolean NOT NULL DEFAULT false;

-- One-time tokens (reset, verify, email change): only a keyed BLAKE2b hash
-- of the token is kept.  A newer token of a purpose voids the older ones
-- (used_at is set); consumption is one UPDATE ... WHERE used_at IS NULL.
CREATE TABLE auth.one_time_tokens (
	hash		text PRIMARY KEY,
	purpose		text NOT NULL
	    CHECK (purpose IN ('reset', 'verify', 'email_change')),
	user_id		uuid NOT NULL REFERENCES auth.users ON DELETE CASCADE,
	new_email	text,
	created_at	timestamptz NOT NULL DEFAULT now(),
	expires_at	timestamptz NOT NULL,
	used_at		timestamptz
);
CREATE INDEX one_time_tokens_user_idx ON auth.one_time_tokens
	(user_id, purpose) WHERE used_at IS NULL;

-- The mail queue.  message is the whole RFC 5322 message sealed with a
-- server key (libsodium secretbox, hex): links carry tokens, so no
-- plaintext is kept.  The mailer leases a row by moving next_attempt_at.
CREATE TABLE auth.mail_queue (
	id		bigserial PRIMARY KEY,
	kind		text NOT NULL,
	rcpt		text NOT NULL,
	user_id		uuid REFERENCES auth.users ON DELETE CASCADE,
	message		text NOT NULL,
	state		text NOT NULL DEFAULT 'pending'
	    CHECK (state IN ('pending', 'sent', 'failed')),
	attempts	integer NOT NULL DEFAULT 0,
	created_at	timestamptz NOT NULL DEFAULT now(),
	next_attempt_at	timestamptz NOT NULL DEFAULT now(),
	sent_at		timestamptz,
	last_error	text
);
CREATE INDEX mail_queue_due_idx ON auth.mail_queue (next_attempt_at)
	WHERE state = 'pending';

-- Mail requests of forgot and resend, applied by the mailer thread: the
-- route writes one row whether or not the address is an account's, so
-- both answer after the same work.  request is the once_req (app/extern.h)
-- as JSON with the token's hash, never the token; message is sealed.
CREATE TABLE auth.mail_requests (
	id		bigserial PRIMARY KEY,
	request		jsonb NOT NULL,
	message		text,
	created_at	timestamptz NOT NULL DEFAULT now(),
	next_attempt_at	timestamptz NOT NULL DEFAULT now()
);

-- The audit log stays append-only with two exceptions: a deleted user's
-- rows may have their email, ip and user agent erased (nothing else), and
-- "fcgi-auth audit prune" may delete old rows, in a transaction that sets
-- fcgi_auth.audit_prune.
CREATE OR REPLACE FUNCTION auth.audit_log_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.email IS NULL AND NEW.ip IS NULL
	    AND NEW.user_agent IS NULL
	    AND (NEW.id, NEW.occurred_at, NEW.event, NEW.user_id,
	    NEW.session_id, NEW.success, NEW.detail) IS NOT DISTINCT FROM
	    (OLD.id, OLD.occurred_at, OLD.event, OLD.user_id,
	    OLD.session_id, OLD.success, OLD.detail) THEN
		RETURN NEW;
	END IF;
	IF TG_OP = 'DELETE'
	    AND current_setting('fcgi_auth.audit_prune', true) = 'on' THEN
		RETURN OLD;
	END IF;
	RAISE EXCEPTION 'auth.audit_log is append-only (% refused)', TG_OP
	    USING ERRCODE = 'insufficient_privilege';
END;
$$;
