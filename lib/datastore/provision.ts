// The datastore room: the script that makes one tenant's role and database (run by the tenant's provisioning Job,
// lib/datastore/provision-job.ts). Free of cdk8s.
import {
  TENANT_DATABASE_MARK,
  TENANT_DATABASE_MARK_PREFIX,
  TENANT_DB_CONNECTION_LIMIT,
  TENANT_DB_STATEMENT_TIMEOUT,
  TENANT_DB_TEMP_FILE_LIMIT,
  TENANT_ROLE_GROUP,
} from '../wire';

/** ConfigMap in `kubeflex-system` holding DB_PROVISION_SQL, mounted by each k8s tenant's provisioning Job. */
export const DB_PROVISION_CONFIGMAP = 'kubeflex-db-provision';

/**
 * Idempotent psql script creating one tenant's login role and database (run with
 * `--set=tenant_db=… --set=tenant_role=…`; the password comes from $TENANT_DB_PASSWORD, the database's mark
 * `kubeflex:<ControlPlane UID>` from $TENANT_DB_MARK). It takes over nothing it did
 * not create: a role that is not a member of `kubeflex_tenants`, or a database that is neither marked nor owned by
 * such a role, makes it fail with a message (security review H2: a tenant named like an existing application must
 * not reset that application's password or read its data). The role owns only its database and cannot create
 * others; PUBLIC loses CONNECT, so tenants cannot reach each other's data. Tenant roles cannot connect to `postgres`
 * or `template1` either, and inside their own database cannot read the shared catalogs that list the other tenants'
 * databases, roles and sessions (review L3; kine only reads `pg_database` from `postgres`, which it tolerates failing).
 */
export const DB_PROVISION_SQL = `\\set ON_ERROR_STOP on
\\getenv tenant_password TENANT_DB_PASSWORD
\\getenv tenant_mark TENANT_DB_MARK
SELECT 'CREATE ROLE ${TENANT_ROLE_GROUP} NOLOGIN'
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${TENANT_ROLE_GROUP}') \\gexec
SELECT format('DO $m$BEGIN RAISE EXCEPTION %L; END$m$',
    format('role %s exists and was not created by kubeflex: refusing to take it over', :'tenant_role'))
  WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = :'tenant_role')
    AND NOT EXISTS (SELECT FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
      WHERE g.rolname = '${TENANT_ROLE_GROUP}' AND u.rolname = :'tenant_role' AND NOT u.rolsuper) \\gexec
SELECT format('DO $m$BEGIN RAISE EXCEPTION %L; END$m$',
    format('database %s exists and was not created by kubeflex: refusing to take it over', :'tenant_db'))
  FROM pg_database d JOIN pg_roles o ON o.oid = d.datdba
  WHERE d.datname = :'tenant_db'
    AND coalesce(shobj_description(d.oid, 'pg_database'), '') NOT LIKE '${TENANT_DATABASE_MARK_PREFIX}%'
    AND shobj_description(d.oid, 'pg_database') IS DISTINCT FROM '${TENANT_DATABASE_MARK}'
    AND o.rolname <> :'tenant_role' \\gexec
SELECT format('DO $m$BEGIN RAISE EXCEPTION %L; END$m$',
    format('database %s belongs to another ControlPlane (%s): refusing to take it over', :'tenant_db',
      shobj_description(d.oid, 'pg_database')))
  FROM pg_database d
  WHERE d.datname = :'tenant_db'
    AND shobj_description(d.oid, 'pg_database') LIKE '${TENANT_DATABASE_MARK_PREFIX}%'
    AND shobj_description(d.oid, 'pg_database') <> :'tenant_mark' \\gexec
SELECT format('CREATE ROLE %I LOGIN IN ROLE ${TENANT_ROLE_GROUP}', :'tenant_role')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'tenant_role') \\gexec
ALTER ROLE :"tenant_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION CONNECTION LIMIT ${TENANT_DB_CONNECTION_LIMIT} PASSWORD :'tenant_password';
ALTER ROLE :"tenant_role" SET statement_timeout = '${TENANT_DB_STATEMENT_TIMEOUT}';
ALTER ROLE :"tenant_role" SET idle_in_transaction_session_timeout = '${TENANT_DB_STATEMENT_TIMEOUT}';
ALTER ROLE :"tenant_role" SET temp_file_limit = '${TENANT_DB_TEMP_FILE_LIMIT}';
SELECT format('CREATE DATABASE %I OWNER %I', :'tenant_db', :'tenant_role')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'tenant_db') \\gexec
COMMENT ON DATABASE :"tenant_db" IS :'tenant_mark';
REVOKE ALL ON DATABASE :"tenant_db" FROM PUBLIC;
GRANT ALL ON DATABASE :"tenant_db" TO :"tenant_role";
REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1 FROM PUBLIC;
\\connect :"tenant_db"
REVOKE SELECT ON pg_catalog.pg_database, pg_catalog.pg_roles, pg_catalog.pg_user, pg_catalog.pg_auth_members,
  pg_catalog.pg_shdescription, pg_catalog.pg_stat_activity, pg_catalog.pg_stat_database FROM PUBLIC;
`;
