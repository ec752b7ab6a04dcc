// Sleep on idle and wake on request, on a real kube-apiserver: what counts as activity (the tenant audit policy), and
// the activator process with its own ServiceAccount token (its RBAC and admission policy as synthesized): the
// EndpointSlice it adds to a sleeping plane's Service, the wake on a first connection, the splice to a real TLS
// server (the hosting API server stands in for the plane's API pod: no kubelet here; the real node test runs both),
// a clean close when a plane does not wake, and a restart that keeps its ports.
import { ChildProcess, execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as https from 'https';
import * as net from 'net';
import * as path from 'path';
import * as tls from 'tls';
import { parse, stringify } from 'yaml';
import { K8sControlPlane, KubeflexHosting, synthesizeAtomically } from '../../lib';
import { WAKE_READYZ_PATH } from '../../lib/activator/activator';
import { ACTIVATOR_PORTS } from '../../lib/idle';
import { AUDIT_POLICY } from '../../lib/k8s-control-plane';
import {
  apiserverRequests,
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
// EndpointSlices refuse loopback addresses: the activator and the stand-in API pod get addresses of an interface
// this test makes and removes (traffic stays on this machine).
const IFACE = `kfsl${process.pid % 10000}`;
const NET = `10.254.${process.pid % 250}`;
const ACTIVATOR_IP = `${NET}.1`;
const PLANE_IP = `${NET}.2`;
const suite = state.skipped ? describe.skip : describe;
if (state.skipped) console.warn(`### SKIPPED sleep tests: ${state.skipped}`);

suite('sleep on idle and wake on request', () => {
  let hosting: TestCluster;
  let dir: string;
  let activator: ChildProcess | undefined;
  const k = (args: string[], input?: string) => kubectl(hosting, args, input).stdout;
  const tryK = (args: string[], kubeconfig = hosting.kubeconfig, input?: string) => {
    const r = spawnSync('kubectl', [`--kubeconfig=${kubeconfig}`, ...args], {
      encoding: 'utf8',
      input,
      maxBuffer: 64 << 20,
    });
    return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
  };
  const withToken = (token: string, name: string) => {
    const kc = parse(fs.readFileSync(hosting.kubeconfig, 'utf8'));
    kc.users[0].user = { token };
    const file = path.join(dir, `${name}.kubeconfig`);
    fs.writeFileSync(file, stringify(kc), { mode: 0o600 });
    return file;
  };
  const tokenOf = (sa: string, ns = 'kubeflex-system') => k(['create', 'token', sa, '-n', ns, '--duration=1h']).trim();
  const startActivator = () => {
    const out = fs.openSync(path.join(state.logDir, 'sleep-activator.log'), 'a');
    activator = spawn(
      process.execPath,
      [
        path.resolve(__dirname, '../../build/lib/activator/main.js'),
        `--kubeconfig=${withToken(tokenOf('kubeflex-activator'), 'activator')}`,
        `--pod-ip=${ACTIVATOR_IP}`,
        `--listen-address=${ACTIVATOR_IP}`,
        '--health-port=0',
        '--wake-timeout=4s',
      ],
      { stdio: ['ignore', out, out] },
    );
    fs.closeSync(out);
  };
  const slice = (ns: string, name: string) => {
    const r = tryK(['get', 'endpointslice', '-n', ns, name, '-o', 'json']);
    return r.ok ? JSON.parse(r.out) : undefined;
  };
  /** How many namespaced LISTs of EndpointSlices the API server has served (its `apiserver_request_total`). */
  const sliceLists = () => apiserverRequests(hosting, { verb: 'LIST', resource: 'endpointslices', scope: 'namespace' });
  const annotations = (cp: string) => JSON.parse(k(['get', 'cp', cp, '-o', 'json'])).metadata.annotations ?? {};
  /** GET /version through the activator's port, verifying the server's certificate (the API server's own). */
  const versionThrough = (port: number) =>
    new Promise<string>((resolve, reject) => {
      const req = https.request(
        {
          host: ACTIVATOR_IP,
          port,
          path: '/version',
          ca: fs.readFileSync(path.join(hosting.pki, 'ca.crt')),
          // The stand-in presents the test API server's certificate (names localhost).
          checkServerIdentity: (_host, cert) => tls.checkServerIdentity('localhost', cert),
          timeout: 30_000,
          // A new connection each time: a kept-alive one, already passed through, would bypass the listener.
          agent: false,
        },
        (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve(body));
        },
      );
      req.on('error', reject);
      req.end();
    });

  let plane: https.Server | undefined;
  beforeAll(async () => {
    // This kernel has no dummy driver: one end of a veth pair of our own (deleting it deletes both).
    execFileSync('ip', ['link', 'add', IFACE, 'type', 'veth', 'peer', 'name', `${IFACE}p`]);
    for (const ip of [ACTIVATOR_IP, PLANE_IP]) execFileSync('ip', ['addr', 'add', `${ip}/32`, 'dev', IFACE]);
    execFileSync('ip', ['link', 'set', IFACE, 'up']);
    execFileSync('ip', ['link', 'set', `${IFACE}p`, 'up']);
    dir = fs.mkdtempSync(path.join(state.dir, 'sleep-'));
    fs.writeFileSync(path.join(dir, 'audit-policy.yaml'), AUDIT_POLICY);
    // The tenant API server's audit settings (lib/k8s-control-plane.ts), so the activity signal is the real one.
    hosting = await startCluster(state, 'sleephost', HOSTING_KCM_CONTROLLERS, [
      `--audit-policy-file=${path.join(dir, 'audit-policy.yaml')}`,
      `--audit-log-path=${path.join(dir, 'audit.log')}`,
      '--audit-log-format=json',
    ]);
    const files = synthesizeAtomically(
      (app) => {
        const h = new KubeflexHosting(app, 'hosting', { activator: true });
        new K8sControlPlane(app, 'sl1', { hosting: h, sleeping: true, idleTimeout: '2m' });
        new K8sControlPlane(app, 'sl2', { hosting: h, sleeping: true });
      },
      path.join(dir, 'dist'),
    );
    applySynthesized(hosting, files);
  }, 180_000);

  afterAll(async () => {
    if (activator) await killAll([activator.pid!]);
    plane?.close();
    await hosting?.stop();
    spawnSync('ip', ['link', 'del', IFACE]);
  });

  test("the audit counter moves with clients' requests only: not health, discovery, metrics, the admin-binding probe, KCM or kube-system ServiceAccounts", async () => {
    const count = () => {
      const text = tryK(['get', '--raw', '/metrics']).out;
      const line = text.split('\n').find((l) => l.startsWith('apiserver_audit_event_total'));
      expect(line).toBeDefined();
      return Number(line!.split(' ')[1]);
    };
    const before = count();
    k(['get', '--raw', '/readyz']);
    k(['get', '--raw', '/api/v1']);
    tryK(['get', 'clusterrolebinding', 'kubeflex:admins']);
    writeKcm();
    // Audited or not whatever the authorizer says: the answer does not matter here.
    tryK(['get', 'configmaps', '-n', 'kube-system'], path.join(dir, 'kcm.kubeconfig'));
    k(['create', 'serviceaccount', 'gc-like', '-n', 'kube-system']);
    const sa = withToken(tokenOf('gc-like', 'kube-system'), 'kube-system-sa');
    tryK(['get', 'namespaces'], sa);
    const quiet = count();
    // `kubectl create serviceaccount/token` above were the admin's own requests: 2 events.
    expect(quiet - before).toBe(2);
    k(['get', 'namespaces']);
    expect(count()).toBeGreaterThan(quiet);
  });

  function writeKcm(): void {
    const kc = parse(fs.readFileSync(hosting.kubeconfig, 'utf8'));
    const b64 = (f: string) => fs.readFileSync(path.join(hosting.pki, f)).toString('base64');
    kc.users[0].user = { 'client-certificate-data': b64('kcm.crt'), 'client-key-data': b64('kcm.key') };
    fs.writeFileSync(path.join(dir, 'kcm.kubeconfig'), stringify(kc), { mode: 0o600 });
  }

  test('a sleeping plane: the activator serves its Service; the first connection wakes it, is held, then reaches the TLS server unchanged', async () => {
    // Started only now: its own requests would be a client's in the audit count above.
    startActivator();
    const s = await waitFor('activator slice of sl1', () => slice('sl1-system', 'sl1-kflex-activator'), 30_000);
    expect(s.metadata.labels).toEqual({
      'kubernetes.io/service-name': 'sl1',
      'endpointslice.kubernetes.io/managed-by': 'activator.kflex.kubestellar.org',
      'tenancy.kflex.kubestellar.org/control-plane': 'sl1',
    });
    expect(s.metadata.ownerReferences[0]).toMatchObject({ kind: 'ControlPlane', name: 'sl1', controller: true });
    expect(s.endpoints).toEqual([
      { addresses: [ACTIVATOR_IP], conditions: { ready: true, serving: true, terminating: false } },
    ]);
    const port = s.ports[0].port;
    expect(s.ports[0]).toMatchObject({ name: 'https', protocol: 'TCP' });
    expect(port).toBeGreaterThanOrEqual(ACTIVATOR_PORTS.first);
    expect(port).toBeLessThanOrEqual(ACTIVATOR_PORTS.last);

    // A client connects: the plane is woken (the activator may remove the annotation, and only that) and held.
    const answer = versionThrough(port);
    await waitFor('sl1 woken', () => annotations('sl1')['kflex.kubestellar.org/sleeping'] === undefined, 20_000);
    expect(annotations('sl1')['kflex.kubestellar.org/idle-timeout']).toBe('2m');
    // The plane's new Pod starts: a TLS server with a certificate of the test CA stands in for its API server. Its
    // endpoint is not ready yet (the kubelet's next probe and the EndpointSlice update are still to come), but its
    // /readyz answers 200: the activator asks that itself and splices without waiting for them.
    const readyzAsked: string[] = [];
    // The one readiness path the stand-in answers 200 (others 500), so the test sees which one the activator waited for.
    let readyPath = '/readyz';
    plane = https.createServer(
      {
        cert: fs.readFileSync(path.join(hosting.pki, 'apiserver.crt')),
        key: fs.readFileSync(path.join(hosting.pki, 'apiserver.key')),
      },
      (req, res) => {
        if (req.url?.startsWith('/readyz')) {
          readyzAsked.push(req.url);
          res.statusCode = req.url === readyPath ? 200 : 500;
          res.end();
        } else res.end(JSON.stringify({ gitVersion: 'stand-in', path: req.url }));
      },
    );
    await new Promise<void>((resolve) => plane!.listen(0, PLANE_IP, resolve));
    const apiPort = (plane.address() as net.AddressInfo).port;
    const ownSlice = (ready: boolean, port = apiPort) =>
      k(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'discovery.k8s.io/v1',
          kind: 'EndpointSlice',
          metadata: {
            name: 'sl1-own',
            namespace: 'sl1-system',
            labels: {
              'kubernetes.io/service-name': 'sl1',
              'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
            },
          },
          addressType: 'IPv4',
          endpoints: [{ addresses: [PLANE_IP], conditions: { ready, terminating: false } }],
          ports: [{ name: 'https', port, protocol: 'TCP' }],
        }),
      );
    ownSlice(false);
    // TLS end to end: the certificate verified is the server's own, and the answer is its /version.
    expect(JSON.parse(await answer)).toEqual({ gitVersion: 'stand-in', path: '/version' });
    expect([...new Set(readyzAsked)]).toEqual(['/readyz']);
    // Spliced, but its own endpoint is not ready and its status not Ready (no controller runs here): the activator
    // keeps its slice and looks at the plane's slices every 5 s, not every second (the old pace made that list the
    // hosting API server's second busiest request in a storm of wakes). Only the activator lists slices here.
    const lists0 = sliceLists();
    await new Promise((r) => setTimeout(r, 6_000));
    expect(sliceLists() - lists0).toBeLessThanOrEqual(2);
    expect(slice('sl1-system', 'sl1-kflex-activator')).toBeTruthy();
    // Ready (the watch brings the status change): every second again, so the Service is switched back at once.
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const readyCondition = {
      type: 'Ready',
      status: 'True',
      reason: 'Available',
      message: '',
      lastTransitionTime: now,
      lastUpdateTime: now,
    };
    k([
      'patch',
      'cp',
      'sl1',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { conditions: [readyCondition] } }),
    ]);
    // Awake with a ready endpoint: the activator's slice goes, the Service leads to the plane's pods again.
    const readyAt = Date.now();
    await new Promise((r) => setTimeout(r, 500));
    ownSlice(true);
    await waitFor('activator slice of sl1 removed', () => !slice('sl1-system', 'sl1-kflex-activator'), 20_000);
    expect(Date.now() - readyAt).toBeLessThan(4_000);

    // sl1 was created asleep, so that wake was its first boot: the activator waited for the full /readyz, whose
    // bootstrap hooks write the roles clients are authorized by. Once its API answered ready the controller marks it
    // booted; asleep again (its Pods gone), the next wake is spliced as soon as every other check passes.
    k(['annotate', 'cp', 'sl1', 'kflex.kubestellar.org/booted=true', 'kflex.kubestellar.org/sleeping=true']);
    k(['delete', 'endpointslice', '-n', 'sl1-system', 'sl1-own']);
    const again = await waitFor(
      'activator slice of sl1 again',
      () => slice('sl1-system', 'sl1-kflex-activator'),
      30_000,
    );
    readyzAsked.length = 0;
    readyPath = WAKE_READYZ_PATH;
    const second = versionThrough(again.ports[0].port);
    await waitFor('sl1 woken again', () => annotations('sl1')['kflex.kubestellar.org/sleeping'] === undefined, 20_000);
    // The Service's slice still lists the Pod that just went as ready (the EndpointSlice controller lags a sleep by a
    // moment): nothing listens there now. The held client must not be closed for it; the activator looks again.
    const gone = net.createServer();
    await new Promise<void>((resolve) => gone.listen(0, PLANE_IP, resolve));
    const gonePort = (gone.address() as net.AddressInfo).port;
    await new Promise((resolve) => gone.close(resolve));
    ownSlice(true, gonePort);
    await new Promise((r) => setTimeout(r, 1000));
    // Then the slice names the new Pod, starting.
    ownSlice(false);
    expect(JSON.parse(await second)).toEqual({ gitVersion: 'stand-in', path: '/version' });
    expect([...new Set(readyzAsked)]).toEqual([
      '/readyz?exclude=poststarthook/rbac/bootstrap-roles&exclude=poststarthook/scheduling/bootstrap-system-priority-classes',
    ]);
    ownSlice(true);
    await waitFor('activator slice of sl1 removed again', () => !slice('sl1-system', 'sl1-kflex-activator'), 20_000);
  }, 120_000);

  test('a plane that does not wake in time: its held client gets a clean close (FIN, no bytes), never another certificate', async () => {
    const s = await waitFor('activator slice of sl2', () => slice('sl2-system', 'sl2-kflex-activator'), 30_000);
    const started = Date.now();
    const result = await new Promise<{ bytes: number; ended: boolean; error?: string }>((resolve) => {
      const socket = net.connect(s.ports[0].port, ACTIVATOR_IP);
      let bytes = 0;
      socket.on('data', (b) => (bytes += b.length));
      socket.on('end', () => resolve({ bytes, ended: true }));
      socket.on('error', (e) => resolve({ bytes, ended: false, error: e.message }));
    });
    expect(result).toEqual({ bytes: 0, ended: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_500);
    // A client that gives up early is let go, and the activator keeps serving.
    await new Promise<void>((resolve) => {
      const socket = net.connect(s.ports[0].port, ACTIVATOR_IP, () => {
        socket.destroy();
        resolve();
      });
    });
    // The wake removed the annotation; asleep again (as the controller would put it), the activator serves it again.
    k(['annotate', 'cp', 'sl2', 'kflex.kubestellar.org/sleeping=true']);
    await waitFor('sl2 served again', () => slice('sl2-system', 'sl2-kflex-activator'), 20_000);
  }, 60_000);

  test('a plane put back to sleep while a client is held is woken again: the held client wins', async () => {
    const s = await waitFor('activator slice of sl2', () => slice('sl2-system', 'sl2-kflex-activator'), 30_000);
    const socket = net.connect(s.ports[0].port, ACTIVATOR_IP);
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => undefined);
    const asleep = () => annotations('sl2')['kflex.kubestellar.org/sleeping'] === 'true';
    await waitFor('sl2 woken for the held client', () => !asleep(), 3_000);
    // Put to sleep a moment after the wake (a sleep by hand, or a race with one): the client is still held.
    k(['annotate', 'cp', 'sl2', '--overwrite', 'kflex.kubestellar.org/sleeping=true']);
    await waitFor('sl2 woken again', () => !asleep(), 3_000);
    socket.destroy();
    await closed;
    // Once no client is held, a sleep set now stands: nothing keeps waking the plane.
    k(['annotate', 'cp', 'sl2', 'kflex.kubestellar.org/sleeping=true']);
    await new Promise((r) => setTimeout(r, 1500));
    expect(asleep()).toBe(true);
    await waitFor('sl2 served again', () => slice('sl2-system', 'sl2-kflex-activator'), 20_000);
  }, 60_000);

  test('a restarted activator keeps its ports and slices: no sleeping plane is left without a way to wake', async () => {
    const before = slice('sl2-system', 'sl2-kflex-activator');
    await killAll([activator!.pid!]);
    startActivator();
    // Its listener is back on the port the slice (and so kube-proxy) names.
    await waitFor(
      'activator listening again',
      () =>
        new Promise<boolean>((resolve) => {
          const socket = net.connect(before.ports[0].port, ACTIVATOR_IP, () => {
            socket.destroy();
            resolve(true);
          });
          socket.on('error', () => resolve(false));
        }),
      30_000,
    );
    expect(slice('sl2-system', 'sl2-kflex-activator').ports[0].port).toBe(before.ports[0].port);
  }, 60_000);

  test("the activator's identity may only wake planes and keep its own slices in ControlPlane namespaces", () => {
    const as = path.join(dir, 'activator.kubeconfig');
    const spec = tryK(['patch', 'cp', 'sl2', '--type=merge', '-p', '{"spec":{"globalVars":{"a":"b"}}}'], as);
    expect(spec.ok).toBe(false);
    expect(spec.out).toContain('on a ControlPlane it only removes the annotation kflex.kubestellar.org/sleeping');
    const other = tryK(['annotate', 'cp', 'sl2', 'x=y'], as);
    expect(other.ok).toBe(false);
    const foreign = (ns: string, managedBy: string) =>
      tryK(
        ['create', '-f', '-'],
        as,
        JSON.stringify({
          apiVersion: 'discovery.k8s.io/v1',
          kind: 'EndpointSlice',
          metadata: {
            name: 'hijack',
            namespace: ns,
            labels: { 'kubernetes.io/service-name': 'kubernetes', 'endpointslice.kubernetes.io/managed-by': managedBy },
          },
          addressType: 'IPv4',
          endpoints: [{ addresses: [PLANE_IP] }],
          ports: [{ name: 'https', port: 20000, protocol: 'TCP' }],
        }),
      );
    expect(foreign('default', 'activator.kflex.kubestellar.org').out).toContain('lives in a ControlPlane namespace');
    expect(foreign('sl2-system', 'endpointslice-controller.k8s.io').out).toContain('carries its managed-by label');
    const secret = tryK(['create', 'secret', 'generic', 'x', '-n', 'sl2-system'], as);
    expect(secret.ok).toBe(false);
  });
});
