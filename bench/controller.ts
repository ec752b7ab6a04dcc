// Runtime controller at scale: time to reconcile N k8s ControlPlanes to Synced=True (each needs a CA, three leaf
// certificates, a service-account key, three kubeconfigs and a database password: 5 Secrets) and the controller's
// resident memory, on a real kube-apiserver + kine + PostgreSQL on loopback.
// Usage: npm run bench:controller   (SIZES=100,1000 by default; needs scripts/prepare-binaries.sh)
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { HostControlPlane, K8sControlPlane, KubeflexHosting, synthesizeAtomically } from '../lib';
import {
  applySynthesized,
  HOSTING_KCM_CONTROLLERS,
  killAll,
  psql,
  startCluster,
  startPostgres,
  stopPostgres,
} from '../test/cluster/harness';

const SIZES = (process.env.SIZES ?? '100,1000').split(',').map(Number);
const WORKERS = process.env.WORKERS ?? '8';
const IDLE_S = Number(process.env.IDLE_S ?? 60);
/** kubectl processes that apply the tenants' objects side by side (setup only, not measured). */
const APPLIERS = Number(process.env.APPLIERS ?? 8);
/**
 * `half` (default): every other plane is a host plane, the rest k8s (never Ready here: no tenant Pods); `host`: host
 * planes only (all Ready); `k8s`: k8s planes only.
 */
const MIX = process.env.MIX ?? 'half';
/** Wait after the last Synced before idle RSS and CPU are measured (status writes and events settle). */
const SETTLE_S = Number(process.env.SETTLE_S ?? 15);
const MAIN = path.resolve(__dirname, '../build/lib/controller/main.js');
/**
 * `unreachable` (default): the planes' database server is the bundled one, whose Service name does not resolve here
 * (no cluster DNS), as when PostgreSQL is down. `reachable`: the bench's PostgreSQL as the install's external server,
 * so each k8s plane's first pass makes its role and database there.
 */
const DATABASES = process.env.DATABASES ?? 'unreachable';
/**
 * WATCH_TIMEOUT_S: the hosting API server's --min-request-timeout, so its watches end every 1-2x that (default 30-60
 * min): what the controller does when its watches end, within a short idle window.
 */
const WATCH_TIMEOUT_S = process.env.WATCH_TIMEOUT_S;
const PG_SECRET = 'bench-postgres';

function rss(pid: number): { rss: number; hwm: number } {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) / 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** User + system CPU seconds a process has used so far. */
function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** Keys of the API server's time per request kind and of its store's time per operation (seconds, summed). */
const SERVER_S = 'server-s ';
const STORE_S = 'store-s ';
/** The metrics read, and the prefix of their keys (requests served have none). */
const METRICS: Record<string, string> = {
  apiserver_request_total: '',
  apiserver_request_duration_seconds_sum: SERVER_S,
  etcd_request_duration_seconds_sum: STORE_S,
};

/** Requests the API server has served so far by verb and resource, and the seconds they took (its own metrics). */
function requestCounts(kubeconfig: string): Map<string, number> {
  const r = spawnSync('kubectl', [`--kubeconfig=${kubeconfig}`, 'get', '--raw', '/metrics'], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  });
  const counts = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const metric = line.slice(0, line.indexOf('{'));
    const prefix = METRICS[metric];
    if (prefix === undefined) continue;
    const label = (k: string) => new RegExp(`[{,]${k}="([^"]*)"`).exec(line)?.[1] ?? '';
    const what =
      prefix === STORE_S
        ? `${label('operation')} ${label('type')}`
        : `${label('verb')} ${label('resource')}${label('subresource') ? '/' + label('subresource') : ''}`;
    counts.set(prefix + what, (counts.get(prefix + what) ?? 0) + Number(line.split(' ').pop()));
  }
  return counts;
}

function syncedCount(kubeconfig: string): number {
  const r = spawnSync(
    'kubectl',
    [
      `--kubeconfig=${kubeconfig}`,
      'get',
      'cp',
      '-o',
      "jsonpath={range .items[*]}{.status.conditions[?(@.type=='Synced')].status}{'\\n'}{end}",
    ],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  return r.stdout.split('\n').filter((l) => l === 'True').length;
}

async function run(
  n: number,
  base: { dir: string; logDir: string; binDir: string; pgPort: number; pgPassword: string; pgSocketDir: string },
) {
  // The hosting controllers (root CA publisher: host planes' kubeconfigs carry kube-root-ca.crt; ServiceAccounts).
  const cluster = await startCluster(
    base,
    `bench${n}`,
    HOSTING_KCM_CONTROLLERS,
    WATCH_TIMEOUT_S ? [`--min-request-timeout=${WATCH_TIMEOUT_S}`] : [],
  );
  try {
    const out = path.join(base.dir, `dist-${n}`);
    const files = synthesizeAtomically((app) => {
      const hosting = new KubeflexHosting(
        app,
        'hosting',
        DATABASES === 'reachable'
          ? {
              externalPostgres: { host: '127.0.0.1', port: base.pgPort, passwordSecretName: PG_SECRET },
              // The bench's server has no TLS; it listens on loopback only.
              postgresSslMode: 'disable',
            }
          : {},
      );
      // Mixed types: every other plane is a host plane (Ready: its token minted), the others k8s (no tenant
      // processes run here, so they stay Unavailable and are looked at again every 15 s, as KubeFlex does).
      for (let i = 0; i < n; i++)
        if (MIX === 'host' || (MIX === 'half' && i % 2)) new HostControlPlane(app, `t${i}`, { hosting });
        else new K8sControlPlane(app, `t${i}`, { hosting });
    }, out);
    // The controller reads a tenant's ControlPlane and namespace (workloads only for readiness, which is not
    // measured here), so only those are applied (with the namespace's quota and bindings): a few objects per tenant
    // instead of ~15 keeps the setup minutes short.
    const tenants = files.filter((f) => !f.endsWith('hosting.k8s.yaml'));
    const docs = tenants.flatMap((t) =>
      fs
        .readFileSync(t, 'utf8')
        .split(/^---$/m)
        .filter((d) =>
          /^kind: (Namespace|ControlPlane|ResourceQuota|ServiceAccount|ClusterRoleBinding|RoleBinding)$/m.test(d),
        )
        .map((d) => d.trim()),
    );
    const chunksOf = (part: string[], tag: string) => {
      const out: string[] = [];
      const per = Math.ceil(part.length / APPLIERS);
      for (let i = 0; i < part.length; i += per) {
        const f = path.join(base.dir, `chunk-${n}-${tag}-${i}.yaml`);
        fs.writeFileSync(f, part.slice(i, i + per).join('\n---\n') + '\n');
        out.push(f);
      }
      return out;
    };
    const isNs = (d: string) => /^kind: Namespace$/m.test(d);
    const t0 = Date.now();
    applySynthesized(
      cluster,
      files.filter((f) => f.endsWith('hosting.k8s.yaml')),
    );
    // Namespaces first (the host planes' ServiceAccounts and bindings live in them), then the rest; APPLIERS kubectl
    // processes in parallel each time (each waits on one request at a time).
    for (const chunks of [
      chunksOf(docs.filter(isNs), 'ns'),
      chunksOf(
        docs.filter((d) => !isNs(d)),
        'rest',
      ),
    ])
      await Promise.all(
        chunks.map(
          (f) =>
            new Promise<void>((resolve, reject) =>
              spawn('kubectl', [`--kubeconfig=${cluster.kubeconfig}`, 'apply', '--server-side', '-f', f], {
                stdio: ['ignore', 'ignore', 'inherit'],
              }).on('exit', (code) =>
                code === 0 ? resolve() : reject(new Error(`kubectl apply ${f} exited ${code}`)),
              ),
            ),
        ),
      );
    const applyMs = Date.now() - t0;
    const databases = () =>
      Number(psql({ pgPort: base.pgPort, pgSocketDir: base.pgSocketDir }, 'SELECT count(*) FROM pg_database').trim());
    const databases0 = databases();
    if (DATABASES === 'reachable') {
      // The superuser's password, as the admin would give it (stdin: never on a command line).
      const secret = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: PG_SECRET, namespace: 'kubeflex-system' },
        stringData: { 'postgres-password': base.pgPassword },
      };
      const r = spawnSync('kubectl', [`--kubeconfig=${cluster.kubeconfig}`, 'apply', '-f', '-'], {
        input: JSON.stringify(secret),
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(`kubectl apply the PostgreSQL Secret: ${r.stderr}`);
    }

    const log = path.join(base.logDir, `controller-${n}.log`);
    const fd = fs.openSync(log, 'w');
    const before = requestCounts(cluster.kubeconfig);
    const start = Date.now();
    const proc = spawn(
      process.execPath,
      [
        // e.g. CONTROLLER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof": where the controller's CPU goes.
        ...(process.env.CONTROLLER_NODE_ARGS ?? '').split(' ').filter(Boolean),
        MAIN,
        `--kubeconfig=${cluster.kubeconfig}`,
        '--health-port=0',
        `--workers=${WORKERS}`,
        `--log-level=${process.env.LOG_LEVEL ?? 'warn'}`,
      ],
      {
        stdio: ['ignore', fd, fd],
      },
    );
    fs.closeSync(fd);
    let peak = 0;
    let synced = 0;
    while (synced < n) {
      await new Promise((r) => setTimeout(r, 2000)); // listing 1,000 ControlPlanes costs CPU too: poll gently
      peak = Math.max(peak, rss(proc.pid!).rss);
      synced = syncedCount(cluster.kubeconfig);
      if (Date.now() - start > 30 * 60_000) throw new Error(`only ${synced}/${n} synced after 30 min`);
    }
    const syncMs = Date.now() - start;
    const cpu = cpuSeconds(proc.pid!);
    console.error(`n=${n}: databases made on the server meanwhile: ${databases() - databases0}`);
    // What the controller asked of the API server per plane until all were Synced (the bench's own `get cp` polls
    // included: one LIST per 2 s).
    const after = requestCounts(cluster.kubeconfig);
    const delta = [...after]
      .map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const)
      .filter(([, v]) => v > 0)
      .sort((a, b) => b[1] - a[1]);
    const requests = delta.filter(([k]) => !k.startsWith(SERVER_S) && !k.startsWith(STORE_S));
    const total = requests.reduce((a, [, v]) => a + v, 0);
    console.error(
      `n=${n}: API requests until all Synced: ${total} (${(total / n).toFixed(1)} per plane): ` +
        requests.map(([k, v]) => `${k} ${(v / n).toFixed(2)}`).join(', '),
    );
    // Mean time per request, in the API server and in its store, for the busiest kinds.
    const mean = (prefix: string, count: (k: string) => number | undefined) =>
      delta
        .filter(([k]) => k.startsWith(prefix))
        .map(([k, v]) => [k.slice(prefix.length), v, count(k.slice(prefix.length))] as const)
        .filter(([, , c]) => !!c && c >= n / 2)
        .map(([k, v, c]) => `${k} ${((v / c!) * 1000).toFixed(1)} ms`)
        .join(', ');
    const served = new Map(requests);
    console.error(`n=${n}: mean API server time per request: ${mean(SERVER_S, (k) => served.get(k))}`);
    console.error(
      `n=${n}: store time, total seconds: ${delta
        .filter(([k]) => k.startsWith(STORE_S))
        .slice(0, 8)
        .map(([k, v]) => `${k.slice(STORE_S.length)} ${v.toFixed(1)}`)
        .join(', ')}`,
    );
    await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
    const idle = rss(proc.pid!);
    // Idle CPU: nothing changes from here on. Per minute, so the first minute (planes not Ready are still looked at
    // often) and the steady state (once their delay has grown to the resync period) can both be read.
    const c0 = cpuSeconds(proc.pid!);
    const minutes: number[] = [];
    for (let t = 0, last = c0; t < IDLE_S; t += 60) {
      const s = Math.min(60, IDLE_S - t);
      await new Promise((r) => setTimeout(r, s * 1000));
      const now = cpuSeconds(proc.pid!);
      minutes.push(((now - last) * 1000) / s);
      last = now;
    }
    const idleMilli = ((cpuSeconds(proc.pid!) - c0) * 1000) / IDLE_S;
    console.error(`n=${n}: idle mCPU per minute after settling: ${minutes.map((m) => m.toFixed(1)).join(', ')}`);
    const tail = minutes.slice(-5);
    const tailMilli = tail.reduce((a, b) => a + b, 0) / tail.length;
    await killAll([proc.pid!]);
    if (process.env.KEEP_LOG) fs.copyFileSync(log, process.env.KEEP_LOG);
    return { n, applyMs, syncMs, cpu, peak: Math.max(peak, idle.hwm), idle: idle.rss, idleMilli, tailMilli };
  } finally {
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  const binDir = process.env.KFLEX_BIN_DIR ?? path.join(os.homedir(), '.cache/cdk8s-kubeflex/bin');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kflex-bench-ctrl-'));
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir);
  const pg = await startPostgres(dir, logDir);
  const pgPassword = `bench-${process.pid}`;
  psql({ pgPort: pg.port, pgSocketDir: pg.socketDir }, `ALTER ROLE postgres PASSWORD '${pgPassword}'`);
  try {
    console.log(
      `| ControlPlanes (${MIX === 'host' ? 'all host' : MIX === 'k8s' ? 'all k8s' : 'half host, half k8s'}) | apply ns + CP (s) | controller start to all Synced (s) | ms per ControlPlane | controller CPU (s) | peak RSS (MiB) | idle RSS after (MiB) | idle CPU over ${IDLE_S} s (mCPU) | idle CPU, last 5 min (mCPU) |`,
    );
    console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const n of SIZES) {
      const r = await run(n, { dir, logDir, binDir, pgPort: pg.port, pgPassword, pgSocketDir: pg.socketDir });
      console.log(
        `| ${r.n} | ${(r.applyMs / 1000).toFixed(1)} | ${(r.syncMs / 1000).toFixed(1)} | ${(r.syncMs / r.n).toFixed(1)} | ${r.cpu.toFixed(1)} | ${r.peak.toFixed(0)} | ${r.idle.toFixed(0)} | ${r.idleMilli.toFixed(1)} | ${r.tailMilli.toFixed(1)} |`,
      );
    }
  } finally {
    stopPostgres(pg.dataDir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
