/**
 * Every image and version the library emits, pinned in one place. Bumping a version is a one-line change here,
 * and the snapshot tests show its effect.
 */
/** A Kubernetes minor that k8s control planes can run. */
export interface KubernetesRelease {
  /** The patch release whose images we emit and whose binaries the test suite boots. */
  readonly version: string;
  /**
   * kube-apiserver feature gates set on a single-replica tenant. Only gates this minor's binary knows: an unknown gate
   * stops kube-apiserver at start (test/cluster/versions.test.ts checks each against the binary's own list).
   */
  readonly singleReplicaFeatureGates: Record<string, boolean>;
}

/**
 * The Kubernetes minors of K8sControlPlane's `kubernetesVersion`, each pinned to one tested patch release (built by
 * scripts/prepare-binaries.sh; a minor is listed only once its staging modules are all on the module proxy).
 */
export const KUBERNETES_RELEASES: Readonly<Record<string, KubernetesRelease>> = {
  // One replica: identity leases (a write every 10 s) serve only multi-replica storage-version bookkeeping.
  '1.32': { version: 'v1.32.2', singleReplicaFeatureGates: { APIServerIdentity: false } },
  '1.33': { version: 'v1.33.13', singleReplicaFeatureGates: { APIServerIdentity: false } },
};
/** The minor a k8s control plane runs when `kubernetesVersion` is not set. */
export const DEFAULT_KUBERNETES_MINOR = '1.32';
export const KUBERNETES_VERSION = KUBERNETES_RELEASES[DEFAULT_KUBERNETES_MINOR].version;
export const KINE_VERSION = 'v0.17.5';
export const K3S_VERSION = 'v1.32.2+k3s1';
/** vCluster release whose chart objects `VClusterControlPlane` synthesizes natively. */
export const VCLUSTER_VERSION = '0.26.1';
/**
 * The bundled PostgreSQL: the major version the test suite runs (Debian 12 ships 15; the real node runs this
 * version's server from Debian's packages under the image's name), so what we ship is what we test.
 */
export const POSTGRES_VERSION = '15.18';

/** kube-apiserver and kube-controller-manager images of one Kubernetes release. */
export function kubernetesImages(version: string): { kubeApiserver: string; kubeControllerManager: string } {
  return {
    kubeApiserver: `registry.k8s.io/kube-apiserver:${version}`,
    kubeControllerManager: `registry.k8s.io/kube-controller-manager:${version}`,
  };
}

export const IMAGES = {
  ...kubernetesImages(KUBERNETES_VERSION),
  kine: `docker.io/rancher/kine:${KINE_VERSION}`,
  k3s: `docker.io/rancher/k3s:${K3S_VERSION.replace('+', '-')}`,
  vclusterSyncer: `ghcr.io/loft-sh/vcluster-oss:${VCLUSTER_VERSION}`,
  /** The chart's default `controlPlane.distro.k8s.image` at VCLUSTER_VERSION (lib/vcluster-config.ts). */
  vclusterKubernetes: 'ghcr.io/loft-sh/kubernetes:v1.32.8',
  postgres: `docker.io/library/postgres:${POSTGRES_VERSION}`,
  kubectl: `registry.k8s.io/kubectl:${KUBERNETES_VERSION}`,
  controller: 'ghcr.io/cdk8s-kubeflex/controller:0.1.0',
} as const;

/** The KubeFlex release whose API, Secrets and CLI this project implements (reported by `kflex version`). */
export const KUBEFLEX_COMPATIBLE_VERSION = 'v0.9.3';
