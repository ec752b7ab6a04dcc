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

/** The server could not be reached or refused the login: nothing about one tenant, so it holds for all of them. */
export class PostgresUnreachableError extends Error {}

/**
 * Keeps the controller from asking an unreachable server once per plane: after a PostgresUnreachableError from a
 * server, calls for that server fail at once with the same error until `holdMs` have passed, then one is let through.
 * Without it, 1,000 planes waiting for their databases each waited out a DNS lookup or connect timeout (seconds) in
 * their pass, while the server was down or (in the controller bench) not resolvable at all.
 */
export class ServerBreaker {
  private readonly down = new Map<string, { until: number; error: string }>();

  public constructor(
    private readonly holdMs = 5_000,
    private readonly now: () => number = Date.now,
  ) {}

  public async run<T>(server: string, call: () => Promise<T>): Promise<T> {
    const d = this.down.get(server);
    if (d && this.now() < d.until)
      throw new PostgresUnreachableError(`${d.error} (asked again after ${this.holdMs} ms)`);
    try {
      const r = await call();
      this.down.delete(server);
      return r;
    } catch (e) {
      if (e instanceof PostgresUnreachableError)
        this.down.set(server, { until: this.now() + this.holdMs, error: e.message });
      throw e;
    }
  }
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
  try {
    await client.connect();
  } catch (e) {
    throw new PostgresUnreachableError(e instanceof Error ? e.message : String(e));
  }
  return client;
}
