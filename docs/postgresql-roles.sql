-- LAMPID Hub on PostgreSQL: the roles (docs/custody.md).
--
-- lampid_owner owns the schema and runs the migrations (`hub db upgrade`); lampid_hub is what
-- every running hub process (API, worker, jobs) logs in as. lampid_hub may read and write the
-- store but may only APPEND to the audit trail: UPDATE, DELETE and TRUNCATE on audit_events and
-- audit_checkpoints are not granted, so even a compromised hub process cannot rewrite history
-- (the hash chain and the exported signed checkpoints catch a superuser who does).
--
-- Run as a superuser, in the hub's database, after the first `hub db upgrade` (and again after
-- an upgrade that adds tables). Replace the passwords. psql -v schema=public -f this file.

\set schema public

CREATE ROLE lampid_owner LOGIN PASSWORD 'change-me-owner';
CREATE ROLE lampid_hub LOGIN PASSWORD 'change-me-hub';

GRANT USAGE ON SCHEMA :"schema" TO lampid_hub;

-- Everything but the audit trail: read and write.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA :"schema" TO lampid_hub;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA :"schema" TO lampid_hub;

-- The audit trail: append and read only. audit_head (the chain's head, one row) is updated
-- with every append, so it keeps UPDATE.
REVOKE UPDATE, DELETE, TRUNCATE ON :"schema".audit_events FROM lampid_hub;
REVOKE UPDATE, DELETE, TRUNCATE ON :"schema".audit_checkpoints FROM lampid_hub;
GRANT SELECT, INSERT ON :"schema".audit_events, :"schema".audit_checkpoints TO lampid_hub;

-- Tables created later by the owner (new migrations) get the same rights by default; the two
-- REVOKE lines above must be run again if an upgrade ever recreates an audit table.
ALTER DEFAULT PRIVILEGES FOR ROLE lampid_owner IN SCHEMA :"schema"
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO lampid_hub;
ALTER DEFAULT PRIVILEGES FOR ROLE lampid_owner IN SCHEMA :"schema"
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO lampid_hub;
