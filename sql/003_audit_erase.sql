-- fcgi-auth 003: deleting a user erases the personal data of its audit rows
-- (API.md, Account deletion): email, ip and user agent become NULL, the
-- rest of the row stays.  The append-only trigger allows exactly that
-- update and still refuses every other UPDATE, DELETE and TRUNCATE.  A
-- runtime role other than the owner needs
-- GRANT UPDATE (email, ip, user_agent) ON auth.audit_log.

CREATE OR REPLACE FUNCTION auth.audit_log_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' THEN
		IF NEW.email IS NULL AND NEW.ip IS NULL
		    AND NEW.user_agent IS NULL
		    AND (NEW.id, NEW.occurred_at, NEW.event, NEW.user_id,
		    NEW.session_id, NEW.success, NEW.detail)
		    IS NOT DISTINCT FROM (OLD.id, OLD.occurred_at, OLD.event,
		    OLD.user_id, OLD.session_id, OLD.success, OLD.detail) THEN
			RETURN NEW;
		END IF;
	END IF;
	RAISE EXCEPTION 'auth.audit_log is append-only (% refused)', TG_OP
	    USING ERRCODE = 'insufficient_privilege';
END;
$$;
