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
 * A "control plane" that is the hosting cluster itself: a ServiceAccount `<name>`, which the runtime controller binds
 * to cluster-admin (ClusterRoleBinding `kubeflex:host:<name>`) once the API server admitted the plane. The API server
 * admits a host plane only from a principal holding the verb `host` on `controlplanes`, and hooks on it only with the
 * verb `host-hooks` (KubeflexHosting `hostControlPlaneGroups`; cluster-admins hold both). The runtime controller
 * mints a short-lived TokenRequest token for it into `admin-kubeconfig` (key `kubeconfig-incluster`) and renews it;
 * no non-expiring token Secret exists.
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
    // What the host type means, the ServiceAccount bound to cluster-admin, is not in the synthesized output: the
    // controller makes that binding (kubeflex:host:<name>) for a ControlPlane the API server admitted as `host`, so
    // the same objects serve a synthesized and a bare plane and no applier needs the right to bind cluster-admin.
    if (!props.hosting.hostControlPlanes) {
      throw new KubeflexConfigError(
        this.constructName,
        'hosting',
        props.hosting.node.path,
        'does not allow host control planes (hostControlPlanes: false)',
      );
    }
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
