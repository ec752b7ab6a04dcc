// The hosting install as control planes and hooks see it: IKubeflexHosting, the import of an install that runs
// elsewhere (typed attributes, or the kubeflex-config ConfigMap decoded beside them), and the registries of names.
// The install itself (KubeflexHosting) is in hosting.ts.
import { Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct, IConstruct } from 'constructs';
import type { PostgresEndpoint, PostgresSslMode } from './datastore/endpoint';
import { checkDnsSubdomain, checkInteger, KubeflexConfigError } from './errors';
import { decodeHostingConfig, DEFAULT_HOSTING_API_EGRESS, HOSTING_DEFAULTS, MAX_BOOT_SLOTS } from './hosting-config';
import { checkIdleTimeout } from './idle';
import { HOSTING_NAMESPACE } from './names';
import { HostingApiEgress } from './network-policy';
import type { PostCreateHook } from './post-create-hook';

/** A Gateway API Gateway that exposes control planes: the parent of their TLS passthrough TLSRoutes. */
export interface GatewayParent {
  /** Name of the Gateway. */
  readonly name: string;
  /** Namespace of the Gateway (its listener must allow routes from `<cp>-system` namespaces). */
  readonly namespace: string;
  /** Listener of the Gateway (a TLS listener in Passthrough mode). @default - every listener that accepts the route */
  readonly sectionName?: string;
}

/** Where k8s tenants' databases are: the datastore room's types (lib/datastore/endpoint.ts). */
export type { PostgresEndpoint, PostgresSslMode } from './datastore/endpoint';

/** Name of the runtime controller's ServiceAccount and Deployment (KubeFlex's names). */
export const CONTROLLER_NAME = 'kubeflex-controller-manager';
/** ClusterRole the controller gets in each tenant namespace only (bound there by the control-plane constructs). */
export const CONTROLLER_TENANT_ROLE = 'kubeflex-controller-tenant';

/**
 * What control planes and hooks need of the hosting install they run on: its exposure and PostgreSQL settings and a
 * registry of names. Either the install itself (`new KubeflexHosting`) or one installed elsewhere and described by its
 * settings (`KubeflexHosting.fromConfig`), so a repository of tenants needs no copy of the platform.
 */
export interface IKubeflexHosting extends IConstruct {
  /** Domain under which control planes are exposed. */
  readonly domain: string;
  /** External port of the ingress controller or gateway listener. */
  readonly externalPort: number;
  /** Whether control planes are exposed by OpenShift Routes. */
  readonly isOpenShift: boolean;
  /** Ingress class used by control-plane Ingresses. */
  readonly ingressClassName: string;
  /** Namespace of the ingress controller or gateway (NetworkPolicy source of tenant API traffic). */
  readonly ingressNamespace: string;
  /** The Gateway that exposes control planes, if any. */
  readonly gateway?: GatewayParent;
  /** Host container name (certificate SAN). */
  readonly hostContainer: string;
  /** Whether control planes of type `host` may be made on this install. */
  readonly hostControlPlanes: boolean;
  /** Namespaces where bootstrap Secrets of external planes may be, `kubeflex-system` first. */
  readonly bootstrapSecretNamespaces: readonly string[];
  /** Where hook workloads with `hosting-api` egress may connect. */
  readonly hostingApiEgress: HostingApiEgress;
  /** PostgreSQL for k8s-type tenants, or undefined when there is none. */
  readonly postgres?: PostgresEndpoint;
  /** Whether the activator runs: planes may sleep on idle and wake on request. */
  readonly activator: boolean;
  /** Idle timeout of planes that set none, if any. */
  readonly idleTimeout?: string;
  /** API server Pods the controller lets start at once; 0: no boot admission (Pods are not gated). */
  readonly bootSlots: number;
  /** Names of all registered hooks, sorted. */
  readonly postCreateHookNames: string[];
  /** The hook registered under `name`, if any. */
  findPostCreateHook(name: string): PostCreateHook | undefined;
}

/** What a hosting install is, to constructs that synthesize against it (KubeflexHosting.fromHostingAttributes). */
export interface KubeflexHostingAttributes {
  /** Domain under which control planes are exposed. */
  readonly domain: string;
  /** External port of the ingress controller or gateway listener. */
  readonly externalPort: number;
  /** Whether control planes are exposed by OpenShift Routes. @default false */
  readonly isOpenShift?: boolean;
  /** Ingress class of control-plane Ingresses. @default "nginx" */
  readonly ingressClassName?: string;
  /**
   * Namespace of the ingress controller or gateway.
   * @default - the gateway's namespace with a gateway, "openshift-ingress" on OpenShift, else "ingress-nginx"
   */
  readonly ingressNamespace?: string;
  /** The Gateway that exposes control planes. @default - none: Ingresses or Routes */
  readonly gateway?: GatewayParent;
  /** Host container name (certificate SAN). @default "kubeflex-control-plane" */
  readonly hostContainer?: string;
  /** Whether control planes of type `host` may be made. @default true */
  readonly hostControlPlanes?: boolean;
  /** Namespaces besides `kubeflex-system` where bootstrap Secrets may be. @default - none */
  readonly bootstrapSecretNamespaces?: string[];
  /** Where hook workloads with `hosting-api` egress may connect. @default - any address, ports 443 and 6443 */
  readonly hostingApiEgress?: HostingApiEgress;
  /** PostgreSQL for k8s-type tenants. @default - none: k8s planes are refused */
  readonly postgres?: PostgresEndpoint;
  /** Whether the activator runs. @default false */
  readonly activator?: boolean;
  /** Idle timeout of planes that set none. @default - none */
  readonly idleTimeout?: string;
  /**
   * API server Pods the install's controller lets start at once (its `bootSlots`); planes are synthesized with the
   * boot gate only when this is above 0, so a plane never waits on admission its install does not run.
   * @default 0
   */
  readonly bootSlots?: number;
}

/**
 * The attributes a `kubeflex-config` ConfigMap's data describes (the ConfigMap decoding beside the typed import);
 * throws KubeflexConfigError naming `where` and the bad key.
 */
export function hostingAttributesFromConfig(where: string, config: Record<string, string>): KubeflexHostingAttributes {
  let c: ReturnType<typeof decodeHostingConfig>;
  try {
    c = decodeHostingConfig(config);
  } catch (e) {
    throw new KubeflexConfigError(where, 'config', '(kubeflex-config data)', (e as Error).message);
  }
  const pg = c.postgres;
  return {
    domain: c.domain,
    externalPort: c.externalPort,
    isOpenShift: c.isOpenShift,
    ingressClassName: c.ingressClassName,
    ingressNamespace: c.ingressNamespace,
    gateway: c.gateway,
    hostContainer: c.hostContainer,
    hostControlPlanes: c.hostControlPlanes,
    bootstrapSecretNamespaces: c.bootstrapSecretNamespaces ? [...c.bootstrapSecretNamespaces] : undefined,
    hostingApiEgress: c.hostingApi,
    activator: c.activator,
    idleTimeout: c.idleTimeout,
    bootSlots: c.bootSlots,
    postgres: pg && {
      host: pg.host,
      port: pg.port,
      superuser: pg.superuser,
      passwordSecretName: pg.passwordSecret,
      passwordSecretKey: pg.passwordKey,
      sslMode: pg.sslMode as PostgresSslMode,
      ...(pg.ca ? { ca: { secretName: pg.ca.secret, key: pg.ca.key } } : {}),
    },
  };
}

/** Props of KubeflexHosting.fromConfig. */
export interface KubeflexHostingFromConfigProps {
  /** The data of ConfigMap `kubeflex-system/kubeflex-config` of the install (as written by KubeflexHosting). */
  readonly config: Record<string, string>;
}

/**
 * The names registered with each hosting install, kept outside its public interface (no mutators on
 * IKubeflexHosting): duplicate tenant and hook names are caught at synth.
 */
const REGISTRIES = new WeakMap<
  IKubeflexHosting,
  { readonly controlPlanes: Map<string, Construct>; readonly hooks: Map<string, PostCreateHook> }
>();

function registryOf(hosting: IKubeflexHosting) {
  let r = REGISTRIES.get(hosting);
  if (!r) REGISTRIES.set(hosting, (r = { controlPlanes: new Map(), hooks: new Map() }));
  return r;
}

/** Records a control plane of `hosting` (called by the control-plane constructs); throws on a duplicate name. */
export function registerControlPlane(hosting: IKubeflexHosting, name: string, construct: Construct): void {
  const planes = registryOf(hosting).controlPlanes;
  const existing = planes.get(name);
  if (existing) {
    throw new KubeflexConfigError(
      `${construct.constructor.name} "${construct.node.path}"`,
      'name',
      name,
      `is already used by the control plane at "${existing.node.path}"`,
    );
  }
  planes.set(name, construct);
}

/** Records a PostCreateHook of `hosting` so control planes can refer to it by name; throws on a duplicate name. */
export function registerPostCreateHook(hosting: IKubeflexHosting, hook: PostCreateHook): void {
  const hooks = registryOf(hosting).hooks;
  const existing = hooks.get(hook.hookName);
  if (existing) {
    throw new KubeflexConfigError(
      `PostCreateHook "${hook.node.path}"`,
      'name',
      hook.hookName,
      `is already used by the hook at "${existing.node.path}"`,
    );
  }
  hooks.set(hook.hookName, hook);
}

/** The controller's access to a namespace: its tenant ClusterRole, bound in `namespace`. */
export function bindControllerInNamespace(scope: Construct, id: string, namespace: string): kplus.RoleBinding {
  const role = kplus.ClusterRole.fromClusterRoleName(scope, `${id}Role`, CONTROLLER_TENANT_ROLE);
  const binding = new kplus.RoleBinding(scope, id, {
    metadata: { name: 'kubeflex-controller', namespace },
    role,
  });
  binding.addSubjects(
    kplus.ServiceAccount.fromServiceAccountName(scope, `${id}Subject`, CONTROLLER_NAME, {
      namespaceName: HOSTING_NAMESPACE,
    }),
  );
  return binding;
}

/** What every hosting answers from its registry: the hooks registered with it. */
export abstract class HostingRegistry
  extends Chart
  implements Pick<IKubeflexHosting, 'findPostCreateHook' | 'postCreateHookNames'>
{
  /** The hook registered under `name`, if any. */
  public findPostCreateHook(name: string): PostCreateHook | undefined {
    return registryOf(this as unknown as IKubeflexHosting).hooks.get(name);
  }

  /** Names of all registered hooks, sorted (for error messages). */
  public get postCreateHookNames(): string[] {
    return [...registryOf(this as unknown as IKubeflexHosting).hooks.keys()].sort();
  }
}

/** Where the NetworkPolicies admit tenant API traffic from, unless `ingressNamespace` says otherwise. */
export function defaultIngressNamespace(gateway: GatewayParent | undefined, isOpenShift: boolean): string {
  return gateway?.namespace ?? (isOpenShift ? 'openshift-ingress' : 'ingress-nginx');
}

/**
 * A hosting install described by its `kubeflex-config` settings: synthesizes nothing of its own (hooks defined on it
 * emit their PostCreateHook objects, identical to the platform's), so tenants can live in their own repository.
 */
export class ImportedKubeflexHosting extends HostingRegistry implements IKubeflexHosting {
  public readonly domain: string;
  public readonly externalPort: number;
  public readonly isOpenShift: boolean;
  public readonly ingressClassName: string;
  public readonly ingressNamespace: string;
  public readonly gateway?: GatewayParent;
  public readonly hostContainer: string;
  public readonly hostControlPlanes: boolean;
  public readonly bootstrapSecretNamespaces: readonly string[];
  public readonly hostingApiEgress: HostingApiEgress;
  public readonly postgres?: PostgresEndpoint;
  public readonly activator: boolean;
  public readonly idleTimeout?: string;
  public readonly bootSlots: number;

  public constructor(scope: Construct, id: string, attrs: KubeflexHostingAttributes) {
    super(scope, id, { labels: { 'app.kubernetes.io/part-of': 'kubeflex' } });
    this.domain = attrs.domain;
    this.externalPort = attrs.externalPort;
    this.isOpenShift = attrs.isOpenShift ?? false;
    this.ingressClassName = attrs.ingressClassName ?? HOSTING_DEFAULTS.ingressClassName;
    this.gateway = attrs.gateway;
    this.ingressNamespace = attrs.ingressNamespace ?? defaultIngressNamespace(attrs.gateway, this.isOpenShift);
    this.hostContainer = attrs.hostContainer ?? HOSTING_DEFAULTS.hostContainer;
    this.hostControlPlanes = attrs.hostControlPlanes ?? true;
    this.bootstrapSecretNamespaces = [HOSTING_NAMESPACE, ...(attrs.bootstrapSecretNamespaces ?? [])];
    this.hostingApiEgress = attrs.hostingApiEgress ?? DEFAULT_HOSTING_API_EGRESS;
    this.postgres = attrs.postgres;
    this.activator = attrs.activator ?? false;
    this.idleTimeout = attrs.idleTimeout;
    const where = `KubeflexHosting.fromHostingAttributes "${this.node.path}"`;
    this.bootSlots = attrs.bootSlots ?? 0;
    checkInteger(where, 'bootSlots', this.bootSlots, 0, MAX_BOOT_SLOTS);
    if (this.idleTimeout !== undefined) {
      checkIdleTimeout(where, 'idleTimeout', this.idleTimeout);
      if (!this.activator) {
        throw new KubeflexConfigError(where, 'idleTimeout', this.idleTimeout, 'needs `activator: true`');
      }
    }
    checkDnsSubdomain(where, 'domain', this.domain);
    checkInteger(where, 'externalPort', this.externalPort, 1, 65535);
  }
}
