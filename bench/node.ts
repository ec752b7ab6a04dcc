// A k8s tenant on the real test node (test/node/node-cluster.ts): time from `kubectl apply` of its synthesized
// manifests to Ready=True (the controller Pod's status, from the kubelet's probes), RUNS times with the earlier
// tenants still running, the same for bare ControlPlanes served by the materializer, then each tenant's Pod memory from the kubelet's cgroups (usage, anonymous rss, page
// cache) next to the RSS of the same processes.
// Usage: RUNS=5 SETTLE_S=30 npm run bench:node (root, scripts/prepare-binaries.sh and prepare-node.sh done).
import * as fs from 'fs';
import * as path from 'path';
import { synthTenant } from '../test/cluster/tenant';
import { median } from './common';
import { installHosting, podCgroup, startBenchNode } from './on-node';

const RUNS = Number(process.env.RUNS ?? 5);
const SETTLE_S = Number(process.env.SETTLE_S ?? 30);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = (bytes: number) => bytes / 1024 / 1024;

function podMemory(pod: any): { usage: number; rss: number; cache: number; procRss: number } {
  const cg = podCgroup(pod, 'memory');
  const read = (f: string) => fs.readFileSync(path.join(cg, f), 'utf8');
  const stat = Object.fromEntries(
    read('memory.stat')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' '))
      .map(([k, v]) => [k, Number(v)]),
  );
  const pids = new Set<number>();
  const walk = (d: string) => {
    for (const p of fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) pids.add(+p);
    for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
  };
  walk(cg);
  let procRss = 0;
  for (const pid of pids) {
    try {
      procRss += Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      // exited
    }
  }
  return {
    usage: Number(read('memory.usage_in_bytes')),
    rss: stat.total_rss ?? stat.rss,
    cache: stat.total_cache ?? stat.cache,
    procRss,
  };
}

async function main(): Promise<void> {
  const bench = await startBenchNode('kflex-bench-node-', 'node');
  const { k, node } = bench;
  try {
    console.log(`node ready in ${node.readyMs} ms`);
    installHosting(bench, ['kubeflex-controller-manager']);

    /** Milliseconds from t0 until the ControlPlane reports Ready=True (polled every 200 ms, at most 600 s). */
    const untilReady = async (name: string, t0: number) => {
      for (;;) {
        let s = '';
        try {
          s = k(['get', 'cp', name, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']).trim();
        } catch {
          // not created yet
        }
        if (s === 'True') return Date.now() - t0;
        if (Date.now() - t0 > 600_000) throw new Error(`${name} not Ready after 600 s`);
        await sleep(200);
      }
    };
    /**
     * Where the seconds went (Kubernetes timestamps, 1 s resolution; container log lines, finer): the database the
     * controller makes, the Secrets it mints, the API server Pod's scheduling, container starts and readiness, KCM, and the ControlPlane's Ready.
     */
    const trace = (name: string, t0: number) => {
      const ns = `${name}-system`;
      const at = (ts?: string) => (ts ? Math.round((Date.parse(ts) - t0) / 100) / 10 : NaN);
      const pods = JSON.parse(k(['get', 'pods', '-n', ns, '-o', 'json'])).items;
      const pod = (prefix: string) =>
        pods.find((p: any) => p.metadata.name.startsWith(prefix) && p.status.phase !== 'Failed');
      const cond = (p: any, t: string) => at(p?.status.conditions?.find((c: any) => c.type === t)?.lastTransitionTime);
      const started = (p: any, c: string) => {
        const st = [...(p?.status.containerStatuses ?? []), ...(p?.status.initContainerStatuses ?? [])].find(
          (x: any) => x.name === c,
        )?.state;
        return at(st?.running?.startedAt ?? st?.terminated?.startedAt);
      };
      const logs = (p: any, c: string) => {
        try {
          return p ? k(['logs', '-n', ns, p.metadata.name, '-c', c, '--timestamps']).split('\n') : [];
        } catch {
          return [];
        }
      };
      const logAt = (p: any, c: string, re: RegExp) =>
        at(
          logs(p, c)
            .find((l) => re.test(l))
            ?.split(' ')[0],
        );
      const logCount = (p: any, c: string, re: RegExp) => logs(p, c).filter((l) => re.test(l)).length;
      // The controller's last write of the credentials Secret is the one recording the database it made.
      const creds = JSON.parse(
        k([
          'get',
          'secret',
          '-n',
          'kubeflex-system',
          `${name}-db-credentials`,
          '-o',
          'json',
          '--ignore-not-found',
          '--show-managed-fields',
        ]) || '{}',
      );
      const lastWrite = (creds.metadata?.managedFields ?? [])
        .map((f: any) => f.time as string)
        .sort()
        .pop();
      const secrets = JSON.parse(k(['get', 'secrets', '-n', ns, '-o', 'json'])).items;
      const secret = (n: string) => at(secrets.find((x: any) => x.metadata.name === n)?.metadata.creationTimestamp);
      const api = pod('kube-apiserver');
      const kcm = pod('kube-controller-manager');
      const cp = JSON.parse(k(['get', 'cp', name, '-o', 'json']));
      const events = JSON.parse(k(['get', 'events', '-n', ns, '-o', 'json'])).items;
      const count = (reason: string) =>
        events.filter((e: any) => e.reason === reason).reduce((a: number, e: any) => a + (e.count ?? 1), 0);
      const steps: [string, number][] = [
        ['credentials secret', at(creds.metadata?.creationTimestamp)],
        ['database made', creds.data?.provisioned ? at(lastWrite) : NaN],
        ['kine-postgres secret', secret('kine-postgres')],
        ['k8s-certs secret', secret('k8s-certs')],
        ['api pod created', at(api?.metadata.creationTimestamp)],
        ['api pod scheduled', cond(api, 'PodScheduled')],
        ['kine started', started(api, 'kine')],
        ['kine listening', logAt(api, 'kine', /Kine available at/)],
        ['kine ping failures', logCount(api, 'kine', /Failed to ping database/)],
        ['apiserver started', started(api, 'kube-apiserver')],
        ['apiserver serving', logAt(api, 'kube-apiserver', /Serving securely on/)],
        ['apiserver dial errors', logCount(api, 'kube-apiserver', /Error while dialing|connection refused/)],
        ['api pod ready', cond(api, 'Ready')],
        ['kcm started', started(kcm, 'kube-controller-manager')],
        ['cp Ready', at(cp.status?.conditions?.find((c: any) => c.type === 'Ready')?.lastTransitionTime)],
      ];
      console.log(
        `${name} trace, s after apply: ${steps.map(([n, v]) => `${n} ${v}`).join(', ')}; ` +
          `FailedMount events ${count('FailedMount')}, BackOff ${count('BackOff')}, api restarts ${(api?.status.containerStatuses ?? []).map((c: any) => c.restartCount).join('/')}`,
      );
    };
    const readyMs: number[] = [];
    const names: string[] = [];
    for (let i = 1; i <= RUNS; i++) {
      const name = `bench${i}`;
      names.push(name);
      const list = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: synthTenant(name) });
      const t0 = Date.now();
      k(['apply', '--server-side', '--field-manager=cdk8s-kubeflex', '-f', '-'], list);
      readyMs.push(await untilReady(name, t0));
      console.log(`${name}: Ready=True ${readyMs[i - 1]} ms after kubectl apply`);
      trace(name, t0);
    }
    // The same through the materializer: a bare ControlPlane, as KubeFlex's clients create it.
    k(['-n', 'kubeflex-system', 'rollout', 'status', 'deployment/kubeflex-materializer', '--timeout=300s']);
    const bareMs: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
      const name = `bare${i}`;
      const t0 = Date.now();
      k(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
          kind: 'ControlPlane',
          metadata: { name },
          spec: { type: 'k8s' },
        }),
      );
      bareMs.push(await untilReady(name, t0));
      console.log(`${name} (bare, materialized): Ready=True ${bareMs[i - 1]} ms after kubectl apply`);
      trace(name, t0);
    }
    await sleep(SETTLE_S * 1000);
    const system = JSON.parse(k(['get', 'pods', '-n', 'kubeflex-system', '-o', 'json'])).items.filter(
      (p: any) => p.status.phase === 'Running',
    );
    for (const app of ['kubeflex-materializer', 'kubeflex-controller-manager']) {
      const pod = system.find((p: any) => p.metadata.labels?.app === app);
      if (!pod) continue;
      const m = podMemory(pod);
      console.log(
        `${app}: cgroup memory ${MiB(m.usage).toFixed(0)} MiB (anonymous ${MiB(m.rss).toFixed(0)}), RSS ${MiB(m.procRss).toFixed(0)} MiB, with ${2 * RUNS} k8s planes`,
      );
    }
    const perTenant = names.map((n) => {
      const pods = JSON.parse(k(['get', 'pods', '-n', `${n}-system`, '-o', 'json'])).items.filter(
        (p: any) => p.status.phase === 'Running',
      );
      const sum = { usage: 0, rss: 0, cache: 0, procRss: 0 };
      for (const p of pods) {
        const m = podMemory(p);
        for (const key of Object.keys(sum) as Array<keyof typeof sum>) sum[key] += m[key];
      }
      return sum;
    });
    const col = (key: 'usage' | 'rss' | 'cache' | 'procRss') => median(perTenant.map((t) => MiB(t[key]))).toFixed(0);
    console.log('\n| measure | median | runs |');
    console.log('|---|---:|---|');
    console.log(
      `| kubectl apply -> Ready=True | ${(median(readyMs) / 1000).toFixed(1)} s | ${readyMs
        .map((x) => (x / 1000).toFixed(1))
        .join(', ')} |`,
    );
    console.log(
      `| tenant Pods' cgroup memory.usage | ${col('usage')} MiB | ${perTenant.map((t) => MiB(t.usage).toFixed(0)).join(', ')} |`,
    );
    console.log(
      `| of which anonymous (total_rss) | ${col('rss')} MiB | ${perTenant.map((t) => MiB(t.rss).toFixed(0)).join(', ')} |`,
    );
    console.log(
      `| of which page cache | ${col('cache')} MiB | ${perTenant.map((t) => MiB(t.cache).toFixed(0)).join(', ')} |`,
    );
    console.log(
      `| RSS of the same processes | ${col('procRss')} MiB | ${perTenant.map((t) => MiB(t.procRss).toFixed(0)).join(', ')} |`,
    );
  } finally {
    await bench.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
