import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import {
  ExternalControlPlane,
  HostControlPlane,
  K3sControlPlane,
  K8sControlPlane,
  KubeflexHosting,
  synthesizeAtomically,
  VClusterControlPlane,
} from '../../lib';
import { buildExamplePlatform } from '../../main';
import { ClusterState, kubectl, loadState } from './harness';

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

  test('the whole example platform applies with zero errors and no pod-security warnings', () => {
    const files = synthesizeAtomically(buildExamplePlatform, path.join(tmp, 'example'));
    const hosting = files.find((f) => f.endsWith('hosting.k8s.yaml'))!;
    // CRDs first, as with any CRD-defining manifest set (README: "Installing"): kubectl maps every kind up front.
    const crds = path.join(tmp, 'crds.yaml');
    fs.writeFileSync(
      crds,
      parseAllDocuments(fs.readFileSync(hosting, 'utf8'))
        .filter((d) => d.toJSON()?.kind === 'CustomResourceDefinition')
        .map((d) => d.toString())
        .join('---\n'),
    );
    expect(apply(crds).stdout).toMatch(/controlplanes.tenancy.kflex.kubestellar.org serverside-applied/);
    kubectl(state, [
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/controlplanes.tenancy.kflex.kubestellar.org',
      'crd/postcreatehooks.tenancy.kflex.kubestellar.org',
    ]);
    expect(apply(hosting).stderr).toBe('');
    for (const f of files.filter((x) => x !== hosting)) {
      const r = apply(f);
      // Restricted namespaces warn on any pod template that would be refused; baseline ones likewise.
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
