// The datastore room, at run time: the controller drops a deleted tenant's database and role on its server.
import type { ConnectTo } from '../kube/client';
import { TENANT_DATABASE_MARK, TENANT_DATABASE_MARK_PREFIX, TENANT_ROLE_GROUP } from '../wire';
import { PostgresServer, superuserClient } from './connect';

/** What dropTenantDatabase did: objects not created by the provisioner are never dropped. */
export interface DropResult {
  readonly droppedDatabase: boolean;
  readonly droppedRole: boolean;
  /** Why something was kept, if it was. */
  readonly kept?: string;
}

/**
 * Drops `database` (terminating its connections) and `role`, but only what the provisioner created: a role that is a
 * member of `kubeflex_tenants` (and no superuser), a database marked `mark` (`kubeflex:<ControlPlane UID>`), or one
 * with the older constant mark or owned by that role but marked for no other plane (security review H2, N6). Both may
 * already be gone.
 */
export async function dropTenantDatabase(
  pg: PostgresServer,
  password: string,
  database: string,
  role: string,
  connectTo: ConnectTo,
  ca?: string,
  mark?: string,
): Promise<DropResult> {
  const client = await superuserClient(pg, password, connectTo, ca);
  try {
    const roles = await client.query(
      `SELECT
         EXISTS (SELECT FROM pg_roles WHERE rolname = $1) AS role_exists,
         EXISTS (SELECT FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
                 WHERE g.rolname = $2 AND u.rolname = $1 AND NOT u.rolsuper) AS role_ours`,
      [role, TENANT_ROLE_GROUP],
    );
    const db = await client.query(
      `SELECT shobj_description(d.oid, 'pg_database') AS comment, o.rolname AS owner
         FROM pg_database d JOIN pg_roles o ON o.oid = d.datdba WHERE d.datname = $1`,
      [database],
    );
    const r = roles.rows[0];
    const roleOurs = r.role_ours as boolean;
    const found = db.rows[0] as { comment: string | null; owner: string } | undefined;
    // A database marked for another ControlPlane (another UID) is never this plane's (review N6); one marked for none
    // is ours with the older constant mark or when our role owns it (review H2).
    const planeMark = found?.comment?.startsWith(TENANT_DATABASE_MARK_PREFIX) ? found.comment : undefined;
    const dbOurs =
      roleOurs &&
      !!found &&
      (planeMark ? planeMark === mark : found.comment === TENANT_DATABASE_MARK || found.owner === role);
    // A role that owns a database kept here is kept with it (it could not be dropped anyway).
    const dropRole = roleOurs && !(found && !dbOurs && found.owner === role);
    const kept: string[] = [];
    if (found && !dbOurs) {
      kept.push(
        planeMark && planeMark !== mark
          ? `database ${database} is marked for another ControlPlane (${planeMark})`
          : `database ${database} was not created by kubeflex`,
      );
    }
    if (r.role_exists && !roleOurs) kept.push(`role ${role} was not created by kubeflex`);
    if (roleOurs && !dropRole) kept.push(`role ${role} owns that database`);
    if (dbOurs) await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(database)} WITH (FORCE)`);
    if (dropRole) await client.query(`DROP ROLE IF EXISTS ${client.escapeIdentifier(role)}`);
    return {
      droppedDatabase: dbOurs,
      droppedRole: dropRole,
      ...(kept.length ? { kept: `${kept.join('; ')}: left untouched` } : {}),
    };
  } finally {
    await client.end();
  }
}
