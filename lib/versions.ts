/**
 * Every image and version the library emits, pinned in one place. Bumping a version is a one-line change here,
 * and the snapshot tests show its effect.
 */
export const KUBERNETES_VERSION = 'v1.32.2';
export const KINE_VERSION = 'v0.16.4';
export const K3S_VERSION = 'v1.32.2+k3s1';
/** vCluster release whose chart objects `VClusterControlPlane` synthesizes natively. */
export const VCLUSTER_VERSION = '0.26.1';
/**
 * The bundled PostgreSQL: the major version the test suite runs (Debian 12 ships 15; the real node runs this
 * version's server from Debian's packages under the image's name), so what we ship is what we test.
 */
export const POSTGRES_VERSION = '15.18';

export const IMAGES = {
  kubeApiserver: `registry.k8s.io/kube-apiserver:${KUBERNETES_VERSION}`,
  kubeControllerManager: `registry.k8s.io/kube-controller-manager:${KUBERNETES_VERSION}`,
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
