import { KubeflexConfigError } from './errors';

// Sleep on idle and wake on request (our extension; KubeFlex has neither): the names and the duration format that
// the constructs, the controller, the activator and kflex share. Free of cdk8s (the runtime loads it).

/**
 * Annotation on a ControlPlane: sleep after this long without a client request (a duration such as `15m`). The
 * construct prop `idleTimeout` writes it; on a bare ControlPlane it is the author's, else the hosting default applies.
 */
export const IDLE_TIMEOUT_ANNOTATION = 'kflex.kubestellar.org/idle-timeout';
/**
 * Annotation on a sleeping ControlPlane: the replicas of its workloads before it slept (`kind/name=replicas,...`),
 * restored by the controller once the sleeping annotation is gone (whoever removed it: kflex wake, the activator).
 */
export const AWAKE_REPLICAS_ANNOTATION = 'kflex.kubestellar.org/awake-replicas';

/**
 * Annotation on a ControlPlane whose kube-controller-manager is parked (hosting `controllerManagerIdleTimeout`): its
 * replicas before (`Deployment/kube-controller-manager=<n>`), restored when a client request is seen again.
 */
export const PARKED_MANAGER_ANNOTATION = 'kflex.kubestellar.org/parked-manager';
/** The hosting install's default `controllerManagerIdleTimeout`. */
export const DEFAULT_MANAGER_IDLE_TIMEOUT = '10m';

/** The shortest idle timeout: a plane that sleeps within a minute of its last request wakes more than it sleeps. */
export const MIN_IDLE_TIMEOUT_SECONDS = 60;
/** The longest: 30 days (beyond that, sleep by hand). */
export const MAX_IDLE_TIMEOUT_SECONDS = 30 * 86_400;

/** The activator: Deployment, ServiceAccount and RBAC in kubeflex-system. */
export const ACTIVATOR_NAME = 'kubeflex-activator';
/** `endpointslice.kubernetes.io/managed-by` of the EndpointSlices the activator adds to a sleeping plane's Service. */
export const ACTIVATOR_MANAGED_BY = 'activator.kflex.kubestellar.org';
/** The ports the activator listens on, one per sleeping plane (kept in its EndpointSlice, so a restart keeps them). */
export const ACTIVATOR_PORTS = { first: 20000, last: 29999 } as const;
/** Port of the activator's health endpoint. */
export const ACTIVATOR_HEALTH_PORT = 8083;
/** Label of the EndpointSlice the Service's own controller manages (the plane's pods). */
export const ENDPOINTSLICE_MANAGED_BY = 'endpointslice.kubernetes.io/managed-by';
export const ENDPOINTSLICE_SERVICE_NAME = 'kubernetes.io/service-name';

/**
 * Parses an idle timeout: `<n>s`, `<n>m`, `<n>h`, `<n>d` or a sum such as `1h30m`. Returns seconds, or why the
 * text is not one (the caller names the construct, prop or annotation).
 */
export function parseIdleTimeout(text: string): { seconds: number } | { error: string } {
  const m = /^(?:(\d{1,7})d)?(?:(\d{1,7})h)?(?:(\d{1,7})m)?(?:(\d{1,7})s)?$/.exec(text);
  if (!text || !m) return { error: 'is not a duration (use e.g. 90s, 15m, 1h30m, 2d)' };
  const seconds = Number(m[1] ?? 0) * 86_400 + Number(m[2] ?? 0) * 3_600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
  if (seconds < MIN_IDLE_TIMEOUT_SECONDS) return { error: `is below the floor of ${MIN_IDLE_TIMEOUT_SECONDS}s` };
  if (seconds > MAX_IDLE_TIMEOUT_SECONDS)
    return { error: `is above the ceiling of ${MAX_IDLE_TIMEOUT_SECONDS / 86_400}d` };
  return { seconds };
}

/** The workloads' replicas as the awake-replicas annotation holds them. */
export function encodeAwakeReplicas(replicas: ReadonlyArray<{ kind: string; name: string; replicas: number }>): string {
  return replicas.map((r) => `${r.kind}/${r.name}=${r.replicas}`).join(',');
}

/** Reads the awake-replicas annotation strictly (it is on a tenant's object): unknown or bad entries are left out. */
export function decodeAwakeReplicas(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const part of (text ?? '').split(',')) {
    const m = /^(Deployment|StatefulSet)\/([a-z0-9][a-z0-9.-]{0,252})=(\d{1,2})$/.exec(part);
    if (m && Number(m[3]) >= 1) out.set(`${m[1]}/${m[2]}`, Number(m[3]));
  }
  return out;
}

/** An idle timeout given to `where` as `prop`: a duration within bounds, else a KubeflexConfigError naming both. */
export function checkIdleTimeout(where: string, prop: string, value: unknown): string {
  const parsed = typeof value === 'string' ? parseIdleTimeout(value) : { error: 'is not a string' };
  if ('error' in parsed) throw new KubeflexConfigError(where, prop, value, parsed.error);
  return value as string;
}
