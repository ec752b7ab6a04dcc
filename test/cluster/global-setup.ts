import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  apiserverArgs,
  ClusterState,
  freePort,
  killAll,
  makePki,
  psql,
  startPostgres,
  startProcess,
  STATE_FILE,
  stopPostgres,
  waitReady,
  writeKubeconfig,
} from './harness';

/** Starts the hosting cluster once per Jest run and records how to reach it in STATE_FILE. */
export default async function globalSetup(): Promise<void> {
  const binDir = process.env.KFLEX_BIN_DIR ?? path.join(os.homedir(), '.cache/cdk8s-kubeflex/bin');
  const missing = ['kube-apiserver', 'kube-controller-manager', 'kine'].filter(
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
    const pg = await startPostgres(dir, logDir);
    pgDataDir = pg.dataDir;
    const pgPassword = randomBytes(16).toString('hex');
    psql({ pgPort: pg.port, pgSocketDir: pg.socketDir }, `ALTER ROLE postgres PASSWORD '${pgPassword}'`);

    const pki = path.join(dir, 'pki');
    makePki(pki);
    const kinePort = await freePort();
    const kine = startProcess(
      'kine',
      path.join(binDir, 'kine'),
      [`--listen-address=127.0.0.1:${kinePort}`, '--metrics-bind-address=0'],
      logDir,
      {
        KINE_ENDPOINT: `postgres://postgres:${pgPassword}@127.0.0.1:${pg.port}/kine_hosting?sslmode=disable`,
      },
    );
    pids.kine = kine.pid!;
    const port = await freePort();
    const apiserver = startProcess(
      'kube-apiserver',
      path.join(binDir, 'kube-apiserver'),
      apiserverArgs(pki, port, `http://127.0.0.1:${kinePort}`),
      logDir,
    );
    pids['kube-apiserver'] = apiserver.pid!;
    const server = `https://127.0.0.1:${port}`;
    const readyMs = await waitReady(`${server}/readyz`, pki, apiserver);
    const kubeconfig = path.join(dir, 'admin.kubeconfig');
    writeKubeconfig(kubeconfig, server, pki);
    writeKubeconfig(path.join(dir, 'kcm.kubeconfig'), server, pki, 'kcm');
    const kcm = startProcess(
      'kube-controller-manager',
      path.join(binDir, 'kube-controller-manager'),
      [
        `--kubeconfig=${path.join(dir, 'kcm.kubeconfig')}`,
        '--bind-address=127.0.0.1',
        '--secure-port=0',
        '--leader-elect=false',
        '--controllers=serviceaccount-controller,serviceaccount-token-controller,namespace-controller,garbage-collector-controller,root-ca-certificate-publisher-controller,job-controller',
        `--service-account-private-key-file=${pki}/sa.key`,
        `--root-ca-file=${pki}/ca.crt`,
        '--use-service-account-credentials=true',
      ],
      logDir,
    );
    pids['kube-controller-manager'] = kcm.pid!;
    const state: ClusterState = {
      dir,
      logDir,
      kubeconfig,
      server,
      pgPort: pg.port,
      pgDataDir,
      pgSocketDir: pg.socketDir,
      pgPassword,
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
