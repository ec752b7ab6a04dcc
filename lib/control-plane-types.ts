// Every control-plane type as a construct, one line each: what the materializer builds for a bare ControlPlane and
// what `kflex create` builds. The Record is exhaustive over the wire contract's type names: a type added there
// without a construct here does not compile (the controller's twin is lib/controller/types/index.ts).
import { Construct } from 'constructs';
import { ControlPlaneBase, ControlPlaneProps } from './control-plane';
import { ExternalControlPlane } from './external-control-plane';
import { HostControlPlane } from './host-control-plane';
import { K3sControlPlane } from './k3s-control-plane';
import { K8sControlPlane, K8sControlPlaneProps } from './k8s-control-plane';
import { VClusterControlPlane } from './vcluster-control-plane';
import { ControlPlaneTypeName } from './wire';

/** What a construct of any type is built from: the common props and the type-specific parts of the wire object. */
export interface ControlPlaneBuild {
  readonly scope: Construct;
  readonly name: string;
  readonly common: ControlPlaneProps;
  /** Scaled to zero (the sleep annotation). */
  readonly sleeping?: boolean;
  /** A host plane may use its hooks (the API server admitted them from a holder of the verb `host-hooks`). */
  readonly allowHostHooks?: boolean;
  /** k8s only: version and replicas (kflex create flags). */
  readonly k8s?: Pick<K8sControlPlaneProps, 'kubernetesVersion' | 'replicas'>;
  /** external only: spec.bootstrapSecretRef and spec.tokenExpirationSeconds of the wire object. */
  readonly external?: {
    readonly bootstrapSecretRef?: { name?: string; namespace?: string; inClusterKey?: string };
    readonly tokenExpirationSeconds?: number;
  };
}

export const CONTROL_PLANE_CONSTRUCTS: Readonly<
  Record<ControlPlaneTypeName, (b: ControlPlaneBuild) => ControlPlaneBase>
> = {
  k8s: (b) => new K8sControlPlane(b.scope, b.name, { ...b.common, sleeping: b.sleeping, ...b.k8s }),
  k3s: (b) => new K3sControlPlane(b.scope, b.name, { ...b.common, sleeping: b.sleeping }),
  vcluster: (b) => new VClusterControlPlane(b.scope, b.name, { ...b.common, sleeping: b.sleeping }),
  host: (b) => new HostControlPlane(b.scope, b.name, { ...b.common, allowPostCreateHooks: b.allowHostHooks }),
  external: (b) =>
    new ExternalControlPlane(b.scope, b.name, {
      ...b.common,
      bootstrapSecret: b.external?.bootstrapSecretRef
        ? {
            name: b.external.bootstrapSecretRef.name,
            namespace: b.external.bootstrapSecretRef.namespace,
            inClusterKey: b.external.bootstrapSecretRef.inClusterKey,
          }
        : undefined,
      tokenExpirationSeconds: b.external?.tokenExpirationSeconds,
    }),
};

/** The construct builder of `type`, or undefined for a type we do not implement (input from clients is any string). */
export function constructFor(type: string): ((b: ControlPlaneBuild) => ControlPlaneBase) | undefined {
  return Object.prototype.hasOwnProperty.call(CONTROL_PLANE_CONSTRUCTS, type)
    ? CONTROL_PLANE_CONSTRUCTS[type as ControlPlaneTypeName]
    : undefined;
}
