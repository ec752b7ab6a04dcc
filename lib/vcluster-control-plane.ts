import { createHash } from 'crypto';
import { ApiObject, Duration, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { stringify } from 'yaml';
import { ControlPlaneSpecType } from '../imports/tenancy.kflex.kubestellar.org';
import { ControlPlaneBase, ControlPlaneProps } from './control-plane';
import { checkDnsSubdomain, checkStorageSize } from './errors';
import { vclusterConfig } from './vcluster-config';
import { IMAGES, VCLUSTER_VERSION } from './versions';
import { TYPE_CONTRACTS, VCLUSTER_CLUSTER_ROLE, VCLUSTER_KUBECONFIG_SECRET, VCLUSTER_RELEASE } from './wire';

/** Props of VClusterControlPlane. */
export interface VClusterControlPlaneProps extends ControlPlaneProps {
  /** Syncer image. @default IMAGES.vclusterSyncer */
  readonly image?: string;
  /** Image the Kubernetes binaries are copied from. @default IMAGES.vclusterKubernetes */
  readonly kubernetesImage?: string;
  /** Storage class of the data volume. @default - the cluster's default storage class */
  readonly storageClassName?: string;
  /** Size of the data volume (embedded SQLite). @default "5Gi" */
  readonly storageSize?: string;
}

/** vCluster release name KubeFlex uses; it fixes the names of all objects below. */
export { VCLUSTER_KUBECONFIG_SECRET, VCLUSTER_RELEASE };

/**
 * A tenant running vCluster (release `vcluster`), synthesized natively: the objects the vCluster chart
 * (version VCLUSTER_VERSION, values format 0.20+) creates for a k8s-distro vCluster with embedded SQLite,
 * without a `helm` binary or a chart download at synth time.
 */
export class VClusterControlPlane extends ControlPlaneBase {
  /** The vCluster StatefulSet. */
  public readonly statefulSet: kplus.StatefulSet;
  /** Service `vcluster` (443 -> 8443). */
  public readonly service: kplus.Service;
  /** Our values: what we choose over the chart's defaults. */
  public readonly values: Record<string, unknown>;
  /** The complete configuration vCluster reads (chart defaults + values), stored in Secret `vc-config-vcluster`. */
  public readonly config: Record<string, unknown>;

  public constructor(scope: Construct, id: string, props: VClusterControlPlaneProps) {
    super(scope, id, props, {
      type: ControlPlaneSpecType.VCLUSTER,
      // The syncer runs as root (the chart's default), without privileges or capabilities: baseline.
      podSecurity: 'baseline',
      kubeconfigSecret: TYPE_CONTRACTS.vcluster.kubeconfig,
    });
    const storageSize = props.storageSize ?? '5Gi';
    checkStorageSize(this.constructName, 'storageSize', storageSize);
    if (props.storageClassName !== undefined)
      checkDnsSubdomain(this.constructName, 'storageClassName', props.storageClassName);
    const ns = this.names.namespace;
    const r = VCLUSTER_RELEASE;
    const host = this.names.host(props.hosting.domain);
    const labels = { app: 'vcluster', release: r };

    this.values = {
      controlPlane: {
        // The Kubernetes binaries come from the chart's default image (distro.k8s.image, tag v1.32.8 at 0.26.1).
        distro: { k8s: { enabled: true } },
        backingStore: { database: { embedded: { enabled: true } } },
        proxy: { extraSANs: [host, `${r}.${ns}`, this.names.serviceHost(r), props.hosting.hostContainer] },
        statefulSet: {
          persistence: { volumeClaim: { size: storageSize, storageClass: props.storageClassName ?? '' } },
          image: imageRef(props.image ?? IMAGES.vclusterSyncer),
        },
      },
      exportKubeConfig: { server: `https://${host}:${props.hosting.externalPort}`, context: this.names.name },
      sync: { toHost: { pods: { enabled: true }, services: { enabled: true } } },
      // Tenant pods run on the host in this namespace: vCluster's own isolation (security review H3).
      policies: {
        networkPolicy: { enabled: true },
        resourceQuota: { enabled: true },
        limitRange: { enabled: true },
      },
      // On in the chart: a tenant's control plane reports nothing to third parties.
      telemetry: { enabled: false },
    };
    this.config = vclusterConfig(this.values);
    const configYaml = stringify(this.config);
    const chart = this.config.controlPlane as Record<string, any>;

    const sa = new kplus.ServiceAccount(this, 'ServiceAccount', {
      metadata: { name: `vc-${r}`, namespace: ns },
      automountToken: true,
    });
    new kplus.ServiceAccount(this, 'WorkloadServiceAccount', { metadata: { name: `vc-workload-${r}`, namespace: ns } });
    // The syncer's rights in this namespace: the hosting install's ClusterRole (the chart's Role), bound here. A
    // RoleBinding to it needs only `bind` on that one role, so the materializer holds no `escalate` (review N3).
    const role = kplus.ClusterRole.fromClusterRoleName(this, 'Role', VCLUSTER_CLUSTER_ROLE);
    const binding = new kplus.RoleBinding(this, 'RoleBinding', { metadata: { name: `vc-${r}`, namespace: ns }, role });
    binding.addSubjects(sa);

    // The chart's values Secret: configuration only, no credentials (the syncer generates its own PKI at runtime).
    const config = new kplus.Secret(this, 'Config', {
      metadata: { name: `vc-config-${r}`, namespace: ns },
      stringData: { 'config.yaml': configYaml },
    });

    // What a Helm install gives the Services. Not cosmetic: at start-up vCluster writes its
    // `vcluster.loft.sh/service-cidr` annotation into Service `vcluster` without creating the annotation map, and
    // crash-loops ("assignment to entry in nil map") on a Service that has none; a Helm install always has Helm's.
    const helm = { 'meta.helm.sh/release-name': r, 'meta.helm.sh/release-namespace': ns };
    this.service = new kplus.Service(this, 'Service', {
      metadata: { name: r, namespace: ns, annotations: helm, labels: { 'vcluster.loft.sh/service': 'true' } },
      ports: [
        { name: 'https', port: 443, targetPort: 8443 },
        { name: 'kubelet', port: 10250, targetPort: 8443 },
      ],
    });
    const headless = new kplus.Service(this, 'HeadlessService', {
      metadata: { name: `${r}-headless`, namespace: ns, annotations: helm },
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      ports: [{ name: 'https', port: 443, targetPort: 8443 }],
    });
    for (const [k, v] of Object.entries(labels)) {
      this.service.selectLabel(k, v);
      headless.selectLabel(k, v);
    }

    const security: kplus.ContainerSecurityContextProps = {
      ensureNonRoot: false,
      user: 0,
      group: 0,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: [kplus.Capability.ALL] },
      seccompProfile: { type: kplus.SeccompProfileType.RUNTIME_DEFAULT },
    };
    const empty = (cid: string, name: string) => kplus.Volume.fromEmptyDir(this, cid, name);
    const binaries = empty('Binaries', 'binaries');
    const probe = (path: string, opts: kplus.ProbeOptions) =>
      kplus.Probe.fromHttpGet(path, { port: 8443, scheme: kplus.ConnectionScheme.HTTPS, ...opts });
    this.statefulSet = new kplus.StatefulSet(this, 'StatefulSet', {
      metadata: {
        name: r,
        namespace: ns,
        labels: { app: 'vcluster', release: r, chart: `vcluster-${VCLUSTER_VERSION}` },
      },
      service: headless,
      replicas: this.replicas,
      select: false,
      podManagementPolicy: kplus.PodManagementPolicy.PARALLEL,
      // The chart's annotation: a configuration change rolls the pod.
      podMetadata: {
        labels,
        annotations: { vClusterConfigHash: createHash('sha256').update(configYaml).digest('hex') },
      },
      terminationGracePeriod: Duration.seconds(10),
      serviceAccount: sa,
      automountServiceAccountToken: true,
      securityContext: { ensureNonRoot: false },
      initContainers: [
        {
          name: 'kubernetes',
          image: props.kubernetesImage ?? k8sImage(chart.distro.k8s.image),
          imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
          command: ['cp'],
          args: ['-r', '/kubernetes/.', '/binaries/'],
          volumeMounts: [{ path: '/binaries', volume: binaries }],
          securityContext: security,
        },
      ],
      containers: [
        {
          name: 'syncer',
          image: props.image ?? IMAGES.vclusterSyncer,
          imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
          ports: [{ number: 8443, name: 'https' }],
          envVariables: {
            POD_IP: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_IP),
            POD_NAME: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_NAME),
            NODE_NAME: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.NODE_NAME),
            NODE_IP: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.NODE_IP),
            VCLUSTER_NAME: kplus.EnvValue.fromValue(r),
          },
          volumeMounts: [
            { path: '/binaries', volume: binaries },
            {
              path: '/var/lib/vcluster',
              volume: kplus.Volume.fromSecret(this, 'ConfigVolume', config, { name: 'vcluster-config' }),
            },
            { path: '/pki', volume: empty('Certs', 'certs') },
            { path: '/.cache/helm', volume: empty('HelmCache', 'helm-cache') },
            { path: '/tmp', volume: empty('Tmp', 'tmp') },
            { path: '/var/log', volume: empty('Logs', 'logs') },
          ],
          securityContext: security,
          // The probes the configuration names, as the chart renders them (3 s timeouts: 1 s flaps under load).
          liveness: probe('/healthz', probeOptions(chart.statefulSet.probes.livenessProbe)),
          readiness: probe('/readyz', probeOptions(chart.statefulSet.probes.readinessProbe)),
          startup: probe('/readyz', probeOptions(chart.statefulSet.probes.startupProbe)),
        },
      ],
    });
    this.statefulSet.select(kplus.LabelSelector.of({ labels }));
    // cdk8s-plus has no volumeClaimTemplates or retention policy.
    const claim: Record<string, unknown> = {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: kplus.k8s.Quantity.fromString(storageSize) } },
    };
    if (props.storageClassName) claim.storageClassName = props.storageClassName;
    const api = ApiObject.of(this.statefulSet);
    api.addJsonPatch(JsonPatch.add('/spec/volumeClaimTemplates', [{ metadata: { name: 'data' }, spec: claim }]));
    // Resources as the chart renders them from the configuration: the syncer's (no CPU limit: API server, KCM and
    // syncer share the container; an ephemeral-storage guard cdk8s-plus cannot express) and the init container's.
    api.addJsonPatch(
      JsonPatch.add('/spec/template/spec/containers/0/resources', quantities(chart.statefulSet.resources)),
      JsonPatch.add('/spec/template/spec/initContainers/0/resources', quantities(chart.distro.k8s.resources)),
    );
    api.addJsonPatch(
      JsonPatch.add('/spec/persistentVolumeClaimRetentionPolicy', { whenDeleted: 'Retain', whenScaled: 'Retain' }),
    );
    api.addJsonPatch(
      JsonPatch.add('/spec/template/spec/containers/0/volumeMounts/-', { name: 'data', mountPath: '/data' }),
    );
    this.expose(this.service, 443, 'https');
    this.addChartPolicies(this.config.policies as Record<string, any>);
  }

  /**
   * What the chart renders from `policies` (templates networkpolicy.yaml, resourcequota.yaml, limitrange.yaml at
   * VCLUSTER_VERSION): tenant pods run on the host in this namespace, so their egress, count and size are bounded
   * here. The values are the configuration's, so what vCluster reads and what is enforced cannot differ.
   */
  private addChartPolicies(policies: Record<string, any>): void {
    const r = VCLUSTER_RELEASE;
    const metadata = (name: string) => ({
      name,
      namespace: this.names.namespace,
      labels: { app: 'vcluster', chart: `vcluster-${VCLUSTER_VERSION}`, release: r, heritage: 'Helm' },
    });
    const port = (p: number, protocol?: string) => ({
      port: kplus.k8s.IntOrString.fromNumber(p),
      ...(protocol ? { protocol } : {}),
    });
    const net = policies.networkPolicy;
    if (net.enabled === true) {
      const out = net.outgoingConnections;
      new kplus.k8s.KubeNetworkPolicy(this, 'WorkloadNetworkPolicy', {
        metadata: metadata(`vc-work-${r}`),
        spec: {
          podSelector: { matchLabels: { 'vcluster.loft.sh/managed-by': r } },
          egress: [
            // Synced tenant pods reach their own control plane, DNS, each other and public addresses only.
            { ports: [port(443), port(8443)], to: [{ podSelector: { matchLabels: { release: r } } }] },
            { ports: [port(53, 'UDP'), port(53, 'TCP')] },
            {
              to: [
                { podSelector: { matchLabels: { 'vcluster.loft.sh/managed-by': r } } },
                { ipBlock: { cidr: out.ipBlock.cidr, except: [...out.ipBlock.except] } },
              ],
            },
            ...net.extraWorkloadRules,
          ],
          policyTypes: ['Egress'],
        },
      });
      new kplus.k8s.KubeNetworkPolicy(this, 'ControlPlaneNetworkPolicy', {
        metadata: metadata(`vc-cp-${r}`),
        spec: {
          podSelector: { matchLabels: { release: r } },
          egress: [
            // The hosting API server (the syncer's own cluster), on the ports API servers listen on.
            { ports: [port(443), port(8443), port(6443)] },
            {
              to: [
                { podSelector: {} },
                {
                  namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
                  podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
                },
                ...(out.platform ? [{ podSelector: { matchLabels: { app: 'loft' } }, namespaceSelector: {} }] : []),
              ],
            },
            ...net.extraControlPlaneRules,
          ],
          policyTypes: ['Egress'],
        },
      });
    }
    // The chart's rule: each is on when set to true, or when the other is true and this one is not false.
    const on = (v: unknown, other: unknown) =>
      String(v) === 'true' || (String(other) === 'true' && String(v) !== 'false');
    const quota = policies.resourceQuota;
    const limits = policies.limitRange;
    const strings = (m: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(m).map(([k, v]) => [k, kplus.k8s.Quantity.fromString(String(v))]));
    if (on(quota.enabled, limits.enabled)) {
      new kplus.k8s.KubeResourceQuota(this, 'ResourceQuota', {
        metadata: metadata(`vc-${r}`),
        spec: {
          ...(Object.keys(quota.quota).length ? { hard: strings(quota.quota) } : {}),
          ...(quota.scopeSelector.matchExpressions.length ? { scopeSelector: quota.scopeSelector } : {}),
          ...(quota.scopes.length ? { scopes: quota.scopes } : {}),
        },
      });
    }
    if (on(limits.enabled, quota.enabled)) {
      const has = (m: Record<string, unknown>) => Object.keys(m).length > 0;
      new kplus.k8s.KubeLimitRange(this, 'LimitRange', {
        metadata: metadata(`vc-${r}`),
        spec: {
          limits: [
            {
              default: strings(limits.default),
              defaultRequest: strings(limits.defaultRequest),
              ...(has(limits.min) ? { min: strings(limits.min) } : {}),
              ...(has(limits.max) ? { max: strings(limits.max) } : {}),
              type: 'Container',
            },
          ],
        },
      });
    }
  }
}

/** `registry/repository:tag` as the chart's image fields. */
function imageRef(image: string): { registry: string; repository: string; tag: string } {
  const at = image.lastIndexOf(':');
  const [name, tag] = at > image.lastIndexOf('/') ? [image.slice(0, at), image.slice(at + 1)] : [image, ''];
  const slash = name.indexOf('/');
  const first = name.slice(0, slash);
  return slash > 0 && /[.:]/.test(first)
    ? { registry: first, repository: name.slice(slash + 1), tag }
    : { registry: '', repository: name, tag };
}

/** The init container's image as the chart derives it from `controlPlane.distro.k8s.image`. */
function k8sImage(i: { registry: string; repository: string; tag: string }): string {
  return `${i.registry ? `${i.registry}/` : ''}${i.repository}:${i.tag}`;
}

/** A probe of the configuration (`controlPlane.statefulSet.probes.*`) as cdk8s-plus options. */
function probeOptions(p: {
  periodSeconds: number;
  failureThreshold: number;
  timeoutSeconds: number;
  initialDelaySeconds?: number;
}): kplus.ProbeOptions {
  return {
    periodSeconds: Duration.seconds(p.periodSeconds),
    failureThreshold: p.failureThreshold,
    timeoutSeconds: Duration.seconds(p.timeoutSeconds),
    ...(p.initialDelaySeconds ? { initialDelaySeconds: Duration.seconds(p.initialDelaySeconds) } : {}),
  };
}

/** Order of resource names in the output (stable YAML whatever the configuration's key order). */
const RESOURCE_ORDER = ['cpu', 'memory', 'ephemeral-storage'];

/** Resources of the configuration as Quantities (JSON patches apply before the generated classes convert). */
function quantities(r: Record<string, Record<string, string | number>>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(r).map(([k, v]) => [
      k,
      Object.fromEntries(
        Object.entries(v)
          .sort(([a], [b]) => RESOURCE_ORDER.indexOf(a) - RESOURCE_ORDER.indexOf(b))
          .map(([n, q]) => [n, kplus.k8s.Quantity.fromString(String(q))]),
      ),
    ]),
  );
}
