// The host type: the hosting cluster itself, as a ServiceAccount bound to cluster-admin (KubeFlex's type).
import { ApiError, paths } from '../../kube/client';
import type { Logger } from '../../kube/log';
import { CONTROL_PLANE_LABEL, TenantNames } from '../../names';
import {
  ADMIN_KUBECONFIG_KEYS,
  ADMIN_KUBECONFIG_SECRET,
  controlPlaneOwnerReference,
  hostBindingName,
  MATERIALIZED_FOR,
  MATERIALIZED_TYPE,
} from '../../wire';
import { ControlPlaneObject, HOST_NO_OFF_CLUSTER_KUBECONFIG, hostKubeconfig, planHostToken } from '../core';
import { key, Observed, ReconcileDeps, TerminalSpecError, untilRenewal, writeSecret } from '../pass';
import { TypeDriver } from './driver';

export const host: TypeDriver = {
  readyMessage: HOST_NO_OFF_CLUSTER_KUBECONFIG,
  // Its kubeconfig is a token for the hosting API server: written is ready (KubeFlex: always ready).
  probesApi: false,
  extraSecrets: (n) => [[n.namespace, n.name]], // the ServiceAccount token Secret carries the plane's name (KubeFlex)
  async reconcile(c) {
    if (!c.config.hostControlPlanes) {
      throw new TerminalSpecError(
        'host control planes are disabled in this hosting install (hostControlPlanes: false)',
      );
    }
    await ensureHostBinding(c.deps, c.cp, c.names, c.ns, c.log);
    const h = await reconcileHost(c.deps, c.cp, c.names, c.observed, c.log);
    return { requeueAfterMs: h.requeueAfterMs, notReady: h.waitingFor && `waiting for ${h.waitingFor}` };
  },
};

/**
 * host: binds ServiceAccount `<cp>-system/<cp>` to cluster-admin (ClusterRoleBinding `kubeflex:host:<cp>`, owned by
 * the ControlPlane so garbage collection removes it with the plane). The API server admitted this plane as `host`
 * only for a principal holding the `host` verb, which is what makes the binding the admin's decision. A binding of
 * that name that is not this plane's is never touched; a namespace the materializer made for another type (its
 * type annotation) gets no binding, so no workload of the materializer can run beside the token.
 */
async function ensureHostBinding(
  deps: ReconcileDeps,
  cp: ControlPlaneObject,
  names: TenantNames,
  ns: { metadata?: { annotations?: Record<string, string> } },
  log: Logger,
): Promise<void> {
  const annotations = ns.metadata?.annotations ?? {};
  if (annotations[MATERIALIZED_FOR] !== undefined) {
    if (annotations[MATERIALIZED_FOR] !== cp.metadata.uid || annotations[MATERIALIZED_TYPE] !== 'host') {
      throw new TerminalSpecError(
        `namespace ${names.namespace} was materialized for another ControlPlane or type (${MATERIALIZED_FOR}=${annotations[MATERIALIZED_FOR]}, ${MATERIALIZED_TYPE}=${annotations[MATERIALIZED_TYPE] ?? ''}): no host binding is made`,
      );
    }
  }
  const name = hostBindingName(names.name);
  const existing = await deps.hosting.get(paths.clusterRoleBinding(name));
  if (existing) {
    const owned = (existing.metadata?.ownerReferences ?? []).some(
      (r: any) => r.kind === 'ControlPlane' && r.uid === cp.metadata.uid,
    );
    if (!owned) {
      throw new TerminalSpecError(
        `ClusterRoleBinding ${name} exists and is not owned by this ControlPlane (uid ${cp.metadata.uid}): it is left untouched`,
      );
    }
    return;
  }
  await deps.hosting.createIfAbsent(paths.clusterRoleBindings, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: {
      name,
      labels: { [CONTROL_PLANE_LABEL]: names.name },
      ownerReferences: [controlPlaneOwnerReference({ metadata: { name: names.name, uid: cp.metadata.uid ?? '' } })],
    },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ kind: 'ServiceAccount', name: names.name, namespace: names.namespace }],
  });
  log.info('host binding created', { controlPlane: names.name, clusterRoleBinding: name });
}

/**
 * host: mints a TokenRequest token for ServiceAccount `<cp>` on the hosting cluster (lifetime `hostTokenSeconds`)
 * into `admin-kubeconfig`, and renews it after `tokenRenewFraction` of its lifetime. Returns when to look again.
 */
async function reconcileHost(
  deps: ReconcileDeps,
  cp: ControlPlaneObject,
  names: TenantNames,
  observed: Observed,
  log: Logger,
): Promise<{ requeueAfterMs?: number; waitingFor?: string }> {
  const ns = names.namespace;
  const now = deps.now();
  const plan = planHostToken(observed.get(key(ns, ADMIN_KUBECONFIG_SECRET))?.data, now, deps.tokenRenewFraction);
  if (plan.action === 'keep') return { requeueAfterMs: untilRenewal(plan.renewAt, now) };
  const ca = (await deps.hosting.get(paths.configMap(ns, 'kube-root-ca.crt')))?.data?.['ca.crt'];
  if (!ca) return { waitingFor: `ConfigMap ${ns}/kube-root-ca.crt` };
  let tr: any;
  try {
    tr = await deps.hosting.request('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${names.name}/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: deps.hostTokenSeconds, audiences: [] },
    });
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return { waitingFor: `ServiceAccount ${ns}/${names.name}` };
    throw e;
  }
  await writeSecret(
    deps,
    observed,
    {
      namespace: ns,
      name: ADMIN_KUBECONFIG_SECRET,
      data: { [ADMIN_KUBECONFIG_KEYS.inClusterKey]: hostKubeconfig(names, ca, tr.status.token) },
      reason: plan.reason,
    },
    cp,
    log,
  );
  return { requeueAfterMs: 0 };
}
