// The one control loop of the runtime parts, in the shape controller-runtime users know: list+watch feeds a
// de-duplicating work queue, workers run a reconcile per key (one at a time per key), a reconcile returns done or
// requeue-after, an error is retried with per-key exponential back-off, a TerminalError is not retried (the next event
// or the resync looks again), and a periodic resync re-adds every key (behind the keys of events), spread over the
// period. The controller, the materializer and the activator are reconcilers on it.
import { setMaxListeners } from 'events';
import { KubeClient } from './client';
import type { Logger } from './log';
import { backoffDelayMs, WorkQueue } from './work-queue';

/** What a reconcile asks for: nothing (done), or to look again after a delay. */
export interface Outcome {
  readonly requeueAfterMs?: number;
}

/** An error no retry can fix (a spec to change): logged, not retried; the next event or the resync looks again. */
export class TerminalError extends Error {}

/** One watched collection: its REST path and what an event of it adds to the queue. */
export interface LoopWatch {
  readonly kind: string;
  readonly path: string;
  readonly onEvent: (type: string, obj: any) => void;
}

/** Options of a ControlLoop. */
export interface ControlLoopOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly watches: readonly LoopWatch[];
  /** Reconciles one key. */
  readonly reconcile: (key: string) => Promise<Outcome | void>;
  /** The keys the resync re-adds, each once per period at an offset of its own. */
  readonly keys: () => Iterable<string>;
  /** Also runs at every resync (work outside any key). @default - nothing */
  readonly onResync?: () => void;
  /** Resync period, also the longest delay the queue keeps. */
  readonly resyncMs: number;
  /** Parallel reconciles. @default 1 */
  readonly workers?: number;
  /** Name of the key in log lines. @default "key" */
  readonly keyField?: string;
}

/** Steps of one resync period: 15 s each at the controller's 15 min. */
export const RESYNC_SLICES = 60;

/** The resync step of a key (FNV-1a of its name): stable, so each key is looked at once per period. */
export function resyncSlice(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return h % RESYNC_SLICES;
}

export class ControlLoop {
  private readonly queue: WorkQueue;
  private readonly abort = new AbortController();
  private readonly failures = new Map<string, number>();
  private readonly synced = new Set<string>();
  private readonly workersDone: Promise<void>[] = [];
  private resyncTimer?: NodeJS.Timeout;

  public constructor(private readonly opts: ControlLoopOptions) {
    this.queue = new WorkQueue(opts.resyncMs);
    // Every idle worker and every watch listens for the stop: more than Node's default of 10 is expected here.
    setMaxListeners((opts.workers ?? 1) + opts.watches.length + 10, this.abort.signal);
  }

  private get keyField(): string {
    return this.opts.keyField ?? 'key';
  }

  /** True once every watch has listed once. */
  public get isSynced(): boolean {
    return this.synced.size >= this.opts.watches.length;
  }

  /** Queues `key` now, or after `delayMs` (the earliest of several delayed adds wins). */
  public add(key: string, delayMs = 0): void {
    this.queue.add(key, delayMs);
  }

  /** Starts the watches, the workers and the resync. */
  public start(): void {
    const { log } = this.opts;
    for (const w of this.opts.watches) {
      this.opts.client.runListWatch(
        w.path,
        w.onEvent,
        () => {
          if (!this.synced.has(w.kind)) log.info('watch synced', { kind: w.kind });
          this.synced.add(w.kind);
        },
        (err) => log.warn('watch interrupted; re-listing', { kind: w.kind, error: err.message }),
        this.abort.signal,
      );
    }
    for (let i = 0; i < (this.opts.workers ?? 1); i++) this.workersDone.push(this.work());
    // The resync goes in RESYNC_SLICES steps: each key in the step its name hashes to. All keys at once were 200
    // passes of the hosting API server's reads at one instant every period (~6 CPU-s at 200 planes), which a wake
    // storm happening then waited behind (BENCHMARKS.md, issue 27 round 11).
    let step = 0;
    this.resyncTimer = setInterval(() => {
      step = (step + 1) % RESYNC_SLICES;
      if (step === 0) this.opts.onResync?.();
      for (const k of this.opts.keys()) if (resyncSlice(k) === step) this.queue.addBackground(k);
    }, this.opts.resyncMs / RESYNC_SLICES);
  }

  /** Stops watches, workers and the resync, and waits for running reconciles to finish. */
  public async stop(): Promise<void> {
    this.abort.abort();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.queue.stop();
    await Promise.all(this.workersDone);
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.next(this.abort.signal);
      if (key === undefined) return;
      // A pass that takes minutes is stuck somewhere: say which, so it can be found (requests have deadlines).
      const slow = setTimeout(
        () => this.opts.log.warn('reconcile still running after 120 s', { [this.keyField]: key }),
        120_000,
      );
      try {
        const outcome = await this.opts.reconcile(key);
        this.failures.delete(key);
        if (outcome?.requeueAfterMs !== undefined) this.queue.add(key, outcome.requeueAfterMs);
      } catch (e) {
        if (e instanceof TerminalError) {
          this.failures.delete(key);
          this.opts.log.warn('not retried until the object changes', { [this.keyField]: key, error: e.message });
        } else {
          const n = (this.failures.get(key) ?? 0) + 1;
          this.failures.set(key, n);
          const delay = backoffDelayMs(n);
          this.opts.log.warn('requeue with backoff', {
            [this.keyField]: key,
            delayMs: delay,
            error: (e as Error).message,
          });
          this.queue.add(key, delay);
        }
      } finally {
        clearTimeout(slow);
        this.queue.done(key);
      }
    }
  }
}
