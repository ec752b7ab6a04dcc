import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ControlPlaneSpecType } from '../imports/tenancy.kflex.kubestellar.org';
import { ControlPlaneBase, ControlPlaneProps } from './control-plane';

/** Props of HostControlPlane. */
export type HostControlPlaneProps = ControlPlaneProps;

/**
 * A "control plane" that is the hosting cluster itself: a ServiceAccount `<name>` bound to cluster-admin and its
 * token Secret, from which the runtime controller builds `admin-kubeconfig` (key `kubeconfig-incluster`).
 */
export class HostControlPlane extends ControlPlaneBase {
  /** The ServiceAccount whose token the kubeconfig carries. */
  public readonly serviceAccount: kplus.ServiceAccount;

  public constructor(scope: Construct, id: string, props: HostControlPlaneProps) {
    super(scope, id, props, {
      type: ControlPlaneSpecType.HOST,
      podSecurity: 'restricted',
      kubeconfigSecret: { name: 'admin-kubeconfig', inClusterKey: 'kubeconfig-incluster' },
    });
    const ns = this.names.namespace;
    this.serviceAccount = new kplus.ServiceAccount(this, 'ServiceAccount', {
      metadata: { name: this.names.name, namespace: ns },
    });
    new kplus.ServiceAccountTokenSecret(this, 'Token', {
      metadata: { name: this.names.name, namespace: ns },
      serviceAccount: this.serviceAccount,
    });
    // This is what the host type means: the tenant is the hosting cluster, with its full rights.
    const binding = new kplus.ClusterRoleBinding(this, 'Binding', {
      metadata: { name: `${this.names.name}-binding` },
      role: kplus.ClusterRole.fromClusterRoleName(this, 'ClusterAdmin', 'cluster-admin'),
    });
    binding.addSubjects(this.serviceAccount);
  }
}
