// What the process-based benchmarks share: a temp dir and a private PostgreSQL 15 with TLS on loopback, in the
// shape bootTenant takes.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ClusterState, makePostgresPki, psql, startPostgres, stopPostgres } from '../test/cluster/harness';

export type BenchState = Pick<ClusterState, 'dir' | 'pgPort' | 'pgPassword' | 'pgCa' | 'binDir' | 'logDir'> &
  Pick<ClusterState, 'pgSocketDir'>;

/** Starts the bench's PostgreSQL; `stop()` ends it and removes the temp dir. */
export async function benchPostgres(prefix: string): Promise<{ state: BenchState; stop: () => void }> {
  const binDir = process.env.KFLEX_BIN_DIR ?? path.join(os.homedir(), '.cache/cdk8s-kubeflex/bin');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir);
  const pgPki = makePostgresPki(path.join(dir, 'pg-pki'));
  // KubeFlex's kine keeps ~18 backends per idle tenant: 50 of its tenants need more than the tests' 500.
  const pg = await startPostgres(dir, logDir, pgPki, Number(process.env.PG_MAX_CONNECTIONS ?? 1200));
  const pgPassword = 'bench-' + process.pid;
  psql({ pgPort: pg.port, pgSocketDir: pg.socketDir }, `ALTER ROLE postgres PASSWORD '${pgPassword}'`);
  return {
    state: { dir, logDir, binDir, pgPort: pg.port, pgSocketDir: pg.socketDir, pgPassword, pgCa: pgPki.ca },
    stop: () => {
      stopPostgres(pg.dataDir);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
