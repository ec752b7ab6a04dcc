// The one control loop: done, requeue-after, retry with back-off on an error, no retry on a TerminalError.
import { KubeClient } from '../lib/kube/client';
import { ControlLoop, RESYNC_SLICES, TerminalError } from '../lib/kube/control-loop';
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

test('the resync looks at each key once per period, a few at a time (its keys wait behind events: work-queue.test)', async () => {
  jest.useFakeTimers();
  try {
    const calls: string[] = [];
    const planes = Array.from({ length: 200 }, (_, i) => `plane-${i}`);
    let resyncs = 0;
    const loop = new ControlLoop({
      client: {} as KubeClient,
      log: quiet,
      watches: [],
      reconcile: async (key) => {
        calls.push(key);
      },
      keys: () => planes,
      onResync: () => resyncs++,
      resyncMs: 60_000,
      workers: 1,
    });
    loop.start();
    const perStep: number[] = [];
    for (let i = 0; i < RESYNC_SLICES; i++) {
      const before = calls.length;
      await jest.advanceTimersByTimeAsync(60_000 / RESYNC_SLICES);
      perStep.push(calls.length - before);
    }
    // One period: every key exactly once, the install-wide work once, and no step holds more than a tenth of them.
    expect([...calls].sort()).toEqual([...planes].sort());
    expect(resyncs).toBe(1);
    expect(Math.max(...perStep)).toBeLessThanOrEqual(20);
    expect(perStep.filter((n) => n > 0).length).toBeGreaterThan(RESYNC_SLICES / 2);
    await loop.stop();
  } finally {
    jest.useRealTimers();
  }
});
