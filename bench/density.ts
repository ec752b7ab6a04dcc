// Density: N k8s tenants at once on one PostgreSQL, booted from their synthesized Deployments as processes (as the
// tenant tests do), with our flags and with KubeFlex's (reference kubeflex-behaviour.md 2.3) side by side.
// Per tenant: machine memory (drop of MemAvailable / N), anonymous memory (sum of RssAnon / N), idle CPU (utime +
// stime over IDLE_S), time to /readyz of the last tenant, PostgreSQL connections and database size.
// A variant `ours:2` starts the tenants 2 at a time, oldest first, the next one as soon as one answers /readyz: what
// the controller's boot admission does with the API server Pods (the bench starts each tenant's KCM with it).
// Usage: N=10,25,50 VARIANTS=ours,kubeflex npm run bench:density (needs scripts/prepare-binaries.sh; loopback only).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { K8sControlPlaneSize } from '../lib';
import { psql } from '../test/cluster/harness';
import { bootTenant, synthTenant, Tenant } from '../test/cluster/tenant';
import { benchPostgres, meminfoMiB } from './common';

const NS = (process.env.N ?? '10,25,50').split(',').map(Number);
const VARIANTS = (process.env.VARIANTS ?? 'ours,kubeflex').split(',');
const SETTLE_S = Number(process.env.SETTLE_S ?? 30);
const IDLE_S = Number(process.env.IDLE_S ?? 60);
export const CLK_TCK = 100;

/**
 * CPU ticks of the bench's PostgreSQL: its postmaster and every process it forked (the backends serving kine). Divided
 * by N over the idle window, it is what the tenants' queries cost the database server, which the tenant processes'
 * own CPU does not show.
 */
export function postgresCpuTicks(benchDir: string): number {
  const postmaster = Number(fs.readFileSync(path.join(benchDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const own = fs.readFileSync(`/proc/${postmaster}/stat`, 'utf8');
  const fields = own.slice(own.lastIndexOf(')') + 2).split(' ');
  // utime, stime, and cutime, cstime: the CPU of backends that exited (and were reaped) is added to the latter.
  let ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command's closing parenthesis: state, ppid, ...
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) ticks += cpuTicks(Number(entry));
    } catch {
      // The process exited between the listing and the read.
    }
  }
  return ticks;
}

const memAvailableMiB = () => meminfoMiB('MemAvailable');
export const rssAnonMiB = (pid: number) =>
  Number(/RssAnon:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
export const cpuTicks = (pid: number) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]); // utime, stime
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** CPU ticks of a process, or undefined when it has exited. */
const cpuTicksIfAlive = (pid: number) => {
  try {
    return cpuTicks(pid);
  } catch {
    return undefined;
  }
};
const rssAnonIfAlive = (pid: number) => {
  try {
    return rssAnonMiB(pid);
  } catch {
    return undefined;
  }
};
/** The last lines of a container's log: why it exited (the bench removes its directory at the end). */
const logTail = (file: string) => {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return `(no log ${file})`;
  }
};

/** The pool of kine v0.11.4 (KubeFlex's image) on kine v0.17.5: database/sql's 2 idle connections, no idle limit. */
const KINE_011_POOL = ['--datastore-max-idle-connections=2', '--datastore-connection-max-idle-time=0s'];
/** kine v0.17.5's own defaults: what the `kubeflex` variant ran until round 13 (`kubeflex+kine17pool`). */
const KINE_017_POOL = ['--datastore-max-idle-connections=20', '--datastore-connection-max-idle-time=2m'];

/** KubeFlex's kube-apiserver flags and KCM controllers (reference 2.3), on our paths; no audit or encryption. */
function kubeflexFlags(objects: any[]): any[] {
  const copy = JSON.parse(JSON.stringify(objects));
  const api = copy.find((o: any) => o.kind === 'Deployment' && o.metadata.name === 'kube-apiserver').spec.template.spec;
  const c = api.containers.find((x: any) => x.name === 'kube-apiserver');
  const keep = (prefix: string) => c.args.find((a: string) => a.startsWith(prefix));
  c.args = [
    '--allow-privileged=true',
    '--authorization-mode=Node,RBAC',
    keep('--client-ca-file='),
    '--enable-admission-plugins=NodeRestriction',
    '--enable-bootstrap-token-auth=true',
    keep('--etcd-servers='),
    '--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname',
    keep('--proxy-client-cert-file='),
    keep('--proxy-client-key-file='),
    '--requestheader-allowed-names=front-proxy-client',
    keep('--requestheader-client-ca-file='),
    '--requestheader-extra-headers-prefix=X-Remote-Extra-',
    '--requestheader-group-headers=X-Remote-Group',
    '--requestheader-username-headers=X-Remote-User',
    keep('--secure-port='),
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    keep('--service-account-key-file='),
    keep('--service-account-signing-key-file='),
    '--service-cluster-ip-range=10.96.0.0/12',
    keep('--tls-cert-file='),
    keep('--tls-private-key-file='),
  ];
  // KubeFlex runs `kine --endpoint <dsn>` on kine v0.11.4: that version's defaults (kept on loopback here). Its
  // connection pool is database/sql's: 2 idle connections, kept with no idle time limit. The kine binary here is
  // v0.17.5, whose defaults differ (20 idle, closed after 2 minutes idle), so the pool is set as v0.11.4 has it.
  // Until round 13 this variant ran v0.17.5's defaults and was measured within 2 minutes of its boot, while kine
  // still held ~18 connections per tenant: ~50 MiB of PostgreSQL backends per tenant that neither KubeFlex nor a
  // v0.17.5 kine idle for 2 minutes holds (BENCHMARKS.md, issue 26 round 13). Its metrics server stays on, but on a
  // free port: in KubeFlex every kine has its own pod network, here they share loopback and kine v0.17 exits when
  // :8080 is taken.
  const kine = api.containers.find((x: any) => x.name === 'kine');
  kine.args = [
    ...kine.args.filter((a: string) => a.startsWith('--listen-address=')),
    '--metrics-bind-address=127.0.0.1:0',
    ...KINE_011_POOL,
  ];
  const kcm = copy.find((o: any) => o.kind === 'Deployment' && o.metadata.name === 'kube-controller-manager').spec
    .template.spec.containers[0];
  // KubeFlex sets no Go runtime variables.
  for (const k of [...api.containers, kcm])
    k.env = (k.env ?? []).filter((e: any) => !['GOMEMLIMIT', 'GOGC', 'GOMAXPROCS'].includes(e.name));
  kcm.args = kcm.args
    .filter(
      (a: string) => !a.startsWith('--controllers=') && !a.startsWith('--leader-elect') && a !== '--profiling=false',
    )
    .concat([
      '--controllers=csrapproving,csrcleaner,csrsigning,namespace,root-ca-cert-publisher,serviceaccount,serviceaccount-token,bootstrapsigner,tokencleaner,garbagecollector,pv-protection,pvc-protection',
      '--leader-elect=true',
    ]);
  return copy;
}

/** Candidate flags, measured against ours before they go into the construct. */
function lean(objects: any[], flags: Record<string, string[]>[]): any[] {
  const copy = JSON.parse(JSON.stringify(objects));
  const containers = copy
    .filter((o: any) => o.kind === 'Deployment')
    .flatMap((o: any) => o.spec.template.spec.containers);
  for (const f of flags)
    for (const [name, args] of Object.entries(f)) {
      if (name === 'env' || name.startsWith('env:')) {
        // NAME=value for every Go container (`env`), or for one (`env:<container>`).
        for (const c of containers.filter((x: any) => name === 'env' || x.name === name.slice(4)))
          for (const a of args) {
            const [k, v] = a.split('=');
            c.env = [...(c.env ?? []).filter((e: any) => e.name !== k), { name: k, value: v }];
          }
        continue;
      }
      const c = containers.find((x: any) => x.name === name);
      c.args = [...c.args.filter((a: string) => !args.some((n) => n.split('=')[0] === a.split('=')[0])), ...args];
    }
  return copy;
}

const CANDIDATES: Record<string, Record<string, string[]>> = {
  nowatchcache: { 'kube-apiserver': ['--watch-cache=false'] },
  noidentity: { 'kube-apiserver': ['--feature-gates=APIServerIdentity=false'] },
  fewconns: { kine: ['--datastore-max-idle-connections=2', '--datastore-connection-max-idle-time=60s'] },
  idle1: { kine: ['--datastore-max-idle-connections=1'] },
  gogc50: { env: ['GOGC=50'] },
  gogc25: { env: ['GOGC=25'] },
  gogc15: { env: ['GOGC=15'] },
  // Without the watch cache nothing in the API server asks for etcd progress notifications; kine sends one per watch
  // every 5 s by default.
  slowprogress: { kine: ['--watch-progress-notify-interval=5m'] },
  // kine's default poll, as before round 4 (single replicas now poll every 10 s).
  poll1s: { kine: ['--datastore-poll-interval=1s'] },
  poll5s: { kine: ['--datastore-poll-interval=5s'] },
  poll10s: { kine: ['--datastore-poll-interval=10s'] },
  poll30s: { kine: ['--datastore-poll-interval=30s'] },
  nocount: { 'kube-apiserver': ['--etcd-count-metric-poll-period=0'] },
  nodbmetric: { 'kube-apiserver': ['--etcd-db-metric-poll-interval=0'] },
  // Boot: kine keeps enough idle connections for the start's burst of concurrent queries, closed after a short idle.
  idle10: { kine: ['--datastore-max-idle-connections=10', '--datastore-connection-max-idle-time=20s'] },
  idle20: { kine: ['--datastore-max-idle-connections=20', '--datastore-connection-max-idle-time=20s'] },
  gogc100: { env: ['GOGC=100'] },
  // Every Go process on both cores of this machine, as before GOMAXPROCS followed the CPU limit.
  maxprocs2: { env: ['GOMAXPROCS=2'] },
  // One P per Go process, the API server included: fewer idle Ps to look for work on every timer wake-up.
  maxprocs1: { env: ['GOMAXPROCS=1'] },
  // The kine pool before round 3: two idle connections kept for 60 s.
  idle2: { kine: ['--datastore-max-idle-connections=2', '--datastore-connection-max-idle-time=60s'] },
  noaudit: { 'kube-apiserver': ['--audit-log-path='] },
  // The API server's heap held under a memory limit instead of GOGC's headroom: GC by the limit at idle, by GOGC
  // while the heap is small (a start).
  apilim100: { 'env:kube-apiserver': ['GOMEMLIMIT=104857600', 'GOGC=100'] },
  apilim110: { 'env:kube-apiserver': ['GOMEMLIMIT=115343360', 'GOGC=100'] },
  apilim100g25: { 'env:kube-apiserver': ['GOMEMLIMIT=104857600'] },
  kinelim: { 'env:kine': ['GOMEMLIMIT=12582912', 'GOGC=100'] },
  kcmlim: { 'env:kube-controller-manager': ['GOMEMLIMIT=16777216', 'GOGC=100'] },
  // On `kubeflex`: the pool of kine v0.17.5's defaults instead of v0.11.4's (what that variant ran until round 13).
  kine17pool: { kine: KINE_017_POOL },
  // Fewer PostgreSQL backends per start (each is a fork, TLS and cold caches): kine's pool at 10 or 8 instead of 20,
  // with the API server's write limit that goes with it (kineWriteLimit). A pool of 5 hung at the first boot.
  pool10: {
    kine: ['--datastore-max-open-connections=10', '--datastore-max-idle-connections=10'],
    'kube-apiserver': ['--max-mutating-requests-inflight=5'],
  },
  pool8: {
    kine: ['--datastore-max-open-connections=8', '--datastore-max-idle-connections=8'],
    'kube-apiserver': ['--max-mutating-requests-inflight=4'],
  },
  // The API server's own write limit (200), as before round 14: more writes at once than kine's pool deadlock it.
  mut200: { 'kube-apiserver': ['--max-mutating-requests-inflight=200'] },
};

function candidate(c: string): Record<string, string[]> {
  if (!CANDIDATES[c]) throw new Error(`unknown candidate ${c} (one of ${Object.keys(CANDIDATES).join(', ')})`);
  return CANDIDATES[c];
}

/** A tenant's synthesized objects for a variant: `ours`, `ours-small`, `kubeflex`, `ours+candidate+…`. */
export function variantObjects(name: string, variant: string): any[] {
  const size = (/^ours-(small|medium|large)/.exec(variant)?.[1] ?? undefined) as K8sControlPlaneSize | undefined;
  const [base, ...parts] = variant.split('+');
  // `k133`: the same flags on the second supported minor's kube-apiserver and kube-controller-manager.
  const synthesized = synthTenant(name, { size, ...(parts.includes('k133') ? { kubernetesVersion: '1.33' } : {}) });
  // `kubeflex+…`: KubeFlex's flags, then the same parts as ours (e.g. kine v0.17.5's own pool, `kine17pool`).
  const objects = base === 'kubeflex' ? kubeflexFlags(synthesized) : synthesized;
  const kcm = objects.find((o: any) => o.kind === 'Deployment' && o.metadata.name === 'kube-controller-manager');
  // No KCM process at all (round 4's estimate of parking). `parkkcm` (handled in main) models parking itself: KCM
  // starts and syncs with the rest, and is stopped once the tenants settled, as the controller parks an idle one.
  if (parts.includes('nokcm')) kcm.spec.replicas = 0;
  // The garbage collector alone: it re-reads discovery every 30 s (hard-coded in KCM).
  if (parts.includes('kcmnogc')) {
    const c = kcm.spec.template.spec.containers[0];
    c.args = c.args.map((a: string) =>
      a.startsWith('--controllers=') ? a.replace('garbage-collector-controller,', '') : a,
    );
  }
  const extra = parts.filter((c) => c !== 'nokcm' && c !== 'kcmnogc' && c !== 'parkkcm' && c !== 'k133').map(candidate);
  return extra.length ? lean(objects, extra) : objects;
}

interface Row {
  variant: string;
  n: number;
  lastReadyS: number;
  restarts: number;
  restartsInWindow: number;
  machineMiB: number;
  anonMiB: number;
  idleMilli: number;
  pgMilli: number;
  pgConnections: number;
  dbMiB: number;
  wakeS: number;
}

async function main(): Promise<void> {
  const { state, stop } = await benchPostgres('kflex-density-');
  const pgState = { pgPort: state.pgPort, pgSocketDir: state.pgSocketDir };
  const rows: Row[] = [];
  let live: Tenant[] = [];
  try {
    for (const variant of VARIANTS) {
      for (const n of NS) {
        const prefix = `d${VARIANTS.indexOf(variant)}n${n}`;
        const [flags, slotsText] = variant.split(':');
        const slots = slotsText ? Number(slotsText) : n;
        await sleep(5000);
        const before = memAvailableMiB();
        const tenants: Tenant[] = [];
        for (let i = 0; i < n; i++) {
          const name = `${prefix}-${i}`;
          tenants.push(await bootTenant(state, name, undefined, undefined, variantObjects(name, flags)));
        }
        const t0 = Date.now();
        live = tenants;
        // All at once on 2 cores: the last one may need minutes, so the timeout is generous. /readyz is asked once a
        // second, as a kubelet's probe would (200 ms x 50 servers was 250 TLS handshakes a second on the same cores).
        const waiting = [...tenants];
        const slot = async () => {
          for (let t = waiting.shift(); t; t = waiting.shift()) await t.start(900_000, 1000);
        };
        await Promise.all(Array.from({ length: Math.min(slots, n) }, slot));
        const lastReadyS = (Date.now() - t0) / 1000;
        await sleep(SETTLE_S * 1000);
        if (flags.split('+').includes('parkkcm')) {
          // What the controller does to an idle plane (hosting controllerManagerIdleTimeout): its
          // kube-controller-manager, started and synced with the rest, is stopped; then the settle time again.
          for (const t of tenants)
            for (const c of Object.keys(t.procs).filter((x) => x.startsWith('kube-controller-manager'))) {
              await t.procs[c].stop();
              delete t.procs[c];
            }
          await sleep(SETTLE_S * 1000);
        }
        const procs = tenants.flatMap((t) => Object.entries(t.procs).map(([c, p]) => ({ tenant: t.name, c, p })));
        const restarts0 = procs.reduce((a, x) => a + x.p.restarts, 0);
        const pids0 = procs.map((x) => x.p.pid);
        const c0 = pids0.map(cpuTicksIfAlive);
        const pg0 = postgresCpuTicks(state.dir);
        const w0 = Date.now();
        await sleep(IDLE_S * 1000);
        // A container that exited in the window (restarted as in a pod, or waiting to be) is counted as a restart
        // and left out of the CPU and memory sums, which then cover the processes that ran through the window.
        const through = procs.map((x, i) => x.p.pid === pids0[i] && c0[i] !== undefined);
        const c1 = procs.map((x, i) => (through[i] ? cpuTicksIfAlive(x.p.pid) : undefined));
        const counted = c1.map((c, i) => (c === undefined ? 0 : c - c0[i]!));
        const ran = c1.filter((c) => c !== undefined).length;
        const pgMilli = ((postgresCpuTicks(state.dir) - pg0) / CLK_TCK / ((Date.now() - w0) / 1000) / n) * 1000;
        const wall = (Date.now() - w0) / 1000;
        // Per tenant: the counted processes' CPU scaled to all of them (a left-out process is replaced by the mean).
        const idleMilli = (counted.reduce((a, b) => a + b, 0) / CLK_TCK / wall / n) * (procs.length / ran) * 1000;
        const machineMiB = (before - memAvailableMiB()) / n;
        const anon = procs.map((x, i) => (c1[i] === undefined ? undefined : rssAnonIfAlive(x.p.pid)));
        const anonKnown = anon.filter((a): a is number => a !== undefined);
        const anonMiB = (anonKnown.reduce((a, b) => a + b, 0) / n) * (procs.length / anonKnown.length);
        const restarts = procs.reduce((a, x) => a + x.p.restarts, 0);
        for (const x of procs.filter((y) => y.p.restarts > 0))
          console.error(
            `${x.tenant} ${x.c}: ${x.p.restarts} restart(s) since its start; its log's tail:\n` +
              logTail(
                path.join(
                  state.logDir,
                  `${x.tenant}-${x.c === 'kube-controller-manager' ? 'kcm' : 'apiserver'}-${x.c}.log`,
                ),
              ),
          );
        const pgConnections = Number(
          psql(pgState, `SELECT count(*) FROM pg_stat_activity WHERE usename LIKE '${prefix.replace(/-/g, '_')}%'`),
        );
        const dbMiB =
          Number(
            psql(
              pgState,
              `SELECT coalesce(sum(pg_database_size(datname)), 0) FROM pg_database WHERE datname LIKE '${prefix.replace(/-/g, '_')}%'`,
            ),
          ) /
          1048576 /
          n;
        // Sleep: every tenant's processes stopped, data kept in PostgreSQL; then wake one.
        await Promise.all(tenants.map((t) => t.stop()));
        const w = Date.now();
        await tenants[0].start();
        const wakeS = (Date.now() - w) / 1000;
        await tenants[0].stop();
        const row = {
          variant,
          n,
          lastReadyS,
          restarts,
          restartsInWindow: restarts - restarts0,
          machineMiB,
          anonMiB,
          idleMilli,
          pgMilli,
          pgConnections: pgConnections / n,
          dbMiB,
          wakeS,
        };
        rows.push(row);
        console.error(JSON.stringify(row));
      }
    }
  } finally {
    await Promise.all(live.map((t) => t.stop()));
    stop();
  }
  console.log(
    `Idle ${SETTLE_S} s, then CPU over ${IDLE_S} s; per tenant (${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB):`,
  );
  console.log(
    '| flags | N | last /readyz (s) | restarts (in the idle window) | machine MiB | RssAnon MiB | idle mCPU | PostgreSQL mCPU | PG connections | DB MiB | wake one (s) |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows)
    console.log(
      `| ${r.variant} | ${r.n} | ${r.lastReadyS.toFixed(1)} | ${r.restarts} (${r.restartsInWindow}) | ${r.machineMiB.toFixed(0)} | ${r.anonMiB.toFixed(0)} | ${r.idleMilli.toFixed(1)} | ${r.pgMilli.toFixed(1)} | ${r.pgConnections.toFixed(1)} | ${r.dbMiB.toFixed(1)} | ${r.wakeS.toFixed(1)} |`,
    );
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
