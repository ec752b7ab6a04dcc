import { API_VERSION } from './names';

// KubeFlex's names that both the constructs (synth time) and the runtime controller use. Kept free of cdk8s
// imports so the controller does not load the construct libraries.

/** KubeFlex's kubeconfig Secret of the k8s, host and external types. */
export const ADMIN_KUBECONFIG_SECRET = 'admin-kubeconfig';

/** Secret names the runtime controller mints for a k8s tenant (KubeFlex's, plus the database credentials). */
export const K8S_SECRETS = {
  certs: 'k8s-certs',
  adminKubeconfig: ADMIN_KUBECONFIG_SECRET,
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
/**
 * Comment that marked tenant databases before they named their ControlPlane (still recognized as the provisioner's,
 * never written any more).
 */
export const TENANT_DATABASE_MARK = 'kubeflex tenant database';
/** Prefix of the comment marking a tenant database: `kubeflex:<ControlPlane UID>` (security review N6). */
export const TENANT_DATABASE_MARK_PREFIX = 'kubeflex:';
/** The comment on the database of the ControlPlane with `uid`: a later plane of the same name never inherits it. */
export const tenantDatabaseMark = (uid: string) => `${TENANT_DATABASE_MARK_PREFIX}${uid}`;
/** Key of `<cp>-db-credentials` holding that mark (the controller comments the database with it). */
export const TENANT_DATABASE_MARK_KEY = 'mark';
/**
 * Key of `<cp>-db-credentials` the controller writes once it made the role and database with that password and mark
 * (a digest of both): its presence lets the plane get its finalizer, its absence makes the next pass provision.
 */
export const TENANT_DATABASE_PROVISIONED_KEY = 'provisioned';

/**
 * Shared-database limits per tenant (security review M7): connections of the tenant role, statement and
 * idle-transaction timeout, temp files. The connection limit must hold every kine pool that can run at once: a
 * Pod's replacement starts while the old Pod still terminates (a wake right after a sleep, an evicted Pod, a
 * rolling update), so each of a plane's replicas plus one gets a pool (`kinePoolSize`), and a few connections are
 * left for an admin. At 25 for one pool of 20, a wake during a sleep's termination had its new kine refused ("too
 * many connections for role") and its API server hung for a minute, then restarted (BENCHMARKS.md, issue 27 round 9).
 */
export const TENANT_DB_CONNECTION_LIMIT = 45;
/** What TENANT_DB_CONNECTION_LIMIT keeps out of the kine pools. */
export const TENANT_DB_RESERVED_CONNECTIONS = 5;
/** kine's pool for a single replica, the largest: the pool every boot in BENCHMARKS.md was measured with. */
export const KINE_MAX_OPEN_CONNECTIONS = 20;

/** kine's pool for a plane of `replicas` API servers: all of them plus one replacement fit the role's limit. */
export const kinePoolSize = (replicas: number): number =>
  Math.max(
    1,
    Math.min(
      KINE_MAX_OPEN_CONNECTIONS,
      Math.floor((TENANT_DB_CONNECTION_LIMIT - TENANT_DB_RESERVED_CONNECTIONS) / (Math.max(1, replicas) + 1)),
    ),
  );

/**
 * Writes a tenant's kube-apiserver takes at once (`--max-mutating-requests-inflight`) with a kine pool of `pool`:
 * half of it. kine v0.17's write on PostgreSQL holds one pooled connection for a transaction and runs its INSERT on
 * a second one from the same pool, so as many writes at once as the pool has connections each hold one and wait
 * for another that never frees: every write then hangs until its 34 s timeout (200 creates at once with the pool of
 * 20: 188 answered 504; BENCHMARKS.md, issue 27 round 14). Writes over this limit are answered 429 with
 * Retry-After, which client-go and kubectl retry; the other half of the pool serves the second connection of each
 * write and the reads. The limit needs priority and fairness off (it is: `--enable-priority-and-fairness=false`)
 * and does not apply to system:masters or the API server's own loopback clients.
 */
export const kineWriteLimit = (pool: number): number => Math.max(1, Math.floor(pool / 2));
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

/**
 * Annotation (our extension) the controller sets on a ControlPlane of a type that sleeps once its API answered ready
 * for the first time: its store then holds what the first boot's bootstrap hooks wrote (the default RBAC roles that
 * clients are authorized by, the system PriorityClasses). The activator passes clients to a woken plane with it as
 * soon as every other readiness check passes; without it (a plane created asleep boots for the first time through
 * the activator) only after the full /readyz.
 */
export const BOOTED_ANNOTATION = 'kflex.kubestellar.org/booted';

/**
 * Boot admission (our extension): the scheduling gate on the Pods of a k8s plane's API server and
 * kube-controller-manager, and the label that finds them. The controller removes it from a few API server Pods at a
 * time (the hosting install's `bootSlots`), and from a plane's kube-controller-manager once its API server is ready,
 * so a burst of starts or wakes never piles more starts onto the cores than they can finish.
 */
export const BOOT_GATE = 'kflex.kubestellar.org/boot-slot';

/**
 * What a plane's `Ready` message says while boot admission holds its API server Pod (the controller writes it, the
 * activator reads it: a Pod that keeps its gate has no address yet, so a waking plane's slices need no look).
 */
export const BOOT_SLOT_WAIT = 'waiting for a boot slot';

/**
 * The owner reference that ties an object to its ControlPlane: garbage collection removes the object with the plane,
 * and `controller: true` says the ControlPlane is its managing owner (kubectl and other controllers honour it).
 */
export function controlPlaneOwnerReference(cp: { metadata: { name: string; uid: string } }) {
  return {
    apiVersion: API_VERSION,
    kind: 'ControlPlane',
    name: cp.metadata.name,
    uid: cp.metadata.uid,
    controller: true,
  };
}

// ---- The wire contract per control-plane type ------------------------------------------------------------------

/** The control-plane types of KubeFlex's `spec.type` that this project implements. */
export type ControlPlaneTypeName = 'k8s' | 'k3s' | 'vcluster' | 'host' | 'external';

/** A workload in `<cp>-system`, by kind and name. */
export interface WorkloadRef {
  readonly kind: 'Deployment' | 'StatefulSet';
  readonly name: string;
}

/** A kubeconfig Secret in `<cp>-system` and its keys: what KubeFlex's `status.secretRef` names. */
export interface KubeconfigSecretContract {
  /** Secret name. */
  readonly name: string;
  /** Key of the off-cluster kubeconfig; absent when the type has none (host). */
  readonly key?: string;
  /** Key of the in-cluster kubeconfig. */
  readonly inClusterKey: string;
}

/** What KubeFlex's clients and ours rely on for one type: read by the constructs, the controller and kflex alike. */
export interface TypeContract {
  /** The kubeconfig Secret the controller mints or completes. */
  readonly kubeconfig: KubeconfigSecretContract;
  /** The workload whose readiness is the tenant API's (KubeFlex's apiServerReady); none for host and external. */
  readonly apiWorkload?: WorkloadRef;
  /** The workloads scaled to zero while the plane sleeps. */
  readonly sleepWorkloads: readonly WorkloadRef[];
  /**
   * Whether its API server's audit counter counts clients' requests only (its audit policy leaves its own machinery
   * out): then it can sleep on idle. vCluster's syncer proxies every client under its own identity, so it cannot.
   */
  readonly clientsAudited: boolean;
  /** The Service in `<cp>-system` its API clients use, and the name of its API port (what the activator serves). */
  readonly apiService?: { readonly name: (cp: string) => string; readonly port: string };
  /** Secrets in `<cp>-system` the controller reads and writes. */
  readonly secrets: readonly string[];
}

/** Keys of the `admin-kubeconfig` Secret (k8s, external, host). */
export const ADMIN_KUBECONFIG_KEYS = { key: 'kubeconfig', inClusterKey: 'kubeconfig-incluster' } as const;
/** Keys of the k3s and vCluster kubeconfig Secrets. */
export const CONFIG_KUBECONFIG_KEYS = { key: 'config', inClusterKey: 'config-incluster' } as const;
/** Workload names of the k8s type. */
export const K8S_WORKLOADS = { apiServer: 'kube-apiserver', controllerManager: 'kube-controller-manager' } as const;
/** The k3s server StatefulSet (KubeFlex's name). */
export const K3S_STATEFULSET = 'k3s-server';

const deployment = (name: string): WorkloadRef => ({ kind: 'Deployment', name });
const statefulSet = (name: string): WorkloadRef => ({ kind: 'StatefulSet', name });

/**
 * The contract of every type (reference §2.9). Every key a kubeconfig contract names exists in its Secret: an external
 * plane's kubeconfig reaches the adopted cluster's own address from anywhere, so it is written under both keys; a
 * host plane has no off-cluster key.
 */
export const TYPE_CONTRACTS: Readonly<Record<ControlPlaneTypeName, TypeContract>> = {
  k8s: {
    kubeconfig: { name: K8S_SECRETS.adminKubeconfig, ...ADMIN_KUBECONFIG_KEYS },
    apiWorkload: deployment(K8S_WORKLOADS.apiServer),
    sleepWorkloads: [deployment(K8S_WORKLOADS.apiServer), deployment(K8S_WORKLOADS.controllerManager)],
    apiService: { name: (cp) => cp, port: 'https' },
    clientsAudited: true,
    secrets: Object.values(K8S_SECRETS),
  },
  k3s: {
    kubeconfig: { name: K3S_KUBECONFIG_SECRET, ...CONFIG_KUBECONFIG_KEYS },
    apiWorkload: statefulSet(K3S_STATEFULSET),
    sleepWorkloads: [statefulSet(K3S_STATEFULSET)],
    apiService: { name: () => 'k3s', port: 'https' },
    clientsAudited: true,
    secrets: [K3S_CA_SECRET, K3S_KUBECONFIG_SECRET],
  },
  vcluster: {
    kubeconfig: { name: VCLUSTER_KUBECONFIG_SECRET, ...CONFIG_KUBECONFIG_KEYS },
    apiWorkload: statefulSet(VCLUSTER_RELEASE),
    sleepWorkloads: [statefulSet(VCLUSTER_RELEASE)],
    apiService: { name: () => VCLUSTER_RELEASE, port: 'https' },
    clientsAudited: false,
    secrets: [VCLUSTER_KUBECONFIG_SECRET],
  },
  host: {
    kubeconfig: { name: ADMIN_KUBECONFIG_SECRET, inClusterKey: ADMIN_KUBECONFIG_KEYS.inClusterKey },
    sleepWorkloads: [],
    clientsAudited: false,
    secrets: [ADMIN_KUBECONFIG_SECRET],
  },
  external: {
    kubeconfig: { name: ADMIN_KUBECONFIG_SECRET, ...ADMIN_KUBECONFIG_KEYS },
    sleepWorkloads: [],
    clientsAudited: false,
    secrets: [ADMIN_KUBECONFIG_SECRET],
  },
};

/** The contract of `type`, or undefined for a type we do not implement (input from tenants is any string). */
export function typeContract(type: string | undefined): TypeContract | undefined {
  return type !== undefined && Object.prototype.hasOwnProperty.call(TYPE_CONTRACTS, type)
    ? TYPE_CONTRACTS[type as ControlPlaneTypeName]
    : undefined;
}

/** Annotation on every object the materializer applies: the UID of the ControlPlane it was made for. */
export const MATERIALIZED_FOR = 'kflex.kubestellar.org/materialized-for';
/** Annotation the materializer sets on a ControlPlane it cannot serve; the controller reports it as Synced=False. */
export const MATERIALIZE_ERROR = 'kflex.kubestellar.org/materialize-error';
/**
 * Annotation on a Namespace the materializer made: the `spec.type` of its ControlPlane. The admission policy keeps
 * it unchanged and lets no materializer workload into a `host` namespace (its kubeconfig is hosting cluster-admin).
 */
export const MATERIALIZED_TYPE = 'kflex.kubestellar.org/materialized-type';

// ---- Who may do what (enforced by the API server: lib/admission.ts) ----------------------------------------------

/**
 * Custom verbs on `controlplanes` that the admission policy asks the authorizer for. Cluster-admins hold every verb;
 * anyone else gets them from an explicit grant (ClusterRole HOST_PLANES_CLUSTER_ROLE).
 */
export const CONTROL_PLANE_VERBS = {
  /** Create a ControlPlane of type `host` (its kubeconfig is cluster-admin of the hosting cluster). */
  host: 'host',
  /** Give a host plane PostCreateHooks (their workloads can mount that kubeconfig). */
  hostHooks: 'host-hooks',
} as const;

/** ClusterRole of the hosting install that grants CONTROL_PLANE_VERBS (bound to the groups the admin names). */
export const HOST_PLANES_CLUSTER_ROLE = 'kubeflex:host-planes';

/**
 * The ClusterRoleBinding of a host plane's ServiceAccount to cluster-admin. The controller makes it (only for a
 * ControlPlane the admission policy admitted as `host`); a name no one else uses, so no existing binding is taken over.
 */
export const hostBindingName = (cp: string) => `kubeflex:host:${cp}`;

/** ClusterRole of the hosting install with vCluster's syncer rights (the chart's Role), bound in each vcluster namespace. */
export const VCLUSTER_CLUSTER_ROLE = 'kubeflex-vcluster';

/** Kinds whose objects run pods (a pod can mount any Secret and use any ServiceAccount of its namespace). */
export const POD_KINDS: readonly string[] = [
  'Pod',
  'Deployment',
  'StatefulSet',
  'DaemonSet',
  'ReplicaSet',
  'Job',
  'CronJob',
];

/** ServiceAccount (in kubeflex-system) the materializer impersonates to apply PostCreateHook objects. */
export const HOOK_APPLIER_NAME = 'kubeflex-hooks';
/** Its user name, as the API server authorizes and admits the impersonated requests. */
export const HOOK_APPLIER_USER = `system:serviceaccount:kubeflex-system:${HOOK_APPLIER_NAME}`;

// ---- The ControlPlane object as the runtime parts read it (controller, materializer, kflex) ----------------------

/** KubeFlex's finalizer on ControlPlanes (wire contract). */
export const FINALIZER = 'kflex.kubestellar.org/finalizer';
/** Label on every Secret the controller writes. */
export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'kubeflex-controller' };

/** Where a ControlPlane's kubeconfig lives (KubeFlex's status.secretRef). */
export interface SecretRef {
  readonly namespace: string;
  readonly name: string;
  readonly key?: string;
  readonly inClusterKey: string;
}

/** The parts of a ControlPlane the controller reads. */
export interface ControlPlaneObject {
  readonly metadata: {
    readonly name: string;
    readonly uid?: string;
    readonly generation?: number;
    readonly creationTimestamp?: string;
    readonly deletionTimestamp?: string;
    readonly finalizers?: string[];
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
    readonly resourceVersion?: string;
  };
  readonly spec?: {
    readonly type?: string;
    readonly bootstrapSecretRef?: { namespace?: string; name?: string; inClusterKey?: string };
    readonly tokenExpirationSeconds?: number;
    readonly postCreateHook?: string;
    readonly postCreateHookVars?: Record<string, string>;
    readonly postCreateHooks?: { hookName: string; vars?: Record<string, string> }[];
    readonly globalVars?: Record<string, string>;
    readonly waitForPostCreateHooks?: boolean;
  };
  readonly status?: ControlPlaneStatus;
}

export interface Condition {
  type: 'Synced' | 'Ready';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  lastUpdateTime: string;
}

export interface ControlPlaneStatus {
  conditions?: Condition[];
  observedGeneration?: number;
  secretRef?: SecretRef;
  postCreateHooks?: Record<string, boolean>;
  postCreateHookCompleted?: boolean;
}

/** Hooks a ControlPlane uses, in KubeFlex's order (legacy single hook first), duplicates dropped. */
export function hookUses(cp: Pick<ControlPlaneObject, 'spec'>): HookUse[] {
  const out: HookUse[] = [];
  if (cp.spec?.postCreateHook) out.push({ hookName: cp.spec.postCreateHook, vars: cp.spec.postCreateHookVars });
  for (const u of cp.spec?.postCreateHooks ?? []) {
    if (u?.hookName && !out.some((o) => o.hookName === u.hookName)) out.push({ hookName: u.hookName, vars: u.vars });
  }
  return out;
}

/** One hook use of a ControlPlane; `vars` as written (absent when the spec has none). */
export interface HookUse {
  readonly hookName: string;
  readonly vars?: Record<string, string>;
}
