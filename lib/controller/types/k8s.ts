// The k8s type: kube-apiserver on kine on the shared PostgreSQL; the controller mints its PKI, kubeconfigs and
// database credentials, and drops its database when the plane is deleted.
import { decodeHostingConfig } from '../../hosting-config';
import { paths } from '../../kube/client';
import { CONTROL_PLANE_LABEL, HOSTING_NAMESPACE, tenantNames } from '../../names';
import { HOSTING_CONFIGMAP, tenantDatabaseMark } from '../../wire';
import { planK8sSecrets } from '../core';
import { databaseProvisioned, decode, SecretKey } from '../pass';
import { TypeDriver } from './driver';

export const k8s: TypeDriver = {
  probesApi: true,
  openShiftRoute: true,
  extraSecrets: (n, config) => [
    ...(config.postgres?.ca ? [[HOSTING_NAMESPACE, config.postgres.ca.secret] as SecretKey] : []),
    [HOSTING_NAMESPACE, n.hostingDatabaseSecret],
  ],
  // Only once its database Job succeeded, so a plane that never provisioned drops nothing (review H2).
  mayFinalize: databaseProvisioned,
  async reconcile(c) {
    if (!c.config.postgres)
      throw new Error('ConfigMap kubeflex-config has no postgresHost: k8s control planes need the shared PostgreSQL');
    // On OpenShift the Route's host goes into the kubeconfig: nothing is minted before OpenShift assigned it.
    if (c.config.isOpenShift && !c.routeHost) return {};
    const plan = planK8sSecrets(c.names, c.cp.metadata.uid ?? '', c.config, c.lookup, c.opts, c.routeHost);
    return { writes: plan.writes, notReady: plan.waitingFor && `waiting for ${plan.waitingFor}` };
  },
  async finalize(deps, cp, log) {
    const name = cp.metadata.name;
    const names = tenantNames(name);
    const config = decodeHostingConfig(
      (await deps.hosting.get(paths.configMap(HOSTING_NAMESPACE, HOSTING_CONFIGMAP)))?.data,
    );
    if (config.postgres) {
      const secret = await deps.hosting.get(paths.secret(HOSTING_NAMESPACE, config.postgres.passwordSecret));
      const password = decode(secret?.data)[config.postgres.passwordKey];
      if (!password)
        throw new Error(
          `cannot drop database ${names.database}: Secret ${HOSTING_NAMESPACE}/${config.postgres.passwordSecret} has no ${config.postgres.passwordKey}`,
        );
      const caRef = config.postgres.ca;
      const ca = caRef
        ? decode((await deps.hosting.get(paths.secret(HOSTING_NAMESPACE, caRef.secret)))?.data)[caRef.key]
        : undefined;
      const r = await deps.dropDatabase(
        config.postgres,
        password,
        names.database,
        names.databaseRole,
        ca,
        tenantDatabaseMark(cp.metadata.uid ?? ''),
      );
      log.info('database dropped', { database: names.database, role: names.databaseRole, ...r });
    }
    // Only this plane's own credentials Secret (its label), deleted with a precondition on the UID just read: a
    // finalizer an author added by hand cannot make the controller delete someone else's Secret (review N7).
    const creds = await deps.hosting.get(paths.secret(HOSTING_NAMESPACE, names.hostingDatabaseSecret));
    if (creds?.metadata?.labels?.[CONTROL_PLANE_LABEL] === name) {
      await deps.hosting.deleteIfPresent(paths.secret(HOSTING_NAMESPACE, names.hostingDatabaseSecret), {
        uid: creds.metadata.uid,
      });
    } else if (creds) {
      log.warn('database credentials Secret kept: it lacks the plane label', {
        secret: `${HOSTING_NAMESPACE}/${names.hostingDatabaseSecret}`,
      });
    }
  },
};
