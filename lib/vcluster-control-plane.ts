import { ApiObject, Duration, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { VCLUSTER_KUBECONFIG_SECRET, VCLUSTER_RELEASE } from './wire';
import { stringify } from 'yaml';
import { ControlPlaneSpecType } from '../imports/tenancy.kflex.kubestellar.org';
import { ControlPlaneBase, ControlPlaneProps } from './control-plane';
import { checkDnsSubdomain, parseStorageSize } from './errors';
import { resources } from './security';
import { IMAGES, KUBERNETES_VERSION, VCLUSTER_VERSION } from './versions';

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
  /** The values the chart would be rendered with (also stored in Secret `vc-config-vcluster`). */
  public readonly values: Record<string, unknown>;

  public constructor(scope: Construct, id: string, props: VClusterControlPlaneProps) {
    super(scope, id, props, {
      type: ControlPlaneSpecType.VCLUSTER,
      // The syncer runs as root (the chart's default), without privileges or capabilities: baseline.
      podSecurity: 'baseline',
      kubeconfigSecret: { name: VCLUSTER_KUBECONFIG_SECRET, key: 'config', inClusterKey: 'config-incluster' },
    });
    const storageSize = props.storageSize ?? '5Gi';
    parseStorageSize(this.constructName, 'storageSize', storageSize);
    if (props.storageClassName !== undefined)
      checkDnsSubdomain(this.constructName, 'storageClassName', props.storageClassName);
    const ns = this.names.namespace;
    const r = VCLUSTER_RELEASE;
    const host = this.names.host(props.hosting.domain);
    const labels = { app: 'vcluster', release: r };

    this.values = {
      controlPlane: {
        distro: { k8s: { enabled: true, version: KUBERNETES_VERSION } },
        backingStore: { database: { embedded: { enabled: true } } },
        proxy: { extraSANs: [host, `${r}.${ns}`, this.names.serviceHost(r), props.hosting.hostContainer] },
        statefulSet: {
          persistence: { volumeClaim: { size: storageSize, storageClass: props.storageClassName ?? '' } },
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
    };

    const sa = new kplus.ServiceAccount(this, 'ServiceAccount', {
      metadata: { name: `vc-${r}`, namespace: ns },
      automountToken: true,
    });
    new kplus.ServiceAccount(this, 'WorkloadServiceAccount', { metadata: { name: `vc-workload-${r}`, namespace: ns } });
    const role = new kplus.Role(this, 'Role', { metadata: { name: `vc-${r}`, namespace: ns } });
    const core = (t: string) => kplus.ApiResource.custom({ apiGroup: '', resourceType: t });
    const apps = (t: string) => kplus.ApiResource.custom({ apiGroup: 'apps', resourceType: t });
    role.allow(
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
    role.allow(['patch', 'update'], core('pods/status'), core('pods/ephemeralcontainers'));
    role.allow(
      ['get', 'list', 'watch', 'patch', 'update'],
      apps('statefulsets'),
      apps('replicasets'),
      apps('deployments'),
    );
    role.allow(['get', 'list', 'watch'], core('endpoints'), core('pods/log'));
    role.allow(['create', 'get', 'list', 'watch'], core('events'));
    role.allow(
      ['create', 'delete', 'patch', 'update', 'get', 'list', 'watch'],
      kplus.ApiResource.custom({ apiGroup: 'discovery.k8s.io', resourceType: 'endpointslices' }),
    );
    const binding = new kplus.RoleBinding(this, 'RoleBinding', { metadata: { name: `vc-${r}`, namespace: ns }, role });
    binding.addSubjects(sa);

    // The chart's values Secret: configuration only, no credentials (the syncer generates its own PKI at runtime).
    const config = new kplus.Secret(this, 'Config', {
      metadata: { name: `vc-config-${r}`, namespace: ns },
      stringData: { 'config.yaml': stringify(this.values) },
    });

    this.service = new kplus.Service(this, 'Service', {
      metadata: { name: r, namespace: ns },
      ports: [
        { name: 'https', port: 443, targetPort: 8443 },
        { name: 'kubelet', port: 10250, targetPort: 8443 },
      ],
    });
    const headless = new kplus.Service(this, 'HeadlessService', {
      metadata: { name: `${r}-headless`, namespace: ns },
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
      podMetadata: { labels },
      serviceAccount: sa,
      automountServiceAccountToken: true,
      securityContext: { ensureNonRoot: false },
      initContainers: [
        {
          name: 'kubernetes',
          image: props.kubernetesImage ?? IMAGES.vclusterKubernetes,
          imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
          command: ['cp'],
          args: ['-r', '/kubernetes/.', '/binaries/'],
          volumeMounts: [{ path: '/binaries', volume: binaries }],
          securityContext: security,
          resources: resources(10, 16, 500, 128),
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
          resources: resources(200, 256, 2000, 2048),
          liveness: probe('/healthz', { periodSeconds: Duration.seconds(2), failureThreshold: 60 }),
          readiness: probe('/readyz', { periodSeconds: Duration.seconds(2), failureThreshold: 60 }),
          startup: probe('/readyz', { periodSeconds: Duration.seconds(6), failureThreshold: 300 }),
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
    api.addJsonPatch(
      JsonPatch.add('/spec/persistentVolumeClaimRetentionPolicy', { whenDeleted: 'Retain', whenScaled: 'Retain' }),
    );
    api.addJsonPatch(
      JsonPatch.add('/spec/template/spec/containers/0/volumeMounts/-', { name: 'data', mountPath: '/data' }),
    );
    this.expose(this.service, 443, 'https');
  }
}
