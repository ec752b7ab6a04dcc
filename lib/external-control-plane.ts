import { Construct } from 'constructs';
import { ControlPlaneSpecType } from '../imports/tenancy.kflex.kubestellar.org';
import { isConfigKey } from './api-validation';
import { ControlPlaneBase, ControlPlaneProps } from './control-plane';
import { MAX_TOKEN_EXPIRATION_SECONDS } from './crds';
import { checkInteger, KubeflexConfigError } from './errors';
import { bootstrapSecretName, HOSTING_NAMESPACE } from './names';
import { TYPE_CONTRACTS, ADMIN_KUBECONFIG_KEYS } from './wire';

/**
 * The Secret holding a kubeconfig of the cluster to adopt (written by `kflex adopt` or by hand, never by synth).
 * It is always `<name>-bootstrap`, in `kubeflex-system` or a namespace the hosting install lists in
 * `bootstrapSecretNamespaces`: the controller reads it with its own identity, so a ControlPlane may never point it at
 * another Secret (the CRD enforces the same rule, and the admission policy admits it only from an author who may get
 * and delete that Secret).
 */
export interface BootstrapSecretRef {
  /** Secret name; must be `<name>-bootstrap`. @default "<name>-bootstrap" */
  readonly name?: string;
  /** Namespace of the Secret: `kubeflex-system` or one of the hosting install's `bootstrapSecretNamespaces`. @default "kubeflex-system" */
  readonly namespace?: string;
  /** Key holding the kubeconfig. @default "kubeconfig-incluster" */
  readonly inClusterKey?: string;
}

/** Props of ExternalControlPlane. */
export interface ExternalControlPlaneProps extends ControlPlaneProps {
  /** The bootstrap kubeconfig Secret; the controller deletes it once it has minted its own token. @default - `kubeflex-system/<name>-bootstrap`, key `kubeconfig-incluster` */
  readonly bootstrapSecret?: BootstrapSecretRef;
  /** Lifetime of the ServiceAccount token minted on the adopted cluster, in seconds (600 to one year). @default 31536000 */
  readonly tokenExpirationSeconds?: number;
}

/**
 * An existing cluster adopted as a control plane. The runtime controller reads the bootstrap kubeconfig, creates
 * ServiceAccount `kube-system/kubeflex` there, requests a token and writes `admin-kubeconfig`.
 */
export class ExternalControlPlane extends ControlPlaneBase {
  public constructor(scope: Construct, id: string, props: ExternalControlPlaneProps) {
    const where = `ExternalControlPlane "${scope.node.path ? `${scope.node.path}/` : ''}${id}"`;
    const cpName = props.name ?? id;
    const ref = props.bootstrapSecret ?? {};
    const name = ref.name ?? bootstrapSecretName(cpName);
    if (name !== bootstrapSecretName(cpName)) {
      throw new KubeflexConfigError(
        where,
        'bootstrapSecret.name',
        name,
        `must be "${cpName}-bootstrap": the controller reads only a control plane's own bootstrap Secret`,
      );
    }
    const namespace = ref.namespace ?? HOSTING_NAMESPACE;
    const allowed = props.hosting.bootstrapSecretNamespaces;
    if (!allowed.includes(namespace)) {
      throw new KubeflexConfigError(
        where,
        'bootstrapSecret.namespace',
        namespace,
        `must be ${allowed.map((n) => `"${n}"`).join(' or ')}: the controller reads bootstrap Secrets only where the hosting install lists (bootstrapSecretNamespaces)`,
      );
    }
    const inClusterKey = ref.inClusterKey ?? ADMIN_KUBECONFIG_KEYS.inClusterKey;
    if (!isConfigKey(inClusterKey))
      throw new KubeflexConfigError(where, 'bootstrapSecret.inClusterKey', inClusterKey, 'must be a valid Secret key');
    const expiration = props.tokenExpirationSeconds ?? MAX_TOKEN_EXPIRATION_SECONDS;
    // The TokenRequest API refuses lifetimes under 10 minutes; the CRD caps them at one year.
    checkInteger(where, 'tokenExpirationSeconds', expiration, 600, MAX_TOKEN_EXPIRATION_SECONDS);
    super(scope, id, props, {
      type: ControlPlaneSpecType.EXTERNAL,
      podSecurity: 'restricted',
      kubeconfigSecret: TYPE_CONTRACTS.external.kubeconfig,
      spec: {
        bootstrapSecretRef: { name, namespace, inClusterKey },
        tokenExpirationSeconds: expiration,
      },
    });
    // Nothing listens here; hook pods act on the adopted cluster, so only ingress is closed.
    this.isolateNetwork({ openEgress: true });
  }
}
