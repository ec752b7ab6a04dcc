import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ControlPlaneSpecType } from '../imports/tenancy.kflex.kubestellar.org';
import { ControlPlaneBase, ControlPlaneProps } from './control-plane';
import { checkDnsSubdomain, checkStorageSize } from './errors';
import { tenantAuditPolicy } from './k8s-control-plane';
import { resources } from './security';
import { IMAGES } from './versions';
import { K3S_CA_SECRET, K3S_KUBECONFIG_SECRET, K3S_STATEFULSET, TYPE_CONTRACTS } from './wire';

/** Where the k3s server reads its audit policy. */
const K3S_AUDIT_DIR = '/etc/kflex-audit';
/**
 * k3s's own clients of its API server (k3s's certificate identities): the supervisor and its controllers
 * (`system:k3s-supervisor`, `system:k3s-controller`, `system:k3s`, and `system:admin` of its admin kubeconfig in older
 * releases); the scheduler, cloud controller and agent are disabled here.
 */
const K3S_SYSTEM_USERS = ['system:k3s-supervisor', 'system:k3s-controller', 'system:k3s', 'system:admin'];

/** Props of K3sControlPlane. */
export interface K3sControlPlaneProps extends ControlPlaneProps {
  /** k3s image. @default IMAGES.k3s */
  readonly image?: string;
  /** Storage class of the PVCs. @default - the cluster's default storage class */
  readonly storageClassName?: string;
  /** Size of PVC `k3s-data` (k3s data dir with its SQLite store). @default "1Gi" */
  readonly dataStorageSize?: string;
  /** Size of PVC `k3s-config` (/etc/rancher/k3s). @default "1Gi" */
  readonly configStorageSize?: string;
}

export { K3S_CA_SECRET, K3S_KUBECONFIG_SECRET };
const DATA_DIR = '/var/lib/rancher/k3s';
const CA_FILES = [
  'server-ca.crt',
  'server-ca.key',
  'client-ca.crt',
  'client-ca.key',
  'request-header-ca.crt',
  'request-header-ca.key',
];

/**
 * A tenant running a k3s server (no agent, packaged add-ons disabled) as StatefulSet `k3s-server`. k3s is seeded
 * with CAs the runtime controller mints, so kubeconfigs come from the controller instead of a privileged helper Job.
 */
export class K3sControlPlane extends ControlPlaneBase {
  /** The k3s server StatefulSet. */
  public readonly server: kplus.StatefulSet;
  /** Service `k3s` (443 -> 6443). */
  public readonly service: kplus.Service;

  public constructor(scope: Construct, id: string, props: K3sControlPlaneProps) {
    super(scope, id, props, {
      type: ControlPlaneSpecType.K3S,
      // k3s runs as root inside its container (unprivileged, no capabilities): baseline, not restricted.
      podSecurity: 'baseline',
      kubeconfigSecret: TYPE_CONTRACTS.k3s.kubeconfig,
    });
    const dataSize = props.dataStorageSize ?? '1Gi';
    const configSize = props.configStorageSize ?? '1Gi';
    checkStorageSize(this.constructName, 'dataStorageSize', dataSize);
    checkStorageSize(this.constructName, 'configStorageSize', configSize);
    if (props.storageClassName !== undefined)
      checkDnsSubdomain(this.constructName, 'storageClassName', props.storageClassName);
    const ns = this.names.namespace;
    const labels = {
      'controller.kubeflex.dev/type': 'k3s',
      'controller.kubeflex.dev/service-name': 'k3s',
      'controller.kubeflex.dev/pvc-name': 'k3s-data',
    };

    const pvc = (cid: string, name: string, text: string) => {
      // The generated class keeps the validated quantity as written: cdk8s-plus's claim renders whole Gi only
      // ("500Mi" would throw at synth).
      new kplus.k8s.KubePersistentVolumeClaim(this, cid, {
        metadata: { name, namespace: ns },
        spec: {
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: kplus.k8s.Quantity.fromString(text) } },
          storageClassName: props.storageClassName,
          volumeMode: 'Filesystem',
        },
      });
      return kplus.PersistentVolumeClaim.fromClaimName(this, `${cid}Ref`, name);
    };
    const data = kplus.Volume.fromPersistentVolumeClaim(this, 'DataVolume', pvc('DataClaim', 'k3s-data', dataSize), {
      name: 'k3s-data',
    });
    const config = kplus.Volume.fromPersistentVolumeClaim(
      this,
      'ConfigVolume',
      pvc('ConfigClaim', 'k3s-config', configSize),
      {
        name: 'k3s-config',
      },
    );
    // Clients' requests audited, k3s's own controllers (system:admin, system:k3s-controller) left out: the counter
    // sleep on idle reads, as for k8s planes (lib/k8s-control-plane.ts tenantAuditPolicy).
    const auditPolicy = new kplus.ConfigMap(this, 'AuditPolicy', {
      metadata: { name: 'audit-policy', namespace: ns },
      data: { 'audit-policy.yaml': tenantAuditPolicy(K3S_SYSTEM_USERS) },
    });
    const audit = kplus.Volume.fromConfigMap(this, 'AuditVolume', auditPolicy, { name: 'audit-policy' });
    const ca = kplus.Volume.fromSecret(this, 'CaVolume', kplus.Secret.fromSecretName(this, 'Ca', K3S_CA_SECRET), {
      name: 'ca',
      defaultMode: 0o400,
    });

    this.service = new kplus.Service(this, 'Service', {
      metadata: { name: 'k3s', namespace: ns },
      ports: [{ name: 'https', port: 443, targetPort: 6443 }],
    });
    for (const [k, v] of Object.entries(labels)) this.service.selectLabel(k, v);

    const security: kplus.ContainerSecurityContextProps = {
      ensureNonRoot: false,
      user: 0,
      group: 0,
      privileged: false,
      allowPrivilegeEscalation: false,
      // k3s unpacks its bundled binaries at start; the data dir is on the PVC but /run and /tmp must be writable.
      readOnlyRootFilesystem: false,
      capabilities: { drop: [kplus.Capability.ALL] },
      seccompProfile: { type: kplus.SeccompProfileType.RUNTIME_DEFAULT },
    };
    const image = props.image ?? IMAGES.k3s;
    this.server = new kplus.StatefulSet(this, 'Server', {
      metadata: { name: K3S_STATEFULSET, namespace: ns },
      service: this.service,
      replicas: this.replicas,
      select: false,
      podMetadata: { labels },
      securityContext: { ensureNonRoot: false, fsGroup: 0 },
      initContainers: [
        {
          name: 'seed-ca',
          image,
          imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
          command: ['sh', '-c'],
          // Copy once: k3s keeps its CAs in the data dir, and replacing them later would invalidate every client.
          args: [
            `mkdir -p ${DATA_DIR}/server/tls && for f in ${CA_FILES.join(' ')}; do ` +
              `[ -f ${DATA_DIR}/server/tls/$f ] || cp /ca/$f ${DATA_DIR}/server/tls/$f; done`,
          ],
          volumeMounts: [
            { path: DATA_DIR, volume: data },
            { path: '/ca', volume: ca, readOnly: true },
          ],
          securityContext: security,
          resources: resources(10, 16, 100, 32),
        },
      ],
      containers: [
        {
          name: 'k3s-server',
          image,
          imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
          args: [
            'server',
            `--data-dir=${DATA_DIR}`,
            '--https-listen-port=6443',
            `--tls-san=${this.names.host(props.hosting.domain)}`,
            `--tls-san=${this.names.serviceHost('k3s')}`,
            `--tls-san=k3s.${ns}`,
            `--tls-san=${props.hosting.hostContainer}`,
            '--write-kubeconfig=/etc/rancher/k3s/k3s.yaml',
            '--write-kubeconfig-mode=0600',
            '--disable-agent',
            '--disable=traefik,servicelb,metrics-server,local-storage,coredns',
            '--disable-helm-controller',
            '--disable-network-policy',
            '--disable-cloud-controller',
            '--disable-kube-proxy',
            '--disable-scheduler',
            '--egress-selector-mode=disabled',
            '--flannel-backend=none',
            '--kube-controller-manager-arg=leader-elect=false',
            // Secrets encrypted at rest (review M1); k3s keeps the key in its data directory on the volume.
            '--secrets-encryption',
            `--kube-apiserver-arg=audit-policy-file=${K3S_AUDIT_DIR}/audit-policy.yaml`,
            '--kube-apiserver-arg=audit-log-path=-',
            '--kube-apiserver-arg=audit-log-format=json',
          ],
          envVariables: {
            K3S_CONTROLPLANE_SECRET_NAME: kplus.EnvValue.fromValue(K3S_KUBECONFIG_SECRET),
            K3S_DATA_DIR: kplus.EnvValue.fromValue(DATA_DIR),
          },
          ports: [{ number: 6443, name: 'https' }],
          volumeMounts: [
            { path: DATA_DIR, volume: data },
            { path: '/etc/rancher/k3s', volume: config },
            { path: K3S_AUDIT_DIR, volume: audit, readOnly: true },
          ],
          securityContext: security,
          resources: resources(250, 256, 2000, 1024),
          // k3s refuses anonymous HTTP probes, so probe the socket.
          startup: kplus.Probe.fromTcpSocket({ port: 6443, periodSeconds: Duration.seconds(5), failureThreshold: 60 }),
          liveness: kplus.Probe.fromTcpSocket({ port: 6443, periodSeconds: Duration.seconds(10), failureThreshold: 6 }),
          readiness: kplus.Probe.fromTcpSocket({ port: 6443, periodSeconds: Duration.seconds(5) }),
        },
      ],
    });
    this.server.select(kplus.LabelSelector.of({ labels }));
    this.expose(this.service, 443, 'https');
    this.isolateNetwork({ apiPort: 6443, apiPodLabels: labels });
  }
}
