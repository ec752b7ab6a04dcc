import { ApiObject, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { KubeflexActivator } from './activator';
import {
  addControllerPodPolicy,
  addControlPlanePolicy,
  addHookApplierPolicy,
  addMaterializerPolicy,
} from './admission';
import { API_GROUP, controlPlaneCrd, POST_CREATE_HOOK_CRD } from './crds';
import { addBundledPostgres, PostgresOptions } from './datastore/bundled-postgres';
import {
  bundledPostgresEndpoint,
  checkPostgresChoice,
  ExternalPostgresOptions,
  externalPostgresEndpoint,
} from './datastore/endpoint';
import { checkDnsLabel, checkDnsSubdomain, checkInteger, KubeflexConfigError } from './errors';
import {
  DEFAULT_HOSTING_API_EGRESS,
  encodeHostingConfig,
  HOSTING_DEFAULTS,
  isCidr,
  MAX_BOOT_SLOTS,
  POSTGRES_NAME,
  POSTGRES_PASSWORD_KEY,
} from './hosting-config';
import {
  bindControllerInNamespace,
  CONTROLLER_NAME,
  CONTROLLER_TENANT_ROLE,
  defaultIngressNamespace,
  GatewayParent,
  hostingAttributesFromConfig,
  HostingRegistry,
  IKubeflexHosting,
  ImportedKubeflexHosting,
  KubeflexHostingAttributes,
  KubeflexHostingFromConfigProps,
  PostgresEndpoint,
  PostgresSslMode,
} from './hosting-face';
import { checkIdleTimeout, DEFAULT_MANAGER_IDLE_TIMEOUT } from './idle';
import { HOSTING_NAMESPACE, MAX_TENANT_NAME_LENGTH } from './names';
import { HostingApiEgress, hostingNetworkPolicies, POD_LABELS } from './network-policy';
import { daemonProbes, podSecurityLabels, resources, restrictedContainer, restrictedPod } from './security';
import { IMAGES } from './versions';
import {
  CONTROL_PLANE_VERBS,
  HOOK_APPLIER_NAME,
  HOOK_APPLIER_USER,
  HOST_PLANES_CLUSTER_ROLE,
  HOSTING_CONFIGMAP,
  VCLUSTER_CLUSTER_ROLE,
} from './wire';

export { HOSTING_CONFIGMAP, POSTGRES_NAME, POSTGRES_PASSWORD_KEY };
export * from './hosting-face';
export type { ExternalPostgresOptions } from './datastore/endpoint';
export type { PostgresOptions } from './datastore/bundled-postgres';

/** Props of KubeflexHosting. */
export interface KubeflexHostingProps {
  /** Domain under which control planes are exposed as `<name>.<domain>`. @default "localtest.me" */
  readonly domain?: string;
  /** Port of the ingress controller as seen from outside the cluster. @default 9443 */
  readonly externalPort?: number;
  /** Expose control planes with OpenShift Routes instead of Ingresses. @default false */
  readonly isOpenShift?: boolean;
  /**
   * Expose control planes through this Gateway (Gateway API, `TLSRoute` v1 with TLS passthrough) instead of an
   * Ingress or an OpenShift Route. The port clients reach is still `externalPort` (the listener's port).
   * @default - an Ingress (a Route on OpenShift)
   */
  readonly gateway?: GatewayParent;
  /** Ingress class of an ingress controller with SSL passthrough enabled. @default "nginx" */
  readonly ingressClassName?: string;
  /**
   * Namespace of the ingress controller (or OpenShift router): the only place outside the platform from which the
   * NetworkPolicies let traffic reach tenant API servers.
   * @default - the gateway's namespace with a gateway, "openshift-ingress" on OpenShift, else "ingress-nginx"
   */
  readonly ingressNamespace?: string;
  /** Host container name added to certificate SANs (kind/k3d setups). @default "kubeflex-control-plane" */
  readonly hostContainer?: string;
  /**
   * Pod Security level enforced in `kubeflex-system` (`restricted` is always warned about and audited). Everything this
   * install runs there meets `restricted`; the default admits what admins run beside it, such as KubeStellar's
   * `helm uninstall` Job, which deletes its ControlPlanes there with no seccomp profile. Only whoever may create pods in
   * `kubeflex-system` (an admin) is concerned: tenants have no rights there.
   * @default "baseline"
   */
  readonly podSecurity?: 'restricted' | 'baseline';
  /**
   * Namespaces besides `kubeflex-system` where external planes' bootstrap Secrets may be (KubeStellar's chart puts an
   * external ITS's in its release namespace). The controller gets `get`/`delete` on Secrets there (it deletes a
   * bootstrap Secret once it has minted its own token), and the admission policy admits a reference only from an author
   * who may get and delete that Secret.
   * @default - none: only `kubeflex-system`
   */
  readonly bootstrapSecretNamespaces?: string[];
  /**
   * Where the hosting API server's endpoints are (the addresses behind Service `kubernetes`, which is what
   * NetworkPolicies see): hook workloads that declare `hosting-api` egress may reach these, nothing else.
   * @default - any address, ports 443 and 6443 (the ports API servers listen on, as vCluster's own policy allows)
   */
  readonly hostingApiServer?: { readonly cidrs?: string[]; readonly ports?: number[] };
  /** Image of the runtime controller. @default IMAGES.controller */
  readonly controllerImage?: string;
  /**
   * Run the activator (`kubeflex-activator`, the controller's image): control planes with an idle timeout sleep after
   * it, and the first client request wakes them. While a plane sleeps its Service leads to the activator, which
   * holds each connection until the plane is ready, then passes it through (TLS end to end).
   * @default false
   */
  readonly activator?: boolean;
  /**
   * Idle timeout of k8s, k3s and vcluster planes that set none (a duration such as `30m`; at least 60 s). Needs
   * `activator`.
   * @default - none: only planes with their own `idleTimeout` sleep on their own
   */
  readonly idleTimeout?: string;
  /**
   * Boot admission: how many k8s planes' API server Pods may start at once. The Pods of every k8s plane's API server
   * and kube-controller-manager carry a scheduling gate that the controller removes a few at a time (and from a
   * plane's kube-controller-manager once its API server is ready), so a burst of creations or of wakes never piles
   * more starts onto the cores than they can finish; the rest wait as Pending Pods, and a woken plane's clients wait
   * at the activator. A Pod that has not become ready 60 s after its gate was removed no longer holds a slot. `0`
   * switches admission off (no gates; then the tenant API servers also start while the controller is down).
   * @default 3
   */
  readonly bootSlots?: number;
  /**
   * Park idle k8s planes' kube-controller-manager: after this long without a write to the plane's database (rows
   * kine inserted, counted by PostgreSQL), the controller scales the plane's kube-controller-manager to zero, and
   * starts it again when the next write is seen (it looks every 15 s while parked). Its work all follows writes (a
   * new namespace's `default` ServiceAccount, a namespace deletion, cascading deletes, certificate requests), so
   * parked it waits for the next one instead of idling: about 20 MiB of an idle tenant (BENCHMARKS.md). What a
   * client sees: the first write after a parked period is served at once, and the work it triggers in
   * kube-controller-manager follows within about 35 s. A duration of at least 60 s, or `off`.
   * @default '10m'
   */
  readonly controllerManagerIdleTimeout?: string;
  /**
   * Run the materializer (`kubeflex-materializer`): ControlPlanes created by KubeFlex's own clients (kflex, kubectl,
   * charts) without our synth are built into tenants with these constructs in the cluster. Turn it off when every
   * tenant is synthesized in Git. It holds no right to bind cluster-admin or to escalate, and an admission policy
   * confines its writes to the namespaces it made for ControlPlanes (see the README's security table).
   * @default true
   */
  readonly materializer?: boolean;
  /**
   * Allow control planes of type `host` (a ServiceAccount bound to cluster-admin of this cluster, KubeFlex's type).
   * Even when allowed, the API server admits a host plane, or hooks on one, only from a principal that holds the
   * verbs `host` / `host-hooks` on `controlplanes` (cluster-admins hold every verb; others get them from
   * `hostControlPlaneGroups`). When false, nobody can create one and no component holds a right to bind cluster-admin.
   * @default true
   */
  readonly hostControlPlanes?: boolean;
  /**
   * Groups granted the verbs `host` and `host-hooks` on `controlplanes` (ClusterRoleBinding `kubeflex:host-planes`):
   * whoever is in them can make hosting cluster-admin credentials.
   * @default - none: only cluster-admins
   */
  readonly hostControlPlaneGroups?: string[];
  /**
   * ClusterRoles bound to the hook applier (ServiceAccount `kubeflex-hooks`, which the materializer impersonates to
   * apply the PostCreateHook objects of bare ControlPlanes). By default it may only create and patch namespaced
   * objects of the kinds hooks usually hold, inside the namespaces made for ControlPlanes; hooks that make
   * cluster-scoped objects (KubeStellar's WDS hooks make ClusterRoles and ClusterRoleBindings) need a grant here,
   * and whatever is granted here, the materializer can do through its hooks. Writing PostCreateHooks is an admin right.
   * @default - none
   */
  readonly hookClusterRoles?: string[];
  /** Run the bundled PostgreSQL for k8s-type tenants; `false` with no externalPostgres means no k8s tenants. @default true unless externalPostgres is set */
  readonly installPostgres?: boolean;
  /** Options for the bundled PostgreSQL. @default - see PostgresOptions */
  readonly postgres?: PostgresOptions;
  /** Use an existing PostgreSQL server instead of the bundled one. @default - none */
  readonly externalPostgres?: ExternalPostgresOptions;
  /**
   * libpq sslmode towards PostgreSQL. "verify-ca" and "verify-full" need a CA: the bundled server's (minted by the
   * controller) or externalPostgres.caSecretName.
   * @default "verify-full" when the CA is known (the bundled server, or an external one with caSecretName), else "prefer"
   */
  readonly postgresSslMode?: PostgresSslMode;
}

/** ClusterRole of the controller in the admin's extra bootstrap namespaces: get and delete Secrets. */
export const CONTROLLER_BOOTSTRAP_ROLE = 'kubeflex-controller-bootstrap';
/** Name of the materializer's ServiceAccount, Deployment and RBAC. */
export const MATERIALIZER_NAME = 'kubeflex-materializer';

/**
 * API server starts admitted at once by default: on the 2-core test node one start saturates a core for a few
 * seconds, and a start also waits on things that are not CPU (a Pod sandbox, the scheduler, the kubelet, the
 * database). With two slots the node idled for a fifth of a storm of 50, and three brought the last of them Ready in
 * 148 s instead of 177 s (BENCHMARKS.md, issue 26 round 9), far from the load at which starts push each other past
 * their hard-coded start-up timeouts (25 at once).
 */
export const DEFAULT_BOOT_SLOTS = 3;

/** Namespaced kinds that tenants' objects and hooks are made of: what the materializer and the hook applier write. */
const TENANT_NAMESPACED_RESOURCES = [
  kplus.ApiResource.SERVICE_ACCOUNTS,
  kplus.ApiResource.SERVICES,
  kplus.ApiResource.CONFIG_MAPS,
  kplus.ApiResource.SECRETS,
  kplus.ApiResource.PERSISTENT_VOLUME_CLAIMS,
  kplus.ApiResource.DEPLOYMENTS,
  kplus.ApiResource.STATEFUL_SETS,
  kplus.ApiResource.JOBS,
  kplus.ApiResource.ROLES,
  kplus.ApiResource.ROLE_BINDINGS,
];

/**
 * `bind` on exactly the ClusterRoles `names`: cdk8s-plus cannot name resourceNames of a referenced ClusterRole, so
 * the rule goes in through the escape hatch.
 */
function allowBind(role: kplus.ClusterRole, names: string[]): void {
  ApiObject.of(role).addJsonPatch(
    JsonPatch.add('/rules/-', {
      apiGroups: ['rbac.authorization.k8s.io'],
      resources: ['clusterroles'],
      resourceNames: names,
      verbs: ['bind'],
    }),
  );
}

/**
 * The hosting install: namespace `kubeflex-system`, the KubeFlex CRDs, ConfigMap `kubeflex-config`, the runtime
 * controller with least-privilege RBAC, and (optionally) the shared PostgreSQL. Control planes and hooks register
 * with it, which is how duplicate tenant names and unknown hooks are caught.
 */
export class KubeflexHosting extends HostingRegistry implements IKubeflexHosting {
  /**
   * A hosting install that runs elsewhere, from the data of its `kubeflex-config` ConfigMap: control planes and hooks
   * synthesize against it exactly as against the install itself, and it emits nothing of the install.
   */
  public static fromConfig(scope: Construct, id: string, props: KubeflexHostingFromConfigProps): IKubeflexHosting {
    const where = `KubeflexHosting.fromConfig "${scope.node.path ? `${scope.node.path}/` : ''}${id}"`;
    return new ImportedKubeflexHosting(scope, id, hostingAttributesFromConfig(where, props.config));
  }

  /**
   * A hosting install that runs elsewhere, from its typed attributes (AWS CDK's `fromXxxAttributes`): control planes
   * and hooks synthesize against it exactly as against the install itself, and it emits nothing of the install.
   */
  public static fromHostingAttributes(
    scope: Construct,
    id: string,
    attrs: KubeflexHostingAttributes,
  ): IKubeflexHosting {
    return new ImportedKubeflexHosting(scope, id, attrs);
  }

  /** Domain under which control planes are exposed. */
  public readonly domain: string;
  /** External port of the ingress controller. */
  public readonly externalPort: number;
  /** Whether control planes are exposed by OpenShift Routes. */
  public readonly isOpenShift: boolean;
  /** Ingress class used by control-plane Ingresses. */
  public readonly ingressClassName: string;
  /** Namespace of the ingress controller (NetworkPolicy source of tenant API traffic). */
  public readonly ingressNamespace: string;
  /** The Gateway that exposes control planes, if any. */
  public readonly gateway?: GatewayParent;
  /** Host container name (certificate SAN). */
  public readonly hostContainer: string;
  /** PostgreSQL for k8s-type tenants, or undefined when there is none. */
  public readonly postgres?: PostgresEndpoint;
  /** The controller's ServiceAccount. */
  public readonly serviceAccount: kplus.ServiceAccount;

  /** Whether control planes of type `host` may be made (by principals holding the `host` verb). */
  public readonly hostControlPlanes: boolean;
  /** Namespaces where bootstrap Secrets of external planes may be, `kubeflex-system` first. */
  public readonly bootstrapSecretNamespaces: readonly string[];
  /** Where hook workloads with `hosting-api` egress may connect. */
  public readonly hostingApiEgress: HostingApiEgress;
  /** Whether the activator runs: planes may sleep on idle and wake on request. */
  public readonly activator: boolean;
  /** Idle timeout of planes that set none, if any. */
  public readonly idleTimeout?: string;
  /** API server Pods the controller lets start at once; 0: no boot admission. */
  public readonly bootSlots: number;
  /** After how long without a client request a k8s plane's kube-controller-manager is parked; undefined: never. */
  public readonly managerIdleTimeout?: string;

  private readonly constructName: string;
  private readonly withMaterializer: boolean;

  public constructor(scope: Construct, id: string, props: KubeflexHostingProps = {}) {
    super(scope, id, { labels: { 'app.kubernetes.io/part-of': 'kubeflex' } });
    const where = `KubeflexHosting "${this.node.path}"`;
    this.constructName = where;
    // Every setting resolved and checked before anything is made.
    this.domain = props.domain ?? HOSTING_DEFAULTS.domain;
    this.externalPort = props.externalPort ?? HOSTING_DEFAULTS.externalPort;
    this.isOpenShift = props.isOpenShift ?? false;
    this.ingressClassName = props.ingressClassName ?? HOSTING_DEFAULTS.ingressClassName;
    this.gateway = props.gateway ? { ...props.gateway } : undefined;
    this.ingressNamespace = props.ingressNamespace ?? defaultIngressNamespace(this.gateway, this.isOpenShift);
    this.hostContainer = props.hostContainer ?? HOSTING_DEFAULTS.hostContainer;
    checkExposure(where, this);
    checkPostgresChoice(where, props);
    const level = namespaceLevel(where, props.podSecurity);
    const extraBootstrap = extraBootstrapNamespaces(where, props.bootstrapSecretNamespaces ?? []);
    this.bootstrapSecretNamespaces = [HOSTING_NAMESPACE, ...extraBootstrap];
    this.hostingApiEgress = hostingApiEgressOf(where, props.hostingApiServer);
    this.hostControlPlanes = props.hostControlPlanes ?? true;
    const hostGroups = props.hostControlPlaneGroups ?? [];
    checkHostGroups(where, this.hostControlPlanes, hostGroups);
    this.withMaterializer = props.materializer ?? true;
    this.activator = props.activator ?? false;
    this.idleTimeout = checkIdleDefault(where, props.idleTimeout, this.activator);
    this.bootSlots = props.bootSlots ?? DEFAULT_BOOT_SLOTS;
    checkInteger(where, 'bootSlots', this.bootSlots, 0, MAX_BOOT_SLOTS);
    const managerIdle = props.controllerManagerIdleTimeout ?? DEFAULT_MANAGER_IDLE_TIMEOUT;
    this.managerIdleTimeout =
      managerIdle === 'off' ? undefined : checkIdleTimeout(where, 'controllerManagerIdleTimeout', managerIdle);
    const hookRoles = props.hookClusterRoles ?? [];
    checkHookRoles(where, hookRoles, this.withMaterializer);
    const bundled = !props.externalPostgres && (props.installPostgres ?? true);
    const postgresImage = props.postgres?.image ?? IMAGES.postgres;
    this.postgres = props.externalPostgres
      ? externalPostgresEndpoint(where, props.externalPostgres, props.postgresSslMode)
      : bundled
        ? bundledPostgresEndpoint(where, props.postgresSslMode)
        : undefined;

    new kplus.Namespace(this, 'Namespace', {
      metadata: {
        name: HOSTING_NAMESPACE,
        labels: {
          ...podSecurityLabels(level),
          'pod-security.kubernetes.io/warn': 'restricted',
          'pod-security.kubernetes.io/audit': 'restricted',
        },
      },
    });
    new ApiObject(this, 'ControlPlaneCrd', controlPlaneCrd(this.bootstrapSecretNamespaces));
    new ApiObject(this, 'PostCreateHookCrd', POST_CREATE_HOOK_CRD);
    new kplus.ConfigMap(this, 'Config', {
      metadata: { name: HOSTING_CONFIGMAP, namespace: HOSTING_NAMESPACE },
      data: encodeHostingConfig({
        domain: this.domain,
        externalPort: this.externalPort,
        isOpenShift: this.isOpenShift,
        hostContainer: this.hostContainer,
        ingressClassName: this.ingressClassName,
        ingressNamespace: this.ingressNamespace,
        gateway: this.gateway,
        hostControlPlanes: this.hostControlPlanes,
        ...(extraBootstrap.length ? { bootstrapSecretNamespaces: [...extraBootstrap] } : {}),
        ...(props.hostingApiServer ? { hostingApi: this.hostingApiEgress } : {}),
        activator: this.activator,
        idleTimeout: this.idleTimeout,
        bootSlots: this.bootSlots,
        managerIdleTimeout: this.managerIdleTimeout,
        // What the runtime controller needs to drop a tenant's database and role when its ControlPlane is deleted;
        // only the bundled server's superuser password is minted by the controller, an external one is the user's.
        postgres: this.postgres && {
          host: this.postgres.host,
          port: this.postgres.port,
          superuser: this.postgres.superuser,
          passwordSecret: this.postgres.passwordSecretName,
          passwordKey: this.postgres.passwordSecretKey,
          sslMode: this.postgres.sslMode,
          bundled,
          ca: this.postgres.ca && { secret: this.postgres.ca.secretName, key: this.postgres.ca.key },
        },
      }),
    });
    this.serviceAccount = new kplus.ServiceAccount(this, 'ServiceAccount', {
      metadata: { name: CONTROLLER_NAME, namespace: HOSTING_NAMESPACE },
      automountToken: true,
    });
    this.addControllerRbac();
    this.addController(props.controllerImage ?? IMAGES.controller);
    if (this.withMaterializer) this.addMaterializer(props.controllerImage ?? IMAGES.controller, hookRoles);
    if (this.activator) {
      new KubeflexActivator(this, 'Activator', {
        image: props.controllerImage ?? IMAGES.controller,
        hostingApi: this.hostingApiEgress,
      });
    }
    this.addTrust(hostGroups);
    if (bundled) addBundledPostgres(this, this.constructName, props.postgres ?? {}, postgresImage);
    hostingNetworkPolicies(this, bundled, this.withMaterializer);
  }

  private addControllerRbac(): void {
    const cluster = new kplus.ClusterRole(this, 'ControllerRole', { metadata: { name: 'kubeflex-controller' } });
    const custom = (apiGroup: string, resourceType: string) => kplus.ApiResource.custom({ apiGroup, resourceType });
    // delete: KubeStellar's uninstall hook deletes ControlPlanes as this ServiceAccount.
    cluster.allow(['get', 'list', 'watch', 'update', 'patch', 'delete'], custom(API_GROUP, 'controlplanes'));
    cluster.allow(['get', 'update', 'patch'], custom(API_GROUP, 'controlplanes/status'));
    cluster.allow(['update'], custom(API_GROUP, 'controlplanes/finalizers'));
    cluster.allow(['get', 'list', 'watch'], custom(API_GROUP, 'postcreatehooks'));
    // Hook completion, aggregated over the planes that use each hook (the PostCreateHook's own status).
    cluster.allow(['get', 'update', 'patch'], custom(API_GROUP, 'postcreatehooks/status'));
    // Readiness of tenant workloads and of hook objects (KubeFlex's readiness rules) is read cluster-wide;
    // no write access outside the tenant namespaces is granted here.
    cluster.allow(
      ['get', 'list', 'watch'],
      kplus.ApiResource.NAMESPACES,
      kplus.ApiResource.DEPLOYMENTS,
      kplus.ApiResource.STATEFUL_SETS,
      kplus.ApiResource.DAEMON_SETS,
      kplus.ApiResource.JOBS,
      kplus.ApiResource.PODS,
      kplus.ApiResource.CUSTOM_RESOURCE_DEFINITIONS,
    );
    cluster.allow(['create', 'patch'], kplus.ApiResource.EVENTS);
    // A deleted ControlPlane takes its `<name>-system` namespace along (only one carrying its label; checked in code).
    cluster.allow(['delete'], kplus.ApiResource.NAMESPACES);
    if (this.hostControlPlanes) {
      // A host plane's binding of its ServiceAccount to cluster-admin, made only for a ControlPlane the admission
      // policy admitted as `host` (named kubeflex:host:<cp>, owned by it; an existing binding is never taken over).
      cluster.allow(['get', 'create'], kplus.ApiResource.CLUSTER_ROLE_BINDINGS);
      allowBind(cluster, ['cluster-admin']);
    }
    const binding = new kplus.ClusterRoleBinding(this, 'ControllerRoleBinding', {
      metadata: { name: 'kubeflex-controller' },
      role: cluster,
    });
    binding.addSubjects(this.serviceAccount);

    // Secrets are written only where a RoleBinding to this ClusterRole exists: kubeflex-system and each tenant
    // namespace. The controller can never read Secrets of unrelated namespaces.
    const tenant = new kplus.ClusterRole(this, 'ControllerTenantRole', { metadata: { name: CONTROLLER_TENANT_ROLE } });
    tenant.allow(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'], kplus.ApiResource.SECRETS);
    tenant.allow(['get', 'list', 'watch'], kplus.ApiResource.SERVICES, kplus.ApiResource.CONFIG_MAPS);
    // Sleep and wake: the replicas of the plane's workloads, and whether the activator serves its Service yet.
    tenant.allow(
      ['patch'],
      kplus.ApiResource.custom({ apiGroup: 'apps', resourceType: 'deployments/scale' }),
      kplus.ApiResource.custom({ apiGroup: 'apps', resourceType: 'statefulsets/scale' }),
    );
    tenant.allow(['list'], kplus.ApiResource.custom({ apiGroup: 'discovery.k8s.io', resourceType: 'endpointslices' }));
    // Boot admission: removing the boot gate from a plane's Pods, and nothing else (policy kubeflex-controller-pods).
    tenant.allow(['patch'], kplus.ApiResource.PODS);
    // Host planes: short-lived, renewed TokenRequest tokens instead of a non-expiring token Secret.
    tenant.allow(['create'], kplus.ApiResource.custom({ apiGroup: '', resourceType: 'serviceaccounts/token' }));
    bindControllerInNamespace(this, 'ControllerTenantRoleBinding', HOSTING_NAMESPACE);
    const extra = this.bootstrapSecretNamespaces.slice(1);
    if (extra.length) {
      // Read a bootstrap kubeconfig and delete it once used: nothing else, and only where the admin listed.
      const boot = new kplus.ClusterRole(this, 'ControllerBootstrapRole', {
        metadata: { name: CONTROLLER_BOOTSTRAP_ROLE },
      });
      boot.allow(['get', 'delete'], kplus.ApiResource.SECRETS);
      for (const n of extra) {
        // Made here so the binding applies on its own. No Pod Security labels: it is the admin's namespace (a Helm
        // release installed there later, whose pods we do not know, uses it as it is).
        new kplus.Namespace(this, `BootstrapNamespace-${n}`, { metadata: { name: n } });
        new kplus.RoleBinding(this, `ControllerBootstrap-${n}`, {
          metadata: { name: CONTROLLER_BOOTSTRAP_ROLE, namespace: n },
          role: boot,
        }).addSubjects(this.serviceAccount);
      }
    }
  }

  /**
   * Who may do what, enforced by the API server: the admission policies (lib/admission.ts), the ClusterRole that
   * grants the host-plane verbs (bound to `groups`), and vCluster's syncer role that planes bind in their namespace.
   */
  private addTrust(groups: string[]): void {
    addControlPlanePolicy(this, { hostPlanes: this.hostControlPlanes });
    addControllerPodPolicy(this, { user: `system:serviceaccount:${HOSTING_NAMESPACE}:${CONTROLLER_NAME}` });
    if (this.withMaterializer) {
      addMaterializerPolicy(this, {
        user: `system:serviceaccount:${HOSTING_NAMESPACE}:${MATERIALIZER_NAME}`,
        controllerTenantRole: CONTROLLER_TENANT_ROLE,
        controllerServiceAccount: CONTROLLER_NAME,
        vclusterRole: VCLUSTER_CLUSTER_ROLE,
      });
    }
    if (this.hostControlPlanes) {
      const hostRole = new kplus.ClusterRole(this, 'HostPlanesRole', { metadata: { name: HOST_PLANES_CLUSTER_ROLE } });
      hostRole.allow(
        [CONTROL_PLANE_VERBS.host, CONTROL_PLANE_VERBS.hostHooks],
        kplus.ApiResource.custom({ apiGroup: API_GROUP, resourceType: 'controlplanes' }),
      );
      if (groups.length > 0) {
        const b = new kplus.ClusterRoleBinding(this, 'HostPlanesRoleBinding', {
          metadata: { name: HOST_PLANES_CLUSTER_ROLE },
          role: hostRole,
        });
        for (const [i, g] of groups.entries()) b.addSubjects(kplus.Group.fromName(this, `HostPlanesGroup${i}`, g));
      }
    }
    // The chart's Role of vCluster's syncer (what it creates in the host namespace for tenant pods), as a ClusterRole.
    const vc = new kplus.ClusterRole(this, 'VClusterRole', { metadata: { name: VCLUSTER_CLUSTER_ROLE } });
    const core = (t: string) => kplus.ApiResource.custom({ apiGroup: '', resourceType: t });
    const apps = (t: string) => kplus.ApiResource.custom({ apiGroup: 'apps', resourceType: t });
    vc.allow(
      ['create', 'delete', 'patch', 'update', 'get', 'list', 'watch'],
      core('configmaps'),
      core('secrets'),
      core('services'),
      core('pods'),
      core('pods/attach'),
      core('pods/portforward'),
      core('pods/exec'),
      core('persistentvolumeclaims'),
    );
    vc.allow(['patch', 'update'], core('pods/status'), core('pods/ephemeralcontainers'));
    // As the chart's Role for this configuration: endpoints are written (sync.toHost.endpoints), apps only read.
    vc.allow(['create', 'delete', 'patch', 'update', 'get', 'list', 'watch'], core('endpoints'));
    vc.allow(['get', 'list', 'watch'], apps('statefulsets'), apps('replicasets'), apps('deployments'));
    vc.allow(['get', 'list', 'watch'], core('pods/log'));
    // Beyond the chart (read only there): the syncer can record host events about synced objects.
    vc.allow(['create', 'get', 'list', 'watch'], core('events'));
  }

  /**
   * The materializer: its own ServiceAccount and RBAC, the least that applying our tenants' objects needs. It writes
   * (create, patch) but never reads what it writes, except the namespaces it checks before applying.
   */
  private addMaterializer(image: string, hookRoles: string[]): void {
    const sa = new kplus.ServiceAccount(this, 'MaterializerServiceAccount', {
      metadata: { name: MATERIALIZER_NAME, namespace: HOSTING_NAMESPACE },
      automountToken: true,
    });
    this.addHookApplier(sa, hookRoles);
    const role = new kplus.ClusterRole(this, 'MaterializerRole', { metadata: { name: MATERIALIZER_NAME } });
    const custom = (apiGroup: string, resourceType: string) => kplus.ApiResource.custom({ apiGroup, resourceType });
    role.allow(['get', 'list', 'watch', 'patch'], custom(API_GROUP, 'controlplanes'));
    role.allow(['get', 'list', 'watch'], custom(API_GROUP, 'postcreatehooks'));
    role.allow(['get', 'create', 'patch'], kplus.ApiResource.NAMESPACES);
    // What the control-plane constructs synthesize into `<name>-system` (and hook Jobs and ConfigMaps).
    role.allow(
      ['create', 'patch'],
      ...TENANT_NAMESPACED_RESOURCES,
      kplus.ApiResource.INGRESSES,
      kplus.ApiResource.NETWORK_POLICIES,
      // vCluster's quota and limit range in its namespace (what the chart renders from `policies`).
      kplus.ApiResource.RESOURCE_QUOTAS,
      kplus.ApiResource.LIMIT_RANGES,
      custom('route.openshift.io', 'routes'),
      custom('gateway.networking.k8s.io', 'tlsroutes'),
    );
    // RoleBindings to the controller's tenant role and to vCluster's syncer role, nothing else: no `escalate`, no
    // ClusterRoleBindings (a host plane's binding is the controller's).
    allowBind(role, [CONTROLLER_TENANT_ROLE, VCLUSTER_CLUSTER_ROLE]);
    role.allow(['create', 'patch'], kplus.ApiResource.EVENTS);
    const binding = new kplus.ClusterRoleBinding(this, 'MaterializerRoleBinding', {
      metadata: { name: MATERIALIZER_NAME },
      role,
    });
    binding.addSubjects(sa);
    // It reads kubeflex-config, the install's settings its synthesis needs.
    const hostingRole = new kplus.Role(this, 'MaterializerHostingRole', {
      metadata: { name: MATERIALIZER_NAME, namespace: HOSTING_NAMESPACE },
    });
    hostingRole.allow(['get'], kplus.ApiResource.CONFIG_MAPS);
    new kplus.RoleBinding(this, 'MaterializerHostingRoleBinding', {
      metadata: { name: MATERIALIZER_NAME, namespace: HOSTING_NAMESPACE },
      role: hostingRole,
    }).addSubjects(sa);

    const deployment = new kplus.Deployment(this, 'Materializer', {
      metadata: { name: MATERIALIZER_NAME, namespace: HOSTING_NAMESPACE, labels: { 'control-plane': 'materializer' } },
      replicas: 1,
      select: false,
      podMetadata: { labels: POD_LABELS.materializer },
      serviceAccount: sa,
      automountServiceAccountToken: true,
      securityContext: restrictedPod(),
      containers: [
        {
          name: 'materializer',
          image,
          imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
          command: ['kubeflex-materializer'],
          args: ['--health-port=8082'],
          ports: [{ number: 8082, name: 'health' }],
          securityContext: restrictedContainer(),
          // CPU shares follow requests: 10 m next to dozens of starting tenants left it starved (daemonProbes).
          resources: resources(50, 96, 500, 384),
          ...daemonProbes(8082, 5),
        },
      ],
    });
    deployment.select(kplus.LabelSelector.of({ labels: POD_LABELS.materializer }));
  }

  /**
   * The hook applier: the identity the materializer impersonates for PostCreateHook objects (no pod runs as it). Its
   * rights are the admin's decision: by default create/patch of the namespaced kinds hooks hold, confined to the
   * namespaces made for ControlPlanes by its admission policy; `hookClusterRoles` adds more.
   */
  private addHookApplier(materializer: kplus.ServiceAccount, hookRoles: string[]): void {
    const sa = new kplus.ServiceAccount(this, 'HookApplierServiceAccount', {
      metadata: { name: HOOK_APPLIER_NAME, namespace: HOSTING_NAMESPACE },
      automountToken: false,
    });
    const role = new kplus.ClusterRole(this, 'HookApplierRole', { metadata: { name: HOOK_APPLIER_NAME } });
    role.allow(
      ['create', 'patch'],
      ...TENANT_NAMESPACED_RESOURCES,
      kplus.ApiResource.DAEMON_SETS,
      kplus.ApiResource.CRON_JOBS,
      kplus.ApiResource.PODS,
    );
    new kplus.ClusterRoleBinding(this, 'HookApplierRoleBinding', {
      metadata: { name: HOOK_APPLIER_NAME },
      role,
    }).addSubjects(sa);
    for (const [i, r] of hookRoles.entries()) {
      new kplus.ClusterRoleBinding(this, `HookApplierGrant${i}`, {
        metadata: { name: `${HOOK_APPLIER_NAME}:${r}` },
        role: kplus.ClusterRole.fromClusterRoleName(this, `HookApplierGrantRole${i}`, r),
      }).addSubjects(sa);
    }
    // The materializer may act as the hook applier, and as nothing else.
    const impersonate = new kplus.Role(this, 'MaterializerImpersonateRole', {
      metadata: { name: `${MATERIALIZER_NAME}-impersonate`, namespace: HOSTING_NAMESPACE },
    });
    ApiObject.of(impersonate).addJsonPatch(
      JsonPatch.add('/rules', [
        { apiGroups: [''], resources: ['serviceaccounts'], resourceNames: [HOOK_APPLIER_NAME], verbs: ['impersonate'] },
      ]),
    );
    new kplus.RoleBinding(this, 'MaterializerImpersonateRoleBinding', {
      metadata: { name: `${MATERIALIZER_NAME}-impersonate`, namespace: HOSTING_NAMESPACE },
      role: impersonate,
    }).addSubjects(materializer);
    addHookApplierPolicy(this, { user: HOOK_APPLIER_USER });
  }

  private addController(image: string): void {
    // Id kept as 'Resource' although the chart is more than its controller: cdk8s-plus derives the Deployment's
    // selector label (cdk8s.io/metadata.addr) from the construct address, and a selector is immutable, so another id
    // would make every existing install fail to upgrade.
    const deployment = new kplus.Deployment(this, 'Resource', {
      metadata: {
        name: CONTROLLER_NAME,
        namespace: HOSTING_NAMESPACE,
        labels: { 'control-plane': 'controller-manager' },
      },
      replicas: 1,
      select: false,
      podMetadata: { labels: { app: CONTROLLER_NAME } },
      serviceAccount: this.serviceAccount,
      automountServiceAccountToken: true,
      securityContext: restrictedPod(),
      containers: [
        {
          name: 'manager',
          image,
          imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
          args: ['--health-port=8081'],
          envVariables: {
            POD_NAMESPACE: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_NAMESPACE),
          },
          ports: [{ number: 8081, name: 'health' }],
          securityContext: restrictedContainer(),
          // CPU shares follow requests: it admits boots and mints for every tenant, so it must not starve when they
          // start (10 m did, next to dozens of starting tenants: daemonProbes).
          resources: resources(100, 64, 500, 256),
          ...daemonProbes(8081, 5),
        },
      ],
    });
    deployment.select(kplus.LabelSelector.of({ labels: { app: CONTROLLER_NAME } }));
  }
}

/** The exposure settings: names, ports and the room `<tenant>.` needs in host names. */
function checkExposure(
  where: string,
  h: Pick<
    KubeflexHosting,
    'domain' | 'externalPort' | 'gateway' | 'ingressClassName' | 'ingressNamespace' | 'hostContainer'
  >,
): void {
  checkDnsSubdomain(where, 'domain', h.domain);
  if (h.domain.length + 1 + MAX_TENANT_NAME_LENGTH > 253) {
    throw new KubeflexConfigError(where, 'domain', h.domain, 'leaves no room for `<tenant>.` in host names');
  }
  checkInteger(where, 'externalPort', h.externalPort, 1, 65535);
  if (h.gateway) {
    checkDnsSubdomain(where, 'gateway.name', h.gateway.name);
    checkDnsLabel(where, 'gateway.namespace', h.gateway.namespace);
    if (h.gateway.sectionName !== undefined) checkDnsLabel(where, 'gateway.sectionName', h.gateway.sectionName);
  }
  checkDnsLabel(where, 'ingressClassName', h.ingressClassName);
  checkDnsLabel(where, 'ingressNamespace', h.ingressNamespace);
  checkDnsSubdomain(where, 'hostContainer', h.hostContainer);
}

/** The Pod Security level enforced in kubeflex-system. */
function namespaceLevel(where: string, level: string = 'baseline'): 'restricted' | 'baseline' {
  if (level !== 'restricted' && level !== 'baseline') {
    throw new KubeflexConfigError(where, 'podSecurity', level, 'must be "restricted" or "baseline"');
  }
  return level;
}

/** The admin's bootstrap namespaces besides kubeflex-system, each a namespace name listed once. */
function extraBootstrapNamespaces(where: string, list: string[]): string[] {
  for (const [i, n] of list.entries()) {
    checkDnsLabel(where, `bootstrapSecretNamespaces[${i}]`, n);
    if (n === HOSTING_NAMESPACE || list.indexOf(n) !== i) {
      throw new KubeflexConfigError(where, `bootstrapSecretNamespaces[${i}]`, n, 'is listed already');
    }
  }
  return [...list];
}

/** The hosting-wide idle timeout: a duration within bounds, and only with the activator that wakes planes. */
function checkIdleDefault(where: string, value: string | undefined, activator: boolean): string | undefined {
  if (value === undefined) return undefined;
  checkIdleTimeout(where, 'idleTimeout', value);
  if (!activator) {
    throw new KubeflexConfigError(
      where,
      'idleTimeout',
      value,
      'needs `activator: true`: nothing would wake the planes',
    );
  }
  return value;
}

/** Where hook workloads with `hosting-api` egress may connect. */
function hostingApiEgressOf(where: string, api: KubeflexHostingProps['hostingApiServer']): HostingApiEgress {
  const egress = {
    cidrs: [...(api?.cidrs ?? DEFAULT_HOSTING_API_EGRESS.cidrs)],
    ports: [...(api?.ports ?? DEFAULT_HOSTING_API_EGRESS.ports)],
  };
  for (const [i, c] of egress.cidrs.entries()) {
    if (!isCidr(c)) throw new KubeflexConfigError(where, `hostingApiServer.cidrs[${i}]`, c, 'is not a CIDR');
  }
  for (const [i, p] of egress.ports.entries()) checkInteger(where, `hostingApiServer.ports[${i}]`, p, 1, 65535);
  if (!egress.cidrs.length || !egress.ports.length) {
    throw new KubeflexConfigError(where, 'hostingApiServer', api, 'needs at least one CIDR and one port');
  }
  return egress;
}

/** Groups granted host planes: only when host planes are on, never a reserved `system:` group. */
function checkHostGroups(where: string, enabled: boolean, groups: string[]): void {
  if (!enabled && groups.length > 0) {
    throw new KubeflexConfigError(
      where,
      'hostControlPlaneGroups',
      groups,
      'grants host planes, but hostControlPlanes is false',
    );
  }
  for (const [i, g] of groups.entries()) {
    if (typeof g !== 'string' || g === '' || g.startsWith('system:')) {
      throw new KubeflexConfigError(
        where,
        `hostControlPlaneGroups[${i}]`,
        g,
        'must be a non-empty group name outside the reserved "system:" prefix',
      );
    }
  }
}

/** ClusterRoles granted to the hook applier: names, and only with the materializer that uses it. */
function checkHookRoles(where: string, roles: string[], withMaterializer: boolean): void {
  for (const [i, r] of roles.entries()) {
    if (typeof r !== 'string' || !/^[a-z0-9]([a-z0-9:.-]{0,251}[a-z0-9])?$/.test(r)) {
      throw new KubeflexConfigError(where, `hookClusterRoles[${i}]`, r, 'is not a ClusterRole name');
    }
  }
  if (roles.length && !withMaterializer) {
    throw new KubeflexConfigError(
      where,
      'hookClusterRoles',
      roles,
      'grants the hook applier, which only the materializer uses, but materializer is false',
    );
  }
}
