// Removes what a test node left behind when its run died before teardown (processes, mounts, iptables chains,
// interfaces, cgroups, the lock): `KFLEX_NODE_DIR=/tmp/kflex-node-XXXXXX npx ts-node --transpile-only
// scripts/node-cleanup.ts` (an environment variable: processes are found by their command lines, ours must not match).
// The next node start does the same on its own when it finds the lock of a dead run.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import { cleanupMachine, leftovers } from '../test/node/node-cluster';

async function main(): Promise<void> {
  const dir = process.env.KFLEX_NODE_DIR ?? '';
  if (!/^\/tmp\/kflex-node-[A-Za-z0-9]+$/.test(dir)) throw new Error('set KFLEX_NODE_DIR=/tmp/kflex-node-XXXXXX');
  const pids = spawnSync('pgrep', ['-f', dir], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((p) => p !== process.pid);
  await cleanupMachine(dir, pids, true);
  fs.rmSync('/run/kflex-test-node.lock', { force: true });
  const left = leftovers(dir);
  console.log(left.length ? `left: ${left.join('; ')}` : 'clean');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
