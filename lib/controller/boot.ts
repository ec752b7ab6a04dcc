// Boot admission, pure: which gated Pods of k8s planes may start now. A start of kube-apiserver is a few CPU-seconds
// at full speed; 50 of them at once on 2 cores push each other past the components' hard-coded start-up timeouts,
// they exit and start again (BENCHMARKS.md). Admitting a few at a time keeps every start short and the total close to
// its CPU floor. The controller's adapter (manager.ts) feeds the Pods it watches and removes the gate it is told to.
import { BOOT_GATE, K8S_WORKLOADS } from '../wire';

/** What boot admission needs of one Pod carrying the boot label. */
export interface BootPod {
  readonly namespace: string;
  readonly name: string;
  /** The component the label names: kube-apiserver or kube-controller-manager. */
  readonly component: string;
  /** Still carries the boot gate. */
  readonly gated: boolean;
  /** Its Ready condition is True. */
  readonly ready: boolean;
  /** When its Ready condition last changed (ms; 0 when not told): for a ready Pod, since when it is ready. */
  readonly readyMs?: number;
  /** Being deleted. */
  readonly terminating: boolean;
  /** metadata.creationTimestamp, ms. */
  readonly createdMs: number;
  /** Since when it starts without its gate (when the controller removed it, or first saw it so), ms. */
  readonly ungatedMs?: number;
  /** Its plane was woken from sleep: a client's request is held until it answers, so it goes before first boots. */
  readonly wake?: boolean;
  /** The scheduler found no node for it (PodScheduled=False, Unschedulable): its message. */
  readonly unschedulable?: string;
  /**
   * Where an API server Pod with an address answers its startup probe (the kubelet's HTTPS GET): the controller asks
   * it too, more often than the kubelet's period of 1 s.
   */
  readonly readyz?: { readonly host: string; readonly port: number; readonly path: string };
  /** Its API server answered `readyz` (the controller asked): its start's CPU burst is over, it holds no slot. */
  readonly answered?: boolean;
}

/** The decision: Pods whose gate to remove now, and when to decide again if nothing else happens. */
export interface BootDecision {
  readonly ungate: readonly BootPod[];
  /** API server Pods that keep their gate: their planes wait for a boot slot. */
  readonly waiting: readonly BootPod[];
  /** API server Pods let go that no node can take: they hold no slot, and their planes say why they wait. */
  readonly unschedulable: readonly BootPod[];
  readonly recheckAfterMs?: number;
}

/** A Pod that has not become ready this long after its gate was removed no longer holds a slot. */
export const BOOT_SLOT_TIMEOUT_MS = 60_000;

/**
 * While API server starts are queued or running, a kube-controller-manager waits at most this long after its API
 * server became ready: the API servers' starts go first (clients wait for them), KCM's start comes after.
 */
export const MANAGER_DEFER_MS = 30_000;

/** Fields of a Pod as the API returns it, reduced to a BootPod (undefined: not one of ours). */
export function bootPodOf(pod: any, ungatedMs: number | undefined): BootPod | undefined {
  const component = pod?.metadata?.labels?.[BOOT_GATE];
  if (component !== K8S_WORKLOADS.apiServer && component !== K8S_WORKLOADS.controllerManager) return undefined;
  const created = Date.parse(pod.metadata.creationTimestamp ?? '');
  const readyCondition = (pod.status?.conditions ?? []).find((c: any) => c?.type === 'Ready');
  const readySince = Date.parse(readyCondition?.lastTransitionTime ?? '');
  return {
    namespace: String(pod.metadata.namespace),
    name: String(pod.metadata.name),
    component,
    gated: (pod.spec?.schedulingGates ?? []).some((g: any) => g?.name === BOOT_GATE),
    ready: readyCondition?.status === 'True',
    readyMs: Number.isFinite(readySince) ? readySince : 0,
    terminating: !!pod.metadata.deletionTimestamp,
    createdMs: Number.isFinite(created) ? created : 0,
    ungatedMs,
    unschedulable: unschedulableMessage(pod),
    readyz: component === K8S_WORKLOADS.apiServer ? readyzOf(pod) : undefined,
  };
}

/**
 * The startup probe of a Pod's container as an address to ask: the Pod's IP, the port (a number, or a named port of
 * that container) and the path, for an HTTPS probe only. Undefined for anything else.
 */
function readyzOf(pod: any): BootPod['readyz'] {
  const host = pod?.status?.podIP;
  if (typeof host !== 'string' || !/^[0-9a-fA-F.:]+$/.test(host)) return undefined;
  for (const c of pod?.spec?.containers ?? []) {
    const get = c?.startupProbe?.httpGet;
    if (!get || get.scheme !== 'HTTPS' || typeof get.path !== 'string' || !get.path.startsWith('/')) continue;
    const port =
      typeof get.port === 'number' ? get.port : (c.ports ?? []).find((p: any) => p?.name === get.port)?.containerPort;
    if (Number.isInteger(port) && port > 0 && port < 65536) return { host, port, path: get.path };
  }
  return undefined;
}

/** The scheduler's reason a Pod has no node (bounded: it goes into a status message), or undefined. */
function unschedulableMessage(pod: any): string | undefined {
  const c = (pod?.status?.conditions ?? []).find(
    (x: any) => x?.type === 'PodScheduled' && x?.status === 'False' && x?.reason === 'Unschedulable',
  );
  if (!c) return undefined;
  const text = typeof c.message === 'string' && c.message ? c.message : 'no node fits it';
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

/**
 * With `slots` starts allowed at once: a kube-controller-manager Pod is let go once an API server Pod of its
 * namespace is ready (it would only time out against a starting one), and, while other API servers start or wait
 * for a slot, only once that one has been ready for MANAGER_DEFER_MS: KCM's start is CPU the starting API servers
 * (and the clients a wake holds) would wait for, and a plane is Ready with its API server. API server Pods are let
 * go while fewer than `slots` API server Pods are starting (ungated, not ready, its API server not answering yet,
 * not terminating, within the slot timeout): those of woken planes first (a client waits for each), then oldest
 * first. A Pod the scheduler cannot place starts nothing, so it holds no slot: on a full node the next plane that
 * fits (a smaller one, or after a deletion) is not held up for the slot timeout, and a cluster autoscaler sees every
 * Pod that waits for capacity.
 */
export function decideBoot(pods: readonly BootPod[], slots: number, nowMs: number): BootDecision {
  const api = pods.filter((p) => p.component === K8S_WORKLOADS.apiServer && !p.terminating);
  // Namespace → since when an API server Pod of it is ready (the earliest).
  const readyApi = new Map<string, number>();
  for (const p of api.filter((x) => x.ready && !x.gated))
    readyApi.set(p.namespace, Math.min(readyApi.get(p.namespace) ?? Infinity, p.readyMs ?? 0));
  const unschedulable = api.filter((p) => !p.gated && !p.ready && p.unschedulable !== undefined);
  // A Pod whose API server answered is not Ready yet only for the kubelet's next probe and the status round trip
  // (~1.5 s in a storm of wakes, a third of each slot's turn): its slot goes to the next start at once.
  const starting = api.filter(
    (p) =>
      !p.gated &&
      !p.ready &&
      !p.answered &&
      p.unschedulable === undefined &&
      nowMs - (p.ungatedMs ?? nowMs) < BOOT_SLOT_TIMEOUT_MS,
  );
  const waiting = api
    .filter((p) => p.gated)
    .sort(
      (a, b) =>
        Number(!!b.wake) - Number(!!a.wake) ||
        a.createdMs - b.createdMs ||
        a.namespace.localeCompare(b.namespace) ||
        a.name.localeCompare(b.name),
    );
  const admitted = waiting.slice(0, Math.max(0, slots - starting.length));
  const busy = starting.length + waiting.length > 0;
  let recheckAfterMs: number | undefined;
  const later = (ms: number) => (recheckAfterMs = Math.min(recheckAfterMs ?? ms, ms));
  const managers = pods.filter((p) => {
    if (p.component !== K8S_WORKLOADS.controllerManager || !p.gated || p.terminating) return false;
    const readySince = readyApi.get(p.namespace);
    if (readySince === undefined) return false;
    if (!busy || nowMs - readySince >= MANAGER_DEFER_MS) return true;
    later(readySince + MANAGER_DEFER_MS - nowMs);
    return false;
  });
  // With Pods still waiting, a slot held by a start that never gets ready frees at its timeout: look again then.
  if (waiting.length > admitted.length) {
    for (const p of starting) later((p.ungatedMs ?? nowMs) + BOOT_SLOT_TIMEOUT_MS - nowMs);
  }
  return { ungate: [...admitted, ...managers], waiting: waiting.slice(admitted.length), unschedulable, recheckAfterMs };
}

/** JSON patch that removes the boot gate and keeps every other gate, failing if the gates changed meanwhile. */
export function ungatePatch(pod: any): object[] {
  const gates: { name: string }[] = pod?.spec?.schedulingGates ?? [];
  return [
    { op: 'test', path: '/spec/schedulingGates', value: gates },
    { op: 'replace', path: '/spec/schedulingGates', value: gates.filter((g) => g.name !== BOOT_GATE) },
  ];
}
