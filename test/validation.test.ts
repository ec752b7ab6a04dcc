import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Testing } from 'cdk8s';
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
} from '../lib';
import { setup, expectConfigError } from './helpers';

const hookTemplate = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' }, data: { x: '{{.Undefined}}' } };

describe('bad input fails with a message naming construct, prop and value', () => {
  test('fails when a tenant name is not a DNS-1123 label', () => {
    const { app, hosting } = setup();
    expectConfigError(
      () => new K8sControlPlane(app, 'x', { hosting, name: 'Team_A' }),
      'K8sControlPlane "x"',
      'name',
      '"Team_A"',
      'DNS-1123',
    );
  });

  test('fails when the hosting gateway is not a valid object reference', () => {
    for (const [gateway, prop] of [
      [{ name: 'Tenants', namespace: 'gw' }, 'gateway.name'],
      [{ name: 'tenants', namespace: 'gw.system' }, 'gateway.namespace'],
      [{ name: 'tenants', namespace: 'gw', sectionName: 'TLS_1' }, 'gateway.sectionName'],
    ] as const) {
      expectConfigError(() => setup({ gateway }), 'KubeflexHosting', prop);
    }
  });

  test('fails when kubernetesVersion is not a supported minor, with the list', () => {
    const { app, hosting } = setup();
    for (const v of ['1.31', 'v1.33.2', 'latest', '1.3']) {
      expectConfigError(
        () => new K8sControlPlane(app, `v${v.replace(/\W/g, '')}`, { hosting, kubernetesVersion: v }),
        'kubernetesVersion',
        `"${v}"`,
        'supported: 1.32 (v1.32.2), 1.33 (v1.33.13)',
      );
    }
  });

  test('fails when replicas is out of 1-5, or requireDistinctNodes comes without replicas', () => {
    const { app, hosting } = setup();
    for (const replicas of [0, 6, 1.5]) {
      expectConfigError(
        () => new K8sControlPlane(app, `r${replicas}`.replace('.', ''), { hosting, replicas }),
        'replicas',
      );
    }
    expectConfigError(
      () => new K8sControlPlane(app, 'rd', { hosting, requireDistinctNodes: true }),
      'requireDistinctNodes',
      'needs replicas > 1',
    );
  });

  test('fails when priorityClassName is not a DNS subdomain', () => {
    const { app, hosting } = setup();
    expectConfigError(
      () => new K8sControlPlane(app, 'pc', { hosting, priorityClassName: 'Critical_Class' }),
      'priorityClassName',
      '"Critical_Class"',
    );
  });

  test('fails when an oidc setting would stop kube-apiserver or let tokens name system users', () => {
    const { app, hosting } = setup();
    const base = { issuerUrl: 'https://issuer.example', clientId: 'k' };
    const cases: [Record<string, unknown>, string, string][] = [
      [{ issuerUrl: 'http://issuer.example' }, 'oidc.issuerUrl', 'https'],
      [{ issuerUrl: 'https://issuer.example/?x=1' }, 'oidc.issuerUrl', 'query'],
      [{ issuerUrl: 'not a url' }, 'oidc.issuerUrl', 'https URL'],
      [{ clientId: '' }, 'oidc.clientId', 'printable'],
      [{ usernamePrefix: 'system:' }, 'oidc.usernamePrefix', 'system:'],
      [{ groupsClaim: 'groups', groupsPrefix: 'system:masters' }, 'oidc.groupsPrefix', 'system:'],
      [{ groupsPrefix: 'g:' }, 'oidc.groupsPrefix', 'needs groupsClaim'],
      [{ usernameClaim: 'a b' }, 'oidc.usernameClaim', 'claim name'],
      [{ signingAlgs: ['HS256'] }, 'oidc.signingAlgs', 'RS256'],
      [{ requiredClaims: { tenant: 'a,b' } }, 'oidc.requiredClaims.tenant', 'commas'],
      [{ caConfigMap: { name: 'Bad_Name' } }, 'oidc.caConfigMap.name', 'Bad_Name'],
    ];
    cases.forEach(([bad, prop, why], i) =>
      expectConfigError(
        () => new K8sControlPlane(app, `o${i}`, { hosting, oidc: { ...base, ...bad } as any }),
        'K8sControlPlane',
        prop,
        why,
      ),
    );
  });

  test('fails when extraArgs set a flag the construct owns, or a name that is not a flag', () => {
    const { app, hosting } = setup();
    expectConfigError(
      () =>
        new K8sControlPlane(app, 'e1', { hosting, extraArgs: { apiServer: { 'authorization-mode': 'AlwaysAllow' } } }),
      'extraArgs.apiServer.authorization-mode',
      '"AlwaysAllow"',
      '--authorization-mode=RBAC',
    );
    expectConfigError(
      () => new K8sControlPlane(app, 'e2', { hosting, extraArgs: { controllerManager: { 'leader-elect': 'true' } } }),
      'extraArgs.controllerManager.leader-elect',
      'replicas',
    );
    expectConfigError(
      () => new K8sControlPlane(app, 'e3', { hosting, extraArgs: { kine: { '--endpoint': 'x' } } }),
      'extraArgs.kine.--endpoint',
      'without leading dashes',
    );
    // More writes at once than kine's pool can finish deadlock kine (lib/wire.ts, kineWriteLimit).
    expectConfigError(
      () =>
        new K8sControlPlane(app, 'e5', {
          hosting,
          extraArgs: { apiServer: { 'max-mutating-requests-inflight': '200' } },
        }),
      'extraArgs.apiServer.max-mutating-requests-inflight',
      '"200"',
      '--max-mutating-requests-inflight=10',
    );
    expectConfigError(
      () => new K8sControlPlane(app, 'e4', { hosting, extraArgs: { apiServer: { v: '2\n--x' } } }),
      'extraArgs.apiServer.v',
      'one line',
    );
  });

  // Security review N5: flags that change whom a tenant trusts are refused even where the construct does not set them.
  const trustFlags: [component: 'apiServer' | 'controllerManager' | 'kine', flag: string, value: string][] = [
    ['apiServer', 'token-auth-file', '/etc/kubernetes/oidc/ca.crt'],
    ['apiServer', 'enable-admission-plugins', 'AlwaysAdmit'],
    ['apiServer', 'disable-admission-plugins', 'PodSecurity'],
    ['apiServer', 'oidc-groups-claim', 'groups'],
    ['apiServer', 'oidc-issuer-url', 'https://idp.example.com'],
    ['apiServer', 'authorization-webhook-config-file', '/x'],
    ['apiServer', 'authentication-config', '/x'],
    ['apiServer', 'etcd-servers-overrides', '/events#http://evil:2379'],
    ['apiServer', 'tls-cipher-suites', 'TLS_RSA_WITH_RC4_128_SHA'],
    ['apiServer', 'anonymous-auth', 'true'],
    ['apiServer', 'audit-log-maxage', '0'],
    ['controllerManager', 'authorization-always-allow-paths', '/'],
    ['controllerManager', 'cluster-signing-duration', '876000h'],
    ['kine', 'endpoint', 'postgres://x@db/kine?sslmode=disable'],
    ['kine', 'ca-file', '/tmp/ca.crt'],
    ['kine', 'server-cert-file', '/tmp/x.crt'],
  ];
  test.each(trustFlags)(
    'fails when extraArgs.%s sets --%s (it changes whom the tenant trusts)',
    (component, flag, value) => {
      const { app, hosting } = setup();
      expectConfigError(
        () => new K8sControlPlane(app, 't', { hosting, extraArgs: { [component]: { [flag]: value } } }),
        `extraArgs.${component}.${flag}`,
        `--${flag} changes whom the tenant trusts`,
      );
    },
  );

  test('fails when host planes are disabled but a host plane is synthesized, or granted to a group', () => {
    const app = new App();
    const hosting = new KubeflexHosting(app, 'nohost', { hostControlPlanes: false });
    expectConfigError(
      () => new HostControlPlane(app, 'h', { hosting }),
      'HostControlPlane "h"',
      'hosting',
      'does not allow host control planes (hostControlPlanes: false)',
    );
    expectConfigError(
      () => new KubeflexHosting(new App(), 'h2', { hostControlPlanes: false, hostControlPlaneGroups: ['ops'] }),
      'hostControlPlaneGroups',
      'hostControlPlanes is false',
    );
    expectConfigError(
      () => new KubeflexHosting(new App(), 'h3', { hostControlPlaneGroups: ['system:authenticated'] }),
      'hostControlPlaneGroups[0]',
      '"system:authenticated"',
      'reserved "system:" prefix',
    );
  });

  test('fails when a hook declares an egress we do not know, or hostingApiServer is not CIDRs and ports', () => {
    const { hosting } = setup();
    expectConfigError(
      () => new PostCreateHook(hosting, 'e', { hosting, templates: [hookTemplate], egress: ['internet' as any] }),
      'PostCreateHook',
      'egress[0]',
      '"internet"',
      'must be one of hosting-api, control-planes',
    );
    expectConfigError(
      () => new KubeflexHosting(new App(), 'a1', { hostingApiServer: { cidrs: ['10.0.0.1'] } }),
      'hostingApiServer.cidrs[0]',
      '"10.0.0.1"',
      'is not a CIDR',
    );
    expectConfigError(
      () => new KubeflexHosting(new App(), 'a2', { hostingApiServer: { ports: [0] } }),
      'hostingApiServer.ports[0]',
    );
    expectConfigError(
      () => new KubeflexHosting(new App(), 'a3', { hostingApiServer: { cidrs: [] } }),
      'hostingApiServer',
      'needs at least one CIDR and one port',
    );
  });

  test('fails when the hosting namespace is given Pod Security privileged', () => {
    expectConfigError(
      () => new KubeflexHosting(new App(), 'hp', { podSecurity: 'privileged' as any }),
      'KubeflexHosting "hp"',
      'podSecurity',
      '"privileged"',
    );
  });

  test('fails when a hook asks for Pod Security privileged (hook workloads never run privileged)', () => {
    const { hosting } = setup();
    expectConfigError(
      () => new PostCreateHook(hosting, 'p', { hosting, templates: [hookTemplate], podSecurity: 'privileged' as any }),
      'PostCreateHook',
      'podSecurity',
      '"privileged"',
      'must be "restricted" or "baseline"',
    );
  });

  test('fails when an extraArgs value holds $(VAR), which the kubelet expands from the environment', () => {
    const { app, hosting } = setup();
    expectConfigError(
      () => new K8sControlPlane(app, 'v', { hosting, extraArgs: { apiServer: { v: '$(KINE_DB_PASSWORD)' } } }),
      'extraArgs.apiServer.v',
      'must not contain "$("',
    );
  });

  test('fails when a tenant name is too long for the derived namespace', () => {
    const { app, hosting } = setup();
    const name = 'a'.repeat(57);
    expectConfigError(
      () => new HostControlPlane(app, 'x', { hosting, name }),
      'HostControlPlane',
      'name',
      name,
      'at most 56',
    );
  });

  test('accepts a tenant name of exactly 56 characters', () => {
    const { app, hosting } = setup();
    const cp = new HostControlPlane(app, 'x', { hosting, name: 'a'.repeat(56) });
    expect(Testing.synth(cp)[1].metadata.name).toHaveLength(63);
  });

  test('fails when two control planes share a name', () => {
    const { app, hosting } = setup();
    new K3sControlPlane(app, 'one', { hosting, name: 'dup' });
    expectConfigError(
      () => new HostControlPlane(app, 'two', { hosting, name: 'dup' }),
      'HostControlPlane "two"',
      'name',
      '"dup"',
      'already used',
      '"one"',
    );
  });

  test('fails when two hooks share a name', () => {
    const { hosting } = setup();
    new PostCreateHook(hosting, 'h', { hosting, templates: [] });
    expectConfigError(
      () => new PostCreateHook(hosting, 'h2', { hosting, name: 'h' }),
      'PostCreateHook',
      'name',
      '"h"',
      'already used',
    );
  });

  test('fails when a hook variable is used in a template but never defined', () => {
    const { app, hosting } = setup();
    new PostCreateHook(hosting, 'h', { hosting, templates: [hookTemplate] });
    expectConfigError(
      () => new HostControlPlane(app, 'cp', { hosting, allowPostCreateHooks: true, postCreateHooks: [{ hook: 'h' }] }),
      'HostControlPlane "cp"',
      'postCreateHooks[h].vars',
      '["Undefined"]',
      '{{.Undefined}}',
    );
  });

  test('fails when a control plane uses an unknown hook', () => {
    const { app, hosting } = setup();
    expectConfigError(
      () => new VClusterControlPlane(app, 'cp', { hosting, postCreateHooks: [{ hook: 'nope' }] }),
      'VClusterControlPlane "cp"',
      'postCreateHooks[].hook',
      '"nope"',
      'known: none',
    );
  });

  test('fails when a control plane uses the same hook twice', () => {
    const { app, hosting } = setup();
    const hook = new PostCreateHook(hosting, 'h', { hosting, templates: [{ ...hookTemplate, data: {} }] });
    expectConfigError(
      () =>
        new HostControlPlane(app, 'cp', { hosting, allowPostCreateHooks: true, postCreateHooks: [{ hook }, { hook }] }),
      'used twice',
    );
  });

  test('fails when a template uses an unsupported action', () => {
    const { hosting } = setup();
    expectConfigError(
      () =>
        new PostCreateHook(hosting, 'h', {
          hosting,
          templates: [{ ...hookTemplate, data: { x: '{{ if .A }}y{{ end }}' } }],
        }),
      'PostCreateHook "hosting/h"',
      'templates[0]',
      'if .A',
    );
  });

  test('fails when a template lacks kind or name', () => {
    const { hosting } = setup();
    expectConfigError(
      () => new PostCreateHook(hosting, 'h', { hosting, templates: [{ apiVersion: 'v1', kind: 'ConfigMap' }] }),
      'templates[0]',
      'metadata.name',
    );
  });

  test('fails when a namespaced template names another namespace', () => {
    const { app, hosting } = setup();
    new PostCreateHook(hosting, 'h', {
      hosting,
      templates: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'default' } }],
    });
    expectConfigError(
      () => new HostControlPlane(app, 'cp', { hosting, allowPostCreateHooks: true, postCreateHooks: [{ hook: 'h' }] }),
      'templates[0].metadata.namespace',
      '"default"',
      'cp-system',
    );
  });

  test('fails when templates are added to a hook after it was rendered', () => {
    const { app, hosting } = setup();
    const hook = new PostCreateHook(hosting, 'h', { hosting, templates: [{ ...hookTemplate, data: {} }] });
    new HostControlPlane(app, 'cp', { hosting, allowPostCreateHooks: true, postCreateHooks: [{ hook }] });
    expectConfigError(() => hook.addTemplate({ ...hookTemplate, data: {} }), 'addTemplate', 'already rendered');
  });

  test('fails at synth when a hook has no templates', () => {
    const { app, hosting } = setup();
    new PostCreateHook(hosting, 'empty', { hosting });
    expect(() => app.synth()).toThrow(/PostCreateHook "hosting\/empty": no templates were added/);
  });

  test('fails when an external plane names another bootstrap Secret (confused deputy, security review C1)', () => {
    const { app, hosting } = setup();
    expectConfigError(
      () => new ExternalControlPlane(app, 'ext', { hosting, bootstrapSecret: { name: 'cp1-admin' } }),
      'ExternalControlPlane "ext"',
      'bootstrapSecret.name',
      '"cp1-admin"',
      'must be "ext-bootstrap"',
    );
  });

  test('fails when an external bootstrap Secret is outside kubeflex-system and the listed namespaces', () => {
    const { app, hosting } = setup();
    expectConfigError(
      () => new ExternalControlPlane(app, 'ext', { hosting, bootstrapSecret: { namespace: 'cp1-system' } }),
      'bootstrapSecret.namespace',
      '"cp1-system"',
      'must be "kubeflex-system"',
    );
    const listed = new App();
    const h = new KubeflexHosting(listed, 'h', { bootstrapSecretNamespaces: ['ks-release'] });
    expect(
      () => new ExternalControlPlane(listed, 'ok', { hosting: h, bootstrapSecret: { namespace: 'ks-release' } }),
    ).not.toThrow();
    expectConfigError(
      () => new ExternalControlPlane(listed, 'no', { hosting: h, bootstrapSecret: { namespace: 'cp1-system' } }),
      'bootstrapSecret.namespace',
      'must be "kubeflex-system" or "ks-release"',
    );
  });

  test('fails when bootstrapSecretNamespaces holds a bad name or kubeflex-system', () => {
    expectConfigError(
      () => new KubeflexHosting(new App(), 'b1', { bootstrapSecretNamespaces: ['Bad_NS'] }),
      'bootstrapSecretNamespaces[0]',
      '"Bad_NS"',
    );
    expectConfigError(
      () => new KubeflexHosting(new App(), 'b2', { bootstrapSecretNamespaces: ['kubeflex-system'] }),
      'bootstrapSecretNamespaces[0]',
      'is listed already',
    );
  });

  test('fails when an external token lifetime is below the TokenRequest minimum', () => {
    const { app, hosting } = setup();
    expectConfigError(
      () => new ExternalControlPlane(app, 'ext', { hosting, tokenExpirationSeconds: 60 }),
      'tokenExpirationSeconds',
      '60',
      'from 600',
    );
  });

  test('fails when an external token lifetime exceeds one year (the CRD maximum)', () => {
    const { app, hosting } = setup();
    expectConfigError(
      () => new ExternalControlPlane(app, 'ext', { hosting, tokenExpirationSeconds: 31536001 }),
      'tokenExpirationSeconds',
      '31536001',
      'to 31536000',
    );
  });

  test('fails when a host plane uses hooks without allowPostCreateHooks (they could mount hosting cluster-admin)', () => {
    const { app, hosting } = setup();
    new PostCreateHook(hosting, 'h', {
      hosting,
      templates: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }],
    });
    expectConfigError(
      () => new HostControlPlane(app, 'cp', { hosting, postCreateHooks: [{ hook: 'h' }] }),
      'HostControlPlane "cp"',
      'postCreateHooks',
      '"h"',
      'set allowPostCreateHooks: true',
    );
  });

  test('fails when a control plane is named after a platform namespace (kube -> kube-system, security review M6)', () => {
    const { app, hosting } = setup();
    expectConfigError(
      () => new HostControlPlane(app, 'kube', { hosting }),
      'HostControlPlane "kube"',
      'name',
      '"kube"',
      'is reserved: its namespace kube-system',
    );
  });

  test('fails when a k8s plane has no PostgreSQL', () => {
    const { app, hosting } = setup({ installPostgres: false });
    expectConfigError(
      () => new K8sControlPlane(app, 'cp', { hosting }),
      'K8sControlPlane "cp"',
      'hosting',
      '"hosting"',
      'PostgreSQL',
    );
  });

  test('fails when a storage size is negative or zero', () => {
    const { app, hosting } = setup();
    expectConfigError(
      () => new K3sControlPlane(app, 'k', { hosting, dataStorageSize: '-1Gi' }),
      'K3sControlPlane "k"',
      'dataStorageSize',
      '"-1Gi"',
    );
    expectConfigError(
      () => new VClusterControlPlane(app, 'v', { hosting, storageSize: '0Gi' }),
      'storageSize',
      '"0Gi"',
    );
    expectConfigError(
      () => setup({ postgres: { storageSize: '10GB' } }),
      'KubeflexHosting',
      'postgres.storageSize',
      '"10GB"',
    );
  });

  test('fails when the bundled PostgreSQL autovacuum naptime is out of range', () => {
    expectConfigError(
      () => setup({ postgres: { autovacuumNaptimeSeconds: 0 } }),
      'KubeflexHosting',
      'postgres.autovacuumNaptimeSeconds',
      '0',
    );
    expectConfigError(
      () => setup({ postgres: { autovacuumNaptimeSeconds: 1.5 } }),
      'postgres.autovacuumNaptimeSeconds',
      '1.5',
    );
    expectConfigError(
      () => setup({ postgres: { autovacuumNaptimeSeconds: 3_000_000 } }),
      'postgres.autovacuumNaptimeSeconds',
      '3000000',
    );
  });

  test('fails when a port is out of range', () => {
    expectConfigError(() => setup({ externalPort: 70000 }), 'KubeflexHosting', 'externalPort', '70000', '1 to 65535');
    expectConfigError(() => setup({ externalPort: 0 }), 'externalPort', '0');
    expectConfigError(
      () => setup({ externalPostgres: { host: 'pg', port: -5, passwordSecretName: 's' } }),
      'externalPostgres.port',
      '-5',
    );
  });

  test('fails when the domain is invalid', () => {
    expectConfigError(() => setup({ domain: 'Not A Domain' }), 'KubeflexHosting', 'domain', '"Not A Domain"');
  });

  test('fails when postgres props contradict each other', () => {
    const ext = { host: 'pg', passwordSecretName: 's' };
    expectConfigError(
      () => setup({ externalPostgres: ext, installPostgres: true }),
      'installPostgres',
      'contradicts externalPostgres',
    );
    expectConfigError(
      () => setup({ externalPostgres: ext, postgres: { storageSize: '1Gi' } }),
      'postgres',
      'externalPostgres is set',
    );
    expectConfigError(() => setup({ installPostgres: false, postgres: {} }), 'postgres', 'installPostgres is false');
  });

  test('fails when a hook has a cluster-scoped template without allowClusterScoped (review M8)', () => {
    const { hosting } = setup();
    expectConfigError(
      () =>
        new PostCreateHook(hosting, 'escalate', {
          hosting,
          templates: [
            {
              apiVersion: 'rbac.authorization.k8s.io/v1',
              kind: 'ClusterRoleBinding',
              metadata: { name: '{{.ControlPlaneName}}-admin' },
            },
          ],
        }),
      'PostCreateHook "hosting/escalate"',
      'templates[0].kind',
      '"ClusterRoleBinding"',
      'is cluster-scoped',
      'allowClusterScoped: true',
    );
  });

  test('fails when goGc is out of range', () => {
    const { app, hosting } = setup();
    expectConfigError(
      () => new K8sControlPlane(app, 'g', { hosting, goGc: 0 }),
      'K8sControlPlane "g"',
      'invalid goGc 0',
      'must be an integer from 10 to 1000',
    );
  });

  test('fails when a plane without workloads is put to sleep', () => {
    const { app, hosting } = setup();
    expectConfigError(
      () => new HostControlPlane(app, 'h', { hosting, sleeping: true }),
      'HostControlPlane "h"',
      'invalid sleeping true',
      'a host control plane has no workloads of its own to put to sleep',
    );
  });

  test('fails when a size is unknown or a request exceeds its limit', () => {
    const { app, hosting } = setup();
    expectConfigError(
      () => new K8sControlPlane(app, 'a', { hosting, size: 'huge' as any }),
      'K8sControlPlane "a"',
      'invalid size "huge"',
      'small, medium, large',
    );
    expectConfigError(
      () =>
        new K8sControlPlane(app, 'b', {
          hosting,
          resources: {
            apiServer: { cpuRequestMillis: 100, cpuLimitMillis: 1000, memoryRequestMi: 600, memoryLimitMi: 512 },
          },
        }),
      'K8sControlPlane "b"',
      'resources.apiServer.memoryRequestMi',
      '600',
      'must be at most memoryLimitMi (512)',
    );
    expectConfigError(
      () =>
        new K8sControlPlane(app, 'c', {
          hosting,
          resources: {
            kine: { cpuRequestMillis: 300, cpuLimitMillis: 200, memoryRequestMi: 32, memoryLimitMi: 64 },
          },
        }),
      'resources.kine.cpuRequestMillis',
      'must be at most cpuLimitMillis (200)',
    );
    expectConfigError(
      () =>
        new K8sControlPlane(app, 'd', {
          hosting,
          resources: {
            controllerManager: { cpuRequestMillis: 10, cpuLimitMillis: 200, memoryRequestMi: 16, memoryLimitMi: 8 },
          },
        }),
      'resources.controllerManager.memoryLimitMi',
      'must be an integer from 32',
    );
  });

  test('fails when PostgreSQL server verification is asked for without its CA', () => {
    const ext = { host: 'pg', passwordSecretName: 's' };
    expectConfigError(
      () => setup({ externalPostgres: ext, postgresSslMode: 'verify-full' }),
      'KubeflexHosting',
      'postgresSslMode',
      '"verify-full"',
      'needs the CA of the server: set externalPostgres.caSecretName',
    );
    expectConfigError(
      () => setup({ externalPostgres: { ...ext, caSecretKey: 'ca.pem' } }),
      'externalPostgres.caSecretKey',
      'needs caSecretName',
    );
    expectConfigError(
      () => setup({ externalPostgres: { ...ext, caSecretName: 'pg-ca', caSecretKey: 'ca/pem' } }),
      'externalPostgres.caSecretKey',
      '"ca/pem"',
    );
    expectConfigError(
      () => setup({ externalPostgres: { ...ext, caSecretName: 'Bad_Name' } }),
      'externalPostgres.caSecretName',
      '"Bad_Name"',
    );
  });

  test('fails when the service CIDR is malformed', () => {
    const { app, hosting } = setup();
    expectConfigError(
      () => new K8sControlPlane(app, 'cp', { hosting, serviceClusterIpRange: '10.96/12' }),
      'serviceClusterIpRange',
      '"10.96/12"',
    );
  });
});

describe('nothing is written on bad input', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kflex-atomic-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a failing build leaves no output directory and no staging leftovers', () => {
    const out = path.join(dir, 'dist');
    expect(() =>
      synthesizeAtomically((app) => {
        const hosting = new KubeflexHosting(app, 'hosting');
        new HostControlPlane(app, 'good', { hosting });
        new HostControlPlane(app, 'bad', { hosting, name: 'BAD' });
      }, out),
    ).toThrow(KubeflexConfigError);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  test('a failing validation at synth keeps a previous output untouched', () => {
    const out = path.join(dir, 'dist');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'old.yaml'), 'kept');
    expect(() =>
      synthesizeAtomically((app) => {
        const hosting = new KubeflexHosting(app, 'hosting');
        new PostCreateHook(hosting, 'empty', { hosting });
      }, out),
    ).toThrow(/no templates/);
    expect(fs.readdirSync(dir)).toEqual(['dist']);
    expect(fs.readdirSync(out)).toEqual(['old.yaml']);
  });
});
