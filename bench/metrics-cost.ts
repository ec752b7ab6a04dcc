// What one read of a tenant API server's /metrics costs (the controller reads it for idle timeouts and for parking
// kube-controller-manager): one idle tenant booted as processes, READS reads, the API server's CPU and the page size.
// Usage: READS=50 npx ts-node --transpile-only bench/metrics-cost.ts (needs scripts/prepare-binaries.sh; loopback).
import * as https from 'https';
import { adminAccess, bootTenant } from '../test/cluster/tenant';
import { benchPostgres } from './common';
import { cpuTicks, variantObjects } from './density';

const READS = Number(process.env.READS ?? 50);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const { state, stop } = await benchPostgres('kflex-metrics-');
  try {
    const tenant = await bootTenant(state, 'mc', undefined, undefined, variantObjects('mc', 'ours'));
    await tenant.start(300_000);
    await sleep(20_000);
    const { server, tls } = adminAccess(tenant);
    const api = tenant.procs['kube-apiserver'].pid;
    const get = () =>
      new Promise<number>((resolve, reject) => {
        https
          .get(`${server}/metrics`, { ...tls, agent: false }, (res) => {
            let n = 0;
            res.on('data', (d: Buffer) => (n += d.length));
            res.on('end', () => resolve(n));
          })
          .on('error', reject);
      });
    // Idle baseline over the same time, then the reads one after the other.
    const b0 = cpuTicks(api);
    const t0 = Date.now();
    await sleep(10_000);
    const idleTicksPerMs = (cpuTicks(api) - b0) / (Date.now() - t0);
    const c0 = cpuTicks(api);
    const w0 = Date.now();
    let bytes = 0;
    for (let i = 0; i < READS; i++) bytes = await get();
    const wall = Date.now() - w0;
    const ticks = cpuTicks(api) - c0 - idleTicksPerMs * wall;
    console.log(
      `/metrics: ${(bytes / 1024).toFixed(0)} KiB; ${READS} reads in ${wall} ms; the API server's CPU per read ` +
        `(idle subtracted, TLS handshake included): ${((ticks * 10) / READS).toFixed(1)} ms`,
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
