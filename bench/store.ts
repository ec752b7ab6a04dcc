// The test store's write and read rate against concurrency: the hosting API server of the tests and benches (real
// kube-apiserver on kine on PostgreSQL, loopback) serving Secret creates (3 KB each), Event creates and Secret GETs,
// 1, 4, 16 and 64 at a time. It says how far a controller's parallelism pays on this store (bench:controller).
// Usage: npm run bench:store   (needs scripts/prepare-binaries.sh)
import { KubeClient } from '../lib/kube/client';
import { startCluster } from '../test/cluster/harness';
import { benchPostgres } from './common';

const CONCURRENCY = (process.env.CONCURRENCY ?? '1,4,16,64').split(',').map(Number);
const NAMESPACES = 40;

async function main(): Promise<void> {
  const pg = await benchPostgres('kflex-bench-store-');
  const cluster = await startCluster(pg.state, 'store');
  const client = KubeClient.fromFile(cluster.kubeconfig);
  try {
    for (let i = 0; i < NAMESPACES; i++)
      await client.request('POST', '/api/v1/namespaces', { metadata: { name: `n${i}` } });
    let id = 0;
    const one: Record<string, (n: number) => Promise<unknown>> = {
      'Secret create': (n) =>
        client.request('POST', `/api/v1/namespaces/n${n % NAMESPACES}/secrets`, {
          metadata: { name: `s${n}` },
          stringData: { a: 'x'.repeat(3000) },
        }),
      'Event create': (n) =>
        client.request('POST', `/api/v1/namespaces/n${n % NAMESPACES}/events`, {
          metadata: { generateName: 'e.' },
          involvedObject: { kind: 'ConfigMap', name: 'x', namespace: `n${n % NAMESPACES}` },
          reason: 'Bench',
          message: 'bench',
          type: 'Normal',
        }),
      'Secret GET': (n) => client.get(`/api/v1/namespaces/n${n % NAMESPACES}/secrets/s${n % 500}`),
    };
    console.log(`| at once | ${Object.keys(one).join(' /s | ')} /s |`);
    console.log(
      `|---:|${Object.keys(one)
        .map(() => '---:')
        .join('|')}|`,
    );
    for (const c of CONCURRENCY) {
      const rates: string[] = [];
      for (const op of Object.values(one)) {
        const total = c === 1 ? 200 : 600;
        let left = total;
        const t0 = Date.now();
        await Promise.all(
          Array.from({ length: c }, async () => {
            while (left-- > 0) await op(id++);
          }),
        );
        rates.push(((total * 1000) / (Date.now() - t0)).toFixed(0));
      }
      console.log(`| ${c} | ${rates.join(' | ')} |`);
    }
  } finally {
    client.close();
    await cluster.stop();
    pg.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
