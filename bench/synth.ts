// Synth time and peak memory versus number of k8s-type tenants. Each size runs in a fresh process so peak RSS is
// that size's own; each is repeated and the median reported. Usage: npm run bench [-- sizes...]
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { K8sControlPlane, KubeflexHosting, synthesizeAtomically } from '../lib';

const REPEATS = 3;

function child(tenants: number, outdir: string): void {
  const start = process.hrtime.bigint();
  synthesizeAtomically((app) => {
    const hosting = new KubeflexHosting(app, 'hosting');
    for (let i = 0; i < tenants; i++) new K8sControlPlane(app, `tenant-${i}`, { hosting });
  }, outdir);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const files = fs.readdirSync(outdir).length;
  process.stdout.write(JSON.stringify({ ms, maxRssMiB: process.resourceUsage().maxRSS / 1024, files }) + '\n');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function main(): void {
  if (process.argv[2] === '--child') {
    child(Number(process.argv[3]), process.argv[4]);
    return;
  }
  const sizes = process.argv.slice(2).map(Number).filter(Boolean);
  const rows: { tenants: number; ms: number; rss: number }[] = [];
  for (const tenants of sizes.length ? sizes : [1, 10, 100, 1000]) {
    const runs = [];
    for (let r = 0; r < REPEATS; r++) {
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'kflex-bench-'));
      const res = spawnSync(process.execPath, [__filename, '--child', String(tenants), path.join(out, 'dist')], {
        encoding: 'utf8',
      });
      fs.rmSync(out, { recursive: true, force: true });
      if (res.status !== 0) throw new Error(res.stderr);
      runs.push(JSON.parse(res.stdout));
    }
    rows.push({ tenants, ms: median(runs.map((x) => x.ms)), rss: median(runs.map((x) => x.maxRssMiB)) });
  }
  console.log(`node ${process.version}, ${os.cpus().length} cores, median of ${REPEATS} runs`);
  console.log('| tenants | synth time (ms) | ms per tenant | peak RSS (MiB) |');
  console.log('|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.tenants} | ${r.ms.toFixed(0)} | ${(r.ms / r.tenants).toFixed(2)} | ${r.rss.toFixed(0)} |`);
  }
  const first = rows[0];
  const last = rows[rows.length - 1];
  if (rows.length > 1) {
    console.log(
      `growth ${first.tenants} -> ${last.tenants} tenants: time x${(last.ms / first.ms).toFixed(1)}, ` +
        `per-tenant time ratio x${(last.ms / last.tenants / (first.ms / first.tenants)).toFixed(2)}`,
    );
  }
}

main();
