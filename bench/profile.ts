// Where an idle k8s tenant's CPU goes: one tenant booted from its synthesized Deployments as processes (as the
// density bench does; VARIANT as there, e.g. ours+slowprogress), per-process CPU over IDLE_S after SETTLE_S, and a Go
// CPU profile of its kube-apiserver over the same window, then its live heap after a forced GC (profiling switched on
// for this run only).
// Usage: VARIANT=ours SETTLE_S=30 IDLE_S=60 npm run bench:profile (needs scripts/prepare-binaries.sh; loopback only).
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as https from 'https';
import * as path from 'path';
import { adminAccess, bootTenant } from '../test/cluster/tenant';
import { benchPostgres } from './common';
import { cpuTicks, rssAnonMiB, variantObjects } from './density';

const SETTLE_S = Number(process.env.SETTLE_S ?? 30);
const IDLE_S = Number(process.env.IDLE_S ?? 60);
const VARIANT = process.env.VARIANT ?? 'ours';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const { state, stop } = await benchPostgres('kflex-profile-');
  try {
    const objects = variantObjects('prof', VARIANT);
    for (const o of objects.filter((x: any) => x.kind === 'Deployment'))
      for (const c of o.spec.template.spec.containers)
        c.args = (c.args ?? []).map((a: string) => (a === '--profiling=false' ? '--profiling=true' : a));
    const tenant = await bootTenant(state, 'prof', undefined, undefined, objects);
    await tenant.start(300_000);
    await sleep(SETTLE_S * 1000);
    const { server, tls } = adminAccess(tenant);
    const before = Object.fromEntries(Object.entries(tenant.procs).map(([c, p]) => [c, cpuTicks(p.pid)]));
    const get = (what: string, file: string) =>
      new Promise<void>((resolve, reject) => {
        https
          .get(
            `${server}/debug/pprof/${what}`,
            {
              ...tls,
              timeout: (IDLE_S + 30) * 1000,
            },
            (res) => {
              if (res.statusCode !== 200) return reject(new Error(`pprof ${what}: HTTP ${res.statusCode}`));
              res.pipe(fs.createWriteStream(file)).on('finish', resolve).on('error', reject);
            },
          )
          .on('error', reject);
      });
    const file = path.join(state.dir, 'kube-apiserver.pprof');
    await get(`profile?seconds=${IDLE_S}`, file);
    const anon = Object.fromEntries(Object.entries(tenant.procs).map(([c, p]) => [c, rssAnonMiB(p.pid)]));
    // The live heap after a forced GC: what the API server's anonymous memory holds at idle.
    const heap = path.join(state.dir, 'kube-apiserver.heap');
    await get('heap?gc=1', heap);
    console.log(`idle CPU of tenant "${VARIANT}" over ${IDLE_S} s (after ${SETTLE_S} s settle):`);
    for (const [c, p] of Object.entries(tenant.procs))
      console.log(
        `  ${c}: ${(((cpuTicks(p.pid) - before[c]) * 10) / IDLE_S).toFixed(1)} mCPU, RssAnon ${anon[c].toFixed(0)} MiB`,
      );
    console.log('\nkube-apiserver CPU profile (go tool pprof -top):');
    console.log(
      execFileSync('go', ['tool', 'pprof', '-top', '-nodecount=35', path.join(state.binDir, 'kube-apiserver'), file], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    console.log('\nkube-apiserver live heap after GC (go tool pprof -top -sample_index=inuse_space):');
    console.log(
      execFileSync(
        'go',
        [
          'tool',
          'pprof',
          '-top',
          '-nodecount=30',
          '-sample_index=inuse_space',
          path.join(state.binDir, 'kube-apiserver'),
          heap,
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
      ),
    );
    await tenant.stop();
  } finally {
    stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
