// Network isolation (security review H3): default deny in `kubeflex-system` and in each tenant namespace, then
// exactly the flows each part needs. NetworkPolicies only take effect with a CNI that enforces them (an operator
// duty, written in the README). Raw `KubeNetworkPolicy`: cdk8s-plus's NetworkPolicy cannot express a namespace
// selector on a label's existence, which is how tenant namespaces are recognised.
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ACTIVATOR_PORTS } from './idle';
import { CONTROL_PLANE_LABEL, HOOK_POD_LABEL, HOSTING_NAMESPACE, PLANE_API_CLIENTS_LABEL } from './names';

type Peer = kplus.k8s.NetworkPolicyPeer;

/** Labels of the pods the policies select. */
export const POD_LABELS = {
  controller: { app: 'kubeflex-controller-manager' },
  materializer: { app: 'kubeflex-materializer' },
  postgres: { 'app.kubernetes.io/name': 'postgresql' },
  apiserver: { app: 'kube-apiserver' },
  activator: { app: 'kubeflex-activator' },
} as const;

const ns = (name: string): kplus.k8s.LabelSelector => ({ matchLabels: { 'kubernetes.io/metadata.name': name } });
const tcp = (port: number) => ({ protocol: 'TCP', port: kplus.k8s.IntOrString.fromNumber(port) });
const DNS: kplus.k8s.NetworkPolicyEgressRule = {
  to: [{ namespaceSelector: ns('kube-system'), podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
  ports: [
    { protocol: 'UDP', port: kplus.k8s.IntOrString.fromNumber(53) },
    { protocol: 'TCP', port: kplus.k8s.IntOrString.fromNumber(53) },
  ],
};
/** Every tenant namespace carries the control-plane label; kine pods there reach PostgreSQL. */
const TENANT_KINE: Peer = {
  namespaceSelector: { matchExpressions: [{ key: CONTROL_PLANE_LABEL, operator: 'Exists' }] },
  podSelector: { matchLabels: POD_LABELS.apiserver },
};
const CONTROLLER: Peer = {
  namespaceSelector: ns(HOSTING_NAMESPACE),
  podSelector: { matchLabels: POD_LABELS.controller },
};
/** The activator passes a sleeping plane's clients through to its API pods once they are ready. */
const ACTIVATOR: Peer = {
  namespaceSelector: ns(HOSTING_NAMESPACE),
  podSelector: { matchLabels: POD_LABELS.activator },
};

function policy(
  scope: Construct,
  id: string,
  namespace: string,
  name: string,
  spec: kplus.k8s.NetworkPolicySpec,
): kplus.k8s.KubeNetworkPolicy {
  return new kplus.k8s.KubeNetworkPolicy(scope, id, { metadata: { name, namespace }, spec });
}

/** kubeflex-system: deny all, then PostgreSQL from kine and the controller; DNS; controller out. */
export function hostingNetworkPolicies(scope: Construct, withPostgres: boolean, withMaterializer = false): void {
  const n = HOSTING_NAMESPACE;
  policy(scope, 'DefaultDeny', n, 'default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
  policy(scope, 'AllowDns', n, 'allow-dns', { podSelector: {}, policyTypes: ['Egress'], egress: [DNS] });
  // The controller talks to the hosting API server, tenant API servers, adopted clusters (any address) and
  // PostgreSQL; it is the trusted part. Its health port is probed by the kubelet (not subject to policies).
  policy(scope, 'AllowController', n, 'allow-controller', {
    podSelector: { matchLabels: POD_LABELS.controller },
    policyTypes: ['Egress'],
    egress: [{}],
  });
  if (withMaterializer) {
    // The materializer talks only to the hosting API server, whose address and port (after the Service's DNAT,
    // which is what policies see) differ per cluster: egress is open, ingress closed (default deny).
    policy(scope, 'AllowMaterializer', n, 'allow-materializer', {
      podSelector: { matchLabels: POD_LABELS.materializer },
      policyTypes: ['Egress'],
      egress: [{}],
    });
  }
  if (!withPostgres) return;
  policy(scope, 'AllowPostgres', n, 'allow-postgres', {
    podSelector: { matchLabels: POD_LABELS.postgres },
    policyTypes: ['Ingress'],
    ingress: [
      {
        from: [TENANT_KINE, CONTROLLER],
        ports: [tcp(5432)],
      },
    ],
  });
}

/** Hook pods of plane namespaces the admin's hooks declared `control-planes` egress for (KubeStellar's WDS). */
const HOOK_CLIENTS: Peer = {
  namespaceSelector: { matchLabels: { [PLANE_API_CLIENTS_LABEL]: 'true' } },
  podSelector: { matchExpressions: [{ key: HOOK_POD_LABEL, operator: 'Exists' }] },
};

/** Where the hosting cluster's API server is, as NetworkPolicies see it (after the `kubernetes` Service's DNAT). */
export interface HostingApiEgress {
  /** Address ranges of the API server endpoints. */
  readonly cidrs: readonly string[];
  /** Ports of the API server endpoints. */
  readonly ports: readonly number[];
}

/** The API server pods of each type that runs one, and their port: what `control-planes` egress may reach. */
export const PLANE_API_PODS: readonly { readonly labels: Record<string, string>; readonly port: number }[] = [
  { labels: POD_LABELS.apiserver, port: 9444 },
  { labels: { 'controller.kubeflex.dev/type': 'k3s' }, port: 6443 },
  { labels: { app: 'vcluster', release: 'vcluster' }, port: 8443 },
];

/**
 * Egress of one hook's pods (label HOOK_POD_LABEL=`hookLabel`) in a plane namespace: the hosting API server and/or the
 * API server pods of other planes, on their ports only.
 */
export function hookEgressPolicy(
  scope: Construct,
  id: string,
  namespace: string,
  hookLabel: string,
  egress: readonly string[],
  hostingApi: HostingApiEgress,
): void {
  const rules: kplus.k8s.NetworkPolicyEgressRule[] = [];
  if (egress.includes('hosting-api')) {
    rules.push({ to: hostingApi.cidrs.map((cidr) => ({ ipBlock: { cidr } })), ports: hostingApi.ports.map(tcp) });
  }
  if (egress.includes('control-planes')) {
    const planes = { matchExpressions: [{ key: CONTROL_PLANE_LABEL, operator: 'Exists' }] };
    for (const api of PLANE_API_PODS) {
      rules.push({
        to: [{ namespaceSelector: planes, podSelector: { matchLabels: api.labels } }],
        ports: [tcp(api.port)],
      });
    }
  }
  policy(scope, id, namespace, `allow-hook-egress-${hookLabel}`, {
    podSelector: { matchLabels: { [HOOK_POD_LABEL]: hookLabel } },
    policyTypes: ['Egress'],
    egress: rules,
  });
}

/**
 * The activator in kubeflex-system: any client of a sleeping plane's Service may reach its ports (kube-proxy and the
 * ingress controller forward them there); it reaches the hosting API server and the planes' API pods.
 */
export function activatorNetworkPolicy(scope: Construct, hostingApi: HostingApiEgress): void {
  const planes = { matchExpressions: [{ key: CONTROL_PLANE_LABEL, operator: 'Exists' }] };
  policy(scope, 'NetworkPolicy', HOSTING_NAMESPACE, 'allow-activator', {
    podSelector: { matchLabels: POD_LABELS.activator },
    policyTypes: ['Ingress', 'Egress'],
    ingress: [{ ports: [{ ...tcp(ACTIVATOR_PORTS.first), endPort: ACTIVATOR_PORTS.last }] }],
    egress: [
      { to: hostingApi.cidrs.map((cidr) => ({ ipBlock: { cidr } })), ports: hostingApi.ports.map(tcp) },
      ...PLANE_API_PODS.map((api) => ({
        to: [{ namespaceSelector: planes, podSelector: { matchLabels: api.labels } }],
        ports: [tcp(api.port)],
      })),
    ],
  });
}

/** What a tenant namespace needs to let in and out, by control-plane type. */
export interface TenantNetworkOptions {
  /** Namespace of the tenant. */
  readonly namespace: string;
  /** Port of the tenant API server pods. */
  readonly apiPort?: number;
  /** Labels selecting the tenant API server pods. @default POD_LABELS.apiserver */
  readonly apiPodLabels?: Record<string, string>;
  /** Namespace of the ingress controller that passes TLS through to the tenant API. */
  readonly ingressNamespace: string;
  /** The API pods reach PostgreSQL in kubeflex-system (kine). */
  readonly toPostgres?: boolean;
  /** Pods in the namespace may connect anywhere (host and external planes: their hooks act on other clusters). */
  readonly openEgress?: boolean;
}

/**
 * A tenant namespace: deny all; same-namespace traffic and DNS; the API server reachable from the ingress controller
 * and the runtime controller; kine to PostgreSQL.
 */
export function tenantNetworkPolicies(scope: Construct, o: TenantNetworkOptions): void {
  const n = o.namespace;
  policy(scope, 'DefaultDeny', n, 'default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
  policy(scope, 'AllowSameNamespace', n, 'allow-same-namespace', {
    podSelector: {},
    policyTypes: ['Ingress', 'Egress'],
    ingress: [{ from: [{ podSelector: {} }] }],
    egress: [{ to: [{ podSelector: {} }] }, DNS, ...(o.openEgress ? [{}] : [])],
  });
  if (o.apiPort !== undefined) {
    policy(scope, 'AllowApi', n, 'allow-api', {
      podSelector: { matchLabels: o.apiPodLabels ?? POD_LABELS.apiserver },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [CONTROLLER, { namespaceSelector: ns(o.ingressNamespace) }, HOOK_CLIENTS, ACTIVATOR],
          ports: [tcp(o.apiPort)],
        },
      ],
    });
  }
  if (o.toPostgres) {
    policy(scope, 'AllowPostgres', n, 'allow-postgres', {
      podSelector: { matchLabels: POD_LABELS.apiserver },
      policyTypes: ['Egress'],
      egress: [
        {
          to: [{ namespaceSelector: ns(HOSTING_NAMESPACE), podSelector: { matchLabels: POD_LABELS.postgres } }],
          ports: [tcp(5432)],
        },
      ],
    });
  }
}
