// The activator's decisions as plain functions: which planes it serves, on which port, the EndpointSlice that leads
// their Service to it, and which of a plane's own endpoints is ready. No I/O (activator.ts does that).
import { ACTIVATOR_MANAGED_BY, ACTIVATOR_PORTS, ENDPOINTSLICE_MANAGED_BY, ENDPOINTSLICE_SERVICE_NAME } from '../idle';
import { CONTROL_PLANE_LABEL, tenantNames } from '../names';
import {
  BOOTED_ANNOTATION,
  controlPlaneOwnerReference,
  ControlPlaneObject,
  SLEEP_ANNOTATION,
  typeContract,
} from '../wire';

/** The Service a sleeping plane's clients use, as the activator serves it. */
export interface ServedPlane {
  readonly name: string;
  readonly namespace: string;
  readonly service: string;
  readonly portName: string;
  /** Its API answered ready before (wire BOOTED_ANNOTATION): a wake need not wait for the bootstrap hooks. */
  readonly booted: boolean;
}

/** The plane's Service if the activator must serve it now (asleep, of a type that sleeps, not being deleted). */
export function servedPlane(cp: ControlPlaneObject | undefined): ServedPlane | undefined {
  if (!cp || cp.metadata.deletionTimestamp || cp.metadata.annotations?.[SLEEP_ANNOTATION] !== 'true') return undefined;
  return planeService(cp);
}

/** The plane's API Service, for any plane of a type that sleeps. */
export function planeService(cp: ControlPlaneObject): ServedPlane | undefined {
  const api = typeContract(cp.spec?.type)?.apiService;
  if (!api || !typeContract(cp.spec?.type)?.sleepWorkloads.length) return undefined;
  const namespace = tenantNames(cp.metadata.name).namespace;
  return {
    name: cp.metadata.name,
    namespace,
    service: api.name(cp.metadata.name),
    portName: api.port,
    booted: cp.metadata.annotations?.[BOOTED_ANNOTATION] === 'true',
  };
}

/** Name of the activator's EndpointSlice of `service` (a DNS subdomain: Service names are labels). */
export const sliceName = (service: string) => `${service}-kflex-activator`;

/** The lowest port of the range no plane uses, or undefined when all are taken. */
export function allocatePort(used: ReadonlySet<number>): number | undefined {
  for (let p = ACTIVATOR_PORTS.first; p <= ACTIVATOR_PORTS.last; p++) if (!used.has(p)) return p;
  return undefined;
}

/** The port an activator EndpointSlice records (a restarted activator listens there again), if it is one of ours. */
export function slicePort(slice: any): { plane: string; port: number } | undefined {
  const plane = slice?.metadata?.labels?.[CONTROL_PLANE_LABEL];
  const port = slice?.ports?.[0]?.port;
  if (slice?.metadata?.labels?.[ENDPOINTSLICE_MANAGED_BY] !== ACTIVATOR_MANAGED_BY || typeof plane !== 'string')
    return undefined;
  if (!Number.isInteger(port) || port < ACTIVATOR_PORTS.first || port > ACTIVATOR_PORTS.last) return undefined;
  return { plane, port };
}

/** The EndpointSlice that adds the activator (at `ip`:`port`) to the plane's Service, owned by the ControlPlane. */
export function activatorSlice(
  cp: ControlPlaneObject & { metadata: { uid: string } },
  plane: ServedPlane,
  ip: string,
  port: number,
): any {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: sliceName(plane.service),
      namespace: plane.namespace,
      labels: {
        [ENDPOINTSLICE_SERVICE_NAME]: plane.service,
        [ENDPOINTSLICE_MANAGED_BY]: ACTIVATOR_MANAGED_BY,
        [CONTROL_PLANE_LABEL]: plane.name,
      },
      ownerReferences: [controlPlaneOwnerReference(cp)],
    },
    addressType: ip.includes(':') ? 'IPv6' : 'IPv4',
    endpoints: [{ addresses: [ip], conditions: { ready: true, serving: true, terminating: false } }],
    ports: [{ name: plane.portName, port, protocol: 'TCP' }],
  };
}

/** Whether an existing activator slice already says what `want` says (address and port). */
export function sliceCurrent(existing: any, want: any): boolean {
  return (
    existing?.endpoints?.[0]?.addresses?.[0] === want.endpoints[0].addresses[0] &&
    existing?.endpoints?.[0]?.conditions?.ready === true &&
    existing?.ports?.[0]?.port === want.ports[0].port &&
    existing?.ports?.[0]?.name === want.ports[0].name
  );
}

/**
 * A ready endpoint of the plane's own pods among the Service's EndpointSlices (the activator's own left out), as
 * host and port to dial; undefined while none is ready. `starting` lists the endpoints not ready yet and not
 * terminating: a waking plane's new Pod, whose own /readyz the activator asks before the kubelet's next probe does.
 */
export function readyEndpoint(
  slices: any[],
  portName: string,
  starting: { host: string; port: number }[] = [],
): { host: string; port: number } | undefined {
  for (const s of slices) {
    if (s?.metadata?.labels?.[ENDPOINTSLICE_MANAGED_BY] === ACTIVATOR_MANAGED_BY) continue;
    const port = (s?.ports ?? []).find((p: any) => (p?.name ?? '') === portName)?.port;
    if (!Number.isInteger(port)) continue;
    for (const e of s?.endpoints ?? []) {
      const address = e?.addresses?.[0];
      if (typeof address !== 'string') continue;
      if (e?.conditions?.ready === true) return { host: address, port };
      if (e?.conditions?.terminating !== true) starting.push({ host: address, port });
    }
  }
  return undefined;
}
