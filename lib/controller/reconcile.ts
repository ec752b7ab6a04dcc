// One reconcile of one ControlPlane: observe through KubeClient, decide with the pure core, write the difference.
// Level-based: every pass starts from what the cluster holds now, so a restart or a lost event changes nothing.
import { decodeHostingConfig, HostingConfig } from '../hosting-config';
import { PARKED_MANAGER_ANNOTATION } from '../idle';
import { ApiError, KubeClient, paths } from '../kube/client';
import { parseKubeconfig, ParsedKubeconfig } from '../kube/kubeconfig';
import type { Logger } from '../kube/log';
import { API_GROUP, API_VERSION, tenantNames, TenantNames, HOSTING_NAMESPACE, CONTROL_PLANE_LABEL } from '../names';
import {
  ADMIN_GROUP,
  BOOT_SLOT_WAIT,
  BOOTED_ANNOTATION,
  HOSTING_CONFIGMAP,
  MATERIALIZE_ERROR,
  POSTGRES_TLS_SECRET,
  SLEEP_ANNOTATION,
  TYPE_CONTRACTS,
  typeContract,
} from '../wire';
import {
  ADMIN_BINDING_PATH,
  adminBinding,
  bootstrapCredentials,
  clientSigner,
  computeHookStatus,
  computeStatus,
  ControlPlaneObject,
  FINALIZER,
  hookObjects,
  hookUses,
  HookUse,
  objectReady,
  planHostingSecrets,
  SecretData,
  secretRefFor,
  PostCreateHookObject,
  statusChanged,
  workloadFor,
  workloadReady,
} from './core';
import {
  annotateControlPlane,
  errorText,
  key,
  lookupIn,
  Observed,
  readSecrets,
  ReconcileDeps,
  SecretKey,
  TerminalSpecError,
  writeSecret,
} from './pass';
import { checkIdle, checkManager, enforceSleep, idleTimeoutMs, managerTimeoutMs, restoreFromSleep } from './sleep';
import { driverFor, TypeDriver } from './types';

export { ReconcileDeps, TerminalSpecError } from './pass';

/** When to look again. */
export interface ReconcileResult {
  readonly requeueAfterMs?: number;
  /** Set when the pass failed; the manager backs off. */
  readonly error?: string;
  /** The plane is not Ready: the manager looks again after a delay that grows while it stays so. */
  readonly notReady?: boolean;
  /**
   * Not Ready only because its API does not answer yet while its workload is ready: the route to a new Pod (the
   * Service's endpoints, kube-proxy) follows its readiness by a moment, so the manager looks again within seconds.
   */
  readonly apiPending?: boolean;
}

/** The Secrets a pass over a plane of a supported `type` reads: its contract's, and what its driver adds. */
function secretsRead(type: string, driver: TypeDriver, n: TenantNames, config: HostingConfig): SecretKey[] {
  return [
    ...typeContract(type)!.secrets.map((s): SecretKey => [n.namespace, s]),
    ...(driver.extraSecrets?.(n, config) ?? []),
  ];
}

/** Reconciles the hosting install itself: the bundled PostgreSQL's superuser password. */
export async function reconcileHosting(deps: ReconcileDeps): Promise<void> {
  const config = decodeHostingConfig(
    (await deps.hosting.get(paths.configMap(HOSTING_NAMESPACE, HOSTING_CONFIGMAP)))?.data,
  );
  if (!config.postgres?.bundled) return;
  const observed: Observed = new Map();
  await readSecrets(deps.hosting, observed, [
    [HOSTING_NAMESPACE, config.postgres.passwordSecret],
    [HOSTING_NAMESPACE, POSTGRES_TLS_SECRET],
  ]);
  const opts = {
    now: deps.now(),
    certValiditySeconds: deps.certValiditySeconds,
    caValiditySeconds: deps.caValiditySeconds,
  };
  for (const w of planHostingSecrets(config, lookupIn(observed), opts)) await writeSecret(deps, observed, w);
}

/** Reconciles one ControlPlane by name. */
export async function reconcileControlPlane(deps: ReconcileDeps, name: string): Promise<ReconcileResult> {
  let cp = await deps.hosting.get<ControlPlaneObject>(paths.controlPlane(name));
  if (!cp) return {};
  const log = deps.log.child({ controlPlane: name });
  const type = cp.spec?.type ?? '';

  if (cp.metadata.deletionTimestamp) {
    if (cp.metadata.finalizers?.includes(FINALIZER)) await finalize(deps, cp, log);
    return {};
  }

  let names: TenantNames;
  try {
    names = tenantNames(name, 'ControlPlane', 'metadata.name');
  } catch (e) {
    return writeStatus(deps, cp, { syncError: (e as Error).message, notReady: 'not synced', hooks: [] }, log);
  }
  const secretRef = secretRefFor(type, names);
  const driver = driverFor(type);
  const hooks: { name: string; complete: boolean; detail: string }[] = [];
  let notReady: string | undefined;
  let apiPending = false;
  let requeueAfterMs: number | undefined;
  try {
    // Only a new spec can change this: no back-off loop, the next generation (or the resync) looks again.
    if (!secretRef || !driver) {
      throw new TerminalSpecError(
        `spec.type "${type}" is not supported by this controller (${Object.keys(TYPE_CONTRACTS).join(', ')})`,
      );
    }
    // What the pass reads besides the plane and its Secrets, asked at once: each is a round trip to the hosting API
    // server (and its store), and with a thousand planes the passes are bound by those waits, not by CPU.
    const needsFinalizer = !cp.metadata.finalizers?.includes(FINALIZER);
    const [mayFinalize, hookList, configData, ns] = await Promise.all([
      needsFinalizer ? (driver.mayFinalize?.(deps, names) ?? true) : false,
      Promise.all(
        hookUses(cp).map(async (use): Promise<[string, any]> => [
          use.hookName,
          await deps.hosting.get(paths.postCreateHook(use.hookName)),
        ]),
      ),
      deps.hosting.get(paths.configMap(HOSTING_NAMESPACE, HOSTING_CONFIGMAP)).then((c) => c?.data),
      deps.hosting.get(paths.namespace(names.namespace)),
    ]);
    if (needsFinalizer && mayFinalize) cp = await addFinalizer(deps, cp);
    // The PostCreateHooks this plane uses, read once per pass (labels to propagate, then readiness).
    const hookObjs = new Map(hookList);
    cp = await propagateHookLabels(deps, cp, [...hookObjs.values()]);
    const config = decodeHostingConfig(configData);
    // The materializer's refusal of a bare ControlPlane (synth's own message): the status says so, one writer.
    const refused = cp.metadata.annotations?.[MATERIALIZE_ERROR];
    if (refused) throw new TerminalSpecError(`not materialized: ${refused}`);
    if (!ns) {
      throw new Error(
        `namespace ${names.namespace} not found: apply every manifest synthesized for this control plane (or run the hosting install's materializer)`,
      );
    }
    if (ns.metadata?.labels?.[CONTROL_PLANE_LABEL] !== name) {
      // A plane named after an existing namespace (kube -> kube-system) must not get Secrets written there (M6).
      throw new TerminalSpecError(
        `namespace ${names.namespace} exists but does not carry the label ${CONTROL_PLANE_LABEL}=${name}: it is not this control plane's`,
      );
    }
    const observed: Observed = new Map();
    await readSecrets(deps.hosting, observed, secretsRead(type, driver, names, config));
    const lookup = lookupIn(observed);
    const opts = {
      now: deps.now(),
      certValiditySeconds: deps.certValiditySeconds,
      caValiditySeconds: deps.caValiditySeconds,
    };

    let routeHost: string | undefined;
    if (config.isOpenShift && driver.openShiftRoute) {
      const route = await deps.hosting.get(paths.object('route.openshift.io/v1', 'Route', name, names.namespace)!);
      routeHost = route?.spec?.host || undefined;
      if (!routeHost) notReady = `waiting for OpenShift to assign a host to Route ${names.namespace}/${name}`;
    }
    // The type's own step (types/<type>.ts): Secrets to mint or renew, what it waits for, when to look again.
    const step = await driver.reconcile({ deps, cp, names, ns, config, observed, lookup, opts, routeHost, log });
    requeueAfterMs = step.requeueAfterMs;
    // One after the other: written at once, a thousand planes' Secrets made the store 10x slower per write (kine on
    // PostgreSQL, BENCHMARKS.md), so the passes went slower, not faster.
    for (const w of step.writes ?? []) await writeSecret(deps, observed, w, cp, log);
    notReady ??= step.notReady;
    let alsoNotReady: string | undefined;
    if (step.after) {
      const then = await step.after();
      for (const w of then.writes ?? []) await writeSecret(deps, observed, w, cp, log);
      alsoNotReady = then.notReady;
      if (then.mayFinalize && !cp.metadata.finalizers?.includes(FINALIZER)) cp = await addFinalizer(deps, cp);
    }

    // Asleep: Secrets are still kept current (above), but nothing is probed; its API is down on purpose.
    const sleeping =
      cp.metadata.annotations?.[SLEEP_ANNOTATION] === 'true' && !!typeContract(type)?.sleepWorkloads.length;
    const later: (number | undefined)[] = [requeueAfterMs];
    if (sleeping) {
      // A step that did not finish (its database not made: PostgreSQL unreachable, or two provisionings changing
      // its shared catalog at once) is looked at again on the not-Ready schedule, asleep or not: a plane that slept
      // through it would wake without a database (a bench found one waiting for the 15 min resync).
      if (alsoNotReady) notReady = notReady ? `${alsoNotReady}; ${notReady}` : alsoNotReady;
      const slept = await enforceSleep(deps, cp, names, config, log);
      cp = slept.cp;
      later.push(slept.checkAfterMs);
    } else {
      if (typeContract(type)?.sleepWorkloads.length) cp = await restoreFromSleep(deps, cp, names, log);
      const kubeconfig = observed.get(key(secretRef.namespace, secretRef.name))?.data;
      if (!notReady) {
        const api = await apiNotReady(
          deps,
          type,
          driver.probesApi,
          names,
          secretRef.inClusterKey,
          kubeconfig,
          lookupIn(observed),
        );
        notReady = api?.why;
        apiPending = !!api?.apiPending;
      }
      // A database not made yet is said first; what the workload waits for (a boot slot, say) is still said after it.
      if (alsoNotReady) notReady = notReady ? `${alsoNotReady}; ${notReady}` : alsoNotReady;
      // Once, the first time its API answers ready: a later wake may be spliced before the bootstrap hooks re-check.
      if (!notReady && typeContract(type)?.sleepWorkloads.length && !cp.metadata.annotations?.[BOOTED_ANNOTATION]) {
        cp = await annotateControlPlane(deps, name, { [BOOTED_ANNOTATION]: 'true' });
      }
      for (const use of hookUses(cp)) hooks.push(await hookState(deps, cp, names, use, hookObjs.get(use.hookName)));
      const idleMs = idleTimeoutMs(cp, config);
      const incluster = kubeconfig?.[secretRef.inClusterKey];
      if (!notReady && idleMs !== undefined && incluster) {
        const idle = await checkIdle(deps, cp, idleMs, incluster, log);
        cp = idle.cp;
        later.push(idle.checkAfterMs);
      }
      const parked = cp.metadata.annotations?.[PARKED_MANAGER_ANNOTATION] !== undefined;
      if (!notReady && (managerTimeoutMs(cp, config) !== undefined || parked)) {
        const checked = await checkManager(deps, cp, names, config, log);
        cp = checked.cp;
        later.push(checked.checkAfterMs);
      }
    }
    requeueAfterMs = later.some((x) => x !== undefined)
      ? Math.min(...later.filter((x): x is number => x !== undefined))
      : undefined;
    const readyMessage = driver.readyMessage;
    const result = await writeStatus(deps, cp, { notReady, hooks, secretRef, sleeping, readyMessage }, log);
    const waitingHooks = cp.spec?.waitForPostCreateHooks && hooks.some((h) => !h.complete);
    const next = [requeueAfterMs, waitingHooks ? deps.hooksRequeueMs : undefined].filter(
      (x): x is number => x !== undefined,
    );
    return {
      ...result,
      requeueAfterMs: next.length ? Math.min(...next) : undefined,
      notReady: !!notReady,
      ...(apiPending ? { apiPending } : {}),
    };
  } catch (e) {
    const message = errorText(e);
    log.warn('reconcile failed', { error: message });
    const r = await writeStatus(
      deps,
      cp,
      { syncError: message, notReady: notReady ?? 'not synced', hooks, secretRef },
      log,
    ).catch((err) => ({ error: errorText(err) }));
    // A refused spec waits for a change of the object (or the resync), not for back-off retries.
    if (e instanceof TerminalSpecError && !r.error) return {};
    return { error: r.error ?? message };
  }
}

/**
 * Why the tenant API is not ready, or undefined: workload ready and core/v1 discovery answers with the minted
 * kubeconfig. `apiPending`: the workload is ready and only the API does not answer yet.
 */
async function apiNotReady(
  deps: ReconcileDeps,
  type: string,
  probesApi: boolean,
  names: TenantNames,
  inClusterKey: string,
  secret: SecretData | undefined,
  lookup: (ns: string, n: string) => SecretData | undefined,
): Promise<{ why: string; apiPending?: boolean } | undefined> {
  const workload = workloadFor(type);
  if (workload) {
    const path = paths.object('apps/v1', workload.kind, workload.name, names.namespace)!;
    const w = workloadReady(await deps.hosting.get(path));
    if (!w.ready) {
      // Its API server Pod still holds the boot gate: say so rather than the Deployment's count of ready Pods.
      // Or no node can take it: the scheduler's reason says what to add (capacity, a taint), the count does not.
      const hold = deps.bootHold?.(names.namespace);
      const why =
        hold && 'slots' in hold
          ? `${BOOT_SLOT_WAIT}: at most ${hold.slots === 1 ? '1 API server starts' : `${hold.slots} API servers start`} at once (kubeflex-config bootSlots); a woken plane goes first`
          : hold
            ? `${workload.kind} ${names.namespace}/${workload.name}: no node can take it: ${hold.unschedulable}`
            : `${workload.kind} ${names.namespace}/${workload.name}: ${w.detail}`;
      return { why };
    }
  }
  if (!probesApi)
    return secret?.[inClusterKey] ? undefined : { why: `waiting for ${typeContract(type)?.kubeconfig.name}` };
  const kubeconfig = secret?.[inClusterKey];
  if (!kubeconfig) return { why: `kubeconfig key ${inClusterKey} not written yet` };
  let client: KubeClient;
  let parsed: ParsedKubeconfig;
  try {
    parsed = parseKubeconfig(kubeconfig);
    client = KubeClient.fromParsed(parsed, deps.connectTo, deps.probeTimeoutMs);
  } catch (e) {
    return { why: `kubeconfig key ${inClusterKey} unreadable: ${errorText(e)}` };
  }
  try {
    await client.request('GET', '/api/v1');
  } catch (e) {
    client.close();
    return { why: `API server not answering discovery: ${errorText(e)}`, apiPending: !!workload };
  }
  try {
    const signer = clientSigner(type, names, lookup);
    if (!signer) return undefined;
    // k8s and k3s admin certificates carry ADMIN_GROUP, not system:masters (review M4): the plane is ready for its
    // users once that group is bound to cluster-admin. Reading the binding with the admin credential proves both.
    try {
      await client.request('GET', ADMIN_BINDING_PATH);
      return undefined;
    } catch (e) {
      if (!(e instanceof ApiError) || (e.status !== 403 && e.status !== 404)) throw e;
    }
    const creds = bootstrapCredentials(signer, deps.now());
    const boot = KubeClient.fromParsed(
      { ...parsed, cert: creds.cert, key: creds.key, token: undefined },
      deps.connectTo,
      deps.probeTimeoutMs,
    );
    try {
      await boot.request(
        'PATCH',
        `${ADMIN_BINDING_PATH}?fieldManager=kubeflex-controller&force=true`,
        adminBinding(),
        'application/apply-patch+yaml',
      );
    } finally {
      boot.close();
    }
    await client.request('GET', ADMIN_BINDING_PATH);
    return undefined;
  } catch (e) {
    return { why: `admin group ${ADMIN_GROUP} not bound to cluster-admin yet: ${errorText(e)}` };
  } finally {
    client.close();
  }
}

async function hookState(
  deps: ReconcileDeps,
  cp: ControlPlaneObject,
  names: TenantNames,
  use: HookUse,
  hook: any,
): Promise<{ name: string; complete: boolean; detail: string }> {
  if (!hook)
    throw new Error(`PostCreateHook "${use.hookName}" not found (create it, or remove it from spec.postCreateHooks)`);
  const objects = hookObjects(cp, names, hook, use);
  if (typeof objects === 'string') throw new Error(objects);
  const waiting: string[] = [];
  for (const o of objects) {
    const path = paths.object(o.apiVersion, o.kind, o.name, o.namespace);
    if (!path) continue; // kinds without a readiness rule count as ready once applied, which we cannot see: skip
    const r = objectReady(o.kind, await deps.hosting.get(path));
    if (!r.ready) waiting.push(`${o.kind} ${o.name} ${r.detail}`);
  }
  return { name: use.hookName, complete: waiting.length === 0, detail: waiting.join(', ') || 'complete' };
}

/**
 * KubeFlex merges the labels of the PostCreateHooks a ControlPlane uses into the ControlPlane's labels
 * (`propagateLabels`); KubeStellar finds its ITS by `kflex.kubestellar.io/cptype=its` that way. The controller, the
 * one writer of the ControlPlane object besides its author, does it for bare and synthesized planes alike (a
 * synthesized plane already carries them: nothing to write). Our own marks are never taken from a hook.
 */
async function propagateHookLabels(
  deps: ReconcileDeps,
  cp: ControlPlaneObject,
  hookObjs: any[],
): Promise<ControlPlaneObject> {
  const missing: Record<string, string> = {};
  for (const hook of hookObjs) {
    for (const [k, v] of Object.entries<string>(hook?.metadata?.labels ?? {})) {
      if (k === 'app.kubernetes.io/part-of' || k.startsWith(`${API_GROUP}/`)) continue;
      if (cp.metadata.labels?.[k] !== v) missing[k] = v;
    }
  }
  if (!Object.keys(missing).length) return cp;
  return deps.hosting.request<ControlPlaneObject>(
    'PATCH',
    paths.controlPlane(cp.metadata.name),
    { metadata: { labels: missing, resourceVersion: cp.metadata.resourceVersion } },
    'application/merge-patch+json',
  );
}

/** Writes a PostCreateHook's status (computeHookStatus) through `/status` when it changed. */
export async function reconcileHookStatus(
  deps: ReconcileDeps,
  hook: PostCreateHookObject,
  cps: ControlPlaneObject[],
): Promise<void> {
  const status = computeHookStatus(hook, cps, deps.now());
  if (!statusChanged(hook.status, status)) return;
  // The cached object's resourceVersion makes a stale write fail with 409, and the key is retried.
  await deps.hosting.request('PUT', `${paths.postCreateHook(hook.metadata.name)}/status`, { ...hook, status });
  const ready = status.conditions!.find((c) => c.type === 'Ready')!;
  deps.log.info('hook status', { postCreateHook: hook.metadata.name, ready: ready.status, message: ready.message });
}

async function writeStatus(
  deps: ReconcileDeps,
  cp: ControlPlaneObject,
  input: Parameters<typeof computeStatus>[1],
  log: Logger,
): Promise<ReconcileResult> {
  const status = computeStatus(cp, input, deps.now());
  if (!statusChanged(cp.status, status)) return {};
  await deps.hosting.request('PUT', `${paths.controlPlane(cp.metadata.name)}/status`, { ...cp, status });
  const ready = status.conditions!.find((c) => c.type === 'Ready')!;
  const synced = status.conditions!.find((c) => c.type === 'Synced')!;
  log.info('status', {
    synced: synced.status,
    ready: ready.status,
    reason: ready.reason,
    message: synced.message || ready.message,
  });
  // Events on transitions only (KubeFlex's SyncSuccess/SyncFail, plus Ready changes), so `kubectl describe cp`
  // tells the story; an event that cannot be written never fails the reconcile.
  const before = (type: string) => cp.status?.conditions?.find((c) => c.type === type);
  const events: [string, string, string][] = [];
  if (before('Synced')?.status !== synced.status || before('Synced')?.message !== synced.message) {
    events.push(
      synced.status === 'True' ? ['Normal', 'SyncSuccess', 'reconciled'] : ['Warning', 'SyncFail', synced.message],
    );
  }
  // A new plane that is not Ready yet gets no Ready event: its SyncSuccess says it was reconciled, and one write
  // less per plane counts when a thousand are created at once.
  if (before('Ready')?.reason !== ready.reason && (before('Ready') || ready.status === 'True')) {
    events.push([ready.status === 'True' ? 'Normal' : 'Warning', ready.reason, ready.message || ready.reason]);
  }
  await Promise.all(
    events.map(([type, reason, message]) =>
      recordEvent(deps, cp, type, reason, message).catch((e: Error) =>
        log.debug('event not recorded', { reason, error: e.message }),
      ),
    ),
  );
  return {};
}

/** Writes a core/v1 Event about a (cluster-scoped) ControlPlane into namespace `default`. */
async function recordEvent(deps: ReconcileDeps, cp: ControlPlaneObject, type: string, reason: string, message: string) {
  const now = deps.now().toISOString();
  await deps.hosting.request('POST', '/api/v1/namespaces/default/events', {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${cp.metadata.name}.`, namespace: 'default' },
    involvedObject: {
      apiVersion: API_VERSION,
      kind: 'ControlPlane',
      name: cp.metadata.name,
      uid: cp.metadata.uid,
    },
    type,
    reason,
    message: message.slice(0, 1000),
    source: { component: 'kubeflex-controller' },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  });
}

/**
 * Like KubeFlex, every ControlPlane gets the finalizer: `kubectl delete cp` must take the tenant's namespace (not owned
 * by the ControlPlane: synth cannot know its UID) and, for k8s, its database with it. A k8s plane gets it only once
 * the controller made its database (its driver's mayFinalize, or its step's `after`), so it never drops what it did
 * not make.
 */
function addFinalizer(deps: ReconcileDeps, cp: ControlPlaneObject): Promise<ControlPlaneObject> {
  return deps.hosting.request<ControlPlaneObject>(
    'PATCH',
    paths.controlPlane(cp.metadata.name),
    {
      metadata: {
        finalizers: [...(cp.metadata.finalizers ?? []), FINALIZER],
        resourceVersion: cp.metadata.resourceVersion,
      },
    },
    'application/merge-patch+json',
  );
}

async function finalize(deps: ReconcileDeps, cp: ControlPlaneObject, log: Logger): Promise<void> {
  const name = cp.metadata.name;
  await driverFor(cp.spec?.type)?.finalize?.(deps, cp, log);
  await deleteTenantObjects(deps, name, log);
  await deps.hosting.request(
    'PATCH',
    paths.controlPlane(name),
    {
      metadata: {
        finalizers: (cp.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
        resourceVersion: cp.metadata.resourceVersion,
      },
    },
    'application/merge-patch+json',
  );
  log.info('finalizer removed');
}

/**
 * What `kubectl delete cp <name>` must take with it: the `<name>-system` namespace (everything in it goes with it).
 * Only a namespace carrying this ControlPlane's label is deleted, so one that merely has a matching name is left alone.
 */
async function deleteTenantObjects(deps: ReconcileDeps, name: string, log: Logger): Promise<void> {
  let names: TenantNames;
  try {
    names = tenantNames(name);
  } catch {
    return; // a name we never accepted has no namespace of ours
  }
  const owned = (obj: any) => obj?.metadata?.labels?.[CONTROL_PLANE_LABEL] === name;
  const ns = await deps.hosting.get(paths.namespace(names.namespace));
  if (ns && owned(ns)) {
    if (!ns.metadata.deletionTimestamp) {
      await deps.hosting.deleteIfPresent(paths.namespace(names.namespace));
      log.info('namespace deleted', { namespace: names.namespace });
    }
  } else if (ns) {
    log.warn('namespace kept: it does not carry the control plane label', { namespace: names.namespace });
  }
}
