// What the process-based benchmarks share: a temp dir and a private PostgreSQL 15 with TLS on loopback, in the
// shape bootTenant takes.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ClusterState, makePostgresPki, psql, startPostgres, stopPostgres } from '../test/cluster/harness';

export type BenchState = Pick<ClusterState, 'dir' | 'pgPort' | 'pgPassword' | 'pgCa' | 'binDir' | 'logDir'> &
  Pick<ClusterState, 'pgSocketDir'>;

/** A `/proc/meminfo` field (MemTotal, MemAvailable, ...) in MiB. */
export const meminfoMiB = (key: string): number =>
  Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(fs.readFileSync('/proc/meminfo', 'utf8'))![1]) / 1024;

/** The median (the mean of the middle two for an even count). */
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** CPU-seconds the whole machine has spent busy (all cores; user, nice, system, irq, softirq, steal: guest time is
 * already in user). */
export function machineBusyS(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return (user + nice + system + irq + softirq + steal) / 100;
}

/** Starts the bench's PostgreSQL; `stop()` ends it and removes the temp dir. */
export async function benchPostgres(prefix: string): Promise<{ state: BenchState; stop: () => void }> {
  raiseInotifyInstances();
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

/**
 * Every kube-apiserver and KCM watches its certificate files with inotify, and all the bench's processes run as one
 * user: Linux's default of 128 inotify instances per user ran out at 25 tenants (`error creating fsnotify watcher: too
 * many open files`). Kubernetes nodes raise it for the same reason; so does the bench, loudly, when it may.
 */
function raiseInotifyInstances(want = 8192): void {
  const f = '/proc/sys/fs/inotify/max_user_instances';
  try {
    const now = Number(fs.readFileSync(f, 'utf8'));
    if (now >= want) return;
    fs.writeFileSync(f, String(want));
    console.error(`bench: fs.inotify.max_user_instances raised from ${now} to ${want} (one per certificate watcher)`);
  } catch (e) {
    console.error(
      `bench: cannot raise fs.inotify.max_user_instances (${(e as Error).message}); many tenants will log fsnotify errors`,
    );
  }
}
