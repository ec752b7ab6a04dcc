// The datastore room, at run time: how the controller reaches a tenant's PostgreSQL server as its superuser, to make
// (provision.ts) and drop (drop.ts) tenant databases. Free of cdk8s.
import * as net from 'net';
import type { ConnectionOptions } from 'tls';
import { Client } from 'pg';
import type { HostingConfig } from '../hosting-config';
import { ConnectTo, resolveConnectTo } from '../kube/client';

/** The server settings of the hosting config (kubeflex-config). */
export type PostgresServer = NonNullable<HostingConfig['postgres']>;

/**
 * TLS options as libpq's sslmode means them. node-postgres cannot fall back from TLS like `prefer`/`allow`; those
 * connect without TLS. `verify-ca`/`verify-full` trust only the configured CA (review M2), and verify the host name
 * the configuration names even when `--connect-to` sends the connection elsewhere.
 */
export function sslOptions(mode: string, host: string, ca?: string): false | ConnectionOptions {
  if (mode === 'require') return { rejectUnauthorized: false };
  if (mode === 'verify-ca' || mode === 'verify-full') {
    if (!ca) throw new Error(`sslmode ${mode} needs the PostgreSQL CA certificate, which is not configured`);
    return {
      ca,
      rejectUnauthorized: true,
      servername: net.isIP(host) ? undefined : host,
      ...(mode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
    };
  }
  return false;
}

/** A connected client of `database` on `pg` as its superuser; the caller ends it. */
export async function superuserClient(
  pg: PostgresServer,
  password: string,
  connectTo: ConnectTo,
  ca: string | undefined,
  database = 'postgres',
): Promise<Client> {
  const { host, port } = resolveConnectTo(connectTo, pg.host, pg.port);
  const client = new Client({
    host,
    port,
    user: pg.superuser,
    password,
    database,
    ssl: sslOptions(pg.sslMode, pg.host, ca),
    connectionTimeoutMillis: 10_000,
    application_name: 'kubeflex-controller',
  });
  await client.connect();
  return client;
}
