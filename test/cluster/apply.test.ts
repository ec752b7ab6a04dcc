import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  ExternalControlPlane,
  HostControlPlane,
  K3sControlPlane,
  K8sControlPlane,
  KubeflexApp,
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
    // Synthesized as the README's code does it: app.synth() of a KubeflexApp (what `cdk8s synth` runs).
    const work = path.join(tmp, 'readme');
    const app = new KubeflexApp({ outdir: path.join(work, 'dist') });
    buildExamplePlatform(app);
    app.synth();
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
      // Read back by name (each a read from storage): a list right after the writes was served stale twice under
      // full CI load by the test API server's watch cache over kine, missing cp1, the first plane written.
      const names = kubectl(empty, ['get', 'cps', 'cp1', 'cp2', 'cp3', 'cp4', 'ext1', '-o', 'name']).stdout;
      expect(names.trim().split('\n')).toEqual(
        ['cp1', 'cp2', 'cp3', 'cp4', 'ext1'].map((n) => `controlplane.tenancy.kflex.kubestellar.org/${n}`),
      );
    } finally {
      await empty.stop();
    }
  }, 120_000);

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

  test("every plane's namespace refuses a LoadBalancer Service (its quota) and admits a ClusterIP one", async () => {
    // Applied by the test above. The hosting cluster's quota controller fills in the quota's status; until it has,
    // the API server does not enforce it, so wait for that first.
    const planes = ['cp1', 'cp2', 'cp3', 'cp4', 'ext1'];
    for (const cp of planes) {
      const deadline = Date.now() + 60_000;
      const hard = () =>
        kubectl(state, [
          'get',
          'resourcequota',
          'kubeflex-plane',
          '-n',
          `${cp}-system`,
          '-o',
          'jsonpath={.status.hard}',
        ]).stdout;
      while (!hard().includes('services.loadbalancers') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(JSON.parse(hard())).toEqual({ 'services.loadbalancers': '0' });
    }
    const create = (type: string, name: string) =>
      spawnSync(
        'kubectl',
        [`--kubeconfig=${state.kubeconfig}`, 'create', 'service', type, name, '--tcp=443', '-n', 'cp1-system'],
        { encoding: 'utf8' },
      );
    const lb = create('loadbalancer', 'quota-probe-lb');
    expect(lb.status).not.toBe(0);
    expect(lb.stderr).toMatch(/exceeded quota: kubeflex-plane.*services\.loadbalancers/);
    const ip = create('clusterip', 'quota-probe-ip');
    expect(ip.stderr).toBe('');
    expect(ip.status).toBe(0);
    kubectl(state, ['delete', 'service', 'quota-probe-ip', '-n', 'cp1-system']);
  }, 120_000);

  test('Gateway API v1.6.3 installed: the TLSRoutes of k8s, k3s and vcluster planes and the HA/OIDC/1.33 k8s options apply cleanly', () => {
    const crdDir = path.resolve(__dirname, '../../crds/gateway-api-v1.6.3');
    for (const f of fs.readdirSync(crdDir).filter((x) => x.endsWith('.yaml'))) {
      expect(apply(path.join(crdDir, f)).stderr).toBe('');
    }
    kubectl(state, [
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/tlsroutes.gateway.networking.k8s.io',
      'crd/gateways.gateway.networking.k8s.io',
    ]);
    // The platform's side: a Gateway with a TLS passthrough listener that admits routes from tenant namespaces.
    kubectl(state, ['create', 'namespace', 'gateway-system']);
    kubectl(
      state,
      ['apply', '--server-side', '-f', '-'],
      JSON.stringify({
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { name: 'tenants', namespace: 'gateway-system' },
        spec: {
          gatewayClassName: 'passthrough',
          listeners: [
            {
              name: 'tls',
              protocol: 'TLS',
              port: 9443,
              hostname: '*.localtest.me',
              tls: { mode: 'Passthrough' },
              allowedRoutes: { namespaces: { from: 'All' }, kinds: [{ kind: 'TLSRoute' }] },
            },
          ],
        },
      }),
    );
    const files = synthesizeAtomically(
      (app) => {
        const hosting = new KubeflexHosting(app, 'hosting', {
          gateway: { name: 'tenants', namespace: 'gateway-system', sectionName: 'tls' },
        });
        new K8sControlPlane(app, 'gw-k8s', {
          hosting,
          kubernetesVersion: '1.33',
          replicas: 2,
          priorityClassName: 'system-cluster-critical',
          oidc: {
            issuerUrl: 'https://login.example.com',
            clientId: 'k',
            groupsClaim: 'groups',
            caConfigMap: { name: 'ca' },
          },
          extraArgs: { apiServer: { 'max-requests-inflight': '300' } },
        });
        new K3sControlPlane(app, 'gw-k3s', { hosting });
        new VClusterControlPlane(app, 'gw-vc', { hosting });
      },
      path.join(tmp, 'gateway'),
    );
    // Each plane's base file (namespace, ControlPlane) first, then its objects.
    const tenants = files.filter((f) => /gw-/.test(path.basename(f)));
    tenants.sort((a, b) => Number(!a.includes(`/${BASE_DIR}/`)) - Number(!b.includes(`/${BASE_DIR}/`)));
    expect(tenants).toHaveLength(6);
    for (const f of tenants) {
      expect({ file: path.basename(f), stderr: apply(f).stderr }).toEqual({ file: path.basename(f), stderr: '' });
    }
    for (const [cp, port] of [
      ['gw-k8s', 443],
      ['gw-k3s', 443],
      ['gw-vc', 443],
    ] as const) {
      const route = JSON.parse(kubectl(state, ['get', 'tlsroute', '-n', `${cp}-system`, cp, '-o', 'json']).stdout);
      expect(route.apiVersion).toBe('gateway.networking.k8s.io/v1');
      expect(route.spec.hostnames).toEqual([`${cp}.localtest.me`]);
      expect(route.spec.parentRefs).toEqual([
        expect.objectContaining({ kind: 'Gateway', name: 'tenants', namespace: 'gateway-system', sectionName: 'tls' }),
      ]);
      expect(route.spec.rules[0].backendRefs[0]).toMatchObject({ kind: 'Service', port });
      expect(kubectl(state, ['get', 'ingress', '-n', `${cp}-system`, '-o', 'name']).stdout).toBe('');
    }
    expect(
      kubectl(state, ['get', 'pdb', '-n', 'gw-k8s-system', '-o', 'jsonpath={.items[*].metadata.name}']).stdout,
    ).toBe('kube-apiserver kube-controller-manager');
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
      'allow-activator',
      'allow-controller',
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
    // The activator: any client of a sleeping plane's Service on its port range; out only to API servers.
    expect(list.find((p: any) => p.metadata.name === 'allow-activator').spec).toMatchObject({
      podSelector: { matchLabels: { app: 'kubeflex-activator' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ ports: [{ protocol: 'TCP', port: 20000, endPort: 29999 }] }],
    });
    expect(names('cp1-system')).toEqual(['allow-api', 'allow-postgres', 'allow-same-namespace', 'default-deny']);
    expect(names('cp2-system')).toEqual(['allow-api', 'allow-same-namespace', 'default-deny']);
    expect(names('cp4-system')).toEqual(['allow-same-namespace', 'default-deny']);
    // vcluster: the chart's egress policies for the syncer and the tenant pods it runs on the host.
    expect(names('cp3-system')).toEqual(['vc-cp-vcluster', 'vc-work-vcluster']);
    const get = (ns: string, n: string) =>
      list.find((p: any) => p.metadata.namespace === ns && p.metadata.name === n).spec;
    for (const ns of ['kubeflex-system', 'cp1-system', 'cp2-system', 'cp4-system', 'ext1-system'])
      expect(get(ns, 'default-deny')).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    // PostgreSQL: only kine pods of tenant namespaces and the controller (which makes and drops their databases),
    // only on 5432.
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
    ]);
    // The tenant API: from the controller, the ingress controller's namespace, hook pods of planes whose
    // admin-written hooks declare control-planes egress, and the activator; on the API port only.
    const api = get('cp1-system', 'allow-api');
    expect(api.ingress[0].from.map((f: any) => JSON.stringify(f))).toEqual([
      JSON.stringify({
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kubeflex-system' } },
        podSelector: { matchLabels: { app: 'kubeflex-controller-manager' } },
      }),
      JSON.stringify({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }),
      JSON.stringify({
        namespaceSelector: { matchLabels: { 'kflex.kubestellar.org/plane-api-clients': 'true' } },
        podSelector: { matchExpressions: [{ key: 'kflex.kubestellar.org/hook', operator: 'Exists' }] },
      }),
      // The activator, which passes a sleeping plane's clients through once it is awake.
      JSON.stringify({
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kubeflex-system' } },
        podSelector: { matchLabels: { app: 'kubeflex-activator' } },
      }),
    ]);
    expect(api.ingress[0].ports).toEqual([{ protocol: 'TCP', port: 9444 }]);
    // No Pod in kubeflex-system makes databases any more: nothing synthesized runs psql as the superuser.
    expect(kubectl(state, ['get', 'jobs', '-n', 'kubeflex-system', '-o', 'name']).stdout.trim()).toBe('');
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

  test("KubeStellar's helm-uninstall Job can run in kubeflex-system: its pod is admitted, its ServiceAccount deletes ControlPlanes", () => {
    // The chart's pre-delete Job in our words: kubectl as kubeflex-controller-manager, runAsNonRoot, no privilege
    // escalation, all capabilities dropped, no seccomp profile (so `baseline`, not `restricted`).
    const job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'ks-delete-cps', namespace: 'kubeflex-system' },
      spec: {
        template: {
          spec: {
            restartPolicy: 'Never',
            securityContext: { runAsNonRoot: true },
            serviceAccountName: 'kubeflex-controller-manager',
            containers: [
              {
                name: 'uninstall-cps',
                image: 'registry.invalid/kubectl:1',
                command: ['sh', '-c', 'kubectl delete controlplane cp1'],
                securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
              },
            ],
          },
        },
      },
    };
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'ks-delete-cps', namespace: 'kubeflex-system' },
      spec: job.spec.template.spec,
    };
    const file = path.join(tmp, 'uninstall.json');
    fs.writeFileSync(file, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [job, pod] }));
    const r = kubectl(state, ['create', '--dry-run=server', '-f', file]);
    expect(r.stdout).toMatch(/pod\/ks-delete-cps created \(server dry run\)/);
    // Admitted at baseline, and the restricted level still warns about what does not meet it.
    expect(r.stderr).toMatch(/would violate PodSecurity "restricted:latest"/);
    const can = kubectl(state, [
      'auth',
      'can-i',
      'delete',
      'controlplanes.tenancy.kflex.kubestellar.org',
      '--as',
      'system:serviceaccount:kubeflex-system:kubeflex-controller-manager',
    ]);
    expect(can.stdout.trim()).toBe('yes');
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
