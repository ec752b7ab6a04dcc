// Synth never accepts what the API server rejects: many random but plausible construct inputs (names, vars, hook
// templates, pod security settings, sizes, all five types), seeded so a failure reproduces. Every input synth accepts
// is server-side applied to the real test API server with zero rejections and zero Pod Security warnings; every
// input it rejects gets one KubeflexConfigError naming the construct, the prop and the value.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App } from 'cdk8s';
import {
  ExternalControlPlane,
  HostControlPlane,
  K3sControlPlane,
  K8sControlPlane,
  KubeflexConfigError,
  KubeflexHosting,
  PostCreateHook,
  synthesizeAtomically,
  VClusterControlPlane,
} from '../../lib';
import { BASE_DIR } from '../../lib/synth';
import { ClusterState, loadState, startCluster, TestCluster, waitForKubeflexCrds } from './harness';

const state: ClusterState = loadState();
const suite = state.skipped ? describe.skip : describe;
if (state.skipped) console.warn(`### SKIPPED generated synth-vs-API-server tests: ${state.skipped}`);

const CASES = Number(process.env.KFLEX_GENERATED_CASES ?? 150);
const SEED = Number(process.env.KFLEX_GENERATED_SEED ?? 20261201);
jest.setTimeout(600_000);

/** mulberry32: a small seeded generator, so every run tries the same inputs. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  public constructor(private readonly r: () => number) {}
  public int(lo: number, hi: number): number {
    return lo + Math.floor(this.r() * (hi - lo + 1));
  }
  public chance(p: number): boolean {
    return this.r() < p;
  }
  public pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)];
  }
  public word(alphabet: string, lo: number, hi: number): string {
    let s = '';
    for (let i = this.int(lo, hi); i > 0; i--) s += alphabet[this.int(0, alphabet.length - 1)];
    return s;
  }
  /** Mostly valid DNS labels, sometimes not (upper case, '_', leading '-', too long, empty). */
  public name(prefix: string): string {
    const ok = `${prefix}${this.word('abcdefghijklmnopqrstuvwxyz0123456789-', 0, 12)}`.replace(/-+$/, '') || prefix;
    if (this.chance(0.85)) return ok;
    return this.pick([ok.toUpperCase(), `${ok}_x`, `-${ok}`, ok + 'a'.repeat(this.int(40, 70)), '', `${ok}.dot`]);
  }
  public varName(): string {
    return this.chance(0.9)
      ? this.pick(['Message', 'Team', 'Owner', 'Image', 'Level', 'Key'])
      : this.pick(['9bad', 'with-dash', 'a b']);
  }
  public varValue(): string {
    return this.pick([
      'hello',
      'team-a',
      'hello world',
      'x'.repeat(this.int(50, 80)),
      'UPPER',
      'ok.value_1',
      '',
      'ünïcode',
      'a/b',
    ]);
  }
}

const CONTAINER_SC = (g: Gen): Record<string, unknown> | undefined => {
  if (g.chance(0.15)) return undefined;
  const sc: Record<string, unknown> = {};
  if (g.chance(0.85)) sc.allowPrivilegeEscalation = false;
  if (g.chance(0.85))
    sc.capabilities = {
      drop: ['ALL'],
      ...(g.chance(0.1) ? { add: [g.pick(['NET_ADMIN', 'NET_BIND_SERVICE', 'CHOWN'])] } : {}),
    };
  if (g.chance(0.1)) sc.privileged = true;
  if (g.chance(0.1)) sc.runAsUser = 0;
  if (g.chance(0.5)) sc.runAsNonRoot = true;
  if (g.chance(0.05)) sc.seccompProfile = { type: 'Unconfined' };
  return sc;
};

/** A plausible hook template (labels, names and values often carry variables). */
function template(g: Gen, vars: string[]): Record<string, unknown> {
  const v = () => `{{.${g.pick([...vars, 'ControlPlaneName', 'HookName', 'Namespace'])}}}`;
  const metaName = g.pick([
    `{{.HookName}}-{{.ControlPlaneName}}`,
    `fixed-${g.int(0, 999)}`,
    `${v()}-obj`,
    'Upper-Case',
    v(),
  ]);
  const metadata: Record<string, unknown> = { name: metaName };
  if (g.chance(0.2))
    metadata.labels = { [g.pick(['app', 'team', 'app.kubernetes.io/name', 'bad key!'])]: g.pick(['x', v(), 'ok-1']) };
  if (g.chance(0.15)) metadata.annotations = { [g.pick(['note', 'example.com/who'])]: v() };
  if (g.chance(0.1)) metadata.namespace = g.pick(['{{.Namespace}}', 'other']);
  const kind = g.pick(['ConfigMap', 'Job', 'ServiceAccount', 'ClusterRole', 'Service', 'Deployment']);
  if (kind === 'ConfigMap') {
    return { apiVersion: 'v1', kind, metadata, data: { [g.pick(['message', v(), 'key.txt'])]: v() } };
  }
  if (kind === 'ServiceAccount') return { apiVersion: 'v1', kind, metadata };
  if (kind === 'ClusterRole')
    return {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind,
      metadata,
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }],
    };
  if (kind === 'Service')
    return {
      apiVersion: 'v1',
      kind,
      metadata,
      spec: { selector: { app: 'x' }, ports: [{ port: 80, targetPort: 8080 }] },
    };
  const pod: Record<string, unknown> = {
    containers: [
      {
        name: 'main',
        image: 'registry.k8s.io/kubectl:v1.32.2',
        args: ['--kubeconfig=/etc/kube/kubeconfig-incluster', 'get', 'ns', v()],
        ...(CONTAINER_SC(g) ? { securityContext: CONTAINER_SC(g) } : {}),
        ...(g.chance(0.05) ? { ports: [{ containerPort: 80, hostPort: 8080 }] } : {}),
      },
    ],
    volumes: [
      { name: 'kubeconfig', secret: { secretName: 'admin-kubeconfig' } },
      ...(g.chance(0.05) ? [{ name: 'host', hostPath: { path: '/var' } }] : []),
    ],
  };
  if (g.chance(0.7))
    pod.securityContext = { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } };
  if (g.chance(0.05)) pod.hostNetwork = true;
  if (kind === 'Job')
    return { apiVersion: 'batch/v1', kind, metadata, spec: { template: { spec: { ...pod, restartPolicy: 'Never' } } } };
  return {
    apiVersion: 'apps/v1',
    kind,
    metadata,
    spec: { selector: { matchLabels: { app: 'h' } }, template: { metadata: { labels: { app: 'h' } }, spec: pod } },
  };
}

/** One random platform: a hosting install, 0-2 hooks, 1-3 control planes of random types and settings. */
function buildCase(g: Gen, i: number): (app: App) => void {
  return (app) => {
    const hosting = new KubeflexHosting(app, 'hosting', {
      domain: g.chance(0.9) ? 'localtest.me' : g.pick(['Bad_Domain', 'example.com']),
    });
    const hooks: PostCreateHook[] = [];
    for (let h = g.int(0, 2); h > 0; h--) {
      const vars = [g.varName(), g.varName()];
      const defaults = g.chance(0.6) ? { [vars[0]]: g.varValue() } : {};
      const hook = new PostCreateHook(hosting, `h${h}`, {
        hosting,
        name: g.chance(0.9) ? `g${i}-h${h}` : g.name(`g${i}`),
        defaultVars: defaults,
        // Cluster-scoped templates need the opt-in (review M8); every fourth case leaves it off.
        allowClusterScoped: i % 4 !== 0,
      });
      for (let t = g.int(1, 3); t > 0; t--) hook.addTemplate(template(g, vars));
      hooks.push(hook);
    }
    for (let c = g.int(1, 3); c > 0; c--) {
      const name = g.chance(0.9) ? `g${i}-c${c}${g.word('abcdefghij', 0, 3)}` : g.name(`g${i}`);
      const common = {
        hosting,
        name,
        globalVars: g.chance(0.4) ? { [g.varName()]: g.varValue() } : undefined,
        postCreateHooks: hooks
          .filter(() => g.chance(0.7))
          .map((hook) => ({ hook, vars: g.chance(0.5) ? { [g.varName()]: g.varValue() } : undefined })),
        waitForPostCreateHooks: g.chance(0.5),
        podSecurity: g.chance(0.5) ? undefined : g.pick(['privileged', 'baseline', 'restricted'] as const),
      };
      const type = g.pick(['k8s', 'k3s', 'vcluster', 'host', 'external']);
      const size = () => g.pick(['1Gi', '500Mi', '2Ti', '0Gi', '1.5Gi', '10G']);
      if (type === 'k8s') new K8sControlPlane(app, `c${c}`, common);
      else if (type === 'k3s')
        new K3sControlPlane(app, `c${c}`, { ...common, dataStorageSize: g.chance(0.5) ? size() : undefined });
      else if (type === 'vcluster')
        new VClusterControlPlane(app, `c${c}`, { ...common, storageSize: g.chance(0.5) ? size() : undefined });
      else if (type === 'host') new HostControlPlane(app, `c${c}`, { ...common, allowPostCreateHooks: g.chance(0.7) });
      else
        new ExternalControlPlane(app, `c${c}`, {
          ...common,
          bootstrapSecret: { name: g.chance(0.9) ? `${name}-bootstrap` : 'Bad_Name' },
          tokenExpirationSeconds: g.chance(0.5) ? undefined : g.pick([600, 3600, 31536000, 10, 1.5]),
        });
    }
  };
}

suite('generated inputs: synth accepts only what the real API server accepts', () => {
  let tmp: string;
  // Its own empty API server: the shared one holds other suites' objects under other field managers.
  let cluster: TestCluster;
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kflex-generated-'));
    cluster = await startCluster(state, 'generated');
  });
  afterAll(async () => {
    fs.rmSync(tmp, { recursive: true, force: true });
    await cluster?.stop();
  });

  test(`${CASES} random platforms (seed ${SEED}): every accepted one applies cleanly, every rejected one has one clear message`, async () => {
    const g = new Gen(rng(SEED));
    const accepted: { i: number; files: string[] }[] = [];
    const rejected: string[] = [];
    for (let i = 0; i < CASES; i++) {
      const out = path.join(tmp, `case-${i}`);
      try {
        accepted.push({ i, files: synthesizeAtomically(buildCase(g, i), out) });
      } catch (e) {
        // Exactly our error type, one line, naming the construct ("Kind \"path\"" or "Construct \"path\""), the
        // prop and the value; nothing written.
        if (!(e instanceof KubeflexConfigError))
          throw new Error(`case ${i}: not a KubeflexConfigError: ${String((e as Error).stack)}`);
        const err = e as KubeflexConfigError;
        expect(err.message).toMatch(/^[A-Za-z0-9]+ "[^"]*": invalid \S.* .+: .+/);
        expect(err.message).not.toMatch(/\n/);
        expect(err.prop).toBeTruthy();
        expect(fs.existsSync(out)).toBe(false);
        rejected.push(err.message);
      }
    }
    console.log(
      `generated: ${CASES} cases (seed ${SEED}): ${accepted.length} accepted and applied, ${rejected.length} rejected at synth`,
    );
    // Both sides must be exercised, or the generator is not testing anything.
    expect(accepted.length).toBeGreaterThan(CASES / 5);
    expect(rejected.length).toBeGreaterThan(CASES / 10);

    // One hosting install for all (identical across cases); base files (CRDs, Namespaces) before the rest.
    const all = accepted.flatMap((a) => a.files);
    const base = all.filter((f) => path.basename(path.dirname(f)) === BASE_DIR);
    const rest = all.filter((f) => !base.includes(f));
    const hostingBase = base.filter((f) => f.endsWith('/hosting.k8s.yaml'));
    const join = (files: string[], name: string) => {
      const f = path.join(tmp, name);
      fs.writeFileSync(f, files.map((x) => fs.readFileSync(x, 'utf8')).join('\n---\n'));
      return f;
    };
    const apply = (file: string) =>
      new Promise<{ status: number | null; stderr: string; stdout: string }>((resolve) => {
        const p = spawn(
          'kubectl',
          ['apply', '--server-side', '--force-conflicts', '--field-manager=generated', '-f', file],
          {
            env: { ...process.env, KUBECONFIG: cluster.kubeconfig },
          },
        );
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (d) => (stdout += d));
        p.stderr.on('data', (d) => (stderr += d));
        p.on('close', (status) => resolve({ status, stdout, stderr }));
      });
    const groups = [0, 1, 2, 3].map((k) => rest.filter((_, j) => j % 4 === k)).filter((x) => x.length);
    const r1 = await apply(join([hostingBase[0], ...base.filter((f) => !hostingBase.includes(f))], 'base.yaml'));
    expect({ status: r1.status, stderr: r1.stderr }).toEqual({ status: 0, stderr: '' });
    waitForKubeflexCrds(cluster);
    // Four kubectl processes in parallel: server-side apply is one request per object.
    const results = await Promise.all(groups.map((grp, k) => apply(join(grp, `rest-${k}.yaml`))));
    for (const r2 of results) {
      // Any rejection or Pod Security warning names the object and the reason here.
      expect({ status: r2.status, stderr: r2.stderr }).toEqual({ status: 0, stderr: '' });
    }
    const applied = results.flatMap((r) => r.stdout.split('\n').filter((l) => /serverside-applied/.test(l)));
    expect(applied.length).toBeGreaterThan(accepted.length);
  });
});
