// One reconcile of one ControlPlane: observe through KubeClient, decide with the pure core, write the difference.
// Level-based: every pass starts from what the cluster holds now, so a restart or a lost event changes nothing.
import { decodeHostingConfig, HostingConfig } from '../hosting-config';
import { ApiError, ConnectTo, KubeClient, paths } from '../kube/client';
import { parseKubeconfig, ParsedKubeconfig } from '../kube/kubeconfig';
import type { Logger } from '../kube/log';
import { API_GROUP, API_VERSION, tenantNames, TenantNames, HOSTING_NAMESPACE, CONTROL_PLANE_LABEL } from '../names';
import {
  ADMIN_GROUP,
  ADMIN_KUBECONFIG_KEYS,
  ADMIN_KUBECONFIG_SECRET,
  controlPlaneOwnerReference,
  HOSTING_CONFIGMAP,
  hostBindingName,
  tenantDatabaseMark,
  TYPE_CONTRACTS,
  MATERIALIZE_ERROR,
  MATERIALIZED_FOR,
  MATERIALIZED_TYPE,
  POSTGRES_TLS_SECRET,
  SLEEP_ANNOTATION,
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
  externalAdminData,
  externalKubeconfig,
  FINALIZER,
  hookObjects,
  hookUses,
  HookUse,
  MANAGED_BY,
  objectReady,
  planExternal,
  planHostingSecrets,
  planHostToken,
  HOST_NO_OFF_CLUSTER_KUBECONFIG,
  hostKubeconfig,
  planK3sSecrets,
  planK8sSecrets,
  planVClusterSecrets,
  SecretData,
  SecretPlan,
  secretRefFor,
  SecretWrite,
  PostCreateHookObject,
  statusChanged,
  workloadFor,
  workloadReady,
} from './core';
import type { DropResult } from './postgres';

/** What a reconcile needs from its environment. */
export interface ReconcileDeps {
  readonly hosting: KubeClient;
  readonly connectTo: ConnectTo;
  readonly certValiditySeconds: number;
  readonly caValiditySeconds: number;
  readonly notReadyRequeueMs: number;
  readonly hooksRequeueMs: number;
  readonly probeTimeoutMs: number;
  /** Renew adopted clusters' and host planes' tokens after this fraction of their lifetime. */
  readonly tokenRenewFraction: number;
  /** Lifetime of host planes' TokenRequest tokens, in seconds. */
  readonly hostTokenSeconds: number;
  readonly log: Logger;
  readonly now: () => Date;
  readonly dropDatabase: (
    pg: NonNullable<HostingConfig['postgres']>,
    password: string,
    db: string,
    role: string,
    ca: string | undefined,
    /** `kubeflex:<ControlPlane UID>`: a database marked for another plane is kept. */
    mark: string,
  ) => Promise<DropResult>;
}

/** When to look again. */
export interface ReconcileResult {
  readonly requeueAfterMs?: number;
  /** Set when the pass failed; the manager backs off. */
  readonly error?: string;
  /** The plane is not Ready: the manager looks again after a delay that grows while it stays so. */
  readonly notReady?: boolean;
}

type SecretKey = [namespace: string, name: string];

/** Secrets a pass reads besides its type's contract: those in the hosting namespace, or named after the plane. */
const EXTRA_SECRETS: Record<string, (n: TenantNames, config: HostingConfig) => SecretKey[]> = {
  k8s: (n, config) => [
    ...(config.postgres?.ca ? [[HOSTING_NAMESPACE, config.postgres.ca.secret] as SecretKey] : []),
    [HOSTING_NAMESPACE, n.hostingDatabaseSecret],
  ],
  // The host type's ServiceAccount token Secret carries the plane's name (KubeFlex).
  host: (n) => [[n.namespace, n.name]],
};

/** The Secrets a pass over a plane of a supported `type` reads. */
function secretsRead(type: string, n: TenantNames, config: HostingConfig): SecretKey[] {
  return [
    ...typeContract(type)!.secrets.map((s): SecretKey => [n.namespace, s]),
    ...(EXTRA_SECRETS[type]?.(n, config) ?? []),
  ];
}

type Observed = Map<string, { data: SecretData; resourceVersion: string }>;
const key = (ns: string, name: string) => `${ns}/${name}`;
const decode = (d: Record<string, string> | undefined): SecretData =>
  Object.fromEntries(Object.entries(d ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));

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
  const hooks: { name: string; complete: boolean; detail: string }[] = [];
  let notReady: string | undefined;
  let requeueAfterMs: number | undefined;
  try {
    // Only a new spec can change this: no back-off loop, the next generation (or the resync) looks again.
    if (!secretRef) {
      throw new TerminalSpecError(
        `spec.type "${type}" is not supported by this controller (${Object.keys(TYPE_CONTRACTS).join(', ')})`,
      );
    }
    if (!cp.metadata.finalizers?.includes(FINALIZER) && (type !== 'k8s' || (await databaseProvisioned(deps, names)))) {
      // Like KubeFlex, every ControlPlane gets the finalizer: `kubectl delete cp` must take the tenant's namespace
      // (not owned by the ControlPlane: synth cannot know its UID) and, for k8s, its database with it. A k8s plane
      // gets it only once its database Job succeeded, so a plane that never provisioned drops nothing (review H2).
      const patched = await deps.hosting.request<ControlPlaneObject>(
        'PATCH',
        paths.controlPlane(name),
        {
          metadata: {
            finalizers: [...(cp.metadata.finalizers ?? []), FINALIZER],
            resourceVersion: cp.metadata.resourceVersion,
          },
        },
        'application/merge-patch+json',
      );
      cp = patched;
    }
    // The PostCreateHooks this plane uses, read once per pass (labels to propagate, then readiness).
    const hookObjs = new Map<string, any>();
    for (const use of hookUses(cp))
      hookObjs.set(use.hookName, await deps.hosting.get(paths.postCreateHook(use.hookName)));
    cp = await propagateHookLabels(deps, cp, [...hookObjs.values()]);
    const config = decodeHostingConfig(
      (await deps.hosting.get(paths.configMap(HOSTING_NAMESPACE, HOSTING_CONFIGMAP)))?.data,
    );
    // The materializer's refusal of a bare ControlPlane (synth's own message): the status says so, one writer.
    const refused = cp.metadata.annotations?.[MATERIALIZE_ERROR];
    if (refused) throw new TerminalSpecError(`not materialized: ${refused}`);
    const ns = await deps.hosting.get(paths.namespace(names.namespace));
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
    await readSecrets(deps.hosting, observed, secretsRead(type, names, config));
    const lookup = lookupIn(observed);
    const opts = {
      now: deps.now(),
      certValiditySeconds: deps.certValiditySeconds,
      caValiditySeconds: deps.caValiditySeconds,
    };

    let plan: SecretPlan = { writes: [] };
    let routeHost: string | undefined;
    if (config.isOpenShift && (type === 'k8s' || type === 'vcluster')) {
      const route = await deps.hosting.get(paths.object('route.openshift.io/v1', 'Route', name, names.namespace)!);
      routeHost = route?.spec?.host || undefined;
      if (!routeHost) notReady = `waiting for OpenShift to assign a host to Route ${names.namespace}/${name}`;
    }
    if (type === 'k8s') {
      if (!config.postgres)
        throw new Error('ConfigMap kubeflex-config has no postgresHost: k8s control planes need the shared PostgreSQL');
      if (!notReady) plan = planK8sSecrets(names, cp.metadata.uid ?? '', config, lookup, opts, routeHost);
    } else if (type === 'k3s') plan = planK3sSecrets(names, config, lookup, opts);
    else if (type === 'vcluster') plan = planVClusterSecrets(names, lookup);
    else if (type === 'host') {
      if (!config.hostControlPlanes) {
        throw new TerminalSpecError(
          'host control planes are disabled in this hosting install (hostControlPlanes: false)',
        );
      }
      await ensureHostBinding(deps, cp, names, ns, log);
      const h = await reconcileHost(deps, cp, names, observed, log);
      requeueAfterMs = h.requeueAfterMs;
      if (h.waitingFor) notReady = `waiting for ${h.waitingFor}`;
    } else if (type === 'external') {
      const allowed = [HOSTING_NAMESPACE, ...(config.bootstrapSecretNamespaces ?? [])];
      requeueAfterMs = await reconcileExternal(deps, cp, names, observed, allowed, log);
    }
    for (const w of plan.writes) await writeSecret(deps, observed, w, cp, log);
    notReady ??= plan.waitingFor && `waiting for ${plan.waitingFor}`;

    // Asleep: Secrets are still kept current (above), but nothing is probed; its API is down on purpose.
    const sleeping =
      cp.metadata.annotations?.[SLEEP_ANNOTATION] === 'true' && !!typeContract(type)?.sleepWorkloads.length;
    if (!sleeping) {
      notReady ??= await apiNotReady(
        deps,
        type,
        names,
        secretRef.inClusterKey,
        observed.get(key(secretRef.namespace, secretRef.name))?.data,
        lookupIn(observed),
      );
      for (const use of hookUses(cp)) hooks.push(await hookState(deps, cp, names, use, hookObjs.get(use.hookName)));
    }
    const readyMessage = type === 'host' ? HOST_NO_OFF_CLUSTER_KUBECONFIG : undefined;
    const result = await writeStatus(deps, cp, { notReady, hooks, secretRef, sleeping, readyMessage }, log);
    const waitingHooks = cp.spec?.waitForPostCreateHooks && hooks.some((h) => !h.complete);
    const next = [requeueAfterMs, waitingHooks ? deps.hooksRequeueMs : undefined].filter(
      (x): x is number => x !== undefined,
    );
    return { ...result, requeueAfterMs: next.length ? Math.min(...next) : undefined, notReady: !!notReady };
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

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function readSecrets(client: KubeClient, into: Observed, keys: [string, string][]): Promise<void> {
  await Promise.all(
    keys.map(async ([ns, n]) => {
      const s = await client.get(paths.secret(ns, n));
      if (s) into.set(key(ns, n), { data: decode(s.data), resourceVersion: s.metadata.resourceVersion });
    }),
  );
}

const lookupIn = (observed: Observed) => (ns: string, n: string) => observed.get(key(ns, n))?.data;

/** Creates or updates (with optimistic concurrency) one Secret; never logs its data. */
async function writeSecret(
  deps: ReconcileDeps,
  observed: Observed,
  w: SecretWrite,
  owner?: ControlPlaneObject,
  log = deps.log,
): Promise<void> {
  const existing = observed.get(key(w.namespace, w.name));
  const body = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: w.name,
      namespace: w.namespace,
      labels: { ...MANAGED_BY, ...(owner ? { [CONTROL_PLANE_LABEL]: owner.metadata.name } : {}) },
      // Owned by the ControlPlane, so garbage collection removes it with the control plane.
      ...(owner?.metadata.uid
        ? {
            ownerReferences: [
              controlPlaneOwnerReference({ metadata: { name: owner.metadata.name, uid: owner.metadata.uid } }),
            ],
          }
        : {}),
      ...(existing ? { resourceVersion: existing.resourceVersion } : {}),
    },
    stringData: w.data,
  };
  const saved = existing
    ? await deps.hosting.request('PUT', paths.secret(w.namespace, w.name), body)
    : await deps.hosting.request('POST', paths.secrets(w.namespace), body);
  observed.set(key(w.namespace, w.name), { data: w.data, resourceVersion: saved.metadata.resourceVersion });
  log.info(existing ? 'secret updated' : 'secret created', {
    secret: `${w.namespace}/${w.name}`,
    reason: w.reason,
    keys: Object.keys(w.data).sort(),
  });
}

async function reconcileExternal(
  deps: ReconcileDeps,
  cp: ControlPlaneObject,
  names: TenantNames,
  observed: Observed,
  bootstrapNamespaces: readonly string[],
  log: Logger,
): Promise<number | undefined> {
  // Only this plane's own bootstrap Secret: the controller reads it with its own identity, so any other reference
  // would make it a confused deputy (security review C1). The CRD refuses such references too; this check also covers
  // objects stored before that rule existed. The Secret needs no label (KubeFlex's `kflex adopt` sets none): the
  // admission policy admits a reference only from an author who may read that Secret themselves, so the controller
  // reads nothing its author could not (lib/admission.ts).
  // The admin lists the namespaces where bootstrap Secrets may be (KubeStellar's chart uses its release namespace).
  const ref = cp.spec?.bootstrapSecretRef;
  const bootstrapName = names.bootstrapSecret;
  const bootstrapNs = ref?.namespace ?? HOSTING_NAMESPACE;
  if (ref && (!bootstrapNamespaces.includes(ref.namespace ?? '') || ref.name !== bootstrapName)) {
    throw new TerminalSpecError(
      `spec.bootstrapSecretRef ${ref.namespace}/${ref.name} is refused: only ${bootstrapName} in ${bootstrapNamespaces.join(' or ')} is read`,
    );
  }
  let bootstrap: SecretData | undefined;
  const s = ref ? await deps.hosting.get(paths.secret(bootstrapNs, bootstrapName)) : undefined;
  if (s) bootstrap = decode(s.data);
  const now = deps.now();
  const plan = planExternal(
    cp,
    observed.get(key(names.namespace, ADMIN_KUBECONFIG_SECRET))?.data,
    bootstrap,
    now,
    deps.tokenRenewFraction,
  );
  if (plan.action === 'error') throw new Error(plan.message);
  if (plan.action === 'keep') {
    // Secrets written before the off-cluster key existed get it (status.secretRef.key must name a present key).
    const admin = observed.get(key(names.namespace, ADMIN_KUBECONFIG_SECRET))?.data;
    if (admin && admin[ADMIN_KUBECONFIG_KEYS.key] !== admin[ADMIN_KUBECONFIG_KEYS.inClusterKey]) {
      await writeSecret(
        deps,
        observed,
        {
          namespace: names.namespace,
          name: ADMIN_KUBECONFIG_SECRET,
          data: externalAdminData(admin[ADMIN_KUBECONFIG_KEYS.inClusterKey]),
          reason: 'off-cluster key kubeconfig missing',
        },
        cp,
        log,
      );
    }
    return untilRenewal(plan.renewAt, now);
  }

  const adopted = KubeClient.fromParsed(plan.via, deps.connectTo, deps.probeTimeoutMs);
  try {
    // Create-if-absent: the ServiceAccount and its cluster-admin binding on the adopted cluster (KubeFlex's names).
    await adopted.createIfAbsent('/api/v1/namespaces/kube-system/serviceaccounts', {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'kubeflex', namespace: 'kube-system' },
    });
    await adopted.createIfAbsent(paths.clusterRoleBindings, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'kubeflex-clusterrolebinding' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'ServiceAccount', name: 'kubeflex', namespace: 'kube-system' }],
    });
    const tr = await adopted.request('POST', '/api/v1/namespaces/kube-system/serviceaccounts/kubeflex/token', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: cp.spec?.tokenExpirationSeconds ?? 31536000, audiences: [] },
    });
    const token: string = tr.status.token;
    await writeSecret(
      deps,
      observed,
      {
        namespace: names.namespace,
        name: ADMIN_KUBECONFIG_SECRET,
        data: externalAdminData(externalKubeconfig(names, plan.via, token)),
        reason: plan.reason,
      },
      cp,
      log,
    );
    if (plan.deleteBootstrap && s) {
      // Deleted only with a precondition on the UID just verified, never by name alone.
      await deps.hosting.request('DELETE', paths.secret(bootstrapNs, bootstrapName), {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        preconditions: { uid: s.metadata.uid, resourceVersion: s.metadata.resourceVersion },
      });
      log.info('bootstrap secret deleted', { secret: `${bootstrapNs}/${bootstrapName}` });
    }
    return 0;
  } finally {
    adopted.close();
  }
}

/** Why the tenant API is not ready, or undefined: workload ready and core/v1 discovery answers with the minted kubeconfig. */
async function apiNotReady(
  deps: ReconcileDeps,
  type: string,
  names: TenantNames,
  inClusterKey: string,
  secret: SecretData | undefined,
  lookup: (ns: string, n: string) => SecretData | undefined,
): Promise<string | undefined> {
  const workload = workloadFor(type);
  if (workload) {
    const path = paths.object('apps/v1', workload.kind, workload.name, names.namespace)!;
    const w = workloadReady(await deps.hosting.get(path));
    if (!w.ready) return `${workload.kind} ${names.namespace}/${workload.name}: ${w.detail}`;
  }
  if (type === 'host') return secret?.[inClusterKey] ? undefined : 'waiting for admin-kubeconfig';
  const kubeconfig = secret?.[inClusterKey];
  if (!kubeconfig) return `kubeconfig key ${inClusterKey} not written yet`;
  let client: KubeClient;
  let parsed: ParsedKubeconfig;
  try {
    parsed = parseKubeconfig(kubeconfig);
    client = KubeClient.fromParsed(parsed, deps.connectTo, deps.probeTimeoutMs);
  } catch (e) {
    return `kubeconfig key ${inClusterKey} unreadable: ${errorText(e)}`;
  }
  try {
    await client.request('GET', '/api/v1');
  } catch (e) {
    client.close();
    return `API server not answering discovery: ${errorText(e)}`;
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
    return `admin group ${ADMIN_GROUP} not bound to cluster-admin yet: ${errorText(e)}`;
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
  if (before('Ready')?.reason !== ready.reason) {
    events.push([ready.status === 'True' ? 'Normal' : 'Warning', ready.reason, ready.message || ready.reason]);
  }
  for (const [type, reason, message] of events) {
    await recordEvent(deps, cp, type, reason, message).catch((e: Error) =>
      log.debug('event not recorded', { reason, error: e.message }),
    );
  }
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

async function finalize(deps: ReconcileDeps, cp: ControlPlaneObject, log: Logger): Promise<void> {
  const name = cp.metadata.name;
  if (cp.spec?.type === 'k8s') {
    const names = tenantNames(name);
    const config = decodeHostingConfig(
      (await deps.hosting.get(paths.configMap(HOSTING_NAMESPACE, HOSTING_CONFIGMAP)))?.data,
    );
    if (config.postgres) {
      const secret = await deps.hosting.get(paths.secret(HOSTING_NAMESPACE, config.postgres.passwordSecret));
      const password = decode(secret?.data)[config.postgres.passwordKey];
      if (!password)
        throw new Error(
          `cannot drop database ${names.database}: Secret ${HOSTING_NAMESPACE}/${config.postgres.passwordSecret} has no ${config.postgres.passwordKey}`,
        );
      const caRef = config.postgres.ca;
      const ca = caRef
        ? decode((await deps.hosting.get(paths.secret(HOSTING_NAMESPACE, caRef.secret)))?.data)[caRef.key]
        : undefined;
      const r = await deps.dropDatabase(
        config.postgres,
        password,
        names.database,
        names.databaseRole,
        ca,
        tenantDatabaseMark(cp.metadata.uid ?? ''),
      );
      log.info('database dropped', { database: names.database, role: names.databaseRole, ...r });
    }
    // Only this plane's own credentials Secret (its label), deleted with a precondition on the UID just read: a
    // finalizer an author added by hand cannot make the controller delete someone else's Secret (review N7).
    const creds = await deps.hosting.get(paths.secret(HOSTING_NAMESPACE, names.hostingDatabaseSecret));
    if (creds?.metadata?.labels?.[CONTROL_PLANE_LABEL] === name) {
      await deps.hosting.deleteIfPresent(paths.secret(HOSTING_NAMESPACE, names.hostingDatabaseSecret), {
        uid: creds.metadata.uid,
      });
    } else if (creds) {
      log.warn('database credentials Secret kept: it lacks the plane label', {
        secret: `${HOSTING_NAMESPACE}/${names.hostingDatabaseSecret}`,
      });
    }
  }
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
 * What `kubectl delete cp <name>` must take with it: the `<name>-system` namespace (everything in it goes with it)
 * and the database Job in the hosting namespace. Only objects carrying this ControlPlane's label are deleted, so a
 * namespace that merely has a matching name is left alone.
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
  const job = await deps.hosting.get(provisionJobPath(names));
  if (job && owned(job)) await deps.hosting.deleteIfPresent(provisionJobPath(names));
}

const provisionJobPath = (names: TenantNames) =>
  paths.object('batch/v1', 'Job', names.provisionJob, HOSTING_NAMESPACE)!;

/** Delay until a token's renewal time (at least 1 s), or none when it has no expiry. */
const untilRenewal = (renewAt: Date | undefined, now: Date) =>
  renewAt ? Math.max(1000, renewAt.getTime() - now.getTime()) : undefined;

/** A spec the controller refuses as it is: retried only when the object changes, not with back-off. */
export class TerminalSpecError extends Error {}

/** True once the k8s tenant's database Job (`kubeflex-system/db-<name>`) has succeeded. */
async function databaseProvisioned(deps: ReconcileDeps, names: TenantNames): Promise<boolean> {
  const job = await deps.hosting.get(provisionJobPath(names));
  return (job?.status?.succeeded ?? 0) > 0 && job?.metadata?.labels?.[CONTROL_PLANE_LABEL] === names.name;
}

/**
 * host: binds ServiceAccount `<cp>-system/<cp>` to cluster-admin (ClusterRoleBinding `kubeflex:host:<cp>`, owned by
 * the ControlPlane so garbage collection removes it with the plane). The API server admitted this plane as `host`
 * only for a principal holding the `host` verb, which is what makes the binding the admin's decision. A binding of
 * that name that is not this plane's is never touched; a namespace the materializer made for another type (its
 * type annotation) gets no binding, so no workload of the materializer can run beside the token.
 */
async function ensureHostBinding(
  deps: ReconcileDeps,
  cp: ControlPlaneObject,
  names: TenantNames,
  ns: { metadata?: { annotations?: Record<string, string> } },
  log: Logger,
): Promise<void> {
  const annotations = ns.metadata?.annotations ?? {};
  if (annotations[MATERIALIZED_FOR] !== undefined) {
    if (annotations[MATERIALIZED_FOR] !== cp.metadata.uid || annotations[MATERIALIZED_TYPE] !== 'host') {
      throw new TerminalSpecError(
        `namespace ${names.namespace} was materialized for another ControlPlane or type (${MATERIALIZED_FOR}=${annotations[MATERIALIZED_FOR]}, ${MATERIALIZED_TYPE}=${annotations[MATERIALIZED_TYPE] ?? ''}): no host binding is made`,
      );
    }
  }
  const name = hostBindingName(names.name);
  const existing = await deps.hosting.get(paths.clusterRoleBinding(name));
  if (existing) {
    const owned = (existing.metadata?.ownerReferences ?? []).some(
      (r: any) => r.kind === 'ControlPlane' && r.uid === cp.metadata.uid,
    );
    if (!owned) {
      throw new TerminalSpecError(
        `ClusterRoleBinding ${name} exists and is not owned by this ControlPlane (uid ${cp.metadata.uid}): it is left untouched`,
      );
    }
    return;
  }
  await deps.hosting.createIfAbsent(paths.clusterRoleBindings, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: {
      name,
      labels: { [CONTROL_PLANE_LABEL]: names.name },
      ownerReferences: [controlPlaneOwnerReference({ metadata: { name: names.name, uid: cp.metadata.uid ?? '' } })],
    },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ kind: 'ServiceAccount', name: names.name, namespace: names.namespace }],
  });
  log.info('host binding created', { controlPlane: names.name, clusterRoleBinding: name });
}

/**
 * host: mints a TokenRequest token for ServiceAccount `<cp>` on the hosting cluster (lifetime `hostTokenSeconds`)
 * into `admin-kubeconfig`, and renews it after `tokenRenewFraction` of its lifetime. Returns when to look again.
 */
async function reconcileHost(
  deps: ReconcileDeps,
  cp: ControlPlaneObject,
  names: TenantNames,
  observed: Observed,
  log: Logger,
): Promise<{ requeueAfterMs?: number; waitingFor?: string }> {
  const ns = names.namespace;
  const now = deps.now();
  const plan = planHostToken(observed.get(key(ns, ADMIN_KUBECONFIG_SECRET))?.data, now, deps.tokenRenewFraction);
  if (plan.action === 'keep') return { requeueAfterMs: untilRenewal(plan.renewAt, now) };
  const ca = (await deps.hosting.get(paths.configMap(ns, 'kube-root-ca.crt')))?.data?.['ca.crt'];
  if (!ca) return { waitingFor: `ConfigMap ${ns}/kube-root-ca.crt` };
  let tr: any;
  try {
    tr = await deps.hosting.request('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${names.name}/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: deps.hostTokenSeconds, audiences: [] },
    });
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return { waitingFor: `ServiceAccount ${ns}/${names.name}` };
    throw e;
  }
  await writeSecret(
    deps,
    observed,
    {
      namespace: ns,
      name: ADMIN_KUBECONFIG_SECRET,
      data: { [ADMIN_KUBECONFIG_KEYS.inClusterKey]: hostKubeconfig(names, ca, tr.status.token) },
      reason: plan.reason,
    },
    cp,
    log,
  );
  return { requeueAfterMs: 0 };
}
