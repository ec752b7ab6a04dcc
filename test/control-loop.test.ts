// The one control loop: done, requeue-after, retry with back-off on an error, no retry on a TerminalError.
import { KubeClient } from '../lib/kube/client';
import { ControlLoop, TerminalError } from '../lib/kube/control-loop';
import { jsonLogger } from '../lib/kube/log';

const quiet = jsonLogger('error', () => undefined);

function loopWith(reconcile: (key: string) => Promise<{ requeueAfterMs?: number } | void>): ControlLoop {
  // No watches: keys are added by the test. The client is never used without watches.
  return new ControlLoop({
    client: {} as KubeClient,
    log: quiet,
    watches: [],
    reconcile,
    keys: () => [],
    resyncMs: 60_000,
  });
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('an error is retried with back-off, a TerminalError is not, requeue-after looks again', async () => {
  const calls: string[] = [];
  let failOnce = true;
  let again = 2;
  const loop = loopWith(async (key) => {
    calls.push(key);
    if (key === 'flaky' && failOnce) {
      failOnce = false;
      throw new Error('transient');
    }
    if (key === 'bad') throw new TerminalError('spec refused');
    if (key === 'poll' && again-- > 0) return { requeueAfterMs: 20 };
    return undefined;
  });
  loop.start();
  for (const k of ['flaky', 'bad', 'poll']) loop.add(k);
  await settle(1_200); // the first back-off is 500 ms
  await loop.stop();
  expect(calls.filter((c) => c === 'flaky')).toHaveLength(2);
  expect(calls.filter((c) => c === 'bad')).toHaveLength(1);
  expect(calls.filter((c) => c === 'poll')).toHaveLength(3);
  expect(loop.isSynced).toBe(true); // no watches: nothing to list
});

test("a key added just after a resync is reconciled before the resync's keys", async () => {
  const calls: string[] = [];
  const planes = Array.from({ length: 20 }, (_, i) => `p${i}`);
  const loop = new ControlLoop({
    client: {} as KubeClient,
    log: quiet,
    watches: [],
    reconcile: async (key) => {
      calls.push(key);
      await settle(5); // a pass of the hosting API server's reads
    },
    keys: () => planes,
    resyncMs: 150,
  });
  let woken = false;
  loop.start();
  // The first resync queues all 20 at once; a wake comes a moment later (one worker: it finishes one pass first).
  while (!woken) {
    await settle(2);
    if (calls.length > 0) {
      loop.add('wake');
      woken = true;
    }
  }
  await settle(200);
  await loop.stop();
  expect(calls.indexOf('wake')).toBeLessThanOrEqual(2);
  expect(calls.filter((c) => c === 'p19').length).toBeGreaterThanOrEqual(1);
});
