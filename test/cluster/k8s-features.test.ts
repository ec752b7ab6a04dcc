// K8sControlPlane's version, HA, OIDC and extraArgs props, proven by tenants booted from their own synthesized
// manifests with the real binaries of each supported Kubernetes minor.
import { spawn, spawnSync } from 'child_process';
import { createSign, generateKeyPairSync, randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { K8sControlPlaneProps } from '../../lib';
import { KUBERNETES_RELEASES, KUBERNETES_VERSION } from '../../lib/versions';
import { kinePoolSize, kineWriteLimit } from '../../lib/wire';
import { ClusterState, kubectl, loadState, makePki, eventually } from './harness';
import { adminAccess, bootTenant, synthTenant, Tenant, writeBurst } from './tenant';

const state: ClusterState = loadState();
const suite = state.skipped ? describe.skip : describe;
if (state.skipped) console.warn(`### SKIPPED k8s feature tests: ${state.skipped}`);

const k = (t: Tenant, args: string[]) => kubectl({ kubeconfig: t.kubeconfig }, args);
const binFor = (version: string, cmd: string) =>
  version === KUBERNETES_VERSION ? path.join(state.binDir, cmd) : path.join(state.binDir, version, cmd);
const containerArgs = (objects: any[], deployment: string, container: string): string[] =>
  objects
    .find((o) => o.kind === 'Deployment' && o.metadata.name === deployment)
    .spec.template.spec.containers.find((c: any) => c.name === container).args;

/** The issuer's HTTPS server, in its own process: kubectl runs synchronously here and would block an in-process one. */
const ISSUER_SERVER = `
const https = require('https');
const env = process.env;
let issuer = '';
const server = https.createServer({ key: env.TLS_KEY, cert: env.TLS_CERT }, (req, res) => {
  res.setHeader('content-type', 'application/json');
  if (req.url === '/issuer/.well-known/openid-configuration') {
    res.end(JSON.stringify({ issuer, jwks_uri: issuer + '/keys', id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['id_token'], subject_types_supported: ['public'] }));
  } else if (req.url === '/issuer/keys') {
    res.end(env.JWKS);
  } else {
    res.statusCode = 404;
    res.end('{}');
  }
});
server.listen(0, '127.0.0.1', () => {
  issuer = 'https://127.0.0.1:' + server.address().port + '/issuer';
  process.stdout.write(issuer + '\\n');
});
process.on('disconnect', () => process.exit(0));
`;

/** A minimal OIDC issuer on loopback: discovery and a JWKS over TLS, tokens signed with RS256. */
async function startIssuer(dir: string) {
  makePki(dir);
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'test-key', alg: 'RS256', use: 'sig' };
  const child = spawn(process.execPath, ['-e', ISSUER_SERVER], {
    env: {
      TLS_KEY: fs.readFileSync(path.join(dir, 'apiserver.key'), 'utf8'),
      TLS_CERT: fs.readFileSync(path.join(dir, 'apiserver.crt'), 'utf8'),
      JWKS: JSON.stringify({ keys: [jwk] }),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const issuer = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (d) => resolve(String(d).trim()));
    child.once('exit', (code) => reject(new Error(`issuer exited with ${code}`)));
  });
  const b64 = (x: object) => Buffer.from(JSON.stringify(x)).toString('base64url');
  const token = (claims: Record<string, unknown>) => {
    const now = Math.floor(Date.now() / 1000);
    const body = `${b64({ alg: 'RS256', kid: 'test-key', typ: 'JWT' })}.${b64({ iss: issuer, aud: 'kflex-test', iat: now, exp: now + 600, ...claims })}`;
    return `${body}.${createSign('RSA-SHA256').update(body).sign(privateKey).toString('base64url')}`;
  };
  return { issuer, ca: fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8'), token, close: () => child.kill() };
}

suite('kubernetesVersion: every supported minor', () => {
  test.each(Object.entries(KUBERNETES_RELEASES))(
    '%s: every flag we render is one its binaries know, and every feature gate is one of its gates',
    (minor, release) => {
      const variants: Omit<K8sControlPlaneProps, 'hosting'>[] = [
        { kubernetesVersion: minor },
        {
          kubernetesVersion: minor,
          replicas: 3,
          priorityClassName: 'system-cluster-critical',
          oidc: {
            issuerUrl: 'https://issuer.example',
            clientId: 'c',
            groupsClaim: 'groups',
            requiredClaims: { a: 'b' },
            caConfigMap: { name: 'ca' },
          },
        },
      ];
      for (const [deployment, container] of [
        ['kube-apiserver', 'kube-apiserver'],
        ['kube-controller-manager', 'kube-controller-manager'],
      ]) {
        const help = spawnSync(binFor(release.version, container), ['--help'], { encoding: 'utf8' }).stdout;
        expect(help).toContain('--secure-port');
        const known = new Set([...help.matchAll(/^\s+(?:-\w, )?--([a-z0-9-]+)/gm)].map((m) => m[1]));
        for (const props of variants) {
          const objects = synthTenant('versions', props);
          const image = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === deployment).spec.template
            .spec.containers[deployment === 'kube-apiserver' ? 1 : 0].image;
          expect(image).toBe(`registry.k8s.io/${container}:${release.version}`);
          for (const arg of containerArgs(objects, deployment, container)) {
            const flag = /^--([a-z0-9-]+)/.exec(arg)![1];
            expect({ flag, known: known.has(flag) }).toEqual({ flag, known: true });
            if (flag === 'feature-gates') {
              for (const gate of arg.split('=').slice(1).join('=').split(',')) {
                expect(help).toContain(`${gate.split('=')[0]}=true|false`);
              }
            }
          }
        }
      }
    },
    30_000,
  );
});

suite('k8s tenants at two minors, OIDC, extraArgs and leader election, booted from their synthesized specs', () => {
  const minors = Object.keys(KUBERNETES_RELEASES);
  const newest = minors[minors.length - 1];
  let oidcTenant: Tenant;
  let haTenant: Tenant;
  // What each tenant was booted from.
  const objectsOf = new Map<Tenant, any[]>();
  let issuer: Awaited<ReturnType<typeof startIssuer>>;
  beforeAll(async () => {
    issuer = await startIssuer(path.join(state.dir, 'oidc-issuer'));
    const oidcObjects = synthTenant('oidc', {
      kubernetesVersion: minors[0],
      oidc: {
        issuerUrl: issuer.issuer,
        clientId: 'kflex-test',
        groupsClaim: 'groups',
        requiredClaims: { tenant: 'oidc' },
        caConfigMap: { name: 'oidc-issuer-ca' },
      },
      extraArgs: { apiServer: { 'service-node-port-range': '31000-31100' } },
    });
    oidcTenant = await bootTenant(state, 'oidc', undefined, undefined, oidcObjects, {
      'oidc-issuer-ca': { 'ca.crt': issuer.ca },
    });
    const haObjects = synthTenant('ha', { kubernetesVersion: newest, replicas: 2 });
    haTenant = await bootTenant(state, 'ha', undefined, undefined, haObjects);
    objectsOf.set(oidcTenant, oidcObjects).set(haTenant, haObjects);
    await Promise.all([oidcTenant.start(), haTenant.start()]);
  }, 240_000);
  afterAll(async () => {
    await Promise.all([oidcTenant?.stop(), haTenant?.stop()]);
    issuer?.close();
  });

  test('each tenant runs the Kubernetes release of its kubernetesVersion and serves requests', () => {
    for (const [t, minor] of [
      [oidcTenant, minors[0]],
      [haTenant, newest],
    ] as const) {
      const version = JSON.parse(k(t, ['version', '-o', 'json']).stdout).serverVersion;
      expect(version.gitVersion).toBe(KUBERNETES_RELEASES[minor].version);
      k(t, ['create', 'namespace', 'team']);
      expect(k(t, ['get', 'ns', 'team', '-o', 'jsonpath={.status.phase}']).stdout).toBe('Active');
    }
    expect(minors.length).toBeGreaterThanOrEqual(2);
  });

  test('an OIDC token of the configured issuer authenticates with the prefixed user and groups; others do not', async () => {
    const tokenKubeconfig = (token: string) => {
      const file = path.join(state.dir, `oidc-${randomBytes(4).toString('hex')}.kubeconfig`);
      const admin = fs.readFileSync(oidcTenant.kubeconfig, 'utf8');
      const server = /server: (\S+)/.exec(admin)![1];
      const ca = /certificate-authority-data: (\S+)/.exec(admin)![1];
      fs.writeFileSync(
        file,
        `apiVersion: v1\nkind: Config\nclusters: [{name: t, cluster: {server: "${server}", certificate-authority-data: ${ca}}}]\n` +
          `users: [{name: t, user: {token: "${token}"}}]\ncontexts: [{name: t, context: {cluster: t, user: t}}]\ncurrent-context: t\n`,
        { mode: 0o600 },
      );
      return file;
    };
    const good = tokenKubeconfig(issuer.token({ sub: 'alice', groups: ['devs'], tenant: 'oidc' }));
    // The API server fetches the issuer's discovery and keys in the background after it starts.
    const whoami = await eventually(
      () => JSON.parse(kubectl({ kubeconfig: good }, ['auth', 'whoami', '-o', 'json']).stdout).status.userInfo,
    );
    expect(whoami.username).toBe('oidc:alice');
    expect(whoami.groups).toEqual(expect.arrayContaining(['oidc:devs', 'system:authenticated']));
    for (const bad of [
      issuer.token({ sub: 'mallory', tenant: 'other' }), // required claim with another value
      issuer.token({ sub: 'mallory', tenant: 'oidc', aud: 'another-client' }),
      issuer.token({ sub: 'mallory', tenant: 'oidc', iss: 'https://127.0.0.1:1/elsewhere' }),
    ]) {
      expect(() => kubectl({ kubeconfig: tokenKubeconfig(bad) }, ['auth', 'whoami'])).toThrow(/Unauthorized/);
    }
  }, 90_000);

  test('extraArgs reach kube-apiserver: the NodePort range is the one given', () => {
    const svc = (port: number) =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `np-${port}`, namespace: 'default' },
        spec: { type: 'NodePort', ports: [{ port: 80, nodePort: port }] },
      });
    expect(() => kubectl({ kubeconfig: oidcTenant.kubeconfig }, ['create', '-f', '-'], svc(30080))).toThrow(
      /31000-31100/,
    );
    kubectl({ kubeconfig: oidcTenant.kubeconfig }, ['create', '-f', '-'], svc(31050));
  });

  test('200 writes at once all land: the API server takes what the kine pool can finish and answers the rest 429', async () => {
    // kine v0.17 holds two pooled connections per write: as many writes at once as its pool has each hold one and
    // wait for another (before the limit: 188 of 200 answered 504 after 34 s, and the next burst again).
    for (const [t, replicas] of [
      [oidcTenant, 1],
      [haTenant, 2],
    ] as const) {
      const apiArgs = containerArgs(objectsOf.get(t)!, 'kube-apiserver', 'kube-apiserver');
      expect(apiArgs).toContain(`--max-mutating-requests-inflight=${kineWriteLimit(kinePoolSize(replicas))}`);
      k(t, ['create', 'clusterrolebinding', 'burst', '--clusterrole=cluster-admin', '--user=burst']);
      const burst = await writeBurst(adminAccess(t), 200, 'burst', 'burst');
      expect(burst.codes.filter((c) => c !== 201)).toEqual([]);
      expect(burst.refused).toBeGreaterThan(0);
      expect(burst.seconds).toBeLessThan(30);
      expect(
        k(t, ['get', 'configmaps', '-n', 'default', '-o', 'name'])
          .stdout.split('\n')
          .filter((l) => l.includes('burst-')).length,
      ).toBe(200);
    }
  }, 120_000);

  test('two kube-controller-managers elect one leader, and the other takes over when it dies', async () => {
    const logOf = (suffix: string) => path.join(state.logDir, `ha-kcm${suffix}-kube-controller-manager.log`);
    const acquired = (suffix: string) => /successfully acquired lease/.test(fs.readFileSync(logOf(suffix), 'utf8'));
    const holder = () =>
      k(haTenant, [
        'get',
        'lease',
        '-n',
        'kube-system',
        'kube-controller-manager',
        '-o',
        'jsonpath={.spec.holderIdentity}',
      ]).stdout;
    const first = await eventually(() => {
      expect(holder()).not.toBe('');
      const leaders = ['', '-1'].filter(acquired);
      expect(leaders).toHaveLength(1);
      return { leader: leaders[0], identity: holder() };
    });
    // The standby keeps trying and never acts: still exactly one leader a few seconds later.
    await new Promise((r) => setTimeout(r, 5000));
    expect(['', '-1'].filter(acquired)).toEqual([first.leader]);
    expect(holder()).toBe(first.identity);

    await haTenant.procs[`kube-controller-manager${first.leader}`].stop();
    const standby = first.leader === '' ? '-1' : '';
    // Lease duration 15 s, retry period 2 s (kube-controller-manager's defaults).
    await eventually(() => {
      expect(acquired(standby)).toBe(true);
      expect(holder()).not.toBe(first.identity);
    }, 60_000);
    // The new leader runs the controllers: a ServiceAccount gets created in a new namespace.
    k(haTenant, ['create', 'namespace', 'after-failover']);
    await eventually(() => k(haTenant, ['get', 'serviceaccount', 'default', '-n', 'after-failover']));
  }, 120_000);
});
