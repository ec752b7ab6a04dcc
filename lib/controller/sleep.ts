// Sleep on idle, for the controller's pass: how long a plane has had no client request (pure), and the steps that put
// it to sleep and restore it (through KubeClient). The activator (lib/activator/) holds clients while it wakes.
//
// Activity is what the tenant API server audits: its audit policy (lib/k8s-control-plane.ts AUDIT_POLICY) records
// no request of its own controllers, of the API server itself, of health, discovery and metrics reads, or of the
// controller's admin-binding probe, so `apiserver_audit_event_total` moves only with real clients' requests.
//
// Parking a plane's kube-controller-manager while nothing writes to it follows the same shape, with the writes to its
// database (PostgreSQL's counter, lib/datastore/writes.ts) as the activity.
import { HostingConfig } from '../hosting-config';
import {
  ACTIVATOR_MANAGED_BY,
  AWAKE_REPLICAS_ANNOTATION,
  decodeAwakeReplicas,
  encodeAwakeReplicas,
  ENDPOINTSLICE_MANAGED_BY,
  IDLE_TIMEOUT_ANNOTATION,
  PARKED_MANAGER_ANNOTATION,
  parseIdleTimeout,
} from '../idle';
import { KubeClient, paths } from '../kube/client';
import { parseKubeconfig } from '../kube/kubeconfig';
import type { Logger } from '../kube/log';
import { HOSTING_NAMESPACE, TenantNames } from '../names';
import { ControlPlaneObject, K8S_WORKLOADS, SLEEP_ANNOTATION, typeContract, WorkloadRef } from '../wire';
import { annotateControlPlane, decode, ReconcileDeps } from './pass';

/** What the controller knows of a plane's requests: the audit counter last read, and since when it has not moved. */
export interface Activity {
  readonly count: number;
  readonly sinceMs: number;
  /**
   * When the counter is to be read again (the last decision's own schedule). A pass before that reads nothing: in a
   * boot storm a Ready plane gets a pass for many events, and a `/metrics` read on each of them cost its API server
   * 1.4 CPU-seconds per tenant of the storm (BENCHMARKS.md).
   */
  readonly nextReadMs?: number;
  /** The timeouts that schedule was made for: changed ones (kubeflex-config, the plane's annotation) read at once. */
  readonly timeouts?: string;
}

/** Whether the audit counter is due at `nowMs`: nothing known, other timeouts, or the last decision's time came. */
export function readDue(known: Activity | undefined, nowMs: number, timeouts?: string): boolean {
  return known?.nextReadMs === undefined || known.timeouts !== timeouts || nowMs >= known.nextReadMs;
}

/** The sum of `apiserver_audit_event_total` in a Prometheus text exposition, or undefined when it has none. */
export function auditEventTotal(metrics: string): number | undefined {
  let total: number | undefined;
  for (const line of metrics.split('\n')) {
    const m = /^apiserver_audit_event_total(?:\{[^}\n]*\})? ([0-9.eE+]+)$/.exec(line);
    if (m && Number.isFinite(Number(m[1]))) total = (total ?? 0) + Number(m[1]);
  }
  return total;
}

/** The activity after reading `count` at `nowMs`: a moved counter (or a restarted API server) is a request now. */
export function observeActivity(previous: Activity | undefined, count: number, nowMs: number): Activity {
  if (!previous || previous.count !== count) return { count, sinceMs: nowMs };
  return previous;
}

/** Whether to sleep now, or when to read the counter again (a quarter of the timeout, 15 s to 5 min). */
export function idleDecision(
  activity: Activity,
  timeoutMs: number,
  nowMs: number,
): { sleep: true } | { sleep: false; checkAfterMs: number } {
  const idleMs = nowMs - activity.sinceMs;
  if (idleMs >= timeoutMs) return { sleep: true };
  const period = Math.min(300_000, Math.max(15_000, Math.floor(timeoutMs / 4)));
  return { sleep: false, checkAfterMs: Math.min(period, timeoutMs - idleMs) };
}

/**
 * The plane's idle timeout in ms: its annotation (written by the construct from `idleTimeout`, or by a bare plane's
 * author), else the hosting default; undefined when neither is set or the activator is not installed (nothing would
 * wake it). A bad annotation is ignored (the construct and the materializer refuse it before it gets here).
 */
export function idleTimeoutMs(cp: ControlPlaneObject, config: HostingConfig): number | undefined {
  if (!config.activator || !typeContract(cp.spec?.type)?.clientsAudited) return undefined;
  const text = cp.metadata.annotations?.[IDLE_TIMEOUT_ANNOTATION] ?? config.idleTimeout;
  if (text === undefined) return undefined;
  const parsed = parseIdleTimeout(text);
  return 'seconds' in parsed ? parsed.seconds * 1000 : undefined;
}

const scalePath = (w: WorkloadRef, ns: string) => `${paths.object('apps/v1', w.kind, w.name, ns)!}/scale`;

async function replicasOf(deps: ReconcileDeps, w: WorkloadRef, ns: string): Promise<number | undefined> {
  const obj = await deps.hosting.get<any>(paths.object('apps/v1', w.kind, w.name, ns)!);
  return obj ? (obj.spec?.replicas ?? 1) : undefined;
}

/** Whether the activator's EndpointSlice in `ns` has a ready endpoint: then new connections reach the activator. */
async function activatorServes(deps: ReconcileDeps, ns: string): Promise<boolean> {
  const list = await deps.hosting.request<any>(
    'GET',
    `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?labelSelector=${encodeURIComponent(`${ENDPOINTSLICE_MANAGED_BY}=${ACTIVATOR_MANAGED_BY}`)}`,
  );
  return (list?.items ?? []).some((s: any) => (s.endpoints ?? []).some((e: any) => e.conditions?.ready === true));
}

/**
 * A sleeping plane: record its workloads' replicas (once), then scale them to zero. With the activator installed,
 * only once its EndpointSlice serves the plane's Service, so no connection finds neither the plane nor the activator.
 * Returns the plane as it is now (the status is written onto it: an older copy is refused, 409, and costs a pass)
 * and a delay when it must look again (the activator not there yet).
 */
export async function enforceSleep(
  deps: ReconcileDeps,
  cp: ControlPlaneObject,
  names: TenantNames,
  config: HostingConfig,
  log: Logger,
): Promise<{ cp: ControlPlaneObject; checkAfterMs?: number }> {
  const workloads = typeContract(cp.spec?.type)?.sleepWorkloads ?? [];
  const current = await Promise.all(workloads.map((w) => replicasOf(deps, w, names.namespace)));
  if (current.every((r) => !r)) return { cp };
  if (!cp.metadata.annotations?.[AWAKE_REPLICAS_ANNOTATION]) {
    const record = workloads.flatMap((w, i) => (current[i] ? [{ ...w, replicas: current[i]! }] : []));
    cp = await annotateControlPlane(deps, cp.metadata.name, {
      [AWAKE_REPLICAS_ANNOTATION]: encodeAwakeReplicas(record),
    });
  }
  if (config.activator && !(await activatorServes(deps, names.namespace))) return { cp, checkAfterMs: 1_000 };
  for (const [i, w] of workloads.entries()) {
    if (current[i])
      await deps.hosting.request(
        'PATCH',
        scalePath(w, names.namespace),
        { spec: { replicas: 0 } },
        'application/merge-patch+json',
      );
  }
  log.info('asleep: workloads scaled to zero', { namespace: names.namespace });
  return { cp };
}

/**
 * An awake plane that slept (it still carries the awake-replicas annotation): its workloads back to what they were,
 * then the annotation removed. Whoever woke it (kflex wake, the activator) only removed the sleeping annotation.
 * Returns the plane as it is now.
 */
export async function restoreFromSleep(
  deps: ReconcileDeps,
  cp: ControlPlaneObject,
  names: TenantNames,
  log: Logger,
): Promise<ControlPlaneObject> {
  const recorded = cp.metadata.annotations?.[AWAKE_REPLICAS_ANNOTATION];
  if (recorded === undefined) return cp;
  const want = decodeAwakeReplicas(recorded);
  // A kube-controller-manager parked before the sleep comes back with the plane: a wake is a client's request.
  const parked = decodeAwakeReplicas(cp.metadata.annotations?.[PARKED_MANAGER_ANNOTATION]);
  for (const w of typeContract(cp.spec?.type)?.sleepWorkloads ?? []) {
    if ((await replicasOf(deps, w, names.namespace)) !== 0) continue;
    const replicas = want.get(`${w.kind}/${w.name}`) ?? parked.get(`${w.kind}/${w.name}`) ?? 1;
    await deps.hosting.request(
      'PATCH',
      scalePath(w, names.namespace),
      { spec: { replicas } },
      'application/merge-patch+json',
    );
  }
  const now = await annotateControlPlane(deps, cp.metadata.name, {
    [AWAKE_REPLICAS_ANNOTATION]: null,
    [PARKED_MANAGER_ANNOTATION]: null,
  });
  log.info('awake: workloads restored', { namespace: names.namespace });
  return now;
}

/**
 * How often a plane with a parked kube-controller-manager is looked at: how late a write brings it back. A look reads
 * PostgreSQL's counters, shared by all planes of the server (one query per 10 s at most).
 */
export const PARKED_CHECK_MS = 15_000;

/** The hosting's kube-controller-manager idle timeout in ms for this plane, or undefined (not k8s, or off). */
export function managerTimeoutMs(cp: ControlPlaneObject, config: HostingConfig): number | undefined {
  if (cp.spec?.type !== 'k8s' || config.managerIdleTimeout === undefined) return undefined;
  const parsed = parseIdleTimeout(config.managerIdleTimeout);
  return 'seconds' in parsed ? parsed.seconds * 1000 : undefined;
}

/**
 * Whether a plane's kube-controller-manager should be parked or started again, and when to look next: parked once
 * its activity (the writes to its database) stood still for `timeoutMs`, started again as soon as it moved (or when
 * parking is switched off). While parked the plane is looked at every PARKED_CHECK_MS, so a write brings it back
 * within that.
 */
export function managerDecision(
  activity: Activity | undefined,
  timeoutMs: number | undefined,
  nowMs: number,
  parked: boolean,
): { action?: 'park' | 'unpark'; checkAfterMs?: number } {
  if (timeoutMs === undefined) return parked ? { action: 'unpark' } : {};
  if (!activity) return {};
  const idleMs = nowMs - activity.sinceMs;
  if (idleMs >= timeoutMs) return { ...(parked ? {} : { action: 'park' as const }), checkAfterMs: PARKED_CHECK_MS };
  // Running: a look every quarter of the timeout (15 s to 5 min), so KCM is parked 1 to 1.25 timeouts after the last
  // write.
  const period = Math.min(300_000, Math.max(15_000, Math.floor(timeoutMs / 4)));
  return { ...(parked ? { action: 'unpark' as const } : {}), checkAfterMs: Math.min(period, timeoutMs - idleMs) };
}

/**
 * The activity a plane starts from when the controller has none recorded: a plane whose kube-controller-manager is
 * parked had no write for the parking timeout (else it would not be parked), so a restarted controller keeps it
 * parked until the counter moves, instead of starting every parked one at once.
 */
export function baselineActivity(count: number, nowMs: number, parkedForMs: number | undefined): Activity | undefined {
  return parkedForMs === undefined ? undefined : { count, sinceMs: nowMs - parkedForMs };
}

/**
 * A Ready plane with an idle timeout: read its audit counter with the admin kubeconfig, on the last decision's
 * schedule; asleep after the timeout without a request (the sleeping annotation; the next pass scales it down).
 * Returns when to look again, and the ControlPlane as last written.
 */
export async function checkIdle(
  deps: ReconcileDeps,
  cp: ControlPlaneObject,
  timeoutMs: number,
  kubeconfig: string,
  log: Logger,
): Promise<{ checkAfterMs?: number; cp: ControlPlaneObject }> {
  const uid = cp.metadata.uid ?? cp.metadata.name;
  const known = deps.activity.get(uid);
  const key = String(timeoutMs);
  if (!readDue(known, deps.now().getTime(), key))
    return { checkAfterMs: known!.nextReadMs! - deps.now().getTime(), cp };
  const client = KubeClient.fromParsed(parseKubeconfig(kubeconfig), deps.connectTo, deps.probeTimeoutMs);
  let count: number | undefined;
  try {
    count = auditEventTotal(String(await client.request<string>('GET', '/metrics')));
  } finally {
    client.close();
  }
  const now = deps.now().getTime();
  if (count === undefined) {
    log.warn('no apiserver_audit_event_total in the tenant API server metrics: idle timeout not applied');
    return { cp };
  }
  const activity = observeActivity(known, count, now);
  const decision = idleDecision(activity, timeoutMs, now);
  if (!decision.sleep) {
    deps.activity.set(uid, { ...activity, nextReadMs: now + decision.checkAfterMs, timeouts: key });
    return { checkAfterMs: decision.checkAfterMs, cp };
  }
  log.info('idle: going to sleep', { idleMs: now - activity.sinceMs });
  deps.activity.delete(uid);
  return { checkAfterMs: 0, cp: await annotateControlPlane(deps, cp.metadata.name, { [SLEEP_ANNOTATION]: 'true' }) };
}

/**
 * A Ready k8s plane and its kube-controller-manager: parked after the hosting's timeout without a write to the
 * plane's database, started again once one is seen (or parking is switched off, or the writes cannot be read).
 * Writes, not requests: everything KCM does follows a write (a namespace made or deleted, an object with owners,
 * a certificate request), and a read needs no KCM. The counter is PostgreSQL's (lib/datastore/writes.ts), read on
 * the decision's schedule. Returns when to look again, and the ControlPlane as last written.
 */
export async function checkManager(
  deps: ReconcileDeps,
  cp: ControlPlaneObject,
  names: TenantNames,
  config: HostingConfig,
  log: Logger,
): Promise<{ checkAfterMs?: number; cp: ControlPlaneObject }> {
  const timeoutMs = managerTimeoutMs(cp, config);
  const parked = cp.metadata.annotations?.[PARKED_MANAGER_ANNOTATION] !== undefined;
  const pg = config.postgres;
  if (timeoutMs === undefined || !pg) {
    return { cp: parked ? await setManagerParked(deps, cp, names, false, log) : cp };
  }
  const uid = `${cp.metadata.uid ?? cp.metadata.name}/writes`;
  const known = deps.activity.get(uid);
  const key = String(timeoutMs);
  if (!readDue(known, deps.now().getTime(), key)) {
    return { checkAfterMs: known!.nextReadMs! - deps.now().getTime(), cp };
  }
  let count: number | undefined;
  try {
    count = await deps.databaseWrites(pg, names.database, async () => {
      const secret = await deps.hosting.get<any>(paths.secret(HOSTING_NAMESPACE, pg.passwordSecret));
      const password = decode(secret?.data)[pg.passwordKey];
      if (!password) throw new Error(`no ${pg.passwordKey} in Secret ${HOSTING_NAMESPACE}/${pg.passwordSecret}`);
      const ca = pg.ca
        ? decode((await deps.hosting.get<any>(paths.secret(HOSTING_NAMESPACE, pg.ca.secret)))?.data)[pg.ca.key]
        : undefined;
      return { password, ca };
    });
  } catch (e) {
    log.warn('the database writes could not be read: kube-controller-manager not parked', {
      error: e instanceof Error ? e.message : String(e),
    });
  }
  const now = deps.now().getTime();
  if (count === undefined) {
    deps.activity.delete(uid);
    return { checkAfterMs: PARKED_CHECK_MS, cp: parked ? await setManagerParked(deps, cp, names, false, log) : cp };
  }
  const activity = observeActivity(known ?? baselineActivity(count, now, parked ? timeoutMs : undefined), count, now);
  const decision = managerDecision(activity, timeoutMs, now, parked);
  deps.activity.set(uid, {
    ...activity,
    nextReadMs: decision.checkAfterMs === undefined ? undefined : now + decision.checkAfterMs,
    timeouts: key,
  });
  const next = decision.action ? await setManagerParked(deps, cp, names, decision.action === 'park', log) : cp;
  return { checkAfterMs: decision.checkAfterMs, cp: next };
}

/**
 * Parks a plane's kube-controller-manager (records its replicas on the ControlPlane, then scales it to zero), or
 * starts it again (the recorded replicas back, then the record removed). Returns the ControlPlane as last written.
 */
async function setManagerParked(
  deps: ReconcileDeps,
  cp: ControlPlaneObject,
  names: TenantNames,
  park: boolean,
  log: Logger,
): Promise<ControlPlaneObject> {
  const kcm: WorkloadRef = { kind: 'Deployment', name: K8S_WORKLOADS.controllerManager };
  const key = `${kcm.kind}/${kcm.name}`;
  const current = await replicasOf(deps, kcm, names.namespace);
  const annotate = async (value: string | null) =>
    (await annotateControlPlane(deps, cp.metadata.name, { [PARKED_MANAGER_ANNOTATION]: value })) ?? cp;
  const scale = (replicas: number) =>
    deps.hosting.request(
      'PATCH',
      scalePath(kcm, names.namespace),
      { spec: { replicas } },
      'application/merge-patch+json',
    );
  if (park) {
    // Nothing runs (no Deployment, or scaled to zero by someone else): nothing to park or to restore later.
    if (!current) return cp;
    const written = await annotate(encodeAwakeReplicas([{ ...kcm, replicas: current }]));
    await scale(0);
    log.info('kube-controller-manager parked: no write to the plane for its idle timeout', { replicas: current });
    return written;
  }
  const want = decodeAwakeReplicas(cp.metadata.annotations?.[PARKED_MANAGER_ANNOTATION]).get(key) ?? 1;
  if (current === 0) await scale(want);
  log.info('kube-controller-manager started again (a write, parking switched off, or writes not readable)', {
    replicas: want,
  });
  return annotate(null);
}
