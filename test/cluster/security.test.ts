// Attacks of the security review (../shared/reference/reviews/security.md) replayed against the landed code on a real
// hosting cluster, with the real controller binary and a second real API server as an adopted cluster. Each test is
// named after its finding, asserts the exact error or status the attacker sees, and that nothing changed.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { stringify } from 'yaml';
import { HostControlPlane, KubeflexHosting, synthesizeAtomically, VClusterControlPlane } from '../../lib';
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
if (state.skipped) console.warn(`### SKIPPED security attack tests: ${state.skipped}`);
const MAIN = path.resolve(__dirname, '../../build/lib/controller/main.js');
jest.setTimeout(120_000);

suite('a hostile tenant cannot escape (security review findings, replayed)', () => {
  let hosting: TestCluster;
  let adopted: TestCluster;
  let proc: ChildProcess | undefined;
  let dir: string;
  const k = (args: string[], input?: string) => kubectl(hosting, args, input).stdout;
  const tryK = (args: string[], input?: string): { ok: boolean; out: string } => {
    try {
      return { ok: true, out: k(args, input) };
    } catch (e) {
      return { ok: false, out: String(e) };
    }
  };
  const cp = (name: string, spec: object) =>
    stringify({ apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1', kind: 'ControlPlane', metadata: { name }, spec });
  const condition = (name: string, type: string) => {
    const c = (JSON.parse(k(['get', 'cp', name, '-o', 'json'])).status?.conditions ?? []).find(
      (x: any) => x.type === type,
    );
    return c ? `${c.status}/${c.reason}${c.message ? `: ${c.message}` : ''}` : 'none';
  };
  const secretData = (ns: string, name: string) => tryK(['get', 'secret', '-n', ns, name, '-o', 'jsonpath={.data}']);

  beforeAll(async () => {
    [hosting, adopted] = await Promise.all([
      startCluster(state, 'sechost', HOSTING_KCM_CONTROLLERS),
      startCluster(state, 'secadopted'),
    ]);
    dir = fs.mkdtempSync(path.join(state.dir, 'security-'));
    const files = synthesizeAtomically(
      (app) => {
        const h = new KubeflexHosting(app, 'hosting');
        new HostControlPlane(app, 'victim', { hosting: h });
        new VClusterControlPlane(app, 'vcexec', { hosting: h });
        new VClusterControlPlane(app, 'vcfile', { hosting: h });
      },
      path.join(dir, 'dist'),
    );
    applySynthesized(hosting, files);
    const log = fs.openSync(path.join(state.logDir, 'security-controller.log'), 'a');
    proc = spawn(process.execPath, [MAIN, `--kubeconfig=${hosting.kubeconfig}`, '--health-port=0', '--resync=5s'], {
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    await waitFor('victim Ready', () => condition('victim', 'Ready') === 'True/Available', 60_000);
  }, 180_000);

  afterAll(async () => {
    if (proc) await killAll([proc.pid!]);
    await Promise.all([hosting?.stop(), adopted?.stop()]);
  });

  test('C1 confused deputy: a ControlPlane cannot point its bootstrap Secret at another tenant or change its type', () => {
    const victimBefore = secretData('victim-system', 'admin-kubeconfig');
    expect(victimBefore.ok).toBe(true);
    // The attack of the review: an external plane whose "bootstrap" is the victim's cluster-admin kubeconfig.
    const evil = tryK(
      ['apply', '--server-side', '-f', '-'],
      cp('evil', {
        type: 'external',
        bootstrapSecretRef: {
          namespace: 'victim-system',
          name: 'admin-kubeconfig',
          inClusterKey: 'kubeconfig-incluster',
        },
      }),
    );
    expect(evil.ok).toBe(false);
    expect(evil.out).toMatch(
      /The ControlPlane "evil" is invalid: <nil>: Invalid value: "object": spec.bootstrapSecretRef must name the Secret <name>-bootstrap in namespace kubeflex-system/,
    );
    // Switching an existing plane's type to external is refused too.
    k(['apply', '--server-side', '-f', '-'], cp('evil2', { type: 'host' }));
    const flip = tryK(['patch', 'cp', 'evil2', '--type=merge', '-p', JSON.stringify({ spec: { type: 'external' } })]);
    expect(flip.ok).toBe(false);
    expect(flip.out).toMatch(/spec: Invalid value: "object": spec.type is immutable/);
    // Token lifetimes are bounded.
    const long = tryK(
      ['apply', '--server-side', '-f', '-'],
      cp('longtoken', {
        type: 'external',
        bootstrapSecretRef: {
          namespace: 'kubeflex-system',
          name: 'longtoken-bootstrap',
          inClusterKey: 'kubeconfig-incluster',
        },
        tokenExpirationSeconds: 10 * 31536000,
      }),
    );
    expect(long.ok).toBe(false);
    expect(long.out).toMatch(
      /spec.tokenExpirationSeconds: Invalid value: 315360000: spec.tokenExpirationSeconds in body should be less than or equal to 31536000/,
    );
    // Nothing changed: the victim's Secret is intact, nobody holds a token on the adopted cluster.
    expect(secretData('victim-system', 'admin-kubeconfig')).toEqual(victimBefore);
    expect(() => kubectl(adopted, ['get', 'sa', '-n', 'kube-system', 'kubeflex'])).toThrow(/NotFound/);
  });

  test('C1 confused deputy: a bootstrap Secret without the plane label is neither used nor deleted', async () => {
    // A kubeconfig Secret that happens to have the right name (an admin's, or planted) but is not marked for this plane.
    k([
      'create',
      'secret',
      'generic',
      'unmarked-bootstrap',
      '-n',
      'kubeflex-system',
      `--from-file=kubeconfig-incluster=${adopted.kubeconfig}`,
    ]);
    k(['create', 'ns', 'unmarked-system']);
    k(
      ['apply', '--server-side', '-f', '-'],
      cp('unmarked', {
        type: 'external',
        bootstrapSecretRef: {
          namespace: 'kubeflex-system',
          name: 'unmarked-bootstrap',
          inClusterKey: 'kubeconfig-incluster',
        },
      }),
    );
    await waitFor('unmarked refused', () => condition('unmarked', 'Synced').startsWith('False'));
    expect(condition('unmarked', 'Synced')).toBe(
      'False/ReconcileError: Secret kubeflex-system/unmarked-bootstrap is not used: it lacks the label tenancy.kflex.kubestellar.org/control-plane=unmarked',
    );
    expect(secretData('kubeflex-system', 'unmarked-bootstrap').ok).toBe(true);
    expect(() => kubectl(adopted, ['get', 'sa', '-n', 'kube-system', 'kubeflex'])).toThrow(/NotFound/);
  });

  test('H1 controller RCE / token theft: a syncer-written kubeconfig with an exec plugin or a token file is refused, nothing runs or is read', async () => {
    const marker = path.join(dir, 'exec-ran');
    const stolen = path.join(dir, 'stolen-token');
    fs.writeFileSync(stolen, 'CONTROLLER-SERVICEACCOUNT-TOKEN');
    const kubeconfig = (user: object) =>
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: adopted.server, 'certificate-authority-data': 'Q0E=' } }],
        users: [{ name: 'u', user }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      });
    const plant = (ns: string, text: string) =>
      k(
        ['apply', '-f', '-'],
        stringify({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'vc-vcluster', namespace: ns },
          stringData: { config: text },
        }),
      );
    plant(
      'vcexec-system',
      kubeconfig({
        exec: { apiVersion: 'client.authentication.k8s.io/v1', command: '/bin/sh', args: ['-c', `touch ${marker}`] },
      }),
    );
    plant('vcfile-system', kubeconfig({ 'token-file': stolen }));
    await waitFor('vcexec refused', () => condition('vcexec', 'Synced').startsWith('False'));
    await waitFor('vcfile refused', () => condition('vcfile', 'Synced').startsWith('False'));
    expect(condition('vcexec', 'Synced')).toBe(
      'False/ReconcileError: Secret vcexec-system/vc-vcluster key config is refused: user uses an exec plugin (runs a program), which is refused: use embedded client-certificate-data/client-key-data or a token',
    );
    expect(condition('vcfile', 'Synced')).toBe(
      'False/ReconcileError: Secret vcfile-system/vc-vcluster key config is refused: user uses a token file (reads a file), which is refused: use embedded client-certificate-data/client-key-data or a token',
    );
    // Let a few resyncs pass: still nothing ran, and no config-incluster was derived from the poisoned config.
    await new Promise((r) => setTimeout(r, 6_000));
    expect(fs.existsSync(marker)).toBe(false);
    for (const ns of ['vcexec-system', 'vcfile-system'])
      expect(k(['get', 'secret', '-n', ns, 'vc-vcluster', '-o', 'jsonpath={.data.config-incluster}'])).toBe('');
  });
});
