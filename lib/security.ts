import { Duration, Size } from 'cdk8s';
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

/**
 * Probes of the hosting install's daemons (controller, materializer, activator). A node saturated by tenant starts
 * answers an HTTP probe late: with Kubernetes' 1 s timeout all three were restarted four times during a storm of 50
 * tenants on the 2-core test node, and each restart re-listed everything and paused boot admission. So 5 s to answer,
 * and a minute without an answer before a restart.
 */
export function daemonProbes(
  port: number,
  readinessPeriodS: number,
): Pick<kplus.ContainerProps, 'liveness' | 'readiness'> {
  return {
    liveness: kplus.Probe.fromHttpGet('/healthz', {
      port,
      periodSeconds: Duration.seconds(10),
      timeoutSeconds: Duration.seconds(5),
      failureThreshold: 6,
    }),
    readiness: kplus.Probe.fromHttpGet('/readyz', {
      port,
      periodSeconds: Duration.seconds(readinessPeriodS),
      timeoutSeconds: Duration.seconds(5),
    }),
  };
}
