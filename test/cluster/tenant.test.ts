import { execFileSync } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { ChildProcess } from 'child_process';
import { Testing } from 'cdk8s';
import { DB_PROVISION_SQL, K8sControlPlane, KubeflexHosting } from '../../lib';
import {
  ClusterState,
  freePort,
  killAll,
  kubectl,
  loadState,
  makePki,
  runPg,
  waitReady,
  writeKubeconfig,
} from './harness';
import { runPod } from './pod-to-process';

const state: ClusterState = loadState();
const suite = state.skipped ? describe.skip : describe;
if (state.skipped) console.warn(`### SKIPPED real tenant boot tests: ${state.skipped}`);

interface Tenant {
  name: string;
  dir: string;
  kubeconfig: string;
  dbPassword: string;
  procs: Record<string, ChildProcess>;
  start: () => Promise<number>;
  stop: () => Promise<void>;
}

/** Synthesizes a K8sControlPlane and boots it from its own manifests as local processes. */
async function bootTenant(name: string): Promise<Tenant> {
  const app = Testing.app();
  const hosting = new KubeflexHosting(app, 'hosting');
  const objects = Testing.synth(new K8sControlPlane(app, name, { hosting }));
  const get = (kind: string, n: string) => objects.find((o) => o.kind === kind && o.metadata.name === n);
  const dir = path.join(state.dir, 'tenants', name);
  const pki = path.join(dir, 'pki-src');
  makePki(pki);
  const [kinePort, apiPort, kcmPort] = [await freePort(), await freePort(), await freePort()];
  const server = `https://127.0.0.1:${apiPort}`;
  writeKubeconfig(path.join(dir, 'cm.kubeconfig'), server, pki, 'kcm');
  const kubeconfig = path.join(dir, 'admin.kubeconfig');
  writeKubeconfig(kubeconfig, server, pki, 'admin', name);
  const dbPassword = randomBytes(16).toString('hex');

  // The provisioning Job, run with its own command: only host/port and the script path are mapped.
  const job = get('Job', `db-${name}`).spec.template.spec.containers[0];
  fs.writeFileSync(path.join(dir, 'provision.sql'), DB_PROVISION_SQL);
  const jobArgs = job.args.map((a: string) =>
    a
      .replace(/^--host=.*/, '--host=127.0.0.1')
      .replace(/^--port=.*/, `--port=${state.pgPort}`)
      .replace('/provision/', `${dir}/`),
  );
  execFileSync(job.command[0], jobArgs, {
    env: { ...process.env, PGPASSWORD: state.pgPassword, TENANT_DB_PASSWORD: dbPassword, PGSSLMODE: 'prefer' },
    stdio: 'pipe',
  });

  const read = (f: string) => fs.readFileSync(path.join(pki, f), 'utf8');
  const certs = Object.fromEntries(
    [
      'ca.crt',
      'ca.key',
      'apiserver.crt',
      'apiserver.key',
      'front-proxy-client.crt',
      'front-proxy-client.key',
      'sa.key',
      'sa.pub',
    ].map((k) => [k, read(k)]),
  );
  const opts = {
    binDir: state.binDir,
    volumeData: {
      'k8s-certs': { ...certs, 'front-proxy-ca.crt': certs['ca.crt'] },
      'cm-kubeconfig': { kubeconfig: fs.readFileSync(path.join(dir, 'cm.kubeconfig'), 'utf8') },
    },
    secretValues: { 'kine-postgres/password': dbPassword },
    rewrite: [
      ['127.0.0.1:2379', `127.0.0.1:${kinePort}`],
      ['postgres-postgresql.kubeflex-system.svc:5432', `127.0.0.1:${state.pgPort}`],
      ['--secure-port=9444', `--secure-port=${apiPort}`],
      ['--secure-port=10257', `--secure-port=${kcmPort}`],
      ['--bind-address=0.0.0.0', '--bind-address=127.0.0.1'],
    ] as [string, string][],
    rootDir: dir,
    logDir: state.logDir,
    extraArgs: { 'kube-apiserver': ['--bind-address=127.0.0.1'] },
  };
  const tenant: Tenant = {
    name,
    dir,
    kubeconfig,
    dbPassword,
    procs: {},
    start: async () => {
      const t0 = Date.now();
      tenant.procs = {
        ...runPod(get('Deployment', 'kube-apiserver').spec.template.spec, opts, `${name}-apiserver`),
      };
      await waitReady(`${server}/readyz`, pki, tenant.procs['kube-apiserver'], 90_000);
      const readyMs = Date.now() - t0;
      tenant.procs = {
        ...tenant.procs,
        ...runPod(get('Deployment', 'kube-controller-manager').spec.template.spec, opts, `${name}-kcm`),
      };
      fs.mkdirSync(path.join(state.dir, 'pids'), { recursive: true });
      for (const [c, p] of Object.entries(tenant.procs))
        fs.writeFileSync(path.join(state.dir, 'pids', `${name}-${c}`), String(p.pid));
      return readyMs;
    },
    stop: async () => {
      await killAll(Object.values(tenant.procs).map((p) => p.pid!));
    },
  };
  return tenant;
}

const k = (t: Tenant, args: string[]) => kubectl({ kubeconfig: t.kubeconfig }, args);
async function eventually<T>(fn: () => T, timeoutMs = 60_000): Promise<T> {
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

suite('a k8s tenant booted from its own synthesized spec', () => {
  let a: Tenant;
  let b: Tenant;
  beforeAll(async () => {
    a = await bootTenant('tenant-a');
    b = await bootTenant('tenant-b');
    await Promise.all([a.start(), b.start()]);
  }, 180_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test('a namespace created in the tenant becomes Active', () => {
    k(a, ['create', 'namespace', 'team']);
    expect(k(a, ['get', 'ns', 'team', '-o', 'jsonpath={.status.phase}']).stdout).toBe('Active');
  });

  test('the controller manager mints ServiceAccounts and tokens', async () => {
    await eventually(() => k(a, ['get', 'serviceaccount', 'default', '-n', 'team']));
    await eventually(() => k(a, ['get', 'configmap', 'kube-root-ca.crt', '-n', 'team']));
    const token = k(a, ['create', 'token', 'default', '-n', 'team']).stdout.trim();
    expect(token.split('.')).toHaveLength(3);
  }, 90_000);

  test('deleting a namespace garbage-collects its objects and the namespace', async () => {
    k(a, ['create', 'namespace', 'doomed']);
    k(a, ['create', 'configmap', 'c1', '-n', 'doomed', '--from-literal=x=y']);
    k(a, ['delete', 'namespace', 'doomed', '--wait=false']);
    await eventually(() => {
      const r = kubectl({ kubeconfig: a.kubeconfig }, ['get', 'ns', '--no-headers', '-o', 'name']).stdout;
      if (r.includes('namespace/doomed')) throw new Error('still there');
    }, 90_000);
  }, 120_000);

  test('tenants share PostgreSQL but not data: roles cannot reach the other database', () => {
    k(a, ['create', 'configmap', 'only-in-a', '-n', 'default']);
    expect(() => k(b, ['get', 'configmap', 'only-in-a', '-n', 'default'])).toThrow(/NotFound|not found/);
    const connect = (role: string, pw: string, db: string) =>
      execFileSync(
        'psql',
        [
          `postgres://${role}:${pw}@127.0.0.1:${state.pgPort}/${db}?sslmode=disable`,
          '-Atc',
          'select count(*) from kine',
        ],
        {
          encoding: 'utf8',
          stdio: 'pipe',
        },
      );
    expect(Number(connect('tenant_a', a.dbPassword, 'tenant_a').trim())).toBeGreaterThan(0);
    expect(() => connect('tenant_a', a.dbPassword, 'tenant_b')).toThrow(/permission denied for database "tenant_b"/);
    expect(() => connect('tenant_b', b.dbPassword, 'tenant_a')).toThrow(/permission denied for database "tenant_a"/);
    expect(() => connect('tenant_a', 'wrong', 'tenant_a')).toThrow(/password authentication failed/);
  });

  test('data survives a restart of the tenant processes and of PostgreSQL', async () => {
    k(a, ['create', 'configmap', 'survivor', '-n', 'default', '--from-literal=k=v']);
    await a.stop();
    await a.start();
    expect(k(a, ['get', 'configmap', 'survivor', '-n', 'default', '-o', 'jsonpath={.data.k}']).stdout).toBe('v');
    runPg('pg_ctl', [
      '-D',
      state.pgDataDir,
      // Without a log file pg_ctl hands its stdout pipe to the server and never returns.
      '-l',
      path.join(state.logDir, 'postgres.log'),
      '-m',
      'fast',
      '-w',
      'restart',
      '-o',
      `-p ${state.pgPort} -c listen_addresses=127.0.0.1 -k ${state.pgSocketDir} -c fsync=off`,
    ]);
    const v = await eventually(
      () => k(a, ['get', 'configmap', 'survivor', '-n', 'default', '-o', 'jsonpath={.data.k}']).stdout,
      60_000,
    );
    expect(v).toBe('v');
  }, 180_000);
});
