import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ControlPlaneSpecType } from '../imports/tenancy.kflex.kubestellar.org';
import { ControlPlaneBase, ControlPlaneProps, PostCreateHookUse } from './control-plane';
import { KubeflexConfigError } from './errors';
import { TYPE_CONTRACTS } from './wire';

/** Props of HostControlPlane. */
export interface HostControlPlaneProps extends ControlPlaneProps {
  /**
   * Allow PostCreateHooks. A host plane's kubeconfig is cluster-admin of the hosting cluster, and hook workloads can
   * mount it, so whoever writes those hooks becomes hosting cluster-admin: say so explicitly.
   * @default false
   */
  readonly allowPostCreateHooks?: boolean;
}

/**
 * A "control plane" that is the hosting cluster itself: a ServiceAccount `<name>` bound to cluster-admin. The
 * runtime controller mints a short-lived TokenRequest token for it into `admin-kubeconfig` (key
 * `kubeconfig-incluster`) and renews it; no non-expiring token Secret exists.
 */
export class HostControlPlane extends ControlPlaneBase {
  /** The ServiceAccount whose token the kubeconfig carries. */
  public readonly serviceAccount: kplus.ServiceAccount;

  private readonly allowHooks: boolean;

  public constructor(scope: Construct, id: string, props: HostControlPlaneProps) {
    super(
      scope,
      id,
      { ...props, postCreateHooks: undefined },
      {
        type: ControlPlaneSpecType.HOST,
        podSecurity: 'restricted',
        kubeconfigSecret: TYPE_CONTRACTS.host.kubeconfig,
      },
    );
    const ns = this.names.namespace;
    this.serviceAccount = new kplus.ServiceAccount(this, 'ServiceAccount', {
      metadata: { name: this.names.name, namespace: ns },
    });
    // This is what the host type means: the tenant is the hosting cluster, with its full rights.
    const binding = new kplus.ClusterRoleBinding(this, 'Binding', {
      metadata: { name: `${this.names.name}-binding` },
      role: kplus.ClusterRole.fromClusterRoleName(this, 'ClusterAdmin', 'cluster-admin'),
    });
    binding.addSubjects(this.serviceAccount);
    // Nothing listens here; hook pods may act on other clusters, so only ingress is closed.
    this.isolateNetwork({ openEgress: true });
    this.allowHooks = props.allowPostCreateHooks ?? false;
    for (const use of props.postCreateHooks ?? []) this.addPostCreateHook(use);
  }

  /** Uses a PostCreateHook; refused unless `allowPostCreateHooks` is set (its workloads can be hosting cluster-admin). */
  public override addPostCreateHook(use: PostCreateHookUse): void {
    if (!this.allowHooks) {
      throw new KubeflexConfigError(
        this.constructName,
        'postCreateHooks',
        typeof use.hook === 'string' ? use.hook : use.hook.hookName,
        "a host plane's kubeconfig is cluster-admin of the hosting cluster and hooks can mount it; set allowPostCreateHooks: true to accept that",
      );
    }
    super.addPostCreateHook(use);
  }
}
