// What every pass over one ControlPlane shares, whatever its type: the environment, the Secrets it observed, and
// the one writer of Secrets. The type drivers (types/) and the pass itself (reconcile.ts) build on it.
import type { DropResult } from '../datastore/drop';
import type { TenantDatabase } from '../datastore/provision';
import { HostingConfig } from '../hosting-config';
import { ConnectTo, KubeClient, paths } from '../kube/client';
import type { Logger } from '../kube/log';
import { CONTROL_PLANE_LABEL, HOSTING_NAMESPACE, TenantNames } from '../names';
import { controlPlaneOwnerReference, TENANT_DATABASE_PROVISIONED_KEY } from '../wire';
import { ControlPlaneObject, MANAGED_BY, SecretData, SecretWrite } from './core';

/** What a reconcile needs from its environment. */
/**
 * Why boot admission holds a plane's API server Pod: it waits for one of `slots` (kubeflex-config bootSlots), or it
 * was let go and no node can take it (`unschedulable`: the Pod and the scheduler's words).
 */
export type BootHold = { readonly slots: number } | { readonly unschedulable: string };

export interface ReconcileDeps {
  readonly hosting: KubeClient;
  readonly connectTo: ConnectTo;
  readonly certValiditySeconds: number;
  readonly caValiditySeconds: number;
  readonly notReadyRequeueMs: number;
  readonly hooksRequeueMs: number;
  readonly probeTimeoutMs: number;
  /** Renew adopted clusters' and host planes' tokens after this fraction of their lifetime. */
  readonly tokenRenewFraction: number;
  /** Lifetime of host planes' TokenRequest tokens, in seconds. */
  readonly hostTokenSeconds: number;
  readonly log: Logger;
  readonly now: () => Date;
  /** Per ControlPlane UID: the tenant API server's audit counter and since when it has not moved (sleep on idle). */
  readonly activity: Map<string, import('./sleep').Activity>;
  /** Boot admission: why the API server Pod in this namespace does not start, if admission holds it. */
  readonly bootHold?: (namespace: string) => BootHold | undefined;
  /** Makes a k8s tenant's role and database (idempotent; refuses what it did not make). */
  readonly provisionDatabase: (
    pg: NonNullable<HostingConfig['postgres']>,
    password: string,
    db: TenantDatabase,
    ca: string | undefined,
  ) => Promise<void>;
  /**
   * Rows inserted so far into `database` (PostgreSQL's statistics; kine inserts a row per write of the tenant's API
   * server), or undefined when the server has no such database.
   */
  readonly databaseWrites: (
    pg: NonNullable<HostingConfig['postgres']>,
    database: string,
    credentials: () => Promise<{ password: string; ca?: string }>,
  ) => Promise<number | undefined>;
  readonly dropDatabase: (
    pg: NonNullable<HostingConfig['postgres']>,
    password: string,
    db: string,
    role: string,
    ca: string | undefined,
    /** `kubeflex:<ControlPlane UID>`: a database marked for another plane is kept. */
    mark: string,
  ) => Promise<DropResult>;
}

/** A spec the controller refuses as it is: retried only when the object changes, not with back-off. */
export class TerminalSpecError extends Error {}

export type SecretKey = [namespace: string, name: string];

export type Observed = Map<string, { data: SecretData; resourceVersion: string }>;

export const key = (ns: string, name: string) => `${ns}/${name}`;

export const decode = (d: Record<string, string> | undefined): SecretData =>
  Object.fromEntries(Object.entries(d ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export async function readSecrets(client: KubeClient, into: Observed, keys: [string, string][]): Promise<void> {
  await Promise.all(
    keys.map(async ([ns, n]) => {
      const s = await client.get(paths.secret(ns, n));
      if (s) into.set(key(ns, n), { data: decode(s.data), resourceVersion: s.metadata.resourceVersion });
    }),
  );
}

export const lookupIn = (observed: Observed) => (ns: string, n: string) => observed.get(key(ns, n))?.data;

/** Creates or updates (with optimistic concurrency) one Secret; never logs its data. */
export async function writeSecret(
  deps: ReconcileDeps,
  observed: Observed,
  w: SecretWrite,
  owner?: ControlPlaneObject,
  log = deps.log,
): Promise<void> {
  const existing = observed.get(key(w.namespace, w.name));
  const body = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: w.name,
      namespace: w.namespace,
      labels: { ...MANAGED_BY, ...(owner ? { [CONTROL_PLANE_LABEL]: owner.metadata.name } : {}) },
      // Owned by the ControlPlane, so garbage collection removes it with the control plane.
      ...(owner?.metadata.uid
        ? {
            ownerReferences: [
              controlPlaneOwnerReference({ metadata: { name: owner.metadata.name, uid: owner.metadata.uid } }),
            ],
          }
        : {}),
      ...(existing ? { resourceVersion: existing.resourceVersion } : {}),
    },
    stringData: w.data,
  };
  const saved = existing
    ? await deps.hosting.request('PUT', paths.secret(w.namespace, w.name), body)
    : await deps.hosting.request('POST', paths.secrets(w.namespace), body);
  observed.set(key(w.namespace, w.name), { data: w.data, resourceVersion: saved.metadata.resourceVersion });
  log.info(existing ? 'secret updated' : 'secret created', {
    secret: `${w.namespace}/${w.name}`,
    reason: w.reason,
    keys: Object.keys(w.data).sort(),
  });
}

/** Delay until a token's renewal time (at least 1 s), or none when it has no expiry. */
export const untilRenewal = (renewAt: Date | undefined, now: Date) =>
  renewAt ? Math.max(1000, renewAt.getTime() - now.getTime()) : undefined;

/** True once the controller made the k8s tenant's database: its credentials Secret (this plane's) records it. */
export async function databaseProvisioned(deps: ReconcileDeps, names: TenantNames): Promise<boolean> {
  const s = await deps.hosting.get(paths.secret(HOSTING_NAMESPACE, names.hostingDatabaseSecret));
  return !!s?.data?.[TENANT_DATABASE_PROVISIONED_KEY] && s?.metadata?.labels?.[CONTROL_PLANE_LABEL] === names.name;
}

/**
 * Sets (a string) or removes (null) annotations of the ControlPlane `name` with a merge patch, and returns the plane
 * as the server wrote it: a pass writes its status onto that, since the copy it read before is refused (409).
 */
export async function annotateControlPlane(
  deps: ReconcileDeps,
  name: string,
  annotations: Record<string, string | null>,
): Promise<ControlPlaneObject> {
  return deps.hosting.request<ControlPlaneObject>(
    'PATCH',
    paths.controlPlane(name),
    { metadata: { annotations } },
    'application/merge-patch+json',
  );
}
