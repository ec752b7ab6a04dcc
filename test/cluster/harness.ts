// A real hosting cluster on loopback, envtest-style: a private PostgreSQL, kine on it, kube-apiserver and
// kube-controller-manager built from the published Go modules (scripts/prepare-binaries.sh). No mocks.
import { ChildProcess, execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as https from 'https';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { BASE_DIR } from '../../lib/synth';

export interface ClusterState {
  /** Set when the cluster could not be started here; tests report themselves skipped with this reason. */
  readonly skipped?: string;
  readonly dir: string;
  readonly logDir: string;
  readonly kubeconfig: string;
  readonly server: string;
  readonly pgPort: number;
  readonly pgDataDir: string;
  readonly pgSocketDir: string;
  /** Superuser password for TCP connections (test-only, random per run). */
  readonly pgPassword: string;
  /**
   * The test PostgreSQL's TLS CA (PEM), valid long enough for the controller to keep it when given as an operator's
   * CA. The server certificate it signed names `localhost` and the bundled Service, as the controller's would.
   */
  readonly pgCa: { readonly cert: string; readonly key: string };
  readonly pids: Record<string, number>;
  readonly binDir: string;
}

// One file per Jest run (global setup exports the name to the workers), so concurrent runs never share a cluster.
process.env.KFLEX_STATE_FILE ??= path.join(
  os.tmpdir(),
  `kflex-jest-cluster-${process.getuid?.() ?? 0}-${process.pid}.json`,
);
export const STATE_FILE = process.env.KFLEX_STATE_FILE;
const PG_BIN = process.env.KFLEX_PG_BIN ?? '/usr/lib/postgresql/15/bin';

const handedOut = new Set<number>();

/**
 * A free TCP port on 127.0.0.1 (racy like envtest's with other processes), never one this process handed out
 * before: many tenants are booted before any of them listens, and the kernel may offer a just-released port again.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/** Runs a command as the unprivileged `postgres` user when we are root (initdb refuses root). */
function pgCommand(bin: string, args: string[]): [string, string[]] {
  const exe = path.join(PG_BIN, bin);
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', exe, ...args]] : [exe, args];
}

export function runPg(bin: string, args: string[]): string {
  const [cmd, a] = pgCommand(bin, args);
  return execFileSync(cmd, a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * A CA made with the openssl CLI in `dir` (`ca.crt`/`ca.key`, P-256, valid `caDays`), and a function that signs
 * `<name>.crt`/`<name>.key` with it for a subject and an extension file's text.
 */
function opensslCa(dir: string, cn: string, caDays: number) {
  fs.mkdirSync(dir, { recursive: true });
  const o = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  // A fresh P-256 key with no passphrase, for every certificate.
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout'];
  o('req', '-x509', ...newKey, 'ca.key', '-out', 'ca.crt', '-days', String(caDays), '-subj', `/CN=${cn}`);
  const sign = (name: string, subj: string, ext: string, days: number) => {
    o('req', ...newKey, `${name}.key`, '-out', `${name}.csr`, '-subj', subj);
    fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
    o(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      String(days),
      '-extfile',
      `${name}.ext`,
    );
  };
  return { o, sign };
}

/** A CA and a PostgreSQL server certificate for the names the bundled server's certificate carries. */
export function makePostgresPki(dir: string): { ca: { cert: string; key: string }; cert: string; key: string } {
  const { sign } = opensslCa(dir, 'kflex-test-postgres-ca', 3650);
  sign(
    'server',
    '/CN=postgres-postgresql.kubeflex-system.svc',
    'subjectAltName=DNS:postgres-postgresql.kubeflex-system.svc,DNS:localhost\nextendedKeyUsage=serverAuth\n',
    30,
  );
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
  return { ca: { cert: read('ca.crt'), key: read('ca.key') }, cert: read('server.crt'), key: read('server.key') };
}

/**
 * Starts a private PostgreSQL cluster in `dir` on a fresh loopback port (never the machine's default cluster), with
 * TLS from `tls` (certificate and key PEM) when given.
 */
export async function startPostgres(
  dir: string,
  logDir: string,
  tls?: { cert: string; key: string },
  maxConnections = 500,
): Promise<{ port: number; dataDir: string; socketDir: string }> {
  const dataDir = path.join(dir, 'pg');
  const socketDir = path.join(dir, 'pgsock');
  fs.mkdirSync(socketDir, { recursive: true });
  const pgLog = path.join(logDir, 'postgres.log');
  fs.writeFileSync(pgLog, '');
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', 'postgres', dir, pgLog]);
  runPg('initdb', ['-A', 'trust', '-U', 'postgres', '-D', dataDir, '--no-sync']);
  // Password auth over TCP (tenants must present their own password); trust only on our private socket.
  fs.writeFileSync(
    path.join(dataDir, 'pg_hba.conf'),
    'local all postgres trust\nhost all all 127.0.0.1/32 scram-sha-256\n',
  );
  if (tls) {
    // PostgreSQL wants its key owned by the server's user, mode 0600.
    fs.writeFileSync(path.join(dataDir, 'server.crt'), tls.cert);
    fs.writeFileSync(path.join(dataDir, 'server.key'), tls.key, { mode: 0o600 });
    if (process.getuid?.() === 0)
      execFileSync('chown', ['postgres', path.join(dataDir, 'server.crt'), path.join(dataDir, 'server.key')]);
    // In the configuration file, so that restarts with other options keep TLS on.
    fs.appendFileSync(path.join(dataDir, 'postgresql.conf'), '\nssl = on\n');
  }
  const port = await freePort();
  runPg('pg_ctl', [
    '-D',
    dataDir,
    '-l',
    pgLog,
    '-w',
    '-o',
    `-p ${port} -c listen_addresses=127.0.0.1 -k ${socketDir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=${maxConnections}`,
    'start',
  ]);
  return { port, dataDir, socketDir };
}

export function stopPostgres(dataDir: string): void {
  try {
    runPg('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
  } catch {
    // already stopped
  }
}

/** psql as the superuser over the private socket. */
export function psql(state: Pick<ClusterState, 'pgPort' | 'pgSocketDir'>, sql: string, db = 'postgres'): string {
  const [cmd, a] = pgCommand('psql', [
    '-h',
    state.pgSocketDir,
    '-p',
    String(state.pgPort),
    '-U',
    'postgres',
    '-d',
    db,
    '-v',
    'ON_ERROR_STOP=1',
    '-At',
    '-c',
    sql,
  ]);
  return execFileSync(cmd, a, { encoding: 'utf8' });
}

/** Minimal PKI with the openssl CLI: a CA, a serving cert for 127.0.0.1, an admin client cert, an SA key pair. */
export function makePki(
  dir: string,
  opts: { cn?: string; sans?: string[]; extra?: Array<{ name: string; subj: string; ext: string }> } = {},
): void {
  const { o, sign: signFor } = opensslCa(dir, 'kflex-test-ca', 2);
  const sans = opts.sans ?? ['IP:127.0.0.1', 'DNS:localhost'];
  const sign = (name: string, subj: string, ext: string) => signFor(name, subj, ext, 2);
  sign(
    'apiserver',
    `/CN=${opts.cn ?? 'kube-apiserver'}`,
    `subjectAltName=${sans.join(',')}\nextendedKeyUsage=serverAuth\n`,
  );
  sign('admin', '/O=system:masters/CN=kubernetes-admin', 'extendedKeyUsage=clientAuth\n');
  sign('kcm', '/CN=system:kube-controller-manager', 'extendedKeyUsage=clientAuth\n');
  sign('front-proxy-client', '/CN=front-proxy-client', 'extendedKeyUsage=clientAuth\n');
  for (const c of opts.extra ?? []) sign(c.name, c.subj, c.ext);
  o('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key');
  o('pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub');
}

/** A kubeconfig with embedded client-certificate credentials. */
export function writeKubeconfig(file: string, server: string, pki: string, user = 'admin', name = 'kflex-test'): void {
  const b64 = (f: string) => fs.readFileSync(path.join(pki, f)).toString('base64');
  fs.writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters:
- name: ${name}
  cluster:
    server: ${server}
    certificate-authority-data: ${b64('ca.crt')}
users:
- name: ${name}
  user:
    client-certificate-data: ${b64(`${user}.crt`)}
    client-key-data: ${b64(`${user}.key`)}
contexts:
- name: ${name}
  context: {cluster: ${name}, user: ${name}}
current-context: ${name}
`,
    { mode: 0o600 },
  );
}

/** Spawns a long-running process with its output in `<logDir>/<name>.log`. */
export function startProcess(
  name: string,
  cmd: string,
  args: string[],
  logDir: string,
  env: NodeJS.ProcessEnv = {},
): ChildProcess {
  const log = fs.openSync(path.join(logDir, `${name}.log`), 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', log, log], env: { ...process.env, ...env }, detached: false });
  fs.closeSync(log);
  return child;
}

/** Polls `url` over mTLS until it answers 200 `ok`, failing fast if `child` exits. */
export async function waitReady(
  url: string,
  pki: string,
  child?: ChildProcess,
  timeoutMs = 90_000,
  user = 'admin',
  /** Between tries; each try is a TLS handshake, which adds up with many servers starting on the same cores. */
  intervalMs = 200,
): Promise<number> {
  const start = Date.now();
  let exited: number | null = null;
  child?.once('exit', (code) => (exited = code ?? -1));
  let last = '';
  while (Date.now() - start < timeoutMs) {
    if (exited !== null) throw new Error(`process exited with ${exited} before ${url} was ready`);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const req = https.get(
          url,
          {
            ca: fs.readFileSync(path.join(pki, 'ca.crt')),
            cert: fs.readFileSync(path.join(pki, `${user}.crt`)),
            key: fs.readFileSync(path.join(pki, `${user}.key`)),
            timeout: 2000,
          },
          (res) => {
            let data = '';
            res.on('data', (d) => (data += d));
            res.on('end', () =>
              res.statusCode === 200 ? resolve(data) : reject(new Error(`${res.statusCode} ${data}`)),
            );
          },
        );
        req.on('error', reject);
        req.on('timeout', () => req.destroy(new Error('timeout')));
      });
      if (body.trim() === 'ok') return Date.now() - start;
    } catch (e) {
      last = String(e);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms: ${last}`);
}

/** kube-apiserver flags for a loopback test server backed by kine at `etcd`. */
export function apiserverArgs(pki: string, port: number, etcd: string, extra: string[] = []): string[] {
  return [
    `--etcd-servers=${etcd}`,
    `--secure-port=${port}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--tls-cert-file=${pki}/apiserver.crt`,
    `--tls-private-key-file=${pki}/apiserver.key`,
    `--client-ca-file=${pki}/ca.crt`,
    '--authorization-mode=RBAC',
    '--service-cluster-ip-range=10.0.0.0/24',
    `--service-account-issuer=https://127.0.0.1:${port}`,
    `--service-account-key-file=${pki}/sa.pub`,
    `--service-account-signing-key-file=${pki}/sa.key`,
    '--endpoint-reconciler-type=none',
    `--cert-dir=${pki}`,
    ...extra,
  ];
}

/** Kills processes by pid (TERM, then KILL after a grace period). */
export async function killAll(pids: number[], graceMs = 10_000): Promise<void> {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
}

export function loadState(): ClusterState {
  return JSON.parse(fs.readFileSync(STATE_FILE, 'utf8')) as ClusterState;
}

/** kubectl against the test cluster; returns stdout and stderr, throwing with both on failure. */
export function kubectl(
  state: Pick<ClusterState, 'kubeconfig'>,
  args: string[],
  input?: string,
): { stdout: string; stderr: string } {
  const r = spawnSync('kubectl', [`--kubeconfig=${state.kubeconfig}`, ...args], {
    encoding: 'utf8',
    input,
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

/**
 * The requests an API server has served whose `apiserver_request_total` labels include all of `labels` (all codes
 * summed), from its own /metrics page.
 */
export function apiserverRequests(state: Pick<ClusterState, 'kubeconfig'>, labels: Record<string, string>): number {
  // The page is larger than spawnSync's default buffer.
  const metrics = execFileSync('kubectl', [`--kubeconfig=${state.kubeconfig}`, 'get', '--raw', '/metrics'], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let n = 0;
  for (const m of metrics.matchAll(/^apiserver_request_total\{([^}]*)\} (\S+)$/gm)) {
    const have = m[1].split(',');
    if (wanted.every((w) => have.includes(w))) n += Number(m[2]);
  }
  return n;
}

/** A kube-apiserver (with kine on the shared test Postgres and optionally a KCM) started on loopback. */
export interface TestCluster {
  server: string;
  kubeconfig: string;
  pki: string;
  pids: Record<string, number>;
  readyMs: number;
  stop: () => Promise<void>;
  /** Kills kube-apiserver and starts it again on the same port and storage. */
  restartApiserver: () => Promise<void>;
}

/**
 * Starts a cluster named `name`: PKI in `<dir>/<name>`, kine on database `kine_<name>`, kube-apiserver, and a
 * kube-controller-manager running `controllers` (none when empty). Logs go to `<logDir>/<name>-*.log`.
 */
export async function startCluster(
  opts: { dir: string; logDir: string; binDir: string; pgPort: number; pgPassword: string },
  name: string,
  controllers: string[] = [],
  /** More kube-apiserver flags (files they name are the caller's). */
  extraApiserverArgs: string[] = [],
): Promise<TestCluster> {
  const pids: Record<string, number> = {};
  const stop = () => killAll(Object.values(pids));
  try {
    const pki = path.join(opts.dir, name);
    makePki(pki);
    const kinePort = await freePort();
    const kine = startProcess(
      `${name}-kine`,
      path.join(opts.binDir, 'kine'),
      [`--listen-address=127.0.0.1:${kinePort}`, '--metrics-bind-address=0'],
      opts.logDir,
      { KINE_ENDPOINT: `postgres://postgres:${opts.pgPassword}@127.0.0.1:${opts.pgPort}/kine_${name}?sslmode=disable` },
    );
    pids.kine = kine.pid!;
    const port = await freePort();
    const server = `https://127.0.0.1:${port}`;
    const startApiserver = async () => {
      const apiserver = startProcess(
        `${name}-kube-apiserver`,
        path.join(opts.binDir, 'kube-apiserver'),
        apiserverArgs(pki, port, `http://127.0.0.1:${kinePort}`, extraApiserverArgs),
        opts.logDir,
      );
      pids['kube-apiserver'] = apiserver.pid!;
      return waitReady(`${server}/readyz`, pki, apiserver);
    };
    const readyMs = await startApiserver();
    const restartApiserver = async () => {
      await killAll([pids['kube-apiserver']]);
      await startApiserver();
    };
    const kubeconfig = path.join(pki, 'admin.kubeconfig');
    writeKubeconfig(kubeconfig, server, pki, 'admin', name);
    if (controllers.length) {
      writeKubeconfig(path.join(pki, 'kcm.kubeconfig'), server, pki, 'kcm', name);
      const kcm = startProcess(
        `${name}-kube-controller-manager`,
        path.join(opts.binDir, 'kube-controller-manager'),
        [
          `--kubeconfig=${path.join(pki, 'kcm.kubeconfig')}`,
          '--bind-address=127.0.0.1',
          '--secure-port=0',
          '--leader-elect=false',
          `--controllers=${controllers.join(',')}`,
          `--service-account-private-key-file=${pki}/sa.key`,
          `--root-ca-file=${pki}/ca.crt`,
          '--use-service-account-credentials=true',
        ],
        opts.logDir,
      );
      pids['kube-controller-manager'] = kcm.pid!;
    }
    return { server, kubeconfig, pki, pids, readyMs, stop, restartApiserver };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The hosting cluster's controllers: what the tests and the runtime controller rely on (no scheduler, no kubelet). */
export const HOSTING_KCM_CONTROLLERS = [
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'legacy-serviceaccount-token-cleaner-controller',
  'namespace-controller',
  'garbage-collector-controller',
  'root-ca-certificate-publisher-controller',
  // PVCs (k3s, vcluster, postgres) carry the pvc-protection finalizer; without this their namespaces never go.
  'persistentvolumeclaim-protection-controller',
];

/** Server-side applies synthesized files: `00-base/` (CRDs, Namespaces) first, CRDs waited for, then the rest. */
export function applySynthesized(cluster: Pick<ClusterState, 'kubeconfig'>, files: string[]): void {
  const apply = (f: string) => kubectl(cluster, ['apply', '--server-side', '--field-manager=cdk8s-kubeflex', '-f', f]);
  const base = files.filter((f) => path.basename(path.dirname(f)) === BASE_DIR);
  for (const f of base) apply(f);
  if (base.some((f) => /^kind: CustomResourceDefinition$/m.test(fs.readFileSync(f, 'utf8'))))
    waitForKubeflexCrds(cluster);
  for (const f of files.filter((x) => !base.includes(x))) apply(f);
}

/** Retries `fn` every 500 ms until it stops throwing; rethrows its last error after `timeoutMs`. */
export async function eventually<T>(fn: () => T, timeoutMs = 60_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    try {
      return fn();
    } catch (e) {
      if (Date.now() - start > timeoutMs) throw e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** Polls `fn` until it returns something truthy; fails naming `what` and the last value or error. */
export async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`,
  );
}

/** Marks a Deployment ready through its status, as the kubelet and deployment controller would (none run here). */
export function markDeploymentReady(cluster: Pick<ClusterState, 'kubeconfig'>, namespace: string, name: string): void {
  const generation = Number(
    kubectl(cluster, ['get', 'deployment', '-n', namespace, name, '-o', 'jsonpath={.metadata.generation}']).stdout,
  );
  const status = {
    observedGeneration: generation,
    replicas: 1,
    readyReplicas: 1,
    availableReplicas: 1,
    updatedReplicas: 1,
  };
  kubectl(cluster, [
    'patch',
    'deployment',
    '-n',
    namespace,
    name,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status }),
  ]);
}

/** Marks a Job succeeded through its status, as the job controller would (none runs in these clusters). */
export function markJobSucceeded(cluster: Pick<ClusterState, 'kubeconfig'>, namespace: string, name: string): void {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  kubectl(cluster, [
    'patch',
    'job',
    '-n',
    namespace,
    name,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({
      status: {
        startTime: now,
        completionTime: now,
        succeeded: 1,
        conditions: [
          { type: 'SuccessCriteriaMet', status: 'True', lastProbeTime: now, lastTransitionTime: now },
          { type: 'Complete', status: 'True', lastProbeTime: now, lastTransitionTime: now },
        ],
      },
    }),
  ]);
}

/** Waits until our CRDs (labelled part-of=kubeflex) are Established, so objects of their kinds can be applied. */
export function waitForKubeflexCrds(cluster: Pick<ClusterState, 'kubeconfig'>): void {
  kubectl(cluster, [
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd',
    '-l',
    'app.kubernetes.io/part-of=kubeflex',
  ]);
}

/** Starts the controller binary against `cluster` with `args`, its output in `<logDir>/<logName>`. */
export function spawnController(
  cluster: Pick<ClusterState, 'kubeconfig'>,
  logFile: string,
  args: string[],
): ChildProcess {
  const out = fs.openSync(logFile, 'a');
  const main = path.resolve(__dirname, '../../build/lib/controller/main.js');
  const proc = spawn(process.execPath, [main, `--kubeconfig=${cluster.kubeconfig}`, '--health-port=0', ...args], {
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  return proc;
}

/**
 * Gives a hosting cluster the test PostgreSQL's CA the way an operator supplies their own: Secret
 * `postgres-postgresql-tls` with `ca.crt` and `ca.key` only. The controller keeps that CA and mints the server
 * certificate under it, so kine and the controller verify the test server (which presents a certificate of that CA).
 */
export function supplyPostgresCa(kubeconfig: string, state: Pick<ClusterState, 'pgCa' | 'dir'>): void {
  const dir = fs.mkdtempSync(path.join(state.dir, 'pg-ca-'));
  fs.writeFileSync(path.join(dir, 'ca.crt'), state.pgCa.cert);
  fs.writeFileSync(path.join(dir, 'ca.key'), state.pgCa.key, { mode: 0o600 });
  execFileSync('kubectl', [
    `--kubeconfig=${kubeconfig}`,
    'create',
    'secret',
    'generic',
    'postgres-postgresql-tls',
    '-n',
    'kubeflex-system',
    `--from-file=ca.crt=${path.join(dir, 'ca.crt')}`,
    `--from-file=ca.key=${path.join(dir, 'ca.key')}`,
  ]);
  fs.rmSync(dir, { recursive: true });
}
