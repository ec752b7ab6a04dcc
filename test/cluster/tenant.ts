// A k8s tenant booted from its own synthesized manifests as local processes (shared by tests and bench/).
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as https from 'https';
import * as path from 'path';
import { Testing } from 'cdk8s';
import { parse } from 'yaml';
import { K8sControlPlane, K8sControlPlaneProps, KubeflexHosting } from '../../lib';
import { encryptionConfig } from '../../lib/controller/core';
import { provisionTenantDatabase } from '../../lib/datastore/provision';
import { decodeHostingConfig } from '../../lib/hosting-config';
import { tenantNames } from '../../lib/names';
import { HOSTING_CONFIGMAP } from '../../lib/wire';
import { testApp } from '../helpers';
import { ClusterState, freePort, makePki, waitReady, writeKubeconfig } from './harness';
import { ContainerProcess, runPod } from './pod-to-process';

/**
 * Makes a k8s tenant's role and database as the controller does: the default hosting install's server settings
 * (sslmode verify-full against the server name, here routed to the test server on loopback), as its superuser.
 * Rejects with the provisioner's refusal when it refuses.
 */
export async function provisionLikeController(
  state: Pick<ClusterState, 'pgPort' | 'pgPassword' | 'pgCa'>,
  name: string,
  dbPassword: string,
  mark = `kubeflex:test-uid-of-${name}`,
): Promise<void> {
  const app = testApp();
  const config = Testing.synth(new KubeflexHosting(app, 'hosting')).find(
    (o) => o.kind === 'ConfigMap' && o.metadata.name === HOSTING_CONFIGMAP,
  ).data;
  const pg = decodeHostingConfig(config).postgres!;
  const names = tenantNames(name);
  await provisionTenantDatabase(
    pg,
    state.pgPassword,
    { database: names.database, role: names.databaseRole, password: dbPassword, mark },
    { [`${pg.host}:${pg.port}`]: `127.0.0.1:${state.pgPort}` },
    state.pgCa.cert,
  );
}

/** The objects a K8sControlPlane named `name` synthesizes (default hosting install, optional extra props). */
export function synthTenant(name: string, props: Omit<K8sControlPlaneProps, 'hosting'> = {}): any[] {
  const app = testApp();
  const hosting = new KubeflexHosting(app, 'hosting');
  return Testing.synth(new K8sControlPlane(app, name, { ...props, hosting }));
}

export interface Tenant {
  name: string;
  dir: string;
  kubeconfig: string;
  dbPassword: string;
  procs: Record<string, ContainerProcess>;
  /**
   * Starts the tenant's processes and resolves with the ms to /readyz (fails after timeoutMs, default 120 s), asked
   * every pollMs (default 200 ms).
   */
  start: (timeoutMs?: number, pollMs?: number) => Promise<number>;
  stop: () => Promise<void>;
}

/**
 * A booted tenant's API server URL and the admin's client TLS options, for raw HTTPS requests (watches, pprof,
 * /readyz?verbose) that kubectl does not make. Reads the openssl-made PKI, so not for tenants booted with `minted`.
 */
export function adminAccess(t: Pick<Tenant, 'kubeconfig' | 'dir'>): {
  server: string;
  tls: { ca: Buffer; cert: Buffer; key: Buffer };
} {
  const pki = path.join(t.dir, 'pki-src');
  return {
    server: parse(fs.readFileSync(t.kubeconfig, 'utf8')).clusters[0].cluster.server as string,
    tls: {
      ca: fs.readFileSync(path.join(pki, 'ca.crt')),
      cert: fs.readFileSync(path.join(pki, 'admin.crt')),
      key: fs.readFileSync(path.join(pki, 'admin.key')),
    },
  };
}

/** What a burst of writes came to: the final status code of each, the 429s retried, and the seconds it took. */
export interface WriteBurst {
  codes: number[];
  refused: number;
  seconds: number;
}

/**
 * `count` ConfigMap creates at once in `default`, as `user` (the admin impersonates it: system:masters is exempt from
 * the API server's in-flight limits), each retried 1 s after a 429 as client-go does; -1 for no answer within 120 s.
 */
export async function writeBurst(
  access: ReturnType<typeof adminAccess>,
  count: number,
  user: string,
  prefix: string,
): Promise<WriteBurst> {
  const create = (name: string) =>
    new Promise<number>((resolve) => {
      const req = https.request(
        `${access.server}/api/v1/namespaces/default/configmaps`,
        {
          ...access.tls,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'Impersonate-User': user },
          timeout: 120_000,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? -1));
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(-1));
      req.end(JSON.stringify({ metadata: { name }, data: { value: 'x'.repeat(100) } }));
    });
  let refused = 0;
  const t0 = Date.now();
  const codes = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      for (;;) {
        const code = await create(`${prefix}-${i}`);
        if (code !== 429) return code;
        refused++;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }),
  );
  return { codes, refused, seconds: (Date.now() - t0) / 1000 };
}

/** Secrets the runtime controller minted for a tenant, used instead of openssl-made test PKI. */
export interface MintedTenantSecrets {
  /** Data of Secret `k8s-certs`. */
  certs: Record<string, string>;
  /** Key `kubeconfig` of Secret `cm-kubeconfig`. */
  cmKubeconfig: string;
  /** Key `kubeconfig-incluster` of Secret `admin-kubeconfig`. */
  adminKubeconfig: string;
  /** Key `password` of Secret `kine-postgres`. */
  dbPassword: string;
  /** Key `mark` of Secret `kubeflex-system/<cp>-db-credentials` (`kubeflex:<ControlPlane UID>`). */
  dbMark?: string;
  /** Key `encryption-config.yaml` of Secret `encryption-config`. */
  encryptionConfig: string;
  /** Key `ca.crt` of Secret `kine-postgres`: the PostgreSQL CA kine verifies the server with. */
  dbCa: string;
  /** The runtime controller made the role and database itself: kine connects to what it made, nothing is provisioned here. */
  provisioned?: boolean;
}

/**
 * Synthesizes a K8sControlPlane and boots it from its own manifests as local processes, with test PKI made by
 * openssl or, when `minted` is given, with the Secrets the runtime controller minted.
 */
export async function bootTenant(
  state: Pick<ClusterState, 'dir' | 'pgPort' | 'pgPassword' | 'pgCa' | 'binDir' | 'logDir'>,
  name: string,
  minted?: MintedTenantSecrets,
  apiPort?: number,
  objects: any[] = synthTenant(name),
  /** Contents of further volumes by volume name (e.g. a ConfigMap the test stands in for). */
  extraVolumeData: Record<string, Record<string, string>> = {},
): Promise<Tenant> {
  const get = (kind: string, n: string) => objects.find((o) => o.kind === kind && o.metadata.name === n);
  const dir = path.join(state.dir, 'tenants', name);
  const pki = path.join(dir, 'pki-src');
  const [kinePort, kcmPort] = [await freePort(), await freePort()];
  apiPort ??= await freePort();
  const server = `https://127.0.0.1:${apiPort}`;
  const kubeconfig = path.join(dir, 'admin.kubeconfig');
  if (minted) {
    // The minted kubeconfigs name in-cluster URLs; the processes listen on loopback (a SAN of the minted cert).
    fs.mkdirSync(pki, { recursive: true });
    for (const [k, v] of Object.entries(minted.certs)) fs.writeFileSync(path.join(pki, k), v);
    const toLoopback = (text: string) => text.replace(/server: https:\/\/\S+/, `server: ${server}`);
    fs.writeFileSync(path.join(dir, 'cm.kubeconfig'), toLoopback(minted.cmKubeconfig));
    fs.writeFileSync(kubeconfig, toLoopback(minted.adminKubeconfig), { mode: 0o600 });
    const user = parse(minted.adminKubeconfig).users[0].user;
    fs.writeFileSync(path.join(pki, 'admin.crt'), Buffer.from(user['client-certificate-data'], 'base64'));
    fs.writeFileSync(path.join(pki, 'admin.key'), Buffer.from(user['client-key-data'], 'base64'));
  } else {
    makePki(pki);
    writeKubeconfig(path.join(dir, 'cm.kubeconfig'), server, pki, 'kcm');
    writeKubeconfig(kubeconfig, server, pki, 'admin', name);
  }
  const dbPassword = minted?.dbPassword ?? randomBytes(16).toString('hex');

  if (!minted?.provisioned) await provisionLikeController(state, name, dbPassword, minted?.dbMark);

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
      // The minted front-proxy CA (its own since review M3); the openssl test PKI has one CA for both.
      'k8s-certs': { ...certs, 'front-proxy-ca.crt': minted?.certs['front-proxy-ca.crt'] ?? certs['ca.crt'] },
      'cm-kubeconfig': { kubeconfig: fs.readFileSync(path.join(dir, 'cm.kubeconfig'), 'utf8') },
      'audit-policy': get('ConfigMap', 'audit-policy').data,
      'kine-postgres': { 'ca.crt': minted?.dbCa ?? state.pgCa.cert },
      'encryption-config': {
        'encryption-config.yaml': minted?.encryptionConfig ?? encryptionConfig(randomBytes(32).toString('base64')),
      },
      ...extraVolumeData,
    },
    secretValues: { 'kine-postgres/password': dbPassword },
    rewrite: [
      ['127.0.0.1:2379', `127.0.0.1:${kinePort}`],
      // kine verifies the server (verify-full): connect by a name its certificate carries.
      ['postgres-postgresql.kubeflex-system.svc:5432', `localhost:${state.pgPort}`],
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
    start: async (timeoutMs = 120_000, pollMs = 200) => {
      const t0 = Date.now();
      fs.mkdirSync(path.join(state.dir, 'pids'), { recursive: true });
      // Global teardown kills what these files name, so a restarted container's new pid is recorded too.
      const recordPid = (c: string, pid: number) =>
        fs.writeFileSync(path.join(state.dir, 'pids', `${name}-${c}`), String(pid));
      tenant.procs = {
        ...runPod(get('Deployment', 'kube-apiserver').spec.template.spec, opts, `${name}-apiserver`, recordPid),
      };
      for (const [c, p] of Object.entries(tenant.procs)) recordPid(c, p.pid);
      // No fail-fast on exit: a container that exits is restarted, as in a pod.
      await waitReady(`${server}/readyz`, pki, undefined, timeoutMs, 'admin', pollMs);
      const readyMs = Date.now() - t0;
      // Every KCM replica as its own process (own health port), so leader election runs among them.
      const kcmSpec = get('Deployment', 'kube-controller-manager');
      for (let i = 0; i < (kcmSpec.spec.replicas ?? 1); i++) {
        const port = i === 0 ? kcmPort : await freePort();
        const replicaOpts = {
          ...opts,
          rewrite: opts.rewrite.map(([from, to]): [string, string] =>
            from === '--secure-port=10257' ? [from, `--secure-port=${port}`] : [from, to],
          ),
        };
        const suffix = i === 0 ? '' : `-${i}`;
        const kcm = runPod(kcmSpec.spec.template.spec, replicaOpts, `${name}-kcm${suffix}`, (c, pid) =>
          recordPid(`${c}${suffix}`, pid),
        );
        for (const [c, p] of Object.entries(kcm)) {
          recordPid(`${c}${suffix}`, p.pid);
          tenant.procs[`${c}${suffix}`] = p;
        }
      }
      return readyMs;
    },
    stop: async () => {
      await Promise.all(Object.values(tenant.procs).map((p) => p.stop()));
    },
  };
  return tenant;
}
