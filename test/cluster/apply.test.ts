import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  ExternalControlPlane,
  HostControlPlane,
  K3sControlPlane,
  K8sControlPlane,
  KubeflexHosting,
  synthesizeAtomically,
  VClusterControlPlane,
} from '../../lib';
import { BASE_DIR } from '../../lib/synth';
import { buildExamplePlatform } from '../../main';
import { ClusterState, kubectl, loadState, startCluster } from './harness';

const state: ClusterState = loadState();
const suite = state.skipped ? describe.skip : describe;
if (state.skipped) console.warn(`### SKIPPED real-cluster apply tests: ${state.skipped}`);

suite('server-side apply on a real kube-apiserver', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kflex-apply-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const apply = (file: string) =>
    kubectl(state, ['apply', '--server-side', '--field-manager=cdk8s-kubeflex', '-f', file]);

  test("the README's apply line, verbatim, installs the example platform on an empty cluster: no errors, no warnings", async () => {
    // The line a user copies: the first `kubectl apply` line of the README's "Installing the output" section.
    const readme = fs.readFileSync(path.join(__dirname, '../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Installing the output'));
    const line = section.split('\n').find((l) => l.startsWith('kubectl apply'))!;
    expect(line).toMatch(
      /^kubectl apply --server-side -f dist\/00-base\/ && .* && kubectl apply --server-side -f dist\/$/,
    );
    const work = path.join(tmp, 'readme');
    synthesizeAtomically(buildExamplePlatform, path.join(work, 'dist'));
    const empty = await startCluster(state, 'readme-apply');
    try {
      const r = spawnSync('bash', ['-c', line], {
        cwd: work,
        env: { ...process.env, KUBECONFIG: empty.kubeconfig },
        encoding: 'utf8',
      });
      // Restricted namespaces warn on any pod template that would be refused; baseline ones likewise.
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
      expect(r.stdout).toMatch(/controlplanes.tenancy.kflex.kubestellar.org serverside-applied/);
      expect(r.stdout).toMatch(/controlplane.tenancy.kflex.kubestellar.org\/cp1 serverside-applied/);
      expect(r.stdout).toMatch(/postcreatehook.tenancy.kflex.kubestellar.org\/hello serverside-applied/);
      const names = kubectl(empty, ['get', 'cps', '-o', 'jsonpath={.items[*].metadata.name}']).stdout;
      expect(names.split(' ').sort()).toEqual(['cp1', 'cp2', 'cp3', 'cp4', 'ext1']);
    } finally {
      await empty.stop();
    }
  });

  test('the whole example platform applies with zero errors and no pod-security warnings', () => {
    const files = synthesizeAtomically(buildExamplePlatform, path.join(tmp, 'example'));
    const base = files.filter((f) => f.includes(`/${BASE_DIR}/`));
    expect(base.map((f) => path.basename(f))).toEqual([
      'cp1.k8s.yaml',
      'cp2.k8s.yaml',
      'cp3.k8s.yaml',
      'cp4.k8s.yaml',
      'ext1.k8s.yaml',
      'hosting.k8s.yaml',
    ]);
    for (const f of base) expect(apply(f).stderr).toBe('');
    kubectl(state, [
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/controlplanes.tenancy.kflex.kubestellar.org',
      'crd/postcreatehooks.tenancy.kflex.kubestellar.org',
    ]);
    for (const f of files.filter((x) => !base.includes(x))) {
      const r = apply(f);
      expect({ file: path.basename(f), stderr: r.stderr }).toEqual({ file: path.basename(f), stderr: '' });
    }
    const cps = kubectl(state, [
      'get',
      'controlplanes',
      '-o',
      'jsonpath={range .items[*]}{.metadata.name}={.spec.type} {end}',
    ]).stdout;
    expect(cps.trim().split(' ').sort()).toEqual(['cp1=k8s', 'cp2=k3s', 'cp3=vcluster', 'cp4=host', 'ext1=external']);
    expect(kubectl(state, ['get', 'pch', 'hello', '-o', 'jsonpath={.spec.defaultVars[0].name}']).stdout).toBe(
      'Message',
    );
    // The short names and printer columns come from our CRD.
    expect(kubectl(state, ['get', 'cps']).stdout).toMatch(/^NAME\s+SYNCED\s+READY\s+TYPE\s+AGE/);
    // Re-applying is a no-op for server-side apply: the output is stable.
    for (const f of files) expect(apply(f).stdout).toMatch(/serverside-applied/);
  });

  test('NetworkPolicies read back from the API server: default deny, and exactly the allowed flows (H3)', () => {
    // Applied by the previous test. No kubelet/CNI here enforces them: this proves what is stored, not enforcement.
    const list = JSON.parse(kubectl(state, ['get', 'networkpolicies', '-A', '-o', 'json']).stdout).items;
    const names = (ns: string) =>
      list
        .filter((p: any) => p.metadata.namespace === ns)
        .map((p: any) => p.metadata.name)
        .sort();
    expect(names('kubeflex-system')).toEqual([
      'allow-controller',
      'allow-db-provision',
      'allow-dns',
      'allow-materializer',
      'allow-postgres',
      'default-deny',
    ]);
    // The materializer: egress only (to the hosting API server), nothing may connect to it.
    expect(list.find((p: any) => p.metadata.name === 'allow-materializer').spec).toEqual({
      podSelector: { matchLabels: { app: 'kubeflex-materializer' } },
      policyTypes: ['Egress'],
      egress: [{}],
    });
    expect(names('cp1-system')).toEqual(['allow-api', 'allow-postgres', 'allow-same-namespace', 'default-deny']);
    expect(names('cp2-system')).toEqual(['allow-api', 'allow-same-namespace', 'default-deny']);
    expect(names('cp4-system')).toEqual(['allow-same-namespace', 'default-deny']);
    const get = (ns: string, n: string) =>
      list.find((p: any) => p.metadata.namespace === ns && p.metadata.name === n).spec;
    for (const ns of ['kubeflex-system', 'cp1-system', 'cp2-system', 'cp4-system', 'ext1-system'])
      expect(get(ns, 'default-deny')).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    // PostgreSQL: only kine pods of tenant namespaces, the controller and the database Jobs, only on 5432.
    const pg = get('kubeflex-system', 'allow-postgres');
    expect(pg.ingress).toHaveLength(1);
    expect(pg.ingress[0].ports).toEqual([{ protocol: 'TCP', port: 5432 }]);
    expect(pg.ingress[0].from).toEqual([
      {
        namespaceSelector: {
          matchExpressions: [{ key: 'tenancy.kflex.kubestellar.org/control-plane', operator: 'Exists' }],
        },
        podSelector: { matchLabels: { app: 'kube-apiserver' } },
      },
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kubeflex-system' } },
        podSelector: { matchLabels: { app: 'kubeflex-controller-manager' } },
      },
      { podSelector: { matchLabels: { 'app.kubernetes.io/component': 'db-provision' } } },
    ]);
    // The tenant API: from the controller and the ingress controller's namespace, on the API port only.
    const api = get('cp1-system', 'allow-api');
    expect(api.ingress[0].from.map((f: any) => JSON.stringify(f))).toEqual([
      JSON.stringify({
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kubeflex-system' } },
        podSelector: { matchLabels: { app: 'kubeflex-controller-manager' } },
      }),
      JSON.stringify({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }),
    ]);
    expect(api.ingress[0].ports).toEqual([{ protocol: 'TCP', port: 9444 }]);
    // The database Job's pods carry the label the PostgreSQL policy admits.
    expect(
      JSON.parse(kubectl(state, ['get', 'job', '-n', 'kubeflex-system', 'db-cp1', '-o', 'json']).stdout).spec.template
        .metadata.labels,
    ).toMatchObject({ 'app.kubernetes.io/component': 'db-provision' });
  });

  test.each([
    ['k8s', (app: any, hosting: KubeflexHosting) => new K8sControlPlane(app, 'solo-k8s', { hosting })],
    [
      'k3s',
      (app: any, hosting: KubeflexHosting) =>
        new K3sControlPlane(app, 'solo-k3s', { hosting, storageClassName: 'fast' }),
    ],
    ['vcluster', (app: any, hosting: KubeflexHosting) => new VClusterControlPlane(app, 'solo-vc', { hosting })],
    ['host', (app: any, hosting: KubeflexHosting) => new HostControlPlane(app, 'solo-host', { hosting })],
    [
      'external',
      (app: any, hosting: KubeflexHosting) =>
        new ExternalControlPlane(app, 'solo-ext', { hosting, bootstrapSecret: { name: 'solo-ext-bootstrap' } }),
    ],
  ])('a %s control plane applies on its own and is accepted by the CRD schema', (type, make) => {
    const files = synthesizeAtomically(
      (app) => {
        const hosting = new KubeflexHosting(app, 'hosting');
        make(app, hosting);
      },
      path.join(tmp, type),
    );
    for (const f of files) expect(apply(f).stderr).toBe('');
    const name = `solo-${type === 'vcluster' ? 'vc' : type === 'external' ? 'ext' : type}`;
    expect(kubectl(state, ['get', 'cp', name, '-o', 'jsonpath={.spec.type}']).stdout).toBe(type);
    expect(kubectl(state, ['get', 'ns', `${name}-system`, '-o', 'jsonpath={.status.phase}']).stdout).toBe('Active');
  });

  test('the API server rejects a ControlPlane with a wrong spec.type', () => {
    const bad = path.join(tmp, 'bad.yaml');
    fs.writeFileSync(
      bad,
      'apiVersion: tenancy.kflex.kubestellar.org/v1alpha1\nkind: ControlPlane\nmetadata: {name: bad}\nspec: {type: bogus}\n',
    );
    expect(() => apply(bad)).toThrow(/spec.type: Unsupported value: "bogus"/);
  });

  test('the API server rejects a ControlPlane without spec.type', () => {
    const bad = path.join(tmp, 'bad2.yaml');
    fs.writeFileSync(
      bad,
      'apiVersion: tenancy.kflex.kubestellar.org/v1alpha1\nkind: ControlPlane\nmetadata: {name: bad2}\nspec: {}\n',
    );
    expect(() => apply(bad)).toThrow(/spec.type: Required value/);
  });
});
