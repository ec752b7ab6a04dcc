// What one k8s tenant's start costs: wall time to /readyz and CPU seconds, for its first boot (the API server's
// bootstrap writes into an empty database) and for restarts (a wake: the data is there), per flag variant as in
// bench/density.ts. CPU is counted twice: the tenant's own processes (kube-apiserver, kine) and the whole machine's
// busy time (/proc/stat), which adds the PostgreSQL backends kine opens. The machine figure x N / cores is the floor
// a boot storm of N tenants cannot beat.
// Usage: VARIANTS=ours,kubeflex ROUNDS=5 npm run bench:boot (needs scripts/prepare-binaries.sh; loopback only; run it
// on an otherwise idle machine). PERF=1 also records the first boot (PERF_PHASE=restart: the restart) with perf and
// prints kube-apiserver's and PostgreSQL's hottest symbols (PERF_BIN_DIR: a directory of unstripped binaries to use
// instead). TRACE=1 asks `/readyz?verbose` every 100 ms during each start and prints when the API server first
// answered and when each of its readiness checks first passed: where a start's seconds go.
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as https from 'https';
import * as os from 'os';
import * as path from 'path';
import { tenantNames } from '../lib/names';
import { psql } from '../test/cluster/harness';
import { adminAccess, bootTenant } from '../test/cluster/tenant';
import { benchPostgres, machineBusyS, median } from './common';
import { CLK_TCK, cpuTicks, variantObjects } from './density';

const VARIANTS = (process.env.VARIANTS ?? 'ours,kubeflex').split(',');
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const PERF = process.env.PERF === '1';
// Which start perf records: the first boot (default) or the restart (what a wake repeats).
const PERF_PHASE = process.env.PERF_PHASE === 'restart' ? 'restart' : 'first boot';
const TRACE = process.env.TRACE === '1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  wallS: number;
  procCpuS: number;
  machineCpuS: number;
  /** PostgreSQL backends connected to the tenant's database when it answered `/readyz` (kine's pool opened them). */
  backends: number;
}

/**
 * Asks `/readyz?verbose` every 100 ms until stopped; returns the ms (from its start) of the first answer of any kind
 * and of the first `[+]` of every check.
 */
function traceReadyz(tenant: { kubeconfig: string; dir: string }): () => Record<string, number> {
  const access = adminAccess(tenant);
  const server = access.server;
  const tls = { ...access.tls, timeout: 2000 };
  const t0 = Date.now();
  const seen: Record<string, number> = {};
  let running = true;
  const ask = () => {
    if (!running) return;
    const req = https.get(`${server}/readyz?verbose`, tls, (res) => {
      seen[`first answer (HTTP ${res.statusCode})`] ??= Date.now() - t0;
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        for (const m of body.matchAll(/^\[\+\]([^ \n]+) ok$/gm)) seen[m[1]] ??= Date.now() - t0;
        setTimeout(ask, 100);
      });
    });
    req.on('error', () => setTimeout(ask, 100));
  };
  ask();
  return () => {
    running = false;
    return seen;
  };
}

async function main(): Promise<void> {
  const { state: pgState, stop } = await benchPostgres('kflex-boot-');
  const state = { ...pgState };
  if (process.env.PERF_BIN_DIR) {
    // The stripped binaries have no symbols: link the unstripped ones over a copy of the bin dir.
    const bin = path.join(state.dir, 'bin');
    fs.mkdirSync(bin);
    for (const f of fs.readdirSync(state.binDir))
      fs.symlinkSync(
        fs.existsSync(path.join(process.env.PERF_BIN_DIR, f))
          ? path.join(process.env.PERF_BIN_DIR, f)
          : path.join(state.binDir, f),
        path.join(bin, f),
      );
    state.binDir = bin;
  }
  const rows = VARIANTS.map((variant) => ({ variant, first: [] as Sample[], restarts: [] as Sample[] }));
  try {
    // Round-robin over the variants, so a slow minute of the machine does not land on one variant only.
    for (let round = 0; round < ROUNDS; round++)
      for (const [vi, row] of rows.entries()) {
        const name = `b${vi}r${round}`;
        const tenant = await bootTenant(state, name, undefined, undefined, variantObjects(name, row.variant));
        const measure = async (perfFile?: string): Promise<Sample> => {
          await sleep(3000);
          const perf = perfFile
            ? spawn('perf', ['record', '-F', '499', '-a', '-g', '-o', perfFile], { stdio: 'ignore' })
            : undefined;
          if (perf) await sleep(1000);
          const m0 = machineBusyS();
          const w0 = Date.now();
          const trace = TRACE ? traceReadyz(tenant) : undefined;
          await tenant.start(300_000);
          const wallS = (Date.now() - w0) / 1000;
          if (trace) {
            const seen = Object.entries(trace()).sort((a, b) => a[1] - b[1]);
            console.log(`\n### ${tenant.name}: ms from the start to each readiness check's first pass`);
            for (const [check, ms] of seen) console.log(`${String(ms).padStart(6)}  ${check}`);
          }
          const m1 = machineBusyS();
          const backends = Number(
            psql(
              state,
              `SELECT count(*) FROM pg_stat_activity WHERE usename = '${tenantNames(tenant.name).databaseRole}'`,
            ).trim(),
          );
          const procs = ['kube-apiserver', 'kine'].map((c) => tenant.procs[c].pid);
          const procCpuS = procs.map(cpuTicks).reduce((a, b) => a + b, 0) / CLK_TCK;
          if (perf) {
            perf.kill('SIGINT');
            await new Promise((r) => perf.once('exit', r));
          }
          await tenant.stop();
          return { wallS, procCpuS, machineCpuS: m1 - m0, backends };
        };
        // Kept after the run for a closer look (perf report -i …).
        const perfFile =
          PERF && round === 0 ? path.join(os.tmpdir(), `kflex-boot-${row.variant}.perf.data`) : undefined;
        row.first.push(await measure(PERF_PHASE === 'first boot' ? perfFile : undefined));
        row.restarts.push(await measure(PERF_PHASE === 'restart' ? perfFile : undefined));
        console.error(
          JSON.stringify({ round, variant: row.variant, first: row.first.at(-1), restart: row.restarts.at(-1) }),
        );
        if (perfFile)
          for (const comm of ['kube-apiserver', 'postgres', 'kine'])
            console.log(
              `\n### perf, ${PERF_PHASE} of "${row.variant}": ${comm}, top symbols (with callees)\n` +
                execFileSync(
                  'perf',
                  ['report', '-i', perfFile, '--stdio', '--children', '--comm', comm, '--sort', 'symbol', '-g', 'none'],
                  { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] },
                )
                  .split('\n')
                  .filter((l) => /^\s+\d/.test(l))
                  .slice(0, 40)
                  .join('\n'),
            );
      }
  } finally {
    stop();
  }
  const cores = os.cpus().length;
  console.log(
    `\nOne tenant's start, ${cores} cores; median of ${ROUNDS} (min-max), each round a new tenant's first boot and one restart`,
  );
  console.log(
    '| flags | first boot: s to /readyz | CPU s (apiserver+kine) | machine CPU s | PG backends | restart: s to /readyz | CPU s | machine CPU s | PG backends | storm floor for 50 (s) |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const range = (xs: number[]) =>
    `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;
  const cells = (xs: Sample[]) =>
    (['wallS', 'procCpuS', 'machineCpuS', 'backends'] as const).map((k) => range(xs.map((x) => x[k]))).join(' | ');
  for (const r of rows)
    console.log(
      `| ${r.variant} | ${cells(r.first)} | ${cells(r.restarts)} | ` +
        `${((median(r.first.map((x) => x.machineCpuS)) * 50) / cores).toFixed(0)} |`,
    );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
