// The controller loop: watches feed a de-duplicating work queue; a few workers reconcile; errors back off per key;
// a periodic resync catches what no watch reports (Secrets are not watched: the controller may read them only in
// namespaces it is bound in, so a cluster-wide Secret watch would need cluster-wide Secret access).
import * as http from 'http';
import { ServerBreaker } from '../datastore/connect';
import { dropTenantDatabase } from '../datastore/drop';
import { provisionTenantDatabase } from '../datastore/provision';
import { WriteCounters } from '../datastore/writes';
import { decodeHostingConfig } from '../hosting-config';
import { AWAKE_REPLICAS_ANNOTATION, IDLE_TIMEOUT_ANNOTATION } from '../idle';
import { ConnectTo, GROUP_PATH, KubeClient, paths } from '../kube/client';
import { ControlLoop, Outcome } from '../kube/control-loop';
import { Logger } from '../kube/log';
import { answersReadyz } from '../kube/readyz';
import { notReadyDelayMs } from '../kube/work-queue';
import { HOSTING_NAMESPACE } from '../names';
import { BOOT_GATE, HOSTING_CONFIGMAP, K8S_WORKLOADS, MATERIALIZE_ERROR, SLEEP_ANNOTATION } from '../wire';
import { BOOT_SLOT_TIMEOUT_MS, BootPod, bootPodOf, decideBoot, ungatePatch } from './boot';
import { ControlPlaneObject, hookUses, PostCreateHookObject, workloadFingerprint } from './core';
import type { BootHold } from './pass';
import { reconcileControlPlane, ReconcileDeps, reconcileHookStatus, reconcileHosting } from './reconcile';

/** Queue keys of PostCreateHook status work; ControlPlane names (DNS labels) never contain ':'. */
const HOOK_KEY = 'pch:';
/** Queue key of boot admission (one decision over all gated Pods). */
const BOOT_KEY = 'boot:';
/** How often the controller asks a starting API server Pod whether it answers (the kubelet: once a second). */
const READYZ_ASK_MS = 200;
/** At most this many starting API server Pods are asked at once (or twice the boot slots, if more). */
const BOOT_ASK_LIMIT = 8;

/** Settings of a running controller. */
export interface ManagerOptions {
  readonly hosting: KubeClient;
  readonly log: Logger;
  readonly connectTo?: ConnectTo;
  /** Parallel reconciles. @default 4 */
  readonly workers?: number;
  /** Full resync period. @default 15 min */
  readonly resyncMs?: number;
  /** Validity of issued leaf certificates. @default one year */
  readonly certValiditySeconds?: number;
  /** Validity of the CAs. @default 5 x certValiditySeconds */
  readonly caValiditySeconds?: number;
  /** Look again at a control plane that is not ready after this long. @default 15 s (KubeFlex) */
  readonly notReadyRequeueMs?: number;
  /** Look again while waiting for hooks. @default 30 s (KubeFlex) */
  readonly hooksRequeueMs?: number;
  /** Renew adopted clusters' and host planes' tokens after this fraction of their lifetime. @default 0.8 */
  readonly tokenRenewFraction?: number;
  /** Lifetime of host planes' TokenRequest tokens, in seconds. @default 86400 */
  readonly hostTokenSeconds?: number;
  /** Port of /healthz and /readyz; 0 = none. @default 0 */
  readonly healthPort?: number;
  /** Clock (tests move it to exercise renewal). @default Date */
  readonly now?: () => Date;
}

/** The running controller. */
export class Manager {
  private readonly loop: ControlLoop;
  /** Passes in a row that found a plane not Ready (reset by its watch events). */
  private readonly notReadyPasses = new Map<string, number>();
  /** Quick passes spent on a plane whose workload is ready but whose API does not answer yet. */
  private readonly apiPendingPasses = new Map<string, number>();
  private readonly seen = new Map<string, string>();
  /** Of each workload in a plane's namespace (kind/namespace/name): what a pass reads of it, as last seen. */
  private readonly workloadSeen = new Map<string, string>();
  /** Last seen ControlPlanes (the planes the controller knows) and PostCreateHooks, from the watches. */
  private readonly cpObjects = new Map<string, ControlPlaneObject>();
  private readonly hookObjects = new Map<string, PostCreateHookObject>();
  /** Pods with the boot label, by namespace/name, as admission reads them; since when each runs ungated (by uid). */
  private readonly bootPods = new Map<string, { pod: BootPod; uid: string; gates: unknown[] }>();
  private readonly ungatedAt = new Map<string, number>();
  /** API server Pods (by uid) that answered the controller's readyz before their Ready condition: no slot held. */
  private readonly answered = new Set<string>();
  /** API server Pods (by uid) the controller is asking now. */
  private readonly asking = new Set<string>();
  private stopped = false;
  /** Planes woken from sleep (their sleep annotation went away) whose API server has not been ready since. */
  private readonly woken = new Map<string, number>();
  /** Namespaces whose API server Pod boot admission holds after the last decision, and why. */
  private bootHolds = new Map<string, BootHold>();
  private readonly deps: ReconcileDeps;
  private server?: http.Server;

  public constructor(private readonly opts: ManagerOptions) {
    const resyncMs = opts.resyncMs ?? DEFAULT_RESYNC_MS;
    this.loop = new ControlLoop({
      client: opts.hosting,
      log: opts.log,
      keyField: 'controlPlane',
      watches: WATCHES.map((w) => ({ ...w, onEvent: (type: string, obj: any) => this.onEvent(w.kind, type, obj) })),
      reconcile: (key) => this.reconcile(key),
      keys: () => [...this.cpObjects.keys(), ...[...this.hookObjects.keys()].map((h) => HOOK_KEY + h), BOOT_KEY],
      onResync: () => void this.hostingPass(),
      resyncMs,
      workers: opts.workers ?? 4,
    });
    const connectTo = opts.connectTo ?? {};
    const breaker = new ServerBreaker();
    const writes = new WriteCounters(connectTo);
    this.deps = {
      hosting: opts.hosting,
      connectTo,
      certValiditySeconds: opts.certValiditySeconds ?? 365 * 86400,
      caValiditySeconds: opts.caValiditySeconds ?? 5 * (opts.certValiditySeconds ?? 365 * 86400),
      notReadyRequeueMs: opts.notReadyRequeueMs ?? 15_000,
      hooksRequeueMs: opts.hooksRequeueMs ?? 30_000,
      probeTimeoutMs: 5_000,
      tokenRenewFraction: opts.tokenRenewFraction ?? 0.8,
      hostTokenSeconds: opts.hostTokenSeconds ?? 86_400,
      log: opts.log,
      now: opts.now ?? (() => new Date()),
      activity: new Map(),
      provisionDatabase: (pg, password, db, ca) =>
        breaker.run(`${pg.host}:${pg.port}`, () => provisionTenantDatabase(pg, password, db, connectTo, ca)),
      databaseWrites: (pg, database, credentials) =>
        breaker.run(`${pg.host}:${pg.port}`, () => writes.count(pg, database, credentials)),
      dropDatabase: (pg, password, db, role, ca, mark) =>
        dropTenantDatabase(pg, password, db, role, connectTo, ca, mark),
      bootHold: (ns) => this.bootHolds.get(ns),
    };
  }

  /** True once every watch has listed once. */
  public get isSynced(): boolean {
    return this.loop.isSynced;
  }

  /** Starts watches, workers, resync and the health endpoint. */
  public async start(): Promise<void> {
    if (this.opts.healthPort) await this.serveHealth(this.opts.healthPort);
    this.loop.start();
    await this.hostingPass();
    this.opts.log.info('controller started', {
      workers: this.opts.workers ?? 4,
      resyncMs: this.opts.resyncMs ?? DEFAULT_RESYNC_MS,
    });
  }

  /** Stops everything and waits for running reconciles to finish. */
  public async stop(): Promise<void> {
    this.stopped = true;
    await this.loop.stop();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.opts.hosting.close();
  }

  private async hostingPass(): Promise<void> {
    try {
      await reconcileHosting(this.deps);
    } catch (e) {
      this.opts.log.warn('hosting reconcile failed', { error: (e as Error).message });
    }
  }

  private onEvent(kind: string, type: string, obj: any): void {
    if (kind === 'ControlPlane') {
      const name = obj?.metadata?.name;
      if (!name) return;
      // The hooks this plane used and uses get their status recomputed (status-only changes included).
      for (const u of [...hookUses(this.cpObjects.get(name) ?? {}), ...hookUses(obj)]) {
        if (this.hookObjects.has(u.hookName)) this.loop.add(HOOK_KEY + u.hookName);
      }
      if (type === 'DELETED') {
        this.cpObjects.delete(name);
        this.woken.delete(name);
        this.seen.delete(name);
        this.notReadyPasses.delete(name);
        this.apiPendingPasses.delete(name);
        return;
      }
      const asleep = (o: any) => o?.metadata?.annotations?.[SLEEP_ANNOTATION] === 'true';
      if (asleep(this.cpObjects.get(name)) && !asleep(obj)) this.woken.set(name, Date.now());
      this.cpObjects.set(name, obj);
      // Our own status writes change neither generation, finalizers nor deletion: they need no reconcile.
      const m = obj.metadata;
      // The materializer's refusal note is an annotation (no new generation): it is reported at once, not at resync.
      const fingerprint = `${m.generation}/${m.deletionTimestamp ?? ''}/${(m.finalizers ?? []).join(',')}/${m.annotations?.[MATERIALIZE_ERROR] ?? ''}/${m.annotations?.[SLEEP_ANNOTATION] ?? ''}/${m.annotations?.[AWAKE_REPLICAS_ANNOTATION] ?? ''}/${m.annotations?.[IDLE_TIMEOUT_ANNOTATION] ?? ''}`;
      if (this.seen.get(name) === fingerprint && type === 'MODIFIED') return;
      this.seen.set(name, fingerprint);
      this.wake(name);
      return;
    }
    if (kind === 'PostCreateHook') {
      const name = obj?.metadata?.name;
      if (!name) return;
      const previous = this.hookObjects.get(name);
      const specChanged = !previous || previous.metadata.generation !== obj.metadata.generation;
      if (type === 'DELETED') {
        this.hookObjects.delete(name);
      } else {
        this.hookObjects.set(name, obj);
        this.loop.add(HOOK_KEY + name);
      }
      // Hooks may be created after the control planes that use them (KubeFlex issue #319): look at all again. Our
      // own status writes leave the generation alone and need no pass over the planes.
      if (type === 'DELETED' || specChanged) {
        for (const k of this.cpObjects.keys()) this.loop.add(k);
      }
      return;
    }
    if (kind === 'Pod') {
      // Boot admission only: the plane itself hears of its Pods through its Deployment's status.
      const key = `${obj?.metadata?.namespace}/${obj?.metadata?.name}`;
      if (type === 'DELETED') {
        this.bootPods.delete(key);
        this.ungatedAt.delete(obj?.metadata?.uid);
      } else {
        // Reduced once here to what admission reads: a thousand planes' Pods whole would be tens of MiB.
        const pod = bootPodOf(obj, undefined);
        if (pod) this.bootPods.set(key, { pod, uid: obj.metadata.uid, gates: obj.spec?.schedulingGates ?? [] });
      }
      this.loop.add(BOOT_KEY);
      return;
    }
    const ns: string | undefined = obj?.metadata?.namespace;
    if (ns === HOSTING_NAMESPACE) return; // the install's own namespace, not that of a plane named "kubeflex"
    const plane = planeOfNamespace(ns);
    if (!plane || !this.cpObjects.has(plane)) return;
    // A Deployment's status is written 6 times in a start, most of them about nothing a pass reads (observed
    // generation, condition times): each was a pass of ~15 reads of the hosting API server (BENCHMARKS.md, wake storm).
    const key = `${kind}/${ns}/${obj?.metadata?.name}`;
    if (type === 'DELETED') this.workloadSeen.delete(key);
    else {
      const fingerprint = workloadFingerprint(obj);
      if (type === 'MODIFIED' && this.workloadSeen.get(key) === fingerprint) return;
      this.workloadSeen.set(key, fingerprint);
    }
    // A start writes its Deployment and ReplicaSet in a burst (scale, replicas, ready): one pass after the burst.
    this.wake(plane, WORKLOAD_SETTLE_MS);
  }

  /** Something of this plane changed: look now (or after `delayMs`), and again soon if it is still not Ready. */
  private wake(name: string, delayMs = 0): void {
    this.notReadyPasses.delete(name);
    this.apiPendingPasses.delete(name);
    this.loop.add(name, delayMs);
  }

  /** One key: a PostCreateHook's status, or a ControlPlane (then when to look again). */
  private async reconcile(key: string): Promise<Outcome | void> {
    if (key === BOOT_KEY) return this.admitBoots();
    if (key.startsWith(HOOK_KEY)) {
      const hook = this.hookObjects.get(key.slice(HOOK_KEY.length));
      if (hook) await reconcileHookStatus(this.deps, hook, [...this.cpObjects.values()]);
      return;
    }
    const r = await reconcileControlPlane(this.deps, key);
    this.opts.log.debug('reconciled', { controlPlane: key, requeueAfterMs: r.requeueAfterMs, error: r.error });
    if (r.error) throw new Error(r.error);
    let delay = r.requeueAfterMs;
    const quick = this.apiPendingPasses.get(key) ?? 0;
    if (r.notReady && r.apiPending && quick < API_PENDING_QUICK_PASSES) {
      // Its Pods are ready and only the route to them lags (kube-proxy follows the endpoints by a moment): look
      // every second for a few seconds, then on the slow schedule below.
      this.apiPendingPasses.set(key, quick + 1);
      delay = delay === undefined ? API_PENDING_EVERY_MS : Math.min(delay, API_PENDING_EVERY_MS);
    } else if (r.notReady) {
      const n = (this.notReadyPasses.get(key) ?? 0) + 1;
      this.notReadyPasses.set(key, n);
      const resync = this.opts.resyncMs ?? DEFAULT_RESYNC_MS;
      const d = notReadyDelayMs(n, this.deps.notReadyRequeueMs, resync);
      // At the resync period the resync itself looks again: a timer of its own would double the passes.
      if (d < resync) delay = delay === undefined ? d : Math.min(delay, d);
    } else {
      this.notReadyPasses.delete(key);
      this.apiPendingPasses.delete(key);
    }
    return { requeueAfterMs: delay };
  }

  /**
   * Boot admission (boot.ts decides): removes the boot gate from the Pods let go now. Only Pods in the namespace of a
   * k8s ControlPlane are considered; with admission off in kubeflex-config, every gate goes (nothing stays stuck).
   */
  private async admitBoots(): Promise<Outcome> {
    const config = decodeHostingConfig(
      (await this.opts.hosting.get<any>(paths.configMap(HOSTING_NAMESPACE, HOSTING_CONFIGMAP)))?.data,
    );
    const now = Date.now();
    const pods: BootPod[] = [];
    // A woken plane keeps its place at the head of the queue until its API server is ready (or for 10 minutes).
    for (const [plane, since] of this.woken) if (now - since > WOKEN_PRIORITY_MS) this.woken.delete(plane);
    for (const { pod, uid } of this.bootPods.values()) {
      const plane = planeOfNamespace(pod.namespace) ?? '';
      if (this.cpObjects.get(plane)?.spec?.type !== 'k8s') continue;
      if (pod.component === K8S_WORKLOADS.apiServer && pod.ready && !pod.gated) this.woken.delete(plane);
      // Ungated by someone else, or before a restart of ours: it starts from now as far as slots go.
      if (!pod.gated && !this.ungatedAt.has(uid)) this.ungatedAt.set(uid, now);
      // Our own removal counts before its watch event arrives.
      const gated = pod.gated && !this.ungatedAt.has(uid);
      pods.push({
        ...pod,
        gated,
        ungatedMs: this.ungatedAt.get(uid),
        wake: this.woken.has(plane),
        answered: this.answered.has(uid),
      });
      // Only a start that holds a slot is asked (within the slot timeout), and only so many at once: after a
      // restart of ours every running Pod that is not ready holds a slot for the timeout, and a thousand broken
      // planes must not become a thousand probes (BOOT_ASK_LIMIT).
      const ungatedMs = this.ungatedAt.get(uid);
      if (
        !gated &&
        !pod.ready &&
        !pod.terminating &&
        pod.readyz &&
        !this.answered.has(uid) &&
        ungatedMs !== undefined &&
        now - ungatedMs < BOOT_SLOT_TIMEOUT_MS &&
        this.asking.size < Math.max(BOOT_ASK_LIMIT, 2 * (config.bootSlots ?? 0))
      ) {
        this.askReadyz(`${pod.namespace}/${pod.name}`, uid, ungatedMs);
      }
    }
    const live = new Set([...this.bootPods.values()].map((b) => b.uid));
    for (const uid of this.ungatedAt.keys()) if (!live.has(uid)) this.ungatedAt.delete(uid);
    for (const uid of this.answered) if (!live.has(uid)) this.answered.delete(uid);
    const decision = decideBoot(pods, config.bootSlots ?? Number.MAX_SAFE_INTEGER, now);
    // Waiting for a slot goes before an unschedulable Pod of the same namespace, as the status says it.
    const slots = config.bootSlots ?? 0;
    const holds = new Map<string, BootHold>([
      ...decision.unschedulable.map((p): [string, BootHold] => [
        p.namespace,
        { unschedulable: `Pod ${p.name}: ${p.unschedulable}` },
      ]),
      ...decision.waiting.map((p): [string, BootHold] => [p.namespace, { slots }]),
    ]);
    // A plane whose hold starts, ends or changes gets a pass: its status says why it waits.
    for (const ns of new Set([...holds.keys(), ...this.bootHolds.keys()])) {
      const plane = planeOfNamespace(ns);
      if (plane && JSON.stringify(holds.get(ns)) !== JSON.stringify(this.bootHolds.get(ns))) this.loop.add(plane);
    }
    this.bootHolds = holds;
    let requeueAfterMs = decision.recheckAfterMs;
    for (const pod of decision.ungate) {
      const seen = this.bootPods.get(`${pod.namespace}/${pod.name}`)!;
      try {
        await this.opts.hosting.request(
          'PATCH',
          `/api/v1/namespaces/${pod.namespace}/pods/${pod.name}`,
          ungatePatch({ spec: { schedulingGates: seen.gates } }),
          'application/json-patch+json',
        );
      } catch (e) {
        // Gone or changed meanwhile: its watch event brings the news; look again soon in any case.
        this.opts.log.warn('boot slot: gate not removed', {
          namespace: pod.namespace,
          pod: pod.name,
          error: (e as Error).message,
        });
        requeueAfterMs = Math.min(requeueAfterMs ?? 1000, 1000);
        continue;
      }
      this.ungatedAt.set(seen.uid, Date.now());
      this.opts.log.info('boot slot: gate removed', { namespace: pod.namespace, pod: pod.name });
    }
    return { requeueAfterMs };
  }

  /**
   * Asks a starting API server Pod its startup probe's readyz every READYZ_ASK_MS until it answers (then its slot
   * goes to the next start at once), it is Ready, replaced or gone, or the slot timeout passes. The kubelet asks
   * once a second and the Pod's Ready condition then takes a status write and a watch event: ~1.5 s of each slot's
   * turn in a storm of 20 wakes, in which the cores idled (BENCHMARKS.md, issue 27 round 10).
   */
  private askReadyz(key: string, uid: string, ungatedMs: number): void {
    if (this.asking.has(uid)) return;
    this.asking.add(uid);
    void (async () => {
      try {
        while (!this.stopped && Date.now() - ungatedMs < BOOT_SLOT_TIMEOUT_MS) {
          const seen = this.bootPods.get(key);
          if (!seen || seen.uid !== uid || seen.pod.ready || seen.pod.terminating || !seen.pod.readyz) return;
          if (await answersReadyz(seen.pod.readyz, seen.pod.readyz.path)) {
            this.answered.add(uid);
            this.loop.add(BOOT_KEY);
            return;
          }
          await new Promise((r) => setTimeout(r, READYZ_ASK_MS));
        }
      } finally {
        this.asking.delete(uid);
      }
    })();
  }

  private serveHealth(port: number): Promise<void> {
    this.server = http.createServer((req, res) => {
      const ok = req.url === '/healthz' || (req.url === '/readyz' && this.isSynced);
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok\n' : 'not synced\n');
    });
    return new Promise((resolve) => this.server!.listen(port, resolve));
  }
}

/**
 * What no watch reports (Secrets are not watched: the controller may read them only in tenant namespaces) is
 * repaired within this period. controller-runtime's default (KubeFlex) is 10 h; 1,000 planes cost ~14 s of CPU per
 * full pass, so 15 min keeps an idle controller near 15 mCPU (BENCHMARKS.md).
 */
const DEFAULT_RESYNC_MS = 900_000;

/** The ControlPlane whose namespace `ns` would be (`<cp>-system`), if it has that shape. */
const planeOfNamespace = (ns: string | undefined) => (ns ? /^(.*)-system$/.exec(ns)?.[1] : undefined);

/** How long after a workload's event its plane's pass runs: the events of one start within it make one pass. */
const WORKLOAD_SETTLE_MS = 300;

/** How long a woken plane's API server goes before first boots at most (a client's wait is bounded anyway). */
const WOKEN_PRIORITY_MS = 600_000;

/**
 * Quick passes for a plane whose workload is ready but whose API does not answer yet: 8, one a second. They were 4,
 * after 1, 2, 4 and 8 s: a route ready 3.5 s after the Pod was then seen at 7 s (BENCHMARKS.md, node, round 6).
 */
const API_PENDING_QUICK_PASSES = 8;
const API_PENDING_EVERY_MS = 1000;

const WATCHES = [
  { kind: 'ControlPlane', path: paths.controlPlanes },
  { kind: 'PostCreateHook', path: `${GROUP_PATH}/postcreatehooks` },
  { kind: 'Deployment', path: '/apis/apps/v1/deployments' },
  { kind: 'StatefulSet', path: '/apis/apps/v1/statefulsets' },
  { kind: 'Job', path: '/apis/batch/v1/jobs' },
  // Only Pods with the boot label (boot admission): the gated API servers and controller managers of k8s planes.
  { kind: 'Pod', path: `/api/v1/pods?labelSelector=${encodeURIComponent(BOOT_GATE)}` },
];
