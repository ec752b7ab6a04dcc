// The runtime controller, run as its real binary (build/lib/controller/main.js) against its own real hosting
// cluster (kube-apiserver + kine + KCM) and a second real API server acting as an adopted cluster.
import { ChildProcess, execFileSync, spawn, spawnSync } from 'child_process';
import { createPrivateKey, X509Certificate } from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { parse, stringify } from 'yaml';
import {
  ExternalControlPlane,
  HostControlPlane,
  K3sControlPlane,
  K8sControlPlane,
  KubeflexHosting,
  PostCreateHook,
  synthesizeAtomically,
  VClusterControlPlane,
} from '../../lib';
import { HOST_NO_OFF_CLUSTER_KUBECONFIG } from '../../lib/controller/core';
import { TENANT_DB_CONNECTION_LIMIT } from '../../lib/wire';
import {
  applySynthesized,
  ClusterState,
  HOSTING_KCM_CONTROLLERS,
  killAll,
  kubectl,
  loadState,
  markDeploymentReady,
  markJobSucceeded,
  psql,
  startCluster,
  supplyPostgresCa,
  TestCluster,
  waitFor,
} from './harness';
import { bootTenant, Tenant } from './tenant';

const state: ClusterState = loadState();
const suite = state.skipped ? describe.skip : describe;
if (state.skipped) console.warn(`### SKIPPED runtime controller tests: ${state.skipped}`);

const MAIN = path.resolve(__dirname, '../../build/lib/controller/main.js');
jest.setTimeout(180_000);

interface Running {
  proc: ChildProcess;
  log: string;
}

suite('runtime controller on a real API server', () => {
  let hosting: TestCluster;
  let adopted: TestCluster;
  let tmp: string;
  let controller: Running | undefined;
  let tenant: Tenant | undefined;
  const connectTo: string[] = [];
  let starts = 0;
  let controllerKubeconfig = '';

  const k = (args: string[], input?: string) => kubectl(hosting, args, input).stdout;
  const json = (args: string[]) => JSON.parse(k([...args, '-o', 'json']));
  const secret = (ns: string, name: string): Record<string, string> | undefined => {
    try {
      const s = json(['get', 'secret', '-n', ns, name]);
      return Object.fromEntries(
        Object.entries(s.data ?? {}).map(([kk, v]) => [kk, Buffer.from(v as string, 'base64').toString()]),
      );
    } catch {
      return undefined;
    }
  };
  /** Merges `data` into kubeflex-config (a null value removes the key). */
  const patchConfig = (data: Record<string, string | null>) =>
    k([
      'patch',
      'configmap',
      '-n',
      'kubeflex-system',
      'kubeflex-config',
      '--type=merge',
      '-p',
      JSON.stringify({ data }),
    ]);
  const condition = (cp: string, type: string) => {
    const c = (json(['get', 'cp', cp]).status?.conditions ?? []).find((x: any) => x.type === type);
    return c ? `${c.status}/${c.reason}${c.message ? `: ${c.message}` : ''}` : 'none';
  };
  /** The controller as the tests run it; `schedule` replaces its quick test schedule's flags. */
  function startController(schedule: Record<string, string> = {}): Running {
    starts++;
    const log = path.join(state.logDir, `controller-${starts}.log`);
    const out = fs.openSync(log, 'a');
    const flags = { 'requeue-not-ready': '500ms', 'requeue-hooks': '500ms', resync: '3s', ...schedule };
    const proc = spawn(
      process.execPath,
      [
        MAIN,
        `--kubeconfig=${controllerKubeconfig || hosting.kubeconfig}`,
        '--health-port=0',
        ...Object.entries(flags).map(([f, v]) => `--${f}=${v}`),
        '--token-renew-fraction=0.02',
        '--log-level=debug',
        ...connectTo.map((c) => `--connect-to=${c}`),
      ],
      { stdio: ['ignore', out, out] },
    );
    fs.closeSync(out);
    return { proc, log };
  }
  async function stopController(): Promise<void> {
    if (controller) await killAll([controller.proc.pid!]);
    controller = undefined;
  }
  const logLines = (r: Running) =>
    fs
      .readFileSync(r.log, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));

  /** namespace/name=resourceVersion of every Secret, to prove nothing was rewritten. */
  const secretVersions = () =>
    JSON.stringify(
      k([
        'get',
        'secrets',
        '-A',
        '-o',
        'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}={.metadata.resourceVersion} {end}',
      ]),
    );
  /** What the constructs emit for every tenant namespace: the namespace and the controller's Secret access there. */
  const tenantNamespace = (ns: string) => {
    k(['create', 'ns', ns]);
    // What the constructs emit: the plane's label marks the namespace as the plane's own.
    k(['label', 'ns', ns, `tenancy.kflex.kubestellar.org/control-plane=${ns.replace(/-system$/, '')}`]);
    k([
      'create',
      'rolebinding',
      'kubeflex-controller',
      '-n',
      ns,
      '--clusterrole=kubeflex-controller-tenant',
      '--serviceaccount=kubeflex-system:kubeflex-controller-manager',
    ]);
  };
  /** A host-type tenant written by hand (as HostControlPlane would synthesize it). */
  const hostTenant = (name: string) => {
    tenantNamespace(`${name}-system`);
    k(['create', 'sa', name, '-n', `${name}-system`]);
    k(
      ['apply', '--server-side', '-f', '-'],
      stringify({
        apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
        kind: 'ControlPlane',
        metadata: { name },
        spec: { type: 'host' },
      }),
    );
  };

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(state.dir, 'controller-'));
    [hosting, adopted] = await Promise.all([
      startCluster(state, 'ctrlhost', HOSTING_KCM_CONTROLLERS),
      startCluster(state, 'adopted'),
    ]);
    const files = synthesizeAtomically(
      (app) => {
        const h = new KubeflexHosting(app, 'hosting');
        const hook = new PostCreateHook(h, 'hook', {
          hosting: h,
          name: 'smoke',
          templates: [
            {
              apiVersion: 'batch/v1',
              kind: 'Job',
              metadata: { name: 'smoke-{{.ControlPlaneName}}' },
              spec: {
                template: {
                  spec: {
                    restartPolicy: 'Never',
                    containers: [
                      {
                        name: 'kubectl',
                        image: 'registry.k8s.io/kubectl:v1.32.2',
                        args: ['get', 'ns', 'kube-system'],
                        env: [{ name: 'KUBECONFIG', value: '/etc/kube/kubeconfig-incluster' }],
                        volumeMounts: [{ name: 'kubeconfig', mountPath: '/etc/kube', readOnly: true }],
                        securityContext: {
                          allowPrivilegeEscalation: false,
                          runAsNonRoot: true,
                          runAsUser: 65532,
                          capabilities: { drop: ['ALL'] },
                          seccompProfile: { type: 'RuntimeDefault' },
                        },
                      },
                    ],
                    volumes: [{ name: 'kubeconfig', secret: { secretName: 'admin-kubeconfig' } }],
                  },
                },
              },
            },
          ],
        });
        new K8sControlPlane(app, 't1', { hosting: h, postCreateHooks: [{ hook }], waitForPostCreateHooks: true });
        new K3sControlPlane(app, 'k1', { hosting: h });
        new VClusterControlPlane(app, 'v1', { hosting: h });
        new HostControlPlane(app, 'h1', { hosting: h });
        new ExternalControlPlane(app, 'e1', {
          hosting: h,
          bootstrapSecret: { name: 'e1-bootstrap' },
          tokenExpirationSeconds: 600,
        });
      },
      path.join(tmp, 'dist'),
    );
    applySynthesized(hosting, files);
    // What `kflex adopt` writes: the adopted cluster's kubeconfig in the bootstrap Secret.
    k([
      'create',
      'secret',
      'generic',
      'e1-bootstrap',
      '-n',
      'kubeflex-system',
      `--from-file=kubeconfig-incluster=${adopted.kubeconfig}`,
    ]);
    k(['label', 'secret', '-n', 'kubeflex-system', 'e1-bootstrap', 'tenancy.kflex.kubestellar.org/control-plane=e1']);
    // The shared Postgres of the test harness plays the bundled one; the controller reaches it through --connect-to
    // and verifies it against its CA, supplied here as an operator's own CA.
    supplyPostgresCa(hosting.kubeconfig, state);
    connectTo.push(`postgres-postgresql.kubeflex-system.svc:5432=127.0.0.1:${state.pgPort}`);
    controller = startController();
  });

  afterAll(async () => {
    await stopController();
    await tenant?.stop();
    await Promise.all([hosting?.stop(), adopted?.stop()]);
  });

  test('mints the k8s PKI: certificates verify against the minted CA with the right SANs and usages', async () => {
    const certs = await waitFor('k8s-certs', () => secret('t1-system', 'k8s-certs'));
    expect(Object.keys(certs).sort()).toEqual(
      [
        'apiserver-kubelet-client.crt',
        'apiserver-kubelet-client.key',
        'apiserver.crt',
        'apiserver.key',
        'ca.crt',
        'ca.key',
        'front-proxy-ca.crt',
        'front-proxy-ca.key',
        'front-proxy-client.crt',
        'front-proxy-client.key',
        'sa.key',
        'sa.pub',
      ].sort(),
    );
    const ca = new X509Certificate(certs['ca.crt']);
    expect(ca.ca).toBe(true);
    // A front-proxy CA of its own (security review M3).
    expect(certs['front-proxy-ca.crt']).not.toBe(certs['ca.crt']);
    expect(new X509Certificate(certs['front-proxy-ca.crt']).ca).toBe(true);
    const api = new X509Certificate(certs['apiserver.crt']);
    expect(api.verify(ca.publicKey)).toBe(true);
    for (const host of [
      't1.t1-system.svc.cluster.local',
      't1.t1-system',
      'kubernetes.default.svc',
      't1.localtest.me',
      'kubeflex-control-plane',
    ]) {
      expect({ host, ok: api.checkHost(host) }).toEqual({ host, ok: host });
    }
    expect(api.checkHost('t2.t1-system.svc')).toBeUndefined();
    // One year by default, not KubeFlex's ten.
    const days = (Date.parse(api.validTo) - Date.now()) / 86400_000;
    expect(days).toBeGreaterThan(364);
    expect(days).toBeLessThan(366);
    // openssl agrees, with the purposes each certificate is used for.
    for (const [f, purpose, caKey] of [
      ['apiserver.crt', 'sslserver', 'ca.crt'],
      ['front-proxy-client.crt', 'sslclient', 'front-proxy-ca.crt'],
      ['apiserver-kubelet-client.crt', 'sslclient', 'ca.crt'],
    ]) {
      fs.writeFileSync(path.join(tmp, 'ca.crt'), certs[caKey]);
      fs.writeFileSync(path.join(tmp, f), certs[f]);
      expect(
        execFileSync(
          'openssl',
          ['verify', '-purpose', purpose, '-CAfile', path.join(tmp, 'ca.crt'), path.join(tmp, f)],
          { encoding: 'utf8' },
        ),
      ).toMatch(/: OK/);
    }
    const kubeconfigs = await waitFor('admin-kubeconfig', () => secret('t1-system', 'admin-kubeconfig'));
    expect(Object.keys(kubeconfigs).sort()).toEqual(['kubeconfig', 'kubeconfig-incluster']);
    const off = parse(kubeconfigs.kubeconfig);
    expect(off.clusters[0]).toMatchObject({ name: 't1-cluster', cluster: { server: 'https://t1.localtest.me:9443' } });
    expect(off.users[0].name).toBe('t1-admin');
    expect(off['current-context']).toBe('t1');
    expect(parse(kubeconfigs['kubeconfig-incluster']).clusters[0].cluster.server).toBe(
      'https://t1.t1-system.svc.cluster.local',
    );
    const client = new X509Certificate(Buffer.from(off.users[0].user['client-certificate-data'], 'base64'));
    expect(client.verify(ca.publicKey)).toBe(true);
    // A group bound to cluster-admin by the controller, not system:masters (review M4).
    expect(client.subject).toBe('O=kubeflex:admins\nCN=kubernetes-admin');
    const cm = parse((await waitFor('cm-kubeconfig', () => secret('t1-system', 'cm-kubeconfig'))).kubeconfig);
    expect(new X509Certificate(Buffer.from(cm.users[0].user['client-certificate-data'], 'base64')).subject).toBe(
      'CN=system:kube-controller-manager',
    );
    // The database password: one value where the controller keeps it and kine reads it, nowhere in a manifest.
    const db = await waitFor('db credentials', () => secret('kubeflex-system', 't1-db-credentials'));
    expect(db.password).toHaveLength(32);
    expect((await waitFor('kine-postgres', () => secret('t1-system', 'kine-postgres'))).password).toBe(db.password);
    // PostgreSQL TLS (M2): the operator's CA is kept, the server certificate minted under it for the Service names;
    // kine gets the CA certificate only.
    const pgTls = await waitFor('postgres TLS', () => {
      const t = secret('kubeflex-system', 'postgres-postgresql-tls');
      return t?.['tls.crt'] ? t : undefined;
    });
    expect(pgTls['ca.crt']).toBe(state.pgCa.cert);
    expect(pgTls['ca.key']).toBe(state.pgCa.key);
    const pgServer = new X509Certificate(pgTls['tls.crt']);
    expect(pgServer.verify(new X509Certificate(state.pgCa.cert).publicKey)).toBe(true);
    expect(pgServer.subjectAltName).toBe(
      'DNS:postgres-postgresql.kubeflex-system.svc, DNS:postgres-postgresql.kubeflex-system.svc.cluster.local, ' +
        'DNS:postgres-postgresql.kubeflex-system, DNS:postgres-postgresql, DNS:localhost',
    );
    expect(pgServer.checkPrivateKey(createPrivateKey(pgTls['tls.key']))).toBe(true);
    expect(Object.keys(secret('t1-system', 'kine-postgres')!).sort()).toEqual(['ca.crt', 'password']);
    expect(secret('t1-system', 'kine-postgres')!['ca.crt']).toBe(state.pgCa.cert);
    // The bundled Postgres' superuser password.
    expect(
      (await waitFor('postgres password', () => secret('kubeflex-system', 'postgres-postgresql')))['postgres-password'],
    ).toHaveLength(32);
  });

  test('status walks Synced -> Unavailable -> WaitingForPostCreateHooks -> Available, with a kubeconfig that reaches the tenant', async () => {
    await waitFor('t1 Synced', () => condition('t1', 'Synced') === 'True/ReconcileSuccess');
    // The controller reaches the test server (verify-full against its CA), but the superuser password it minted for
    // the bundled PostgreSQL is not the test server's yet: the plane says why it has no database, then what else waits.
    await waitFor('the database reason', () =>
      /^False\/Unavailable: database t1 on postgres-postgresql\.kubeflex-system\.svc:5432 not provisioned: password authentication failed for user "postgres"( \(asked again after 5000 ms\))?; Deployment t1-system\/kube-apiserver: 0\/1 replicas ready/.test(
        condition('t1', 'Ready'),
      ),
    );
    const cp = json(['get', 'cp', 't1']);
    expect(cp.status.secretRef).toEqual({
      namespace: 't1-system',
      name: 'admin-kubeconfig',
      key: 'kubeconfig',
      inClusterKey: 'kubeconfig-incluster',
    });
    expect(cp.status.observedGeneration).toBe(cp.metadata.generation);
    // No finalizer before the database was made: a plane that never provisioned must drop nothing (H2).
    expect(cp.metadata.finalizers).toBeUndefined();
    expect(secret('kubeflex-system', 't1-db-credentials')!.provisioned).toBeUndefined();
    expect(cp.metadata.annotations?.['kflex.kubestellar.org/booted']).toBeUndefined();

    // The controller connects as the superuser whose password it minted: give the test server that role, as the
    // bundled Postgres image does from the Secret at first start. The controller then makes t1's role and database.
    const pg = { pgPort: state.pgPort, pgSocketDir: state.pgSocketDir };
    const superPassword = secret('kubeflex-system', 'postgres-postgresql')!['postgres-password'];
    psql(
      pg,
      `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ctrl_super') THEN CREATE ROLE ctrl_super SUPERUSER LOGIN; END IF; END $$`,
    );
    psql(pg, `ALTER ROLE ctrl_super PASSWORD '${superPassword}'`);
    patchConfig({ postgresSuperuser: 'ctrl_super' });
    await waitFor('finalizer after provisioning', () =>
      (json(['get', 'cp', 't1']).metadata.finalizers ?? []).includes('kflex.kubestellar.org/finalizer'),
    );
    // What the controller made: the database marked with the plane's UID, and its record of it (a digest, no password).
    expect(secret('kubeflex-system', 't1-db-credentials')!.provisioned).toMatch(/^[0-9a-f]{64}$/);
    expect(psql(pg, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 't1'").trim()).toBe(
      `kubeflex:${cp.metadata.uid}`,
    );
    // Its password is stored as a SCRAM verifier it computed: the text never reached the server.
    expect(psql(pg, "SELECT rolpassword FROM pg_authid WHERE rolname = 't1'").trim()).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(condition('t1', 'Ready')).toMatch(
      /^False\/Unavailable: Deployment t1-system\/kube-apiserver: 0\/1 replicas ready/,
    );

    // Boot the tenant from its synthesized Deployments with exactly what the controller minted and made.
    tenant = await bootTenant(state, 't1', {
      certs: secret('t1-system', 'k8s-certs')!,
      cmKubeconfig: secret('t1-system', 'cm-kubeconfig')!.kubeconfig,
      adminKubeconfig: secret('t1-system', 'admin-kubeconfig')!['kubeconfig-incluster'],
      dbPassword: secret('t1-system', 'kine-postgres')!.password,
      dbMark: secret('kubeflex-system', 't1-db-credentials')!.mark,
      encryptionConfig: secret('t1-system', 'encryption-config')!['encryption-config.yaml'],
      dbCa: secret('t1-system', 'kine-postgres')!['ca.crt'],
      provisioned: true,
    });
    await tenant.start();
    const apiPort = /127\.0\.0\.1:(\d+)/.exec(fs.readFileSync(tenant.kubeconfig, 'utf8'))![1];
    // The minted in-cluster kubeconfig, unchanged but for where to connect (TLS still checks the in-cluster name).
    const minted = parse(secret('t1-system', 'admin-kubeconfig')!['kubeconfig-incluster']);
    minted.clusters[0].cluster.server = `https://127.0.0.1:${apiPort}`;
    minted.clusters[0].cluster['tls-server-name'] = 't1.t1-system.svc.cluster.local';
    const kc = path.join(tmp, 't1.kubeconfig');
    fs.writeFileSync(kc, stringify(minted), { mode: 0o600 });
    const kubectlT1 = (...args: string[]) =>
      spawnSync('kubectl', [`--kubeconfig=${kc}`, ...args], { encoding: 'utf8' });
    // Authenticated, but not an admin until the controller bound kubeflex:admins to cluster-admin in the tenant.
    expect(kubectlT1('get', 'ns', 'kube-system', '-o', 'name').stderr).toMatch(
      /namespaces "kube-system" is forbidden: User "kubernetes-admin" cannot get resource "namespaces"/,
    );

    // Restart the controller with the route to the tenant (as it would have in-cluster) and compare Secrets.
    const before = secretVersions();
    const first = controller!;
    await stopController();
    connectTo.push(`t1.t1-system.svc.cluster.local:443=127.0.0.1:${apiPort}`);
    // From here on the controller runs with its own ServiceAccount's token: the synthesized least-privilege RBAC
    // must be enough for everything below (status, hooks, adoption, bad input, finalization).
    const token = k([
      'create',
      'token',
      'kubeflex-controller-manager',
      '-n',
      'kubeflex-system',
      '--duration=1h',
    ]).trim();
    const admin = parse(fs.readFileSync(hosting.kubeconfig, 'utf8'));
    admin.users[0].user = { token };
    controllerKubeconfig = path.join(tmp, 'controller.kubeconfig');
    fs.writeFileSync(controllerKubeconfig, stringify(admin), { mode: 0o600 });
    controller = startController();

    // No kubelet: mark the Deployment ready through its status, as the kubelet and deployment controller would.
    markDeploymentReady(hosting, 't1-system', 'kube-apiserver');
    await waitFor('WaitingForPostCreateHooks', () =>
      condition('t1', 'Ready').startsWith('False/WaitingForPostCreateHooks'),
    );
    expect(condition('t1', 'Ready')).toMatch(/smoke: Job smoke-t1 not succeeded/);
    expect(json(['get', 'cp', 't1']).status).toMatchObject({
      postCreateHooks: { smoke: false },
      postCreateHookCompleted: false,
    });
    // The hook's own status aggregates the planes that use it (written by the controller with its own RBAC).
    const hookReady = () => {
      const st = json(['get', 'pch', 'smoke']).status;
      const c = st?.conditions?.find((x: any) => x.type === 'Ready');
      return c ? `${c.status}/${c.reason}/${c.message}` : '';
    };
    await waitFor('hook status waiting', () => hookReady().startsWith('False/Unavailable'));
    expect(hookReady()).toBe('False/Unavailable/completed in 0 of 1 control planes that use it; waiting in t1');
    expect(json(['get', 'pch', 'smoke']).status.observedGeneration).toBe(
      json(['get', 'pch', 'smoke']).metadata.generation,
    );
    expect(k(['get', 'pch', 'smoke'])).toMatch(/^NAME\s+SYNCED\s+READY\s+AGE\nsmoke\s+True\s+False/);

    markJobSucceeded(hosting, 't1-system', 'smoke-t1');
    await waitFor('Available', () => condition('t1', 'Ready') === 'True/Available');
    // Its API answered ready: marked booted, so a later wake through the activator need not wait for bootstrap hooks.
    expect(json(['get', 'cp', 't1']).metadata.annotations?.['kflex.kubestellar.org/booted']).toBe('true');
    expect(kubectlT1('get', 'ns', 'kube-system', '-o', 'name').stdout.trim()).toBe('namespace/kube-system');
    const binding = JSON.parse(kubectlT1('get', 'clusterrolebinding', 'kubeflex:admins', '-o', 'json').stdout);
    expect(binding).toMatchObject({
      roleRef: { kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'Group', name: 'kubeflex:admins' }],
    });
    expect(json(['get', 'cp', 't1']).status).toMatchObject({
      postCreateHooks: { smoke: true },
      postCreateHookCompleted: true,
    });
    await waitFor('hook status complete', () => hookReady().startsWith('True/'));
    expect(hookReady()).toBe('True/Available/completed in all 1 control planes that use it');
    // The walk is recorded as Events on the ControlPlane (kubectl describe cp t1).
    const reasons = json(['get', 'events', '-n', 'default', '--field-selector', 'involvedObject.name=t1']).items.map(
      (e: any) => `${e.type}/${e.reason}`,
    );
    expect(reasons).toEqual(
      expect.arrayContaining(['Normal/SyncSuccess', 'Warning/WaitingForPostCreateHooks', 'Normal/Available']),
    );
    // Not Ready at its creation is no news (SyncSuccess says it was reconciled): no event, one write less per plane.
    expect(reasons).not.toContain('Warning/Unavailable');

    // The restart minted nothing: every Secret has the resourceVersion it had before.
    const after = secretVersions();
    const mine = (s: string) =>
      JSON.parse(s)
        .split(' ')
        .filter(
          (x: string) =>
            /^(t1|k1|v1|h1|e1)-system\/|^kubeflex-system\/(t1-db|postgres)/.test(x) &&
            !/e1-system\/admin-kubeconfig/.test(x),
        )
        .sort();
    expect(mine(after)).toEqual(mine(before));
    expect(logLines(controller!).filter((l) => l.msg === 'secret created' && !/^e1-system/.test(l.secret))).toEqual([]);
    expect(logLines(first).filter((l) => l.msg === 'secret created').length).toBeGreaterThan(5);
  });

  test("an idle plane's kube-controller-manager is parked after a minute without a write to its database, and a write starts it again; a read does not", async () => {
    const kcmReplicas = () => json(['get', 'deployment', '-n', 't1-system', 'kube-controller-manager']).spec.replicas;
    const parkedRecord = () => json(['get', 'cp', 't1']).metadata.annotations?.['kflex.kubestellar.org/parked-manager'];
    const setTimeout = (value: string | null) => patchConfig({ managerIdleTimeout: value });
    // The synthesized default (10 minutes), shortened to the floor for the test.
    expect(json(['get', 'configmap', '-n', 'kubeflex-system', 'kubeflex-config']).data.managerIdleTimeout).toBe('10m');
    expect(kcmReplicas()).toBe(1);
    setTimeout('60s');
    const parkedAt = Date.now();
    await waitFor('kube-controller-manager parked', () => kcmReplicas() === 0, 150_000);
    // Not before a minute without a write (the tenant's own API server and KCM wrote nothing meanwhile).
    expect(Date.now() - parkedAt).toBeGreaterThanOrEqual(55_000);
    expect(parkedRecord()).toBe('Deployment/kube-controller-manager=1');
    // Parked is not unready: the plane's API is what Ready says.
    expect(condition('t1', 'Ready')).toBe('True/Available');
    expect(logLines(controller!).some((l) => /kube-controller-manager parked/.test(l.msg))).toBe(true);
    // Switched off while parked: started again at the next pass; switched on again: parked again.
    setTimeout(null);
    await waitFor(
      'started again once parking is off',
      () => kcmReplicas() === 1 && parkedRecord() === undefined,
      40_000,
    );
    setTimeout('60s');
    await waitFor('parked again', () => kcmReplicas() === 0, 150_000);

    const minted = parse(secret('t1-system', 'admin-kubeconfig')!['kubeconfig-incluster']);
    const route = connectTo.find((c) => c.startsWith('t1.t1-system.svc.cluster.local:443='))!.split('=')[1];
    minted.clusters[0].cluster.server = `https://${route}`;
    minted.clusters[0].cluster['tls-server-name'] = 't1.t1-system.svc.cluster.local';
    const kc = path.join(tmp, 't1-client.kubeconfig');
    fs.writeFileSync(kc, stringify(minted), { mode: 0o600 });
    const t1 = (...args: string[]) => spawnSync('kubectl', [`--kubeconfig=${kc}`, ...args], { encoding: 'utf8' });
    // A read needs no KCM: it stays parked over the next looks (every 15 s, counters cached 10 s).
    expect(t1('get', 'ns', 'default', '-o', 'name').stdout).toBe('namespace/default\n');
    await new Promise((r) => global.setTimeout(r, 35_000));
    expect(kcmReplicas()).toBe(0);
    // A write: KCM back within a look, the counters' cache and PostgreSQL's statistics flush (10 s at most).
    const writeAt = Date.now();
    expect(t1('create', 'namespace', 'after-parking').status).toBe(0);
    await waitFor('kube-controller-manager started again', () => kcmReplicas() === 1, 60_000);
    expect(Date.now() - writeAt).toBeLessThan(45_000);
    await waitFor('record removed', () => parkedRecord() === undefined);
    setTimeout(null);
  }, 480_000);

  test('k3s: CAs to seed k3s with and k3s-config kubeconfigs signed by them', async () => {
    const cas = await waitFor('k3s-server-ca', () => secret('k1-system', 'k3s-server-ca'));
    expect(Object.keys(cas).sort()).toEqual([
      'client-ca.crt',
      'client-ca.key',
      'request-header-ca.crt',
      'request-header-ca.key',
      'server-ca.crt',
      'server-ca.key',
    ]);
    const cfg = await waitFor('k3s-config', () => secret('k1-system', 'k3s-config'));
    const inc = parse(cfg['config-incluster']);
    expect(inc.clusters[0].cluster.server).toBe('https://k3s.k1-system.svc');
    expect(Buffer.from(inc.clusters[0].cluster['certificate-authority-data'], 'base64').toString()).toBe(
      cas['server-ca.crt'],
    );
    const cert = new X509Certificate(Buffer.from(inc.users[0].user['client-certificate-data'], 'base64'));
    expect(cert.verify(new X509Certificate(cas['client-ca.crt']).publicKey)).toBe(true);
    expect(parse(cfg.config).clusters[0].cluster.server).toBe('https://k1.localtest.me:9443');
    expect(condition('k1', 'Synced')).toBe('True/ReconcileSuccess');
    expect(condition('k1', 'Ready')).toMatch(/^False\/Unavailable: StatefulSet k1-system\/k3s-server/);
  });

  test("vcluster: config-incluster derived from the syncer's kubeconfig", async () => {
    await waitFor('v1 waiting', () => condition('v1', 'Ready').includes('waiting for the vCluster syncer'));
    // What the vCluster syncer writes (no syncer can run here): its kubeconfig under key `config`.
    const syncer = fs
      .readFileSync(adopted.kubeconfig, 'utf8')
      .replace(/server: .*/, 'server: https://v1.localtest.me:9443');
    k(['create', 'secret', 'generic', 'vc-vcluster', '-n', 'v1-system', '--from-literal=config=' + syncer]);
    const s = await waitFor('config-incluster', () => {
      const data = secret('v1-system', 'vc-vcluster');
      return data?.['config-incluster'] ? data : undefined;
    });
    expect(parse(s['config-incluster']).clusters[0].cluster.server).toBe('https://vcluster.v1-system');
    expect(s.config).toBe(syncer);
  });

  test('host: a TokenRequest token of its ServiceAccount (24 h, renewed; no legacy token Secret), Ready once written', async () => {
    await waitFor('h1 Available', () => condition('h1', 'Ready').startsWith('True/Available'));
    // No off-cluster kubeconfig for a host plane, and the status says so instead of naming a missing key.
    expect(condition('h1', 'Ready')).toBe(`True/Available: ${HOST_NO_OFF_CLUSTER_KUBECONFIG}`);
    // Only planes of types that sleep are marked booted (the activator's shorter wake check).
    expect(json(['get', 'cp', 'h1']).metadata.annotations?.['kflex.kubestellar.org/booted']).toBeUndefined();
    expect(Object.keys(secret('h1-system', 'admin-kubeconfig')!)).toEqual(['kubeconfig-incluster']);
    const kc = parse(secret('h1-system', 'admin-kubeconfig')!['kubeconfig-incluster']);
    expect(kc.clusters[0].cluster.server).toBe('https://kubernetes.default.svc');
    const claims = JSON.parse(Buffer.from(kc.users[0].user.token.split('.')[1], 'base64url').toString());
    expect(claims.sub).toBe('system:serviceaccount:h1-system:h1');
    expect(claims.exp - claims.iat).toBe(86400);
    expect(Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64').toString()).toBe(
      json(['get', 'configmap', '-n', 'h1-system', 'kube-root-ca.crt']).data['ca.crt'],
    );
    expect(
      k([
        'get',
        'secrets',
        '-n',
        'h1-system',
        '--field-selector=type=kubernetes.io/service-account-token',
        '-o',
        'name',
      ]),
    ).toBe('');
    expect(json(['get', 'cp', 'h1']).status.secretRef).toEqual({
      namespace: 'h1-system',
      name: 'admin-kubeconfig',
      inClusterKey: 'kubeconfig-incluster',
    });
  });

  test("a hook's labels are merged into the labels of the ControlPlanes using it (KubeFlex's propagateLabels); KubeStellar's lookup finds it", async () => {
    k(
      ['apply', '-f', '-'],
      stringify({
        apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
        kind: 'PostCreateHook',
        metadata: {
          name: 'its-marker',
          // The second label would make the plane look synthesized to the materializer: never copied.
          labels: { 'kflex.kubestellar.io/cptype': 'its', 'app.kubernetes.io/part-of': 'kubeflex' },
        },
        spec: { templates: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'its-{{.ControlPlaneName}}' } }] },
      }),
    );
    hostTenant('its1');
    k([
      'patch',
      'cp',
      'its1',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { postCreateHooks: [{ hookName: 'its-marker' }] } }),
    ]);
    await waitFor('its1 labelled', () =>
      k(['get', 'cp', '-l', 'kflex.kubestellar.io/cptype=its', '-o', 'name']).includes(
        'controlplane.tenancy.kflex.kubestellar.org/its1',
      ),
    );
    expect(json(['get', 'cp', 'its1']).metadata.labels).toEqual({ 'kflex.kubestellar.io/cptype': 'its' });
  });

  test('external: token with the requested expiry on the adopted cluster, bootstrap Secret gone, renewed before expiry', async () => {
    await waitFor('e1 Available', () => condition('e1', 'Ready') === 'True/Available');
    const first = parse(secret('e1-system', 'admin-kubeconfig')!['kubeconfig-incluster']);
    // status.secretRef.key names a key that exists: the same kubeconfig serves off the hosting cluster.
    expect(json(['get', 'cp', 'e1']).status.secretRef).toEqual({
      namespace: 'e1-system',
      name: 'admin-kubeconfig',
      key: 'kubeconfig',
      inClusterKey: 'kubeconfig-incluster',
    });
    // One read: this controller renews the token every ~12 s, and two reads can straddle a renewal.
    const admin = secret('e1-system', 'admin-kubeconfig')!;
    expect(admin.kubeconfig).toBe(admin['kubeconfig-incluster']);
    expect(first['current-context']).toBe('e1');
    expect(first.users[0].name).toBe('e1');
    const claims = (t: string) => JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString());
    const c1 = claims(first.users[0].user.token);
    expect(c1.exp - c1.iat).toBe(600);
    expect(c1.sub).toBe('system:serviceaccount:kube-system:kubeflex');
    expect(() => k(['get', 'secret', '-n', 'kubeflex-system', 'e1-bootstrap'])).toThrow(/NotFound/);
    expect(
      kubectl(adopted, ['get', 'clusterrolebinding', 'kubeflex-clusterrolebinding', '-o', 'jsonpath={.roleRef.name}'])
        .stdout,
    ).toBe('cluster-admin');
    // The token works on the adopted cluster.
    const kc = path.join(tmp, 'e1.kubeconfig');
    fs.writeFileSync(kc, stringify(first), { mode: 0o600 });
    expect(
      execFileSync('kubectl', [`--kubeconfig=${kc}`, 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], {
        encoding: 'utf8',
      }),
    ).toBe('system:serviceaccount:kube-system:kubeflex');
    // --token-renew-fraction=0.02 of 600 s: renewed after 12 s, with the old token, the bootstrap Secret being gone.
    const renewed = await waitFor(
      'renewed token',
      () => {
        const t = parse(secret('e1-system', 'admin-kubeconfig')!['kubeconfig-incluster']).users[0].user.token;
        return t !== first.users[0].user.token && t;
      },
      40_000,
    );
    const c2 = claims(renewed);
    expect(c2.exp).toBeGreaterThan(c1.exp);
    expect(c2.exp - c2.iat).toBe(600);
    expect(condition('e1', 'Ready')).toBe('True/Available');
  });

  test('bad input gives Synced=False with a message; other tenants are still served', async () => {
    const cp = (name: string, spec: object) =>
      k(
        ['apply', '--server-side', '-f', '-'],
        stringify({
          apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
          kind: 'ControlPlane',
          metadata: { name },
          spec,
        }),
      );
    for (const ns of ['nohook-system', 'badkc-system', 'noboot-system']) tenantNamespace(ns);
    cp('nohook', { type: 'host', postCreateHooks: [{ hookName: 'nope' }] });
    // KubeFlex's CRD accepts the deprecated `ocm` type; we have no implementation: a terminal error, not a retry loop.
    cp('ocm1', { type: 'ocm' });
    k([
      'create',
      'secret',
      'generic',
      'badkc-bootstrap',
      '-n',
      'kubeflex-system',
      '--from-literal=kubeconfig-incluster=clusters: [oops',
    ]);
    k([
      'label',
      'secret',
      '-n',
      'kubeflex-system',
      'badkc-bootstrap',
      'tenancy.kflex.kubestellar.org/control-plane=badkc',
    ]);
    cp('badkc', {
      type: 'external',
      bootstrapSecretRef: {
        name: 'badkc-bootstrap',
        namespace: 'kubeflex-system',
        inClusterKey: 'kubeconfig-incluster',
      },
    });
    cp('noboot', {
      type: 'external',
      bootstrapSecretRef: {
        name: 'noboot-bootstrap',
        namespace: 'kubeflex-system',
        inClusterKey: 'kubeconfig-incluster',
      },
    });
    await waitFor('ocm1', () => condition('ocm1', 'Synced').startsWith('False'));
    expect(condition('ocm1', 'Synced')).toBe(
      'False/ReconcileError: spec.type "ocm" is not supported by this controller (k8s, k3s, vcluster, host, external)',
    );
    await waitFor('nohook', () => condition('nohook', 'Synced').startsWith('False'));
    expect(condition('nohook', 'Synced')).toBe(
      'False/ReconcileError: PostCreateHook "nope" not found (create it, or remove it from spec.postCreateHooks)',
    );
    await waitFor('badkc', () => condition('badkc', 'Synced').startsWith('False'));
    expect(condition('badkc', 'Synced')).toMatch(
      /^False\/ReconcileError: bootstrap Secret kubeflex-system\/badkc-bootstrap key "kubeconfig-incluster" is not a usable kubeconfig: not YAML/,
    );
    await waitFor('noboot', () => condition('noboot', 'Synced').startsWith('False'));
    expect(condition('noboot', 'Synced')).toBe(
      'False/ReconcileError: bootstrap Secret kubeflex-system/noboot-bootstrap not found: create it (kflex adopt does) with the kubeconfig of the cluster to adopt',
    );
    // Meanwhile a new tenant is served, and a hook created late is picked up (KubeFlex issue #319).
    hostTenant('h2');
    await waitFor('h2 Available', () => condition('h2', 'Ready').startsWith('True/Available'));
    k(
      ['apply', '-f', '-'],
      stringify({
        apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
        kind: 'PostCreateHook',
        metadata: { name: 'nope' },
        spec: { templates: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }] },
      }),
    );
    await waitFor('nohook synced', () => condition('nohook', 'Synced') === 'True/ReconcileSuccess');
    // The unsupported type was never retried with back-off (the others were).
    const backoffs = (cp: string) =>
      logLines(controller!).filter((l) => l.msg === 'requeue with backoff' && l.controlPlane === cp).length;
    expect(backoffs('ocm1')).toBe(0);
    expect(backoffs('badkc')).toBeGreaterThan(0);
  });

  test('survives an API-server restart: keeps running and serves a tenant created afterwards', async () => {
    const pid = controller!.proc.pid!;
    await hosting.restartApiserver();
    hostTenant('h3');
    await waitFor('h3 Available', () => condition('h3', 'Ready').startsWith('True/Available'));
    expect(controller!.proc.exitCode).toBeNull();
    expect(controller!.proc.pid).toBe(pid);
    expect(logLines(controller!).some((l) => l.msg === 'watch interrupted; re-listing')).toBe(true);
  });

  test('deleting a k8s ControlPlane drops its database and role, then garbage collection takes the rest', async () => {
    // The minted Secrets name the ControlPlane as their managing owner.
    expect(json(['get', 'secret', '-n', 't1-system', 'k8s-certs']).metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'ControlPlane', name: 't1', controller: true }),
    ]);
    const pg = { pgPort: state.pgPort, pgSocketDir: state.pgSocketDir };
    expect(psql(pg, "SELECT count(*) FROM pg_database WHERE datname = 't1'").trim()).toBe('1');
    await tenant?.stop();
    tenant = undefined;
    // The controller drops as the superuser it made t1's database as (ctrl_super, set above).
    k(['delete', 'cp', 't1', '--wait=false']);
    await waitFor('t1 gone', () => {
      try {
        k(['get', 'cp', 't1']);
        return false;
      } catch (e) {
        return /NotFound/.test(String(e));
      }
    });
    expect(psql(pg, "SELECT count(*) FROM pg_database WHERE datname = 't1'").trim()).toBe('0');
    expect(psql(pg, "SELECT count(*) FROM pg_roles WHERE rolname = 't1'").trim()).toBe('0');
    expect(secret('kubeflex-system', 't1-db-credentials')).toBeUndefined();
    // Owner references: the garbage collector removes the minted Secrets with the ControlPlane.
    await waitFor('k8s-certs collected', () => secret('t1-system', 'k8s-certs') === undefined);
    // `kubectl delete cp` alone takes the namespace (and all in it), as in KubeFlex.
    await waitFor('t1-system gone', () => {
      try {
        k(['get', 'ns', 't1-system']);
        return false;
      } catch (e) {
        return /NotFound/.test(String(e));
      }
    });
  });

  test('kubectl delete cp of a host plane removes its namespace; a namespace without the plane label is kept', async () => {
    expect(json(['get', 'cp', 'h1']).metadata.finalizers).toEqual(['kflex.kubestellar.org/finalizer']);
    k(['delete', 'cp', 'h1', '--wait=true', '--timeout=60s']);
    await waitFor('h1-system gone', () => {
      try {
        k(['get', 'ns', 'h1-system']);
        return false;
      } catch (e) {
        return /NotFound/.test(String(e));
      }
    });
    // A namespace without the plane's label is not the plane's: not served, and not deleted with it.
    k(['create', 'ns', 'unowned-system']);
    k(
      ['apply', '--server-side', '-f', '-'],
      stringify({
        apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
        kind: 'ControlPlane',
        metadata: { name: 'unowned' },
        spec: { type: 'host' },
      }),
    );
    await waitFor('unowned refused', () => condition('unowned', 'Synced').startsWith('False'));
    k(['delete', 'cp', 'unowned', '--wait=true', '--timeout=60s']);
    expect(json(['get', 'ns', 'unowned-system']).status.phase).toBe('Active');
    expect(
      logLines(controller!).some(
        (l) =>
          l.msg === 'namespace kept: it does not carry the control plane label' && l.namespace === 'unowned-system',
      ),
    ).toBe(true);
  });

  test('a sleeping k8s plane whose database could not be made says so, and is looked at again on the not-Ready schedule, not at the resync', async () => {
    // PostgreSQL behind a proxy that first drops every connection (a server not reachable yet), then passes them on.
    let open = false;
    const proxy = net.createServer((c) => {
      if (!open) return void c.destroy();
      const up = net.connect(state.pgPort, '127.0.0.1');
      c.on('error', () => up.destroy());
      up.on('error', () => c.destroy());
      c.pipe(up).pipe(c);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const saved = [...connectTo];
    try {
      await stopController();
      const pgPort = (proxy.address() as net.AddressInfo).port;
      connectTo.splice(
        0,
        connectTo.length,
        ...saved.map((c) => c.replace(/=127\.0\.0\.1:\d+$/, `=127.0.0.1:${pgPort}`)),
      );
      // A resync far away: only the not-Ready schedule (1 s, doubling) can bring the next pass.
      controller = startController({ 'requeue-not-ready': '1s', resync: '10m' });
      tenantNamespace('zz-system');
      k(
        ['apply', '--server-side', '-f', '-'],
        stringify({
          apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
          kind: 'ControlPlane',
          metadata: { name: 'zz', annotations: { 'kflex.kubestellar.org/sleeping': 'true' } },
          spec: { type: 'k8s' },
        }),
      );
      await waitFor('zz asleep without its database', () =>
        /^False\/Sleeping: asleep: .*; not ready to wake: database zz on .* not provisioned: /.test(
          condition('zz', 'Ready'),
        ),
      );
      // Nothing about the plane changes from here on: no event, only its schedule can look at it again.
      open = true;
      const opened = Date.now();
      await waitFor('zz provisioned while asleep', () => secret('kubeflex-system', 'zz-db-credentials')?.provisioned);
      expect(Date.now() - opened).toBeLessThan(60_000);
      await waitFor('zz Sleeping without a reason not to wake', () => {
        const ready = condition('zz', 'Ready');
        return ready.startsWith('False/Sleeping: asleep: ') && !ready.includes('not ready to wake');
      });
      const pg = { pgPort: state.pgPort, pgSocketDir: state.pgSocketDir };
      expect(psql(pg, "SELECT count(*) FROM pg_database WHERE datname = 'zz'").trim()).toBe('1');
      expect(psql(pg, "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'zz'").trim()).toBe(
        String(TENANT_DB_CONNECTION_LIMIT),
      );
      // A role an older controller made (another connection limit, and the digest it recorded) is made again at the
      // plane's next pass (here: an event of its namespace).
      psql(pg, 'ALTER ROLE zz CONNECTION LIMIT 25');
      k([
        'patch',
        'secret',
        '-n',
        'kubeflex-system',
        'zz-db-credentials',
        '--type=merge',
        '-p',
        JSON.stringify({ data: { provisioned: Buffer.from('digest of an older controller').toString('base64') } }),
      ]);
      k(['create', 'deployment', 'poke', '-n', 'zz-system', '--image=registry.k8s.io/pause:3.10', '--replicas=0']);
      await waitFor(
        'zz role made again with the current limit',
        () =>
          psql(pg, "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'zz'").trim() ===
          String(TENANT_DB_CONNECTION_LIMIT),
      );
      // Not `--wait=true`: a blocking kubectl would stop this process's proxy, through which the controller drops.
      k(['delete', 'cp', 'zz', '--wait=false']);
      await waitFor(
        'zz gone',
        () => !k(['get', 'cp', '-o', 'name']).split('\n').includes('controlplane.tenancy.kflex.kubestellar.org/zz'),
      );
      expect(psql(pg, "SELECT count(*) FROM pg_database WHERE datname = 'zz'").trim()).toBe('0');
    } finally {
      await stopController();
      connectTo.splice(0, connectTo.length, ...saved);
      controller = startController();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});
