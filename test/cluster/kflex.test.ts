// The real `kflex` binary (build/lib/cli/kflex.js) against its own real hosting cluster, with a user kubeconfig in a
// temp dir. For k8s, k3s and vcluster no tenant workload can run here, so the test plays the controller's part for
// them (writes the kubeconfig Secret and Ready status); host and external run with the real controller binary.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parse } from 'yaml';
import {
  ClusterState,
  freePort,
  HOSTING_KCM_CONTROLLERS,
  killAll,
  kubectl,
  loadState,
  markDeploymentReady,
  psql,
  startCluster,
  supplyPostgresCa,
  TestCluster,
  waitFor,
} from './harness';
import { bootTenant, Tenant } from './tenant';

const state: ClusterState = loadState();
const suite = state.skipped ? describe.skip : describe;
if (state.skipped) console.warn(`### SKIPPED kflex CLI tests: ${state.skipped}`);

const KFLEX = path.resolve(__dirname, '../../build/lib/cli/kflex.js');
const CONTROLLER = path.resolve(__dirname, '../../build/lib/controller/main.js');
jest.setTimeout(120_000);

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

suite('kflex on a real API server', () => {
  let hosting: TestCluster;
  let adopted: TestCluster;
  let dir: string;
  let kubeconfig: string;
  let controller: number | undefined;
  /** Where the real controller's log goes. */
  const controllerLog = path.join(state.logDir, 'kflex-controller.log');
  let cpkPort = 0;
  let tenant: Tenant | undefined;

  /** Runs kflex with the user's kubeconfig; resolves when it exits. */
  const kflex = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, [KFLEX, ...args], { env: { ...process.env, KUBECONFIG: kubeconfig, ...env } });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
  const k = (args: string[], input?: string) => kubectl(hosting, args, input).stdout;
  const userConfig = () => parse(fs.readFileSync(kubeconfig, 'utf8'));
  const names = (list: any[]) => list.map((x) => x.name).sort();
  const ext = (entry: any) => entry?.extensions?.find((e: any) => e.name === 'kubeflex')?.extension?.data;

  /** Writes Synced and Ready True and `secretRef` into a ControlPlane's status, as the controller would. */
  function writeReadyStatus(name: string, secretRef: Record<string, string>, observedGeneration?: number): void {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const c = (type: string, reason: string) => ({
      type,
      status: 'True',
      reason,
      message: '',
      lastTransitionTime: now,
      lastUpdateTime: now,
    });
    const status = {
      conditions: [c('Synced', 'ReconcileSuccess'), c('Ready', 'Available')],
      observedGeneration,
      secretRef,
    };
    k(['patch', 'cp', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
  }

  /**
   * The controller's part for types whose workloads cannot run here: once kflex has applied the ControlPlane,
   * write its kubeconfig Secret (pointing at this real API server, so the merged context works) and Ready status.
   */
  async function actAsController(name: string, secretName: string, key: string, inClusterKey: string): Promise<void> {
    const cp = await waitFor(`ControlPlane ${name}`, () => {
      try {
        return JSON.parse(k(['get', 'cp', name, '-o', 'json']));
      } catch {
        return undefined;
      }
    });
    const minted = fs.readFileSync(hosting.kubeconfig, 'utf8');
    k([
      'create',
      'secret',
      'generic',
      secretName,
      '-n',
      `${name}-system`,
      `--from-literal=${key}=${minted}`,
      `--from-literal=${inClusterKey}=${minted}`,
    ]);
    writeReadyStatus(
      name,
      { namespace: `${name}-system`, name: secretName, key, inClusterKey },
      cp.metadata.generation,
    );
  }

  beforeAll(async () => {
    [hosting, adopted] = await Promise.all([
      startCluster(state, 'kflexhost', HOSTING_KCM_CONTROLLERS),
      startCluster(state, 'kflexadopted'),
    ]);
    dir = fs.mkdtempSync(path.join(state.dir, 'kflex-'));
    // A user's kubeconfig whose only context is the hosting cluster, named like a kind cluster.
    kubeconfig = path.join(dir, 'config');
    fs.writeFileSync(kubeconfig, fs.readFileSync(hosting.kubeconfig, 'utf8').replace(/kflexhost/g, 'kind-kubeflex'), {
      mode: 0o600,
    });
  });
  afterAll(async () => {
    if (controller) await killAll([controller]);
    await tenant?.stop();
    await Promise.all([hosting?.stop(), adopted?.stop()]);
  });

  test('every command has --help; unknown commands and flags are usage errors', async () => {
    for (const cmd of ['init', 'create', 'delete', 'list', 'sleep', 'wake', 'ctx', 'adopt', 'config', 'version']) {
      const r = await kflex([cmd, '--help']);
      expect({ cmd, code: r.code, head: r.stdout.split('\n')[0] }).toEqual({
        cmd,
        code: 0,
        head: expect.stringMatching(new RegExp(`^Usage: kflex ${cmd}`)),
      });
      expect(r.stdout).toMatch(/--kubeconfig/);
    }
    expect(await kflex(['bogus'])).toMatchObject({
      code: 2,
      stderr:
        'Error: unknown command "bogus" (commands: init, create, delete, list, sleep, wake, ctx, adopt, config, version)\n',
    });
    expect(await kflex(['list', '--bogus'])).toMatchObject({ code: 2, stderr: 'Error: unknown flag --bogus\n' });
    expect((await kflex(['--help'])).stdout).toMatch(/^kflex: KubeFlex control planes/);
  });

  test('fails when no hosting cluster is there yet, and when the cluster is unreachable', async () => {
    const r = await kflex(['list']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'Error: no hosting cluster found: no hosting context is stored and the current context "kind-kubeflex" is not one; run `kflex init`, or `kubectl config use-context <hosting>` and `kflex ctx --set-current-for-hosting`\n',
    );
    const diag = await kflex(['config', 'diagnose']);
    expect(diag.code).toBe(1);
    expect(JSON.parse(diag.stdout)).toMatchObject({ status: 'critical', message: 'no hosting context is stored' });
    expect(await kflex(['config', 'set-hosting', 'nope'])).toMatchObject({
      code: 1,
      stderr: `Error: context nope not found in ${kubeconfig}\n`,
    });
    const dead = path.join(dir, 'dead');
    fs.writeFileSync(
      dead,
      fs.readFileSync(kubeconfig, 'utf8').replace(hosting.server, `https://127.0.0.1:${await freePort()}`),
    );
    const d = await kflex(['init', `--kubeconfig=${dead}`]);
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(
      /^Error: cannot reach the cluster of context kind-kubeflex at https:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/,
    );
    expect(d.stderr).not.toMatch(/\n\s+at /);
  });

  test('init applies the hosting install and records the hosting context durably', async () => {
    const r = await kflex(['init', '--domain', 'example.test', '--external-port', '8443']);
    expect(r).toMatchObject({
      code: 0,
      stdout: `Hosting components applied to context kind-kubeflex (${hosting.server}); kind-kubeflex is the hosting context.\n`,
    });
    expect(
      k([
        'get',
        'crd',
        'controlplanes.tenancy.kflex.kubestellar.org',
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Established")].status}',
      ]),
    ).toBe('True');
    expect(JSON.parse(k(['get', 'cm', '-n', 'kubeflex-system', 'kubeflex-config', '-o', 'json'])).data).toMatchObject({
      domain: 'example.test',
      externalPort: '8443',
    });
    expect(
      k([
        'get',
        'deployment',
        '-n',
        'kubeflex-system',
        'kubeflex-controller-manager',
        '-o',
        'jsonpath={.metadata.managedFields[0].manager}',
        '--show-managed-fields',
      ]),
    ).toBe('kflex');
    // kubectl rewriting the file keeps the extensions (KubeFlex #255: fragile hosting-context storage).
    spawnSync('kubectl', [
      `--kubeconfig=${kubeconfig}`,
      'config',
      'set-context',
      'kind-kubeflex',
      '--namespace=default',
    ]);
    const doc = userConfig();
    expect(ext(doc)).toEqual({ 'hosting-cluster-ctx-name': 'kind-kubeflex' });
    expect(ext(doc.contexts[0].context)).toEqual({ 'is-hosting-cluster-ctx': 'true' });
    expect(await kflex(['list'])).toEqual({ code: 0, stdout: 'No control planes found.\n', stderr: '' });
    const diag = await kflex(['config', 'diagnose']);
    expect(diag.code).toBe(0);
    expect(JSON.parse(diag.stdout)).toMatchObject({ status: 'ok', data: { hostingContext: 'kind-kubeflex' } });
    const v = await kflex(['version']);
    expect(v).toEqual({
      code: 0,
      stdout: 'Kubeflex version: v0.9.3+cdk8s-kubeflex.0.1.0 2026-12-01\nKubernetes version: v1.32.2\n',
      stderr: '',
    });
  });

  test("KubeFlex's global flags, init forms, version output and help defaults work as in KubeFlex", async () => {
    // Every KubeFlex e2e script passes --chatty-status=false; some pass -v.
    expect(await kflex(['list', '--chatty-status=false', '--verbosity=2'])).toMatchObject({ code: 0 });
    expect(await kflex(['list', '-s=false', '-v', '3'])).toMatchObject({ code: 0 });
    expect(await kflex(['list', '-v', 'high'])).toMatchObject({
      code: 2,
      stderr: 'Error: --verbosity high is not a non-negative integer\n',
    });
    // `kflex init [cluster-name]`: the name only matters with --create-kind.
    expect(await kflex(['init', 'mycluster', '--dry-run'])).toMatchObject({ code: 0 });
    expect(await kflex(['init', 'a', 'b'])).toMatchObject({ code: 2, stderr: 'Error: unexpected argument b\n' });
    const kind = await kflex(['init', 'mycluster', '--create-kind']);
    expect(kind.code).toBe(1);
    expect(kind.stderr).toBe(
      'Error: --create-kind: kind cannot run here: no kind binary on PATH (it also needs a container engine such as Docker); create the cluster first (e.g. kind create cluster --name mycluster), then run kflex init in its context\n',
    );
    // KubeStellar's prerequisite check: `kflex version | grep "^Kubeflex version:"`, even when no cluster answers.
    const dead = path.join(dir, 'dead-version');
    fs.writeFileSync(
      dead,
      fs.readFileSync(kubeconfig, 'utf8').replace(hosting.server, `https://127.0.0.1:${await freePort()}`),
    );
    const v = await kflex(['version', `--kubeconfig=${dead}`]);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(
      /^Kubeflex version: v0\.9\.3\+cdk8s-kubeflex\.0\.1\.0 2026-12-01\nCould not connect to a Kubernetes cluster: .*ECONNREFUSED/,
    );
    // The help states the default the code uses.
    expect((await kflex(['delete', '--help'])).stdout).toMatch(
      /--timeout\s+how long to wait \(e\.g\. 90s, 10m; default 5m\)/,
    );
  });

  test.each([
    ['cp1', 'k8s', 'admin-kubeconfig', 'kubeconfig', 'kubeconfig-incluster'],
    ['cp2', 'k3s', 'k3s-config', 'config', 'config-incluster'],
    ['cp3', 'vcluster', 'vc-vcluster', 'config', 'config-incluster'],
  ])(
    'create %s --type %s waits for Ready, merges the kubeconfig with KubeFlex names and switches',
    async (name, type, secret, key, inKey) => {
      const run = kflex(['create', name, '--type', type, '--timeout', '60s']);
      await actAsController(name, secret, key, inKey);
      const r = await run;
      expect(r).toMatchObject({ code: 0, stdout: `control plane ${name} is Ready; current context is now ${name}\n` });
      expect(r.stderr).toMatch(
        new RegExp(
          `^control plane ${name} \\(${type}\\) applied to context kind-kubeflex\\nWaiting for control plane ${name} to be Ready`,
        ),
      );
      const doc = userConfig();
      expect(doc['current-context']).toBe(name);
      const ctx = doc.contexts.find((c: any) => c.name === name);
      expect(ctx.context).toMatchObject({ cluster: `${name}-cluster`, user: `${name}-admin` });
      expect(ext(ctx.context)).toEqual({ 'controlplane-name': name });
      expect(doc.clusters.find((c: any) => c.name === `${name}-cluster`).cluster.server).toBe(hosting.server);
      // The merged context works.
      expect(
        spawnSync('kubectl', [`--kubeconfig=${kubeconfig}`, 'get', 'ns', 'kube-system', '-o', 'name'], {
          encoding: 'utf8',
        }).stdout.trim(),
      ).toBe('namespace/kube-system');
      // Everything kflex applied carries the control-plane label and one field manager.
      const ns = JSON.parse(k(['get', 'ns', `${name}-system`, '-o', 'json', '--show-managed-fields']));
      expect(ns.metadata.labels['tenancy.kflex.kubestellar.org/control-plane']).toBe(name);
      expect(ns.metadata.managedFields.map((f: any) => f.manager)).toEqual(['kflex']);
    },
  );

  test('list shows NAME, SYNCED, READY, TYPE, AGE', async () => {
    const r = await kflex(['list']);
    expect(r.code).toBe(0);
    expect(r.stdout.replace(/\d+s\n/g, 'AGE\n')).toBe(
      'NAME   SYNCED   READY   TYPE       AGE\ncp1    True     True    k8s        AGE\ncp2    True     True    k3s        AGE\ncp3    True     True    vcluster   AGE\n',
    );
  });

  test('ctx: to hosting, to a control plane, get, list, rename, delete, and re-fetch from the hosting cluster', async () => {
    expect(await kflex(['ctx'])).toMatchObject({ code: 0, stdout: 'switched to hosting context kind-kubeflex\n' });
    expect(userConfig()['current-context']).toBe('kind-kubeflex');
    expect(await kflex(['ctx', 'cp1'])).toMatchObject({ code: 0, stdout: 'switched to context cp1\n' });
    expect((await kflex(['ctx', 'get'])).stdout).toBe('cp1\n');
    expect((await kflex(['ctx', 'list'])).stdout).toBe(
      'CONTEXT           MANAGED BY KFLEX   CONTROLPLANE\n  kind-kubeflex   hosting\n* cp1             yes                cp1\n  cp2             yes                cp2\n  cp3             yes                cp3\n',
    );
    // From a tenant context, commands still find the hosting cluster (stored context).
    expect((await kflex(['list'])).code).toBe(0);

    expect(await kflex(['ctx', 'rename', 'cp2', 'cp2r'])).toMatchObject({ code: 0 });
    let doc = userConfig();
    expect(names(doc.contexts)).toEqual(['cp1', 'cp2r', 'cp3', 'kind-kubeflex']);
    expect(names(doc.clusters)).toEqual(['cp1-cluster', 'cp2r-cluster', 'cp3-cluster', 'kind-kubeflex']);
    expect(names(doc.users)).toEqual(['cp1-admin', 'cp2r-admin', 'cp3-admin', 'kind-kubeflex']);
    expect(await kflex(['ctx', 'delete', 'cp2r'])).toMatchObject({ code: 0, stdout: 'context cp2r deleted\n' });
    doc = userConfig();
    expect(names(doc.contexts)).toEqual(['cp1', 'cp3', 'kind-kubeflex']);
    expect(names(doc.users)).toEqual(['cp1-admin', 'cp3-admin', 'kind-kubeflex']);
    // The context is fetched again from the hosting cluster, with the controlplane-name mark (a KubeFlex quirk fixed).
    expect(await kflex(['ctx', 'cp2'])).toMatchObject({ code: 0, stdout: 'switched to context cp2\n' });
    expect(ext(userConfig().contexts.find((c: any) => c.name === 'cp2').context)).toEqual({
      'controlplane-name': 'cp2',
    });
    // A context kflex does not manage is not deleted without --force when nobody can be asked.
    expect(await kflex(['ctx', 'delete', 'kind-kubeflex'])).toMatchObject({
      code: 1,
      stderr: 'Error: context kind-kubeflex is not managed by kflex; use --force to delete it anyway\n',
    });
    expect(await kflex(['ctx', 'nope'])).toMatchObject({
      code: 1,
      stderr:
        'Error: control plane nope not found on the hosting cluster (context kind-kubeflex) and no local context nope exists\n',
    });
  });

  test('fails when the name is taken, the type is unknown, a hook is missing, or Ready does not come in time', async () => {
    expect(await kflex(['create', 'cp1'])).toMatchObject({
      code: 1,
      stderr: 'Error: control plane cp1 already exists on the hosting cluster (context kind-kubeflex)\n',
    });
    expect(await kflex(['create', 'x1', '--type', 'ocm'])).toMatchObject({
      code: 2,
      stderr: 'Error: --type ocm is not a control-plane type (one of k8s, k3s, vcluster, host)\n',
    });
    expect(await kflex(['create', 'x1', '-p', 'nope'])).toMatchObject({
      code: 1,
      stderr: 'Error: PostCreateHook "nope" not found on the hosting cluster (available: none)\n',
    });
    // M8: whoever can write a PostCreateHook cannot get the operator to apply cluster-wide objects unasked.
    k(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
        kind: 'PostCreateHook',
        metadata: { name: 'escalate' },
        spec: {
          templates: [
            {
              apiVersion: 'rbac.authorization.k8s.io/v1',
              kind: 'ClusterRoleBinding',
              metadata: { name: 'escalate-{{.ControlPlaneName}}' },
              roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
              subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: 'default' }],
            },
          ],
        },
      }),
    );
    expect(await kflex(['create', 'x1', '--type', 'host', '-p', 'escalate'])).toMatchObject({
      code: 1,
      stderr:
        'Error: PostCreateHook "hosting/hook-escalate": invalid templates[0].kind "ClusterRoleBinding": is ' +
        "cluster-scoped: it would be applied to the hosting cluster outside the tenant namespace with the installer's " +
        'rights; pass --allow-cluster-scoped to apply it\n',
    });
    expect(k(['get', 'clusterrolebinding', '-o', 'name'])).not.toMatch(/escalate/);
    k(['delete', 'postcreatehook', 'escalate']);
    expect(await kflex(['create', 'Bad_Name'])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/^Error: K8sControlPlane "Bad_Name": invalid name "Bad_Name"/),
    });
    expect(await kflex(['create'])).toMatchObject({ code: 2, stderr: 'Error: the control plane name is required\n' });
    expect(k(['get', 'ns', '-o', 'name'])).not.toMatch(/x1-system/);
    const slow = await kflex(['create', 'slow', '--type', 'k3s', '--timeout', '2s']);
    expect(slow.code).toBe(1);
    expect(slow.stderr).toMatch(
      /Error: timed out after 2s waiting for control plane slow to be Ready \(last: Synced=Unknown Ready=Unknown\)\n$/,
    );
    expect(await kflex(['delete', 'slow'])).toMatchObject({ code: 0 });
    const dry = await kflex(['create', 'dry', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^kind: ControlPlane$/m);
    expect(() => k(['get', 'cp', 'dry'])).toThrow(/NotFound/);
    const ha = await kflex(['create', 'dry', '--dry-run', '--kube-version', '1.33', '--replicas', '2']);
    expect(ha.code).toBe(0);
    expect(ha.stdout).toMatch(/image: registry.k8s.io\/kube-apiserver:v1.33.13$/m);
    expect(ha.stdout).toMatch(/^kind: PodDisruptionBudget$/m);
    expect(ha.stdout).toMatch(/--leader-elect=true/);
    const old = await kflex(['create', 'dry', '--dry-run', '--kube-version', '1.29']);
    expect(old).toMatchObject({ code: 1 });
    expect(old.stderr).toMatch(
      /kubernetesVersion "1.29": is not supported; supported: 1.32 \(v1.32.2\), 1.33 \(v1.33.13\)/,
    );
    expect(await kflex(['create', 'dry', '--dry-run', '--type', 'k3s', '--replicas', '2'])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--kube-version and --replicas apply to --type k8s only, not k3s/),
    });
    expect(await kflex(['create', 'dry', '--dry-run', '--replicas', 'two'])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--replicas two: must be a whole number/),
    });
  });

  test("N9: whether a hook object is cluster-scoped is the API server's answer (a CRD-defined kind), not a list", async () => {
    k(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: 'widgets.example.com' },
        spec: {
          group: 'example.com',
          scope: 'Cluster',
          names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
            },
          ],
        },
      }),
    );
    await waitFor('widgets served', () => {
      try {
        return k(['api-resources', '--api-group=example.com', '-o', 'name']).includes('widgets');
      } catch {
        return false;
      }
    });
    k(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
        kind: 'PostCreateHook',
        metadata: { name: 'widget' },
        spec: {
          templates: [{ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w-{{.ControlPlaneName}}' } }],
        },
      }),
    );
    expect(await kflex(['create', 'w1', '-p', 'widget'])).toMatchObject({
      code: 1,
      stderr:
        'Error: Widget w-w1 (example.com/v1) is cluster-scoped on this cluster: it would be applied outside the tenant namespace with your rights; pass --allow-cluster-scoped to apply it; nothing was applied\n',
    });
    expect(() => k(['get', 'cp', 'w1'])).toThrow(/NotFound/);
    expect(() => k(['get', 'ns', 'w1-system'])).toThrow(/NotFound/);
    expect(k(['get', 'widgets', '-o', 'name'])).toBe('');
    k(['delete', 'postcreatehook', 'widget']);
  });

  test("N8: kflex ctx reads only the kubeconfig Secret of the plane's type in <cp>-system, whatever status says", async () => {
    // A plane whose status (writable by whoever holds controlplanes/status) points at the PostgreSQL password.
    k(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
        kind: 'ControlPlane',
        metadata: { name: 'n8' },
        spec: { type: 'k3s' },
      }),
    );
    writeReadyStatus('n8', {
      namespace: 'kubeflex-system',
      name: 'postgres-postgresql',
      key: 'postgres-password',
      inClusterKey: 'x',
    });
    const before = fs.readFileSync(kubeconfig, 'utf8');
    expect(await kflex(['ctx', 'n8'])).toMatchObject({
      code: 1,
      stderr:
        'Error: ControlPlane n8: status.secretRef kubeflex-system/postgres-postgresql key postgres-password is not the kubeconfig Secret of its type (n8-system/k3s-config key config); not read\n',
    });
    expect(fs.readFileSync(kubeconfig, 'utf8')).toBe(before);
    k(['delete', 'cp', 'n8', '--wait=false']);
  });

  test('delete removes everything applied for the control plane and its local context', async () => {
    const labelled = () =>
      k([
        'get',
        'ns,jobs,secrets,rolebindings,clusterrolebindings',
        '-A',
        '-l',
        'tenancy.kflex.kubestellar.org/control-plane=cp1',
        '-o',
        'name',
      ]).trim();
    expect(labelled()).toMatch(/namespace\/cp1-system/);
    expect(labelled()).toMatch(/rolebinding.rbac.authorization.k8s.io\/kubeflex-controller/);
    const r = await kflex(['delete', 'cp1']);
    expect(r).toMatchObject({ code: 0, stdout: 'control plane cp1 deleted; current context is kind-kubeflex\n' });
    expect(labelled()).toBe('');
    expect(() => k(['get', 'cp', 'cp1'])).toThrow(/NotFound/);
    const doc = userConfig();
    expect(names(doc.contexts)).not.toContain('cp1');
    expect(names(doc.clusters)).not.toContain('cp1-cluster');
    expect(names(doc.users)).not.toContain('cp1-admin');
    expect(doc['current-context']).toBe('kind-kubeflex');
    expect(await kflex(['delete', 'cp1'])).toMatchObject({
      code: 1,
      stderr: 'Error: control plane cp1 not found on the hosting cluster (context kind-kubeflex)\n',
    });
  });

  test('with the real controller: create --type host, and adopt a second real API server', async () => {
    // The superuser password of the test PostgreSQL, as an operator of an existing database would provide it.
    k([
      'create',
      'secret',
      'generic',
      'postgres-postgresql',
      '-n',
      'kubeflex-system',
      `--from-literal=postgres-password=${state.pgPassword}`,
    ]);
    supplyPostgresCa(hosting.kubeconfig, state);
    cpkPort = await freePort();
    const log = fs.openSync(controllerLog, 'a');
    controller = spawn(
      process.execPath,
      [
        CONTROLLER,
        `--kubeconfig=${hosting.kubeconfig}`,
        '--health-port=0',
        '--requeue-not-ready=500ms',
        // In-cluster names the controller would resolve in a real cluster, mapped to the processes on loopback.
        `--connect-to=cpk.cpk-system.svc.cluster.local:443=127.0.0.1:${cpkPort}`,
        `--connect-to=postgres-postgresql.kubeflex-system.svc:5432=127.0.0.1:${state.pgPort}`,
      ],
      { stdio: ['ignore', log, log] },
    ).pid;
    fs.closeSync(log);
    const h = await kflex(['create', 'h1', '--type', 'host', '--timeout', '60s']);
    expect(h).toMatchObject({
      code: 0,
      stdout:
        'control plane h1 is Ready; it is the hosting cluster itself, so the current context stays kind-kubeflex\n',
    });

    expect(await kflex(['adopt', 'ext1', '-a', adopted.kubeconfig, '-u', 'https://127.0.0.1:6443'])).toMatchObject({
      code: 2,
      stderr:
        'Error: --url-override https://127.0.0.1:6443: a loopback address is not reachable from the hosting cluster; use an address the cluster can reach\n',
    });
    const a = await kflex([
      'adopt',
      'ext1',
      '-a',
      adopted.kubeconfig,
      '-c',
      'kflexadopted',
      '-x',
      '600',
      '--timeout',
      '60s',
    ]);
    expect(a).toMatchObject({
      code: 0,
      stdout: 'control plane ext1 adopted and Ready; its kubeconfig is in Secret ext1-system/admin-kubeconfig\n',
    });
    expect(() => k(['get', 'secret', '-n', 'kubeflex-system', 'ext1-bootstrap'])).toThrow(/NotFound/);
    const minted = parse(
      Buffer.from(
        JSON.parse(k(['get', 'secret', '-n', 'ext1-system', 'admin-kubeconfig', '-o', 'json'])).data[
          'kubeconfig-incluster'
        ],
        'base64',
      ).toString(),
    );
    expect(minted.clusters[0].cluster.server).toBe(adopted.server);
    expect(kubectl(adopted, ['get', 'sa', '-n', 'kube-system', 'kubeflex', '-o', 'name']).stdout.trim()).toBe(
      'serviceaccount/kubeflex',
    );
    expect((await kflex(['list'])).stdout).toMatch(/^ext1\s+True\s+True\s+external\s+\d+s$/m);
    expect(await kflex(['adopt', 'ext1', '-a', adopted.kubeconfig])).toMatchObject({
      code: 1,
      stderr: 'Error: control plane ext1 already exists on the hosting cluster (context kind-kubeflex)\n',
    });
    for (const n of ['ext1', 'h1']) expect(await kflex(['delete', n])).toMatchObject({ code: 0 });
    expect(k(['get', 'cp', '-o', 'name']).trim().split('\n').sort()).toEqual([
      'controlplane.tenancy.kflex.kubestellar.org/cp2',
      'controlplane.tenancy.kflex.kubestellar.org/cp3',
    ]);
  });
  test('k8s end to end with the real controller: kflex create, tenant from the minted Secrets, kubectl, kflex delete', async () => {
    const run = kflex(['create', 'cpk', '--type', 'k8s', '--timeout', '120s']);
    const secret = (ns: string, name: string, key: string) =>
      Buffer.from(JSON.parse(k(['get', 'secret', '-n', ns, name, '-o', 'json'])).data[key], 'base64').toString();
    await waitFor('minted Secrets', () => {
      try {
        return (
          secret('cpk-system', 'kine-postgres', 'password') &&
          secret('cpk-system', 'cm-kubeconfig', 'kubeconfig') &&
          secret('cpk-system', 'encryption-config', 'encryption-config.yaml') &&
          // The controller made the role and database (on the test server, as its superuser) and recorded it.
          secret('kubeflex-system', 'cpk-db-credentials', 'provisioned')
        );
      } catch {
        return undefined;
      }
    });
    const certs = JSON.parse(k(['get', 'secret', '-n', 'cpk-system', 'k8s-certs', '-o', 'json'])).data;
    tenant = await bootTenant(
      state,
      'cpk',
      {
        certs: Object.fromEntries(
          Object.entries(certs).map(([kk, v]) => [kk, Buffer.from(v as string, 'base64').toString()]),
        ),
        cmKubeconfig: secret('cpk-system', 'cm-kubeconfig', 'kubeconfig'),
        adminKubeconfig: secret('cpk-system', 'admin-kubeconfig', 'kubeconfig-incluster'),
        dbPassword: secret('cpk-system', 'kine-postgres', 'password'),
        dbMark: secret('kubeflex-system', 'cpk-db-credentials', 'mark'),
        encryptionConfig: secret('cpk-system', 'encryption-config', 'encryption-config.yaml'),
        dbCa: secret('cpk-system', 'kine-postgres', 'ca.crt'),
        provisioned: true,
      },
      cpkPort,
    );
    await tenant.start();
    // No kubelet: the Deployment is marked ready through its status; discovery through the minted kubeconfig is real.
    markDeploymentReady(hosting, 'cpk-system', 'kube-apiserver');
    const r = await run;
    expect(r).toMatchObject({ code: 0, stdout: 'control plane cpk is Ready; current context is now cpk\n' });
    const doc = userConfig();
    expect(doc.clusters.find((c: any) => c.name === 'cpk-cluster').cluster.server).toBe(
      'https://cpk.example.test:8443',
    );
    // The merged context, with only the address changed (no DNS for example.test here), reaches the tenant.
    const out = spawnSync(
      'kubectl',
      [
        `--kubeconfig=${kubeconfig}`,
        `--server=https://127.0.0.1:${cpkPort}`,
        '--tls-server-name=cpk.example.test',
        'get',
        'ns',
        'kube-system',
        '-o',
        'name',
      ],
      { encoding: 'utf8' },
    );
    expect(out.stdout.trim()).toBe('namespace/kube-system');

    // Sleep and wake (issue 12): workloads to zero, Ready=False/Sleeping from the controller, data kept.
    const tenantKubectl = (...a: string[]) =>
      spawnSync(
        'kubectl',
        [
          `--kubeconfig=${kubeconfig}`,
          `--server=https://127.0.0.1:${cpkPort}`,
          '--tls-server-name=cpk.example.test',
          ...a,
        ],
        { encoding: 'utf8' },
      );
    expect(tenantKubectl('create', 'configmap', 'before-sleep', '--from-literal=k=v').status).toBe(0);
    expect(await kflex(['sleep', 'cpk'])).toMatchObject({ code: 0, stdout: 'control plane cpk is asleep\n' });
    const replicas = (d: string) =>
      k(['get', 'deployment', '-n', 'cpk-system', d, '-o', 'jsonpath={.spec.replicas}']).trim();
    expect([replicas('kube-apiserver'), replicas('kube-controller-manager')]).toEqual(['0', '0']);
    await tenant.stop(); // what the kubelet does with zero replicas
    await waitFor('cpk Sleeping', () =>
      k(['get', 'cp', 'cpk', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].reason}']) === 'Sleeping'
        ? true
        : undefined,
    );
    expect((await kflex(['list'])).stdout).toMatch(/^cpk\s+True\s+Sleeping\s+k8s\s/m);
    const wake = kflex(['wake', 'cpk', '--timeout', '120s']);
    await waitFor('replicas back to 1', () => (replicas('kube-apiserver') === '1' ? true : undefined));
    const woke = Date.now();
    await tenant.start(); // what the kubelet does with one replica
    markDeploymentReady(hosting, 'cpk-system', 'kube-apiserver');
    expect(await wake).toMatchObject({ code: 0, stdout: 'control plane cpk is awake and Ready\n' });
    expect(Date.now() - woke).toBeLessThan(60_000);
    expect(tenantKubectl('get', 'configmap', 'before-sleep', '-o', 'jsonpath={.data.k}').stdout).toBe('v');
    // Going to sleep and waking each patch the plane (the replicas recorded, then cleared): the status is written onto
    // what the patch returned, not onto the copy read before (a 409, and a pass more, at every sleep and wake).
    const failedPasses = fs
      .readFileSync(controllerLog, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"controlPlane":"cpk"') && l.includes('"reconcile failed"'));
    expect(failedPasses).toEqual([]);

    await tenant.stop();
    tenant = undefined;
    await waitFor('cpk finalizer (after its database Job)', () =>
      k(['get', 'cp', 'cpk', '-o', 'jsonpath={.metadata.finalizers}']).includes('kflex.kubestellar.org/finalizer'),
    );
    expect(await kflex(['delete', 'cpk'])).toMatchObject({
      code: 0,
      stdout: 'control plane cpk deleted; current context is kind-kubeflex\n',
    });
    const pg = { pgPort: state.pgPort, pgSocketDir: state.pgSocketDir };
    expect(psql(pg, "SELECT count(*) FROM pg_database WHERE datname = 'cpk'").trim()).toBe('0');
    expect(psql(pg, "SELECT count(*) FROM pg_roles WHERE rolname = 'cpk'").trim()).toBe('0');
  }, 300_000);
});
