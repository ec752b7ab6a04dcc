// The external type: an existing cluster adopted from a bootstrap kubeconfig (KubeFlex's `kflex adopt`).
import { KubeClient, paths } from '../../kube/client';
import type { Logger } from '../../kube/log';
import { HOSTING_NAMESPACE, TenantNames } from '../../names';
import { ADMIN_KUBECONFIG_KEYS, ADMIN_KUBECONFIG_SECRET } from '../../wire';
import { ControlPlaneObject, externalAdminData, externalKubeconfig, planExternal, SecretData } from '../core';
import { decode, key, Observed, ReconcileDeps, TerminalSpecError, untilRenewal, writeSecret } from '../pass';
import { TypeDriver } from './driver';

export const external: TypeDriver = {
  probesApi: true,
  async reconcile(c) {
    const allowed = [HOSTING_NAMESPACE, ...(c.config.bootstrapSecretNamespaces ?? [])];
    return { requeueAfterMs: await reconcileExternal(c.deps, c.cp, c.names, c.observed, allowed, c.log) };
  },
};

async function reconcileExternal(
  deps: ReconcileDeps,
  cp: ControlPlaneObject,
  names: TenantNames,
  observed: Observed,
  bootstrapNamespaces: readonly string[],
  log: Logger,
): Promise<number | undefined> {
  // Only this plane's own bootstrap Secret: the controller reads it with its own identity, so any other reference
  // would make it a confused deputy (security review C1). The CRD refuses such references too; this check also covers
  // objects stored before that rule existed. The Secret needs no label (KubeFlex's `kflex adopt` sets none): the
  // admission policy admits a reference only from an author who may read that Secret themselves, so the controller
  // reads nothing its author could not (lib/admission.ts).
  // The admin lists the namespaces where bootstrap Secrets may be (KubeStellar's chart uses its release namespace).
  const ref = cp.spec?.bootstrapSecretRef;
  const bootstrapName = names.bootstrapSecret;
  const bootstrapNs = ref?.namespace ?? HOSTING_NAMESPACE;
  if (ref && (!bootstrapNamespaces.includes(ref.namespace ?? '') || ref.name !== bootstrapName)) {
    throw new TerminalSpecError(
      `spec.bootstrapSecretRef ${ref.namespace}/${ref.name} is refused: only ${bootstrapName} in ${bootstrapNamespaces.join(' or ')} is read`,
    );
  }
  let bootstrap: SecretData | undefined;
  const s = ref ? await deps.hosting.get(paths.secret(bootstrapNs, bootstrapName)) : undefined;
  if (s) bootstrap = decode(s.data);
  const now = deps.now();
  const plan = planExternal(
    cp,
    observed.get(key(names.namespace, ADMIN_KUBECONFIG_SECRET))?.data,
    bootstrap,
    now,
    deps.tokenRenewFraction,
  );
  if (plan.action === 'error') throw new Error(plan.message);
  if (plan.action === 'keep') {
    // Secrets written before the off-cluster key existed get it (status.secretRef.key must name a present key).
    const admin = observed.get(key(names.namespace, ADMIN_KUBECONFIG_SECRET))?.data;
    if (admin && admin[ADMIN_KUBECONFIG_KEYS.key] !== admin[ADMIN_KUBECONFIG_KEYS.inClusterKey]) {
      await writeSecret(
        deps,
        observed,
        {
          namespace: names.namespace,
          name: ADMIN_KUBECONFIG_SECRET,
          data: externalAdminData(admin[ADMIN_KUBECONFIG_KEYS.inClusterKey]),
          reason: 'off-cluster key kubeconfig missing',
        },
        cp,
        log,
      );
    }
    return untilRenewal(plan.renewAt, now);
  }

  const adopted = KubeClient.fromParsed(plan.via, deps.connectTo, deps.probeTimeoutMs);
  try {
    // Create-if-absent: the ServiceAccount and its cluster-admin binding on the adopted cluster (KubeFlex's names).
    await adopted.createIfAbsent('/api/v1/namespaces/kube-system/serviceaccounts', {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'kubeflex', namespace: 'kube-system' },
    });
    await adopted.createIfAbsent(paths.clusterRoleBindings, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'kubeflex-clusterrolebinding' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'ServiceAccount', name: 'kubeflex', namespace: 'kube-system' }],
    });
    const tr = await adopted.request('POST', '/api/v1/namespaces/kube-system/serviceaccounts/kubeflex/token', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: cp.spec?.tokenExpirationSeconds ?? 31536000, audiences: [] },
    });
    const token: string = tr.status.token;
    await writeSecret(
      deps,
      observed,
      {
        namespace: names.namespace,
        name: ADMIN_KUBECONFIG_SECRET,
        data: externalAdminData(externalKubeconfig(names, plan.via, token)),
        reason: plan.reason,
      },
      cp,
      log,
    );
    if (plan.deleteBootstrap && s) {
      // Deleted only with a precondition on the UID just verified, never by name alone.
      await deps.hosting.request('DELETE', paths.secret(bootstrapNs, bootstrapName), {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        preconditions: { uid: s.metadata.uid, resourceVersion: s.metadata.resourceVersion },
      });
      log.info('bootstrap secret deleted', { secret: `${bootstrapNs}/${bootstrapName}` });
    }
    return 0;
  } finally {
    adopted.close();
  }
}
