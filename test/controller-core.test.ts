// The controller's pure core: no API server needed, every decision checked with exact expectations.
import { execFileSync } from 'child_process';
import { X509Certificate } from 'crypto';
import * as path from 'path';
import { parse } from 'yaml';
import { tenantNames } from '../lib';
import {
  adminBinding,
  bootstrapCredentials,
  clientSigner,
  computeHookStatus,
  computeStatus,
  HOST_NO_OFF_CLUSTER_KUBECONFIG,
  secretRefFor,
  ControlPlaneObject,
  hookObjects,
  hostKubeconfig,
  planExternal,
  planHostToken,
  planHostingSecrets,
  planK8sSecrets,
  SecretData,
  SecretWrite,
  statusChanged,
  workloadFingerprint,
  workloadReady,
} from '../lib/controller/core';
import { certProblem, issue } from '../lib/controller/x509';
import { decodeHostingConfig as parseHostingConfig } from '../lib/hosting-config';
import { parseConnectTo, parseDuration, UsageError } from '../lib/kube/args';
import { paths } from '../lib/kube/client';
import { parseKubeconfig, renderKubeconfig, renderParsed } from '../lib/kube/kubeconfig';

const names = tenantNames('cp1');
const config = parseHostingConfig({
  domain: 'example.com',
  externalPort: '443',
  postgresHost: 'pg',
  postgresBundled: 'true',
});
const YEAR = 365 * 86400;
const t0 = new Date('2026-11-21T00:00:00Z');

/** Applies writes to an in-memory Secret store, the way the adapter does. */
function store(writes: SecretWrite[], into = new Map<string, SecretData>()) {
  for (const w of writes) into.set(`${w.namespace}/${w.name}`, w.data);
  return into;
}
const lookupIn = (m: Map<string, SecretData>) => (ns: string, n: string) => m.get(`${ns}/${n}`);

describe('x509', () => {
  const ca = issue({ subject: { cn: 'ca' }, usage: 'ca', validitySeconds: YEAR }, t0);
  const leaf = issue(
    { subject: { cn: 'srv' }, usage: 'server', sans: ['a.example', '10.0.0.1'], validitySeconds: 3600 },
    t0,
    ca,
  );

  test('issues certificates Node can parse and verify', () => {
    const c = new X509Certificate(leaf.cert);
    expect(c.verify(new X509Certificate(ca.cert).publicKey)).toBe(true);
    expect(c.subjectAltName).toBe('DNS:a.example, IP Address:10.0.0.1');
    expect(c.issuer).toBe('CN=ca');
    expect(c.ca).toBe(false);
    expect(new X509Certificate(ca.cert).ca).toBe(true);
  });

  test("each leaf's authority key id is its CA's subject key id, also when the parsed CA is reused", () => {
    // Key ids as openssl prints them, so a CA kept parsed between certificates signs exactly as a fresh one would.
    const ids = (pem: string, which: string) =>
      new RegExp(`X509v3 ${which} Key Identifier:\\s*\\n\\s*(?:keyid:)?([0-9A-F:]+)`).exec(
        execFileSync('openssl', ['x509', '-noout', '-text'], { input: pem }).toString(),
      )?.[1];
    const second = issue({ subject: { cn: 'cli' }, usage: 'client', validitySeconds: 3600 }, t0, ca);
    const other = issue({ subject: { cn: 'ca2' }, usage: 'ca', validitySeconds: YEAR }, t0);
    const third = issue({ subject: { cn: 'srv2' }, usage: 'server', validitySeconds: 3600 }, t0, other);
    expect(ids(ca.cert, 'Subject')).toMatch(/^[0-9A-F]{2}(:[0-9A-F]{2}){19}$/);
    expect(ids(leaf.cert, 'Authority')).toBe(ids(ca.cert, 'Subject'));
    expect(ids(second.cert, 'Authority')).toBe(ids(ca.cert, 'Subject'));
    expect(ids(third.cert, 'Authority')).toBe(ids(other.cert, 'Subject'));
    expect(ids(third.cert, 'Authority')).not.toBe(ids(ca.cert, 'Subject'));
    expect(new X509Certificate(third.cert).issuer).toBe('CN=ca2');
  });
  test('certProblem names what is wrong', () => {
    const check = { ca: ca.cert, key: leaf.key, sans: ['a.example'], renewBeforeSeconds: 600 };
    expect(certProblem(leaf.cert, check, t0)).toBeUndefined();
    expect(certProblem(undefined, check, t0)).toBe('missing');
    expect(certProblem('garbage', check, t0)).toBe('not a PEM certificate');
    expect(certProblem(leaf.cert, { ...check, sans: ['b.example'] }, t0)).toBe('lacks SANs b.example');
    expect(certProblem(leaf.cert, { ...check, key: ca.key }, t0)).toBe('private key does not match');
    const other = issue({ subject: { cn: 'other' }, usage: 'ca', validitySeconds: YEAR }, t0);
    expect(certProblem(leaf.cert, { ...check, ca: other.cert }, t0)).toBe('not signed by the current CA');
    expect(certProblem(leaf.cert, check, new Date(t0.getTime() + 3100_000))).toMatch(/^expires 2026-11-21T01:00:00/);
  });
});

describe('planK8sSecrets', () => {
  const opts = { now: t0, certValiditySeconds: YEAR };
  const first = planK8sSecrets(names, 'uid-1', config, () => undefined, opts);

  test('mints every Secret once, then nothing: idempotent', () => {
    expect(first.writes.map((w) => `${w.namespace}/${w.name}`)).toEqual([
      'cp1-system/k8s-certs',
      'cp1-system/admin-kubeconfig',
      'cp1-system/cm-kubeconfig',
      'cp1-system/encryption-config',
      'kubeflex-system/cp1-db-credentials',
      'cp1-system/kine-postgres',
    ]);
    const again = planK8sSecrets(names, 'uid-1', config, lookupIn(store(first.writes)), opts);
    expect(again.writes).toEqual([]);
  });

  test('the off-cluster kubeconfig uses the domain and external port', () => {
    const admin = first.writes[1].data;
    expect(parseKubeconfig(admin.kubeconfig).server).toBe('https://cp1.example.com:443');
    expect(parseKubeconfig(admin['kubeconfig-incluster']).server).toBe('https://cp1.cp1-system.svc.cluster.local');
  });

  test('renews leaf certificates before expiry and keeps the CA and service-account key', () => {
    const s = store(first.writes);
    const later = { now: new Date(t0.getTime() + 340 * 86400_000), certValiditySeconds: YEAR };
    const plan = planK8sSecrets(names, 'uid-1', config, lookupIn(s), later);
    const certs = plan.writes.find((w) => w.name === 'k8s-certs')!;
    expect(certs.reason).toMatch(/^apiserver expires/);
    expect(certs.data['ca.crt']).toBe(first.writes[0].data['ca.crt']);
    expect(certs.data['sa.key']).toBe(first.writes[0].data['sa.key']);
    expect(certs.data['apiserver.crt']).not.toBe(first.writes[0].data['apiserver.crt']);
    expect(plan.writes.map((w) => w.name)).toEqual(['k8s-certs', 'admin-kubeconfig', 'cm-kubeconfig']);
  });

  test('a new domain re-issues the serving certificate and the off-cluster kubeconfig only', () => {
    const s = store(first.writes);
    const moved = parseHostingConfig({ domain: 'new.example', postgresHost: 'pg' });
    const plan = planK8sSecrets(names, 'uid-1', moved, lookupIn(s), opts);
    expect(plan.writes.map((w) => `${w.name}: ${w.reason}`)).toEqual([
      'k8s-certs: apiserver lacks SANs cp1.new.example',
      'admin-kubeconfig: kubeconfig server is https://cp1.example.com:443, want https://cp1.new.example:9443',
    ]);
    const admin = plan.writes[1].data;
    expect(admin['kubeconfig-incluster']).toBe(first.writes[1].data['kubeconfig-incluster']);
  });

  test('a mismatched service-account key pair is replaced; the database password is never changed', () => {
    const s = store(first.writes);
    s.set('cp1-system/k8s-certs', { ...s.get('cp1-system/k8s-certs')!, 'sa.pub': 'broken' });
    s.delete('cp1-system/kine-postgres');
    const plan = planK8sSecrets(names, 'uid-1', config, lookupIn(s), opts);
    expect(plan.writes.map((w) => `${w.name}: ${w.reason}`)).toEqual([
      'k8s-certs: service-account key pair missing or mismatched',
      'kine-postgres: database password missing',
    ]);
    expect(plan.writes[1].data.password).toBe(first.writes.find((w) => w.name === 'cp1-db-credentials')!.data.password);
  });

  test('keys the controller does not own survive an update', () => {
    const s = store(first.writes);
    s.set('cp1-system/admin-kubeconfig', { ...s.get('cp1-system/admin-kubeconfig')!, extra: 'x', kubeconfig: 'bad' });
    const w = planK8sSecrets(names, 'uid-1', config, lookupIn(s), opts).writes[0];
    expect(w.name).toBe('admin-kubeconfig');
    expect(w.data.extra).toBe('x');
    expect(w.reason).toBe('kubeconfig unreadable (not a kubeconfig document)');
  });
});

test('the bundled Postgres superuser password and TLS are minted once; an external server gets neither', () => {
  const bundled = parseHostingConfig({
    postgresHost: 'postgres-postgresql.kubeflex-system.svc',
    postgresBundled: 'true',
  });
  const opts = { now: t0, certValiditySeconds: YEAR };
  const writes = planHostingSecrets(bundled, () => undefined, opts);
  expect(writes.map((w) => [w.name, Object.keys(w.data).sort()])).toEqual([
    ['postgres-postgresql', ['postgres-password']],
    ['postgres-postgresql-tls', ['ca.crt', 'ca.key', 'tls.crt', 'tls.key']],
  ]);
  const tls = writes[1].data;
  const server = new X509Certificate(tls['tls.crt']);
  expect(server.verify(new X509Certificate(tls['ca.crt']).publicKey)).toBe(true);
  expect(server.subjectAltName).toBe(
    'DNS:postgres-postgresql.kubeflex-system.svc, DNS:postgres-postgresql.kubeflex-system.svc.cluster.local, ' +
      'DNS:postgres-postgresql.kubeflex-system, DNS:postgres-postgresql, DNS:localhost',
  );
  const s = store(writes);
  expect(planHostingSecrets(bundled, lookupIn(s), opts)).toEqual([]);
  // Renewed before expiry under the same CA.
  const later = { now: new Date(t0.getTime() + (YEAR - 10 * 86400) * 1000), certValiditySeconds: YEAR };
  const renewed = planHostingSecrets(bundled, lookupIn(s), later);
  expect(renewed.map((w) => w.name)).toEqual(['postgres-postgresql-tls']);
  expect(renewed[0].reason).toMatch(/^server certificate expires /);
  expect(renewed[0].data['ca.crt']).toBe(tls['ca.crt']);
  const external = parseHostingConfig({ postgresHost: 'db.example', postgresBundled: 'false' });
  expect(planHostingSecrets(external, () => undefined, opts)).toEqual([]);
});

test('kine gets a copy of the PostgreSQL CA; the plane waits for it when it is configured but missing', () => {
  const withCa = parseHostingConfig({
    domain: 'example.com',
    postgresHost: 'pg',
    postgresBundled: 'true',
    postgresCaSecret: 'postgres-postgresql-tls',
    postgresCaKey: 'ca.crt',
  });
  const opts = { now: t0, certValiditySeconds: YEAR };
  const waiting = planK8sSecrets(names, 'uid-1', withCa, () => undefined, opts);
  expect(waiting.waitingFor).toBe('Secret kubeflex-system/postgres-postgresql-tls key ca.crt');
  expect(waiting.writes.find((w) => w.name === 'kine-postgres')!.data).not.toHaveProperty('ca.crt');
  const s = store(waiting.writes);
  s.set('kubeflex-system/postgres-postgresql-tls', { 'ca.crt': 'CA-1', 'ca.key': 'secret' });
  const next = planK8sSecrets(names, 'uid-1', withCa, lookupIn(s), opts);
  expect(next.waitingFor).toBeUndefined();
  expect(next.writes.map((w) => [w.name, w.reason])).toEqual([['kine-postgres', 'PostgreSQL CA certificate changed']]);
  expect(next.writes[0].data).toEqual({ password: s.get('cp1-system/kine-postgres')!.password, 'ca.crt': 'CA-1' });
});

describe('planExternal', () => {
  const jwt = (iat: number, exp: number) => `x.${Buffer.from(JSON.stringify({ iat, exp })).toString('base64url')}.y`;
  const kubeconfig = (token: string) =>
    renderKubeconfig({
      server: 'https://adopted:6443',
      caCert: 'CA',
      credentials: { token },
      clusterName: 'c',
      userName: 'u',
      contextName: 'x',
    });
  const cp: ControlPlaneObject = {
    metadata: { name: 'e1' },
    spec: {
      type: 'external',
      bootstrapSecretRef: { name: 'b', namespace: 'kubeflex-system', inClusterKey: 'kubeconfig-incluster' },
    },
  };
  const s = (t: number) => t0.getTime() / 1000 + t;

  test('keeps a fresh token and says when to renew it', () => {
    const p = planExternal(cp, { 'kubeconfig-incluster': kubeconfig(jwt(s(0), s(1000))) }, undefined, t0);
    expect(p).toEqual({ action: 'keep', renewAt: new Date(t0.getTime() + 800_000) });
  });
  test('renews with the current token after 80% of its life', () => {
    const p = planExternal(cp, { 'kubeconfig-incluster': kubeconfig(jwt(s(-900), s(100))) }, undefined, t0);
    expect(p).toMatchObject({
      action: 'mint',
      deleteBootstrap: false,
      reason: expect.stringMatching(/^token renewal/),
    });
  });
  test('an expired token without a bootstrap Secret is an error that says what to do', () => {
    const p = planExternal(cp, { 'kubeconfig-incluster': kubeconfig(jwt(s(-900), s(-1))) }, undefined, t0);
    expect(p).toEqual({
      action: 'error',
      message:
        'the token in admin-kubeconfig has expired and the bootstrap Secret kubeflex-system/b is gone: run kflex adopt again',
    });
  });
  test('first token from the bootstrap kubeconfig, which is then deleted', () => {
    const p = planExternal(cp, undefined, { 'kubeconfig-incluster': kubeconfig('boot') }, t0);
    expect(p).toMatchObject({
      action: 'mint',
      deleteBootstrap: true,
      via: { token: 'boot', server: 'https://adopted:6443' },
    });
  });
  test.each([
    [
      undefined,
      'bootstrap Secret kubeflex-system/b not found: create it (kflex adopt does) with the kubeconfig of the cluster to adopt',
    ],
    [{ other: 'x' }, 'bootstrap Secret kubeflex-system/b has no key "kubeconfig-incluster"'],
    [
      { 'kubeconfig-incluster': 'current-context: x\n' },
      'bootstrap Secret kubeflex-system/b key "kubeconfig-incluster" is not a usable kubeconfig: current-context "x" refers to context "x", which is not defined',
    ],
    [
      { 'kubeconfig-incluster': kubeconfig('t').replace(/token: t/, 'exec: {command: aws}') },
      'bootstrap Secret kubeflex-system/b key "kubeconfig-incluster" is not a usable kubeconfig: user uses an exec plugin (runs a program), which is refused: use embedded client-certificate-data/client-key-data or a token',
    ],
  ])('fails when the bootstrap Secret is %j', (data, message) => {
    expect(planExternal(cp, undefined, data, t0)).toEqual({ action: 'error', message });
  });
});

describe('computeStatus', () => {
  const cp: ControlPlaneObject = {
    metadata: { name: 'cp1', generation: 3 },
    spec: { type: 'k8s', waitForPostCreateHooks: true },
  };
  const ref = {
    namespace: 'cp1-system',
    name: 'admin-kubeconfig',
    key: 'kubeconfig',
    inClusterKey: 'kubeconfig-incluster',
  };
  const cond = (st: any, type: string) => st.conditions.find((c: any) => c.type === type);

  test('Unavailable, then WaitingForPostCreateHooks, then Available', () => {
    const a = computeStatus(
      cp,
      {
        notReady: 'Deployment not ready',
        hooks: [{ name: 'h', complete: false, detail: 'Job x not succeeded' }],
        secretRef: ref,
      },
      t0,
    );
    expect(cond(a, 'Synced')).toEqual({
      type: 'Synced',
      status: 'True',
      reason: 'ReconcileSuccess',
      message: '',
      lastTransitionTime: '2026-11-21T00:00:00Z',
      lastUpdateTime: '2026-11-21T00:00:00Z',
    });
    expect(cond(a, 'Ready')).toMatchObject({ status: 'False', reason: 'Unavailable', message: 'Deployment not ready' });
    // KubeFlex's condition has exactly these fields; KubeStellar's strict decoder fails on any other.
    for (const c of a.conditions!)
      expect(Object.keys(c).sort()).toEqual([
        'lastTransitionTime',
        'lastUpdateTime',
        'message',
        'reason',
        'status',
        'type',
      ]);
    expect(a).toMatchObject({
      observedGeneration: 3,
      secretRef: ref,
      postCreateHooks: { h: false },
      postCreateHookCompleted: false,
    });
    const t1 = new Date(t0.getTime() + 60_000);
    const b = computeStatus(
      { ...cp, status: a },
      { hooks: [{ name: 'h', complete: false, detail: 'Job x not succeeded' }], secretRef: ref },
      t1,
    );
    expect(cond(b, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'WaitingForPostCreateHooks',
      message: 'Waiting for PostCreateHook completion (h: Job x not succeeded)',
      lastTransitionTime: '2026-11-21T00:00:00Z',
      lastUpdateTime: '2026-11-21T00:01:00Z',
    });
    // Synced did not change: its timestamps stay.
    expect(cond(b, 'Synced')).toEqual(cond(a, 'Synced'));
    const c = computeStatus(
      { ...cp, status: b },
      { hooks: [{ name: 'h', complete: true, detail: 'complete' }], secretRef: ref },
      t1,
    );
    expect(cond(c, 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Available',
      message: '',
      lastTransitionTime: '2026-11-21T00:01:00Z',
    });
    expect(c.postCreateHookCompleted).toBe(true);
    expect(
      statusChanged(
        c,
        computeStatus(
          { ...cp, status: c },
          { hooks: [{ name: 'h', complete: true, detail: '' }], secretRef: ref },
          new Date(),
        ),
      ),
    ).toBe(false);
  });

  test('without waitForPostCreateHooks, incomplete hooks do not hold Ready', () => {
    const s = computeStatus(
      { ...cp, spec: { type: 'k8s' } },
      { hooks: [{ name: 'h', complete: false, detail: '' }] },
      t0,
    );
    expect(cond(s, 'Ready').reason).toBe('Available');
    expect(s.postCreateHookCompleted).toBe(false);
  });

  test('a reconcile error is Synced=False/ReconcileError with the error text', () => {
    const s = computeStatus(cp, { syncError: 'boom', notReady: 'not synced', hooks: [] }, t0);
    expect(cond(s, 'Synced')).toMatchObject({ status: 'False', reason: 'ReconcileError', message: 'boom' });
    expect(s.postCreateHooks).toBeUndefined();
  });
});

test('hooks are rendered as the constructs render them; a missing variable is reported', () => {
  const hook = {
    spec: {
      templates: [
        { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: '{{.HookName}}-{{.ControlPlaneName}}' } },
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: '{{.Missing}}' } },
      ],
    },
  };
  const cp: ControlPlaneObject = { metadata: { name: 'cp1' }, spec: { type: 'k8s' } };
  expect(hookObjects(cp, names, hook, { hookName: 'h', vars: { Missing: 'm' } })).toEqual([
    { apiVersion: 'batch/v1', kind: 'Job', name: 'h-cp1', namespace: 'cp1-system' },
    { apiVersion: 'v1', kind: 'ConfigMap', name: 'm', namespace: 'cp1-system' },
  ]);
  expect(hookObjects(cp, names, hook, { hookName: 'h', vars: {} })).toBe(
    'PostCreateHook "h": vars ["Missing"] hook "h" uses {{.Missing}} but no defaultVars, globalVars or vars define it',
  );
});

describe('fails when', () => {
  test.each([
    [{ externalPort: 'x' }, 'ConfigMap kubeflex-config key externalPort="x" is not a port number'],
    [{ isOpenShift: 'yes' }, 'ConfigMap kubeflex-config key isOpenShift="yes" is not true or false'],
    [undefined, 'ConfigMap kubeflex-system/kubeflex-config not found: apply the hosting install first'],
  ])('kubeflex-config is %j', (data, message) => {
    expect(() => parseHostingConfig(data as any)).toThrow(message);
  });
  test('a duration is malformed', () => {
    expect(() => parseDuration('resync', '5 minutes')).toThrow(
      new UsageError('--resync=5 minutes is not a duration (use e.g. 500ms, 15s, 5m, 8760h, 30d)'),
    );
  });
  test('--connect-to is malformed', () => {
    expect(() => parseConnectTo(['a=b'])).toThrow('--connect-to=a=b must look like host:port=address:port');
    expect(parseConnectTo(['a.svc:443=127.0.0.1:1'])).toEqual({ 'a.svc:443': '127.0.0.1:1' });
  });
});

test('kubeconfigs carry KubeFlex names and embedded credentials', () => {
  const doc = parse(
    renderKubeconfig({
      server: 'https://s',
      caCert: 'CA',
      credentials: { cert: 'C', key: 'K' },
      clusterName: 'cp1-cluster',
      userName: 'cp1-admin',
      contextName: 'cp1',
    }),
  );
  expect(doc).toEqual({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'cp1-cluster', cluster: { server: 'https://s', 'certificate-authority-data': 'Q0E=' } }],
    users: [{ name: 'cp1-admin', user: { 'client-certificate-data': 'Qw==', 'client-key-data': 'Sw==' } }],
    contexts: [{ name: 'cp1', context: { cluster: 'cp1-cluster', user: 'cp1-admin', namespace: 'default' } }],
    'current-context': 'cp1',
    preferences: {},
  });
});

describe('parseKubeconfig (every kubeconfig read from a Secret)', () => {
  const doc = (cluster: Record<string, unknown>, user: Record<string, unknown>) =>
    JSON.stringify({
      clusters: [
        { name: 'c', cluster: { server: 'https://x:6443', 'certificate-authority-data': 'Q0E=', ...cluster } },
      ],
      users: [{ name: 'u', user: { token: 't', ...user } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u', extensions: [{ name: 'e', extension: {} }] } }],
      'current-context': 'x',
    });
  test.each([
    [{}, { exec: { command: 'sh' } }, 'user uses an exec plugin (runs a program)'],
    [{}, { 'auth-provider': { name: 'gcp', config: { 'cmd-path': '/bin/sh' } } }, 'user uses an auth-provider plugin'],
    [
      {},
      { 'token-file': '/var/run/secrets/kubernetes.io/serviceaccount/token' },
      'user uses a token file (reads a file)',
    ],
    [{}, { tokenFile: '/etc/passwd' }, 'user uses a token file'],
    [{}, { 'client-certificate': '/etc/x.crt' }, 'user uses a client certificate file'],
    [{}, { as: 'system:admin' }, 'user uses impersonation (as)'],
    [{}, { 'as-groups': ['system:masters'] }, 'user uses impersonation (as-groups)'],
    [{}, { username: 'a', password: 'b' }, 'user uses basic authentication'],
    [{ 'certificate-authority': '/etc/ca.crt' }, {}, 'cluster uses a CA file (reads a file)'],
    [{ 'proxy-url': 'http://evil:3128' }, {}, 'cluster uses a proxy URL'],
    [{ 'insecure-skip-tls-verify': true }, {}, 'cluster uses insecure-skip-tls-verify'],
    [{ server: 'http://api.example:8080' }, {}, 'has no https server URL'],
  ])('refuses %j / %j', (cluster, user, message) => {
    expect(() => parseKubeconfig(doc(cluster, user))).toThrow(message);
  });

  test('keeps only server, CA data, TLS server name, client certificate/key data and token; re-renders nothing else', () => {
    const p = parseKubeconfig(doc({ 'tls-server-name': 'api.in' }, { 'unknown-field': 'x' }));
    const text = renderParsed(p, p);
    expect(text).toContain('tls-server-name: api.in');
    expect(text).not.toMatch(/unknown-field|extensions/);
  });
});

describe('planHostToken (security review H4)', () => {
  const names = tenantNames('h1');
  const jwt = (iat: number, exp?: number) =>
    `x.${Buffer.from(JSON.stringify(exp === undefined ? { iat } : { iat, exp })).toString('base64url')}.y`;
  const admin = (token: string) => ({ 'kubeconfig-incluster': hostKubeconfig(names, 'CA', token) });
  const t = (s: number) => new Date(s * 1000);

  test('mints when nothing was written, and replaces a token without expiry (a legacy token Secret)', () => {
    expect(planHostToken(undefined, t(1000))).toEqual({ action: 'mint', reason: 'kubeconfig-incluster missing' });
    expect(planHostToken(admin(jwt(0)), t(1000))).toEqual({ action: 'mint', reason: 'token without expiry replaced' });
  });

  test('keeps a token until 80 % of its lifetime, then renews it', () => {
    expect(planHostToken(admin(jwt(0, 86400)), t(1000))).toEqual({ action: 'keep', renewAt: t(69120) });
    expect(planHostToken(admin(jwt(0, 86400)), t(70000))).toMatchObject({ action: 'mint', reason: /token renewal/ });
  });
});

describe('front-proxy CA (security review M3)', () => {
  test('is its own CA: the front-proxy client verifies against it and not against the cluster CA; shared CAs are migrated', () => {
    const names = tenantNames('fp');
    const config = parseHostingConfig({ domain: 'example.com', postgresHost: 'pg' });
    const opts = { now: new Date('2026-11-21T00:00:00Z'), certValiditySeconds: 365 * 86400 };
    const plan = planK8sSecrets(names, 'uid-1', config, () => undefined, opts);
    const certs = plan.writes.find((w) => w.name === 'k8s-certs')!.data;
    expect(certs['front-proxy-ca.crt']).not.toBe(certs['ca.crt']);
    const client = new X509Certificate(certs['front-proxy-client.crt']);
    expect(client.verify(new X509Certificate(certs['front-proxy-ca.crt']).publicKey)).toBe(true);
    expect(client.verify(new X509Certificate(certs['ca.crt']).publicKey)).toBe(false);
    // A Secret from before, with the cluster CA doubling as front-proxy CA, gets a front-proxy CA of its own.
    const legacy = { ...certs, 'front-proxy-ca.crt': certs['ca.crt'] };
    delete (legacy as Record<string, string>)['front-proxy-ca.key'];
    const again = planK8sSecrets(names, 'uid-1', config, (ns, n) => (n === 'k8s-certs' ? legacy : undefined), opts);
    const fixed = again.writes.find((w) => w.name === 'k8s-certs')!;
    expect(fixed.data['front-proxy-ca.crt']).not.toBe(certs['ca.crt']);
    expect(fixed.data['ca.crt']).toBe(certs['ca.crt']);
    expect(fixed.reason).toMatch(/front-proxy CA/);
  });
});

describe('encryption at rest (security review M1)', () => {
  test('a k8s tenant gets an AES-CBC EncryptionConfiguration once; it is never re-minted', () => {
    const names = tenantNames('enc');
    const config = parseHostingConfig({ domain: 'example.com', postgresHost: 'pg' });
    const opts = { now: new Date('2026-11-21T00:00:00Z'), certValiditySeconds: 365 * 86400 };
    const first = planK8sSecrets(names, 'uid-1', config, () => undefined, opts);
    const enc = first.writes.find((w) => w.name === 'encryption-config')!;
    expect(enc.namespace).toBe('enc-system');
    const doc = parse(enc.data['encryption-config.yaml']);
    expect(doc.kind).toBe('EncryptionConfiguration');
    const key = doc.resources[0].providers[0].aescbc.keys[0].secret;
    expect(Buffer.from(key, 'base64')).toHaveLength(32);
    expect(doc.resources[0].providers[1]).toEqual({ identity: {} });
    const stored = new Map(first.writes.map((w) => [`${w.namespace}/${w.name}`, w.data]));
    const again = planK8sSecrets(names, 'uid-1', config, (ns, n) => stored.get(`${ns}/${n}`), opts);
    expect(again.writes.map((w) => w.name)).toEqual([]);
  });
});

describe('admin group instead of system:masters (security review M4)', () => {
  const opts = { now: t0, certValiditySeconds: YEAR };
  const adminCert = (w: SecretWrite[], key = 'kubeconfig') => {
    const kc = parseKubeconfig(w.find((x) => x.name === 'admin-kubeconfig')!.data[key]);
    return new X509Certificate(kc.cert!);
  };

  test('admin kubeconfigs carry kubeflex:admins; a legacy system:masters certificate is re-issued', () => {
    const first = planK8sSecrets(names, 'uid-1', config, () => undefined, opts);
    expect(adminCert(first.writes).subject).toBe('O=kubeflex:admins\nCN=kubernetes-admin');
    expect(adminCert(first.writes, 'kubeconfig-incluster').subject).toBe('O=kubeflex:admins\nCN=kubernetes-admin');
    const s = store(first.writes);
    const certs = s.get('cp1-system/k8s-certs')!;
    const legacy = issue(
      { subject: { cn: 'kubernetes-admin', o: ['system:masters'] }, usage: 'client', validitySeconds: YEAR },
      t0,
      { cert: certs['ca.crt'], key: certs['ca.key'] },
    );
    const kc = (server: string) =>
      renderKubeconfig({
        server,
        caCert: certs['ca.crt'],
        credentials: legacy,
        clusterName: 'cp1-cluster',
        userName: 'cp1-admin',
        contextName: 'cp1',
      });
    const old = s.get('cp1-system/admin-kubeconfig')!;
    s.set('cp1-system/admin-kubeconfig', {
      kubeconfig: kc(parseKubeconfig(old.kubeconfig).server),
      'kubeconfig-incluster': kc(parseKubeconfig(old['kubeconfig-incluster']).server),
    });
    const again = planK8sSecrets(names, 'uid-1', config, lookupIn(s), opts);
    expect(again.writes.map((w) => w.name)).toEqual(['admin-kubeconfig']);
    expect(again.writes[0].reason).toMatch(/^kubeconfig subject is O=system:masters, CN=kubernetes-admin/);
    expect(adminCert(again.writes).subject).toBe('O=kubeflex:admins\nCN=kubernetes-admin');
  });

  test('the binding grants cluster-admin to the group; the bootstrap credential is short-lived and signed by the tenant CA', () => {
    expect(adminBinding()).toEqual({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'kubeflex:admins', labels: { 'app.kubernetes.io/managed-by': 'kubeflex-controller' } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'kubeflex:admins' }],
    });
    const s = store(planK8sSecrets(names, 'uid-1', config, () => undefined, opts).writes);
    const signer = clientSigner('k8s', names, lookupIn(s))!;
    expect(signer.cert).toBe(s.get('cp1-system/k8s-certs')!['ca.crt']);
    expect(clientSigner('vcluster', names, lookupIn(s))).toBeUndefined();
    expect(clientSigner('k8s', tenantNames('none'), lookupIn(s))).toBeUndefined();
    const boot = new X509Certificate(bootstrapCredentials(signer, t0).cert);
    expect(boot.subject).toBe('O=system:masters\nCN=kubeflex-controller');
    expect(boot.verify(new X509Certificate(signer.cert).publicKey)).toBe(true);
    expect((Date.parse(boot.validTo) - t0.getTime()) / 1000).toBe(300);
  });
});

describe('REST paths from tenant-controlled names (security review L1)', () => {
  test('cannot walk to another resource: dot segments refused, everything else encoded', () => {
    expect(paths.postCreateHook('../../../../api/v1/namespaces/cp4-system/secrets/cp4')).toBe(
      '/apis/tenancy.kflex.kubestellar.org/v1alpha1/postcreatehooks/..%2F..%2F..%2F..%2Fapi%2Fv1%2Fnamespaces%2Fcp4-system%2Fsecrets%2Fcp4',
    );
    expect(() => paths.secret('cp1-system', '..')).toThrow('".." is not a valid object name');
    expect(() => paths.object('batch/v1', 'Job', '.', 'ns')).toThrow('"." is not a valid object name');
    expect(paths.object('batch/v1', 'Job', 'a%2e%2e', 'ns')).toBe('/apis/batch/v1/namespaces/ns/jobs/a%252e%252e');
    expect(paths.object('../../api/v1', 'Job', 'x', 'ns')).toBeUndefined();
    expect(paths.object('apps/v1', 'Deployment', 'web', 'cp1-system')).toBe(
      '/apis/apps/v1/namespaces/cp1-system/deployments/web',
    );
  });
});

describe('sleeping planes (issue 12)', () => {
  test('Ready=False/Sleeping, Synced stays True; a reconcile error still shows', () => {
    const cp: ControlPlaneObject = { metadata: { name: 'cp1', generation: 2 }, spec: { type: 'k8s' } };
    const s = computeStatus(cp, { hooks: [], sleeping: true }, t0);
    expect(s.conditions!.map((c) => [c.type, c.status, c.reason, c.message])).toEqual([
      ['Synced', 'True', 'ReconcileSuccess', ''],
      [
        'Ready',
        'False',
        'Sleeping',
        'asleep: workloads scaled to zero, data kept; a client request wakes it (with the activator installed) or kflex wake',
      ],
    ]);
    // What would keep it from waking is said while it sleeps (the pass then looks again on the not-Ready schedule).
    const unmade = computeStatus(cp, { hooks: [], sleeping: true, notReady: 'database cp1 not provisioned: x' }, t0);
    expect(unmade.conditions!.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'Sleeping',
      message: expect.stringMatching(/^asleep: .*; not ready to wake: database cp1 not provisioned: x$/),
    });
    const failed = computeStatus(cp, { hooks: [], sleeping: true, syncError: 'boom', notReady: 'not synced' }, t0);
    expect(failed.conditions!.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Synced', 'False', 'ReconcileError'],
      ['Ready', 'False', 'Unavailable'],
    ]);
  });
});

describe('status.secretRef per type', () => {
  test('names an off-cluster key for every type that has one, and none for host, whose status says why', () => {
    const refs = Object.fromEntries(
      ['k8s', 'k3s', 'vcluster', 'host', 'external'].map((t) => [t, secretRefFor(t, names)]),
    );
    expect(refs).toEqual({
      k8s: {
        namespace: 'cp1-system',
        name: 'admin-kubeconfig',
        key: 'kubeconfig',
        inClusterKey: 'kubeconfig-incluster',
      },
      k3s: { namespace: 'cp1-system', name: 'k3s-config', key: 'config', inClusterKey: 'config-incluster' },
      vcluster: { namespace: 'cp1-system', name: 'vc-vcluster', key: 'config', inClusterKey: 'config-incluster' },
      host: { namespace: 'cp1-system', name: 'admin-kubeconfig', inClusterKey: 'kubeconfig-incluster' },
      external: {
        namespace: 'cp1-system',
        name: 'admin-kubeconfig',
        key: 'kubeconfig',
        inClusterKey: 'kubeconfig-incluster',
      },
    });
    const host = { metadata: { name: 'cp1', generation: 1 }, spec: { type: 'host' } };
    const ready = (notReady?: string) =>
      computeStatus(
        host,
        { hooks: [], secretRef: refs.host, readyMessage: HOST_NO_OFF_CLUSTER_KUBECONFIG, notReady },
        new Date(0),
      ).conditions!.find((c) => c.type === 'Ready')!;
    expect(ready()).toMatchObject({ status: 'True', reason: 'Available', message: HOST_NO_OFF_CLUSTER_KUBECONFIG });
    expect(ready('down')).toMatchObject({ status: 'False', reason: 'Unavailable', message: 'down' });
  });
});

describe('computeHookStatus', () => {
  const cp = (name: string, hooks: Record<string, boolean> | undefined, extra: Partial<ControlPlaneObject> = {}) =>
    ({
      metadata: { name },
      spec: { type: 'k8s', postCreateHooks: [{ hookName: 'h' }] },
      status: hooks ? { postCreateHooks: hooks } : undefined,
      ...extra,
    }) as ControlPlaneObject;
  const hook = { metadata: { name: 'h', generation: 3 } };
  const t0 = new Date('2026-12-01T10:00:00Z');
  const ready = (s: ReturnType<typeof computeHookStatus>) => s.conditions!.find((c) => c.type === 'Ready')!;

  test('Ready=False names the planes still waiting; planes that do not use the hook or are deleting do not count', () => {
    const s = computeHookStatus(
      hook,
      [
        cp('b', { h: false }),
        cp('a', { h: true }),
        cp('c', undefined),
        cp('other', { x: true }, { spec: { type: 'k8s', postCreateHooks: [{ hookName: 'x' }] } }),
        cp('gone', { h: false }, { metadata: { name: 'gone', deletionTimestamp: '2026-12-01T09:00:00Z' } }),
      ],
      t0,
    );
    expect(ready(s)).toEqual({
      type: 'Ready',
      status: 'False',
      reason: 'Unavailable',
      message: 'completed in 1 of 3 control planes that use it; waiting in b, c',
      lastTransitionTime: '2026-12-01T10:00:00Z',
      lastUpdateTime: '2026-12-01T10:00:00Z',
    });
    expect(s.observedGeneration).toBe(3);
    expect(s.conditions!.map((c) => `${c.type}/${c.status}/${c.reason}`)).toEqual([
      'Synced/True/ReconcileSuccess',
      'Ready/False/Unavailable',
    ]);
  });

  test('Synced=False with the reason when the materializer refused a plane that uses the hook', () => {
    const refused = cp('r', undefined, {
      metadata: {
        name: 'r',
        annotations: { 'kflex.kubestellar.org/materialize-error': 'ClusterRole x is cluster-scoped' },
      },
    });
    const s = computeHookStatus(hook, [cp('a', { h: true }), refused], t0);
    expect(s.conditions!.find((c) => c.type === 'Synced')).toMatchObject({
      status: 'False',
      reason: 'ReconcileError',
      message: 'not materialized in 1 control plane(s) that use it; r: ClusterRole x is cluster-scoped',
    });
  });

  test('Ready=True once all completed (legacy single hook counts); unchanged input is not a change', () => {
    const legacy = {
      metadata: { name: 'l' },
      spec: { type: 'k8s', postCreateHook: 'h' },
      status: { postCreateHooks: { h: true } },
    };
    const s = computeHookStatus(hook, [cp('a', { h: true }), legacy as ControlPlaneObject], t0);
    expect(ready(s).message).toBe('completed in all 2 control planes that use it');
    const again = computeHookStatus(
      { ...hook, status: s },
      [cp('a', { h: true }), legacy as ControlPlaneObject],
      new Date('2026-12-01T11:00:00Z'),
    );
    expect(statusChanged(s, again)).toBe(false);
    expect(ready(computeHookStatus(hook, [], t0)).message).toBe('no control plane uses it');
  });

  test('a long waiting list is cut after 20 names', () => {
    const many = Array.from({ length: 25 }, (_, i) => cp(`cp${String(i).padStart(2, '0')}`, { h: false }));
    expect(ready(computeHookStatus(hook, many, t0)).message).toMatch(/waiting in cp00, .*, cp19 and 5 more$/);
  });
});

describe('layering', () => {
  test('the controller loads no cdk8s, cdk8s-plus or constructs module (errors.ts and wire.ts are free of them)', () => {
    const loaded = (entry: string) =>
      JSON.parse(
        execFileSync(
          process.execPath,
          [
            '-r',
            'ts-node/register/transpile-only',
            '-e',
            `require(${JSON.stringify(entry)}); process.stdout.write(JSON.stringify(Object.keys(require.cache)` +
              `.filter((k) => /node_modules[\\\\/](cdk8s|cdk8s-plus-28|constructs)[\\\\/]/.test(k))))`,
          ],
          { cwd: path.resolve(__dirname, '..'), encoding: 'utf8' },
        ),
      ) as string[];
    expect(loaded('./lib/controller/main')).toEqual([]);
    // The check can fail: the materializer does build constructs.
    expect(loaded('./lib/materializer/materializer').length).toBeGreaterThan(0);
  });
});

test('kubeflex-config: bootstrapSecretNamespaces round-trips; kubeflex-system or a bad name in it is refused', () => {
  const c = parseHostingConfig({ bootstrapSecretNamespaces: 'ks-release,other' });
  expect(c.bootstrapSecretNamespaces).toEqual(['ks-release', 'other']);
  expect(parseHostingConfig({}).bootstrapSecretNamespaces).toBeUndefined();
  expect(() => parseHostingConfig({ bootstrapSecretNamespaces: 'kubeflex-system' })).toThrow(
    'key bootstrapSecretNamespaces="kubeflex-system" is not a list of other namespaces',
  );
  expect(() => parseHostingConfig({ bootstrapSecretNamespaces: 'a,,b' })).toThrow(/not a list of other namespaces/);
});

test("a workload event needs a pass when it changes what the pass reads, not when only a condition's time moves", () => {
  const starting = {
    metadata: { generation: 2 },
    spec: { replicas: 1 },
    status: {
      observedGeneration: 2,
      replicas: 1,
      conditions: [{ type: 'Progressing', status: 'True', lastUpdateTime: '2026-12-06T10:00:00Z' }],
    },
  };
  const touched = {
    ...starting,
    status: {
      ...starting.status,
      conditions: [{ type: 'Progressing', status: 'True', lastUpdateTime: '2026-12-06T10:00:05Z' }],
    },
  };
  expect(workloadFingerprint(touched)).toBe(workloadFingerprint(starting));
  // Each change that turns workloadReady (or a hook Job's readiness, or the sleep scale) gives a new fingerprint.
  const ready = { ...starting, status: { ...starting.status, readyReplicas: 1 } };
  expect(workloadReady(starting).ready).toBe(false);
  expect(workloadReady(ready).ready).toBe(true);
  const changes = [
    ready,
    { ...starting, spec: { replicas: 0 } },
    { ...starting, metadata: { generation: 3 } },
    { ...starting, metadata: { ...starting.metadata, deletionTimestamp: '2026-12-06T10:01:00Z' } },
    { ...starting, status: { ...starting.status, replicas: 2 } },
    { kind: 'Job', status: { succeeded: 1 } },
    { kind: 'Job', status: { failed: 1 } },
  ];
  const prints = new Set([starting, ...changes].map(workloadFingerprint));
  expect(prints.size).toBe(changes.length + 1);
});
