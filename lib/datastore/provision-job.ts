// The datastore room: a k8s tenant's provisioning Job (in kubeflex-system), which runs the script of provision.ts
// against the tenant's server with the superuser's password and the tenant's credentials from Secrets. A child of the
// tenant's chart with the ids it always had.
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { HOSTING_NAMESPACE, TenantNames } from '../names';
import { POD_LABELS } from '../network-policy';
import { resources, restrictedContainer, restrictedPod } from '../security';
import { POSTGRES_CA_KEY, TENANT_DATABASE_MARK_KEY } from '../wire';
import { PostgresEndpoint } from './endpoint';
import { DB_PROVISION_CONFIGMAP } from './provision';

/** CA certificate of the tenant's PostgreSQL, in kine and the provisioning Job. */
export const PG_CA_DIR = '/etc/postgresql-ca';

/** The Job that makes `names`' role and database on `postgres` (idempotent; refuses what it did not make). */
export function addTenantDatabaseJob(scope: Construct, names: TenantNames, postgres: PostgresEndpoint): kplus.Job {
  const superuser = kplus.Secret.fromSecretName(scope, 'PostgresSuperuser', postgres.passwordSecretName);
  const tenant = kplus.Secret.fromSecretName(scope, 'DatabaseCredentials', names.hostingDatabaseSecret);
  const script = kplus.ConfigMap.fromConfigMapName(scope, 'ProvisionScript', DB_PROVISION_CONFIGMAP);
  const tmp = kplus.Volume.fromEmptyDir(scope, 'ProvisionTmp', 'tmp');
  return new kplus.Job(scope, 'DatabaseJob', {
    metadata: { name: names.provisionJob, namespace: HOSTING_NAMESPACE },
    podMetadata: { labels: POD_LABELS.dbProvision },
    backoffLimit: 10,
    securityContext: restrictedPod(),
    containers: [
      {
        name: 'provision',
        image: postgres.clientImage,
        imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
        command: ['psql'],
        // Names only; both passwords come from Secrets through the environment (psql reads PGPASSWORD itself,
        // the script reads TENANT_DB_PASSWORD with \getenv), never from the command line.
        args: [
          `--host=${postgres.host}`,
          `--port=${postgres.port}`,
          `--username=${postgres.superuser}`,
          '--dbname=postgres',
          '--no-psqlrc',
          `--set=tenant_db=${names.database}`,
          `--set=tenant_role=${names.databaseRole}`,
          '--file=/provision/provision.sql',
        ],
        envVariables: {
          PGPASSWORD: kplus.EnvValue.fromSecretValue({ secret: superuser, key: postgres.passwordSecretKey }),
          TENANT_DB_PASSWORD: kplus.EnvValue.fromSecretValue({ secret: tenant, key: 'password' }),
          // kubeflex:<ControlPlane UID>, written by the controller: the database names its plane (review N6).
          TENANT_DB_MARK: kplus.EnvValue.fromSecretValue({ secret: tenant, key: TENANT_DATABASE_MARK_KEY }),
          PGSSLMODE: kplus.EnvValue.fromValue(postgres.sslMode),
          ...(postgres.ca ? { PGSSLROOTCERT: kplus.EnvValue.fromValue(`${PG_CA_DIR}/${POSTGRES_CA_KEY}`) } : {}),
          PGCONNECT_TIMEOUT: kplus.EnvValue.fromValue('10'),
        },
        volumeMounts: [
          { path: '/provision', volume: kplus.Volume.fromConfigMap(scope, 'ProvisionVolume', script) },
          { path: '/tmp', volume: tmp },
          ...(postgres.ca
            ? [
                {
                  path: PG_CA_DIR,
                  readOnly: true,
                  // Only the CA certificate of the server: never its key, nor an operator CA's key.
                  volume: kplus.Volume.fromSecret(
                    scope,
                    'ProvisionPostgresCa',
                    kplus.Secret.fromSecretName(scope, 'PostgresCa', postgres.ca.secretName),
                    { name: 'postgres-ca', items: { [postgres.ca.key]: { path: POSTGRES_CA_KEY } } },
                  ),
                },
              ]
            : []),
        ],
        securityContext: restrictedContainer(),
        resources: resources(10, 32, 200, 64),
      },
    ],
  });
}
