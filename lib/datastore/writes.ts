// The datastore room, at run time: how many rows each database on a server has had inserted, from PostgreSQL's own
// statistics (`pg_stat_database.tup_inserted`), read as the superuser in one query for all databases on a server.
// kine writes every change of a tenant's objects as an inserted row (its reads, polls and compaction insert none),
// so a counter that moved means the tenant's API server wrote: what kube-controller-manager acts on. Free of cdk8s.
import type { ConnectTo } from '../kube/client';
import { PostgresServer, superuserClient } from './connect';

/**
 * Inserted-row counters per database, one query per server at most every `ttlMs` (all planes of a server share
 * it), so a thousand parked planes cost one short query every few seconds instead of a thousand reads of their API
 * servers' `/metrics`.
 */
export class WriteCounters {
  private readonly cache = new Map<string, { atMs: number; counts: Promise<Map<string, number>> }>();

  public constructor(
    private readonly connectTo: ConnectTo,
    private readonly ttlMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The counter of `database`, or undefined when the server has no such database. `credentials` (the superuser's
   * password and the server's CA) is asked only when the server is read.
   */
  public async count(
    pg: PostgresServer,
    database: string,
    credentials: () => Promise<{ password: string; ca?: string }>,
  ): Promise<number | undefined> {
    const server = `${pg.host}:${pg.port}`;
    let entry = this.cache.get(server);
    if (!entry || this.now() - entry.atMs >= this.ttlMs) {
      entry = { atMs: this.now(), counts: credentials().then((c) => this.read(pg, c.password, c.ca)) };
      this.cache.set(server, entry);
      // A failed read is not kept: the next plane asks again.
      entry.counts.catch(() => this.cache.delete(server));
    }
    return (await entry.counts).get(database);
  }

  private async read(pg: PostgresServer, password: string, ca: string | undefined): Promise<Map<string, number>> {
    const client = await superuserClient(pg, password, this.connectTo, ca);
    try {
      const r = await client.query(
        'SELECT datname, tup_inserted::text AS n FROM pg_stat_database WHERE datname IS NOT NULL',
      );
      return new Map(r.rows.map((x: { datname: string; n: string }) => [x.datname, Number(x.n)]));
    } finally {
      await client.end();
    }
  }
}
