// Attacks of the security review (../shared/reference/reviews/security.md) replayed against the landed code on a real
// hosting cluster, with the real controller binary and a second real API server as an adopted cluster. Each test is
// named after its finding, asserts the exact error or status the attacker sees, and that nothing changed.
import { ChildProcess, execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as https from 'https';
import * as net from 'net';
import * as path from 'path';
import { Client } from 'pg';
import { parse, stringify } from 'yaml';
import {
  HostControlPlane,
  K8sControlPlane,
  KubeflexHosting,
  PostCreateHook,
  synthesizeAtomically,
  VClusterControlPlane,
} from '../../lib';
import { dropTenantDatabase } from '../../lib/datastore/drop';
import { kinePoolSize, TENANT_DB_CONNECTION_LIMIT, TENANT_DB_RESERVED_CONNECTIONS } from '../../lib/wire';
import {
  applySynthesized,
  ClusterState,
  HOSTING_KCM_CONTROLLERS,
  killAll,
  kubectl,
  loadState,
  spawnController,
  psql,
  startCluster,
  startPostgres,
  stopPostgres,
  TestCluster,
  waitFor,
} from './harness';
import { provisionLikeController } from './tenant';

const state: ClusterState = loadState();
const suite = state.skipped ? describe.skip : describe;
if (state.skipped) console.warn(`### SKIPPED security attack tests: ${state.skipped}`);
jest.setTimeout(120_000);

/** kubectl helpers on the hosting cluster that `get()` returns (set in a suite's beforeAll). */
function kubectlHelpers(get: () => TestCluster) {
  const k = (args: string[], input?: string) => kubectl(get(), args, input).stdout;
  const tryK = (args: string[], input?: string): { ok: boolean; out: string } => {
    try {
      return { ok: true, out: k(args, input) };
    } catch (e) {
      return { ok: false, out: String(e) };
    }
  };
  /** A bare ControlPlane's YAML. */
  const cp = (name: string, spec: object) =>
    stringify({ apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1', kind: 'ControlPlane', metadata: { name }, spec });
  /** `status/reason: message` of a ControlPlane condition, or "none". */
  const condition = (name: string, type: string) => {
    const c = (JSON.parse(k(['get', 'cp', name, '-o', 'json'])).status?.conditions ?? []).find(
      (x: any) => x.type === type,
    );
    return c ? `${c.status}/${c.reason}${c.message ? `: ${c.message}` : ''}` : 'none';
  };
  /** ClusterRole `name` with `verbs` on controlplanes (custom verbs included), bound to `subject` (`--user=…`). */
  const grantOnControlPlanes = (name: string, verbs: string[], subject: string) => {
    k(
      ['apply', '-f', '-'],
      stringify({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name },
        rules: [{ apiGroups: ['tenancy.kflex.kubestellar.org'], resources: ['controlplanes'], verbs }],
      }),
    );
    k(['create', 'clusterrolebinding', name, `--clusterrole=${name}`, subject]);
  };
  return { k, tryK, cp, condition, grantOnControlPlanes };
}

suite('a hostile tenant cannot escape (security review findings, replayed)', () => {
  let hosting: TestCluster;
  let adopted: TestCluster;
  let proc: ChildProcess | undefined;
  let dir: string;
  const { k, tryK, cp, condition, grantOnControlPlanes } = kubectlHelpers(() => hosting);
  const secretData = (ns: string, name: string) => tryK(['get', 'secret', '-n', ns, name, '-o', 'jsonpath={.data}']);

  beforeAll(async () => {
    [hosting, adopted] = await Promise.all([
      startCluster(state, 'sechost', HOSTING_KCM_CONTROLLERS),
      startCluster(state, 'secadopted'),
    ]);
    dir = fs.mkdtempSync(path.join(state.dir, 'security-'));
    const files = synthesizeAtomically(
      (app) => {
        // Two boot slots (not the default), as the boot-admission test below counts them.
        const h = new KubeflexHosting(app, 'hosting', { bootstrapSecretNamespaces: ['ks-release'], bootSlots: 2 });
        new HostControlPlane(app, 'victim', { hosting: h });
        new VClusterControlPlane(app, 'vcexec', { hosting: h });
        new VClusterControlPlane(app, 'vcfile', { hosting: h });
        new K8sControlPlane(app, 'keycloak', { hosting: h });
        // Asleep from the start: the boot-admission test wakes it and its API server goes first.
        new K8sControlPlane(app, 'sleeper', { hosting: h, sleeping: true });
      },
      path.join(dir, 'dist'),
    );
    applySynthesized(hosting, files);
    proc = spawnController(hosting, path.join(state.logDir, 'security-controller.log'), ['--resync=5s']);
    await waitFor('victim Ready', () => condition('victim', 'Ready').startsWith('True/Available'), 60_000);
  }, 180_000);

  afterAll(async () => {
    if (proc) await killAll([proc.pid!]);
    await Promise.all([hosting?.stop(), adopted?.stop()]);
  });

  test('C1 confused deputy: a ControlPlane cannot point its bootstrap Secret at another tenant or change its type', () => {
    const victimBefore = secretData('victim-system', 'admin-kubeconfig');
    expect(victimBefore.ok).toBe(true);
    // The attack of the review: an external plane whose "bootstrap" is the victim's cluster-admin kubeconfig.
    const evil = tryK(
      ['apply', '--server-side', '-f', '-'],
      cp('evil', {
        type: 'external',
        bootstrapSecretRef: {
          namespace: 'victim-system',
          name: 'admin-kubeconfig',
          inClusterKey: 'kubeconfig-incluster',
        },
      }),
    );
    expect(evil.ok).toBe(false);
    expect(evil.out).toMatch(
      /The ControlPlane "evil" is invalid: <nil>: Invalid value: "object": spec.bootstrapSecretRef must name the Secret <name>-bootstrap in namespace kubeflex-system/,
    );
    // Switching an existing plane's type to external is refused too.
    k(['apply', '--server-side', '-f', '-'], cp('evil2', { type: 'host' }));
    const flip = tryK(['patch', 'cp', 'evil2', '--type=merge', '-p', JSON.stringify({ spec: { type: 'external' } })]);
    expect(flip.ok).toBe(false);
    expect(flip.out).toMatch(/spec: Invalid value: "object": spec.type is immutable/);
    // Token lifetimes are bounded.
    const long = tryK(
      ['apply', '--server-side', '-f', '-'],
      cp('longtoken', {
        type: 'external',
        bootstrapSecretRef: {
          namespace: 'kubeflex-system',
          name: 'longtoken-bootstrap',
          inClusterKey: 'kubeconfig-incluster',
        },
        tokenExpirationSeconds: 10 * 31536000,
      }),
    );
    expect(long.ok).toBe(false);
    expect(long.out).toMatch(
      /spec.tokenExpirationSeconds: Invalid value: 315360000: spec.tokenExpirationSeconds in body should be less than or equal to 31536000/,
    );
    // Nothing changed: the victim's Secret is intact, nobody holds a token on the adopted cluster.
    expect(secretData('victim-system', 'admin-kubeconfig')).toEqual(victimBefore);
    expect(() => kubectl(adopted, ['get', 'sa', '-n', 'kube-system', 'kubeflex'])).toThrow(/NotFound/);
  });

  test('C1 confused deputy: only an author who may read the bootstrap Secret may name it; then, unlabelled as KubeFlex writes it, it is used', async () => {
    // A kubeconfig Secret with the right name and no label, as KubeFlex's `kflex adopt` writes it.
    k([
      'create',
      'secret',
      'generic',
      'unmarked-bootstrap',
      '-n',
      'kubeflex-system',
      `--from-file=kubeconfig-incluster=${adopted.kubeconfig}`,
    ]);
    const spec = {
      type: 'external',
      bootstrapSecretRef: {
        namespace: 'kubeflex-system',
        name: 'unmarked-bootstrap',
        inClusterKey: 'kubeconfig-incluster',
      },
    };
    // An author who may create ControlPlanes but not read Secrets in kubeflex-system is refused at admission.
    grantOnControlPlanes('c1-author', ['create', 'get'], '--user=mallory');
    const refused = tryK(['--as=mallory', 'apply', '-f', '-'], cp('unmarked', spec));
    expect(refused.ok).toBe(false);
    expect(refused.out).toContain(
      'ControlPlane unmarked: spec.bootstrapSecretRef kubeflex-system/unmarked-bootstrap is refused: the controller reads it with its own rights and deletes it once used, so only an author who may get and delete that Secret may name it, and mallory may not',
    );
    expect(tryK(['get', 'cp', 'unmarked']).ok).toBe(false);
    expect(() => kubectl(adopted, ['get', 'sa', '-n', 'kube-system', 'kubeflex'])).toThrow(/NotFound/);
    // The admin who wrote it (KubeFlex's adopt flow) gets the cluster adopted: Ready, and the bootstrap Secret is gone.
    k(['create', 'ns', 'unmarked-system']);
    k(['label', 'ns', 'unmarked-system', 'tenancy.kflex.kubestellar.org/control-plane=unmarked']);
    k(['apply', '--server-side', '-f', '-'], cp('unmarked', spec));
    await waitFor('unmarked Ready', () => condition('unmarked', 'Ready').startsWith('True'), 60_000);
    expect(secretData('kubeflex-system', 'unmarked-bootstrap').ok).toBe(false);
    expect(kubectl(adopted, ['get', 'sa', '-n', 'kube-system', 'kubeflex', '-o', 'name']).stdout).toBe(
      'serviceaccount/kubeflex\n',
    );
  });

  test("C1 with KubeStellar's external ITS: a bootstrap Secret in the listed release namespace is used; elsewhere, or by an author who may not delete it, refused", async () => {
    // The chart's default: <cp>-bootstrap in its release namespace, unlabelled.
    k([
      'create',
      'secret',
      'generic',
      'relits-bootstrap',
      '-n',
      'ks-release',
      `--from-file=kubeconfig-incluster=${adopted.kubeconfig}`,
    ]);
    const spec = (namespace: string) => ({
      type: 'external',
      bootstrapSecretRef: { namespace, name: 'relits-bootstrap', inClusterKey: 'kubeconfig-incluster' },
    });
    // A namespace the admin did not list: the CRD says where bootstrap Secrets may be.
    const elsewhere = tryK(['apply', '-f', '-'], cp('relits', spec('default')));
    expect(elsewhere.out).toContain(
      'spec.bootstrapSecretRef must name the Secret <name>-bootstrap in namespace kubeflex-system or ks-release',
    );
    // An author who may read that Secret but not delete it: the controller would delete it for her, so refused.
    grantOnControlPlanes('relits-author', ['create', 'get'], '--user=reader');
    k(['create', 'role', 'read-boot', '-n', 'ks-release', '--verb=get', '--resource=secrets']);
    k(['create', 'rolebinding', 'read-boot', '-n', 'ks-release', '--role=read-boot', '--user=reader']);
    const refused = tryK(['--as=reader', 'apply', '-f', '-'], cp('relits', spec('ks-release')));
    expect(refused.out).toContain('only an author who may get and delete that Secret may name it, and reader may not');
    // The controller may get and delete Secrets there, and in no unlisted namespace.
    const sa = '--as=system:serviceaccount:kubeflex-system:kubeflex-controller-manager';
    expect(tryK(['auth', 'can-i', 'delete', 'secrets', '-n', 'ks-release', sa]).out.trim()).toBe('yes');
    expect(tryK(['auth', 'can-i', 'get', 'secrets', '-n', 'default', sa]).ok).toBe(false); // "no" exits 1
    // The admin's chart install: adopted, Ready, the bootstrap Secret deleted once used.
    k(['create', 'ns', 'relits-system']);
    k(['label', 'ns', 'relits-system', 'tenancy.kflex.kubestellar.org/control-plane=relits']);
    k(['apply', '--server-side', '-f', '-'], cp('relits', spec('ks-release')));
    await waitFor('relits Ready', () => condition('relits', 'Ready').startsWith('True'), 60_000);
    expect(secretData('ks-release', 'relits-bootstrap').ok).toBe(false);
  });

  test('H1 controller RCE / token theft: a syncer-written kubeconfig with an exec plugin or a token file is refused, nothing runs or is read', async () => {
    const marker = path.join(dir, 'exec-ran');
    const stolen = path.join(dir, 'stolen-token');
    fs.writeFileSync(stolen, 'CONTROLLER-SERVICEACCOUNT-TOKEN');
    const kubeconfig = (user: object) =>
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: adopted.server, 'certificate-authority-data': 'Q0E=' } }],
        users: [{ name: 'u', user }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      });
    const plant = (ns: string, text: string) =>
      k(
        ['apply', '-f', '-'],
        stringify({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'vc-vcluster', namespace: ns },
          stringData: { config: text },
        }),
      );
    plant(
      'vcexec-system',
      kubeconfig({
        exec: { apiVersion: 'client.authentication.k8s.io/v1', command: '/bin/sh', args: ['-c', `touch ${marker}`] },
      }),
    );
    plant('vcfile-system', kubeconfig({ 'token-file': stolen }));
    await waitFor('vcexec refused', () => condition('vcexec', 'Synced').startsWith('False'));
    await waitFor('vcfile refused', () => condition('vcfile', 'Synced').startsWith('False'));
    expect(condition('vcexec', 'Synced')).toBe(
      'False/ReconcileError: Secret vcexec-system/vc-vcluster key config is refused: user uses an exec plugin (runs a program), which is refused: use embedded client-certificate-data/client-key-data or a token',
    );
    expect(condition('vcfile', 'Synced')).toBe(
      'False/ReconcileError: Secret vcfile-system/vc-vcluster key config is refused: user uses a token file (reads a file), which is refused: use embedded client-certificate-data/client-key-data or a token',
    );
    // Let a few resyncs pass: still nothing ran, and no config-incluster was derived from the poisoned config.
    await new Promise((r) => setTimeout(r, 6_000));
    expect(fs.existsSync(marker)).toBe(false);
    for (const ns of ['vcexec-system', 'vcfile-system'])
      expect(k(['get', 'secret', '-n', ns, 'vc-vcluster', '-o', 'jsonpath={.data.config-incluster}'])).toBe('');
  });

  test('H4 host type: no non-expiring cluster-admin token; the kubeconfig holds a TokenRequest token that expires', () => {
    // No legacy token Secret exists for anyone to read or mount.
    expect(
      k([
        'get',
        'secrets',
        '-n',
        'victim-system',
        '--field-selector=type=kubernetes.io/service-account-token',
        '-o',
        'name',
      ]),
    ).toBe('');
    const kc = Buffer.from(
      k(['get', 'secret', '-n', 'victim-system', 'admin-kubeconfig', '-o', 'jsonpath={.data.kubeconfig-incluster}']),
      'base64',
    ).toString();
    const token = /token: (\S+)/.exec(kc)![1];
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    expect(claims.sub).toBe('system:serviceaccount:victim-system:victim');
    expect(claims.exp - claims.iat).toBe(86400);
  });

  test('M6 name collisions: a plane named after an existing namespace gets nothing written there and deletes nothing', async () => {
    // Bare ControlPlanes (no synthesized namespace): "kube" -> kube-system, "app" -> app-system made by someone else.
    k(['create', 'ns', 'app-system']);
    k(['create', 'configmap', 'keep-me', '-n', 'app-system']);
    k(['apply', '--server-side', '-f', '-'], cp('kube', { type: 'host' }));
    k(['apply', '--server-side', '-f', '-'], cp('app', { type: 'host' }));
    const refusals: Record<string, string> = {
      kube: 'False/ReconcileError: ControlPlane: invalid metadata.name "kube": is reserved: its namespace kube-system belongs to the platform or a common add-on (reserved: kube, kubeflex, default, openshift, istio, cattle, flux, calico, gatekeeper, knative, linkerd, cert-manager)',
      app: "False/ReconcileError: namespace app-system exists but does not carry the label tenancy.kflex.kubestellar.org/control-plane=app: it is not this control plane's",
    };
    for (const name of ['kube', 'app']) {
      await waitFor(`${name} refused`, () => condition(name, 'Synced').startsWith('False'));
      expect(condition(name, 'Synced')).toBe(refusals[name]);
      expect(tryK(['get', 'secret', '-n', `${name}-system`, 'admin-kubeconfig']).ok).toBe(false);
      k(['delete', 'cp', name, '--wait=true', '--timeout=30s']);
    }
    // Nothing deleted: both namespaces and what is in them are still there.
    expect(k(['get', 'ns', 'kube-system', '-o', 'jsonpath={.status.phase}'])).toBe('Active');
    expect(k(['get', 'configmap', '-n', 'app-system', 'keep-me', '-o', 'name'])).toBe('configmap/keep-me\n');
    // At synth, the platform's own names are refused outright.
    const { tenantNames } = await import('../../lib');
    expect(() => tenantNames('kubeflex')).toThrow(
      /invalid name "kubeflex": is reserved: its namespace kubeflex-system/,
    );
  });

  test('boot admission: the controller lets two API server Pods start at once (a slot freed once its API server answers), a controller manager after its API server, and may change nothing else of a Pod', async () => {
    const gate = 'kflex.kubestellar.org/boot-slot';
    const ns = 'keycloak-system';
    // Pods as the Deployments' ReplicaSets would make them (this cluster runs no ReplicaSet controller nor scheduler).
    const pod = (name: string, component: string, namespace = ns) =>
      stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace, labels: { app: component, [gate]: component } },
        spec: {
          schedulingGates: [{ name: gate }],
          securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'c',
              image: 'registry.k8s.io/pause:3.10',
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
            },
          ],
        },
      });
    const gated = (name: string, namespace = ns) =>
      (JSON.parse(k(['get', 'pod', '-n', namespace, name, '-o', 'json'])).spec.schedulingGates ?? []).some(
        (g: any) => g.name === gate,
      );
    const makeReady = (name: string, namespace = ns) =>
      k([
        'patch',
        'pod',
        '-n',
        namespace,
        name,
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'True' }] } }),
      ]);
    // One at a time, so their creation order is the admission order.
    for (const n of ['api-1', 'api-2', 'api-3']) {
      k(['apply', '-f', '-'], pod(n, 'kube-apiserver'));
      await new Promise((r) => setTimeout(r, 1100));
    }
    k(['apply', '-f', '-'], pod('kcm-1', 'kube-controller-manager'));
    await waitFor('two API servers admitted', () => !gated('api-1') && !gated('api-2'), 30_000);
    // The third waits for a slot; the controller manager for a ready API server.
    await new Promise((r) => setTimeout(r, 3000));
    expect([gated('api-3'), gated('kcm-1')]).toEqual([true, true]);
    // The plane says why it is not Ready, and stops saying it once its API server starts.
    await waitFor(
      'status names the wait',
      () =>
        // After the database's reason: this suite's controller has no route to a PostgreSQL, on purpose (H2 below).
        /^False\/Unavailable: database keycloak on \S+ not provisioned: .*; waiting for a boot slot: at most 2 API servers start at once/.test(
          condition('keycloak', 'Ready'),
        ),
      30_000,
    );
    makeReady('api-1');
    await waitFor('third admitted once one is ready', () => !gated('api-3'), 30_000);
    await waitFor('controller manager after its API server', () => !gated('kcm-1'), 30_000);
    await waitFor('status no longer names the wait', () => !/boot slot/.test(condition('keycloak', 'Ready')), 30_000);

    // A woken plane goes first: its API server Pod, created after a waiting first boot, gets the next free slot.
    k(['apply', '-f', '-'], pod('api-6', 'kube-apiserver'));
    await new Promise((r) => setTimeout(r, 1100));
    k(['annotate', 'cp', 'sleeper', 'kflex.kubestellar.org/sleeping-']);
    k(['apply', '-f', '-'], pod('woken-api', 'kube-apiserver', 'sleeper-system'));
    await new Promise((r) => setTimeout(r, 3000));
    expect([gated('api-6'), gated('woken-api', 'sleeper-system')]).toEqual([true, true]);
    makeReady('api-2');
    await waitFor('the woken plane admitted', () => !gated('woken-api', 'sleeper-system'), 30_000);
    await new Promise((r) => setTimeout(r, 3000));
    expect(gated('api-6')).toBe(true);
    makeReady('api-3');
    await waitFor('then the first boot', () => !gated('api-6'), 30_000);

    // The controller's rights on Pods: removing that gate, nothing else, and only in tenant namespaces.
    const asController = ['--as=system:serviceaccount:kubeflex-system:kubeflex-controller-manager'];
    k(['apply', '-f', '-'], pod('api-4', 'kube-apiserver'));
    const refused =
      'controller: pod api-4 is refused: it only removes the scheduling gate kflex.kubestellar.org/boot-slot from a Pod with that label';
    for (const patch of [
      { metadata: { labels: { extra: 'x' } } },
      { metadata: { annotations: { a: 'b' } } },
      { spec: { containers: [{ name: 'c', image: 'evil:latest' }] } },
      // Adding a toleration is the one other spec change the API server allows on a Pod.
      [{ op: 'add', path: '/spec/tolerations/-', value: { operator: 'Exists' } }],
    ]) {
      const r = tryK([
        'patch',
        'pod',
        '-n',
        ns,
        'api-4',
        Array.isArray(patch) ? '--type=json' : '--type=strategic',
        '-p',
        JSON.stringify(patch),
        ...asController,
      ]);
      expect({ patch, ok: r.ok }).toEqual({ patch, ok: false });
      expect(r.out).toContain(refused);
    }
    k(['create', 'ns', 'elsewhere']);
    k(['apply', '-f', '-'], pod('api-5', 'kube-apiserver').replace(`namespace: ${ns}`, 'namespace: elsewhere'));
    const foreign = tryK([
      'patch',
      'pod',
      '-n',
      'elsewhere',
      'api-5',
      '--type=json',
      '-p',
      '[{"op":"remove","path":"/spec/schedulingGates"}]',
      ...asController,
    ]);
    expect(foreign.ok).toBe(false);
    expect(foreign.out).toMatch(/cannot patch resource "pods" in API group "" in the namespace "elsewhere"/);
    // Two starts still hold the slots; a Pod in a namespace that is no ControlPlane's is never admitted.
    expect(gated('api-4')).toBe(true);
    expect(JSON.parse(k(['get', 'pod', '-n', 'elsewhere', 'api-5', '-o', 'json'])).spec.schedulingGates).toEqual([
      { name: gate },
    ]);
    // A started Pod that no node can take (a full node) gives its slot up at once, and its plane says why it waits.
    k([
      'patch',
      'pod',
      '-n',
      ns,
      'api-6',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({
        status: {
          conditions: [
            {
              type: 'PodScheduled',
              status: 'False',
              reason: 'Unschedulable',
              message: '0/1 nodes are available: 1 Insufficient cpu.',
            },
          ],
        },
      }),
    ]);
    await waitFor('the slot it held goes to the next', () => !gated('api-4'), 30_000);
    await waitFor(
      "status names the scheduler's reason",
      () =>
        condition('keycloak', 'Ready').endsWith(
          'Deployment keycloak-system/kube-apiserver: no node can take it: Pod api-6: 0/1 nodes are available: 1 Insufficient cpu.',
        ),
      30_000,
    );

    // A start whose API server answers its startup probe's readyz gives its slot up before the kubelet marks it
    // Ready: the controller asks it itself. A stand-in HTTPS server plays the starting API server (a loopback
    // address: this cluster runs no kubelet, so the test writes the Pod's address as a kubelet would).
    let readyz = 500;
    const standIn = https.createServer(
      {
        cert: fs.readFileSync(path.join(hosting.pki, 'apiserver.crt')),
        key: fs.readFileSync(path.join(hosting.pki, 'apiserver.key')),
      },
      (req, res) => {
        res.statusCode = req.url === '/readyz' ? readyz : 404;
        res.end();
      },
    );
    await new Promise<void>((resolve) => standIn.listen(0, '127.0.0.1', resolve));
    try {
      const standInPort = (standIn.address() as net.AddressInfo).port;
      const probed = parse(pod('api-7', 'kube-apiserver'));
      probed.spec.containers[0].startupProbe = {
        httpGet: { path: '/readyz', port: standInPort, scheme: 'HTTPS' },
        periodSeconds: 1,
      };
      k(['apply', '-f', '-'], stringify(probed));
      await new Promise((r) => setTimeout(r, 1100));
      k(['apply', '-f', '-'], pod('api-8', 'kube-apiserver'));
      // The slots are held by api-4 and the woken plane's Pod: one gets ready, api-7 (the older) goes.
      makeReady('woken-api', 'sleeper-system');
      await waitFor('api-7 admitted', () => !gated('api-7'), 30_000);
      k([
        'patch',
        'pod',
        '-n',
        ns,
        'api-7',
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status: { podIP: '127.0.0.1', podIPs: [{ ip: '127.0.0.1' }] } }),
      ]);
      // Not answering yet: api-8 waits.
      await new Promise((r) => setTimeout(r, 3000));
      expect(gated('api-8')).toBe(true);
      readyz = 200;
      const answeredAt = Date.now();
      await waitFor('api-8 admitted once api-7 answers, api-7 not Ready', () => !gated('api-8'), 30_000);
      expect(Date.now() - answeredAt).toBeLessThan(5_000);
      const api7 = JSON.parse(k(['get', 'pod', '-n', ns, 'api-7', '-o', 'json']));
      expect((api7.status.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')).toBe(false);
    } finally {
      await new Promise((resolve) => standIn.close(resolve));
    }
    k(['delete', 'pod', '-n', ns, '--all', '--wait=false']);
    k(['delete', 'pod', '-n', 'sleeper-system', '--all', '--wait=false']);
    k(['delete', 'ns', 'elsewhere', '--wait=false']);
  });

  test('M2 PostgreSQL transport: the server certificate the controller minted is verified; another CA or name is refused', async () => {
    const tls = await waitFor('postgres TLS minted', () => {
      const r = secretData('kubeflex-system', 'postgres-postgresql-tls');
      return r.ok && r.out.includes('tls.crt') ? JSON.parse(r.out) : undefined;
    });
    const pem = (key: string) => Buffer.from(tls[key], 'base64').toString();
    // A PostgreSQL serving exactly the minted certificate and key, as the bundled StatefulSet mounts them.
    const pg = await startPostgres(path.join(state.dir, 'pg-m2'), state.logDir, {
      cert: pem('tls.crt'),
      key: pem('tls.key'),
    });
    try {
      psql({ pgPort: pg.port, pgSocketDir: pg.socketDir }, "ALTER ROLE postgres PASSWORD 'm2-password'");
      const mintedCa = path.join(dir, 'm2-ca.crt');
      const otherCa = path.join(dir, 'm2-other-ca.crt');
      fs.writeFileSync(mintedCa, pem('ca.crt'));
      fs.writeFileSync(otherCa, state.pgCa.cert);
      // libpq as the database Job runs it (sslmode verify-full, the Service name); hostaddr stands in for DNS.
      const libpq = (host: string, ca: string) =>
        spawnSync(
          'psql',
          [
            `host=${host} hostaddr=127.0.0.1 port=${pg.port} user=postgres dbname=postgres sslmode=verify-full sslrootcert=${ca}`,
            '-Atc',
            'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
          ],
          { env: { ...process.env, PGPASSWORD: 'm2-password' }, encoding: 'utf8' },
        );
      const svc = 'postgres-postgresql.kubeflex-system.svc';
      expect(libpq(svc, mintedCa)).toMatchObject({ status: 0, stdout: 't\n' });
      expect(libpq(svc, otherCa).stderr).toMatch(/certificate verify failed/);
      expect(libpq('pg.attacker.example', mintedCa).stderr).toMatch(
        /server certificate for "postgres-postgresql.kubeflex-system.svc" \(and \d+ other names?\) does not match host name "pg.attacker.example"/,
      );
      // The controller's client (node-postgres) as it drops a database: verify-full with the minted CA only.
      const endpoint = {
        host: svc,
        port: 5432,
        superuser: 'postgres',
        passwordSecret: 'unused',
        passwordKey: 'unused',
        sslMode: 'verify-full',
        bundled: true,
      };
      const via = { [`${svc}:5432`]: `127.0.0.1:${pg.port}` };
      await expect(
        dropTenantDatabase(endpoint, 'm2-password', 'nothing', 'nothing', via, pem('ca.crt')),
      ).resolves.toEqual({ droppedDatabase: false, droppedRole: false });
      await expect(
        dropTenantDatabase(endpoint, 'm2-password', 'nothing', 'nothing', via, state.pgCa.cert),
      ).rejects.toThrow(/unable to verify the first certificate|self[- ]signed certificate/);
      await expect(dropTenantDatabase(endpoint, 'm2-password', 'nothing', 'nothing', via)).rejects.toThrow(
        'sslmode verify-full needs the PostgreSQL CA certificate, which is not configured',
      );
    } finally {
      stopPostgres(pg.dataDir);
    }
    // The tenant's kine gets the CA certificate, never the CA key or the server key.
    await waitFor('keycloak kine-postgres', () => {
      const r = secretData('keycloak-system', 'kine-postgres');
      return r.ok && r.out.includes('ca.crt') ? r.out : undefined;
    });
    expect(Object.keys(JSON.parse(secretData('keycloak-system', 'kine-postgres').out)).sort()).toEqual([
      'ca.crt',
      'password',
    ]);
  });

  describe('H2: PostgreSQL objects the platform did not create are never touched', () => {
    const pg = () => ({ pgPort: state.pgPort, pgSocketDir: state.pgSocketDir });
    const asRole = (role: string, password: string, db: string, sql: string) =>
      execFileSync('psql', ['-h', '127.0.0.1', '-p', String(state.pgPort), '-U', role, '-d', db, '-Atc', sql], {
        env: { ...process.env, PGPASSWORD: password },
        encoding: 'utf8',
      }).trim();
    const pgEndpoint = () => ({
      host: '127.0.0.1',
      port: state.pgPort,
      superuser: 'postgres',
      passwordSecret: 'unused',
      passwordKey: 'unused',
      sslMode: 'disable',
      bundled: true,
    });

    beforeAll(() => {
      // An application that shares the PostgreSQL: role and database "grafana" with data; database "keycloak".
      psql(pg(), "CREATE ROLE grafana LOGIN PASSWORD 'app-secret' CREATEDB");
      psql(pg(), 'CREATE DATABASE grafana OWNER grafana');
      asRole(
        'grafana',
        'app-secret',
        'grafana',
        "CREATE TABLE dashboards (name text); INSERT INTO dashboards VALUES ('prod dashboards')",
      );
      psql(pg(), 'CREATE DATABASE keycloak');
      psql(pg(), "CREATE TABLE realms (name text); INSERT INTO realms VALUES ('master')", 'keycloak');
    });

    test('H2 hijack: a tenant named like an existing role or database is refused by the provisioning', async () => {
      await expect(provisionLikeController(state, 'grafana', 'tenant-password')).rejects.toThrow(
        /^role grafana exists and was not created by kubeflex: refusing to take it over$/,
      );
      await expect(provisionLikeController(state, 'keycloak', 'tenant-password')).rejects.toThrow(
        /^database keycloak exists and was not created by kubeflex: refusing to take it over$/,
      );
      // Nothing changed: the application's password and privileges, and its data.
      expect(asRole('grafana', 'app-secret', 'grafana', 'SELECT name FROM dashboards')).toBe('prod dashboards');
      expect(psql(pg(), "SELECT rolcreatedb, rolconnlimit FROM pg_roles WHERE rolname = 'grafana'").trim()).toBe(
        't|-1',
      );
      expect(() => asRole('grafana', 'tenant-password', 'grafana', 'SELECT 1')).toThrow(
        /password authentication failed/,
      );
      expect(psql(pg(), "SELECT count(*) FROM pg_roles WHERE rolname = 'keycloak'").trim()).toBe('0');
    });

    test('H2 destroy: deleting a plane that never provisioned drops nothing; the drop refuses unmarked objects', async () => {
      // The k8s plane "keycloak" was applied, but its database was never made: no finalizer, so no drop.
      await waitFor('keycloak reconciled', () => condition('keycloak', 'Synced') !== 'none');
      expect(JSON.parse(k(['get', 'cp', 'keycloak', '-o', 'json'])).metadata.finalizers).toBeUndefined();
      k(['delete', 'cp', 'keycloak', '--wait=true', '--timeout=30s']);
      expect(psql(pg(), 'SELECT name FROM realms', 'keycloak').trim()).toBe('master');
      // Even when asked directly, the drop leaves what the provisioner did not create.
      const r = await dropTenantDatabase(pgEndpoint(), state.pgPassword, 'grafana', 'grafana', {});
      expect(r).toEqual({
        droppedDatabase: false,
        droppedRole: false,
        kept: 'database grafana was not created by kubeflex; role grafana was not created by kubeflex: left untouched',
      });
      expect(asRole('grafana', 'app-secret', 'grafana', 'SELECT name FROM dashboards')).toBe('prod dashboards');
    });

    test('planes provisioned at once on one server all get their databases, and PUBLIC loses CONNECT on the shared ones', async () => {
      // As before the first plane: PUBLIC may connect to postgres and template1, so each provisioning revokes it, and
      // thirty at once change the same two catalog rows (PostgreSQL: "tuple concurrently updated" for all but one).
      psql(pg(), 'GRANT CONNECT, TEMPORARY ON DATABASE postgres, template1 TO PUBLIC');
      const many = Array.from({ length: 30 }, (_, i) => `burst${i}`);
      await Promise.all(many.map((n) => provisionLikeController(state, n, `pw-${n}`)));
      for (const n of many) expect(asRole(n, `pw-${n}`, n, 'SELECT current_database()')).toBe(n);
      expect(
        psql(
          pg(),
          `SELECT count(*) FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname IN ('postgres', 'template1')
             AND a.grantee = 0 AND a.privilege_type IN ('CONNECT', 'TEMPORARY')`,
        ).trim(),
      ).toBe('0');
      expect(() => asRole('burst0', 'pw-burst0', 'postgres', 'SELECT 1')).toThrow(/permission denied for database/);
    });

    test('N6 a database names its ControlPlane: a later plane of the same name (another UID) neither takes it nor drops it', async () => {
      await provisionLikeController(state, 'n6', 'pw-first', 'kubeflex:uid-first');
      asRole(
        'n6',
        'pw-first',
        'n6',
        "CREATE TABLE secrets_of_first (v text); INSERT INTO secrets_of_first VALUES ('first')",
      );
      expect(
        psql(pg(), "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 'n6'").trim(),
      ).toBe('kubeflex:uid-first');
      // The first plane's deletion never dropped it (finalizer removed by hand, controller down): a new plane "n6".
      await expect(provisionLikeController(state, 'n6', 'pw-second', 'kubeflex:uid-second')).rejects.toThrow(
        /^database n6 belongs to another ControlPlane \(kubeflex:uid-first\): refusing to take it over/,
      );
      // Nothing changed: the first password still works, the second does not, the data is there.
      expect(asRole('n6', 'pw-first', 'n6', 'SELECT v FROM secrets_of_first')).toBe('first');
      expect(() => asRole('n6', 'pw-second', 'n6', 'SELECT 1')).toThrow(/password authentication failed/);
      // The second plane's finalizer keeps it; the first plane's (its UID) drops it.
      expect(
        await dropTenantDatabase(pgEndpoint(), state.pgPassword, 'n6', 'n6', {}, undefined, 'kubeflex:uid-second'),
      ).toEqual({
        droppedDatabase: false,
        droppedRole: false,
        kept: 'database n6 is marked for another ControlPlane (kubeflex:uid-first); role n6 owns that database: left untouched',
      });
      expect(psql(pg(), "SELECT count(*) FROM pg_database WHERE datname = 'n6'").trim()).toBe('1');
      expect(
        await dropTenantDatabase(pgEndpoint(), state.pgPassword, 'n6', 'n6', {}, undefined, 'kubeflex:uid-first'),
      ).toEqual({
        droppedDatabase: true,
        droppedRole: true,
      });
    });

    test('H2 + L3 legit path: provisioning is idempotent and marks what it creates; only that is dropped', async () => {
      await provisionLikeController(state, 'legit', 'pw-1');
      await provisionLikeController(state, 'legit', 'pw-2');
      expect(asRole('legit', 'pw-2', 'legit', 'SELECT current_user')).toBe('legit');
      // What kine does first: create its table in the public schema of its own database.
      asRole('legit', 'pw-2', 'legit', 'CREATE TABLE kine_probe (id int)');
      // M7: per-tenant limits on the shared database, and kine stays below the connection limit.
      expect(psql(pg(), "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'legit'").trim()).toBe(
        String(TENANT_DB_CONNECTION_LIMIT),
      );
      // A replacement Pod's kine opens its pool while the terminating Pod's still holds its own (a wake right after
      // a sleep): both fit, with the reserve left; one more than the limit is refused.
      const opened: Client[] = [];
      const connect = async () => {
        const c = new Client({
          host: '127.0.0.1',
          port: state.pgPort,
          user: 'legit',
          password: 'pw-2',
          database: 'legit',
        });
        await c.connect();
        opened.push(c);
      };
      try {
        await Promise.all(Array.from({ length: 2 * kinePoolSize(1) + TENANT_DB_RESERVED_CONNECTIONS }, connect));
        await expect(connect()).rejects.toThrow(/too many connections for role "legit"/);
      } finally {
        await Promise.all(opened.map((c) => c.end()));
      }
      expect(asRole('legit', 'pw-2', 'legit', 'SHOW statement_timeout')).toBe('1min');
      expect(asRole('legit', 'pw-2', 'legit', 'SHOW idle_in_transaction_session_timeout')).toBe('1min');
      expect(asRole('legit', 'pw-2', 'legit', 'SHOW temp_file_limit')).toBe('1GB');
      const kine = JSON.parse(k(['get', 'deployment', '-n', 'keycloak-system', 'kube-apiserver', '-o', 'json'])).spec
        .template.spec.containers[0];
      expect(kine.name).toBe('kine');
      expect(kine.args).toContain(`--datastore-max-open-connections=${kinePoolSize(1)}`);
      // Tenant roles cannot reach each other's databases.
      await provisionLikeController(state, 'other', 'pw-o');
      expect(() => asRole('legit', 'pw-2', 'other', 'SELECT 1')).toThrow(/permission denied for database "other"/);
      expect(() => asRole('other', 'pw-o', 'legit', 'SELECT 1')).toThrow(/permission denied for database "legit"/);
      // L3: no tenant reaches the maintenance databases or lists the other tenants from its own.
      for (const db of ['postgres', 'template1'])
        expect(() => asRole('legit', 'pw-2', db, 'SELECT 1')).toThrow(
          new RegExp(`permission denied for database "${db}"`),
        );
      for (const catalog of ['pg_database', 'pg_roles', 'pg_stat_activity'])
        expect(() => asRole('legit', 'pw-2', 'legit', `SELECT count(*) FROM ${catalog}`)).toThrow(
          new RegExp(`permission denied for (table|view) ${catalog}`),
        );
      const r = await dropTenantDatabase(
        pgEndpoint(),
        state.pgPassword,
        'legit',
        'legit',
        {},
        undefined,
        'kubeflex:test-uid-of-legit',
      );
      expect(r).toEqual({ droppedDatabase: true, droppedRole: true });
      expect(psql(pg(), "SELECT count(*) FROM pg_database WHERE datname = 'legit'").trim()).toBe('0');
    });
  });
});

// Round 2 (../shared/reference/reviews/security-round2.md): who may do what is the hosting admin's decision, enforced
// by the API server (admission policies and RBAC of the synthesized install). The controller and the materializer run
// with their own ServiceAccount tokens, so their synthesized RBAC is what is tested; people are impersonated with
// exactly the rights each scenario names.
suite('round 2: ControlPlane authors gain nothing on the hosting cluster', () => {
  let hosting: TestCluster;
  const procs: ChildProcess[] = [];
  let dir: string;
  const { k, tryK, cp: cpYaml, condition, grantOnControlPlanes } = kubectlHelpers(() => hosting);
  const asUser = (user: string, groups: string[] = []) => [`--as=${user}`, ...groups.map((g) => `--as-group=${g}`)];
  /** A kubeconfig of the hosting cluster that authenticates with `token` only. */
  const withToken = (token: string, name: string) => {
    const kc = parse(fs.readFileSync(hosting.kubeconfig, 'utf8'));
    kc.users[0].user = { token };
    const file = path.join(dir, `${name}.kubeconfig`);
    fs.writeFileSync(file, stringify(kc), { mode: 0o600 });
    return file;
  };
  /** A kubeconfig holding a fresh token of `sa` in kubeflex-system: the identity its Deployment runs with. */
  const tokenKubeconfig = (sa: string) =>
    withToken(k(['create', 'token', sa, '-n', 'kubeflex-system', '--duration=1h']).trim(), sa);
  const asMaterializer = (args: string[], input?: string) => {
    const r = spawnSync('kubectl', [`--kubeconfig=${path.join(dir, 'kubeflex-materializer.kubeconfig')}`, ...args], {
      encoding: 'utf8',
      input,
    });
    return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
  };

  beforeAll(async () => {
    hosting = await startCluster(state, 'sec2host', HOSTING_KCM_CONTROLLERS);
    dir = fs.mkdtempSync(path.join(state.dir, 'security2-'));
    const files = synthesizeAtomically(
      (app) => {
        const h = new KubeflexHosting(app, 'hosting', { hostControlPlaneGroups: ['platform-admins'] });
        new PostCreateHook(h, 'note', {
          hosting: h,
          templates: [
            { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'note-{{.ControlPlaneName}}' }, data: { a: 'b' } },
          ],
        });
        // Its template names a Secret a tenant admin keeps in the plane's namespace.
        new PostCreateHook(h, 'squat-secret', {
          hosting: h,
          templates: [{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tenant-notes' }, stringData: { x: 'y' } }],
        });
      },
      path.join(dir, 'dist'),
    );
    applySynthesized(hosting, files);
    // People: an author who may create and read ControlPlanes (and read Secrets in their own <cp>-system, granted per
    // test), and a member of the group the hosting install grants host planes.
    grantOnControlPlanes('cp-author', ['create', 'get', 'list', 'watch', 'update', 'patch'], '--group=authors');
    procs.push(
      spawnController(
        { kubeconfig: tokenKubeconfig('kubeflex-controller-manager') },
        path.join(state.logDir, 'security2-controller.log'),
        ['--resync=5s'],
      ),
    );
    const out = fs.openSync(path.join(state.logDir, 'security2-materializer.log'), 'a');
    procs.push(
      spawn(
        process.execPath,
        [
          path.resolve(__dirname, '../../build/lib/materializer/main.js'),
          `--kubeconfig=${tokenKubeconfig('kubeflex-materializer')}`,
          '--health-port=0',
        ],
        { stdio: ['ignore', out, out] },
      ),
    );
    fs.closeSync(out);
    // A new admission policy takes effect once the API server's policy informer has it (about a second).
    await waitFor('admission policy in effect', () =>
      tryK(
        ['--as=probe', '--as-group=authors', 'create', '--dry-run=server', '-f', '-'],
        cpYaml('probe', { type: 'host' }),
      ).out.includes('lacks the verb'),
    );
  }, 180_000);

  afterAll(async () => {
    await killAll(procs.map((p) => p.pid!).filter(Boolean));
    await hosting?.stop();
  });

  test('N1 host planes: an author without the verb is refused at admission, nothing is created; their k8s plane is served', async () => {
    const alice = asUser('alice', ['authors']);
    const host = tryK([...alice, 'apply', '-f', '-'], cpYaml('evil', { type: 'host' }));
    expect(host.ok).toBe(false);
    expect(host.out).toContain(
      'ControlPlane evil: spec.type "host" is refused: its kubeconfig is cluster-admin of the hosting cluster, and alice lacks the verb "host" on controlplanes.tenancy.kflex.kubestellar.org (ClusterRole kubeflex:host-planes)',
    );
    expect(tryK(['get', 'cp', 'evil']).out).toMatch(/NotFound/);
    // The same author's k8s plane is admitted and materialized (its workloads, marked with its UID).
    k([...alice, 'apply', '-f', '-'], cpYaml('alicek8s', { type: 'k8s' }));
    const uid = JSON.parse(k(['get', 'cp', 'alicek8s', '-o', 'json'])).metadata.uid;
    await waitFor('alicek8s materialized', () => tryK(['get', 'deploy', '-n', 'alicek8s-system', 'kube-apiserver']).ok);
    expect(
      JSON.parse(k(['get', 'ns', 'alicek8s-system', '-o', 'json'])).metadata.annotations[
        'kflex.kubestellar.org/materialized-for'
      ],
    ).toBe(uid);
    // Nothing was made for the refused host plane, and no binding to cluster-admin exists for it.
    expect(tryK(['get', 'ns', 'evil-system']).ok).toBe(false);
    expect(k(['get', 'clusterrolebindings', '-o', 'name'])).not.toMatch(/evil/);
  });

  test('N1 host planes: a cluster-admin, and a member of the granted group, get a Ready host plane bound by the controller', async () => {
    // The harness's own identity is system:masters, as a cluster-admin's kflex create --type host would be.
    k(['apply', '-f', '-'], cpYaml('adminhost', { type: 'host' }));
    k([...asUser('bob', ['authors', 'platform-admins']), 'apply', '-f', '-'], cpYaml('bobhost', { type: 'host' }));
    for (const name of ['adminhost', 'bobhost']) {
      await waitFor(`${name} Ready`, () => condition(name, 'Ready').startsWith('True/Available'), 60_000);
      const binding = JSON.parse(k(['get', 'clusterrolebinding', `kubeflex:host:${name}`, '-o', 'json']));
      const uid = JSON.parse(k(['get', 'cp', name, '-o', 'json'])).metadata.uid;
      expect(binding.roleRef.name).toBe('cluster-admin');
      expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name, namespace: `${name}-system` }]);
      expect(binding.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'ControlPlane', uid })]);
      // The minted kubeconfig is what the host type means: cluster-admin of the hosting cluster.
      const kc = Buffer.from(
        k(['get', 'secret', '-n', `${name}-system`, 'admin-kubeconfig', '-o', 'jsonpath={.data.kubeconfig-incluster}']),
        'base64',
      ).toString();
      const token = /token: (\S+)/.exec(kc)![1];
      expect(kubectl({ kubeconfig: withToken(token, name) }, ['auth', 'can-i', '*', '*']).stdout.trim()).toBe('yes');
    }
  }, 120_000);

  test('N4 hooks on a host plane: refused at admission unless the author holds "host-hooks", on create and on update', async () => {
    // Carol may make host planes but was not given the hook opt-in.
    grantOnControlPlanes('host-only', ['host'], '--user=carol');
    const carol = asUser('carol', ['authors']);
    const withHook = tryK(
      [...carol, 'apply', '-f', '-'],
      cpYaml('carolhooks', { type: 'host', postCreateHooks: [{ hookName: 'note' }] }),
    );
    expect(withHook.ok).toBe(false);
    expect(withHook.out).toContain(
      'ControlPlane carolhooks: postCreateHooks on a host plane are refused: hook workloads can mount its hosting cluster-admin kubeconfig, and carol lacks the verb "host-hooks" on controlplanes.tenancy.kflex.kubestellar.org',
    );
    expect(tryK(['get', 'cp', 'carolhooks']).ok).toBe(false);
    // Her plane without hooks is admitted; adding a hook later, or switching the legacy single hook on, is not.
    k([...carol, 'apply', '-f', '-'], cpYaml('carolhost', { type: 'host' }));
    for (const patch of [{ spec: { postCreateHooks: [{ hookName: 'note' }] } }, { spec: { postCreateHook: 'note' } }]) {
      const p = tryK([...carol, 'patch', 'cp', 'carolhost', '--type=merge', '-p', JSON.stringify(patch)]);
      expect(p.ok).toBe(false);
      expect(p.out).toContain('lacks the verb "host-hooks"');
    }
    // Updates that do not touch hooks pass (the controller's finalizer and status writes are such updates).
    k([...carol, 'annotate', 'cp', 'carolhost', 'team=blue']);
    await waitFor('carolhost Ready', () => condition('carolhost', 'Ready').startsWith('True/Available'), 60_000);
    expect(JSON.parse(k(['get', 'cp', 'carolhost', '-o', 'json'])).spec.postCreateHooks ?? []).toEqual([]);
  }, 120_000);

  test('N3 the materializer cannot escalate: its effective rights, and its token against the escalation paths', () => {
    const sa = 'system:serviceaccount:kubeflex-system:kubeflex-materializer';
    const rules = (ns: string) =>
      JSON.parse(
        k(
          ['create', '--validate=false', '-o', 'json', '-f', '-', `--as=${sa}`],
          JSON.stringify({
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectRulesReview',
            spec: { namespace: ns },
          }),
        ),
      ).status.resourceRules as {
        verbs: string[];
        apiGroups?: string[];
        resources?: string[];
        resourceNames?: string[];
      }[];
    for (const ns of ['kube-system', 'kubeflex-system', 'alicek8s-system']) {
      const r = rules(ns);
      expect(r.length).toBeGreaterThan(3);
      for (const rule of r) {
        const res = rule.resources ?? [];
        expect([ns, rule.verbs]).not.toEqual([ns, expect.arrayContaining(['escalate'])]);
        expect([ns, rule.verbs]).not.toEqual([ns, expect.arrayContaining(['*'])]);
        expect([ns, res]).not.toEqual([ns, expect.arrayContaining(['*'])]);
        if (rule.verbs.includes('bind')) {
          expect(rule.resourceNames?.sort()).toEqual(['kubeflex-controller-tenant', 'kubeflex-vcluster']);
        }
        if (res.includes('secrets')) expect(rule.verbs.filter((v) => ['get', 'list', 'watch'].includes(v))).toEqual([]);
        expect(res).not.toContain('clusterrolebindings');
        if (res.includes('clusterroles')) expect(rule.verbs).toEqual(['bind']);
        expect(res).not.toContain('serviceaccounts/token');
        // It may act as the hook applier, and as no one else.
        if (rule.verbs.includes('impersonate'))
          expect([res, rule.resourceNames]).toEqual([['serviceaccounts'], ['kubeflex-hooks']]);
        expect(res).not.toContain('pods/exec');
      }
    }
    // Its token, against what a compromised materializer would try. Each is refused by the API server.
    const crb = asMaterializer([
      'create',
      'clusterrolebinding',
      'mine',
      '--clusterrole=cluster-admin',
      `--serviceaccount=kubeflex-system:kubeflex-materializer`,
    ]);
    expect(crb).toMatchObject({ ok: false });
    expect(crb.out).toMatch(
      /forbidden: User "system:serviceaccount:kubeflex-system:kubeflex-materializer" cannot create resource "clusterrolebindings"/,
    );
    const star = asMaterializer(['create', 'role', 'star', '-n', 'kube-system', '--verb=*', '--resource=*']);
    expect(star).toMatchObject({ ok: false });
    expect(star.out).toMatch(/forbidden|is attempting to grant RBAC permissions not currently held/);
    const bindVc = asMaterializer([
      'create',
      'rolebinding',
      'steal',
      '-n',
      'kube-system',
      '--clusterrole=kubeflex-vcluster',
      '--serviceaccount=kubeflex-system:kubeflex-materializer',
    ]);
    expect(bindVc).toMatchObject({ ok: false });
    expect(bindVc.out).toContain(
      'materializer: RoleBinding kube-system/steal is refused: it writes only inside a namespace it made, with the mark of that namespace',
    );
    // Patching answers with the whole object: a Secret or a workload it did not make is never patched.
    k(['create', 'deployment', 'coredns', '-n', 'kube-system', '--image=registry.k8s.io/coredns/coredns:v1.11.3']);
    const image = asMaterializer(
      ['apply', '--server-side', '--force-conflicts', '--field-manager=kubeflex-materializer', '-f', '-'],
      stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'coredns', namespace: 'kube-system' },
        spec: { template: { spec: { containers: [{ name: 'coredns', image: 'evil:latest' }] } } },
      }),
    );
    expect(image).toMatchObject({ ok: false });
    expect(image.out).toContain('materializer: Deployment kube-system/coredns is refused');
    for (const [ns, name] of [
      ['kubeflex-system', 'postgres-postgresql'],
      ['adminhost-system', 'admin-kubeconfig'],
    ]) {
      // Server-side apply is a PATCH with no read first: what a compromised materializer would send.
      const p = asMaterializer(
        [
          'apply',
          '--server-side',
          '--force-conflicts',
          '--field-manager=kubeflex-materializer',
          '-o',
          'json',
          '-f',
          '-',
        ],
        stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns, labels: { planted: 'here' } } }),
      );
      expect(p).toMatchObject({ ok: false });
      expect(p.out).toContain(`materializer: Secret ${ns}/${name} is refused`);
      expect(p.out).not.toMatch(/"data"/);
    }
    // No namespace that is not <cp>-system with its mark, nor a privileged one.
    const ns = asMaterializer(
      ['apply', '-f', '-'],
      stringify({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: 'x-system',
          annotations: { 'kflex.kubestellar.org/materialized-for': 'u' },
          labels: { 'pod-security.kubernetes.io/enforce': 'privileged' },
        },
      }),
    );
    expect(ns).toMatchObject({ ok: false });
    expect(ns.out).toContain('enforces Pod Security restricted or baseline');
    // No workload next to a host plane's cluster-admin kubeconfig (a pod there could mount it).
    const job = asMaterializer(['create', 'job', 'mount', '-n', 'adminhost-system', '--image=busybox']);
    expect(job).toMatchObject({ ok: false });
  });

  test('PostCreateHooks are an admin right: ControlPlane authors, the controller and the materializer cannot write them', () => {
    const cannot = (who: string[], verb: string) => {
      try {
        return k(['auth', 'can-i', verb, 'postcreatehooks.tenancy.kflex.kubestellar.org', ...who]).trim();
      } catch (e) {
        return /no/.test(String(e)) ? 'no' : String(e);
      }
    };
    for (const who of [
      asUser('alice', ['authors']),
      ['--as=system:serviceaccount:kubeflex-system:kubeflex-controller-manager'],
      ['--as=system:serviceaccount:kubeflex-system:kubeflex-materializer'],
      ['--as=system:serviceaccount:kubeflex-system:kubeflex-hooks'],
    ]) {
      for (const verb of ['create', 'update', 'patch'])
        expect([who[0], verb, cannot(who, verb)]).toEqual([who[0], verb, 'no']);
    }
    expect(k(['auth', 'can-i', 'create', 'postcreatehooks.tenancy.kflex.kubestellar.org']).trim()).toBe('yes');
  });

  test('N2 nothing that is not ours is touched: a same-named binding, a cluster-scoped hook object, a minted Secret', async () => {
    // A binding named as the controller would name a host plane's, made by someone else.
    k(['create', 'clusterrolebinding', 'kubeflex:host:squat', '--clusterrole=view', '--user=dana']);
    // KubeFlex's own name for a host binding, and GKE's documented name for a user's cluster-admin binding.
    k([
      'create',
      'clusterrolebinding',
      'cluster-admin-binding',
      '--clusterrole=cluster-admin',
      '--user=alice@example.com',
    ]);
    k(['create', 'clusterrole', 'squat-role', '--verb=get', '--resource=pods']);
    const snapshot = () =>
      [
        'clusterrolebinding/kubeflex:host:squat',
        'clusterrolebinding/cluster-admin-binding',
        'clusterrole/squat-role',
      ].map((o) => {
        const x = JSON.parse(k(['get', o, '-o', 'json']));
        return {
          meta: {
            labels: x.metadata.labels,
            ownerReferences: x.metadata.ownerReferences,
            rv: x.metadata.resourceVersion,
          },
          subjects: x.subjects,
          roleRef: x.roleRef,
          rules: x.rules,
        };
      });
    const before = snapshot();
    k(['apply', '-f', '-'], cpYaml('squat', { type: 'host' }));
    k(['apply', '-f', '-'], cpYaml('cluster-admin', { type: 'host' }));
    await waitFor('squat refused', () => condition('squat', 'Synced').includes('ClusterRoleBinding'));
    expect(condition('squat', 'Synced')).toMatch(
      /^False\/ReconcileError: ClusterRoleBinding kubeflex:host:squat exists and is not owned by this ControlPlane \(uid [0-9a-f-]+\): it is left untouched$/,
    );
    await waitFor(
      'cluster-admin Ready',
      () => condition('cluster-admin', 'Ready').startsWith('True/Available'),
      60_000,
    );
    // A hook asking for a cluster-scoped object, and one naming the Secret the controller mints in <cp>-system.
    k(
      ['apply', '-f', '-'],
      stringify({
        apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
        kind: 'PostCreateHook',
        metadata: { name: 'squat-role' },
        spec: {
          templates: [
            {
              apiVersion: 'rbac.authorization.k8s.io/v1',
              kind: 'ClusterRole',
              metadata: { name: 'squat-role' },
              rules: [],
            },
          ],
        },
      }),
    );
    k(['apply', '-f', '-'], cpYaml('hookrole', { type: 'k8s', postCreateHooks: [{ hookName: 'squat-role' }] }));
    await waitFor('hookrole refused', () => condition('hookrole', 'Synced').includes('not materialized'));
    // Hook objects are applied as the hook applier, which this install granted nothing cluster-scoped.
    expect(condition('hookrole', 'Synced')).toMatch(
      /^False\/ReconcileError: not materialized: ClusterRole squat-role: .*User "system:serviceaccount:kubeflex-system:kubeflex-hooks" cannot patch resource "clusterroles".*; nothing was applied$/,
    );
    expect(tryK(['get', 'ns', 'hookrole-system']).ok).toBe(false);
    // A materialized plane whose namespace holds a Secret someone else wrote; then a hook naming that Secret.
    k(['apply', '-f', '-'], cpYaml('minted', { type: 'k8s' }));
    await waitFor('minted materialized', () => tryK(['get', 'deploy', '-n', 'minted-system', 'kube-apiserver']).ok);
    k(['create', 'secret', 'generic', 'tenant-notes', '-n', 'minted-system', '--from-literal=kubeconfig=SECRET']);
    const secretBefore = k([
      'get',
      'secret',
      '-n',
      'minted-system',
      'tenant-notes',
      '-o',
      'jsonpath={.metadata.resourceVersion}{.data}',
    ]);
    k([
      'patch',
      'cp',
      'minted',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { postCreateHooks: [{ hookName: 'note' }, { hookName: 'squat-secret' }] } }),
    ]);
    await waitFor('minted refused', () => condition('minted', 'Synced').includes('not materialized'));
    expect(condition('minted', 'Synced')).toContain('not materialized: Secret minted-system/tenant-notes: ');
    expect(condition('minted', 'Synced')).toContain(
      'it exists and was not made by the materializer for this ControlPlane',
    );
    // Nothing of that pass was applied (the other hook's ConfigMap neither), and the Secret is untouched.
    expect(tryK(['get', 'configmap', '-n', 'minted-system', 'note-minted']).ok).toBe(false);
    expect(
      k(['get', 'secret', '-n', 'minted-system', 'tenant-notes', '-o', 'jsonpath={.metadata.resourceVersion}{.data}']),
    ).toBe(secretBefore);
    expect(snapshot()).toEqual(before);
    // After the planes are deleted (garbage collection runs), the foreign objects are still there, unchanged.
    for (const name of ['squat', 'cluster-admin', 'hookrole'])
      k(['delete', 'cp', name, '--wait=true', '--timeout=60s']);
    await waitFor(
      'cluster-admin binding collected',
      () => !tryK(['get', 'clusterrolebinding', 'kubeflex:host:cluster-admin']).ok,
      30_000,
    );
    expect(snapshot()).toEqual(before);
  }, 180_000);
});

// N7 on its own small hosting cluster: without a PostgreSQL the finalizer drops no database, so what it deletes in
// kubeflex-system is all there is to see.
suite('round 2, N7: the finalizer deletes only the credentials Secret that carries the plane label', () => {
  let hosting: TestCluster;
  let proc: ChildProcess | undefined;
  const { k, tryK, cp } = kubectlHelpers(() => hosting);

  beforeAll(async () => {
    hosting = await startCluster(state, 'sec2n7', HOSTING_KCM_CONTROLLERS);
    const dir = fs.mkdtempSync(path.join(state.dir, 'security-n7-'));
    const files = synthesizeAtomically(
      (app) => new KubeflexHosting(app, 'hosting', { installPostgres: false }),
      path.join(dir, 'dist'),
    );
    applySynthesized(hosting, files);
    proc = spawnController(hosting, path.join(state.logDir, 'security-n7-controller.log'), ['--resync=2s']);
  }, 120_000);
  afterAll(async () => {
    if (proc) await killAll([proc.pid!]);
    await hosting?.stop();
  });

  test('N7 a finalizer the author added by hand deletes no Secret of someone else', async () => {
    // An admin's Secret that merely has the name `<plane>-db-credentials`, and a plane's own (labelled) one.
    k([
      'create',
      'secret',
      'generic',
      'victim-db-credentials',
      '-n',
      'kubeflex-system',
      '--from-literal=password=keep',
    ]);
    k(['create', 'secret', 'generic', 'own-db-credentials', '-n', 'kubeflex-system', '--from-literal=password=x']);
    k([
      'label',
      'secret',
      '-n',
      'kubeflex-system',
      'own-db-credentials',
      'tenancy.kflex.kubestellar.org/control-plane=own',
    ]);
    const before = k([
      'get',
      'secret',
      '-n',
      'kubeflex-system',
      'victim-db-credentials',
      '-o',
      'jsonpath={.metadata.uid}{.data}',
    ]);
    for (const name of ['victim', 'own']) {
      const doc = parse(cp(name, { type: 'k8s' }));
      doc.metadata.finalizers = ['kflex.kubestellar.org/finalizer'];
      k(['apply', '-f', '-'], stringify(doc));
      k(['delete', 'cp', name, '--wait=false']);
    }
    await waitFor(
      'both planes finalized',
      () => !tryK(['get', 'cp', 'victim']).ok && !tryK(['get', 'cp', 'own']).ok,
      60_000,
    );
    expect(
      k(['get', 'secret', '-n', 'kubeflex-system', 'victim-db-credentials', '-o', 'jsonpath={.metadata.uid}{.data}']),
    ).toBe(before);
    expect(tryK(['get', 'secret', '-n', 'kubeflex-system', 'own-db-credentials']).out).toMatch(/NotFound/);
  }, 90_000);
});
