// The controller's work queue: de-duplication, one reconcile per key, and delays that never overflow Node's timers.
import { backoffDelayMs, MAX_TIMER_MS, notReadyDelayMs, WorkQueue } from '../lib/kube/work-queue';

const warnings: Error[] = [];
const onWarning = (w: Error) => warnings.push(w);
beforeAll(() => process.on('warning', onWarning));
afterAll(() => process.off('warning', onWarning));

async function nextWithin(q: WorkQueue, ms: number): Promise<string | undefined> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const key = await q.next(ac.signal);
  clearTimeout(timer);
  return key;
}

test('a delay beyond 2^31-1 ms (a one-year token renewal) does not fire at once and raises no TimeoutOverflowWarning', async () => {
  const q = new WorkQueue();
  q.add('ext', 365 * 86400 * 1000 * 0.8);
  expect(await nextWithin(q, 300)).toBeUndefined();
  await new Promise((r) => setImmediate(r));
  expect(warnings.filter((w) => w.name === 'TimeoutOverflowWarning')).toEqual([]);
  q.stop();
  expect(MAX_TIMER_MS).toBe(2147483647);
});

test('delays are capped at the resync period', async () => {
  const q = new WorkQueue(100);
  const t0 = Date.now();
  q.add('ext', 2.5e10);
  expect(await nextWithin(q, 2000)).toBe('ext');
  expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
  expect(Date.now() - t0).toBeLessThan(1500);
  q.stop();
});

test('adds de-duplicate; an add during a reconcile runs once more after it; an earlier delay wins', async () => {
  const q = new WorkQueue(10_000);
  q.add('a');
  q.add('a');
  expect(await nextWithin(q, 100)).toBe('a');
  expect(await nextWithin(q, 50)).toBeUndefined();
  q.add('a'); // while 'a' is being reconciled
  expect(await nextWithin(q, 50)).toBeUndefined();
  q.done('a');
  expect(await nextWithin(q, 100)).toBe('a');
  q.done('a');
  q.add('b', 5_000);
  q.add('b', 20);
  expect(await nextWithin(q, 1000)).toBe('b');
  q.stop();
});

test('backoff: 0.5 s doubling per failure, capped at one minute', () => {
  expect([1, 2, 3, 7, 8, 30].map(backoffDelayMs)).toEqual([500, 1000, 2000, 32_000, 60_000, 60_000]);
});

test('a plane that stays not Ready is looked at after 15 s, 30 s, 60 s ... and at most once per resync period', () => {
  const delays = [1, 2, 3, 4, 5, 6, 7, 50].map((n) => notReadyDelayMs(n, 15_000, 300_000));
  expect(delays).toEqual([15_000, 30_000, 60_000, 120_000, 240_000, 300_000, 300_000, 300_000]);
  // 500 planes that never become Ready: passes in the first hour, instead of 500 x 240 at a fixed 15 s.
  let t = 0;
  let passes = 0;
  for (let n = 1; t < 3_600_000; n++) {
    t += notReadyDelayMs(n, 15_000, 300_000);
    passes++;
  }
  expect(500 * passes).toBeLessThan((500 * 240) / 10);
});

test("the resync's keys wait behind every other add; an event's add of a key the resync queued moves it ahead", async () => {
  const q = new WorkQueue(10_000);
  for (const k of ['r1', 'r2', 'r3', 'r4']) q.addBackground(k);
  q.add('wake'); // a wake after a resync queued every plane
  q.add('r3'); // an event for a plane the resync had queued too
  q.addBackground('wake'); // already queued: keeps its place
  const order: (string | undefined)[] = [];
  for (let i = 0; i < 5; i++) {
    const k = await nextWithin(q, 100);
    order.push(k);
    if (k) q.done(k);
  }
  expect(order).toEqual(['wake', 'r3', 'r1', 'r2', 'r4']);
  expect(await nextWithin(q, 50)).toBeUndefined();
  // A resync's key that is running is not queued again by the resync; an event's add runs it once more after.
  q.addBackground('a');
  expect(await nextWithin(q, 100)).toBe('a');
  q.addBackground('a');
  expect(await nextWithin(q, 50)).toBeUndefined();
  q.add('a');
  q.done('a');
  expect(await nextWithin(q, 100)).toBe('a');
  q.done('a');
  q.stop();
});
