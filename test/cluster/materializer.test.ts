// The materializer binary against its own real hosting cluster, running with its own ServiceAccount token (so the
// synthesized RBAC is what is tested): bare ControlPlanes become their tenant's objects, and every safety rule holds.
// Pods do not run here (no kubelet); test/node runs the same flows to Ready=True on a real node.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App } from 'cdk8s';
import { parse, stringify } from 'yaml';
import { K8sControlPlane, KubeflexHosting, materialize, PostCreateHook, synthesizeAtomically } from '../../lib';
import { withOwnership } from '../../lib/materialize';
import { MATERIALIZE_ERROR, MATERIALIZED_FOR } from '../../lib/wire';
import {
  applySynthesized,
  ClusterState,
  HOSTING_KCM_CONTROLLERS,
  killAll,
  kubectl,
  loadState,
  startCluster,
  TestCluster,
  waitFor,
} from './harness';

const state: ClusterState = loadState();
const suite = state.skipped ? describe.skip : describe;
if (state.skipped) console.warn(`### SKIPPED materializer tests: ${state.skipped}`);

const HOOK = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'greeting-{{.ControlPlaneName}}' },
  data: { message: '{{.Message}}' },
};

suite('materializer: bare ControlPlanes (as KubeFlex clients create them) become tenants', () => {
  let hosting: TestCluster;
  let proc: ChildProcess | undefined;
  let tmp: string;
  const k = (args: string[], input?: string) => kubectl(hosting, args, input).stdout;
  const json = (args: string[]) => JSON.parse(k([...args, '-o', 'json']));
  const exists = (args: string[]) => {
    try {
      k(args);
      return true;
    } catch {
      return false;
    }
  };
  const bare = (name: string, spec: object) =>
    k(
      ['apply', '-f', '-'],
      stringify({
        apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
        kind: 'ControlPlane',
        metadata: { name },
        spec,
      }),
    );
  const annotation = (cp: string, a: string) => json(['get', 'cp', cp]).metadata.annotations?.[a];

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kflex-materializer-'));
    hosting = await startCluster(state, 'materializer', HOSTING_KCM_CONTROLLERS);
    const files = synthesizeAtomically(
      (app) => {
        // KubeStellar's WDS hooks make ClusterRoles and ClusterRoleBindings: the admin grants the hook applier that.
        const h = new KubeflexHosting(app, 'hosting', { domain: 'example.com', hookClusterRoles: ['cluster-admin'] });
        new PostCreateHook(h, 'hello', { hosting: h, templates: [HOOK], defaultVars: { Message: 'hi' } });
      },
      path.join(tmp, 'dist'),
    );
    applySynthesized(hosting, files);
    // Its own ServiceAccount's token: what the Deployment runs with.
    const token = k(['create', 'token', 'kubeflex-materializer', '-n', 'kubeflex-system', '--duration=1h']).trim();
    const kc = parse(fs.readFileSync(hosting.kubeconfig, 'utf8'));
    kc.users[0].user = { token };
    const kubeconfig = path.join(tmp, 'materializer.kubeconfig');
    fs.writeFileSync(kubeconfig, stringify(kc), { mode: 0o600 });
    const out = fs.openSync(path.join(state.logDir, 'materializer.log'), 'a');
    proc = spawn(
      process.execPath,
      [
        path.resolve(__dirname, '../../build/lib/materializer/main.js'),
        `--kubeconfig=${kubeconfig}`,
        '--health-port=0',
      ],
      { stdio: ['ignore', out, out] },
    );
    fs.closeSync(out);
  }, 120_000);
  afterAll(async () => {
    if (proc?.pid) await killAll([proc.pid]);
    await hosting?.stop();
    // The directory holds a kubeconfig with the materializer's token: nothing of it stays behind.
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('a bare k8s ControlPlane gets exactly the synthesized objects, marked with its UID and owned by it', async () => {
    bare('bare1', { type: 'k8s', postCreateHooks: [{ hookName: 'hello', vars: { Message: 'from a bare CP' } }] });
    const uid = json(['get', 'cp', 'bare1']).metadata.uid;
    await waitFor('bare1-system', () => exists(['get', 'ns', 'bare1-system']), 30_000);
    await waitFor('kube-apiserver Deployment', () => exists(['get', 'deploy', '-n', 'bare1-system', 'kube-apiserver']));
    // What the server holds is what the constructs synthesize for the same ControlPlane and hosting configuration.
    const config = json(['get', 'configmap', '-n', 'kubeflex-system', 'kubeflex-config']).data;
    const hooks = [json(['get', 'postcreatehook', 'hello'])];
    const cp = json(['get', 'cp', 'bare1']);
    const expected = withOwnership(materialize(cp, config, hooks), cp);
    expect(expected.length).toBeGreaterThan(10);
    for (const o of expected) {
      const group = o.apiVersion.includes('/') ? `.${o.apiVersion.split('/')[0]}` : '';
      const where = o.metadata.namespace ? ['-n', o.metadata.namespace] : [];
      const live = json(['get', `${o.kind}${group}`, ...where, o.metadata.name, '--show-managed-fields']);
      expect([o.kind, o.metadata.name, live.metadata.annotations?.[MATERIALIZED_FOR]]).toEqual([
        o.kind,
        o.metadata.name,
        uid,
      ]);
      expect(live.metadata.ownerReferences).toEqual([
        expect.objectContaining({ kind: 'ControlPlane', name: 'bare1', uid, controller: true }),
      ]);
      expect(live.metadata.managedFields.map((f: any) => f.manager)).toContain('kubeflex-materializer');
    }
    expect(json(['get', 'configmap', '-n', 'bare1-system', 'greeting-bare1']).data.message).toBe('from a bare CP');
    // The ControlPlane itself is the client's: not taken over, no labels added.
    expect(cp.metadata.labels).toBeUndefined();
  }, 60_000);

  test('bare k3s and vcluster ControlPlanes get their synthesized workloads (their images cannot run here)', async () => {
    bare('bk3s', { type: 'k3s' });
    bare('bvc', { type: 'vcluster' });
    await waitFor('k3s StatefulSet', () => exists(['get', 'statefulset', '-n', 'bk3s-system', 'k3s-server']), 30_000);
    await waitFor('vcluster StatefulSet', () => exists(['get', 'statefulset', '-n', 'bvc-system', 'vcluster']), 30_000);
    expect(
      json(['get', 'secret', '-n', 'bvc-system', 'vc-config-vcluster']).metadata.annotations[MATERIALIZED_FOR],
    ).toBe(json(['get', 'cp', 'bvc']).metadata.uid);
    // vCluster's own isolation, as the chart renders it, written with the materializer's rights.
    const names = (kind: string) =>
      json(['get', kind, '-n', 'bvc-system'])
        .items.map((o: any) => o.metadata.name)
        .sort();
    expect(names('networkpolicies')).toEqual(['vc-cp-vcluster', 'vc-work-vcluster']);
    expect(names('resourcequotas')).toEqual(['kubeflex-plane', 'vc-vcluster']);
    expect(names('limitranges')).toEqual(['vc-vcluster']);
    for (const cp of ['bk3s', 'bvc']) k(['delete', 'cp', cp, '--wait=false']);
  }, 60_000);

  test('a hook patched into the live ControlPlane is applied (spec change -> apply again)', async () => {
    k(
      ['apply', '-f', '-'],
      stringify({
        apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
        kind: 'PostCreateHook',
        metadata: { name: 'second' },
        spec: {
          templates: [{ ...HOOK, metadata: { name: 'second-{{.ControlPlaneName}}' } }],
          defaultVars: [{ name: 'Message', value: 'two' }],
        },
      }),
    );
    k([
      'patch',
      'cp',
      'bare1',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { postCreateHooks: [{ hookName: 'hello' }, { hookName: 'second' }] } }),
    ]);
    await waitFor('second hook applied', () => exists(['get', 'configmap', '-n', 'bare1-system', 'second-bare1']));
  });

  test('a synthesized ControlPlane (GitOps) is left alone', async () => {
    const app = new App();
    const h = new KubeflexHosting(app, 'hosting', { domain: 'example.com' });
    const cp = new K8sControlPlane(app, 'syn1', { hosting: h }).toJson().find((o: any) => o.kind === 'ControlPlane');
    k(['apply', '--server-side', '-f', '-'], JSON.stringify(cp));
    bare('trigger', { type: 'host' }); // a later event: the materializer has looked at syn1 by then
    await waitFor('trigger-system', () => exists(['get', 'ns', 'trigger-system']), 30_000);
    expect(exists(['get', 'ns', 'syn1-system'])).toBe(false);
    expect(annotation('syn1', MATERIALIZE_ERROR)).toBeUndefined();
  });

  test('never applies into a namespace it did not create for this ControlPlane: refused, nothing applied', async () => {
    // A synthesized plane's namespace (its label, no materializer mark) and an unrelated one.
    k(['create', 'namespace', 'taken-system']);
    k(['label', 'namespace', 'taken-system', 'tenancy.kflex.kubestellar.org/control-plane=taken']);
    bare('taken', { type: 'k8s' });
    await waitFor('refusal', () => annotation('taken', MATERIALIZE_ERROR), 30_000);
    expect(annotation('taken', MATERIALIZE_ERROR)).toMatch(
      /^Namespace taken-system exists and was not made for this ControlPlane \(uid [0-9a-f-]+\); nothing was applied$/,
    );
    expect(k(['get', 'all', '-n', 'taken-system', '-o', 'name']).trim()).toBe('');
    expect(exists(['get', 'job', '-n', 'kubeflex-system', 'db-taken'])).toBe(false);
    // A plane named after the namespace another materialized plane uses is refused the same way (UID differs).
    k(['delete', 'cp', 'bare1', '--wait=false']);
  });

  test("a spec synth refuses gets synth's own message and nothing applied; a hook created later is picked up", async () => {
    bare('late', { type: 'k8s', postCreateHooks: [{ hookName: 'later' }] });
    await waitFor('refusal', () => annotation('late', MATERIALIZE_ERROR), 30_000);
    expect(annotation('late', MATERIALIZE_ERROR)).toMatch(
      /invalid postCreateHooks\[\]\.hook "later": no PostCreateHook with that name is registered with the hosting install/,
    );
    expect(exists(['get', 'ns', 'late-system'])).toBe(false);
    k(
      ['apply', '-f', '-'],
      stringify({
        apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
        kind: 'PostCreateHook',
        metadata: { name: 'later' },
        spec: {
          templates: [{ ...HOOK, metadata: { name: 'later-{{.ControlPlaneName}}' } }],
          defaultVars: [{ name: 'Message', value: 'x' }],
        },
      }),
    );
    await waitFor('late materialized', () => exists(['get', 'configmap', '-n', 'late-system', 'later-late']), 30_000);
    await waitFor('refusal cleared', () => annotation('late', MATERIALIZE_ERROR) === undefined);
  });

  test('its RBAC is the least its objects need: it cannot read Secrets, escalate, or bind arbitrary roles', () => {
    const can = (verb: string, what: string, ns?: string) =>
      kubectl(hosting, [
        'auth',
        'can-i',
        verb,
        what,
        ...(ns ? ['-n', ns] : ['--all-namespaces']),
        '--as=system:serviceaccount:kubeflex-system:kubeflex-materializer',
      ]).stdout.trim();
    const cannot = (verb: string, what: string, ns?: string) => {
      try {
        return can(verb, what, ns);
      } catch (e) {
        return /no/.test(String(e)) ? 'no' : String(e);
      }
    };
    expect(cannot('get', 'secrets')).toBe('no');
    expect(cannot('list', 'secrets', 'kubeflex-system')).toBe('no');
    expect(cannot('delete', 'namespaces')).toBe('no');
    expect(cannot('bind', 'clusterroles/admin')).toBe('no');
    // No binding to cluster-admin (the controller binds an admitted host plane), no ClusterRoleBindings at all.
    expect(cannot('bind', 'clusterroles/cluster-admin')).toBe('no');
    expect(cannot('create', 'clusterrolebindings')).toBe('no');
    expect(cannot('escalate', 'roles', 'any-ns')).toBe('no');
    expect(can('bind', 'clusterroles/kubeflex-vcluster')).toBe('yes');
    expect(can('create', 'deployments.apps', 'any-ns')).toBe('yes');
    expect(cannot('get', 'deployments.apps', 'any-ns')).toBe('no');
    expect(cannot('create', 'pods', 'any-ns')).toBe('no');
    expect(cannot('create', 'clusterroles')).toBe('no');
  });

  test("KubeStellar's WDS hook shape: cluster-scoped objects named after the plane, applied as the hook applier, marked and owned; a foreign one of the same name is never taken", async () => {
    k(
      ['apply', '-f', '-'],
      stringify({
        apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
        kind: 'PostCreateHook',
        metadata: {
          name: 'kubestellar-controller',
          labels: { 'kflex.kubestellar.io/cptype': 'wds' },
          // The admin's declarations: its controller meets baseline, and talks to the hosting API and the ITS.
          annotations: {
            'kflex.kubestellar.org/pod-security': 'baseline',
            'kflex.kubestellar.org/egress': 'hosting-api,control-planes',
          },
        },
        spec: {
          templates: [
            {
              apiVersion: 'apps/v1',
              kind: 'Deployment',
              metadata: { name: 'kubestellar-controller-manager' },
              spec: {
                selector: { matchLabels: { app: 'ks' } },
                template: {
                  metadata: { labels: { app: 'ks' } },
                  spec: {
                    securityContext: { runAsNonRoot: true },
                    containers: [
                      {
                        name: 'manager',
                        image: 'registry.invalid/ks:1',
                        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                      },
                    ],
                  },
                },
              },
            },
            {
              apiVersion: 'rbac.authorization.k8s.io/v1',
              kind: 'ClusterRole',
              metadata: { name: '{{.ControlPlaneName}}-kubestellar' },
              rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }],
            },
            {
              apiVersion: 'rbac.authorization.k8s.io/v1',
              kind: 'ClusterRoleBinding',
              metadata: { name: '{{.ControlPlaneName}}-kubestellar' },
              roleRef: {
                apiGroup: 'rbac.authorization.k8s.io',
                kind: 'ClusterRole',
                name: '{{.ControlPlaneName}}-kubestellar',
              },
              subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: '{{.Namespace}}' }],
            },
            { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'wds-settings' }, data: { its: '{{.ITSName}}' } },
          ],
        },
      }),
    );
    // Someone else's ClusterRole with the name a second plane's hook would make.
    k(['create', 'clusterrole', 'wds2-kubestellar', '--verb=get', '--resource=secrets']);
    const foreign = () => JSON.stringify(json(['get', 'clusterrole', 'wds2-kubestellar']));
    const before = foreign();
    const use = { postCreateHooks: [{ hookName: 'kubestellar-controller' }], globalVars: { ITSName: 'its1' } };
    bare('wds1', { type: 'k8s', ...use });
    bare('wds2', { type: 'k8s', ...use });
    await waitFor('wds1 hook objects', () => exists(['get', 'clusterrolebinding', 'wds1-kubestellar']), 30_000);
    const uid = json(['get', 'cp', 'wds1']).metadata.uid;
    for (const kind of ['clusterrole', 'clusterrolebinding']) {
      const o = json(['get', kind, 'wds1-kubestellar', '--show-managed-fields']);
      expect(o.metadata.annotations[MATERIALIZED_FOR]).toBe(uid);
      expect(o.metadata.ownerReferences).toEqual([
        expect.objectContaining({ kind: 'ControlPlane', name: 'wds1', uid }),
      ]);
      expect(o.metadata.managedFields.map((f: any) => f.manager)).toContain('kubeflex-materializer');
    }
    expect(json(['get', 'clusterrolebinding', 'wds1-kubestellar']).subjects).toEqual([
      { kind: 'ServiceAccount', name: 'default', namespace: 'wds1-system' },
    ]);
    expect(json(['get', 'configmap', '-n', 'wds1-system', 'wds-settings']).data).toEqual({ its: 'its1' });
    // Egress read back from the API server: the hook's pods only, to the hosting API and planes' API pods.
    const ns = json(['get', 'ns', 'wds1-system']).metadata.labels;
    expect(ns).toMatchObject({
      'kflex.kubestellar.org/plane-api-clients': 'true',
      'pod-security.kubernetes.io/enforce': 'baseline',
      'pod-security.kubernetes.io/warn': 'restricted',
    });
    const hookLabel = { 'kflex.kubestellar.org/hook': 'kubestellar-controller' };
    await waitFor(
      'hook Deployment',
      () => exists(['get', 'deploy', '-n', 'wds1-system', 'kubestellar-controller-manager']),
      30_000,
    );
    expect(
      json(['get', 'deploy', '-n', 'wds1-system', 'kubestellar-controller-manager']).spec.template.metadata.labels,
    ).toEqual({ app: 'ks', ...hookLabel });
    const egress = json(['get', 'networkpolicy', '-n', 'wds1-system', 'allow-hook-egress-kubestellar-controller']).spec;
    expect(egress.podSelector).toEqual({ matchLabels: hookLabel });
    expect(egress.egress[0]).toEqual({
      to: [{ ipBlock: { cidr: '0.0.0.0/0' } }],
      ports: [
        { protocol: 'TCP', port: 443 },
        { protocol: 'TCP', port: 6443 },
      ],
    });
    expect(egress.egress.slice(1).map((r: any) => [r.to[0].podSelector.matchLabels, r.ports[0].port])).toEqual([
      [{ app: 'kube-apiserver' }, 9444],
      [{ 'controller.kubeflex.dev/type': 'k3s' }, 6443],
      [{ app: 'vcluster', release: 'vcluster' }, 8443],
    ]);
    // wds2: refused with the object named, nothing applied, the foreign ClusterRole untouched.
    await waitFor('wds2 refused', () => annotation('wds2', MATERIALIZE_ERROR) !== undefined, 30_000);
    expect(annotation('wds2', MATERIALIZE_ERROR)).toMatch(
      /^ClusterRole wds2-kubestellar: .*hook applier: ClusterRole wds2-kubestellar is refused: it exists and was not made by the materializer for this ControlPlane.*nothing was applied$/,
    );
    expect(exists(['get', 'ns', 'wds2-system'])).toBe(false);
    expect(foreign()).toBe(before);
    // Deleting the plane takes its cluster-scoped hook objects with it (garbage collection through the owner).
    k(['delete', 'cp', 'wds1', 'wds2', '--wait=true', '--timeout=60s']);
    await waitFor('wds1 hook objects collected', () => !exists(['get', 'clusterrole', 'wds1-kubestellar']), 60_000);
    expect(foreign()).toBe(before);
  }, 120_000);

  test("status writes (the controller's, on planes and hooks) cause no pass; a hook's change passes only the planes that use it", async () => {
    const passes = (cp: string) =>
      fs
        .readFileSync(path.join(state.logDir, 'materializer.log'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('"msg":"materialized"') && l.includes(`"controlPlane":"${cp}"`)).length;
    const planes = ['share1', 'share2', 'alone'];
    bare('share1', { type: 'k8s', postCreateHooks: [{ hookName: 'hello' }] });
    bare('share2', { type: 'k8s', postCreateHook: 'hello' });
    bare('alone', { type: 'k8s' });
    await waitFor('three planes materialized', () => planes.every((p) => passes(p) >= 1), 30_000);
    await new Promise((r) => setTimeout(r, 3000)); // the materializer's own refusal-clearing patches have settled
    const before = Object.fromEntries(planes.map((p) => [p, passes(p)]));
    const now = new Date().toISOString();
    const cond = (reason: string) => ({
      conditions: [
        { type: 'Ready', status: 'False', lastUpdateTime: now, lastTransitionTime: now, reason, message: reason },
      ],
      observedGeneration: 1,
    });
    for (let i = 0; i < 3; i++) {
      for (const p of planes) {
        k(['patch', 'cp', p, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: cond(`R${i}`) })]);
      }
      k([
        'patch',
        'postcreatehook',
        'hello',
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status: cond(`R${i}`) }),
      ]);
    }
    await new Promise((r) => setTimeout(r, 4000));
    expect(Object.fromEntries(planes.map((p) => [p, passes(p)]))).toEqual(before);
    // A label on the hook is read by a pass (it goes onto the planes' objects): the two planes that use it, once each.
    k(['label', 'postcreatehook', 'hello', 'team=blue']);
    await waitFor(
      'hook users passed',
      () => passes('share1') > before.share1 && passes('share2') > before.share2,
      30_000,
    );
    await new Promise((r) => setTimeout(r, 3000));
    expect(Object.fromEntries(planes.map((p) => [p, passes(p)]))).toEqual({
      share1: before.share1 + 1,
      share2: before.share2 + 1,
      alone: before.alone,
    });
    // An annotation on a plane (the controller's sleep mark, an idle timeout) is read by a pass: that plane only.
    k(['annotate', 'cp', 'alone', 'example.com/note=x']);
    await waitFor('alone passed', () => passes('alone') > before.alone, 30_000);
    expect(passes('share1')).toBe(before.share1 + 1);
    k(['delete', 'cp', ...planes, '--wait=false']);
  }, 120_000);

  test('kubectl delete cp: everything it applied goes with the ControlPlane (owner references)', async () => {
    await waitFor('bare1 gone', () => !exists(['get', 'cp', 'bare1']), 30_000);
    await waitFor('bare1-system gone', () => !exists(['get', 'ns', 'bare1-system']), 60_000);
    expect(k(['get', 'jobs', '-n', 'kubeflex-system', '-o', 'name'])).not.toMatch(/db-bare1/);
  }, 120_000);
});
