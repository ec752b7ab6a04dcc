// The materializer loop: serves ControlPlanes that carry no mark of our synth (created by KubeFlex's own clients) by
// building their tenant with our constructs and server-side applying it. Separate from the controller (which stays
// cdk8s-free and only mints and writes status). Level-based: every pass recomputes the objects from the ControlPlane,
// the hosting configuration and the hooks, and applies them again (idempotent); a hook created later is picked up by
// the PostCreateHook watch.
import { KubeflexConfigError } from '../errors';
import { decodeHostingConfig } from '../hosting-config';
import { applyObjects, Discovery, serverSideApply } from '../kube/apply';
import { ApiError, KubeClient, paths } from '../kube/client';
import { ControlLoop } from '../kube/control-loop';
import { Logger } from '../kube/log';
import {
  BareControlPlane,
  isSynthesized,
  materializeParts,
  objectKey,
  MATERIALIZE_ERROR,
  MATERIALIZED_FOR,
  MATERIALIZER_FIELD_MANAGER,
  withOwnership,
} from '../materialize';
import { HOSTING_NAMESPACE } from '../names';
import { hookUses } from '../wire';
import { HOOK_APPLIER_USER, HOSTING_CONFIGMAP, POD_KINDS } from '../wire';

export interface MaterializerOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  /** Full resync period. @default 5 min */
  readonly resyncMs?: number;
}

/** A refusal that names what was refused; reported on the ControlPlane, never retried with back-off. */
class Refused extends Error {}

/**
 * One pass for one ControlPlane. Returns what happened, for logs and tests. Nothing is applied unless every check
 * passed: the spec synthesizes, and the tenant namespace exists for no one else.
 */
export async function materializeOne(client: KubeClient, name: string, log: Logger): Promise<string> {
  const cp = await client.get<BareControlPlane & { metadata: { uid: string; deletionTimestamp?: string } }>(
    paths.controlPlane(name),
  );
  if (!cp) return 'gone';
  if (cp.metadata.deletionTimestamp) return 'deleting'; // owner references let garbage collection remove the rest
  if (isSynthesized(cp)) return 'synthesized'; // GitOps owns it
  try {
    const config = (await client.get<any>(paths.configMap(HOSTING_NAMESPACE, HOSTING_CONFIGMAP)))?.data;
    if (!config) throw new Refused(`ConfigMap ${HOSTING_NAMESPACE}/${HOSTING_CONFIGMAP} not found`);
    // A broken install setting is the operator's to fix, not this plane's refusal: fail the pass (plain Error).
    decodeHostingConfig(config);
    const hooks = [];
    for (const use of hookUses(cp)) {
      const h = await client.get<any>(paths.postCreateHook(use.hookName));
      if (h) hooks.push(h);
    }
    let objects: any[];
    let hookKeys: Set<string>;
    try {
      // Hook objects may be cluster-scoped: they are applied as the hook applier, whose rights the admin grants.
      const parts = materializeParts(cp, config, hooks, { allowClusterScoped: true });
      objects = withOwnership(parts.objects, cp);
      hookKeys = parts.hookKeys;
    } catch (e) {
      if (e instanceof KubeflexConfigError) throw new Refused(e.message);
      throw e;
    }
    const isHook = (o: any) => hookKeys.has(objectKey(o));
    // PostCreateHook objects are applied as the hook applier (impersonated): what they may do is what the hosting
    // admin granted that identity, never the materializer's own rights (review N3; KubeStellar's WDS hooks).
    const hookClient = client.impersonating(HOOK_APPLIER_USER);
    const clientFor = (o: any) => (isHook(o) ? hookClient : client);
    // A host plane's namespace holds a hosting cluster-admin kubeconfig: the admission policy lets no workload of
    // the materializer itself run there (hooks, admitted only with the verb host-hooks, run as the hook applier).
    const workload = cp.spec?.type === 'host' && objects.find((o) => POD_KINDS.includes(o.kind) && !isHook(o));
    if (workload) {
      throw new Refused(
        `${describe(workload)} would run beside the hosting cluster-admin kubeconfig of a host plane; nothing was applied`,
      );
    }
    // Only into what was made for this ControlPlane: a namespace or object of another plane, of a synthesized
    // plane or of anyone else is never touched (checked for all before anything is applied).
    const discovery = new Discovery(client);
    for (const o of objects.filter((x) => x.kind === 'Namespace' || x.metadata.namespace === HOSTING_NAMESPACE)) {
      const existing = await client.get<any>(await discovery.path(o));
      const mark = existing?.metadata?.annotations?.[MATERIALIZED_FOR];
      if (existing && mark !== cp.metadata.uid) {
        throw new Refused(
          `${describe(o)} exists and was not made for this ControlPlane (uid ${cp.metadata.uid}); nothing was applied`,
        );
      }
    }
    // Every other object is first applied with dryRun=All wherever something may already exist (any namespace that
    // exists): the API server's own admission (the materializer policy: nothing it did not make for this plane's
    // UID, nothing outside its namespaces) and RBAC judge it there, so a refusal leaves everything untouched.
    const namespaces = new Map<string, boolean>();
    for (const o of objects) {
      let r: { namespaced: boolean };
      const where = describe(o);
      try {
        r = await discovery.resource(o.apiVersion, o.kind);
      } catch (e) {
        throw new Refused(`${where}: ${(e as Error).message}; nothing was applied`);
      }
      if (!r.namespaced && o.kind !== 'Namespace' && !isHook(o)) {
        throw new Refused(`${where} is cluster-scoped: the materializer makes no cluster-scoped object but Namespaces`);
      }
      if (o.kind === 'Namespace' && !isHook(o)) continue; // checked above, by its mark
      if (r.namespaced) {
        const ns = o.metadata.namespace as string;
        if (!namespaces.has(ns)) namespaces.set(ns, !!(await client.get(paths.namespace(ns))));
        if (!namespaces.get(ns)) continue; // a namespace still to be made holds nothing of anyone's
      }
      try {
        await serverSideApply(clientFor(o), await discovery.path(o), o, MATERIALIZER_FIELD_MANAGER, true);
      } catch (e) {
        if (e instanceof ApiError && (e.status === 403 || e.status === 422 || e.status === 409)) {
          throw new Refused(`${where}: ${e.message}; nothing was applied`);
        }
        throw e;
      }
    }
    await applyObjects(
      client,
      objects.filter((o) => !isHook(o)),
      discovery,
      MATERIALIZER_FIELD_MANAGER,
    );
    await applyObjects(hookClient, objects.filter(isHook), discovery, MATERIALIZER_FIELD_MANAGER);
    await setError(client, cp, undefined);
    log.info('materialized', { controlPlane: name, objects: objects.length });
    return 'applied';
  } catch (e) {
    if (!(e instanceof Refused)) throw e;
    log.warn('refused', { controlPlane: name, reason: e.message });
    await setError(client, cp, e.message);
    return `refused: ${e.message}`;
  }
}

/** `Kind namespace/name` (or `Kind name`) of an object, for refusals. */
const describe = (o: any) => `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;

/** The refusal, where the controller reads it into Synced=False (one writer of status: the controller). */
async function setError(client: KubeClient, cp: BareControlPlane, message: string | undefined): Promise<void> {
  if (cp.metadata.annotations?.[MATERIALIZE_ERROR] === message) return;
  await client.request(
    'PATCH',
    paths.controlPlane(cp.metadata.name),
    { metadata: { annotations: { [MATERIALIZE_ERROR]: message ?? null } } },
    'application/merge-patch+json',
  );
}

/**
 * What a pass reads of an object (ControlPlane or PostCreateHook): identity, spec (its generation), labels and
 * annotations. Status is not among them: the controller writes every plane's and hook's status, and a pass for each
 * such write would read and dry-run a whole tenant for nothing (N planes sharing one hook made N² passes).
 */
export function passInput(obj: any): string {
  const m = obj?.metadata ?? {};
  return JSON.stringify([m.uid, m.generation, m.deletionTimestamp, m.labels ?? {}, m.annotations ?? {}]);
}

/** Watches ControlPlanes and PostCreateHooks, and materializes every bare ControlPlane, one at a time per name. */
export class Materializer {
  private readonly loop: ControlLoop;
  /** Each known ControlPlane's pass input (passInput) and the hooks it uses. */
  private readonly known = new Map<string, { input: string; hooks: Set<string> }>();
  /** Each PostCreateHook's pass input. */
  private readonly hooks = new Map<string, string>();

  public constructor(private readonly opts: MaterializerOptions) {
    this.loop = new ControlLoop({
      client: opts.client,
      log: opts.log,
      keyField: 'controlPlane',
      watches: [
        {
          kind: 'ControlPlane',
          path: paths.controlPlanes,
          onEvent: (type, obj) => {
            const name = obj?.metadata?.name;
            if (!name) return;
            if (type === 'DELETED') {
              this.known.delete(name);
              return;
            }
            const input = passInput(obj);
            if (this.known.get(name)?.input === input) return; // a status write: nothing a pass reads changed
            this.known.set(name, { input, hooks: new Set(hookUses(obj).map((u) => u.hookName)) });
            this.loop.add(name);
          },
        },
        // A hook created, changed or deleted after the ControlPlanes that use it (KubeFlex's hook-retry flow): a pass
        // for those planes only.
        {
          kind: 'PostCreateHook',
          path: paths.postCreateHooks,
          onEvent: (type, obj) => {
            const name = obj?.metadata?.name;
            if (!name) return;
            if (type === 'DELETED') this.hooks.delete(name);
            else {
              const input = passInput(obj);
              if (this.hooks.get(name) === input) return;
              this.hooks.set(name, input);
            }
            for (const [cp, k] of this.known) if (k.hooks.has(name)) this.loop.add(cp);
          },
        },
      ],
      reconcile: async (name) => {
        await materializeOne(this.opts.client, name, this.opts.log);
      },
      keys: () => this.known.keys(),
      resyncMs: opts.resyncMs ?? 300_000,
    });
  }

  public get isSynced(): boolean {
    return this.loop.isSynced;
  }

  public start(): void {
    this.loop.start();
    this.opts.log.info('materializer started', {});
  }

  public async stop(): Promise<void> {
    await this.loop.stop();
    this.opts.client.close();
  }
}
