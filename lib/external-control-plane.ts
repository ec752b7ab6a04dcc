import { Construct } from 'constructs';
import { ControlPlaneSpecType } from '../imports/tenancy.kflex.kubestellar.org';
import { ControlPlaneBase, ControlPlaneProps } from './control-plane';
import { checkDnsLabel, checkDnsSubdomain, checkInteger, KubeflexConfigError } from './errors';
import { HOSTING_NAMESPACE } from './names';

/** The Secret holding a kubeconfig of the cluster to adopt (written by `kflex adopt` or by hand, never by synth). */
export interface BootstrapSecretRef {
  /** Secret name (kflex adopt uses `<name>-bootstrap`). */
  readonly name: string;
  /** Namespace of the Secret. @default "kubeflex-system" */
  readonly namespace?: string;
  /** Key holding the kubeconfig. @default "kubeconfig-incluster" */
  readonly inClusterKey?: string;
}

/** Props of ExternalControlPlane. */
export interface ExternalControlPlaneProps extends ControlPlaneProps {
  /** The bootstrap kubeconfig Secret; the controller deletes it once it has minted its own token. */
  readonly bootstrapSecret: BootstrapSecretRef;
  /** Lifetime of the ServiceAccount token minted on the adopted cluster, in seconds. @default 31536000 */
  readonly tokenExpirationSeconds?: number;
}

/**
 * An existing cluster adopted as a control plane. The runtime controller reads the bootstrap kubeconfig, creates
 * ServiceAccount `kube-system/kubeflex` there, requests a token and writes `admin-kubeconfig`.
 */
export class ExternalControlPlane extends ControlPlaneBase {
  public constructor(scope: Construct, id: string, props: ExternalControlPlaneProps) {
    const where = `ExternalControlPlane "${scope.node.path ? `${scope.node.path}/` : ''}${id}"`;
    const ref = props?.bootstrapSecret;
    if (!ref?.name) {
      throw new KubeflexConfigError(
        where,
        'bootstrapSecret',
        ref,
        'an external control plane needs the Secret with the kubeconfig of the cluster to adopt',
      );
    }
    checkDnsSubdomain(where, 'bootstrapSecret.name', ref.name);
    const namespace = ref.namespace ?? HOSTING_NAMESPACE;
    checkDnsLabel(where, 'bootstrapSecret.namespace', namespace);
    const expiration = props.tokenExpirationSeconds ?? 31536000;
    // The TokenRequest API refuses lifetimes under 10 minutes.
    checkInteger(where, 'tokenExpirationSeconds', expiration, 600, 2 ** 31 - 1);
    super(scope, id, props, {
      type: ControlPlaneSpecType.EXTERNAL,
      podSecurity: 'restricted',
      kubeconfigSecret: { name: 'admin-kubeconfig', inClusterKey: 'kubeconfig-incluster' },
      spec: {
        bootstrapSecretRef: { name: ref.name, namespace, inClusterKey: ref.inClusterKey ?? 'kubeconfig-incluster' },
        tokenExpirationSeconds: expiration,
      },
    });
    if (namespace !== HOSTING_NAMESPACE) {
      // The controller reads and then deletes the bootstrap Secret, so it needs access where that Secret lives.
      props.hosting.bindControllerInNamespace(this, 'BootstrapAccess', namespace);
    }
  }
}
