// The activator at run time: a reconciler on the one control loop (lib/kube/control-loop.ts) over ControlPlanes.
// For each sleeping plane it listens on a port of its own and keeps an EndpointSlice that adds that port to the
// plane's Service. A connection there wakes the plane (removes the sleeping annotation; the controller restores the
// replicas), waits until the plane's own endpoint is ready, and is then spliced to it: bytes only, so TLS is the
// plane's own, end to end. A client that gives up early is closed; a plane that does not wake in time is closed too
// (a clean FIN, never another certificate). Once the plane is awake and ready, the slice is removed and the listener
// stops taking connections (those already passed through go on).
import * as net from 'net';
import { ACTIVATOR_MANAGED_BY, ENDPOINTSLICE_MANAGED_BY, ENDPOINTSLICE_SERVICE_NAME } from '../idle';
import { ApiError, KubeClient, paths } from '../kube/client';
import { ControlLoop, Outcome } from '../kube/control-loop';
import type { Logger } from '../kube/log';
import { answersReadyz } from '../kube/readyz';
import { BOOT_SLOT_WAIT, ControlPlaneObject, SLEEP_ANNOTATION } from '../wire';
import {
  activatorSlice,
  allocatePort,
  planeService,
  readyEndpoint,
  servedPlane,
  ServedPlane,
  sliceCurrent,
  sliceName,
  slicePort,
} from './core';

const SLICES = '/apis/discovery.k8s.io/v1';

/**
 * The readiness a woken API server of a plane that booted before must show before clients are spliced to it: every
 * check but the two bootstrap hooks, which on a restart only re-check what the first boot wrote (the default RBAC
 * roles, the system PriorityClasses), while authorization already works from its synced informers
 * (`informer-sync`). On a restart they are the last checks to pass: `TRACE=1 npm run bench:boot` shows all others
 * passed 0.5-0.6 s earlier (of ~2.9 s). A plane that never booted gets the full /readyz. A check name the server
 * does not have (k3s, vCluster) is ignored by it.
 */
export const WAKE_READYZ_PATH =
  '/readyz?exclude=poststarthook/rbac/bootstrap-roles&exclude=poststarthook/scheduling/bootstrap-system-priority-classes';

const slicePath = (ns: string, name?: string) => `${SLICES}/namespaces/${ns}/endpointslices${name ? `/${name}` : ''}`;

/** Options of the Activator. */
export interface ActivatorOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  /** The address the activator's EndpointSlices point at (its pod IP). */
  readonly podIp: string;
  /** Where it listens. @default "0.0.0.0" (or "::" for an IPv6 pod IP) */
  readonly listenAddress?: string;
  /** How long a connection is held while its plane wakes. @default 120 s */
  readonly wakeTimeoutMs?: number;
  /**
   * How often a waking plane's starting Pods are asked whether they answer (its slices are listed less often:
   * SLICE_LIST_MS, SLICE_RELIST_MS). @default 200 ms
   */
  readonly pollMs?: number;
  /** Resync period. @default 5 min */
  readonly resyncMs?: number;
}

/** A waking plane's EndpointSlices as last listed. */
interface SliceCache {
  items: any[];
  listedMs: number;
  /** The plane said it waits for a boot slot when last looked at. */
  slotWait?: boolean;
}

const readyCondition = (cp: ControlPlaneObject): any =>
  (cp.status?.conditions ?? []).find((c: any) => c?.type === 'Ready');

/** Whether `cp`'s status says it is Ready. */
const isReady = (cp: ControlPlaneObject) => readyCondition(cp)?.status === 'True';

/** Whether `cp`'s Ready condition says boot admission holds its API server Pod (gated: no address to list yet). */
const waitsForBootSlot = (cp: ControlPlaneObject) => {
  const message = readyCondition(cp)?.message;
  return typeof message === 'string' && message.includes(BOOT_SLOT_WAIT);
};

/**
 * How often a waking plane's EndpointSlices are listed at most (its starting Pods are asked every poll): until a
 * starting Pod is listed, and once one is.
 */
const SLICE_LIST_MS = 1_000;
const SLICE_RELIST_MS = 5_000;

/** One plane the activator serves (or served, until its own endpoint is ready). */
interface Served {
  readonly plane: ServedPlane;
  readonly port: number;
  readonly server: net.Server;
  /** Connections held or passed through. */
  readonly sockets: Set<net.Socket>;
  /** While the plane wakes: its ready endpoint when it comes. */
  waking?: Promise<{ host: string; port: number } | undefined>;
  closed?: boolean;
}

export class Activator {
  private readonly loop: ControlLoop;
  private readonly planes = new Map<string, ControlPlaneObject>();
  private readonly served = new Map<string, Served>();
  /** Ports recorded in existing slices (from an earlier run), kept for their planes. */
  private readonly recordedPorts = new Map<string, number>();
  private listed = false;

  public constructor(private readonly opts: ActivatorOptions) {
    this.loop = new ControlLoop({
      client: opts.client,
      log: opts.log,
      keyField: 'controlPlane',
      watches: [{ kind: 'ControlPlane', path: paths.controlPlanes, onEvent: (t, o) => this.onEvent(t, o) }],
      reconcile: (key) => this.reconcile(key),
      keys: () => new Set([...this.planes.keys(), ...this.served.keys()]),
      resyncMs: opts.resyncMs ?? 300_000,
      workers: 2,
    });
  }

  /** True once the ControlPlanes are listed and its earlier slices read. */
  public get isSynced(): boolean {
    return this.listed && this.loop.isSynced;
  }

  /** The port the activator listens on for `plane`, if it serves it. */
  public portOf(plane: string): number | undefined {
    return this.served.get(plane)?.port;
  }

  public async start(): Promise<void> {
    // The slices of an earlier run: their ports are kept, so kube-proxy's rules and the new listeners agree.
    for (;;) {
      try {
        const list = await this.opts.client.request<any>(
          'GET',
          `${SLICES}/endpointslices?labelSelector=${encodeURIComponent(`${ENDPOINTSLICE_MANAGED_BY}=${ACTIVATOR_MANAGED_BY}`)}`,
        );
        for (const s of list?.items ?? []) {
          const p = slicePort(s);
          if (p) this.recordedPorts.set(p.plane, p.port);
        }
        break;
      } catch (e) {
        this.opts.log.warn('cannot list EndpointSlices yet', { error: (e as Error).message });
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    this.listed = true;
    this.loop.start();
  }

  public async stop(): Promise<void> {
    await this.loop.stop();
    for (const s of this.served.values()) this.closeServed(s, true);
    this.served.clear();
    this.opts.client.close();
  }

  private onEvent(type: string, obj: any): void {
    const name = obj?.metadata?.name;
    if (typeof name !== 'string') return;
    if (type === 'DELETED') this.planes.delete(name);
    else this.planes.set(name, obj);
    this.loop.add(name);
  }

  private async reconcile(name: string): Promise<Outcome | void> {
    const cp = this.planes.get(name);
    const want = servedPlane(cp);
    let s = this.served.get(name);
    if (want && cp?.metadata.uid) {
      if (!s || s.closed) s = await this.listen(want, s);
      const slice = activatorSlice(
        cp as ControlPlaneObject & { metadata: { uid: string } },
        want,
        this.opts.podIp,
        s.port,
      );
      const existing = await this.opts.client.get<any>(slicePath(want.namespace, slice.metadata.name));
      if (!existing) await this.opts.client.request('POST', slicePath(want.namespace), slice);
      else if (!sliceCurrent(existing, slice)) {
        await this.opts.client.request('PUT', slicePath(want.namespace, slice.metadata.name), {
          ...slice,
          metadata: { ...slice.metadata, resourceVersion: existing.metadata.resourceVersion },
        });
      }
      return;
    }
    // Awake (or gone): the slice goes once the plane's own endpoint is ready, so no client finds no endpoint.
    const plane = s?.plane ?? (cp ? planeService(cp) : undefined);
    if (!plane) return;
    const recorded = this.recordedPorts.has(name);
    if (!s && !recorded) return;
    // Its own endpoint is ready about when its status says Ready (both follow the Pod's readiness), and that status
    // change comes through the watch: until then the slices are listed every SLICE_RELIST_MS, not every second. In
    // a storm of 20 wakes that waiting list was the hosting API server's second busiest request (BENCHMARKS.md).
    if (cp && !(await this.planeEndpoint(plane))) return { requeueAfterMs: isReady(cp) ? 1_000 : SLICE_RELIST_MS };
    try {
      await this.opts.client.request('DELETE', slicePath(plane.namespace, sliceName(plane.service)));
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
    }
    this.recordedPorts.delete(name);
    if (s) {
      this.closeServed(s, !cp);
      this.served.delete(name);
    }
    this.opts.log.info('plane awake: its Service leads to its own pods again', { controlPlane: name });
  }

  /** A listener for `plane` on its recorded port, its previous one, or the lowest free one. */
  private async listen(plane: ServedPlane, previous?: Served): Promise<Served> {
    const used = new Set([...this.served.values()].map((x) => x.port));
    for (const [p, port] of this.recordedPorts) if (p !== plane.name) used.add(port);
    const kept = previous?.port ?? this.recordedPorts.get(plane.name);
    let served: Served | undefined;
    // A port taken by something else (only outside a pod of its own) is skipped, unless a slice already names it.
    for (let port = kept ?? allocatePort(used); port !== undefined; port = kept ? undefined : allocatePort(used)) {
      const s: Served = { plane, port, server: net.createServer(), sockets: new Set() };
      s.server.on('connection', (socket) => this.hold(s, socket));
      const error = await new Promise<Error | undefined>((resolve) => {
        s.server.once('error', resolve);
        s.server.listen(port, this.opts.listenAddress ?? (this.opts.podIp.includes(':') ? '::' : '0.0.0.0'), () => {
          s.server.off('error', resolve);
          resolve(undefined);
        });
      });
      if (!error) {
        served = s;
        break;
      }
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || kept) throw error;
      used.add(port);
    }
    if (!served) throw new Error('every activator port is taken');
    const port = served.port;
    served.server.on('error', (e) =>
      this.opts.log.warn('listener error', { controlPlane: plane.name, error: e.message }),
    );
    this.served.set(plane.name, served);
    this.recordedPorts.set(plane.name, port);
    this.opts.log.info('serving a sleeping plane', { controlPlane: plane.name, port });
    return served;
  }

  /** A client of a sleeping (or waking) plane: wake it, wait for its endpoint, pass the connection through. */
  private hold(served: Served, socket: net.Socket): void {
    served.sockets.add(socket);
    let upstream: net.Socket | undefined;
    let done = false;
    let answered = false;
    const finish = (why?: string) => {
      if (done) return;
      done = true;
      // A client closed by us before its plane said a word is what a user sees as an error: say why.
      if (why && !answered) this.opts.log.warn('held client closed', { controlPlane: served.plane.name, why });
      served.sockets.delete(socket);
      upstream?.destroy();
      // A clean close: FIN after what was sent (nothing, while held), never a reset or a foreign TLS answer.
      socket.end();
    };
    socket.on('error', () => finish());
    socket.on('close', () => finish());
    // Bytes the client sends while held (its TLS ClientHello) wait in the socket until the splice.
    socket.pause();
    const deadline = Date.now() + (this.opts.wakeTimeoutMs ?? 120_000);
    const attempt = () => {
      served.waking ??= this.wake(served.plane, deadline, () => served.sockets.size > 0).finally(
        () => (served.waking = undefined),
      );
      void served.waking.then(
        (endpoint) => {
          if (done) return;
          if (!endpoint) return finish('the plane did not wake in time, or nobody waits any more');
          const up = net.connect(endpoint.port, endpoint.host);
          upstream = up;
          let connected = false;
          let retried = false;
          const failed = (e?: Error) => {
            if (connected || done)
              return finish(`${endpoint.host}:${endpoint.port} closed${e ? `: ${e.message}` : ''}`);
            // Not connected: an endpoint still listed ready whose Pod just went (the plane was put to sleep a moment
            // ago, and its EndpointSlice lags). Nothing of the client's went through, so look for the endpoint again.
            if (retried) return;
            retried = true;
            up.destroy();
            if (Date.now() >= deadline) return finish(`${endpoint.host}:${endpoint.port} refused until the deadline`);
            setTimeout(attempt, this.opts.pollMs ?? 200);
          };
          up.on('error', failed);
          up.on('close', () => failed());
          up.once('connect', () => {
            connected = true;
            if (done) return;
            socket.pipe(up);
            up.once('data', () => (answered = true));
            up.pipe(socket);
            socket.resume();
          });
        },
        (e) => finish(`waking failed: ${(e as Error).message}`),
      );
    };
    attempt();
  }

  /**
   * Removes the sleeping annotation, then waits until `deadline` for a ready endpoint of the plane's pods. Level-based:
   * while clients are held the plane stays woken. Someone may put it back to sleep meanwhile (a sleep set a moment
   * after a wake: the held clients would then wait for a plane nobody wakes), and then the annotation goes again,
   * as long as a client is still `held`: once all gave up, a sleep set meanwhile stands.
   */
  private async wake(
    plane: ServedPlane,
    deadline: number,
    held: () => boolean,
  ): Promise<{ host: string; port: number } | undefined> {
    const started = Date.now();
    let asked = false;
    let removedAt = 0;
    const slices: SliceCache = { items: [], listedMs: 0 };
    while (Date.now() < deadline) {
      try {
        // First from the API server; then from the watch, so a poll costs no extra request.
        const cp = asked
          ? this.planes.get(plane.name)
          : await this.opts.client.get<ControlPlaneObject>(paths.controlPlane(plane.name));
        asked = true;
        if (!cp || !held()) return undefined;
        // The watch may still show the annotation just removed: not again within a second.
        if (cp.metadata.annotations?.[SLEEP_ANNOTATION] !== undefined && Date.now() - removedAt > 1_000) {
          await this.opts.client.request(
            'PATCH',
            paths.controlPlane(plane.name),
            { metadata: { annotations: { [SLEEP_ANNOTATION]: null } } },
            'application/merge-patch+json',
          );
          this.opts.log.info(removedAt ? 'waking a plane again: held clients wait' : 'waking a plane for a client', {
            controlPlane: plane.name,
          });
          removedAt = Date.now();
        }
        // While it waits for a boot slot its Pod has no address: its slices are looked at only every SLICE_RELIST_MS
        // (the status may lag), and at once when the wait ends. In a storm of 20 wakes most of a wake is that wait.
        const slotWait = waitsForBootSlot(cp);
        if (slices.slotWait && !slotWait) slices.listedMs = 0;
        slices.slotWait = slotWait;
        const endpoint = await this.planeEndpoint(plane, slices);
        if (endpoint) {
          this.opts.log.info('plane ready: passing clients through', {
            controlPlane: plane.name,
            waitedMs: Date.now() - started,
          });
          return endpoint;
        }
      } catch (e) {
        this.opts.log.warn('waking', { controlPlane: plane.name, error: (e as Error).message });
      }
      await new Promise((r) => setTimeout(r, this.opts.pollMs ?? 200));
    }
    this.opts.log.warn('plane did not wake in time: held clients closed', { controlPlane: plane.name });
    return undefined;
  }

  /**
   * A ready endpoint of the plane's own pods, from its Service's EndpointSlices; during a wake (`early`: the wake's
   * slice cache), also a starting Pod whose API server already answers /readyz (the kubelet's readiness probe and the
   * EndpointSlice update would add up to seconds more; that answer is all they wait for). A wake lists the slices at
   * most once per SLICE_LIST_MS and asks the starting Pods on every poll: a list every poll of twenty waking planes was
   * the hosting API server's busiest request in a wake storm (2,080 in 37 s, BENCHMARKS.md).
   */
  private async planeEndpoint(
    plane: ServedPlane,
    early?: SliceCache,
  ): Promise<{ host: string; port: number } | undefined> {
    const list = async () =>
      (
        await this.opts.client.request<any>(
          'GET',
          `${slicePath(plane.namespace)}?labelSelector=${encodeURIComponent(`${ENDPOINTSLICE_SERVICE_NAME}=${plane.service}`)}`,
        )
      )?.items ?? [];
    if (!early) return readyEndpoint(await list(), plane.portName);
    let starting: { host: string; port: number }[] = [];
    let ready = readyEndpoint(early.items, plane.portName, starting);
    // Once a starting Pod is known, it is asked directly: the slices only tell of a Pod replaced meanwhile.
    if (
      !ready &&
      Date.now() - early.listedMs >= (starting.length || early.slotWait ? SLICE_RELIST_MS : SLICE_LIST_MS)
    ) {
      Object.assign(early, { items: await list(), listedMs: Date.now() });
      starting = [];
      ready = readyEndpoint(early.items, plane.portName, starting);
    }
    if (ready) return ready;
    const path = plane.booted ? WAKE_READYZ_PATH : '/readyz';
    for (const e of starting) if (await answersReadyz(e, path)) return e;
    return undefined;
  }

  /** Stops taking connections; with `all`, also drops those held or passed through (the plane is gone). */
  private closeServed(s: Served, all: boolean): void {
    s.closed = true;
    s.server.close();
    if (all) for (const socket of s.sockets) socket.destroy();
  }
}
