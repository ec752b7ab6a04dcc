// kubeflex-wait-for-apiserver, the hook Jobs' init container, run as its real binary.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ClusterState, freePort, loadState } from './harness';

const state: ClusterState = loadState();
const suite = state.skipped ? describe.skip : describe;
if (state.skipped) console.warn(`### SKIPPED kubeflex-wait-for-apiserver tests: ${state.skipped}`);
const BIN = path.resolve(__dirname, '../../build/lib/controller/wait-for-apiserver.js');
const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });

suite('kubeflex-wait-for-apiserver', () => {
  test('exits 0 once the API server answers discovery', () => {
    const r = run([`--kubeconfig=${state.kubeconfig}`, '--timeout=20s']);
    expect(r.stderr).toBe(`API server ${state.server} is answering\n`);
    expect(r.status).toBe(0);
  });

  test('fails when nothing answers before the timeout', async () => {
    const port = await freePort();
    const kc = path.join(state.dir, 'dead.kubeconfig');
    fs.writeFileSync(kc, fs.readFileSync(state.kubeconfig, 'utf8').replace(state.server, `https://127.0.0.1:${port}`));
    const r = run([`--kubeconfig=${kc}`, '--timeout=2s', '--interval=500ms']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^waiting: GET https:\/\/127\.0\.0\.1:\d+\/api\/v1: connect ECONNREFUSED/);
    expect(r.stderr).toMatch(/gave up after 2s: /);
  });

  test('fails when the kubeconfig flag is missing', () => {
    const r = run([]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('kubeflex-wait-for-apiserver: --kubeconfig is required\n');
  });
});
