// A repository of tenants only (examples/tenants-only): synthesized against a hosting install it does not instantiate
// (KubeflexHosting.fromConfig), it writes the same tenant YAML as the example platform.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Testing } from 'cdk8s';
import { parse, parseAllDocuments } from 'yaml';
import { buildTenants } from '../examples/tenants-only/main';
import {
  hostingAttributesFromConfig,
  K8sControlPlane,
  KubeflexConfigError,
  KubeflexHosting,
  synthesizeAtomically,
} from '../lib';
import { buildExamplePlatform } from '../main';
import { testApp } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kflex-tenants-only-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const read = (f: string) => fs.readFileSync(f, 'utf8');
const byName = (files: string[], root: string) => Object.fromEntries(files.map((f) => [path.relative(root, f), f]));
// The example platform, synthesized once for both comparisons.
let platform: Record<string, string>;
beforeAll(() => {
  platform = byName(synthesizeAtomically(buildExamplePlatform, path.join(tmp, 'platform')), path.join(tmp, 'platform'));
});

test("the example's kubeflex-config.yaml is the platform's ConfigMap as synthesized", () => {
  const configMap = parseAllDocuments(read(platform['hosting.k8s.yaml']))
    .map((d) => d.toJS())
    .find((o) => o?.kind === 'ConfigMap' && o.metadata.name === 'kubeflex-config');
  expect(parse(read(path.resolve(__dirname, '../examples/tenants-only/kubeflex-config.yaml')))).toEqual(configMap);
});

test('tenants synthesized against KubeflexHosting.fromConfig equal the example platform, byte for byte', () => {
  const tenants = synthesizeAtomically(buildTenants, path.join(tmp, 'tenants'));
  const p = platform;
  const t = byName(tenants, path.join(tmp, 'tenants'));
  const tenantFiles = Object.keys(t).filter((f) => !/hosting\.k8s\.yaml$/.test(f));
  expect(tenantFiles.sort()).toEqual(
    Object.keys(p)
      .filter((f) => !/hosting\.k8s\.yaml$/.test(f))
      .sort(),
  );
  expect(tenantFiles.length).toBeGreaterThanOrEqual(10);
  for (const f of tenantFiles) expect({ file: f, text: read(t[f]) }).toEqual({ file: f, text: read(p[f]) });
  // The imported hosting emits nothing of the install: only the hooks defined on it (identical to the platform's).
  const importedKinds = Object.keys(t)
    .filter((f) => /hosting\.k8s\.yaml$/.test(f))
    .flatMap((f) => parseAllDocuments(read(t[f])).map((d) => d.toJS()?.kind))
    .filter(Boolean);
  expect(importedKinds).toEqual(['PostCreateHook']);
});

test('fails when the config cannot be decoded, naming the construct and the bad key', () => {
  expect(() => KubeflexHosting.fromConfig(testApp(), 'hosting', { config: { externalPort: 'eighty' } })).toThrow(
    KubeflexConfigError,
  );
  expect(() => KubeflexHosting.fromConfig(testApp(), 'hosting', { config: { externalPort: 'eighty' } })).toThrow(
    /KubeflexHosting.fromConfig "hosting": invalid config .*externalPort="eighty" is not a port number/,
  );
});

test('fromHostingAttributes (typed) and fromConfig (the ConfigMap decoded beside it) give the same tenant objects', () => {
  const config = parse(read(path.resolve(__dirname, '../examples/tenants-only/kubeflex-config.yaml'))).data;
  const viaConfig = testApp();
  const a = KubeflexHosting.fromConfig(viaConfig, 'hosting', { config });
  const viaAttributes = testApp();
  const b = KubeflexHosting.fromHostingAttributes(viaAttributes, 'hosting', hostingAttributesFromConfig('x', config));
  const render = (app: any, hosting: any) => Testing.synth(new K8sControlPlane(app, 'team-a', { hosting }));
  expect(render(viaAttributes, b)).toEqual(render(viaConfig, a));
  // Typed attributes, with the install's defaults for what is left out.
  const typed = KubeflexHosting.fromHostingAttributes(testApp(), 'h', { domain: 'example.com', externalPort: 443 });
  expect([typed.ingressClassName, typed.ingressNamespace, typed.hostControlPlanes, typed.postgres]).toEqual([
    'nginx',
    'ingress-nginx',
    true,
    undefined,
  ]);
});

test('fails when typed attributes are out of range, naming the import and the attribute', () => {
  expect(() =>
    KubeflexHosting.fromHostingAttributes(testApp(), 'h', { domain: 'Bad_Domain', externalPort: 443 }),
  ).toThrow(/KubeflexHosting.fromHostingAttributes "h": invalid domain "Bad_Domain"/);
  expect(() =>
    KubeflexHosting.fromHostingAttributes(testApp(), 'h', { domain: 'ok.example', externalPort: 0 }),
  ).toThrow(/KubeflexHosting.fromHostingAttributes "h": invalid externalPort 0/);
});
