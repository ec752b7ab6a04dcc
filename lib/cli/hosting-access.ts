// kflex: the hosting cluster and the user's kubeconfig (which context is the hosting cluster, the install as it is
// there, the constructs a new plane is built with).
import * as fs from 'fs';
import { App } from 'cdk8s';
import { parse, stringify } from 'yaml';
import { PostCreateHookUse } from '../control-plane';
import { KubeflexConfigError } from '../errors';
import { IKubeflexHosting, KubeflexHosting } from '../hosting';
import { GROUP_PATH, KubeClient, paths } from '../kube/client';
import { contextEntries } from '../kube/kubeconfig';
import { hookFromObject } from '../materialize';
import { HOSTING_NAMESPACE } from '../names';
import { PostCreateHook } from '../post-create-hook';
import { HOSTING_CONFIGMAP } from '../wire';
import { CliError, Ctx, usage } from './context';
import { CP_NAME_KEY, KubeconfigFile } from './kubeconfig-file';

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
