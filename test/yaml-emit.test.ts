// The fast YAML writer of synth must write exactly what cdk8s's Yaml.stringify writes.
import { App, Testing, Yaml } from 'cdk8s';
import { K8sControlPlane, KubeflexHosting, PostCreateHook } from '../lib';
import { yamlDocuments } from '../lib/yaml-emit';
import { buildExamplePlatform } from '../main';
import { testApp } from './helpers';

const same = (docs: unknown[]) => expect(yamlDocuments(docs)).toBe(Yaml.stringify(...docs));

test('the example platform: every chart byte for byte', () => {
  const app = new App();
  buildExamplePlatform(app);
  for (const chart of app.charts) same(Testing.synth(chart));
});

test('many tenants with hooks, OIDC-free defaults and long names', () => {
  const app = testApp();
  const hosting = new KubeflexHosting(app, 'hosting', { bootstrapSecretNamespaces: ['ks-release'] });
  new PostCreateHook(hosting, 'h', {
    hosting,
    defaultVars: { Message: 'yes' },
    templates: [
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' }, data: { a: '{{.Message}}', b: 'x: y' } },
    ],
  });
  for (let i = 0; i < 20; i++) {
    const cp = new K8sControlPlane(app, `t${i}${'x'.repeat(i * 2)}`, { hosting, postCreateHooks: [{ hook: 'h' }] });
    same(Testing.synth(cp));
  }
  same(Testing.synth(hosting));
});

test('values whose spelling depends on YAML 1.1 and on where they sit', () => {
  const tricky = [
    'yes',
    'no',
    'y',
    'n',
    'on',
    'off',
    'true',
    'False',
    'null',
    '~',
    '',
    ' lead',
    'trail ',
    '-x',
    '- x',
    '---',
    '...',
    'a: b',
    'a #b',
    '#c',
    '*ref',
    '&anchor',
    '!tag',
    '%dir',
    '@at',
    '`tick',
    '1:20',
    '012',
    '0o12',
    '0x1F',
    '1e3',
    '.5',
    '+1',
    '-1',
    '.inf',
    '.NaN',
    '{{.A}}',
    '[x]',
    '{x}',
    'a,b',
    '"q"',
    "'s'",
    '\\',
    'tab\tin',
    'é',
    '$(POD_IP)',
    'multi\nline',
    'trailing\n',
    '\n',
    'x'.repeat(1100),
  ];
  const doc: Record<string, unknown> = {};
  tricky.forEach((t, i) => {
    doc[t || 'empty'] = t;
    doc[`k${i}`] = [t, [t, {}], { [t]: [] }, null, undefined, i, i + 0.25, -i, true];
  });
  doc.nested = { a: [[[]], [{}], [[1, [2, { b: { c: [{ d: 'e' }] } }]]]], big: 2 ** 53, neg: -0, tiny: 1e-7 };
  same([doc, { only: 'one' }, {}, [1, 2], 'text', undefined, null]);
  for (const t of tricky) same([{ a: { b: [t] } }]);
});
