// Talks to the shared PostgreSQL: drops a deleted tenant's database and role.
import { Client } from 'pg';
import type { HostingConfig } from './core';
import { ConnectTo, resolveConnectTo } from './kube';

/** node-postgres cannot fall back from TLS like libpq's `prefer`/`allow`; those connect without TLS. */
function ssl(mode: string): boolean | { rejectUnauthorized: boolean } {
  if (mode === 'require') return { rejectUnauthorized: false };
  if (mode === 'verify-ca' || mode === 'verify-full') return true;
  return false;
}

/** Drops `database` (terminating its connections) and `role`; both may already be gone. */
export async function dropTenantDatabase(
  pg: NonNullable<HostingConfig['postgres']>,
  password: string,
  database: string,
  role: string,
  connectTo: ConnectTo,
): Promise<void> {
  const { host, port } = resolveConnectTo(connectTo, pg.host, pg.port);
  const client = new Client({
    host,
    port,
    user: pg.superuser,
    password,
    database: 'postgres',
    ssl: ssl(pg.sslMode),
    connectionTimeoutMillis: 10_000,
    application_name: 'kubeflex-controller',
  });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(database)} WITH (FORCE)`);
    await client.query(`DROP ROLE IF EXISTS ${client.escapeIdentifier(role)}`);
  } finally {
    await client.end();
  }
}
