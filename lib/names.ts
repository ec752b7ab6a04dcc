import { createHash } from 'crypto';
import { checkDnsLabel, KubeflexConfigError } from './errors';

/** KubeFlex's API group and version (wire contract). */
export const API_GROUP = 'tenancy.kflex.kubestellar.org';
export const API_VERSION = `${API_GROUP}/v1alpha1`;

/** Longest tenant name: `<name>-system` must fit the 63-character namespace limit. */
export const MAX_TENANT_NAME_LENGTH = 63 - '-system'.length;

/** Label put on every object rendered for a control plane, so `kflex delete` and GC can find them all. */
export const CONTROL_PLANE_LABEL = `${API_GROUP}/control-plane`;

/** Namespace of the hosting install (KubeFlex wire contract). */
export const HOSTING_NAMESPACE = 'kubeflex-system';

/** KubeFlex's names of a control plane's entries in a kubeconfig: cluster `<cp>-cluster`, user `<cp>-admin`, context `<cp>`. */
export function kubeconfigEntryNames(cp: string): { cluster: string; user: string; context: string } {
  return { cluster: `${cp}-cluster`, user: `${cp}-admin`, context: cp };
}

/** Label on the pods of a hook's workloads that declare egress (value: hookLabelValue of the hook's name). */
export const HOOK_POD_LABEL = 'kflex.kubestellar.org/hook';
/** Label on a plane namespace whose hook pods may reach other planes' API servers ("true"). */
export const PLANE_API_CLIENTS_LABEL = 'kflex.kubestellar.org/plane-api-clients';

/**
 * A hook's name as a label value (at most 63 characters): the name itself when it fits, else its first 54
 * characters and 8 hex digits of its SHA-256, so distinct hooks keep distinct values.
 */
export function hookLabelValue(hookName: string): string {
  if (hookName.length <= 63) return hookName;
  const digest = createHash('sha256').update(hookName).digest('hex').slice(0, 8);
  return `${hookName.slice(0, 54).replace(/[^a-z0-9]+$/, '')}-${digest}`;
}

/** The bootstrap kubeconfig Secret of an external plane in `kubeflex-system` (KubeFlex's name). */
export const bootstrapSecretName = (cp: string) => `${cp}-bootstrap`;

/**
 * Every name derived from a tenant (control plane) name. This is the only place that concatenates
 * tenant names, so limits are checked once and the wire contract with KubeFlex lives in one file.
 */
export interface TenantNames {
  /** The control plane name itself (the `ControlPlane` object's name). */
  readonly name: string;
  /** Namespace that holds the tenant's workloads: `<name>-system`. */
  readonly namespace: string;
  /** PostgreSQL database (KubeFlex: name with '-' replaced by '_'). */
  readonly database: string;
  /** PostgreSQL login role owning the database (same identifier as the database). */
  readonly databaseRole: string;
  /** Secret in the hosting namespace with the tenant's database credentials, the controller's record of them. */
  readonly hostingDatabaseSecret: string;
  /** External planes: the bootstrap kubeconfig Secret in the hosting namespace, `<name>-bootstrap`. */
  readonly bootstrapSecret: string;
  /** Entries of the plane in a kubeconfig: cluster `<name>-cluster`, user `<name>-admin`, context `<name>`. */
  readonly kubeconfig: { readonly cluster: string; readonly user: string; readonly context: string };
  /** Off-cluster host name `<name>.<domain>`. */
  host(domain: string): string;
  /** In-cluster DNS name of a Service in the tenant namespace. */
  serviceHost(service: string): string;
}

/**
 * Names whose `<name>-system` namespace is the platform's or a widely used add-on's (security review M6). Any other
 * existing namespace without this plane's label is refused at runtime by the controller and by kflex.
 */
export const RESERVED_TENANT_NAMES = [
  'kube',
  'kubeflex',
  'default',
  'openshift',
  'istio',
  'cattle',
  'flux',
  'calico',
  'gatekeeper',
  'knative',
  'linkerd',
  'cert-manager',
];

/**
 * Derives all names for a tenant, throwing a KubeflexConfigError naming `construct` and `prop` when
 * `name` is not a DNS-1123 label short enough for every derived name.
 */
export function tenantNames(name: string, construct = 'ControlPlane', prop = 'name'): TenantNames {
  checkDnsLabel(construct, prop, name, MAX_TENANT_NAME_LENGTH);
  if (RESERVED_TENANT_NAMES.includes(name)) {
    throw new KubeflexConfigError(
      construct,
      prop,
      name,
      `is reserved: its namespace ${name}-system belongs to the platform or a common add-on (reserved: ${RESERVED_TENANT_NAMES.join(', ')})`,
    );
  }
  const database = name.replace(/-/g, '_');
  const namespace = `${name}-system`;
  return {
    name,
    namespace,
    database,
    databaseRole: database,
    hostingDatabaseSecret: `${name}-db-credentials`,
    bootstrapSecret: bootstrapSecretName(name),
    kubeconfig: kubeconfigEntryNames(name),
    host: (domain: string) => `${name}.${domain}`,
    serviceHost: (service: string) => `${service}.${namespace}.svc`,
  };
}
