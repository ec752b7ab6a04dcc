// kflex's shared parts: errors, flag parsing, help text, the hosting cluster and kubeconfig helpers, output.
import * as fs from 'fs';
import * as path from 'path';
import { App } from 'cdk8s';
import { parse, stringify } from 'yaml';
import { PostCreateHookUse } from '../control-plane';
import { KubeflexConfigError } from '../errors';
import { IKubeflexHosting, KubeflexHosting } from '../hosting';
import { AWAKE_REPLICAS_ANNOTATION, decodeAwakeReplicas, encodeAwakeReplicas } from '../idle';
import { parseArgv, FlagSpec as KubeFlagSpec } from '../kube/args';
import { GROUP_PATH, KubeClient, paths, sleep } from '../kube/client';
import { contextEntries } from '../kube/kubeconfig';
import { hookFromObject } from '../materialize';
import { HOSTING_NAMESPACE, tenantNames } from '../names';
import { PostCreateHook } from '../post-create-hook';
import { KUBEFLEX_COMPATIBLE_VERSION } from '../versions';
import { ControlPlaneObject } from '../wire';
import { HOSTING_CONFIGMAP, SLEEP_ANNOTATION, typeContract } from '../wire';
import { CP_NAME_KEY, KubeconfigFile } from './kubeconfig-file';

/** Our package.json, read at run time: the nearest one above this file (build/lib/cli or lib/cli under ts-node). */
function ownPackage(): { version: string; releaseDate?: string } {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (pkg.name === 'cdk8s-kubeflex') return pkg;
    }
    if (path.dirname(dir) === dir) return { version: '0.0.0' };
  }
}
export const PACKAGE = ownPackage();
export const VERSION = PACKAGE.version;
/**
 * What `kflex version` reports: the KubeFlex release whose wire contract and CLI this kflex implements, with our own
 * version as semver build metadata (scripts such as KubeStellar's check a minimum KubeFlex version).
 */
export const KFLEX_VERSION = `${KUBEFLEX_COMPATIBLE_VERSION}+cdk8s-kubeflex.${VERSION}`;
/** KubeFlex prints its build date; ours is the package's release, fixed so output is reproducible. */
export const BUILD_DATE = PACKAGE.releaseDate ?? 'unknown';

/** A user-facing failure: printed as one line, never with a stack trace. */
export class CliError extends Error {
  public constructor(
    message: string,
    public readonly code = 1,
  ) {
    super(message);
  }
}
export const usage = (msg: string) => new CliError(msg, 2);

/** The full path of an executable on PATH, or undefined. */
export function onPath(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const f = `${dir}/${bin}`;
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Where kflex writes; tests pass their own. */
export interface Io {
  out(s: string): void;
  err(s: string): void;
  /** Answers a y/N question; undefined when there is no terminal to ask on. */
  ask?(question: string): Promise<string>;
}

// ---- Flags ---------------------------------------------------------------------------------------------------------

export type FlagSpec = KubeFlagSpec & { readonly help: string };

export const GLOBAL: FlagSpec[] = [
  {
    long: 'kubeconfig',
    short: 'k',
    kind: 'string',
    help: 'kubeconfig file (default: first $KUBECONFIG entry, then ~/.kube/config)',
  },
  { long: 'help', short: 'h', kind: 'bool', help: 'help for this command' },
  // KubeFlex's global flags, accepted so its scripts run unchanged (this kflex prints no spinner either way).
  { long: 'chatty-status', short: 's', kind: 'bool', help: 'KubeFlex compatibility: spinner output (default true)' },
  { long: 'verbosity', short: 'v', kind: 'string', help: 'log verbosity, an integer (default 0)' },
];

/** A command's flags plus the global ones, through the one argv parser (lib/kube/args.ts). */
export function parseArgs(argv: string[], specs: FlagSpec[]): { flags: Record<string, any>; args: string[] } {
  return parseArgv(argv, [...specs, ...GLOBAL]);
}

export function helpText(cmd: string, synopsis: string, description: string, specs: FlagSpec[]): string {
  const lines = [...specs, ...GLOBAL].map(
    (s) => `  ${s.short ? `-${s.short}, ` : '    '}--${s.long.padEnd(22)} ${s.help}`,
  );
  return `Usage: kflex ${cmd} ${synopsis}\n\n${description}\n\nFlags:\n${lines.join('\n')}\n`;
}

// ---- Shared steps ----------------------------------------------------------------------------------------------------

export interface Ctx {
  io: Io;
  file: string;
}

export function loadKubeconfig(ctx: Ctx): KubeconfigFile {
  try {
    return KubeconfigFile.load(ctx.file);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

export function clientFor(ctx: Ctx, context: string): KubeClient {
  try {
    return KubeClient.fromFile(ctx.file, {}, context, 15_000);
  } catch (e) {
    throw new CliError(`cannot use context ${context} of ${ctx.file}: ${(e as Error).message}`);
  }
}

/** True when `client` serves the ControlPlane API (a hosting cluster); false when it answers but does not. */
export async function servesControlPlanes(client: KubeClient): Promise<boolean> {
  const r = await client.get<any>(GROUP_PATH);
  return !!r?.resources?.some((x: any) => x.name === 'controlplanes');
}

/**
 * The hosting cluster: the current context if it serves ControlPlanes (KubeFlex PR #693), else the stored hosting
 * context. Fails with what to do when neither works.
 */
export async function hosting(ctx: Ctx, kc: KubeconfigFile): Promise<{ client: KubeClient; context: string }> {
  const tried: string[] = [];
  // A context kflex made for a control plane is a tenant, never the hosting cluster (even if it serves the CRDs).
  const current = kc.contexts.find((c) => c.name === kc.currentContext && !c.kubeflex[CP_NAME_KEY])?.name;
  for (const context of [current, kc.hostingContext]) {
    if (!context || tried.includes(context) || !kc.isUsable(context)) continue;
    tried.push(context);
    const client = clientFor(ctx, context);
    try {
      if (await servesControlPlanes(client)) return { client, context };
    } catch (e) {
      if (context === kc.hostingContext) {
        throw new CliError(
          `cannot reach the hosting cluster at ${client.server} (context ${context}): ${(e as Error).message}`,
        );
      }
    }
  }
  const stored = kc.storedHostingContext;
  throw new CliError(
    `no hosting cluster found: ${stored ? `stored hosting context "${stored}" is ${kc.isUsable(stored) ? 'not serving ControlPlanes' : 'missing from the kubeconfig'}` : 'no hosting context is stored'}` +
      ` and the current context ${kc.currentContext ? `"${kc.currentContext}" ` : ''}is not one; run \`kflex init\`, or \`kubectl config use-context <hosting>\` and \`kflex ctx --set-current-for-hosting\``,
  );
}

/**
 * The hosting install as installed, from ConfigMap kubeflex-config, so that tenants match it: imported with
 * KubeflexHosting.fromConfig (nothing of the install is synthesized again).
 */
export async function installedHosting(client: KubeClient, app: App): Promise<IKubeflexHosting> {
  const cm = await client.get<any>(paths.configMap(HOSTING_NAMESPACE, HOSTING_CONFIGMAP));
  if (!cm)
    throw new CliError(
      `ConfigMap ${HOSTING_NAMESPACE}/${HOSTING_CONFIGMAP} not found on the hosting cluster: run kflex init`,
    );
  // A KubeflexConfigError (a broken setting) is printed by kflex's dispatcher like any construct error.
  return KubeflexHosting.fromConfig(app, 'hosting', { config: cm.data ?? {} });
}

export async function hookConstructs(
  client: KubeClient,
  names: string[],
  hostingConstruct: IKubeflexHosting,
  vars: Record<string, string>,
  allowClusterScoped: boolean,
): Promise<PostCreateHookUse[]> {
  const uses: PostCreateHookUse[] = [];
  for (const name of names) {
    const pch = await client.get<any>(paths.postCreateHook(name));
    if (!pch) {
      const all = ((await client.get<any>(paths.postCreateHooks))?.items ?? []).map((h: any) => h.metadata.name);
      throw new CliError(
        `PostCreateHook "${name}" not found on the hosting cluster (available: ${all.length ? all.join(', ') : 'none'})`,
      );
    }
    let hook: PostCreateHook;
    try {
      hook = hookFromObject(hostingConstruct, pch, allowClusterScoped);
    } catch (e) {
      if (!(e instanceof KubeflexConfigError)) throw e;
      // Whoever can write PostCreateHooks must not get the operator to apply cluster-wide objects unasked (M8).
      throw new CliError(
        /is cluster-scoped/.test(e.message)
          ? `${e.message.replace(/; set allowClusterScoped: true.*$/, '')}; pass --allow-cluster-scoped to apply it`
          : e.message,
      );
    }
    uses.push({ hook, vars });
  }
  return uses;
}

/**
 * What create and adopt share before synthesizing a new control plane: the hosting cluster, a check that the name
 * is free, the hosting construct configured as installed, and the requested hooks (which must exist).
 */
export async function prepareNew(
  ctx: Ctx,
  name: string,
  hookNames: string[] | undefined,
  vars: Record<string, string>,
  allowClusterScoped = false,
) {
  const kc = loadKubeconfig(ctx);
  const { client, context } = await hosting(ctx, kc);
  if (await client.get(paths.controlPlane(name))) {
    throw new CliError(`control plane ${name} already exists on the hosting cluster (context ${context})`);
  }
  const app = new App({ outdir: '/nonexistent' });
  const h = await installedHosting(client, app);
  const uses = await hookConstructs(client, hookNames ?? [], h, vars, allowClusterScoped);
  return { kc, client, context, app, h, uses };
}

export function parseSets(values: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0) throw usage(`--set ${v}: expected name=value`);
    out[v.slice(0, i)] = v.slice(i + 1);
  }
  return out;
}

export const condition = (cp: ControlPlaneObject | undefined, type: string) =>
  (cp?.status?.conditions ?? []).find((c: any) => c.type === type);

export async function waitReady(ctx: Ctx, client: KubeClient, name: string, timeoutMs: number): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  ctx.io.err(`Waiting for control plane ${name} to be Ready (timeout ${timeoutMs / 1000}s)\n`);
  let last = '';
  for (;;) {
    const cp = await client.get<ControlPlaneObject>(paths.controlPlane(name));
    if (!cp) throw new CliError(`control plane ${name} disappeared while waiting for it`);
    const ready = condition(cp, 'Ready');
    const synced = condition(cp, 'Synced');
    if (ready?.status === 'True' && cp.status?.observedGeneration === cp.metadata.generation) return cp;
    const line = `  Synced=${synced?.status ?? 'Unknown'} Ready=${ready?.status ?? 'Unknown'}${ready?.reason ? ` (${ready.reason}${ready.message ? `: ${ready.message}` : ''})` : ''}${synced?.status === 'False' ? ` ${synced.message}` : ''}`;
    if (line !== last) ctx.io.err(`${line}\n`);
    last = line;
    if (Date.now() > deadline) {
      throw new CliError(
        `timed out after ${timeoutMs / 1000}s waiting for control plane ${name} to be Ready (last:${line.trimStart() ? ` ${line.trim()}` : ' no status'})`,
      );
    }
    await sleep(Math.min(1000, Math.max(50, deadline - Date.now())));
  }
}

export async function sleepTarget(ctx: Ctx, args: string[]) {
  if (args.length !== 1)
    throw usage(args.length ? `unexpected argument ${args[1]}` : 'the control plane name is required');
  const name = args[0];
  const kc = loadKubeconfig(ctx);
  const { client, context } = await hosting(ctx, kc);
  const cp = await client.get<ControlPlaneObject>(paths.controlPlane(name));
  if (!cp) throw new CliError(`control plane ${name} not found on the hosting cluster (context ${context})`);
  if (!typeContract(cp.spec?.type)?.sleepWorkloads.length)
    throw new CliError(
      `control plane ${name} is of type ${cp.spec?.type}: only k8s, k3s and vcluster planes can sleep`,
    );
  return { client, name, cp };
}

/**
 * Scales the type's workloads through their scale subresource (no field-ownership fight with whoever applied them)
 * and sets or removes the sleeping annotation. Asleep, the workloads go first; awake, the annotation goes last, so
 * the controller never probes an API server that is being stopped.
 */
export async function setSleeping(
  client: KubeClient,
  name: string,
  cp: ControlPlaneObject,
  sleeping: boolean,
): Promise<void> {
  const ns = tenantNames(name).namespace;
  // Awake: the replicas recorded when it went to sleep (an HA plane gets its replicas back), else one.
  const recorded = decodeAwakeReplicas(cp.metadata.annotations?.[AWAKE_REPLICAS_ANNOTATION]);
  const scale = async (replicas?: number) => {
    for (const w of typeContract(cp.spec?.type)?.sleepWorkloads ?? []) {
      const path = `${paths.object('apps/v1', w.kind, w.name, ns)!}/scale`;
      const want = replicas ?? recorded.get(`${w.kind}/${w.name}`) ?? 1;
      await client.request('PATCH', path, { spec: { replicas: want } }, 'application/merge-patch+json');
    }
  };
  const annotate = (annotations: Record<string, string | null>) =>
    client.request('PATCH', paths.controlPlane(name), { metadata: { annotations } }, 'application/merge-patch+json');
  if (sleeping) {
    // What to restore on wake, whoever wakes it (kflex wake, or the activator through the controller).
    const record: { kind: string; name: string; replicas: number }[] = [];
    for (const w of typeContract(cp.spec?.type)?.sleepWorkloads ?? []) {
      const obj = await client.get<any>(paths.object('apps/v1', w.kind, w.name, ns)!);
      if (obj?.spec?.replicas) record.push({ ...w, replicas: obj.spec.replicas });
    }
    await client.request(
      'PATCH',
      paths.controlPlane(name),
      {
        metadata: {
          annotations: {
            [SLEEP_ANNOTATION]: 'true',
            ...(record.length ? { [AWAKE_REPLICAS_ANNOTATION]: encodeAwakeReplicas(record) } : {}),
          },
        },
      },
      'application/merge-patch+json',
    );
    await scale(0);
  } else {
    // Awake first: while the annotation says asleep, the controller keeps the workloads at zero. It restores them
    // too (from the record), so both writers agree.
    await annotate({ [SLEEP_ANNOTATION]: null });
    await scale();
    await annotate({ [AWAKE_REPLICAS_ANNOTATION]: null });
  }
}

/** Fetches the control plane's off-cluster kubeconfig (every data value non-empty, as KubeFlex waits for). */
export async function fetchKubeconfig(client: KubeClient, cp: ControlPlaneObject): Promise<string | undefined> {
  const ref = cp.status?.secretRef;
  if (!ref?.name || !ref.key) return undefined;
  // status is written by whoever may write controlplanes/status: only the type's own Secret in the plane's own
  // namespace is read with the operator's credentials, never one that status points elsewhere (review N8).
  const contract = typeContract(cp.spec?.type);
  const namespace = tenantNames(cp.metadata.name).namespace;
  if (
    !contract ||
    ref.namespace !== namespace ||
    ref.name !== contract.kubeconfig.name ||
    ref.key !== contract.kubeconfig.key
  ) {
    throw new CliError(
      `ControlPlane ${cp.metadata.name}: status.secretRef ${ref.namespace}/${ref.name} key ${ref.key} is not the kubeconfig Secret of its type (${contract ? `${namespace}/${contract.kubeconfig.name} key ${contract.kubeconfig.key}` : `unknown type ${cp.spec?.type}`}); not read`,
    );
  }
  const s = await client.get<any>(paths.secret(ref.namespace, ref.name));
  const data = s?.data?.[ref.key];
  if (!data) throw new CliError(`Secret ${ref.namespace}/${ref.name} has no key ${ref.key} yet`);
  return Buffer.from(data, 'base64').toString('utf8');
}

export function age(ts: string | undefined): string {
  if (!ts) return '<unknown>';
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] + 3)))
          .join('')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

// ---- Commands --------------------------------------------------------------------------------------------------------

export type Command = {
  synopsis: string;
  description: string;
  flags: FlagSpec[];
  run: (ctx: Ctx, flags: Record<string, any>, args: string[]) => Promise<void>;
};

export const DELETE_TIMEOUT = '5m';
export const TIMEOUT: FlagSpec = {
  long: 'timeout',
  kind: 'string',
  help: 'how long to wait (e.g. 90s, 10m; default 10m)',
};
export const HOOK: FlagSpec = {
  long: 'postcreate-hook',
  short: 'p',
  kind: 'list',
  help: 'PostCreateHook to run (repeatable; must exist)',
};
export const SET: FlagSpec = { long: 'set', short: 'e', kind: 'list', help: 'hook variable name=value (repeatable)' };
export const ALLOW_CLUSTER_SCOPED: FlagSpec = {
  long: 'allow-cluster-scoped',
  kind: 'bool',
  help: 'apply cluster-scoped objects of the hooks (ClusterRoleBinding, CRDs...) to the hosting cluster',
};

/** KubeFlex's URL-override rules, plus its quirk fixed: loopback hosts are refused with a port too. */
export function checkUrlOverride(value: string): void {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw usage(`--url-override ${value} is not a URL`);
  }
  const bad = (why: string) => usage(`--url-override ${value}: ${why}`);
  // KubeFlex also accepts http; the adopted cluster's credential would then travel in clear (review L6).
  if (u.protocol !== 'https:') throw bad('the scheme must be https');
  if (!u.hostname) throw bad('the host is empty');
  if (u.username || u.password) throw bad('credentials in the URL are not allowed');
  if (u.search || u.hash) throw bad('a query or fragment is not allowed');
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host === '::1' || /^127\./.test(host)) {
    throw bad('a loopback address is not reachable from the hosting cluster; use an address the cluster can reach');
  }
}

/** The chosen context of a kubeconfig, alone, with embedded credentials and the user renamed to the context name. */
export function trimmedKubeconfig(
  file: string,
  context: string | undefined,
  urlOverride: string | undefined,
): { text: string; server: string } {
  let doc: any;
  try {
    doc = parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CliError(`cannot read the kubeconfig to adopt (${file}): ${(e as Error).message.split('\n')[0]}`);
  }
  const e = contextEntries(doc, context);
  const name = context ?? doc?.['current-context'];
  const ctx = e.contextEntry;
  if (!ctx) throw new CliError(`context ${name ?? '(none)'} not found in ${file}`);
  const cluster = { ...(e.cluster ?? {}) };
  const user = { ...(e.user ?? {}) };
  if (!cluster.server) throw new CliError(`context ${name} in ${file} has no cluster server`);
  // Inline file references: the controller reads this from a Secret, not from this machine.
  const inline = (obj: any, fileKey: string, dataKey: string) => {
    if (obj[fileKey]) {
      obj[dataKey] = fs.readFileSync(obj[fileKey]).toString('base64');
      delete obj[fileKey];
    }
  };
  inline(cluster, 'certificate-authority', 'certificate-authority-data');
  inline(user, 'client-certificate', 'client-certificate-data');
  inline(user, 'client-key', 'client-key-data');
  if (user.exec || user['auth-provider'])
    throw new CliError(
      `context ${name} authenticates with a plugin, which the controller cannot run; use a token or client certificate`,
    );
  if (urlOverride) cluster.server = urlOverride;
  const text = stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: ctx.context.cluster, cluster }],
    users: [{ name, user }],
    contexts: [{ name, context: { ...ctx.context, user: name } }],
    'current-context': name,
  });
  return { text, server: cluster.server };
}
