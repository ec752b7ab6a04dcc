// The k8s type: kube-apiserver on kine on the shared PostgreSQL; the controller mints its PKI, kubeconfigs and
// database credentials, makes its role and database, and drops them when the plane is deleted.
import { DatabaseRefusedError, provisionedDigest } from '../../datastore/provision';
import { decodeHostingConfig, HostingConfig } from '../../hosting-config';
import { paths } from '../../kube/client';
import { CONTROL_PLANE_LABEL, HOSTING_NAMESPACE, tenantNames } from '../../names';
import {
  HOSTING_CONFIGMAP,
  TENANT_DATABASE_MARK_KEY,
  TENANT_DATABASE_PROVISIONED_KEY,
  tenantDatabaseMark,
} from '../../wire';
import { planK8sSecrets } from '../core';
import { databaseProvisioned, decode, errorText, key, ReconcileDeps, SecretKey, TerminalSpecError } from '../pass';
import { AfterResult, PassContext, TypeDriver } from './driver';

/** The superuser's password of `pg`, read from its Secret in the hosting namespace when it is needed. */
async function superuserPassword(
  deps: ReconcileDeps,
  pg: NonNullable<HostingConfig['postgres']>,
): Promise<string | undefined> {
  return decode((await deps.hosting.get(paths.secret(HOSTING_NAMESPACE, pg.passwordSecret)))?.data)[pg.passwordKey];
}

/**
 * Makes the plane's role and database once its credentials are stored, unless the credentials Secret records that
 * this password and mark were provisioned already (so a thousand planes' passes do not each reach PostgreSQL). kine
 * retries its connection until then. A server that cannot be reached yet (the bundled one still starting) leaves the
 * plane not Ready with the reason, looked at again on the not-Ready schedule; a refusal (a role or database of
 * someone else) fails the pass and waits for the admin or a new spec, not for back-off retries.
 */
async function provision(c: PassContext): Promise<AfterResult> {
  const pg = c.config.postgres!;
  const stored = c.observed.get(key(HOSTING_NAMESPACE, c.names.hostingDatabaseSecret))?.data;
  const password = stored?.password;
  const mark = stored?.[TENANT_DATABASE_MARK_KEY];
  if (!password || !mark) return {};
  const digest = provisionedDigest({ mark, password });
  if (stored[TENANT_DATABASE_PROVISIONED_KEY] === digest) return { mayFinalize: true };
  // Read only here, when there is something to make: every other pass would pay a round trip for it.
  const superPassword = await superuserPassword(c.deps, pg);
  if (!superPassword)
    return { notReady: `waiting for Secret ${HOSTING_NAMESPACE}/${pg.passwordSecret} key ${pg.passwordKey}` };
  const ca = pg.ca ? c.lookup(HOSTING_NAMESPACE, pg.ca.secret)?.[pg.ca.key] : undefined;
  const db = { database: c.names.database, role: c.names.databaseRole, password, mark };
  try {
    await c.deps.provisionDatabase(pg, superPassword, db, ca);
  } catch (e) {
    const why = `database ${db.database} on ${pg.host}:${pg.port} not provisioned: ${errorText(e)}`;
    if (e instanceof DatabaseRefusedError) throw new TerminalSpecError(why);
    return { notReady: why };
  }
  c.log.info('database provisioned', { database: db.database, role: db.role });
  return {
    mayFinalize: true,
    writes: [
      {
        namespace: HOSTING_NAMESPACE,
        name: c.names.hostingDatabaseSecret,
        data: { ...stored, [TENANT_DATABASE_PROVISIONED_KEY]: digest },
        reason: 'database provisioned',
      },
    ],
  };
}

export const k8s: TypeDriver = {
  probesApi: true,
  openShiftRoute: true,
  extraSecrets: (n, config) => [
    ...(config.postgres?.ca ? [[HOSTING_NAMESPACE, config.postgres.ca.secret] as SecretKey] : []),
    [HOSTING_NAMESPACE, n.hostingDatabaseSecret],
  ],
  // Only once its database was made, so a plane that never provisioned drops nothing (review H2).
  mayFinalize: databaseProvisioned,
  async reconcile(c) {
    if (!c.config.postgres)
      throw new Error('ConfigMap kubeflex-config has no postgresHost: k8s control planes need the shared PostgreSQL');
    // On OpenShift the Route's host goes into the kubeconfig: nothing is minted before OpenShift assigned it.
    if (c.config.isOpenShift && !c.routeHost) return {};
    const plan = planK8sSecrets(c.names, c.cp.metadata.uid ?? '', c.config, c.lookup, c.opts, c.routeHost);
    if (plan.waitingFor) return { writes: plan.writes, notReady: `waiting for ${plan.waitingFor}` };
    return { writes: plan.writes, after: () => provision(c) };
  },
  async finalize(deps, cp, log) {
    const name = cp.metadata.name;
    const names = tenantNames(name);
    const config = decodeHostingConfig(
      (await deps.hosting.get(paths.configMap(HOSTING_NAMESPACE, HOSTING_CONFIGMAP)))?.data,
    );
    if (config.postgres) {
      const password = await superuserPassword(deps, config.postgres);
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
