// The controller's work queue, client-go style: one pass per key at a time, a key added while its pass runs is
// run again after it, delayed adds keep the earliest time. The resync's adds wait behind every other add: a resync
// queues every plane at once, and a wake queued behind 200 of them waited 7.4 s (BENCHMARKS.md, issue 27 round 9).

/** Node's timers hold at most 2^31-1 ms; a longer delay fires after 1 ms (TimeoutOverflowWarning). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A work queue keyed by ControlPlane name: one reconcile per key at a time, delayed adds keep the earliest.
 * Delays are capped at `maxDelayMs` (the resync period: a later look is pointless, the resync comes first).
 */
export class WorkQueue {
  private readonly ready: string[] = [];
  /** Keys of the resync only, served when `ready` is empty. */
  private readonly background: string[] = [];
  private readonly inBackground = new Set<string>();
  private readonly queued = new Set<string>();
  private readonly active = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private waiters: (() => void)[] = [];

  public constructor(private readonly maxDelayMs = MAX_TIMER_MS) {}

  public add(key: string, requestedDelayMs = 0): void {
    const delayMs = Math.min(requestedDelayMs, this.maxDelayMs, MAX_TIMER_MS);
    if (delayMs > 0) {
      const at = Date.now() + delayMs;
      const t = this.timers.get(key);
      if (t && t.at <= at) return;
      if (t) clearTimeout(t.timer);
      this.timers.set(key, {
        at,
        timer: setTimeout(() => {
          this.timers.delete(key);
          this.add(key);
        }, delayMs),
      });
      return;
    }
    if (this.active.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) {
      // Queued by the resync: an event's add moves it to the front lane.
      if (this.inBackground.delete(key)) {
        this.background.splice(this.background.indexOf(key), 1);
        this.ready.push(key);
      }
      return;
    }
    this.queued.add(key);
    this.ready.push(key);
    this.waiters.shift()?.();
  }

  /**
   * Queues `key` behind every key `add` queued, now or later (the resync: nothing changed that it knows of). A key
   * already queued or running keeps its place.
   */
  public addBackground(key: string): void {
    if (this.active.has(key) || this.queued.has(key)) return;
    this.queued.add(key);
    this.inBackground.add(key);
    this.background.push(key);
    this.waiters.shift()?.();
  }

  public async next(signal: AbortSignal): Promise<string | undefined> {
    while (!signal.aborted) {
      let key = this.ready.shift();
      if (key === undefined) {
        key = this.background.shift();
        if (key !== undefined) this.inBackground.delete(key);
      }
      if (key !== undefined) {
        this.queued.delete(key);
        this.active.add(key);
        return key;
      }
      let onAbort = () => {};
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        // An aborted wait leaves no stale waiter behind to swallow the next add's wake-up.
        onAbort = () => {
          this.waiters = this.waiters.filter((w) => w !== resolve);
          resolve();
        };
        signal.addEventListener('abort', onAbort, { once: true });
      });
      signal.removeEventListener('abort', onAbort);
    }
    return undefined;
  }

  public done(key: string): void {
    this.active.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  public stop(): void {
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w();
  }
}

/** Per-key retry delay after `failures` failures in a row: 0.5 s doubling up to one minute. */
export const backoffDelayMs = (failures: number) => Math.min(500 * 2 ** (failures - 1), 60_000);

/**
 * When to look again at a plane after its `passes`-th pass in a row that found it not Ready: `baseMs`, doubling,
 * at most `maxMs` (the resync period). A broken, pending or sleeping plane then costs one pass per resync, not one per
 * `baseMs`; watch events of its namespace reset the count, so a plane that comes up is seen at once.
 */
export const notReadyDelayMs = (passes: number, baseMs: number, maxMs: number) =>
  Math.min(baseMs * 2 ** Math.min(passes - 1, 30), maxMs);
