// The datastore room: the bundled PostgreSQL of the hosting install (KubeFlex's Bitnami names kept). Objects are
// children of the hosting chart, with the ids they always had (cdk8s-plus derives selectors from construct addresses, and a StatefulSet's selector cannot change).
import { ApiObject, Duration, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { checkDnsSubdomain, checkInteger, checkStorageSize } from '../errors';
import { POSTGRES_NAME, POSTGRES_PASSWORD_KEY } from '../hosting-config';
import { HOSTING_NAMESPACE } from '../names';
import { resources, restrictedContainer, restrictedPod } from '../security';
import { POSTGRES_TLS_SECRET } from '../wire';

/** Where the bundled PostgreSQL reads its server certificate and key. */
const POSTGRES_TLS_DIR = '/etc/postgresql/tls';

/** Options for the PostgreSQL that the hosting install runs for k8s-type tenants. */
export interface PostgresOptions {
  /** Storage class of the data volume. @default - the cluster's default storage class */
  readonly storageClassName?: string;
  /** Size of the data volume. @default "8Gi" */
  readonly storageSize?: string;
  /** PostgreSQL image. @default IMAGES.postgres */
  readonly image?: string;
  /** `max_connections` of the server (each k8s tenant's kine holds a pool). @default 1000 */
  readonly maxConnections?: number;
  /**
   * `autovacuum_naptime` in seconds: how often autovacuum visits each database. A visit starts a worker process even
   * for a database nothing wrote to, so with a database per tenant this is a cost per registered (and sleeping)
   * tenant; kine compacts every 5 minutes, so visiting more often finds nothing more to clean. @default 300
   */
  readonly autovacuumNaptimeSeconds?: number;
}

/** The bundled server: Services, StatefulSet with its volume claim, TLS from the Secret the controller mints. */
export function addBundledPostgres(scope: Construct, where: string, options: PostgresOptions, image: string): void {
  const storageSize = options.storageSize ?? '8Gi';
  checkStorageSize(where, 'postgres.storageSize', storageSize);
  const maxConnections = options.maxConnections ?? 1000;
  checkInteger(where, 'postgres.maxConnections', maxConnections, 10, 100000);
  const naptime = options.autovacuumNaptimeSeconds ?? 300;
  // PostgreSQL's own bounds of the setting (1 s to INT_MAX ms).
  checkInteger(where, 'postgres.autovacuumNaptimeSeconds', naptime, 1, 2147483);
  if (options.storageClassName !== undefined) {
    checkDnsSubdomain(where, 'postgres.storageClassName', options.storageClassName);
  }
  const labels = { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': 'postgres' };
  const ports = [{ port: 5432, targetPort: 5432, name: 'tcp-postgresql' }];
  const headless = new kplus.Service(scope, 'PostgresHeadless', {
    metadata: { name: `${POSTGRES_NAME}-hl`, namespace: HOSTING_NAMESPACE },
    clusterIP: 'None',
    publishNotReadyAddresses: true,
    ports,
  });
  const client = new kplus.Service(scope, 'PostgresService', {
    metadata: { name: POSTGRES_NAME, namespace: HOSTING_NAMESPACE },
    ports,
  });
  const password = kplus.Secret.fromSecretName(scope, 'PostgresPassword', POSTGRES_NAME);
  const run = kplus.Volume.fromEmptyDir(scope, 'PostgresRun', 'run');
  const tmp = kplus.Volume.fromEmptyDir(scope, 'PostgresTmp', 'tmp');
  // Root-owned, group-readable through fsGroup: PostgreSQL accepts a key file like that (mode 0640 or less).
  const tls = kplus.Volume.fromSecret(
    scope,
    'PostgresTls',
    kplus.Secret.fromSecretName(scope, 'PostgresTlsSecret', POSTGRES_TLS_SECRET),
    { name: 'tls', defaultMode: 0o440, items: { 'tls.crt': { path: 'tls.crt' }, 'tls.key': { path: 'tls.key' } } },
  );
  const pgUid = 999; // the postgres user of the official image
  const sts = new kplus.StatefulSet(scope, 'Postgres', {
    metadata: { name: POSTGRES_NAME, namespace: HOSTING_NAMESPACE },
    service: headless,
    replicas: 1,
    select: false,
    podMetadata: { labels },
    securityContext: restrictedPod(pgUid),
    containers: [
      {
        name: 'postgresql',
        image,
        imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
        // TLS with the certificate the controller mints (review M2); clients verify it against its CA.
        args: [
          '-c',
          `max_connections=${maxConnections}`,
          '-c',
          'password_encryption=scram-sha-256',
          '-c',
          'ssl=on',
          '-c',
          `ssl_cert_file=${POSTGRES_TLS_DIR}/tls.crt`,
          '-c',
          `ssl_key_file=${POSTGRES_TLS_DIR}/tls.key`,
          '-c',
          'ssl_min_protocol_version=TLSv1.2',
          // PostgreSQL's 1 min started a worker every 0.3 s with 200 tenant databases, asleep or not: 160 mCPU of a
          // 2-core node (BENCHMARKS.md, issue 27 round 11).
          '-c',
          `autovacuum_naptime=${naptime}s`,
        ],
        ports: [{ number: 5432, name: 'tcp-postgresql' }],
        envVariables: {
          POSTGRES_USER: kplus.EnvValue.fromValue('postgres'),
          POSTGRES_PASSWORD: kplus.EnvValue.fromSecretValue({ secret: password, key: POSTGRES_PASSWORD_KEY }),
          PGDATA: kplus.EnvValue.fromValue('/var/lib/postgresql/data/pgdata'),
          POSTGRES_INITDB_ARGS: kplus.EnvValue.fromValue('--auth-host=scram-sha-256'),
        },
        securityContext: restrictedContainer(pgUid),
        // Every backend is a process of a few MiB. 50 tenants at rest held ~100 backends and 512 MiB here; in a boot
        // storm of 50 on the test node the kines' pools (up to 20 each while busy) took it past the old 1 GiB limit
        // and the kernel killed it (OOMKilled), cutting every tenant off its data (BENCHMARKS.md, issue 26 round 10).
        // The limit only caps a burst; the request is what it uses at rest.
        resources: resources(250, 256, 2000, 3072),
        // pg_isready took over 1 s (the default timeout) on a node busy with starting tenants: 5 s, and a minute of
        // failures before a restart that would cut every tenant off its data.
        readiness: kplus.Probe.fromCommand(['pg_isready', '-U', 'postgres', '-h', '127.0.0.1'], {
          periodSeconds: Duration.seconds(5),
          timeoutSeconds: Duration.seconds(5),
        }),
        liveness: kplus.Probe.fromCommand(['pg_isready', '-U', 'postgres', '-h', '127.0.0.1'], {
          initialDelaySeconds: Duration.seconds(30),
          periodSeconds: Duration.seconds(10),
          timeoutSeconds: Duration.seconds(5),
          failureThreshold: 6,
        }),
        volumeMounts: [
          { path: '/var/run/postgresql', volume: run },
          { path: '/tmp', volume: tmp },
          { path: POSTGRES_TLS_DIR, volume: tls, readOnly: true },
        ],
      },
    ],
  });
  sts.select(kplus.LabelSelector.of({ labels }));
  client.selectLabel('app.kubernetes.io/name', 'postgresql');
  client.selectLabel('app.kubernetes.io/instance', 'postgres');
  headless.selectLabel('app.kubernetes.io/name', 'postgresql');
  headless.selectLabel('app.kubernetes.io/instance', 'postgres');
  // cdk8s-plus has no volumeClaimTemplates; this keeps KubeFlex's PVC name data-postgres-postgresql-0. Patches
  // are applied before the generated class converts props, hence the Quantity.
  const claim: Record<string, unknown> = {
    accessModes: ['ReadWriteOnce'],
    resources: { requests: { storage: kplus.k8s.Quantity.fromString(storageSize) } },
  };
  if (options.storageClassName) claim.storageClassName = options.storageClassName;
  const api = ApiObject.of(sts);
  api.addJsonPatch(JsonPatch.add('/spec/volumeClaimTemplates', [{ metadata: { name: 'data' }, spec: claim }]));
  api.addJsonPatch(
    JsonPatch.add('/spec/template/spec/containers/0/volumeMounts/-', {
      name: 'data',
      mountPath: '/var/lib/postgresql/data',
    }),
  );
}
