import { ApiObject, Duration, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ControlPlaneSpecType } from '../imports/tenancy.kflex.kubestellar.org';
import { ControlPlaneBase, ControlPlaneProps, waitForApiserver } from './control-plane';
import { datastoreOf, PostgresEndpoint } from './datastore/endpoint';
import { checkDnsSubdomain, checkInteger, KubeflexConfigError } from './errors';
import {
  K8sExtraArgs,
  OIDC_CA_DIR,
  oidcFlags,
  OidcAuthentication,
  resolveKubernetesRelease,
  withExtraArgs,
} from './k8s-flags';
import { resources, restrictedContainer, restrictedPod } from './security';
import {
  containerResources,
  goMaxProcs,
  goMemLimit,
  K8sComponentResources,
  K8sControlPlaneSize,
  resolveK8sResources,
} from './sizing';
import { IMAGES, kubernetesImages, KubernetesRelease } from './versions';
import {
  ADMIN_GROUP,
  BOOT_GATE,
  K8S_SECRETS,
  K8S_WORKLOADS,
  kinePoolSize,
  kineWriteLimit,
  POSTGRES_CA_KEY,
  TYPE_CONTRACTS,
} from './wire';

/** Props of K8sControlPlane. */
export interface K8sControlPlaneProps extends ControlPlaneProps {
  /**
   * Kubernetes minor of the tenant ("1.33", or the pinned patch "v1.33.13"): picks the kube-apiserver and
   * kube-controller-manager images and the flags valid for that minor. Supported: KUBERNETES_RELEASES.
   * @default DEFAULT_KUBERNETES_MINOR
   */
  readonly kubernetesVersion?: string;
  /** kube-apiserver image (must match kubernetesVersion). @default - kube-apiserver of kubernetesVersion */
  readonly apiServerImage?: string;
  /** kube-controller-manager image (must match kubernetesVersion). @default - kube-controller-manager of kubernetesVersion */
  readonly controllerManagerImage?: string;
  /**
   * Replicas of kube-apiserver (each with its kine) and of kube-controller-manager. Above 1: leader election among
   * the controller managers, a PodDisruptionBudget per component, and replicas spread over nodes by hostname.
   * @default 1
   */
  readonly replicas?: number;
  /**
   * Spread replicas over distinct nodes as a hard rule (a replica stays Pending rather than share a node). Only
   * with replicas > 1.
   * @default false - spread is preferred, so a one-node cluster still runs every replica
   */
  readonly requireDistinctNodes?: boolean;
  /**
   * PriorityClass of the control plane's Pods, e.g. `system-cluster-critical` or one of the platform's own, so
   * tenants' control planes are evicted last.
   * @default - none (the cluster's default priority)
   */
  readonly priorityClassName?: string;
  /** OIDC authentication of tenant users, as kube-apiserver `--oidc-*` flags. @default - none */
  readonly oidc?: OidcAuthentication;
  /**
   * Extra arguments per component, `name` to value, rendered `--name=value` after ours. A flag the construct sets
   * itself is refused at synth.
   * @default - none
   */
  readonly extraArgs?: K8sExtraArgs;
  /** kine image. @default IMAGES.kine */
  readonly kineImage?: string;
  /** Type of the tenant API Service. @default kplus.ServiceType.CLUSTER_IP */
  readonly serviceType?: kplus.ServiceType;
  /** Service CIDR of the tenant cluster. @default "10.96.0.0/12" */
  readonly serviceClusterIpRange?: string;
  /**
   * Let the tenant API server store privileged Pods (`--allow-privileged`), as KubeFlex and Kamaji do: tenants often
   * hold workloads destined for other clusters (KubeStellar), and no Pod ever runs in a tenant without nodes.
   * @default true
   */
  readonly allowPrivileged?: boolean;
  /** Container size preset (see K8S_SIZES and BENCHMARKS.md). @default "medium" */
  readonly size?: K8sControlPlaneSize;
  /** Requests and limits per component, overriding the size preset. @default - the preset's */
  readonly resources?: K8sComponentResources;
  /**
   * `GOGC` of the three Go components: heap growth before a collection, in percent of the live heap. Lower trades a
   * little CPU under load for less memory per tenant; at idle the measured CPU did not change from 50 to 25, and 15
   * saved only 3 MiB more (BENCHMARKS.md, density).
   * @default 25
   */
  readonly goGc?: number;
}

/** GOGC of a tenant's Go components: see K8sControlPlaneProps.goGc. */
export const DEFAULT_GOGC = 25;

/** Port kube-apiserver listens on (KubeFlex's SecurePort). */
export const K8S_APISERVER_PORT = 9444;
/** How often a single replica's kine looks for rows it did not write itself (see the kine container's args). */
const SINGLE_KINE_POLL = '10s';
/** kine listens here, on loopback only: it has no authentication, so nothing outside the pod may reach it. */
export const KINE_LISTEN_ADDRESS = '127.0.0.1:2379';
export { K8S_SECRETS };
/** CA certificate of the tenant's PostgreSQL, in kine. */
const PG_CA_DIR = '/etc/postgresql-ca';
const PKI = '/etc/kubernetes/pki';
const CM_KUBECONFIG_DIR = '/etc/kubernetes/cm';
const ENCRYPTION_DIR = '/etc/kubernetes/encryption';
const AUDIT_DIR = '/etc/kubernetes/audit';

/**
 * Audit policy of tenant API servers: what clients did, without request bodies (Secrets stay out of logs). The
 * tenant's own machinery (the API server's loopback client, kube-controller-manager and its controllers' kube-system
 * ServiceAccounts, and `systemUsers` of the distribution), health, discovery and metrics reads and the controller's
 * admin-binding probe are left out, so every audit event is a client's request: its counter is what sleep on idle
 * watches (lib/controller/sleep.ts).
 */
export function tenantAuditPolicy(systemUsers: readonly string[] = []): string {
  const users = ['system:apiserver', 'system:kube-controller-manager', ...systemUsers].map((u) => `'${u}'`);
  return `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: [${users.join(', ')}]
  - level: None
    userGroups: ['system:serviceaccounts:kube-system']
  - level: None
    verbs: [get]
    resources:
      - group: rbac.authorization.k8s.io
        resources: [clusterrolebindings]
        resourceNames: ['${ADMIN_GROUP}']
  - level: None
    verbs: [get, list, watch]
    resources:
      - group: ''
        resources: [events, endpoints]
      - group: coordination.k8s.io
        resources: [leases]
  - level: None
    nonResourceURLs: ['/healthz*', '/readyz*', '/livez*', '/version', '/openapi*', '/api', '/api/*', '/apis', '/apis/*', '/metrics']
  - level: Metadata
`;
}

/** The k8s type's audit policy. */
export const AUDIT_POLICY = tenantAuditPolicy();

/**
 * Controllers a tenant without nodes needs: KubeFlex's "denatured" set (canonical 1.28+ names) plus
 * clusterrole-aggregation (the built-in admin/edit/view roles rely on it) and the legacy token cleaner. Node-only
 * controllers (bootstrap signer, token cleaner for join tokens) are left out: no node ever joins a tenant.
 */
export const K8S_CONTROLLERS = [
  'certificatesigningrequest-approving-controller',
  'certificatesigningrequest-cleaner-controller',
  'certificatesigningrequest-signing-controller',
  'clusterrole-aggregation-controller',
  'garbage-collector-controller',
  'legacy-serviceaccount-token-cleaner-controller',
  'namespace-controller',
  'persistentvolume-protection-controller',
  'persistentvolumeclaim-protection-controller',
  'root-ca-certificate-publisher-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
];

/**
 * A tenant running upstream kube-apiserver (with kine on the shared PostgreSQL as its store) and a trimmed
 * kube-controller-manager, in namespace `<name>-system`. Certificates, kubeconfigs and the database password are
 * minted by the runtime controller into Secrets; the manifests only reference them.
 */
export class K8sControlPlane extends ControlPlaneBase {
  /** The kube-apiserver Deployment (kine runs as a sidecar). */
  public readonly apiServer: kplus.Deployment;
  /** The kube-controller-manager Deployment. */
  public readonly controllerManager: kplus.Deployment;
  /** The Service `<name>` (443 -> kube-apiserver). */
  public readonly service: kplus.Service;
  /** The Kubernetes release the tenant runs. */
  public readonly kubernetesRelease: KubernetesRelease & { readonly minor: string };
  private goEnv: Record<string, kplus.EnvValue> = {};
  private readonly componentReplicas: number;

  public constructor(scope: Construct, id: string, props: K8sControlPlaneProps) {
    super(scope, id, props, {
      type: ControlPlaneSpecType.K8S,
      podSecurity: 'restricted',
      kubeconfigSecret: TYPE_CONTRACTS.k8s.kubeconfig,
    });
    // The server of this tenant's database: the datastore's one question (lib/datastore/endpoint.ts).
    const postgres = datastoreOf(props.hosting).serverFor(this.names);
    if (!postgres) {
      throw new KubeflexConfigError(
        this.constructName,
        'hosting',
        props.hosting.node.path,
        'k8s control planes store their state in PostgreSQL, but this hosting install has installPostgres=false and no externalPostgres',
      );
    }
    const serviceCidr = props.serviceClusterIpRange ?? '10.96.0.0/12';
    if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(serviceCidr)) {
      throw new KubeflexConfigError(
        this.constructName,
        'serviceClusterIpRange',
        serviceCidr,
        'must be an IPv4 CIDR such as 10.96.0.0/12',
      );
    }
    const ns = this.names.namespace;
    this.kubernetesRelease = resolveKubernetesRelease(this.constructName, props.kubernetesVersion);
    const replicas = props.replicas ?? 1;
    checkInteger(this.constructName, 'replicas', replicas, 1, 5);
    if (props.requireDistinctNodes && replicas === 1) {
      throw new KubeflexConfigError(this.constructName, 'requireDistinctNodes', true, 'needs replicas > 1');
    }
    if (props.priorityClassName !== undefined) {
      checkDnsSubdomain(this.constructName, 'priorityClassName', props.priorityClassName);
    }
    this.componentReplicas = this.replicas === 0 ? 0 : replicas;
    this.recordAwakeReplicas(replicas);

    const certs = kplus.Secret.fromSecretName(this, 'Certs', K8S_SECRETS.certs);
    const sizes = resolveK8sResources(this.constructName, props.size, props.resources);
    const goGc = props.goGc ?? DEFAULT_GOGC;
    checkInteger(this.constructName, 'goGc', goGc, 10, 1000);
    this.goEnv = {
      GOMEMLIMIT: goMemLimit(),
      GOMAXPROCS: goMaxProcs(),
      GOGC: kplus.EnvValue.fromValue(String(goGc)),
    };
    this.apiServer = this.addApiServer(props, postgres, certs, serviceCidr, sizes);
    this.controllerManager = this.addControllerManager(props, certs, sizes);
    for (const [deployment, component] of [
      [this.apiServer, 'kube-apiserver'],
      [this.controllerManager, 'kube-controller-manager'],
    ] as const) {
      this.placePods(deployment, component, replicas, props);
      if (this.hosting.bootSlots > 0) gateBoot(deployment, component);
    }

    this.service = new kplus.Service(this, 'Service', {
      metadata: { name: this.names.name, namespace: ns },
      type: props.serviceType ?? kplus.ServiceType.CLUSTER_IP,
      ports: [{ name: 'https', port: 443, targetPort: K8S_APISERVER_PORT }],
    });
    this.service.selectLabel('app', 'kube-apiserver');
    this.expose(this.service, 443, 'https');
    this.isolateNetwork({ apiPort: K8S_APISERVER_PORT, toPostgres: true });
  }

  private addApiServer(
    props: K8sControlPlaneProps,
    postgres: PostgresEndpoint,
    certs: kplus.ISecret,
    serviceCidr: string,
    sizes: Required<K8sComponentResources>,
  ): kplus.Deployment {
    const labels = { app: 'kube-apiserver' };
    // Who did what in the tenant, attributable (security review M4): metadata of every request but reads of
    // non-sensitive objects, to the container log (collected like any pod log).
    const auditPolicy = new kplus.ConfigMap(this, 'AuditPolicy', {
      metadata: { name: 'audit-policy', namespace: this.names.namespace },
      data: { 'audit-policy.yaml': AUDIT_POLICY },
    });
    const audit = kplus.Volume.fromConfigMap(this, 'ApiServerAudit', auditPolicy, { name: 'audit-policy' });
    const encryption = kplus.Volume.fromSecret(
      this,
      'ApiServerEncryption',
      kplus.Secret.fromSecretName(this, 'Encryption', K8S_SECRETS.encryption),
      {
        name: 'encryption-config',
        defaultMode: 0o440,
        items: { 'encryption-config.yaml': { path: 'encryption-config.yaml' } },
      },
    );
    const pki = kplus.Volume.fromSecret(this, 'ApiServerPki', certs, {
      name: 'k8s-certs',
      defaultMode: 0o440,
      // Everything but ca.key: the API server never signs with the CA.
      items: Object.fromEntries(
        [
          'ca.crt',
          'apiserver.crt',
          'apiserver.key',
          'front-proxy-ca.crt',
          'front-proxy-client.crt',
          'front-proxy-client.key',
          'sa.key',
          'sa.pub',
        ].map((k) => [k, { path: k }]),
      ),
    });
    const database = kplus.Secret.fromSecretName(this, 'KineDatabase', K8S_SECRETS.database);
    const probe = (path: string, opts: kplus.ProbeOptions) =>
      kplus.Probe.fromHttpGet(path, { port: K8S_APISERVER_PORT, scheme: kplus.ConnectionScheme.HTTPS, ...opts });
    // With a known CA, kine verifies the server (review M2) against the copy the controller keeps in kine-postgres.
    const dsn =
      `postgres://${this.names.databaseRole}:$(KINE_DB_PASSWORD)@${postgres.host}:${postgres.port}/` +
      `${this.names.database}?sslmode=${postgres.sslMode}` +
      (postgres.ca ? `&sslrootcert=${PG_CA_DIR}/${POSTGRES_CA_KEY}` : '');
    const kinePool = kinePoolSize(this.componentReplicas);

    const deployment = new kplus.Deployment(this, 'ApiServer', {
      metadata: {
        name: K8S_WORKLOADS.apiServer,
        namespace: this.names.namespace,
        labels: { component: 'kube-apiserver', tier: 'control-plane' },
      },
      replicas: this.componentReplicas,
      select: false,
      podMetadata: { labels },
      securityContext: restrictedPod(),
      containers: [
        {
          name: 'kine',
          image: props.kineImage ?? IMAGES.kine,
          imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
          args: withExtraArgs(
            this.constructName,
            'kine',
            [
              `--listen-address=${KINE_LISTEN_ADDRESS}`,
              '--metrics-bind-address=0',
              // Every replica's pool and a replacement's fit the tenant role's connection limit, so kine queues
              // instead of failing (M7), also while a new Pod starts beside a terminating one.
              `--datastore-max-open-connections=${kinePool}`,
              // The whole pool stays open while it is busy, and a connection idle for 15 s is closed. kine keeps 20
              // idle connections forever by default (~18 PostgreSQL backends per idle tenant, 48 MiB). Keeping only
              // two made every start open a new TLS connection and backend for most queries: PostgreSQL then spent
              // as much CPU as the API server, and a boot cost 8.7 CPU-seconds instead of 6.2 (BENCHMARKS.md, boot).
              // An idle tenant's poll (below) keeps one connection warm, so at rest it still holds one or two.
              `--datastore-max-idle-connections=${kinePool}`,
              '--datastore-connection-max-idle-time=15s',
              // kine's poll only finds rows another kine wrote: its own writes wake its watchers at once (kine's
              // sqllog notifies the poll loop after each insert). A single replica has another writer only while a
              // rollout runs the new Pod beside the old one, and then a watch through the old one sees the new one's
              // writes within 10 s instead of 1 s. So it asks every 10 s: less CPU for kine and PostgreSQL at idle
              // (BENCHMARKS.md, density round 4), and under the 15 s above, so the poll keeps one connection warm
              // instead of opening one each time. Replicas share the database all the time and keep kine's 1 s.
              ...(this.componentReplicas > 1 ? [] : [`--datastore-poll-interval=${SINGLE_KINE_POLL}`]),
            ],
            props.extraArgs?.kine,
          ),
          envVariables: {
            KINE_DB_PASSWORD: kplus.EnvValue.fromSecretValue({ secret: database, key: 'password' }),
            // Expanded by the kubelet from the variable above, so the password is in neither the manifest nor argv.
            KINE_ENDPOINT: kplus.EnvValue.fromValue(dsn),
            ...this.goEnv,
          },
          volumeMounts: postgres.ca
            ? [
                {
                  path: PG_CA_DIR,
                  readOnly: true,
                  volume: kplus.Volume.fromSecret(this, 'KinePostgresCa', database, {
                    name: 'postgres-ca',
                    items: { [POSTGRES_CA_KEY]: { path: POSTGRES_CA_KEY } },
                  }),
                },
              ]
            : [],
          securityContext: restrictedContainer(),
          resources: containerResources(sizes.kine),
        },
        {
          name: 'kube-apiserver',
          image: props.apiServerImage ?? kubernetesImages(this.kubernetesRelease.version).kubeApiserver,
          imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
          command: ['kube-apiserver'],
          args: this.apiServerArgs(props, serviceCidr),
          envVariables: {
            POD_IP: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_IP),
            ...this.goEnv,
          },
          ports: [{ number: K8S_APISERVER_PORT, name: 'https' }],
          volumeMounts: [
            { path: PKI, volume: pki, readOnly: true },
            { path: ENCRYPTION_DIR, volume: encryption, readOnly: true },
            { path: AUDIT_DIR, volume: audit, readOnly: true },
            ...(props.oidc?.caConfigMap
              ? [
                  {
                    path: OIDC_CA_DIR,
                    readOnly: true,
                    volume: kplus.Volume.fromConfigMap(
                      this,
                      'ApiServerOidcCa',
                      kplus.ConfigMap.fromConfigMapName(this, 'OidcCa', props.oidc.caConfigMap.name),
                      { name: 'oidc-ca', items: { [props.oidc.caConfigMap.key ?? 'ca.crt']: { path: 'ca.crt' } } },
                    ),
                  },
                ]
              : []),
          ],
          securityContext: restrictedContainer(),
          resources: containerResources(sizes.apiServer),
          // On the path to Ready: a probe every second from 2 s on sees the API server ready within a second of it
          // (same 240 s budget as before). It asks /readyz, not /livez, because the kubelet runs the readiness
          // probe at once when the startup probe passes: it then passes too, and the readiness probe can run every
          // 10 s at rest instead of every 2 s. Each probe is a TLS handshake and a storage round trip through kine
          // to PostgreSQL, times every tenant on the node (BENCHMARKS.md, issue 26 round 8).
          startup: probe('/readyz', {
            initialDelaySeconds: Duration.seconds(2),
            periodSeconds: Duration.seconds(1),
            timeoutSeconds: Duration.seconds(15),
            failureThreshold: 238,
          }),
          liveness: probe('/livez', {
            periodSeconds: Duration.seconds(10),
            timeoutSeconds: Duration.seconds(15),
            failureThreshold: 8,
          }),
          readiness: probe('/readyz', {
            periodSeconds: Duration.seconds(10),
            timeoutSeconds: Duration.seconds(15),
            failureThreshold: 3,
          }),
        },
      ],
    });
    deployment.select(kplus.LabelSelector.of({ labels }));
    return deployment;
  }

  /** kube-apiserver's flags: ours (with the minor's feature gates, OIDC and HA settings), then extraArgs. */
  private apiServerArgs(props: K8sControlPlaneProps, serviceCidr: string): string[] {
    const gates = this.componentReplicas > 1 ? {} : this.kubernetesRelease.singleReplicaFeatureGates;
    const featureGates = Object.keys(gates).length
      ? [
          `--feature-gates=${Object.entries(gates)
            .map(([k, v]) => `${k}=${v}`)
            .join(',')}`,
        ]
      : [];
    return withExtraArgs(
      this.constructName,
      'apiServer',
      [
        '--advertise-address=$(POD_IP)',
        `--allow-privileged=${props.allowPrivileged ?? true}`,
        `--audit-policy-file=${AUDIT_DIR}/audit-policy.yaml`,
        '--audit-log-path=-',
        '--audit-log-format=json',
        '--authorization-mode=RBAC',
        `--client-ca-file=${PKI}/ca.crt`,
        '--enable-priority-and-fairness=false',
        ...featureGates,
        // Secrets are encrypted before they reach the shared PostgreSQL; the controller mints the key (M1).
        `--encryption-provider-config=${ENCRYPTION_DIR}/encryption-config.yaml`,
        '--endpoint-reconciler-type=none',
        `--etcd-servers=http://${KINE_LISTEN_ADDRESS}`,
        // No more writes at once than kine's pool can finish: more deadlock it (kineWriteLimit).
        `--max-mutating-requests-inflight=${kineWriteLimit(kinePoolSize(this.componentReplicas))}`,
        '--profiling=false',
        `--proxy-client-cert-file=${PKI}/front-proxy-client.crt`,
        `--proxy-client-key-file=${PKI}/front-proxy-client.key`,
        '--requestheader-allowed-names=front-proxy-client',
        `--requestheader-client-ca-file=${PKI}/front-proxy-ca.crt`,
        '--requestheader-extra-headers-prefix=X-Remote-Extra-',
        '--requestheader-group-headers=X-Remote-Group',
        '--requestheader-username-headers=X-Remote-User',
        `--secure-port=${K8S_APISERVER_PORT}`,
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${PKI}/sa.pub`,
        `--service-account-signing-key-file=${PKI}/sa.key`,
        `--service-cluster-ip-range=${serviceCidr}`,
        `--tls-cert-file=${PKI}/apiserver.crt`,
        `--tls-private-key-file=${PKI}/apiserver.key`,
        // Lists and watches go straight to kine (watches still work): the cache cost an idle tenant 12 mCPU.
        '--watch-cache=false',
        ...(props.oidc ? oidcFlags(this.constructName, props.oidc) : []),
        // A stopping API server keeps serving (and reports not ready) until its endpoint is gone, so clients move
        // to another endpoint instead of seeing connections refused: another replica, the new Pod of a rolling
        // update, or the activator's endpoint when the plane goes to sleep (a request in that moment wakes it).
        '--shutdown-delay-duration=5s',
      ],
      props.extraArgs?.apiServer,
    );
  }

  private addControllerManager(
    props: K8sControlPlaneProps,
    certs: kplus.ISecret,
    sizes: Required<K8sComponentResources>,
  ): kplus.Deployment {
    const labels = { app: 'kube-controller-manager' };
    const pki = kplus.Volume.fromSecret(this, 'ControllerManagerPki', certs, {
      name: 'k8s-certs',
      defaultMode: 0o440,
      items: Object.fromEntries(['ca.crt', 'ca.key', 'front-proxy-ca.crt', 'sa.key'].map((k) => [k, { path: k }])),
    });
    const kubeconfig = kplus.Volume.fromSecret(
      this,
      'ControllerManagerKubeconfig',
      kplus.Secret.fromSecretName(this, 'CmKubeconfig', K8S_SECRETS.controllerManagerKubeconfig),
      { name: 'cm-kubeconfig', defaultMode: 0o440, items: { kubeconfig: { path: 'kubeconfig' } } },
    );
    const kc = `${CM_KUBECONFIG_DIR}/kubeconfig`;
    const probe = (opts: kplus.ProbeOptions) =>
      kplus.Probe.fromHttpGet('/healthz', { port: 10257, scheme: kplus.ConnectionScheme.HTTPS, ...opts });
    const leaderElect = this.componentReplicas > 1;
    const deployment = new kplus.Deployment(this, 'ControllerManager', {
      metadata: {
        name: K8S_WORKLOADS.controllerManager,
        namespace: this.names.namespace,
        labels: { component: 'kube-controller-manager', tier: 'control-plane' },
      },
      replicas: this.componentReplicas,
      // One KCM without leader election must run alone: a rolling update would run two side by side. With leader
      // election only the Lease holder acts, so a rolling update is safe.
      strategy: leaderElect ? kplus.DeploymentStrategy.rollingUpdate() : kplus.DeploymentStrategy.recreate(),
      select: false,
      podMetadata: { labels },
      securityContext: restrictedPod(),
      // KCM exits when the API server is not healthy within 10 s of its start (hard-coded), so starting both Pods
      // together restarted KCM on a busy node (seen in the real-node test). With boot admission the controller
      // removes KCM's gate only once an API server Pod of the plane is ready, so it starts against an answering API.
      // Without it, an init container waits until the API answers. Only then: the waiter is a Node.js process, and
      // in a storm of 50 it cost 0.76 CPU-seconds per tenant, 11 % of the node's CPU (BENCHMARKS.md, round 9).
      initContainers:
        this.hosting.bootSlots > 0
          ? []
          : [
              {
                name: 'wait-for-apiserver',
                ...waitForApiserver(kc),
                imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
                volumeMounts: [{ path: CM_KUBECONFIG_DIR, volume: kubeconfig, readOnly: true }],
                securityContext: restrictedContainer(),
                // An init container's request counts in full against the node when it exceeds the containers' own,
                // and this one only waits: it never reserves more than KCM itself (a 10m waiter made every tenant
                // reserve 35m instead of 30m, so a storm of 50 filled a 2-core node by requests at 44; BENCHMARKS.md).
                resources: resources(
                  Math.min(10, sizes.controllerManager.cpuRequestMillis),
                  Math.min(32, sizes.controllerManager.memoryRequestMi),
                  100,
                  64,
                ),
              },
            ],
      containers: [
        {
          name: 'kube-controller-manager',
          image: props.controllerManagerImage ?? kubernetesImages(this.kubernetesRelease.version).kubeControllerManager,
          imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
          command: ['kube-controller-manager'],
          args: withExtraArgs(
            this.constructName,
            'controllerManager',
            [
              `--authentication-kubeconfig=${kc}`,
              `--authorization-kubeconfig=${kc}`,
              // The pod IP, not 0.0.0.0: nothing but the kubelet's probe needs this port (security review H3).
              '--bind-address=$(POD_IP)',
              `--client-ca-file=${PKI}/ca.crt`,
              '--cluster-name=kubernetes',
              `--cluster-signing-cert-file=${PKI}/ca.crt`,
              `--cluster-signing-key-file=${PKI}/ca.key`,
              `--controllers=${K8S_CONTROLLERS.join(',')}`,
              `--kubeconfig=${kc}`,
              // One replica: leader election would only add a Lease write every few seconds to the shared database.
              `--leader-elect=${leaderElect}`,
              '--profiling=false',
              `--requestheader-client-ca-file=${PKI}/front-proxy-ca.crt`,
              `--root-ca-file=${PKI}/ca.crt`,
              '--secure-port=10257',
              `--service-account-private-key-file=${PKI}/sa.key`,
              '--use-service-account-credentials=true',
            ],
            props.extraArgs?.controllerManager,
          ),
          ports: [{ number: 10257, name: 'https' }],
          envVariables: {
            POD_IP: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_IP),
            ...this.goEnv,
          },
          volumeMounts: [
            { path: PKI, volume: pki, readOnly: true },
            { path: CM_KUBECONFIG_DIR, volume: kubeconfig, readOnly: true },
          ],
          securityContext: restrictedContainer(),
          resources: containerResources(sizes.controllerManager),
          startup: probe({
            initialDelaySeconds: Duration.seconds(5),
            periodSeconds: Duration.seconds(5),
            timeoutSeconds: Duration.seconds(15),
            failureThreshold: 48,
          }),
          liveness: probe({
            periodSeconds: Duration.seconds(10),
            timeoutSeconds: Duration.seconds(15),
            failureThreshold: 8,
          }),
        },
      ],
    });
    deployment.select(kplus.LabelSelector.of({ labels }));
    return deployment;
  }

  /** Priority, spread over nodes and a PodDisruptionBudget for a component with several replicas. */
  private placePods(
    deployment: kplus.Deployment,
    component: string,
    replicas: number,
    props: K8sControlPlaneProps,
  ): void {
    if (props.priorityClassName) {
      // cdk8s-plus-28 has no priorityClassName on pod templates.
      ApiObject.of(deployment).addJsonPatch(
        JsonPatch.add('/spec/template/spec/priorityClassName', props.priorityClassName),
      );
    }
    if (replicas === 1) return;
    // Written as JSON: cdk8s-plus's spread() selects on its own address label, not on the pods' `app` label.
    const term = { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { app: component } } };
    ApiObject.of(deployment).addJsonPatch(
      JsonPatch.add('/spec/template/spec/affinity', {
        podAntiAffinity: props.requireDistinctNodes
          ? { requiredDuringSchedulingIgnoredDuringExecution: [term] }
          : { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: term }] },
      }),
    );
    new kplus.k8s.KubePodDisruptionBudget(this, `${deployment.node.id}Disruption`, {
      metadata: { name: component, namespace: this.names.namespace },
      spec: {
        maxUnavailable: kplus.k8s.IntOrString.fromNumber(1),
        selector: { matchLabels: { app: component } },
      },
    });
  }
}

/**
 * Boot admission: the component's Pods are created with the boot gate (and the label the controller finds them by);
 * the controller removes the gate when a boot slot is free (wire BOOT_GATE). A gate, not zero replicas: the
 * synthesized Deployments stay exactly what Git holds, so a re-apply never fights the controller.
 */
function gateBoot(deployment: kplus.Deployment, component: string): void {
  deployment.podMetadata.addLabel(BOOT_GATE, component);
  // cdk8s-plus-28 has no schedulingGates on pod templates.
  ApiObject.of(deployment).addJsonPatch(JsonPatch.add('/spec/template/spec/schedulingGates', [{ name: BOOT_GATE }]));
}
