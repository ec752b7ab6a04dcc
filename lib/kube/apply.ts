// Server-side apply of synthesized objects and label-based cleanup, through the KubeClient adapter.
import { API_VERSION, CONTROL_PLANE_LABEL } from '../names';
import { ApiError, KubeClient, sleep } from './client';

/** Field manager of everything kflex applies (one owner for every field it sets). */
export const FIELD_MANAGER = 'kflex';

interface Resource {
  plural: string;
  namespaced: boolean;
}

/** Maps apiVersion/kind to REST paths through discovery, cached per group version. */
export class Discovery {
  private readonly cache = new Map<string, Map<string, Resource>>();
  public constructor(private readonly client: KubeClient) {}

  public forget(apiVersion: string): void {
    this.cache.delete(apiVersion);
  }

  public async resource(apiVersion: string, kind: string): Promise<Resource> {
    let kinds = this.cache.get(apiVersion);
    if (!kinds) {
      const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      const list = await this.client.get<any>(path);
      kinds = new Map();
      for (const r of list?.resources ?? []) {
        if (!String(r.name).includes('/')) kinds.set(r.kind, { plural: r.name, namespaced: r.namespaced });
      }
      this.cache.set(apiVersion, kinds);
    }
    const r = kinds.get(kind);
    if (!r) throw new Error(`the cluster does not serve ${kind} in ${apiVersion}`);
    return r;
  }

  /** REST path of a named object. */
  public async path(obj: {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace?: string };
  }): Promise<string> {
    const r = await this.resource(obj.apiVersion, obj.kind);
    const prefix = obj.apiVersion.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
    const ns = r.namespaced ? `/namespaces/${obj.metadata.namespace ?? 'default'}` : '';
    return `${prefix}${ns}/${r.plural}/${obj.metadata.name}`;
  }
}

/** A tenant namespace exists already and is not the plane's. */
export class NamespaceTakenError extends Error {}

/** An object to apply is cluster-scoped where only namespaced objects (and the tenant Namespace) were allowed. */
export class ClusterScopedError extends Error {}

/**
 * Server-side applies objects in a safe order: CRDs (waiting until Established), namespaces, then the rest.
 * `force` takes over fields another manager set (re-running kflex after `kubectl apply`).
 */
export async function applyObjects(
  client: KubeClient,
  objects: any[],
  discovery = new Discovery(client),
  fieldManager = FIELD_MANAGER,
  opts: { readonly clusterScoped?: 'any' | 'namespaces-only' } = {},
): Promise<void> {
  const rank = (o: any) => (o.kind === 'CustomResourceDefinition' ? 0 : o.kind === 'Namespace' ? 1 : 2);
  const sorted = [...objects].sort((a, b) => rank(a) - rank(b));
  if (opts.clusterScoped === 'namespaces-only') {
    // Whether a kind is cluster-scoped is the API server's answer (discovery), not a list of ours: a hook's
    // ClusterIssuer or a CRD-defined cluster-scoped kind is refused like a ClusterRoleBinding (review N9).
    for (const o of sorted) {
      // The tenant's own Namespace and ControlPlane are the cluster-scoped objects a tenant is made of.
      if (o.kind === 'Namespace' || (o.kind === 'ControlPlane' && o.apiVersion === API_VERSION)) continue;
      if (!(await discovery.resource(o.apiVersion, o.kind)).namespaced) {
        throw new ClusterScopedError(
          `${o.kind} ${o.metadata?.name} (${o.apiVersion}) is cluster-scoped on this cluster: it would be applied outside the tenant namespace with your rights; pass --allow-cluster-scoped to apply it; nothing was applied`,
        );
      }
    }
  }
  // Never take over a namespace that exists without this plane's label (kube-system, an app's namespace; M6):
  // checked for all before anything is applied.
  for (const obj of sorted.filter((o) => o.kind === 'Namespace' && o.metadata?.labels?.[CONTROL_PLANE_LABEL])) {
    const label = obj.metadata.labels[CONTROL_PLANE_LABEL];
    const existing = await client.get<any>(`/api/v1/namespaces/${obj.metadata.name}`);
    if (existing && existing.metadata?.labels?.[CONTROL_PLANE_LABEL] !== label) {
      throw new NamespaceTakenError(
        `namespace ${obj.metadata.name} already exists and does not belong to control plane ${label}; nothing was applied`,
      );
    }
  }
  for (const obj of sorted) {
    const path = await discovery.path(obj);
    await serverSideApply(client, path, obj, fieldManager);
    if (obj.kind === 'CustomResourceDefinition') {
      await waitEstablished(client, path);
      for (const v of obj.spec?.versions ?? []) discovery.forget(`${obj.spec.group}/${v.name}`);
    }
  }
}

/** One server-side apply (PATCH, taking over conflicting fields); with `dryRun`, judged and answered but not stored. */
export function serverSideApply(
  client: KubeClient,
  path: string,
  obj: unknown,
  fieldManager: string,
  dryRun = false,
): Promise<unknown> {
  return client.request(
    'PATCH',
    `${path}?fieldManager=${fieldManager}&force=true${dryRun ? '&dryRun=All' : ''}`,
    obj,
    'application/apply-patch+yaml',
  );
}

async function waitEstablished(client: KubeClient, path: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const crd = await client.get<any>(path);
    if ((crd?.status?.conditions ?? []).some((c: any) => c.type === 'Established' && c.status === 'True')) return;
    await sleep(100);
  }
  throw new Error(`${path} was not Established within 30 s`);
}

/** Kinds kflex may have created for a control plane outside its namespace, plus the namespace itself. */
const SWEPT: { path: string; namespaced?: boolean }[] = [
  { path: '/api/v1/namespaces/kubeflex-system/secrets' },
  { path: '/api/v1/namespaces/kubeflex-system/configmaps' },
  { path: '/api/v1/namespaces/kubeflex-system/serviceaccounts' },
  { path: '/apis/rbac.authorization.k8s.io/v1/namespaces/kubeflex-system/roles' },
  { path: '/apis/rbac.authorization.k8s.io/v1/namespaces/kubeflex-system/rolebindings' },
  { path: '/apis/rbac.authorization.k8s.io/v1/clusterroles' },
  { path: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings' },
  { path: '/apis/apiextensions.k8s.io/v1/customresourcedefinitions' },
  { path: '/api/v1/namespaces' },
];

/** Deletes every object carrying `label=value` among the kinds kflex creates; returns what it deleted. */
export async function deleteByLabel(client: KubeClient, label: string, value: string): Promise<string[]> {
  const deleted: string[] = [];
  const selector = encodeURIComponent(`${label}=${value}`);
  for (const s of SWEPT) {
    let list: any;
    try {
      list = await client.request('GET', `${s.path}?labelSelector=${selector}`);
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 403)) continue;
      throw e;
    }
    for (const item of list.items ?? []) {
      await client.deleteIfPresent(`${s.path}/${item.metadata.name}?propagationPolicy=Background`);
      deleted.push(`${s.path.split('/').pop()}/${item.metadata.name}`);
    }
  }
  return deleted;
}
