// A boot storm on the real test node (test/node/node-cluster.ts): N k8s tenants' synthesized manifests applied at
// once, the clock from `kubectl apply` until every ControlPlane reports Ready=True (the controller's status, from the
// tenant API server answering through its Service). Boot admission is what the hosting install sets (dist/: 3 slots);
// SLOTS=k writes another value into kubeflex-config before the storm (the controller reads it on every decision),
// SLOTS=64 lets every Pod go at once (admission in effect off). Reports the Ready times, the machine's CPU-seconds
// (/proc/stat) over the storm per tenant, and the tenants' container restarts.
// PARK=60s also measures the idle tenants again once their kube-controller-managers are parked (below).
// Usage: N=50 SLOTS=2 npm run bench:storm (root, scripts/prepare-binaries.sh and prepare-node.sh done).
import { ChildProcess, execFile, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { synthTenant } from '../test/cluster/tenant';
import { median, meminfoMiB } from './common';
import {
  cpuBetween,
  installHosting,
  podCgroup,
  podGroup,
  printCpu,
  readCpu,
  setHostingConfig,
  startBenchNode,
} from './on-node';

const N = Number(process.env.N ?? 50);
const SLOTS = process.env.SLOTS;
const TIMEOUT_S = Number(process.env.TIMEOUT_S ?? 900);
const APPLIERS = Number(process.env.APPLIERS ?? 5);
/** Stop early when no plane became Ready for this long (a stall), and say why the others are not. */
const STALL_S = Number(process.env.STALL_S ?? 240);
/** Where the stall diagnosis is written (the bench's own directory goes with its node). */
const DIAG = process.env.DIAG ?? '/tmp/kflex-storm-diag';
/** Once all are Ready: settle this long, then measure the idle tenants' CPU over IDLE_S (0: skip). */
const SETTLE_S = Number(process.env.SETTLE_S ?? 30);
const IDLE_S = Number(process.env.IDLE_S ?? 60);
/**
 * PARK=60s: after the idle window (the install's default of 10 minutes parks nothing before it), kubeflex-config's
 * managerIdleTimeout is set to this; once every plane's kube-controller-manager is parked, the idle window again:
 * the idle tenant with and without its KCM, on the same node and tenants.
 */
const PARK = process.env.PARK;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Runs `cmd` with `input` on stdin; rejects with its stderr. */
const run = (cmd: string, args: string[], input: string) =>
  new Promise<void>((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 64 << 20 }, (err, _out, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(),
    );
    child.stdin!.end(input);
  });

/**
 * When each ControlPlane first reported Ready=True, from one `kubectl get -w` (a kubectl process a second cost the
 * machine ~0.2 CPU-seconds per tenant of a storm it measures); started again if the watch ends.
 */
function watchReady(kubectl: string, kubeconfig: string): { readyAt: Map<string, number>; stop(): void } {
  const readyAt = new Map<string, number>();
  let stopped = false;
  let child: ChildProcess;
  const start = () => {
    child = spawn(kubectl, [
      `--kubeconfig=${kubeconfig}`,
      'get',
      'cp',
      '-w',
      '-o',
      'jsonpath={.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}',
    ]);
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const line of lines) {
        const [name, status] = line.trim().split(' ');
        if (status === 'True' && name && !readyAt.has(name)) readyAt.set(name, Date.now());
      }
    });
    child.on('exit', () => {
      if (!stopped) setTimeout(start, 500);
    });
  };
  start();
  return {
    readyAt,
    stop: () => {
      stopped = true;
      child.kill();
    },
  };
}

/** Writes what the planes that never became Ready show: their conditions, their Pods, and the hosting daemons' logs. */
function diagnose(k: (args: string[]) => string, stuck: string[]): void {
  fs.rmSync(DIAG, { recursive: true, force: true });
  fs.mkdirSync(DIAG, { recursive: true });
  const tryK = (args: string[]) => {
    try {
      return k(args);
    } catch (e) {
      return String(e);
    }
  };
  for (const n of stuck) {
    const cp = JSON.parse(tryK(['get', 'cp', n, '-o', 'json']));
    const conds = (cp.status?.conditions ?? []).map(
      (c: any) => `${c.type}=${c.status} ${c.reason}: ${c.message ?? ''}`,
    );
    const pods = JSON.parse(tryK(['-n', `${n}-system`, 'get', 'pods', '-o', 'json'])).items ?? [];
    const podLines = pods.map(
      (p: any) =>
        `  ${p.metadata.name} ${p.status.phase} gates=${JSON.stringify(p.spec.schedulingGates ?? [])} ` +
        (p.status.containerStatuses ?? [])
          .map((c: any) => `${c.name}:ready=${c.ready},restarts=${c.restartCount},${Object.keys(c.state ?? {})[0]}`)
          .join(' '),
    );
    console.log(`not Ready: ${n}\n  ${conds.join('\n  ')}\n${podLines.join('\n')}`);
    fs.writeFileSync(path.join(DIAG, `${n}.json`), JSON.stringify({ cp, pods }, null, 1));
    for (const p of pods) {
      for (const c of p.spec.containers ?? []) {
        fs.writeFileSync(
          path.join(DIAG, `${n}-${p.metadata.name}-${c.name}.log`),
          tryK(['-n', `${n}-system`, 'logs', p.metadata.name, '-c', c.name, '--tail=400']),
        );
      }
    }
  }
  for (const d of ['kubeflex-controller-manager', 'kubeflex-activator', 'kubeflex-materializer']) {
    fs.writeFileSync(
      path.join(DIAG, `${d}.log`),
      tryK(['-n', 'kubeflex-system', 'logs', `deployment/${d}`, '--tail=3000']),
    );
  }
  fs.writeFileSync(path.join(DIAG, 'events.txt'), tryK(['get', 'events', '-A', '--sort-by=.lastTimestamp']));
  console.log(`stall diagnosis in ${DIAG}`);
}

async function main(): Promise<void> {
  const bench = await startBenchNode('kflex-bench-storm-', 'storm');
  const { k, node } = bench;
  try {
    console.log(`node ready in ${node.readyMs} ms; a storm of ${N} tenants, boot slots ${SLOTS ?? 'as installed'}`);
    installHosting(bench, ['kubeflex-controller-manager']);
    if (SLOTS) setHostingConfig(k, { bootSlots: SLOTS });
    await sleep(10_000);
    const names = Array.from({ length: N }, (_, i) => `storm${i + 1}`);
    const items = names.flatMap((n) => synthTenant(n));
    // Namespaces first (the API server's namespace cache can lag a Namespace made in the same request list), then
    // the rest in APPLIERS kubectl processes at once, as several pipelines would.
    const list = (xs: any[]) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items: xs });
    const apply = async (xs: any[]) => {
      for (let attempt = 1; ; attempt++) {
        try {
          await run(
            path.join(bench.state.binDir, 'kubectl'),
            [`--kubeconfig=${node.kubeconfig}`, 'apply', '--server-side', '--field-manager=cdk8s-kubeflex', '-f', '-'],
            list(xs),
          );
          return;
        } catch (e) {
          if (attempt >= 5) throw e;
          await sleep(1000);
        }
      }
    };
    const allPods = () => JSON.parse(k(['get', 'pods', '-A', '-o', 'json'])).items;
    const watch = watchReady(path.join(bench.state.binDir, 'kubectl'), node.kubeconfig);
    const reading0 = readCpu(allPods());
    const t0 = Date.now();
    await apply(items.filter((o) => o.kind === 'Namespace'));
    const rest = items.filter((o) => o.kind !== 'Namespace');
    const chunk = Math.ceil(rest.length / APPLIERS);
    await Promise.all(Array.from({ length: APPLIERS }, (_, i) => apply(rest.slice(i * chunk, (i + 1) * chunk))));
    const appliedS = (Date.now() - t0) / 1000;
    console.log(`applied ${items.length} objects in ${appliedS.toFixed(1)} s (${APPLIERS} kubectl processes)`);
    const readyAt = new Map<string, number>();
    let last = 0;
    let progressAt = Date.now();
    while (readyAt.size < N && Date.now() - t0 < TIMEOUT_S * 1000 && Date.now() - progressAt < STALL_S * 1000) {
      for (const [name, at] of watch.readyAt) if (!readyAt.has(name)) readyAt.set(name, at - t0);
      if (readyAt.size !== last && readyAt.size % 10 === 0) {
        console.log(`${readyAt.size} Ready after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      }
      if (readyAt.size !== last) progressAt = Date.now();
      last = readyAt.size;
      await sleep(1000);
    }
    watch.stop();
    if (readyAt.size < N)
      diagnose(
        k,
        names.filter((n) => !readyAt.has(n)),
      );
    const wallS = (Date.now() - t0) / 1000;
    const stormCpu = cpuBetween(reading0, readCpu(allPods()), podGroup);
    const cpuS = stormCpu.machineS;
    printCpu("Where the storm's CPU went", stormCpu, N);
    const pods = JSON.parse(k(['get', 'pods', '-A', '-l', 'kflex.kubestellar.org/boot-slot', '-o', 'json'])).items;
    const restarts: Record<string, number> = {};
    for (const p of pods) {
      for (const c of p.status.containerStatuses ?? []) restarts[c.name] = (restarts[c.name] ?? 0) + c.restartCount;
    }
    const times = [...readyAt.values()].sort((a, b) => a - b).map((x) => x / 1000);
    console.log(
      `\nReady: ${readyAt.size} of ${N}; first ${times[0]?.toFixed(1)} s, median ${median(times).toFixed(1)} s, last ${times[times.length - 1]?.toFixed(1)} s` +
        (readyAt.size < N ? ` (stopped after ${wallS.toFixed(0)} s)` : ''),
    );
    console.log(
      `Ready times (s): ${times.map((x) => x.toFixed(0)).join(', ')}; the apply took ${appliedS.toFixed(0)} s`,
    );
    console.log(
      `machine CPU over the storm: ${cpuS.toFixed(0)} CPU-s (${(cpuS / N).toFixed(1)} per tenant) in ${wallS.toFixed(0)} s`,
    );
    console.log(`container restarts: ${JSON.stringify(restarts)}`);
    const idleWindow = async (what: string) => {
      // The tenants idle: their Pods' CPU (cgroups: what the probes cost them included) and the machine's, per
      // tenant; their Pods' memory (cgroup usage) and the machine's used memory per tenant at the window's end.
      const running = JSON.parse(k(['get', 'pods', '-A', '-l', 'kflex.kubestellar.org/boot-slot', '-o', 'json'])).items;
      const idle0 = readCpu(running);
      await sleep(IDLE_S * 1000);
      const idle = cpuBetween(idle0, readCpu(running), podGroup);
      printCpu(`Where the idle CPU went over ${IDLE_S} s (${what})`, idle, N);
      const { podsS, machineS: busyS } = idle;
      const now = JSON.parse(k(['get', 'pods', '-A', '-l', 'kflex.kubestellar.org/boot-slot', '-o', 'json'])).items;
      const podMiB =
        now.reduce(
          (a: number, p: any) =>
            a + Number(fs.readFileSync(path.join(podCgroup(p, 'memory'), 'memory.usage_in_bytes'), 'utf8')),
          0,
        ) /
        2 ** 20 /
        N;
      const usedMiB = (meminfoMiB('MemTotal') - meminfoMiB('MemAvailable')) / N;
      console.log(
        `idle (${what}), per tenant over ${IDLE_S} s: its Pods ${((podsS * 1000) / IDLE_S / N).toFixed(1)} mCPU, ` +
          `the machine ${((busyS * 1000) / IDLE_S / N).toFixed(1)} mCPU (kubelet, probes, PostgreSQL, hosting included); ` +
          `its Pods ${podMiB.toFixed(1)} MiB (${now.length} Pods), the machine's used memory / N ${usedMiB.toFixed(1)} MiB`,
      );
      return usedMiB;
    };
    if (IDLE_S > 0 && readyAt.size === N) {
      await sleep(SETTLE_S * 1000);
      const usedRunning = await idleWindow('kube-controller-manager running');
      if (PARK) {
        // Until here the install's default (10 minutes) held: no KCM was parked during the storm or the first window.
        setHostingConfig(k, { managerIdleTimeout: PARK });
        const t = Date.now();
        const parked = () =>
          JSON.parse(k(['get', 'deployments', '-A', '-o', 'json'])).items.filter(
            (d: any) => d.metadata.name === 'kube-controller-manager' && d.spec.replicas === 0,
          ).length;
        while (parked() < N && Date.now() - t < 600_000) await sleep(5000);
        // The parked KCMs' Pods gone, too.
        while (
          JSON.parse(k(['get', 'pods', '-A', '-l', 'app=kube-controller-manager', '-o', 'json'])).items.length > 0 &&
          Date.now() - t < 660_000
        )
          await sleep(2000);
        console.log(
          `${parked()} of ${N} kube-controller-managers parked ${((Date.now() - t) / 1000).toFixed(0)} s after the first window`,
        );
        await sleep(10_000);
        const usedParked = await idleWindow('kube-controller-manager parked');
        console.log(
          `the machine's used memory, per tenant, parked against running: ${(usedParked - usedRunning).toFixed(1)} MiB`,
        );
      }
    }
    console.log(
      `\n| boot slots | N | last Ready (s) | median (s) | machine CPU-s per tenant | restarts |\n|---|---:|---:|---:|---:|---|\n` +
        `| ${SLOTS ?? 'installed'} | ${N} | ${readyAt.size < N ? `not all: ${readyAt.size} after ${wallS.toFixed(0)}` : times[times.length - 1].toFixed(1)} | ${median(times).toFixed(1)} | ${(cpuS / N).toFixed(1)} | ${JSON.stringify(restarts)} |`,
    );
  } finally {
    await bench.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
