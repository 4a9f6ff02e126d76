-- fcgi-auth 005: the second factor (TOTP) and the email_verified flag.
-- Secrets are sealed by the service (libsodium secretbox under a key
-- derived from jwt_secret); this database never sees one in plaintext.

ALTER TABLE auth.users
	ADD COLUMN IF NOT EXISTS email_verified boolean NOT NULL DEFAULT false,
	ADD COLUMN mfa_enabled boolean NOT NULL DEFAULT false,
	ADD COLUMN mfa_secret text,		-- sealed, while enabled
	ADD COLUMN mfa_pending text,		-- sealed, until confirmed
	ADD COLUMN mfa_last_step bigint NOT NULL DEFAULT 0;

-- Recovery codes: keyed BLAKE2b hashes (hex), each usable once.
CREATE TABLE auth.mfa_recovery_codes (
	user_id		uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
	code_hash	text NOT NULL,
	used_at		timestamptz,
	PRIMARY KEY (user_id, code_hash)
);
