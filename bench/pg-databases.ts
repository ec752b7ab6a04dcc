// What a tenant's database costs PostgreSQL at rest, nobody connected: a private PostgreSQL 15 (the bench's, as the
// bundled one runs it but for fsync), N databases each holding a kine-shaped table with a few hundred rows, and the
// server's CPU over WINDOW_S for each autovacuum_naptime in NAPTIMES (seconds). Autovacuum's launcher visits every
// database once per naptime, and each visit is a worker process: a cost per registered tenant, asleep or not.
// Usage: N=200 NAPTIMES=60,300 WINDOW_S=60 npm run bench:pg-databases
import { psql } from '../test/cluster/harness';
import { benchPostgres } from './common';
import { CLK_TCK, postgresCpuTicks } from './density';

const N = Number(process.env.N ?? 200);
const NAPTIMES = (process.env.NAPTIMES ?? '60,300').split(',').map(Number);
const WINDOW_S = Number(process.env.WINDOW_S ?? 60);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The server's CPU over WINDOW_S, in mCPU: every process of it, and its backends that ended meanwhile. */
async function measure(benchDir: string): Promise<number> {
  const c0 = postgresCpuTicks(benchDir);
  await sleep(WINDOW_S * 1000);
  return ((postgresCpuTicks(benchDir) - c0) / CLK_TCK / WINDOW_S) * 1000;
}

async function main(): Promise<void> {
  const pg = await benchPostgres('kflex-bench-pgdb-');
  try {
    const db = { pgPort: pg.state.pgPort, pgSocketDir: pg.state.pgSocketDir };
    const setNaptime = async (s: number) => {
      psql(db, `ALTER SYSTEM SET autovacuum_naptime = '${s}s'`);
      psql(db, 'SELECT pg_reload_conf()');
      await sleep(5_000);
    };
    await setNaptime(NAPTIMES[0]);
    const base = await measure(pg.state.dir);
    console.log(`no tenant database: ${base.toFixed(1)} mCPU over ${WINDOW_S} s`);
    for (let i = 1; i <= N; i++) {
      psql(db, `CREATE DATABASE t${i}`);
      psql(
        db,
        'CREATE TABLE kine (id BIGSERIAL PRIMARY KEY, name TEXT, created INTEGER, deleted INTEGER, create_revision ' +
          'BIGINT, prev_revision BIGINT, lease INTEGER, value BYTEA, old_value BYTEA); ' +
          'CREATE INDEX kine_name_index ON kine (name); ' +
          "INSERT INTO kine (name, created, deleted, create_revision, prev_revision, lease, value) SELECT '/registry/x/' || g, 1, 0, g, 0, 0, decode(repeat('ab', 500), 'hex') FROM generate_series(1, 500) g",
        `t${i}`,
      );
    }
    // Each database visited once (and its statistics in place) before measuring.
    await sleep(Math.min(...NAPTIMES) * 1000 + 10_000);
    console.log(`\n| autovacuum_naptime | server CPU with ${N} databases | per database |`);
    console.log('|---:|---:|---:|');
    for (const s of NAPTIMES) {
      await setNaptime(s);
      const m = await measure(pg.state.dir);
      console.log(`| ${s} s | ${m.toFixed(1)} mCPU | ${((m - base) / N).toFixed(3)} mCPU |`);
    }
  } finally {
    pg.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
