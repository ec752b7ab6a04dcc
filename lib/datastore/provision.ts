// The datastore room, at run time: the controller makes one k8s tenant's role and database on its server, as the
// superuser, before kine's first connection. Free of cdk8s. (Until round 7 a synthesized Job per tenant ran the same
// steps with psql; making them here spares every tenant a Pod start on the boot path.)
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'crypto';
import type { Client } from 'pg';
import type { ConnectTo } from '../kube/client';
import {
  TENANT_DATABASE_MARK,
  TENANT_DATABASE_MARK_PREFIX,
  TENANT_DB_CONNECTION_LIMIT,
  TENANT_DB_STATEMENT_TIMEOUT,
  TENANT_DB_TEMP_FILE_LIMIT,
  TENANT_ROLE_GROUP,
} from '../wire';
import { PostgresServer, superuserClient } from './connect';

/** One tenant's database as the controller minted it (Secret `kubeflex-system/<cp>-db-credentials`). */
export interface TenantDatabase {
  readonly database: string;
  readonly role: string;
  readonly password: string;
  /** `kubeflex:<ControlPlane UID>`: the comment the database carries, so a later plane of the same name is refused. */
  readonly mark: string;
}

/** The provisioning refused to take over an object it did not make: only a new spec or the admin changes that. */
export class DatabaseRefusedError extends Error {}

/**
 * What the credentials Secret records once `db` was provisioned: a digest of its mark, password and role limits, so
 * a changed password (or plane) is provisioned again, and so are roles made with other limits by an older
 * controller; the password itself is not repeated.
 */
export function provisionedDigest(db: Pick<TenantDatabase, 'mark' | 'password'>): string {
  return createHash('sha256')
    .update(`${db.mark}\n${db.password}\nconnection limit ${TENANT_DB_CONNECTION_LIMIT}`)
    .digest('hex');
}

/**
 * A SCRAM-SHA-256 verifier of `password` (RFC 5802, PostgreSQL's stored form): PostgreSQL stores it as given, so
 * the password itself never reaches the server, its statement log or its replicas. `password` is ASCII (minted).
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** Runs `sql`, ignoring "already exists" (another worker or controller made the same object a moment before). */
async function create(client: Client, sql: string): Promise<void> {
  try {
    await client.query(sql);
  } catch (e) {
    const code = (e as { code?: string }).code;
    // duplicate_object, duplicate_database; unique_violation is how a create of the same name at the same moment
    // fails (the catalog's unique index, not the existence check).
    if (code !== '42710' && code !== '42P04' && code !== '23505') throw e;
  }
}

/**
 * PUBLIC loses CONNECT and TEMPORARY on `postgres` and `template1`, once per server: each provisioning checks, and only
 * the first changes the two shared catalog rows. Two sessions changing them at once make one fail with "tuple
 * concurrently updated" (a bench's 30 planes made at once hit it twice); that one looks again, and finds it done.
 */
async function revokePublicOnShared(client: Client): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const open = await client.query(
      `SELECT EXISTS (SELECT FROM pg_database d WHERE d.datname IN ('postgres', 'template1') AND (d.datacl IS NULL OR
         EXISTS (SELECT FROM aclexplode(d.datacl) a WHERE a.grantee = 0 AND a.privilege_type IN ('CONNECT', 'TEMPORARY'))))
         AS open`,
    );
    if (!open.rows[0].open) return;
    try {
      await client.query('REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1 FROM PUBLIC');
      return;
    } catch (e) {
      if (attempt >= 5 || !/tuple concurrently updated/.test((e as Error).message)) throw e;
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  }
}

/**
 * Makes `db`'s login role and database, idempotently. It takes over nothing it did not create (security review H2,
 * N6): a role that is not a member of `kubeflex_tenants` (or is a superuser), a database that is neither marked nor
 * owned by such a role, or one marked for another ControlPlane makes it throw DatabaseRefusedError and change nothing.
 * The role owns only its database and cannot create others; PUBLIC loses CONNECT, so tenants cannot reach each
 * other's data. Tenant roles cannot connect to `postgres` or `template1` either, and inside their own database
 * cannot read the shared catalogs that list the other tenants' databases, roles and sessions (review L3; kine only
 * reads `pg_database` from `postgres`, which it tolerates failing). Identifiers are quoted by the driver; values are
 * parameters, except the password's verifier, which PostgreSQL's ALTER ROLE takes only as a literal.
 */
export async function provisionTenantDatabase(
  pg: PostgresServer,
  superPassword: string,
  db: TenantDatabase,
  connectTo: ConnectTo,
  ca?: string,
): Promise<void> {
  const client = await superuserClient(pg, superPassword, connectTo, ca);
  const role = client.escapeIdentifier(db.role);
  const database = client.escapeIdentifier(db.database);
  try {
    // Made by the first provisioning only: CREATE ROLE that fails as a duplicate is an error in the server's log.
    const group = await client.query('SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1) AS found', [
      TENANT_ROLE_GROUP,
    ]);
    if (!group.rows[0].found) await create(client, `CREATE ROLE ${client.escapeIdentifier(TENANT_ROLE_GROUP)} NOLOGIN`);
    const found = await client.query(
      `SELECT
         EXISTS (SELECT FROM pg_roles WHERE rolname = $1) AS role_exists,
         EXISTS (SELECT FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
                 WHERE g.rolname = $2 AND u.rolname = $1 AND NOT u.rolsuper) AS role_ours,
         (SELECT shobj_description(d.oid, 'pg_database') FROM pg_database d WHERE d.datname = $3) AS db_comment,
         (SELECT o.rolname FROM pg_database d JOIN pg_roles o ON o.oid = d.datdba WHERE d.datname = $3) AS db_owner`,
      [db.role, TENANT_ROLE_GROUP, db.database],
    );
    const r = found.rows[0] as {
      role_exists: boolean;
      role_ours: boolean;
      db_comment: string | null;
      db_owner: string | null;
    };
    if (r.role_exists && !r.role_ours) {
      throw new DatabaseRefusedError(
        `role ${db.role} exists and was not created by kubeflex: refusing to take it over`,
      );
    }
    if (r.db_owner !== null) {
      const comment = r.db_comment ?? '';
      if (comment.startsWith(TENANT_DATABASE_MARK_PREFIX)) {
        if (comment !== db.mark)
          throw new DatabaseRefusedError(
            `database ${db.database} belongs to another ControlPlane (${comment}): refusing to take it over`,
          );
      } else if (comment !== TENANT_DATABASE_MARK && r.db_owner !== db.role) {
        throw new DatabaseRefusedError(
          `database ${db.database} exists and was not created by kubeflex: refusing to take it over`,
        );
      }
    }
    if (!r.role_exists)
      await create(client, `CREATE ROLE ${role} LOGIN IN ROLE ${client.escapeIdentifier(TENANT_ROLE_GROUP)}`);
    await client.query(
      `ALTER ROLE ${role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION ` +
        `CONNECTION LIMIT ${TENANT_DB_CONNECTION_LIMIT} PASSWORD ${client.escapeLiteral(scramVerifier(db.password))}`,
    );
    await client.query(`ALTER ROLE ${role} SET statement_timeout = '${TENANT_DB_STATEMENT_TIMEOUT}'`);
    await client.query(`ALTER ROLE ${role} SET idle_in_transaction_session_timeout = '${TENANT_DB_STATEMENT_TIMEOUT}'`);
    await client.query(`ALTER ROLE ${role} SET temp_file_limit = '${TENANT_DB_TEMP_FILE_LIMIT}'`);
    if (r.db_owner === null) await create(client, `CREATE DATABASE ${database} OWNER ${role}`);
    await client.query(`COMMENT ON DATABASE ${database} IS ${client.escapeLiteral(db.mark)}`);
    await client.query(`REVOKE ALL ON DATABASE ${database} FROM PUBLIC`);
    await client.query(`GRANT ALL ON DATABASE ${database} TO ${role}`);
    await revokePublicOnShared(client);
  } finally {
    await client.end();
  }
  const inTenant = await superuserClient(pg, superPassword, connectTo, ca, db.database);
  try {
    await inTenant.query(
      `REVOKE SELECT ON pg_catalog.pg_database, pg_catalog.pg_roles, pg_catalog.pg_user, pg_catalog.pg_auth_members,
         pg_catalog.pg_shdescription, pg_catalog.pg_stat_activity, pg_catalog.pg_stat_database FROM PUBLIC`,
    );
  } finally {
    await inTenant.end();
  }
}
