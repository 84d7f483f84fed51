-- scaleladder database bootstrap: the app's least-privilege roles and PgBouncer's lookup.
--
-- Run as the master user (ladder_master; rds_superuser on RDS, not a superuser) on the
-- application database:  psql "<conninfo> dbname=app" -X -f db/bootstrap.sql
-- Idempotent: every run converges the roles, grants and lookup function to this file
-- (so it is safe again after a snapshot restore); concurrent runs serialise on
-- pg_advisory_lock and each run is one transaction, so a failed run changes nothing.
--
-- Inputs (environment, read with psql 15+ `\getenv`; never on a command line):
--   LADDER_APP_RW_LOGIN / LADDER_APP_RW_PASSWORD   current read-write login (db-app secret)
--   LADDER_APP_RO_LOGIN / LADDER_APP_RO_PASSWORD   current read-only login (db-app-ro secret)
--   LADDER_PGBOUNCER_AUTH_PASSWORD                 pgbouncer_auth's password (db-pgbouncer)
-- Every *_PASSWORD must be a SCRAM-SHA-256 verifier ("SCRAM-SHA-256$4096:..."), computed
-- by the caller (cloudinit/scaleladder-db does it): the plain password never reaches the
-- server, its logs or pg_stat_activity, and the verifier can also be stored for PgBouncer.
-- Why a copy of the verifier: RDS does not let even rds_superuser read pg_authid or
-- pg_shadow (pgbouncer/pgbouncer#265, #446; PgBouncer docs "Notes on managed servers"),
-- so auth_query cannot read the server's own verifiers. The bootstrap and the rotation
-- store the same verifier they give the role in pgbouncer.auth_credentials, readable
-- only through pgbouncer.get_auth(). PgBouncer authenticates the client against it and
-- logs in upstream with SCRAM pass-through (1.14+): it is the very verifier the server holds.
--
-- Only the login the secret currently names gets its password set: during a rotation
-- the other login may still be in use (or already retired), and is left as it is.
--
-- What it creates (names: ladder/credentials.py):
--   app_rw   NOLOGIN  owns schema app (every table migrations create), nothing else
--   app_ro   NOLOGIN  USAGE on app, SELECT on its present and future tables/sequences
--   app_rw_a, app_rw_b / app_ro_a, app_ro_b  alternating LOGIN roles, NOINHERIT, that
--            run as their group (role-level `SET role`): objects a migration creates
--            are owned by the group, never by one of the logins.
--   pgbouncer_auth  LOGIN, may only EXECUTE pgbouncer.get_auth(text)
-- PgBouncer's console users (pgbouncer_admin, pgbouncer_stats) are PgBouncer-only users
-- in its auth file and need no database role.

\set ON_ERROR_STOP on
\set QUIET on
-- Errors name the problem, never echo the statement (it carries verifiers).
\set VERBOSITY terse
\set SHOW_CONTEXT never

\getenv app_rw_login LADDER_APP_RW_LOGIN
\getenv app_rw_password LADDER_APP_RW_PASSWORD
\getenv app_ro_login LADDER_APP_RO_LOGIN
\getenv app_ro_password LADDER_APP_RO_PASSWORD
\getenv pgbouncer_auth_password LADDER_PGBOUNCER_AUTH_PASSWORD

\if :{?app_rw_login}
\else
\warn 'bootstrap: LADDER_APP_RW_LOGIN is not set'
\set app_rw_login ''
\endif
\if :{?app_rw_password}
\else
\warn 'bootstrap: LADDER_APP_RW_PASSWORD is not set'
\set app_rw_password ''
\endif
\if :{?app_ro_login}
\else
\warn 'bootstrap: LADDER_APP_RO_LOGIN is not set'
\set app_ro_login ''
\endif
\if :{?app_ro_password}
\else
\warn 'bootstrap: LADDER_APP_RO_PASSWORD is not set'
\set app_ro_password ''
\endif
\if :{?pgbouncer_auth_password}
\else
\warn 'bootstrap: LADDER_PGBOUNCER_AUTH_PASSWORD is not set'
\set pgbouncer_auth_password ''
\endif

-- Serialise with other bootstraps and with rotations (same key: ladder/credentials.py
-- BOOTSTRAP_LOCK_KEY). Session-level: released when psql disconnects.
SELECT pg_advisory_lock(727711011) \gset

BEGIN;
-- Re-runs repeat every GRANT and IF NOT EXISTS: their notices are noise.
SET LOCAL client_min_messages = warning;
-- Hand the inputs to the DO block through transaction-local settings (psql does not
-- interpolate inside dollar quotes); they vanish at COMMIT.
SELECT set_config('ladder.app_rw_login', :'app_rw_login', true),
       set_config('ladder.app_rw_password', :'app_rw_password', true),
       set_config('ladder.app_ro_login', :'app_ro_login', true),
       set_config('ladder.app_ro_password', :'app_ro_password', true),
       set_config('ladder.pgbouncer_auth_password', :'pgbouncer_auth_password', true) \gset

DO $bootstrap$
DECLARE
    master name := current_user;
    db     name := current_database();
    -- login, its group
    logins text[] := ARRAY['app_rw_a', 'app_rw_b', 'app_ro_a', 'app_ro_b'];
    inputs text[] := ARRAY[
        -- login named by the secret, its verifier, its group
        current_setting('ladder.app_rw_login'), current_setting('ladder.app_rw_password'), 'app_rw',
        current_setting('ladder.app_ro_login'), current_setting('ladder.app_ro_password'), 'app_ro'];
    auth_verifier text := current_setting('ladder.pgbouncer_auth_password');
    verifier_re text := '^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$';
    login text;
    grp text;
    i int;
BEGIN
    -- Validate every input before changing anything.
    FOR i IN 0 .. 1 LOOP
        login := inputs[3 * i + 1];
        grp := inputs[3 * i + 3];
        IF login IS DISTINCT FROM grp || '_a' AND login IS DISTINCT FROM grp || '_b' THEN
            RAISE EXCEPTION 'bootstrap: login % is not one of %_a, %_b', quote_literal(login), grp, grp;
        END IF;
        IF inputs[3 * i + 2] !~ verifier_re THEN
            RAISE EXCEPTION 'bootstrap: the password for % is not a SCRAM-SHA-256 verifier', login;
        END IF;
    END LOOP;
    IF auth_verifier !~ verifier_re THEN
        RAISE EXCEPTION 'bootstrap: the pgbouncer_auth password is not a SCRAM-SHA-256 verifier';
    END IF;

    -- Group roles: privileges live here; nobody logs in as them.
    FOREACH grp IN ARRAY ARRAY['app_rw', 'app_ro'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = grp) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', grp);
        END IF;
        EXECUTE format('ALTER ROLE %I NOLOGIN NOCREATEDB NOCREATEROLE INHERIT', grp);
    END LOOP;
    -- The master acts for app_rw to own its schema and set its default privileges, and
    -- may set the logins' role-level `role` (PostgreSQL 16+ gives a CREATEROLE creator
    -- ADMIN on a role, not SET). get_auth() never returns the master, whatever it joins.
    EXECUTE format('GRANT app_rw, app_ro TO %I', master);

    -- Alternating logins. NOINHERIT: their one privilege is becoming their group, which
    -- the role-level `role` setting does at every login (RESET ROLE and DISCARD ALL
    -- return to it), so whatever a session creates belongs to the group.
    FOREACH login IN ARRAY logins LOOP
        grp := left(login, 6);
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = login) THEN
            EXECUTE format('CREATE ROLE %I LOGIN NOINHERIT', login);
        END IF;
        EXECUTE format('ALTER ROLE %I LOGIN NOINHERIT NOCREATEDB NOCREATEROLE CONNECTION LIMIT -1 '
                       'VALID UNTIL %L', login, 'infinity');
        EXECUTE format('GRANT %I TO %I', grp, login);
        EXECUTE format('ALTER ROLE %I IN DATABASE %I SET role = %L', login, db, grp);
        EXECUTE format('ALTER ROLE %I IN DATABASE %I SET search_path = app', login, db);
        IF grp = 'app_ro' THEN
            -- Read-only even where the ro pool falls back to the primary.
            EXECUTE format('ALTER ROLE %I IN DATABASE %I SET default_transaction_read_only = on', login, db);
        END IF;
    END LOOP;

    -- PgBouncer's lookup user: no privilege but EXECUTE on the lookup function.
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgbouncer_auth') THEN
        CREATE ROLE pgbouncer_auth LOGIN NOINHERIT;
    END IF;
    ALTER ROLE pgbouncer_auth LOGIN NOINHERIT NOCREATEDB NOCREATEROLE CONNECTION LIMIT -1;
    EXECUTE format('ALTER ROLE pgbouncer_auth PASSWORD %L', auth_verifier);
    EXECUTE format('ALTER ROLE pgbouncer_auth IN DATABASE %I SET search_path = pg_catalog', db);

    -- Nobody but these roles (and the master, the owner) may connect to the app database.
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', db);
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO app_rw, app_ro', db);
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO app_rw_a, app_rw_b, app_ro_a, app_ro_b, pgbouncer_auth', db);
    -- PostgreSQL 15+ already denies CREATE on public; older clusters and restores too.
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;

    -- The app's schema, owned by app_rw: migrations create tables as app_rw.
    CREATE SCHEMA IF NOT EXISTS app AUTHORIZATION app_rw;
    ALTER SCHEMA app OWNER TO app_rw;
    REVOKE ALL ON SCHEMA app FROM PUBLIC;
    GRANT USAGE ON SCHEMA app TO app_ro;
    GRANT SELECT ON ALL TABLES IN SCHEMA app TO app_ro;
    GRANT SELECT ON ALL SEQUENCES IN SCHEMA app TO app_ro;
    ALTER DEFAULT PRIVILEGES FOR ROLE app_rw IN SCHEMA app GRANT SELECT ON TABLES TO app_ro;
    ALTER DEFAULT PRIVILEGES FOR ROLE app_rw IN SCHEMA app GRANT SELECT ON SEQUENCES TO app_ro;

    -- PgBouncer's lookup: its own schema, owned by the master, closed to everyone else.
    CREATE SCHEMA IF NOT EXISTS pgbouncer;
    EXECUTE format('ALTER SCHEMA pgbouncer OWNER TO %I', master);
    REVOKE ALL ON SCHEMA pgbouncer FROM PUBLIC;
    GRANT USAGE ON SCHEMA pgbouncer TO pgbouncer_auth;
    CREATE TABLE IF NOT EXISTS pgbouncer.auth_credentials (
        usename name PRIMARY KEY,
        passwd  text NOT NULL CHECK (passwd LIKE 'SCRAM-SHA-256$%')
    );
    REVOKE ALL ON TABLE pgbouncer.auth_credentials FROM PUBLIC;
    REVOKE ALL ON TABLE pgbouncer.auth_credentials FROM pgbouncer_auth, app_rw, app_ro;

    -- Returns a verifier only for a LOGIN member of app_rw/app_ro with no power beyond
    -- it: never the master (the table's owner), a superuser, a member of rds_superuser
    -- (RDS only; absent elsewhere, where the test matches no row) or any role that may
    -- create roles or databases, replicate or bypass RLS, whatever the table holds.
    EXECUTE format($fn$
        CREATE OR REPLACE FUNCTION pgbouncer.get_auth(p_usename text)
        RETURNS TABLE (usename name, passwd text)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS $body$
            SELECT c.usename, c.passwd
              FROM pgbouncer.auth_credentials AS c
              JOIN pg_catalog.pg_roles AS r ON r.rolname = c.usename
             WHERE c.usename = p_usename
               AND r.rolname <> %L
               AND r.rolcanlogin
               AND NOT (r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls)
               AND (pg_catalog.pg_has_role(r.oid, 'app_rw', 'MEMBER')
                    OR pg_catalog.pg_has_role(r.oid, 'app_ro', 'MEMBER'))
               AND NOT EXISTS (SELECT FROM pg_catalog.pg_roles AS s
                                WHERE s.rolname = 'rds_superuser'
                                  AND pg_catalog.pg_has_role(r.oid, s.oid, 'MEMBER'))
        $body$
    $fn$, master);
    EXECUTE format('ALTER FUNCTION pgbouncer.get_auth(text) OWNER TO %I', master);
    REVOKE ALL ON FUNCTION pgbouncer.get_auth(text) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO pgbouncer_auth;

    -- The current logins get the secret's password, on the role and in the lookup table.
    FOR i IN 0 .. 1 LOOP
        login := inputs[3 * i + 1];
        EXECUTE format('ALTER ROLE %I PASSWORD %L', login, inputs[3 * i + 2]);
        INSERT INTO pgbouncer.auth_credentials AS c (usename, passwd)
        VALUES (login, inputs[3 * i + 2])
        ON CONFLICT ON CONSTRAINT auth_credentials_pkey DO UPDATE SET passwd = EXCLUDED.passwd;
    END LOOP;
END
$bootstrap$;
COMMIT;
SELECT pg_advisory_unlock(727711011) \gset
\echo bootstrap: roles converged; current logins :app_rw_login :app_ro_login
