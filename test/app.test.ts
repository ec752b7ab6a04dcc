import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Testing } from 'cdk8s';
import { parseAllDocuments } from 'yaml';
import { KubeflexApp, synthesizeAtomically } from '../lib';
import { podSecurityViolations, podTemplatesOf } from '../lib/api-validation';
import { listOutput } from '../lib/synth';
import { buildExamplePlatform } from '../main';

const root = path.join(__dirname, '..');

function synthTo(dir: string): Record<string, string> {
  const files = synthesizeAtomically(buildExamplePlatform, dir);
  return Object.fromEntries(files.map((f) => [path.relative(dir, f), fs.readFileSync(f, 'utf8')]));
}

describe('example platform', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kflex-app-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('one file per chart, matching the snapshot', () => {
    const files = synthTo(path.join(tmp, 'a'));
    expect(Object.keys(files)).toEqual([
      '00-base/cp1.k8s.yaml',
      '00-base/cp2.k8s.yaml',
      '00-base/cp3.k8s.yaml',
      '00-base/cp4.k8s.yaml',
      '00-base/ext1.k8s.yaml',
      '00-base/hosting.k8s.yaml',
      'cp1.k8s.yaml',
      'cp2.k8s.yaml',
      'cp3.k8s.yaml',
      'cp4.k8s.yaml',
      'ext1.k8s.yaml',
      'hosting.k8s.yaml',
    ]);
    expect(files).toMatchSnapshot();
  });

  test('kubeflex-system admits baseline pods (KubeStellar uninstall Job) and every pod this install runs there meets restricted', () => {
    const app = new App();
    buildExamplePlatform(app);
    const all: any[] = app.charts.flatMap((c) => Testing.synth(c));
    const objects = all.filter((o) => o.metadata?.namespace === 'kubeflex-system');
    const ns = all.find((o) => o.kind === 'Namespace' && o.metadata.name === 'kubeflex-system');
    expect(ns.metadata.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'baseline',
      'pod-security.kubernetes.io/warn': 'restricted',
      'pod-security.kubernetes.io/audit': 'restricted',
    });
    const pods = objects.flatMap((o: any) => podTemplatesOf(o).map((t) => ({ o, t })));
    expect(pods.length).toBeGreaterThanOrEqual(3);
    for (const { o, t } of pods)
      expect([o.kind, o.metadata.name, podSecurityViolations(t.meta, t.spec, 'restricted')]).toEqual([
        o.kind,
        o.metadata.name,
        [],
      ]);
  });

  test('output is byte-identical across runs', () => {
    expect(synthTo(path.join(tmp, 'b'))).toEqual(synthTo(path.join(tmp, 'c')));
  });

  test('the committed dist/ is current', () => {
    const dist = path.join(root, 'dist');
    expect(synthTo(path.join(tmp, 'd'))).toEqual(
      Object.fromEntries(listOutput(dist).map((f) => [path.relative(dist, f), fs.readFileSync(f, 'utf8')])),
    );
  });

  test('output holds no private key, token or password', () => {
    const files = synthTo(path.join(tmp, 'e'));
    for (const [name, text] of Object.entries(files)) {
      expect(text).not.toMatch(/BEGIN [A-Z ]*PRIVATE KEY|BEGIN CERTIFICATE/);
      expect(text).not.toMatch(/^\s*(password|token|client-key-data|postgres-password):\s*\S/im);
      for (const doc of parseAllDocuments(text)) {
        const obj = doc.toJSON();
        if (obj?.kind !== 'Secret') continue;
        // Secrets we emit are either empty shells (service-account tokens, filled by Kubernetes) or vCluster's
        // configuration; every credential is minted at runtime by the controller.
        expect({ file: name, data: obj.data }).toEqual({ file: name, data: undefined });
        expect(Object.keys(obj.stringData ?? {}).filter((k) => k !== 'config.yaml')).toEqual([]);
      }
    }
  });

  test('two control planes use the hook, each rendered into its own namespace', () => {
    const files = synthTo(path.join(tmp, 'f'));
    expect(files['cp1.k8s.yaml']).toContain('name: hello-cp1\n  namespace: cp1-system');
    expect(files['cp4.k8s.yaml']).toContain('--from-literal=message=hi host');
  });

  test('bad input through the compiled app: exit code 1, one line, no dist', () => {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'pipe' });
    const out = path.join(tmp, 'bad-dist');
    const script = path.join(tmp, 'bad.js');
    fs.writeFileSync(
      script,
      `const lib = require(${JSON.stringify(path.join(root, 'build/lib'))});
       lib.runSynth((app) => { const hosting = new lib.KubeflexHosting(app, 'hosting');
         new lib.K8sControlPlane(app, 'ok', { hosting }); new lib.HostControlPlane(app, 'x', { hosting, name: 'ok' }); }, ${JSON.stringify(out)});`,
    );
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(
      'synth failed: HostControlPlane "x": invalid name "ok": is already used by the control plane at "ok"',
    );
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('the plain cdk8s path: KubeflexApp.synth()', () => {
  test('writes exactly what synthesizeAtomically writes (00-base/ and one file per chart), replacing the old output', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kflex-plain-'));
    try {
      const expected = synthTo(path.join(dir, 'atomic'));
      const out = path.join(dir, 'dist');
      fs.mkdirSync(out);
      fs.writeFileSync(path.join(out, 'stale.k8s.yaml'), 'kind: Stale\n');
      const app = new KubeflexApp({ outdir: out });
      buildExamplePlatform(app);
      app.synth();
      const files = listOutput(out);
      expect(files.map((f) => path.relative(out, f))).toEqual(Object.keys(expected));
      for (const f of files) expect(fs.readFileSync(f, 'utf8')).toBe(expected[path.relative(out, f)]);
      expect(fs.readdirSync(dir).sort()).toEqual(['atomic', 'dist']); // no staging directory left behind
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
