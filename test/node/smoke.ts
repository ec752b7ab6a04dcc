// Manual debugging aid (not a test): starts the test node, keeps it until /tmp/kflex-smoke-stop exists, stops it.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { psql, startPostgres, stopPostgres } from '../cluster/harness';
import { leftovers, startNode } from './node-cluster';

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kflex-smoke-'));
  const pg = await startPostgres(dir, dir);
  psql({ pgPort: pg.port, pgSocketDir: pg.socketDir }, `ALTER ROLE postgres PASSWORD 'smoke'`);
  try {
    const node = await startNode({
      binDir: process.env.KFLEX_BIN_DIR ?? path.join(os.homedir(), '.cache/cdk8s-kubeflex/bin'),
      logRoot: dir,
      pgPort: pg.port,
      pgPassword: 'smoke',
      pgSocketDir: pg.socketDir,
    });
    console.log(`node ready in ${node.readyMs} ms; KUBECONFIG=${node.kubeconfig} logs ${node.logDir}`);
    fs.writeFileSync('/tmp/smoke-kubeconfig', node.kubeconfig);
    while (!fs.existsSync('/tmp/kflex-smoke-stop')) await new Promise((r) => setTimeout(r, 500));
    fs.rmSync('/tmp/kflex-smoke-stop');
    const t = Date.now();
    await node.stop();
    console.log(`stopped in ${Date.now() - t} ms; leftovers:`, leftovers(node.dir));
  } finally {
    // Also when the node failed to start: the private PostgreSQL is ours to end.
    stopPostgres(pg.dataDir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
