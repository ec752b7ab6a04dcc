// What the benchmarks on the real test node share: the node with its PostgreSQL, kubectl against it, the hosting
// install from dist/, and the kubelet's cgroup of a Pod.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { nodeUnavailable, startNode } from '../test/node/node-cluster';
import { benchPostgres, BenchState } from './common';

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
