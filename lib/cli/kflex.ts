#!/usr/bin/env node
// kflex: KubeFlex's command line on our constructs. Objects are synthesized in memory with the same constructs a
// platform team uses and server-side applied with one field manager; the runtime controller does the rest.
import * as fs from 'fs';
import * as path from 'path';
import { App, Chart } from 'cdk8s';
import { parse, stringify } from 'yaml';
import { ControlPlaneBase, PostCreateHookUse } from '../control-plane';
import { parseDuration } from '../controller/args';
import { ApiError, GROUP_PATH, KubeClient, paths, sleep } from '../controller/kube';
import { KubeflexConfigError } from '../errors';
import { ExternalControlPlane } from '../external-control-plane';
import { HostControlPlane } from '../host-control-plane';
import { IKubeflexHosting, KubeflexHosting } from '../hosting';
import { K3sControlPlane } from '../k3s-control-plane';
import { K8sControlPlane } from '../k8s-control-plane';
import { hookFromObject } from '../materialize';
import { CONTROL_PLANE_LABEL, HOSTING_NAMESPACE } from '../names';
import { PostCreateHook } from '../post-create-hook';
import { VClusterControlPlane } from '../vcluster-control-plane';
import { DEFAULT_KUBERNETES_MINOR, KUBEFLEX_COMPATIBLE_VERSION, KUBERNETES_RELEASES } from '../versions';
import { ADMIN_KUBECONFIG_KEYS, HOSTING_CONFIGMAP, SLEEP_ANNOTATION, SLEEP_WORKLOADS } from '../wire';
import { applyObjects, deleteByLabel, NamespaceTakenError } from './apply';
import { CP_NAME_KEY, KubeconfigFile, KubeconfigFileError, kubeconfigPath } from './kubeconfig-file';

// Read at run time from the installed package (build/lib/cli -> the package root), not bundled at compile time.
const PACKAGE: { version: string; releaseDate?: string } = JSON.parse(
  fs.readFileSync(path.join(__dirname, '../../../package.json'), 'utf8'),
);
const VERSION = PACKAGE.version;
/**
 * What `kflex version` reports: the KubeFlex release whose wire contract and CLI this kflex implements, with our own
 * version as semver build metadata (scripts such as KubeStellar's check a minimum KubeFlex version).
 */
export const KFLEX_VERSION = `${KUBEFLEX_COMPATIBLE_VERSION}+cdk8s-kubeflex.${VERSION}`;
/** KubeFlex prints its build date; ours is the package's release, fixed so output is reproducible. */
const BUILD_DATE = PACKAGE.releaseDate ?? 'unknown';

/** A user-facing failure: printed as one line, never with a stack trace. */
export class CliError extends Error {
  public constructor(
    message: string,
    public readonly code = 1,
  ) {
    super(message);
  }
}
const usage = (msg: string) => new CliError(msg, 2);

/** The full path of an executable on PATH, or undefined. */
function onPath(bin: string): string | undefined {
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

interface FlagSpec {
  readonly long: string;
  readonly short?: string;
  readonly kind: 'string' | 'bool' | 'list';
  readonly help: string;
}

const GLOBAL: FlagSpec[] = [
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

function parseArgs(argv: string[], specs: FlagSpec[]): { flags: Record<string, any>; args: string[] } {
  const all = [...specs, ...GLOBAL];
  const flags: Record<string, any> = {};
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      args.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const key = eq < 0 ? a : a.slice(0, eq);
    const spec = key.startsWith('--')
      ? all.find((s) => s.long === key.slice(2))
      : all.find((s) => s.short === key.slice(1));
    if (!spec) throw usage(`unknown flag ${key}`);
    if (spec.kind === 'bool') {
      flags[spec.long] = eq < 0 ? true : a.slice(eq + 1) !== 'false';
      continue;
    }
    let value: string;
    if (eq >= 0) value = a.slice(eq + 1);
    else if (i + 1 < argv.length) value = argv[++i];
    else throw usage(`flag ${key} needs a value`);
    if (spec.kind === 'list') flags[spec.long] = [...(flags[spec.long] ?? []), value];
    else flags[spec.long] = value;
  }
  return { flags, args };
}

function helpText(cmd: string, synopsis: string, description: string, specs: FlagSpec[]): string {
  const lines = [...specs, ...GLOBAL].map(
    (s) => `  ${s.short ? `-${s.short}, ` : '    '}--${s.long.padEnd(22)} ${s.help}`,
  );
  return `Usage: kflex ${cmd} ${synopsis}\n\n${description}\n\nFlags:\n${lines.join('\n')}\n`;
}

// ---- Shared steps ----------------------------------------------------------------------------------------------------

interface Ctx {
  io: Io;
  file: string;
}

function loadKubeconfig(ctx: Ctx): KubeconfigFile {
  try {
    return KubeconfigFile.load(ctx.file);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

function clientFor(ctx: Ctx, context: string): KubeClient {
  try {
    return KubeClient.fromFile(ctx.file, {}, context, 15_000);
  } catch (e) {
    throw new CliError(`cannot use context ${context} of ${ctx.file}: ${(e as Error).message}`);
  }
}

/** True when `client` serves the ControlPlane API (a hosting cluster); false when it answers but does not. */
async function servesControlPlanes(client: KubeClient): Promise<boolean> {
  const r = await client.get<any>(GROUP_PATH);
  return !!r?.resources?.some((x: any) => x.name === 'controlplanes');
}

/**
 * The hosting cluster: the current context if it serves ControlPlanes (KubeFlex PR #693), else the stored hosting
 * context. Fails with what to do when neither works.
 */
async function hosting(ctx: Ctx, kc: KubeconfigFile): Promise<{ client: KubeClient; context: string }> {
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
async function installedHosting(client: KubeClient, app: App): Promise<IKubeflexHosting> {
  const cm = await client.get<any>(paths.configMap(HOSTING_NAMESPACE, HOSTING_CONFIGMAP));
  if (!cm)
    throw new CliError(
      `ConfigMap ${HOSTING_NAMESPACE}/${HOSTING_CONFIGMAP} not found on the hosting cluster: run kflex init`,
    );
  try {
    return KubeflexHosting.fromConfig(app, 'hosting', { config: cm.data ?? {} });
  } catch (e) {
    if (e instanceof KubeflexConfigError) throw new CliError(e.message);
    throw e;
  }
}

/** Synthesizes one control-plane chart with our constructs; construct validation errors become CLI errors. */
function synthControlPlane(build: (app: App) => ControlPlaneBase): any[] {
  try {
    const app = new App({ outdir: '/nonexistent' });
    const chart: Chart = build(app);
    return chart.toJson();
  } catch (e) {
    if (e instanceof KubeflexConfigError) throw new CliError(e.message);
    throw e;
  }
}

async function hookConstructs(
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
async function prepareNew(
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

function parseSets(values: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0) throw usage(`--set ${v}: expected name=value`);
    out[v.slice(0, i)] = v.slice(i + 1);
  }
  return out;
}

const condition = (cp: any, type: string) => (cp?.status?.conditions ?? []).find((c: any) => c.type === type);

async function waitReady(ctx: Ctx, client: KubeClient, name: string, timeoutMs: number): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  ctx.io.err(`Waiting for control plane ${name} to be Ready (timeout ${timeoutMs / 1000}s)\n`);
  let last = '';
  for (;;) {
    const cp = await client.get<any>(paths.controlPlane(name));
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

async function sleepTarget(ctx: Ctx, args: string[]) {
  if (args.length !== 1)
    throw usage(args.length ? `unexpected argument ${args[1]}` : 'the control plane name is required');
  const name = args[0];
  const kc = loadKubeconfig(ctx);
  const { client, context } = await hosting(ctx, kc);
  const cp = await client.get<any>(paths.controlPlane(name));
  if (!cp) throw new CliError(`control plane ${name} not found on the hosting cluster (context ${context})`);
  if (!SLEEP_WORKLOADS[cp.spec?.type])
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
async function setSleeping(client: KubeClient, name: string, cp: any, sleeping: boolean): Promise<void> {
  const ns = `${name}-system`;
  const scale = async (replicas: number) => {
    for (const w of SLEEP_WORKLOADS[cp.spec.type]) {
      const path = `${paths.object('apps/v1', w.kind, w.name, ns)!}/scale`;
      await client.request('PATCH', path, { spec: { replicas } }, 'application/merge-patch+json');
    }
  };
  const annotate = (value: string | null) =>
    client.request(
      'PATCH',
      paths.controlPlane(name),
      { metadata: { annotations: { [SLEEP_ANNOTATION]: value } } },
      'application/merge-patch+json',
    );
  if (sleeping) {
    await annotate('true');
    await scale(0);
  } else {
    await scale(1);
    await annotate(null);
  }
}

/** Fetches the control plane's off-cluster kubeconfig (every data value non-empty, as KubeFlex waits for). */
async function fetchKubeconfig(client: KubeClient, cp: any): Promise<string | undefined> {
  const ref = cp.status?.secretRef;
  if (!ref?.name || !ref.key) return undefined;
  const s = await client.get<any>(paths.secret(ref.namespace, ref.name));
  const data = s?.data?.[ref.key];
  if (!data) throw new CliError(`Secret ${ref.namespace}/${ref.name} has no key ${ref.key} yet`);
  return Buffer.from(data, 'base64').toString('utf8');
}

function age(ts: string | undefined): string {
  if (!ts) return '<unknown>';
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function table(rows: string[][]): string {
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

type Command = {
  synopsis: string;
  description: string;
  flags: FlagSpec[];
  run: (ctx: Ctx, flags: Record<string, any>, args: string[]) => Promise<void>;
};

const DELETE_TIMEOUT = '5m';
const TIMEOUT: FlagSpec = { long: 'timeout', kind: 'string', help: 'how long to wait (e.g. 90s, 10m; default 10m)' };
const HOOK: FlagSpec = {
  long: 'postcreate-hook',
  short: 'p',
  kind: 'list',
  help: 'PostCreateHook to run (repeatable; must exist)',
};
const SET: FlagSpec = { long: 'set', short: 'e', kind: 'list', help: 'hook variable name=value (repeatable)' };
const ALLOW_CLUSTER_SCOPED: FlagSpec = {
  long: 'allow-cluster-scoped',
  kind: 'bool',
  help: 'apply cluster-scoped objects of the hooks (ClusterRoleBinding, CRDs...) to the hosting cluster',
};

const COMMANDS: Record<string, Command> = {
  init: {
    synopsis: '[cluster-name] [flags]',
    description:
      'Installs the hosting components (CRDs, kubeflex-config, runtime controller, PostgreSQL) into the current\ncontext by server-side apply, and records that context as the hosting context.',
    flags: [
      { long: 'domain', short: 'd', kind: 'string', help: 'domain of control-plane host names (default localtest.me)' },
      { long: 'external-port', short: 'p', kind: 'string', help: 'external port of the ingress (default 9443)' },
      {
        long: 'host-container-name',
        short: 'n',
        kind: 'string',
        help: 'host container name added to certificate SANs',
      },
      { long: 'ingress-class', kind: 'string', help: 'ingress class with SSL passthrough (default nginx)' },
      { long: 'controller-image', kind: 'string', help: 'runtime controller image' },
      { long: 'no-postgres', kind: 'bool', help: 'do not install PostgreSQL (no k8s-type control planes)' },
      { long: 'create-kind', short: 'c', kind: 'bool', help: 'not supported: create the cluster first' },
      { long: 'dry-run', kind: 'bool', help: 'print the manifests instead of applying them' },
    ],
    run: async (ctx, flags, args) => {
      if (args.length > 1) throw usage(`unexpected argument ${args[1]}`);
      if (flags['create-kind']) {
        // KubeFlex creates a kind cluster named by the argument (default kind-kubeflex); this kflex does not.
        const clusterName = args[0] ?? 'kind-kubeflex';
        const kind = onPath('kind');
        throw new CliError(
          `--create-kind: ${kind ? `found ${kind}, but this kflex does not create kind clusters` : 'kind cannot run here: no kind binary on PATH (it also needs a container engine such as Docker)'}; ` +
            `create the cluster first (e.g. kind create cluster --name ${clusterName}), then run kflex init in its context`,
        );
      }
      const kc = loadKubeconfig(ctx);
      const context = kc.currentContext;
      if (!context || !kc.isUsable(context))
        throw new CliError(
          `the current context of ${ctx.file} is not set or has no server: choose the hosting cluster with kubectl config use-context`,
        );
      const client = clientFor(ctx, context);
      let isOpenShift = false;
      try {
        isOpenShift = !!(await client.get('/apis/project.openshift.io/v1'));
      } catch (e) {
        throw new CliError(
          `cannot reach the cluster of context ${context} at ${client.server}: ${(e as Error).message}`,
        );
      }
      let objects: any[];
      try {
        const app = new App({ outdir: '/nonexistent' });
        const port = flags['external-port'];
        if (port !== undefined && !/^\d+$/.test(port)) throw usage(`--external-port ${port} is not a port number`);
        const h = new KubeflexHosting(app, 'hosting', {
          domain: flags.domain,
          externalPort: port === undefined ? undefined : Number(port),
          hostContainer: flags['host-container-name'],
          ingressClassName: flags['ingress-class'],
          controllerImage: flags['controller-image'],
          installPostgres: flags['no-postgres'] ? false : undefined,
          isOpenShift,
        });
        objects = h.toJson();
      } catch (e) {
        if (e instanceof KubeflexConfigError) throw new CliError(e.message);
        throw e;
      }
      if (flags['dry-run']) {
        ctx.io.out(objects.map((o) => stringify(o)).join('---\n'));
        return;
      }
      await applyObjects(client, objects);
      // Established CRDs reach discovery a moment later; later commands find the hosting cluster through it.
      for (let i = 0; i < 100 && !(await servesControlPlanes(client)); i++) await sleep(200);
      kc.setHostingContext(context);
      kc.save();
      ctx.io.out(
        `Hosting components applied to context ${context} (${client.server})${isOpenShift ? ', OpenShift detected' : ''}; ${context} is the hosting context.\n`,
      );
    },
  },

  create: {
    synopsis: '<name> [flags]',
    description:
      'Creates a control plane, waits until it is Ready, merges its kubeconfig (context <name>) and switches to it.',
    flags: [
      { long: 'type', short: 't', kind: 'string', help: 'k8s, k3s, vcluster or host (default k8s)' },
      HOOK,
      SET,
      ALLOW_CLUSTER_SCOPED,
      TIMEOUT,
      { long: 'dry-run', kind: 'bool', help: 'print the manifests instead of applying them' },
      {
        long: 'kube-version',
        kind: 'string',
        help: `Kubernetes minor of a k8s control plane (${Object.keys(KUBERNETES_RELEASES).join(', ')}; default ${DEFAULT_KUBERNETES_MINOR})`,
      },
      {
        long: 'replicas',
        kind: 'string',
        help: 'API server and controller-manager replicas of a k8s control plane (1-5)',
      },
      {
        long: 'backend-type',
        short: 'b',
        kind: 'string',
        help: 'accepted for KubeFlex compatibility; only "shared" exists',
      },
    ],
    run: async (ctx, flags, args) => {
      if (args.length !== 1)
        throw usage(args.length ? `unexpected argument ${args[1]}` : 'the control plane name is required');
      const name = args[0];
      const type = (flags.type as string | undefined) ?? 'k8s';
      const types = ['k8s', 'k3s', 'vcluster', 'host'];
      if (type === 'external') throw usage('--type external: use kflex adopt to bring an existing cluster in');
      if (!types.includes(type)) throw usage(`--type ${type} is not a control-plane type (one of ${types.join(', ')})`);
      if (flags['backend-type'] && flags['backend-type'] !== 'shared')
        throw usage(`--backend-type ${flags['backend-type']}: only "shared" is supported`);
      const timeout = parseDuration('timeout', flags.timeout ?? '10m');
      const vars = parseSets(flags.set);
      const { kc, client, context, app, h, uses } = await prepareNew(
        ctx,
        name,
        flags['postcreate-hook'],
        vars,
        flags['allow-cluster-scoped'] === true,
      );
      const make = {
        k8s: K8sControlPlane,
        k3s: K3sControlPlane,
        vcluster: VClusterControlPlane,
        host: HostControlPlane,
      }[type as 'k8s'];
      const k8sOnly: Record<string, unknown> = {};
      if (flags['kube-version'] !== undefined) k8sOnly.kubernetesVersion = flags['kube-version'];
      if (flags.replicas !== undefined) {
        if (!/^\d+$/.test(flags.replicas)) throw usage(`--replicas ${flags.replicas}: must be a whole number`);
        k8sOnly.replicas = Number(flags.replicas);
      }
      if (type !== 'k8s' && Object.keys(k8sOnly).length)
        throw usage(`--kube-version and --replicas apply to --type k8s only, not ${type}`);
      const objects = synthControlPlane(() => new make(app, name, { hosting: h, postCreateHooks: uses, ...k8sOnly }));
      if (flags['dry-run']) {
        ctx.io.out(objects.map((o) => stringify(o)).join('---\n'));
        return;
      }
      await applyObjects(client, objects);
      ctx.io.err(`control plane ${name} (${type}) applied to context ${context}\n`);
      const cp = await waitReady(ctx, client, name, timeout);
      if (!kc.hostingContext) kc.setHostingContext(context);
      if (type === 'host') {
        kc.currentContext = context;
        kc.save();
        ctx.io.out(
          `control plane ${name} is Ready; it is the hosting cluster itself, so the current context stays ${context}\n`,
        );
        return;
      }
      const minted = await fetchKubeconfig(client, cp);
      if (!minted) throw new CliError(`control plane ${name} is Ready but its status has no kubeconfig secretRef`);
      kc.mergeControlPlane(name, minted);
      kc.currentContext = name;
      kc.save();
      ctx.io.out(`control plane ${name} is Ready; current context is now ${name}\n`);
    },
  },

  delete: {
    synopsis: '<name> [flags]',
    description:
      'Deletes a control plane and every object applied for it (found by label, so nothing is orphaned), waits until\nits namespace is gone, removes its local context and switches to the hosting context.',
    flags: [{ ...TIMEOUT, help: `how long to wait (e.g. 90s, 10m; default ${DELETE_TIMEOUT})` }],
    run: async (ctx, flags, args) => {
      if (args.length !== 1)
        throw usage(args.length ? `unexpected argument ${args[1]}` : 'the control plane name is required');
      const name = args[0];
      const timeout = parseDuration('timeout', flags.timeout ?? DELETE_TIMEOUT);
      const kc = loadKubeconfig(ctx);
      const { client, context } = await hosting(ctx, kc);
      const cp = await client.get<any>(paths.controlPlane(name));
      if (!cp) throw new CliError(`control plane ${name} not found on the hosting cluster (context ${context})`);
      await client.deleteIfPresent(`${paths.controlPlane(name)}?propagationPolicy=Background`);
      const deleted = await deleteByLabel(client, CONTROL_PLANE_LABEL, name);
      ctx.io.err(`deleting control plane ${name}${deleted.length ? ` and ${deleted.join(', ')}` : ''}\n`);
      const ns = `${name}-system`;
      const deadline = Date.now() + timeout;
      for (;;) {
        const [left, nsLeft] = await Promise.all([
          client.get<any>(paths.controlPlane(name)),
          client.get<any>(paths.namespace(ns)),
        ]);
        if (!left && !nsLeft) break;
        if (Date.now() > deadline) {
          // KubeFlex #461: say what is stuck instead of hanging.
          const why = left
            ? `ControlPlane ${name} still has finalizers ${JSON.stringify(left.metadata.finalizers ?? [])} (is the kubeflex controller running?)`
            : `namespace ${ns} is ${nsLeft.status?.phase ?? 'present'}${(nsLeft.status?.conditions ?? [])
                .filter((c: any) => c.status === 'True')
                .map((c: any) => `; ${c.type}: ${c.message}`)
                .join('')}`;
          throw new CliError(`timed out after ${timeout / 1000}s deleting control plane ${name}: ${why}`);
        }
        await sleep(500);
      }
      kc.removeControlPlane(name);
      kc.currentContext = context;
      kc.save();
      ctx.io.out(`control plane ${name} deleted; current context is ${context}\n`);
    },
  },

  list: {
    synopsis: '',
    description: 'Lists the control planes of the hosting cluster.',
    flags: [],
    run: async (ctx, _flags, args) => {
      if (args.length) throw usage(`unexpected argument ${args[0]}`);
      const kc = loadKubeconfig(ctx);
      const { client } = await hosting(ctx, kc);
      const items = ((await client.request<any>('GET', paths.controlPlanes)).items ?? []).sort((a: any, b: any) =>
        a.metadata.name.localeCompare(b.metadata.name),
      );
      if (!items.length) {
        ctx.io.out('No control planes found.\n');
        return;
      }
      const rows = [['NAME', 'SYNCED', 'READY', 'TYPE', 'AGE']];
      for (const cp of items) {
        rows.push([
          cp.metadata.name,
          condition(cp, 'Synced')?.status ?? 'Unknown',
          // A sleeping plane is not Ready by design: say so instead of a bare False.
          condition(cp, 'Ready')?.reason === 'Sleeping' ? 'Sleeping' : (condition(cp, 'Ready')?.status ?? 'Unknown'),
          cp.spec?.type ?? '',
          age(cp.metadata.creationTimestamp),
        ]);
      }
      ctx.io.out(table(rows));
    },
  },

  sleep: {
    synopsis: '<name>',
    description:
      'Puts a control plane to sleep: scales its workloads to zero (its data stays in PostgreSQL or its volume) and\nmarks it, so the controller reports Ready=False/Sleeping. k8s, k3s and vcluster planes.',
    flags: [],
    run: async (ctx, _flags, args) => {
      const { client, name, cp } = await sleepTarget(ctx, args);
      await setSleeping(client, name, cp, true);
      ctx.io.out(`control plane ${name} is asleep\n`);
    },
  },

  wake: {
    synopsis: '<name> [flags]',
    description: 'Wakes a sleeping control plane: scales its workloads back to one and waits until it is Ready.',
    flags: [TIMEOUT],
    run: async (ctx, flags, args) => {
      const timeout = parseDuration('timeout', flags.timeout ?? '10m');
      const { client, name, cp } = await sleepTarget(ctx, args);
      await setSleeping(client, name, cp, false);
      await waitReady(ctx, client, name, timeout);
      ctx.io.out(`control plane ${name} is awake and Ready\n`);
    },
  },

  ctx: {
    synopsis: '[name | get | list | rename OLD NEW | delete CONTEXT] [flags]',
    description:
      'Switches contexts. Without a name: to the hosting context (or, with -c, records the current context as the\nhosting one). With a name: to that control plane, fetching its kubeconfig from the hosting cluster if needed.',
    flags: [
      {
        long: 'overwrite-existing-context',
        short: 'o',
        kind: 'bool',
        help: 'fetch the kubeconfig again even if the context exists',
      },
      {
        long: 'set-current-for-hosting',
        short: 'c',
        kind: 'bool',
        help: 'record the current context as the hosting context',
      },
      { long: 'switch', short: 'S', kind: 'bool', help: 'rename: switch to the new name' },
      { long: 'force', short: 'f', kind: 'bool', help: 'delete: do not ask for contexts kflex does not manage' },
    ],
    run: async (ctx, flags, args) => {
      const kc = loadKubeconfig(ctx);
      const [sub, ...rest] = args;
      if (sub === 'get') {
        ctx.io.out(`${kc.currentContext ?? ''}\n`);
        return;
      }
      if (sub === 'list') {
        const rows = [['CONTEXT', 'MANAGED BY KFLEX', 'CONTROLPLANE']];
        for (const c of kc.contexts) {
          const cp = c.kubeflex[CP_NAME_KEY];
          rows.push([
            `${c.name === kc.currentContext ? '*' : ' '} ${c.name}`,
            cp ? 'yes' : c.kubeflex['is-hosting-cluster-ctx'] ? 'hosting' : 'no',
            cp ?? '',
          ]);
        }
        ctx.io.out(table(rows));
        return;
      }
      if (sub === 'rename') {
        if (rest.length !== 2) throw usage('ctx rename needs OLD and NEW');
        try {
          kc.rename(rest[0], rest[1]);
        } catch (e) {
          if (e instanceof KubeconfigFileError) throw new CliError(e.message);
          throw e;
        }
        if (flags.switch) kc.currentContext = rest[1];
        else if (kc.currentContext === rest[1] && kc.hostingContext && kc.hostingContext !== rest[1])
          kc.currentContext = kc.hostingContext;
        kc.save();
        ctx.io.out(`context ${rest[0]} renamed to ${rest[1]}; current context is ${kc.currentContext}\n`);
        return;
      }
      if (sub === 'delete') {
        if (rest.length !== 1) throw usage('ctx delete needs a context name');
        const c = kc.contexts.find((x) => x.name === rest[0]);
        if (!c) throw new CliError(`context ${rest[0]} not found in ${ctx.file}`);
        if (!c.kubeflex[CP_NAME_KEY] && !flags.force) {
          const answer = ctx.io.ask
            ? await ctx.io.ask(`context ${rest[0]} is not managed by kflex; delete it? [y/N] `)
            : undefined;
          if (answer === undefined)
            throw new CliError(`context ${rest[0]} is not managed by kflex; use --force to delete it anyway`);
          if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('not deleted');
        }
        const wasCurrent = kc.currentContext === rest[0];
        kc.removeControlPlane(rest[0]);
        if (wasCurrent) kc.currentContext = kc.hostingContext;
        kc.save();
        ctx.io.out(
          `context ${rest[0]} deleted${wasCurrent ? `; current context is ${kc.currentContext ?? 'unset'}` : ''}\n`,
        );
        return;
      }
      if (rest.length) throw usage(`unexpected argument ${rest[0]}`);
      if (!sub) {
        if (flags['set-current-for-hosting']) {
          const cur = kc.currentContext;
          if (!cur || !kc.isUsable(cur))
            throw new CliError('there is no usable current context to record as the hosting context');
          kc.setHostingContext(cur);
          kc.save();
          ctx.io.out(`hosting context is now ${cur}\n`);
          return;
        }
        const { context } = await hosting(ctx, kc);
        if (!kc.hostingContext) kc.setHostingContext(context);
        kc.currentContext = context;
        kc.save();
        ctx.io.out(`switched to hosting context ${context}\n`);
        return;
      }
      const name = sub;
      if (flags['overwrite-existing-context']) kc.removeControlPlane(name);
      if (kc.hasContext(name)) {
        kc.currentContext = name;
        kc.save();
        ctx.io.out(`switched to context ${name}\n`);
        return;
      }
      const { client, context } = await hosting(ctx, kc);
      const cp = await client.get<any>(paths.controlPlane(name));
      if (!cp)
        throw new CliError(
          `control plane ${name} not found on the hosting cluster (context ${context}) and no local context ${name} exists`,
        );
      if (cp.spec?.type === 'host') {
        kc.currentContext = context;
        kc.save();
        ctx.io.out(`control plane ${name} is the hosting cluster; switched to ${context}\n`);
        return;
      }
      const minted = await fetchKubeconfig(client, cp);
      if (!minted)
        throw new CliError(`control plane ${name} has no off-cluster kubeconfig yet (status.secretRef.key is unset)`);
      kc.mergeControlPlane(name, minted);
      kc.currentContext = name;
      kc.save();
      ctx.io.out(`switched to context ${name}\n`);
    },
  },

  adopt: {
    synopsis: '<name> [flags]',
    description:
      'Adopts an existing cluster as an external control plane: writes the bootstrap Secret <name>-bootstrap with a\ntrimmed kubeconfig of the chosen context, creates the ControlPlane, and waits until the controller has minted\nits own token there (the bootstrap Secret is then deleted).',
    flags: [
      {
        long: 'adopted-kubeconfig',
        short: 'a',
        kind: 'string',
        help: 'kubeconfig of the cluster to adopt (default: --kubeconfig)',
      },
      {
        long: 'adopted-context',
        short: 'c',
        kind: 'string',
        help: 'context of that kubeconfig (default: its current context)',
      },
      {
        long: 'url-override',
        short: 'u',
        kind: 'string',
        help: 'API server URL as reachable from the hosting cluster',
      },
      {
        long: 'expiration-seconds',
        short: 'x',
        kind: 'string',
        help: 'lifetime of the minted token (default 31536000; renewed at 80%)',
      },
      HOOK,
      SET,
      ALLOW_CLUSTER_SCOPED,
      TIMEOUT,
    ],
    run: async (ctx, flags, args) => {
      if (args.length !== 1)
        throw usage(args.length ? `unexpected argument ${args[1]}` : 'the control plane name is required');
      const name = args[0];
      const timeout = parseDuration('timeout', flags.timeout ?? '10m');
      const expiration = flags['expiration-seconds'] ?? '31536000';
      if (!/^\d+$/.test(expiration)) throw usage(`--expiration-seconds ${expiration} is not a whole number of seconds`);
      if (flags['url-override'] !== undefined) checkUrlOverride(flags['url-override']);
      const bootstrap = trimmedKubeconfig(
        flags['adopted-kubeconfig'] ?? ctx.file,
        flags['adopted-context'],
        flags['url-override'],
      );
      const { client, context, app, h, uses } = await prepareNew(
        ctx,
        name,
        flags['postcreate-hook'],
        parseSets(flags.set),
        flags['allow-cluster-scoped'] === true,
      );
      const objects = synthControlPlane(
        () =>
          new ExternalControlPlane(app, name, {
            hosting: h,
            bootstrapSecret: { name: `${name}-bootstrap` },
            tokenExpirationSeconds: Number(expiration),
            postCreateHooks: uses,
          }),
      );
      const secret = {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata: { name: `${name}-bootstrap`, namespace: HOSTING_NAMESPACE, labels: { [CONTROL_PLANE_LABEL]: name } },
        data: { [ADMIN_KUBECONFIG_KEYS.inClusterKey]: Buffer.from(bootstrap.text).toString('base64') },
      };
      await applyObjects(client, [secret, ...objects]);
      ctx.io.err(`control plane ${name} (external, ${bootstrap.server}) applied to context ${context}\n`);
      await waitReady(ctx, client, name, timeout);
      ctx.io.out(
        `control plane ${name} adopted and Ready; its kubeconfig is in Secret ${name}-system/admin-kubeconfig\n`,
      );
    },
  },

  config: {
    synopsis: 'set-hosting CONTEXT | diagnose [-o json]',
    description:
      'Manages the kubeflex extension of the kubeconfig: set-hosting records CONTEXT as the hosting context; diagnose\nreports whether the stored hosting context is usable, as JSON {status: ok|warning|critical, message, data}.',
    flags: [{ long: 'output', short: 'o', kind: 'string', help: 'diagnose output format (only json)' }],
    run: async (ctx, flags, args) => {
      const kc = loadKubeconfig(ctx);
      const [sub, ...rest] = args;
      if (sub === 'set-hosting') {
        if (rest.length !== 1) throw usage('config set-hosting needs a context name');
        if (!kc.hasContext(rest[0])) throw new CliError(`context ${rest[0]} not found in ${ctx.file}`);
        kc.setHostingContext(rest[0]);
        kc.save();
        ctx.io.out(`hosting context is now ${rest[0]}\n`);
        return;
      }
      if (sub === 'diagnose') {
        if (rest.length) throw usage(`unexpected argument ${rest[0]}`);
        if ((flags.output ?? 'json') !== 'json') throw usage(`--output ${flags.output}: only json is supported`);
        const stored = kc.storedHostingContext;
        const usable = kc.hostingContext;
        const data = {
          file: ctx.file,
          storedHostingContext: stored ?? null,
          hostingContext: usable ?? null,
          controlPlaneContexts: kc.contexts.filter((c) => c.kubeflex[CP_NAME_KEY]).map((c) => c.name),
        };
        const [status, message] = !usable
          ? [
              'critical',
              stored
                ? `stored hosting context "${stored}" is missing or has no server`
                : 'no hosting context is stored',
            ]
          : usable !== stored
            ? [
                'warning',
                `the stored hosting context is ${stored ? `"${stored}", which is not usable` : 'missing'}; using "${usable}", marked as hosting`,
              ]
            : ['ok', `hosting context "${usable}" is usable`];
        ctx.io.out(JSON.stringify({ status, message, data }, null, 2) + '\n');
        if (status === 'critical') throw new CliError(message);
        return;
      }
      throw usage(
        sub
          ? `unknown config subcommand ${sub} (set-hosting, diagnose)`
          : 'config needs a subcommand (set-hosting, diagnose)',
      );
    },
  },

  version: {
    synopsis: '',
    description: 'Prints the kflex version and the Kubernetes version of the hosting cluster.',
    flags: [],
    run: async (ctx, _flags, args) => {
      if (args.length) throw usage(`unexpected argument ${args[0]}`);
      // KubeFlex's exact lines: scripts grep "^Kubeflex version:" and compare the version with a minimum.
      ctx.io.out(`Kubeflex version: ${KFLEX_VERSION} ${BUILD_DATE}\n`);
      try {
        const kc = loadKubeconfig(ctx);
        const { client } = await hosting(ctx, kc);
        const v = await client.request<any>('GET', '/version');
        ctx.io.out(`Kubernetes version: ${v.gitVersion}\n`);
      } catch (e) {
        ctx.io.out(`Could not connect to a Kubernetes cluster: ${(e as Error).message}\n`);
        throw new CliError('', 1);
      }
    },
  },
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
function trimmedKubeconfig(
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
  const name = context ?? doc?.['current-context'];
  const ctx = (doc?.contexts ?? []).find((c: any) => c.name === name);
  if (!ctx) throw new CliError(`context ${name ?? '(none)'} not found in ${file}`);
  const cluster = { ...((doc.clusters ?? []).find((c: any) => c.name === ctx.context?.cluster)?.cluster ?? {}) };
  const user = { ...((doc.users ?? []).find((u: any) => u.name === ctx.context?.user)?.user ?? {}) };
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

const TOP_HELP = `kflex: KubeFlex control planes on cdk8s-kubeflex constructs

Usage: kflex <command> [flags]

Commands:
${Object.entries(COMMANDS)
  .map(([n, c]) => `  ${n.padEnd(9)} ${c.description.split('\n')[0].split('. ')[0].replace(/\.$/, '')}`)
  .join('\n')}

Run kflex <command> --help for a command's flags.
`;

/** Runs kflex; returns the exit code (0 ok, 1 failure, 2 usage). */
export async function kflex(argv: string[], io: Io): Promise<number> {
  try {
    const [name, ...rest] = argv;
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      io.out(TOP_HELP);
      return name ? 0 : 2;
    }
    if (name === '--version') {
      io.out(`Kubeflex version: ${KFLEX_VERSION} ${BUILD_DATE}\n`);
      return 0;
    }
    const cmd = COMMANDS[name];
    if (!cmd) throw usage(`unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
    const { flags, args } = parseArgs(rest, cmd.flags);
    if (flags.verbosity !== undefined && !/^\d+$/.test(flags.verbosity))
      throw usage(`--verbosity ${flags.verbosity} is not a non-negative integer`);
    if (flags.help) {
      io.out(helpText(name, cmd.synopsis, cmd.description, cmd.flags));
      return 0;
    }
    await cmd.run({ io, file: kubeconfigPath(flags.kubeconfig) }, flags, args);
    return 0;
  } catch (e) {
    if (e instanceof CliError) {
      if (e.message) io.err(`Error: ${e.message}\n`);
      return e.code;
    }
    if (e instanceof KubeflexConfigError) {
      io.err(`Error: ${e.message}\n`);
      return 1;
    }
    if (e instanceof NamespaceTakenError) {
      io.err(`Error: ${e.message}\n`);
      return 1;
    }
    if (e instanceof ApiError) {
      io.err(`Error: the API server refused a request: ${e.message}\n`);
      return 1;
    }
    if (e instanceof Error && /ECONNREFUSED|ETIMEDOUT|ENOTFOUND|timed out|EHOSTUNREACH|certificate/.test(e.message)) {
      io.err(`Error: cannot reach the cluster: ${e.message}\n`);
      return 1;
    }
    io.err(`Error: internal error (please report): ${e instanceof Error ? e.stack : String(e)}\n`);
    return 70;
  }
}

if (require.main === module) {
  const io: Io = {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    ask: process.stdin.isTTY
      ? (q) =>
          new Promise((resolve) => {
            process.stderr.write(q);
            process.stdin.once('data', (d) => resolve(String(d)));
          })
      : undefined,
  };
  void kflex(process.argv.slice(2), io).then((code) => process.exit(code));
}
