// What the benchmarks on the real test node share: the node with its PostgreSQL, kubectl against it, the hosting
// install from dist/, and the kubelet's cgroup of a Pod.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { nodeUnavailable, startNode } from '../test/node/node-cluster';
import { benchPostgres, BenchState, machineBusyS } from './common';

const REPO = path.resolve(__dirname, '..');

/** A started node: `k` runs kubectl against it; `stop()` ends the node and the bench's PostgreSQL. */
export interface BenchNode {
  readonly state: BenchState;
  readonly node: Awaited<ReturnType<typeof startNode>>;
  readonly k: (args: string[], input?: string) => string;
  stop(): Promise<void>;
}

/** Starts the bench's PostgreSQL and the real node (root, scripts/prepare-binaries.sh and prepare-node.sh done). */
export async function startBenchNode(prefix: string, what: string): Promise<BenchNode> {
  const pg = await benchPostgres(prefix);
  const why = nodeUnavailable(pg.state.binDir);
  if (why) {
    pg.stop();
    throw new Error(`cannot run the ${what} bench: ${why}`);
  }
  const node = await startNode({
    binDir: pg.state.binDir,
    logRoot: pg.state.logDir,
    pgPort: pg.state.pgPort,
    pgPassword: pg.state.pgPassword,
    pgSocketDir: pg.state.pgSocketDir,
    // Two Pods per awake tenant: the test's 60 would stop a storm of 50 at 29 tenants ("Too many pods").
    maxPods: 250,
    // BENCH_AUDIT=<file>: the hosting API server's audit log (who asked what; printAudit reads it).
    auditLog: process.env.BENCH_AUDIT || undefined,
  });
  const k = (args: string[], input?: string) =>
    execFileSync(path.join(pg.state.binDir, 'kubectl'), [`--kubeconfig=${node.kubeconfig}`, ...args], {
      encoding: 'utf8',
      input,
      stdio: 'pipe',
      timeout: 300_000,
      maxBuffer: 256 << 20,
    });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // BENCH_LOGS=<dir>: every Pod's log and the node's process logs are kept there (the node removes them).
    const keep = process.env.BENCH_LOGS;
    if (keep) {
      fs.mkdirSync(keep, { recursive: true });
      for (const [from, to] of [
        ['/var/log/pods', 'pods'],
        [pg.state.logDir, 'node'],
      ])
        if (fs.existsSync(from)) fs.cpSync(from, path.join(keep, to), { recursive: true, dereference: true });
      console.error(`bench: logs kept in ${keep}`);
    }
    await node.stop();
    pg.stop();
  };
  // A bench stopped by hand still tears its node and PostgreSQL down.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`bench: ${sig}, tearing the node down`);
      void stop().finally(() => process.exit(130));
    });
  }
  return { state: pg.state, node, k, stop };
}

/** Applies the example platform's hosting install (dist/) and waits for `deployments` and the bundled PostgreSQL. */
export function installHosting(b: BenchNode, deployments: string[]): void {
  b.node.addLocalVolume('postgres-data', '8Gi');
  for (const f of ['00-base/hosting.k8s.yaml', 'hosting.k8s.yaml'])
    b.k(['apply', '--server-side', '-f', path.join(REPO, 'dist', f)]);
  for (const d of deployments) b.k(['-n', 'kubeflex-system', 'rollout', 'status', `deployment/${d}`, '--timeout=300s']);
  b.k(['-n', 'kubeflex-system', 'rollout', 'status', 'statefulset/postgres-postgresql', '--timeout=300s']);
}

/** The pod's cgroup directory of `controller` (cgroup v1, cgroupfs driver) by QoS class. */
export function podCgroup(pod: any, controller: 'memory' | 'cpuacct'): string {
  const qos = pod.status.qosClass as string;
  const root = controller === 'memory' ? '/sys/fs/cgroup/memory' : '/sys/fs/cgroup/cpu,cpuacct';
  const base = path.join(fs.existsSync(root) ? root : `/sys/fs/cgroup/${controller}`, 'kubepods');
  return path.join(qos === 'Guaranteed' ? base : path.join(base, qos.toLowerCase()), `pod${pod.metadata.uid}`);
}

/** CPU time the pod's cgroup has used so far, in nanoseconds. */
export const podCpuNs = (pod: any) =>
  Number(fs.readFileSync(path.join(podCgroup(pod, 'cpuacct'), 'cpuacct.usage'), 'utf8'));

/** Where the machine's CPU went: a reading of every process outside the pods' cgroups and of every Pod's containers. */
export interface CpuReading {
  /** `pid:starttime` → [comm, CPU-seconds of the process and its reaped children]. */
  readonly procs: Map<string, [string, number]>;
  /** `namespace/pod/container` → CPU-seconds of that container's cgroup. */
  readonly containers: Map<string, number>;
  readonly machineS: number;
}

const TICK = 100;

/** Reads the CPU of every process (outside kubepods) and of every container of `pods` (kubectl's Pod objects). */
export function readCpu(pods: any[]): CpuReading {
  const procs = new Map<string, [string, number]>();
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes('/kubepods')) continue;
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // Fields 14-17 (utime, stime, cutime, cstime) and 22 (starttime), counted from 1 with pid and comm as 1 and 2.
      const cpu = (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICK;
      procs.set(`${pid}:${f[19]}`, [comm, cpu]);
    } catch {
      // The process ended while it was read.
    }
  }
  const containers = new Map<string, number>();
  for (const p of pods) {
    const dir = podCgroup(p, 'cpuacct');
    const byId = new Map<string, string>();
    for (const c of [...(p.status.initContainerStatuses ?? []), ...(p.status.containerStatuses ?? [])]) {
      if (c.containerID) byId.set(String(c.containerID).replace(/^.*:\/\//, ''), c.name);
    }
    let sub = 0;
    try {
      for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
        if (!d.isDirectory()) continue;
        const ns = Number(fs.readFileSync(path.join(dir, d.name, 'cpuacct.usage'), 'utf8'));
        sub += ns;
        const name = byId.get(d.name) ?? 'sandbox';
        const key = `${p.metadata.namespace}/${p.metadata.name}/${name}`;
        containers.set(key, (containers.get(key) ?? 0) + ns / 1e9);
      }
      const all = Number(fs.readFileSync(path.join(dir, 'cpuacct.usage'), 'utf8'));
      containers.set(`${p.metadata.namespace}/${p.metadata.name}/(exited)`, (all - sub) / 1e9);
    } catch {
      // A Pod that is gone, or not started yet.
    }
  }
  return { procs, containers, machineS: machineBusyS() };
}

/**
 * CPU-seconds between two readings, grouped: node processes by command name, containers by `group(namespace, pod)`
 * and container name. A process that ended between the readings counts where its parent reaped it.
 */
export function cpuBetween(
  a: CpuReading,
  b: CpuReading,
  group: (namespace: string, pod: string) => string,
): { rows: [string, number][]; machineS: number; podsS: number } {
  const sums = new Map<string, number>();
  let podsS = 0;
  const add = (k: string, s: number) => sums.set(k, (sums.get(k) ?? 0) + s);
  for (const [key, [comm, s]] of b.procs)
    add(`process ${comm.replace(/[\d/:-]+$/, '')}`, s - (a.procs.get(key)?.[1] ?? 0));
  for (const [key, s] of b.containers) {
    const [ns, pod, container] = key.split('/');
    const delta = s - (a.containers.get(key) ?? 0);
    podsS += delta;
    add(`${group(ns, pod)} ${container}`, delta);
  }
  const machineS = b.machineS - a.machineS;
  const counted = [...sums.values()].reduce((x, y) => x + y, 0);
  sums.set('not attributed (processes that ended unreaped, kernel threads, interrupts)', machineS - counted);
  const rows = [...sums.entries()].filter(([, s]) => Math.abs(s) >= 0.05).sort((x, y) => y[1] - x[1]);
  return { rows, machineS, podsS };
}

/** A Pod's group in the CPU table: the hosting install's workloads by name, every tenant's by its component. */
export const podGroup = (ns: string, pod: string) => {
  const base = pod.replace(/-[a-z0-9]{6,10}-[a-z0-9]{5}$/, '').replace(/-\d+$/, '');
  return ns === 'kubeflex-system' ? `hosting ${base}` : ns.endsWith('-system') ? `tenant ${base}` : `${ns} ${base}`;
};

/** Prints `cpuBetween`'s rows per tenant. */
export function printCpu(title: string, r: ReturnType<typeof cpuBetween>, tenants: number): void {
  console.log(`\n${title}: ${r.machineS.toFixed(0)} machine CPU-s, ${(r.machineS / tenants).toFixed(2)} per tenant`);
  console.log('| where | CPU-s | per tenant | share |\n|---|---:|---:|---:|');
  for (const [k, s] of r.rows)
    console.log(`| ${k} | ${s.toFixed(1)} | ${(s / tenants).toFixed(2)} | ${((100 * s) / r.machineS).toFixed(1)} % |`);
}

/** `apiserver_request_total` of a /metrics page, summed by "VERB resource[/subresource]" (all codes and groups). */
export function requestCounts(metrics: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of metrics.matchAll(/^apiserver_request_total\{([^}]*)\} (\S+)$/gm)) {
    const label = (n: string) => new RegExp(`(?:^|,)${n}="([^"]*)"`).exec(m[1])?.[1] ?? '';
    const sub = label('subresource');
    const key = `${label('verb')} ${label('resource')}${sub ? `/${sub}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(m[2]));
  }
  return counts;
}

/** The requests between two readings of requestCounts, most first, and per tenant. */
export function printRequests(title: string, a: Map<string, number>, b: Map<string, number>, tenants: number): void {
  const rows = [...b.entries()]
    .map(([key, n]) => [key, n - (a.get(key) ?? 0)] as const)
    .filter(([, n]) => n > 0)
    .sort((x, y) => y[1] - x[1]);
  const total = rows.reduce((s, [, n]) => s + n, 0);
  const writes = rows.filter(([key]) => !/^(GET|LIST|WATCH) /.test(key)).reduce((s, [, n]) => s + n, 0);
  console.log(
    `\n${title}: ${total} requests (${(total / tenants).toFixed(1)} per tenant), ${writes} writes (${(writes / tenants).toFixed(1)} per tenant)`,
  );
  console.log('| verb resource | requests | per tenant |\n|---|---:|---:|');
  for (const [key, n] of rows.slice(0, 30)) console.log(`| ${key} | ${n} | ${(n / tenants).toFixed(1)} |`);
}

/**
 * With BENCH_AUDIT set: the hosting API server's requests between two instants, by client, verb and resource, with
 * how many namespaces and objects they touched, most first: which client's requests grow with what.
 */
export function printAudit(title: string, fromMs: number, toMs: number): void {
  const file = process.env.BENCH_AUDIT;
  if (!file || !fs.existsSync(file)) return;
  const rows = new Map<string, { n: number; ns: Set<string>; objects: Set<string> }>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line);
    const t = Date.parse(e.requestReceivedTimestamp);
    if (t < fromMs || t > toMs) continue;
    const r = e.objectRef ?? {};
    const key = `${e.user?.username} ${e.verb} ${r.resource ?? e.requestURI}${r.subresource ? `/${r.subresource}` : ''}`;
    const row = rows.get(key) ?? { n: 0, ns: new Set<string>(), objects: new Set<string>() };
    row.n++;
    if (r.namespace) row.ns.add(r.namespace);
    if (r.name) row.objects.add(`${r.namespace ?? ''}/${r.name}`);
    rows.set(key, row);
  }
  console.log(
    `\n${title} (audit log):\n| client verb resource | requests | namespaces | objects |\n|---|---:|---:|---:|`,
  );
  for (const [key, r] of [...rows.entries()].sort((a, b) => b[1].n - a[1].n).slice(0, 40))
    console.log(`| ${key} | ${r.n} | ${r.ns.size} | ${r.objects.size} |`);
}

/** Sets keys of kubeflex-config on the bench's node (the controller reads it on every pass). */
export const setHostingConfig = (k: (args: string[]) => string, data: Record<string, string>) =>
  k(['-n', 'kubeflex-system', 'patch', 'configmap', 'kubeflex-config', '-p', JSON.stringify({ data })]);
