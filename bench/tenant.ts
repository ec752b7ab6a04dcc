// Time from start to tenant /readyz and resident memory of one idle k8s tenant (kube-apiserver + kine +
// kube-controller-manager, with our synthesized flags), on a private PostgreSQL. Median of several runs.
// Usage: npm run bench:tenant (needs scripts/prepare-binaries.sh; runs processes on loopback only).
import * as fs from 'fs';
import { bootTenant } from '../test/cluster/tenant';
import { benchPostgres } from './common';

const RUNS = Number(process.env.RUNS ?? 3);
const IDLE_MS = Number(process.env.IDLE_MS ?? 30_000);

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const { state, stop } = await benchPostgres('kflex-bench-');
  const rows: { ready: number; apiserver: number; kine: number; kcm: number; total: number }[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const t = await bootTenant(state, `bench-${i}`);
      const ready = await t.start();
      await new Promise((r) => setTimeout(r, IDLE_MS));
      const r = {
        ready,
        apiserver: rssMiB(t.procs['kube-apiserver'].pid!),
        kine: rssMiB(t.procs.kine.pid!),
        kcm: rssMiB(t.procs['kube-controller-manager'].pid!),
        total: 0,
      };
      r.total = r.apiserver + r.kine + r.kcm;
      rows.push(r);
      await t.stop();
    }
  } finally {
    stop();
  }
  console.log(`${RUNS} runs, RSS read after ${IDLE_MS / 1000} s idle; medians:`);
  console.log(
    '| start to /readyz (ms) | kube-apiserver RSS (MiB) | kine RSS (MiB) | KCM RSS (MiB) | tenant total (MiB) |',
  );
  console.log('|---:|---:|---:|---:|---:|');
  const m = (k: keyof (typeof rows)[0]) => median(rows.map((r) => r[k])).toFixed(0);
  console.log(`| ${m('ready')} | ${m('apiserver')} | ${m('kine')} | ${m('kcm')} | ${m('total')} |`);
  console.log('all runs: ' + rows.map((r) => `${r.ready}ms/${r.total.toFixed(0)}MiB`).join(', '));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
