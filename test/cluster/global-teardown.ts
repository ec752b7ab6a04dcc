import * as fs from 'fs';
import * as path from 'path';
import { killAll, loadState, STATE_FILE, stopPostgres } from './harness';

/** Stops every process and removes the temp dir; process logs stay in .test-logs/ (the last 3 runs). */
export default async function globalTeardown(): Promise<void> {
  if (!fs.existsSync(STATE_FILE)) return;
  const state = loadState();
  fs.rmSync(STATE_FILE, { force: true });
  if (state.skipped) return;
  // Tests may start extra processes (tenant control planes); they record their pids under the run dir.
  const extra = fs.existsSync(path.join(state.dir, 'pids'))
    ? fs
        .readdirSync(path.join(state.dir, 'pids'))
        .map((f) => Number(fs.readFileSync(path.join(state.dir, 'pids', f), 'utf8')))
    : [];
  await killAll([...extra, ...Object.values(state.pids)]);
  stopPostgres(state.pgDataDir);
  fs.rmSync(state.dir, { recursive: true, force: true });
  const logsRoot = path.dirname(state.logDir);
  const runs = fs
    .readdirSync(logsRoot)
    .map((d) => path.join(logsRoot, d))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  for (const old of runs.slice(3)) fs.rmSync(old, { recursive: true, force: true });
}
