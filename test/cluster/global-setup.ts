import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { KUBERNETES_RELEASES, KUBERNETES_VERSION } from '../../lib/versions';
import {
  ClusterState,
  HOSTING_KCM_CONTROLLERS,
  killAll,
  psql,
  startCluster,
  makePostgresPki,
  startPostgres,
  STATE_FILE,
  stopPostgres,
} from './harness';

/** Starts the hosting cluster once per Jest run and records how to reach it in STATE_FILE. */
export default async function globalSetup(): Promise<void> {
  const binDir = process.env.KFLEX_BIN_DIR ?? path.join(os.homedir(), '.cache/cdk8s-kubeflex/bin');
  // Every supported Kubernetes minor's two control-plane binaries: the default in binDir, the others in binDir/<tag>.
  const releases = Object.values(KUBERNETES_RELEASES).map((r) => r.version);
  const versioned = releases
    .filter((v) => v !== KUBERNETES_VERSION)
    .flatMap((v) => [`${v}/kube-apiserver`, `${v}/kube-controller-manager`]);
  const missing = ['kube-apiserver', 'kube-controller-manager', 'kine', ...versioned].filter(
    (b) => !fs.existsSync(path.join(binDir, b)),
  );
  if (missing.length > 0) {
    const skipped = `binaries missing in ${binDir}: ${missing.join(', ')} (run scripts/prepare-binaries.sh; needs Go)`;
    process.stderr.write(`\n### REAL-CLUSTER TESTS SKIPPED: ${skipped}\n`);
    fs.writeFileSync(STATE_FILE, JSON.stringify({ skipped }));
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kflex-cluster-'));
  const logDir = path.join(path.resolve(__dirname, '../..'), '.test-logs', path.basename(dir));
  fs.mkdirSync(logDir, { recursive: true });
  const pids: Record<string, number> = {};
  let pgDataDir = '';
  try {
    const pgPki = makePostgresPki(path.join(dir, 'pg-pki'));
    const pg = await startPostgres(dir, logDir, pgPki);
    pgDataDir = pg.dataDir;
    const pgPassword = randomBytes(16).toString('hex');
    psql({ pgPort: pg.port, pgSocketDir: pg.socketDir }, `ALTER ROLE postgres PASSWORD '${pgPassword}'`);

    // The job controller runs here (not in the controller tests' own clusters), for the database Jobs.
    const cluster = await startCluster({ dir, logDir, binDir, pgPort: pg.port, pgPassword }, 'hosting', [
      ...HOSTING_KCM_CONTROLLERS,
      'job-controller',
      // Enforces the planes' namespace quotas (apply.test.ts).
      'resourcequota-controller',
    ]);
    Object.assign(pids, cluster.pids);
    const { server, kubeconfig, readyMs } = cluster;
    const state: ClusterState = {
      dir,
      logDir,
      kubeconfig,
      server,
      pgPort: pg.port,
      pgDataDir,
      pgSocketDir: pg.socketDir,
      pgPassword,
      pgCa: pgPki.ca,
      pids,
      binDir,
    };
    fs.writeFileSync(STATE_FILE, JSON.stringify(state));
    process.stderr.write(`\nreal hosting cluster ready in ${readyMs} ms at ${server} (logs: ${logDir})\n`);
  } catch (err) {
    await killAll(Object.values(pids));
    if (pgDataDir) stopPostgres(pgDataDir);
    process.stderr.write(`\nreal hosting cluster failed to start; logs kept in ${logDir}\n`);
    throw err;
  }
}
