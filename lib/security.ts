import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';

/** Non-root user the restricted workloads run as (distroless "nonroot"). */
export const NONROOT_UID = 65532;

/** Container security context meeting the `restricted` Pod Security Standard. */
export function restrictedContainer(user = NONROOT_UID): kplus.ContainerSecurityContextProps {
  return {
    ensureNonRoot: true,
    user,
    group: user,
    privileged: false,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: [kplus.Capability.ALL] },
    seccompProfile: { type: kplus.SeccompProfileType.RUNTIME_DEFAULT },
  };
}

/** Pod security context matching restrictedContainer(); fsGroup makes mounted Secrets readable to that user only. */
export function restrictedPod(user = NONROOT_UID): kplus.PodSecurityContextProps {
  return {
    ensureNonRoot: true,
    user,
    group: user,
    fsGroup: user,
    fsGroupChangePolicy: kplus.FsGroupChangePolicy.ON_ROOT_MISMATCH,
  };
}

/** Namespace labels enforcing a Pod Security Standard level. */
export function podSecurityLabels(level: 'restricted' | 'baseline' | 'privileged'): Record<string, string> {
  return {
    'pod-security.kubernetes.io/enforce': level,
    'pod-security.kubernetes.io/warn': level,
  };
}

/** Explicit resources: cdk8s-plus defaults (1 CPU, 2 GiB limit) are far too large for a tenant control plane. */
export function resources(
  cpuRequest: number,
  memRequestMi: number,
  cpuLimit: number,
  memLimitMi: number,
): kplus.ContainerResources {
  return {
    cpu: { request: kplus.Cpu.millis(cpuRequest), limit: kplus.Cpu.millis(cpuLimit) },
    memory: { request: Size.mebibytes(memRequestMi), limit: Size.mebibytes(memLimitMi) },
  };
}

/** restrictedContainer() as a raw Kubernetes securityContext, for objects built without cdk8s-plus (hook templates). */
export function restrictedContainerJson(user = NONROOT_UID): Record<string, unknown> {
  return {
    runAsNonRoot: true,
    runAsUser: user,
    runAsGroup: user,
    privileged: false,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}
