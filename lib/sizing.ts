// Container sizes of a k8s tenant: presets and per-component overrides, validated as the API server would (every
// request at most its limit) and resolved once by the construct.
import * as kplus from 'cdk8s-plus-28';
import { checkInteger, KubeflexConfigError } from './errors';
import { resources } from './security';

/** Requests and limits of one container, in millicores and mebibytes. */
export interface ComponentResources {
  /** CPU request in millicores. */
  readonly cpuRequestMillis: number;
  /** CPU limit in millicores. */
  readonly cpuLimitMillis: number;
  /** Memory request in MiB (what the scheduler reserves: size it to the idle footprint). */
  readonly memoryRequestMi: number;
  /** Memory limit in MiB; the Go runtime's GOMEMLIMIT is set to it through the Downward API. */
  readonly memoryLimitMi: number;
}

/** Containers of a k8s tenant. */
export interface K8sComponentResources {
  /** kube-apiserver. @default - the size preset's */
  readonly apiServer?: ComponentResources;
  /** kine (in the API server's Pod). @default - the size preset's */
  readonly kine?: ComponentResources;
  /** kube-controller-manager. @default - the size preset's */
  readonly controllerManager?: ComponentResources;
}

/** Presets for K8sControlPlane `size`. */
export type K8sControlPlaneSize = 'small' | 'medium' | 'large';

const r = (cpuRequestMillis: number, memoryRequestMi: number, cpuLimitMillis: number, memoryLimitMi: number) => ({
  cpuRequestMillis,
  memoryRequestMi,
  cpuLimitMillis,
  memoryLimitMi,
});

/**
 * Presets. CPU requests follow the idle use measured in BENCHMARKS.md (a whole idle tenant: ~19 mCPU) and memory
 * requests its idle anonymous memory (API server ~100-170 MiB, kine ~20, KCM ~22), so that idle tenants pack densely
 * on a real node (with the old `medium` requests of 400 mCPU, 4 tenants filled a 2-core node while using 80 mCPU);
 * limits leave room for bursts. The API server's start is its largest burst (3-5 CPU-seconds, BENCHMARKS.md boot): a
 * one-core limit made every start and every wake from sleep take at least that many seconds even on an idle node, so
 * `small` and `medium` allow two cores. Under contention the kernel shares CPU by the requests, not the limits.
 * `large` reserves CPU for busy tenants.
 */
export const K8S_SIZES: Record<K8sControlPlaneSize, Required<K8sComponentResources>> = {
  small: { apiServer: r(15, 160, 2000, 384), kine: r(5, 24, 250, 128), controllerManager: r(5, 32, 250, 128) },
  medium: { apiServer: r(20, 192, 2000, 512), kine: r(5, 32, 500, 256), controllerManager: r(5, 64, 500, 256) },
  large: { apiServer: r(500, 512, 2000, 2048), kine: r(100, 64, 1000, 512), controllerManager: r(200, 128, 1000, 512) },
};

/** Resolves size + overrides, refusing what the API server would refuse (a request above its limit). */
export function resolveK8sResources(
  construct: string,
  size: K8sControlPlaneSize | undefined,
  overrides: K8sComponentResources | undefined,
): Required<K8sComponentResources> {
  const preset = size ?? 'medium';
  if (!(preset in K8S_SIZES)) {
    throw new KubeflexConfigError(construct, 'size', preset, `must be one of ${Object.keys(K8S_SIZES).join(', ')}`);
  }
  const out = { ...K8S_SIZES[preset], ...(overrides ?? {}) };
  for (const [component, res] of Object.entries(out)) {
    const prop = `resources.${component}`;
    checkInteger(construct, `${prop}.cpuRequestMillis`, res.cpuRequestMillis, 1, 1_000_000);
    checkInteger(construct, `${prop}.cpuLimitMillis`, res.cpuLimitMillis, 1, 1_000_000);
    // Below 32 MiB no component starts; GOMEMLIMIT would make the Go runtime collect without pause.
    checkInteger(construct, `${prop}.memoryRequestMi`, res.memoryRequestMi, 16, 1_048_576);
    checkInteger(construct, `${prop}.memoryLimitMi`, res.memoryLimitMi, 32, 1_048_576);
    for (const [request, limit] of [
      ['cpuRequestMillis', 'cpuLimitMillis'],
      ['memoryRequestMi', 'memoryLimitMi'],
    ] as const) {
      if (res[request] > res[limit])
        throw new KubeflexConfigError(
          construct,
          `${prop}.${request}`,
          res[request],
          `must be at most ${limit} (${res[limit]})`,
        );
    }
  }
  return out;
}

/** cdk8s-plus resources of one component. */
export const containerResources = (c: ComponentResources): kplus.ContainerResources =>
  resources(c.cpuRequestMillis, c.memoryRequestMi, c.cpuLimitMillis, c.memoryLimitMi);

/** GOMEMLIMIT = the container's memory limit in bytes (Downward API), so the Go GC and the kubelet agree. */
export const goMemLimit = (): kplus.EnvValue =>
  kplus.EnvValue.fromResource(kplus.ResourceFieldPaths.MEMORY_LIMIT, { divisor: '1' });

/**
 * GOMAXPROCS = the container's CPU limit in whole cores, rounded up (Downward API). Our binaries are built for Go 1.23
 * semantics, where the runtime sizes itself to the node's cores, not the container's limit: on a 64-core node every
 * tenant process would run 64 schedulers' worth of idle wake-ups and garbage-collector workers for a limit of one or
 * two cores.
 */
export const goMaxProcs = (): kplus.EnvValue =>
  kplus.EnvValue.fromResource(kplus.ResourceFieldPaths.CPU_LIMIT, { divisor: '1' });
