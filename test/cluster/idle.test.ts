// An idle controller stays idle: with the default token lifetime (one year) and the default resync, idle host,
// external and k8s planes cost a handful of reconciles in 30 s, and no timer overflows (Node clamps a delay over
// 2^31-1 ms to 1 ms, which once made one idle external plane reconcile 30-40 times a second).
import { ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import {
  ExternalControlPlane,
  HostControlPlane,
  K8sControlPlane,
  KubeflexHosting,
  synthesizeAtomically,
} from '../../lib';
import {
  applySynthesized,
  ClusterState,
  HOSTING_KCM_CONTROLLERS,
  killAll,
  kubectl,
  loadState,
  spawnController,
  startCluster,
  TestCluster,
  waitFor,
} from './harness';

const state: ClusterState = loadState();
const suite = state.skipped ? describe.skip : describe;
if (state.skipped) console.warn(`### SKIPPED idle controller test: ${state.skipped}`);

suite('an idle controller stays idle', () => {
  let hosting: TestCluster;
  let adopted: TestCluster;
  let proc: ChildProcess | undefined;
  let log = '';

  beforeAll(async () => {
    [hosting, adopted] = await Promise.all([
      startCluster(state, 'idlehost', HOSTING_KCM_CONTROLLERS),
      startCluster(state, 'idleadopted'),
    ]);
    const dir = fs.mkdtempSync(path.join(state.dir, 'idle-'));
    const files = synthesizeAtomically(
      (app) => {
        const h = new KubeflexHosting(app, 'hosting');
        new HostControlPlane(app, 'ih', { hosting: h });
        // The default token lifetime: one year, renewed after 80 % of it.
        new ExternalControlPlane(app, 'ie', { hosting: h, bootstrapSecret: { name: 'ie-bootstrap' } });
        new K8sControlPlane(app, 'ik', { hosting: h });
      },
      path.join(dir, 'dist'),
    );
    applySynthesized(hosting, files);
    kubectl(hosting, [
      'create',
      'secret',
      'generic',
      'ie-bootstrap',
      '-n',
      'kubeflex-system',
      `--from-file=kubeconfig-incluster=${adopted.kubeconfig}`,
    ]);
    kubectl(hosting, [
      'label',
      'secret',
      '-n',
      'kubeflex-system',
      'ie-bootstrap',
      'tenancy.kflex.kubestellar.org/control-plane=ie',
    ]);
    log = path.join(state.logDir, 'idle-controller.log');
    // Defaults for everything that decides requeues (resync 5 min, not-ready 15 s); debug logs one line per reconcile.
    proc = spawnController(hosting, log, ['--log-level=debug']);
  }, 120_000);

  afterAll(async () => {
    if (proc) await killAll([proc.pid!]);
    await Promise.all([hosting?.stop(), adopted?.stop()]);
  });

  test('host, external (one-year token) and k8s planes: a handful of reconciles in 30 s, no TimeoutOverflowWarning', async () => {
    const ready = (cp: string) =>
      kubectl(hosting, ['get', 'cp', cp, '-o', "jsonpath={.status.conditions[?(@.type=='Ready')].status}"]).stdout;
    await waitFor('ih and ie Ready', () => ready('ih') === 'True' && ready('ie') === 'True', 60_000);
    const count = () => {
      const lines = fs
        .readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l))
        .filter((l) => l.msg === 'reconciled');
      return Object.fromEntries(['ih', 'ie', 'ik'].map((n) => [n, lines.filter((l) => l.controlPlane === n).length]));
    };
    await new Promise((r) => setTimeout(r, 2_000)); // let the first passes settle
    const before = count();
    await new Promise((r) => setTimeout(r, 30_000));
    const after = count();
    const delta = Object.fromEntries(Object.keys(after).map((n) => [n, after[n] - before[n]]));
    console.log(`idle reconciles in 30 s: ${JSON.stringify(delta)}`);
    // host and external: nothing to do until the resync (5 min); k8s: not ready here (no pods), looked at every 15 s.
    expect(delta.ih).toBeLessThanOrEqual(1);
    expect(delta.ie).toBeLessThanOrEqual(1);
    expect(delta.ik).toBeLessThanOrEqual(3);
    expect(fs.readFileSync(log, 'utf8')).not.toMatch(/TimeoutOverflowWarning/);
  }, 120_000);

  test('a plane that stays not Ready is looked at less and less often (1 s, 2 s, 4 s ...), not every requeue period', async () => {
    // A fresh controller with a 1 s not-Ready period: a fixed period would mean ~30 passes of ik in 30 s.
    await killAll([proc!.pid!]);
    const fast = path.join(state.logDir, 'idle-controller-backoff.log');
    proc = spawnController(hosting, fast, ['--log-level=debug', '--requeue-not-ready=1s']);
    const passes = () =>
      fs
        .readFileSync(fast, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l))
        .filter((l) => l.msg === 'reconciled' && l.controlPlane === 'ik').length;
    await waitFor('first pass of ik', () => passes() > 0, 30_000);
    const before = passes();
    await new Promise((r) => setTimeout(r, 30_000));
    const n = passes() - before;
    console.log(`passes of a not-Ready plane in 30 s with a 1 s base: ${n}`);
    // 1 + 2 + 4 + 8 + 16 = 31 s: five passes at most (one more if a watch event of its namespace arrives).
    expect(n).toBeGreaterThanOrEqual(3);
    expect(n).toBeLessThanOrEqual(6);
  }, 120_000);

  test('a plane whose Pods are ready but whose API does not answer yet is looked at every second 8 times, then on the slow schedule', async () => {
    await killAll([proc!.pid!]);
    // The deployment controller's report of a ready API server (the hosting KCM here runs none); nothing listens
    // behind the plane's Service, so its API never answers: the route lags forever.
    kubectl(hosting, [
      'patch',
      'deployment',
      'kube-apiserver',
      '-n',
      'ik-system',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { replicas: 1, readyReplicas: 1, availableReplicas: 1, updatedReplicas: 1 } }),
    ]);
    const quick = path.join(state.logDir, 'idle-controller-quick.log');
    proc = spawnController(hosting, quick, ['--log-level=debug']);
    const passes = () =>
      fs
        .readFileSync(quick, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l))
        .filter((l) => l.msg === 'reconciled' && l.controlPlane === 'ik')
        .map((l) => Date.parse(l.ts));
    await waitFor('first pass of ik', () => passes().length > 0, 30_000);
    await new Promise((r) => setTimeout(r, 32_000));
    const at = passes();
    const gaps = at.slice(1).map((t, i) => Math.round((t - at[i]) / 100) / 10);
    console.log(`gaps between passes of a plane whose API lags its ready Pods (s): ${gaps.join(', ')}`);
    const reason = kubectl(hosting, [
      'get',
      'cp',
      'ik',
      '-o',
      "jsonpath={.status.conditions[?(@.type=='Ready')].message}",
    ]).stdout;
    expect(reason).toMatch(/API server not answering discovery/);
    // Eight quick passes a second apart (a probe that times out adds its 5 s), then the slow schedule's 15 s.
    expect(gaps.length).toBeGreaterThanOrEqual(9);
    expect(gaps.slice(0, 8).every((g) => g < 7)).toBe(true);
    expect(gaps.slice(0, 8).filter((g) => g < 2).length).toBeGreaterThanOrEqual(6);
    expect(gaps[8]).toBeGreaterThanOrEqual(14.5);
  }, 120_000);
});
