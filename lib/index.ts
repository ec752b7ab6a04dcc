// The public API of cdk8s-kubeflex: the constructs with their props, the error type, the synth helpers, the pinned
// versions and KubeFlex's names. Helpers that the controller, the materializer and kflex share are internal: inside
// this repository they are imported from their files.
export { KubeflexConfigError } from './errors';
export {
  API_GROUP,
  API_VERSION,
  CONTROL_PLANE_LABEL,
  HOSTING_NAMESPACE,
  MAX_TENANT_NAME_LENGTH,
  RESERVED_TENANT_NAMES,
  tenantNames,
  TenantNames,
} from './names';
export {
  DEFAULT_KUBERNETES_MINOR,
  IMAGES,
  K3S_VERSION,
  KINE_VERSION,
  KUBEFLEX_COMPATIBLE_VERSION,
  KUBERNETES_RELEASES,
  KUBERNETES_VERSION,
  KubernetesRelease,
  POSTGRES_VERSION,
  VCLUSTER_VERSION,
} from './versions';
export {
  ExternalPostgresOptions,
  GatewayParent,
  IKubeflexHosting,
  hostingAttributesFromConfig,
  KubeflexHosting,
  KubeflexHostingAttributes,
  KubeflexHostingFromConfigProps,
  KubeflexHostingProps,
  PostgresEndpoint,
  PostgresOptions,
  PostgresSslMode,
} from './hosting';
export { PostCreateHook, PostCreateHookProps } from './post-create-hook';
export {
  ControlPlaneBase,
  ControlPlaneProps,
  ControlPlaneTypeInfo,
  KubeconfigSecretRef,
  PostCreateHookUse,
} from './control-plane';
export { PodSecurityLevel } from './api-validation';
export { K8S_APISERVER_PORT, K8S_CONTROLLERS, K8sControlPlane, K8sControlPlaneProps } from './k8s-control-plane';
export { K8sExtraArgs, OidcAuthentication } from './k8s-flags';
export { ComponentResources, K8S_SIZES, K8sComponentResources, K8sControlPlaneSize } from './sizing';
export { K3sControlPlane, K3sControlPlaneProps } from './k3s-control-plane';
export { VClusterControlPlane, VClusterControlPlaneProps } from './vcluster-control-plane';
export { HostControlPlane, HostControlPlaneProps } from './host-control-plane';
export { BootstrapSecretRef, ExternalControlPlane, ExternalControlPlaneProps } from './external-control-plane';
export { materialize } from './materialize';
export { KubeflexApp, runSynth, synthesizeAtomically } from './synth';
/** The generated bindings (imports/): KubeFlex's CRDs and the Gateway API TLSRoute. */
// The construct table; a new type's construct is exported from there (one line beside its table entry).
export * from './control-plane-types';
export * as tenancy from '../imports/tenancy.kflex.kubestellar.org';
export * as gatewayApi from '../imports/gateway.networking.k8s.io';
