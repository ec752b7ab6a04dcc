// A burst of concurrent writes to one k8s tenant booted from its synthesized manifests (real kube-apiserver, kine and
// PostgreSQL as processes, loopback): WRITES ConfigMap creates at once, by a user that is not system:masters (the
// admin impersonates one: masters and the API server's own clients are exempt from its in-flight limits), retried
// after a second when answered 429, as client-go does. Prints, per variant and round, the time until all were
// answered and the final status codes. kine v0.17 deadlocks when as many writes as its pool has connections run at
// once (lib/wire.ts, kineWriteLimit): `ours+mut200` (the API server's own write limit) shows it.
// Usage: VARIANTS=ours,ours+mut200 WRITES=200 ROUNDS=2 npm run bench:write-burst (needs scripts/prepare-binaries.sh)
import { kubectl } from '../test/cluster/harness';
import { adminAccess, bootTenant, writeBurst } from '../test/cluster/tenant';
import { benchPostgres } from './common';
import { variantObjects } from './density';

const VARIANTS = (process.env.VARIANTS ?? 'ours,ours+mut200').split(',');
const WRITES = Number(process.env.WRITES ?? 200);
const ROUNDS = Number(process.env.ROUNDS ?? 2);

async function main(): Promise<void> {
  const { state, stop } = await benchPostgres('kflex-write-burst-');
  const rows: string[] = [];
  try {
    for (const [vi, variant] of VARIANTS.entries()) {
      const name = `w${vi}`;
      const tenant = await bootTenant(state, name, undefined, undefined, variantObjects(name, variant));
      await tenant.start(300_000);
      const access = adminAccess(tenant);
      kubectl(tenant, ['create', 'clusterrolebinding', 'burst', '--clusterrole=cluster-admin', '--user=burst']);
      for (let round = 0; round < ROUNDS; round++) {
        const { codes, refused, seconds } = await writeBurst(access, WRITES, 'burst', `r${round}`);
        const counts: Record<number, number> = {};
        for (const c of codes) counts[c] = (counts[c] ?? 0) + 1;
        const summary = Object.entries(counts)
          .map(([c, n]) => `${n} × ${c}`)
          .join(', ');
        rows.push(`| ${variant} | ${round + 1} | ${seconds.toFixed(1)} | ${summary} | ${refused} |`);
        console.error(rows.at(-1));
      }
      await tenant.stop();
    }
  } finally {
    stop();
  }
  console.log(`\n${WRITES} ConfigMap creates at once by one user, 429s retried after 1 s`);
  console.log('| variant | round | s until all answered | final status codes | 429s retried |');
  console.log('|---|---:|---:|---|---:|');
  for (const r of rows) console.log(r);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
