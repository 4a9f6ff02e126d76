-- fcgi-auth 002: one canonical email (API.md, "One canonical email").
-- The service now stores the canonical form (app/email.c: ASCII local part,
-- IDNA2008 A-label domain, ASCII lower-case) and compares by exact
-- equality, so uniqueness is on the column itself, never on a
-- locale-dependent lower(): with a UTF-8 collation lower() folds the Kelvin
-- sign into "k" for the lookup but not for the service's keys.
--
-- IDNA cannot be done in SQL: "fcgi-auth migrate" runs a C step in this
-- same transaction (app/migrate.c) that rewrites every row to its canonical
-- form.  Two rows with one canonical form are never merged: the migration
-- is refused and lists them, to be resolved by the operator first.  Rows
-- that have no canonical form (look-alike local parts, quoted local parts)
-- are left as they are and listed; no login can reach them any more.
--
-- Distinct lower(email) values imply distinct emails, so the new index
-- always builds on a table the old one accepted.

DROP INDEX auth.users_email_key;
CREATE UNIQUE INDEX users_email_key ON auth.users (email);
