/**
 * A bare ControlPlane (created by KubeFlex's own clients: `kflex create`, `kubectl apply` of a ControlPlane, the
 * KubeStellar charts) turned into the objects our constructs synthesize for it: built from its spec, the hosting
 * install's configuration as installed (ConfigMap `kubeflex-config`) and the PostCreateHook objects it uses, with the
 * same constructs as `cdk8s synth`, so both ways give the same objects. The materializer (lib/materializer/) applies
 * them; nothing here talks to a cluster.
 */
import { ApiObject, App, Chart } from 'cdk8s';
import { HOOK_OBJECT_ID_PREFIX, PostCreateHookUse } from './control-plane';
import { constructFor, CONTROL_PLANE_CONSTRUCTS } from './control-plane-types';
import { KubeflexConfigError } from './errors';
import { IKubeflexHosting, KubeflexHosting } from './hosting';
import { IDLE_TIMEOUT_ANNOTATION, PARKED_MANAGER_ANNOTATION } from './idle';
import { HOOK_EGRESS_ANNOTATION, HOOK_POD_SECURITY_ANNOTATION, HookEgress, PostCreateHook } from './post-create-hook';
import { hookUses } from './wire';
import {
  controlPlaneOwnerReference,
  K8S_WORKLOADS,
  MATERIALIZED_FOR,
  MATERIALIZED_TYPE,
  MATERIALIZE_ERROR,
  SLEEP_ANNOTATION,
} from './wire';

export { MATERIALIZED_FOR, MATERIALIZE_ERROR };

/** Field manager of everything the materializer applies. */
export const MATERIALIZER_FIELD_MANAGER = 'kubeflex-materializer';

/** Label every chart of ours puts on its objects, the ControlPlane included. */
const PART_OF_LABEL = 'app.kubernetes.io/part-of';

/** A ControlPlane as read from the cluster (untrusted: every field is checked by the constructs). */
export interface BareControlPlane {
  readonly metadata: {
    readonly name: string;
    readonly uid?: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly spec?: Record<string, any>;
}

/** A PostCreateHook as read from the cluster. */
export interface HookObject {
  readonly metadata: {
    readonly name: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly spec?: { readonly templates?: any[]; readonly defaultVars?: { name: string; value: string }[] };
}

/** Synthesized by our constructs (GitOps): carries the part-of label our charts put on every ControlPlane. */
export function isSynthesized(cp: BareControlPlane): boolean {
  return cp.metadata.labels?.[PART_OF_LABEL] === 'kubeflex';
}

/** PostCreateHook constructs for hook objects read from the cluster, registered with `hosting`. */
export function hookFromObject(hosting: IKubeflexHosting, obj: HookObject, allowClusterScoped = false): PostCreateHook {
  return new PostCreateHook(hosting, `hook-${obj.metadata.name}`, {
    hosting,
    name: obj.metadata.name,
    templates: obj.spec?.templates ?? [],
    defaultVars: Object.fromEntries((obj.spec?.defaultVars ?? []).map((v) => [v.name, v.value])),
    labels: obj.metadata.labels,
    allowClusterScoped,
    // The admin's opt-in on the hook object (writing PostCreateHooks is an admin right); anything but the two levels
    // is refused by the construct.
    podSecurity: obj.metadata.annotations?.[HOOK_POD_SECURITY_ANNOTATION] as 'restricted' | 'baseline' | undefined,
    // The same for egress: a value the construct does not know is refused, naming the annotation's value.
    egress: obj.metadata.annotations?.[HOOK_EGRESS_ANNOTATION]?.split(',').map((e) => e.trim() as HookEgress),
  });
}

/**
 * Every object our constructs synthesize for `cp` (its ControlPlane object included), given the data of the
 * installed `kubeflex-config` (imported with KubeflexHosting.fromConfig: nothing of the install is built) and the
 * PostCreateHook objects of the cluster. Throws KubeflexConfigError with synth's own message for a
 * spec synth would refuse, and for a hook the cluster does not have.
 */
export function materialize(
  cp: BareControlPlane,
  config: Record<string, string>,
  hooks: HookObject[],
  opts: { allowClusterScoped?: boolean } = {},
): any[] {
  return materializeParts(cp, config, hooks, opts).objects;
}

/** Identifies an object among synthesized ones: kind, namespace and name. */
export const objectKey = (o: { kind: string; metadata: { name: string; namespace?: string } }) =>
  `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/**
 * materialize(), and which of the objects a PostCreateHook rendered (objectKey): the materializer applies those as
 * the hook applier, an identity whose rights the hosting admin grants, and the rest with its own.
 */
export function materializeParts(
  cp: BareControlPlane,
  config: Record<string, string>,
  hooks: HookObject[],
  opts: { allowClusterScoped?: boolean } = {},
): { objects: any[]; hookKeys: Set<string> } {
  const app = new App({ outdir: '/nonexistent' });
  const h = KubeflexHosting.fromConfig(app, 'hosting', { config });
  const spec = cp.spec ?? {};
  const uses: PostCreateHookUse[] = [];
  for (const use of hookUses(cp)) {
    const obj = hooks.find((x) => x.metadata.name === use.hookName);
    // An unknown hook name is refused by the control plane construct with the list of known hooks.
    if (obj && !h.findPostCreateHook(obj.metadata.name)) hookFromObject(h, obj, opts.allowClusterScoped);
    uses.push({ hook: use.hookName, vars: use.vars });
  }
  const common = {
    hosting: h,
    name: cp.metadata.name,
    postCreateHooks: uses,
    globalVars: spec.globalVars,
    waitForPostCreateHooks: spec.waitForPostCreateHooks,
    // The author's idle timeout, checked by the construct like the prop (a bad one is this plane's refusal).
    idleTimeout: cp.metadata.annotations?.[IDLE_TIMEOUT_ANNOTATION],
  };
  const sleeping = cp.metadata.annotations?.[SLEEP_ANNOTATION] === 'true' ? true : undefined;
  const type = String(spec.type ?? 'k8s');
  const make = constructFor(type);
  if (!make) {
    throw new KubeflexConfigError(
      `ControlPlane ${cp.metadata.name}`,
      'spec.type',
      type,
      `is not a type this installation serves (${Object.keys(CONTROL_PLANE_CONSTRUCTS).join(', ')})`,
    );
  }
  const chart: Chart = make({
    scope: app,
    name: cp.metadata.name,
    common,
    sleeping,
    // Listing hooks on a host plane is the opt-in: the API server admits that only from a principal holding the
    // verb `host-hooks` (lib/admission.ts), so it is the hosting admin's decision, not any ControlPlane author's.
    allowHostHooks: uses.length > 0,
    external: { bootstrapSecretRef: spec.bootstrapSecretRef, tokenExpirationSeconds: spec.tokenExpirationSeconds },
  });
  const hookKeys = new Set(
    chart.node.children
      .filter((c): c is ApiObject => c instanceof ApiObject && c.node.id.startsWith(HOOK_OBJECT_ID_PREFIX))
      .map((o) => objectKey(o.toJson())),
  );
  const objects = chart.toJson();
  // A parked kube-controller-manager (the controller scaled it to zero, lib/controller/sleep.ts) stays parked: the
  // materializer applies on every change of the ControlPlane, and would otherwise start it again at once.
  if (type === 'k8s' && cp.metadata.annotations?.[PARKED_MANAGER_ANNOTATION] !== undefined) {
    for (const o of objects)
      if (o.kind === 'Deployment' && o.metadata?.name === K8S_WORKLOADS.controllerManager) o.spec.replicas = 0;
  }
  return { objects, hookKeys };
}

/**
 * What the materializer applies: every synthesized object except the ControlPlane (the client's own), each marked
 * with the ControlPlane's UID and owned by it, so garbage collection removes them with it.
 */
export function withOwnership(
  objects: any[],
  cp: { metadata: { name: string; uid: string }; spec?: Record<string, any> },
): any[] {
  // The Namespace also says for which type it was made: the admission policy keeps that unchanged, and lets no
  // materializer workload into a host plane's namespace; the controller binds a host plane only in a host namespace.
  const type = String(cp.spec?.type ?? 'k8s');
  return objects
    .filter((o) => o.kind !== 'ControlPlane')
    .map((o) => ({
      ...o,
      metadata: {
        ...o.metadata,
        annotations: {
          ...(o.metadata.annotations ?? {}),
          [MATERIALIZED_FOR]: cp.metadata.uid,
          ...(o.kind === 'Namespace' ? { [MATERIALIZED_TYPE]: type } : {}),
        },
        ownerReferences: [controlPlaneOwnerReference(cp)],
      },
    }));
}
