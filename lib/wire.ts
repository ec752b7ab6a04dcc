// KubeFlex's names that both the constructs (synth time) and the runtime controller use. Kept free of cdk8s
// imports so the controller does not load the construct libraries.

/** Secret names the runtime controller mints for a k8s tenant (KubeFlex's, plus the database credentials). */
export const K8S_SECRETS = {
  certs: 'k8s-certs',
  adminKubeconfig: 'admin-kubeconfig',
  controllerManagerKubeconfig: 'cm-kubeconfig',
  database: 'kine-postgres',
  /** EncryptionConfiguration of the tenant API server (key `encryption-config.yaml`): Secrets encrypted at rest. */
  encryption: 'encryption-config',
} as const;
/** k3s: Secret (KubeFlex's name) with keys `config` and `config-incluster`, minted by the runtime controller. */
export const K3S_KUBECONFIG_SECRET = 'k3s-config';
/** k3s: Secret with the CA certificates and keys the controller mints; seeded into k3s so it can sign kubeconfigs. */
export const K3S_CA_SECRET = 'k3s-server-ca';
/** vCluster Helm release name KubeFlex uses (names the StatefulSet, Service and Secrets). */
export const VCLUSTER_RELEASE = 'vcluster';
/** vCluster: kubeconfig Secret the syncer writes (`config`); the runtime controller adds `config-incluster`. */
export const VCLUSTER_KUBECONFIG_SECRET = `vc-${VCLUSTER_RELEASE}`;
/** ConfigMap in `kubeflex-system` with the settings every control plane and the controller read (KubeFlex's name). */
export const HOSTING_CONFIGMAP = 'kubeflex-config';

/** PostgreSQL group role marking every tenant role the provisioner created; nothing without it is altered or dropped. */
export const TENANT_ROLE_GROUP = 'kubeflex_tenants';
/** Comment marking every tenant database the provisioner created. */
export const TENANT_DATABASE_MARK = 'kubeflex tenant database';

/**
 * Shared-database limits per tenant (security review M7): connections of the tenant role (kine opens at most
 * KINE_MAX_OPEN_CONNECTIONS, below it, so it never hits the limit), statement and idle-transaction timeout, temp files.
 */
export const TENANT_DB_CONNECTION_LIMIT = 25;
export const KINE_MAX_OPEN_CONNECTIONS = 20;
export const TENANT_DB_STATEMENT_TIMEOUT = '60s';
export const TENANT_DB_TEMP_FILE_LIMIT = '1GB';

/**
 * Group of the admin client certificates the controller mints for k8s and k3s tenants (security review M4), bound to
 * `cluster-admin` by a ClusterRoleBinding of the same name that the controller creates in the tenant. Unlike
 * `system:masters`, which bypasses authorization, access ends when the binding is deleted.
 */
export const ADMIN_GROUP = 'kubeflex:admins';

/**
 * Secret in `kubeflex-system` with the bundled PostgreSQL's TLS material (security review M2): `ca.crt`/`ca.key`
 * (an operator may supply their own CA here) and the server's `tls.crt`/`tls.key`, minted by the controller.
 */
export const POSTGRES_TLS_SECRET = 'postgres-postgresql-tls';
/** Key of the PostgreSQL CA certificate, in POSTGRES_TLS_SECRET and in each tenant's `kine-postgres` copy. */
export const POSTGRES_CA_KEY = 'ca.crt';

/**
 * Annotation on a ControlPlane that is asleep (our extension; KubeFlex has no sleep): its workloads are scaled to
 * zero, its data stays in PostgreSQL or its volume, and the controller reports Ready=False/Sleeping without probing.
 */
export const SLEEP_ANNOTATION = 'kflex.kubestellar.org/sleeping';

/** The workloads scaled to zero when a control plane of a type sleeps (none for host and external). */
export const SLEEP_WORKLOADS: Record<string, { kind: 'Deployment' | 'StatefulSet'; name: string }[]> = {
  k8s: [
    { kind: 'Deployment', name: 'kube-apiserver' },
    { kind: 'Deployment', name: 'kube-controller-manager' },
  ],
  k3s: [{ kind: 'StatefulSet', name: 'k3s-server' }],
  vcluster: [{ kind: 'StatefulSet', name: VCLUSTER_RELEASE }],
};

/** Annotation on every object the materializer applies: the UID of the ControlPlane it was made for. */
export const MATERIALIZED_FOR = 'kflex.kubestellar.org/materialized-for';
/** Annotation the materializer sets on a ControlPlane it cannot serve; the controller reports it as Synced=False. */
export const MATERIALIZE_ERROR = 'kflex.kubestellar.org/materialize-error';
