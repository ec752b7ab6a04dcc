// The user's kubeconfig file as kflex reads and writes it: KubeFlex's naming (context <cp>, cluster <cp>-cluster,
// user <cp>-admin) and its `kubeflex` extensions (hosting context, controlplane-name). Written atomically, 0600.
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parse, stringify } from 'yaml';
import { contextEntries, parseKubeconfig, ParsedKubeconfig, renderParsed } from '../kube/kubeconfig';
import { kubeconfigEntryNames } from '../names';

export const EXTENSION = 'kubeflex';
export const HOSTING_KEY = 'hosting-cluster-ctx-name';
export const IS_HOSTING_KEY = 'is-hosting-cluster-ctx';
export const CP_NAME_KEY = 'controlplane-name';

/** A kubeconfig-format error kflex reports without a stack trace. */
export class KubeconfigFileError extends Error {}

interface Named<T> {
  name: string;
  [k: string]: unknown;
  value?: T;
}

/** Resolves which file to use: the flag, then the first $KUBECONFIG entry, then ~/.kube/config. */
export function kubeconfigPath(flag?: string): string {
  if (flag) return flag;
  const env = process.env.KUBECONFIG?.split(path.delimiter).find(Boolean);
  return env ?? path.join(os.homedir(), '.kube', 'config');
}

/** A loaded kubeconfig document with KubeFlex-aware edits. */
export class KubeconfigFile {
  public static load(file: string): KubeconfigFile {
    if (!fs.existsSync(file)) throw new KubeconfigFileError(`kubeconfig ${file} does not exist`);
    let doc: any;
    try {
      doc = parse(fs.readFileSync(file, 'utf8')) ?? {};
    } catch (e) {
      throw new KubeconfigFileError(`kubeconfig ${file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    if (typeof doc !== 'object' || Array.isArray(doc))
      throw new KubeconfigFileError(`kubeconfig ${file} is not a kubeconfig`);
    return new KubeconfigFile(file, doc);
  }

  private constructor(
    public readonly file: string,
    private readonly doc: any,
  ) {
    for (const k of ['clusters', 'users', 'contexts']) if (!Array.isArray(doc[k])) doc[k] = [];
  }

  public get currentContext(): string | undefined {
    return this.doc['current-context'] || undefined;
  }

  public set currentContext(name: string | undefined) {
    this.doc['current-context'] = name ?? '';
  }

  public get contexts(): { name: string; cluster?: string; user?: string; kubeflex: Record<string, string> }[] {
    return this.doc.contexts.map((c: any) => ({
      name: c.name,
      cluster: c.context?.cluster,
      user: c.context?.user,
      kubeflex: extensionData(c.context?.extensions),
    }));
  }

  public hasContext(name: string): boolean {
    return this.doc.contexts.some((c: any) => c.name === name);
  }

  /** The stored hosting context, if it is valid (exists and its cluster has a server). */
  public get hostingContext(): string | undefined {
    const stored = extensionData(this.doc.extensions)[HOSTING_KEY];
    const marked = this.contexts.find((c) => c.kubeflex[IS_HOSTING_KEY] === 'true')?.name;
    for (const name of [stored, marked]) if (name && this.isUsable(name)) return name;
    return undefined;
  }

  /** The stored hosting context name even if invalid (for messages). */
  public get storedHostingContext(): string | undefined {
    return extensionData(this.doc.extensions)[HOSTING_KEY];
  }

  /** Records `name` as the hosting context, in the global extension and as a mark on the context itself. */
  public setHostingContext(name: string): void {
    this.doc.extensions = setExtension(this.doc.extensions, { [HOSTING_KEY]: name });
    for (const c of this.doc.contexts) {
      const data = extensionData(c.context?.extensions);
      if (c.name === name)
        c.context = {
          ...c.context,
          extensions: setExtension(c.context?.extensions, { ...data, [IS_HOSTING_KEY]: 'true' }),
        };
      else if (data[IS_HOSTING_KEY]) {
        delete data[IS_HOSTING_KEY];
        c.context.extensions = setExtension(c.context.extensions, data);
      }
    }
  }

  /** True when the context exists and points at a cluster with a server. */
  public isUsable(name: string): boolean {
    const { cluster } = contextEntries(this.doc, name);
    return typeof cluster?.server === 'string' && cluster.server !== '';
  }

  /**
   * Merges the current context of `minted` (a kubeconfig text from a control plane's Secret) as context `<cp>`,
   * cluster `<cp>-cluster` and user `<cp>-admin`, marked with `controlplane-name`; replaces entries of those names.
   */
  public mergeControlPlane(cp: string, minted: string): void {
    // The Secret is tenant-writable (a syncer writes vCluster's): only validated fields reach the user's file, so no
    // exec plugin, file path, proxy or impersonation is ever merged (security review M5).
    let parsed: ParsedKubeconfig;
    try {
      parsed = parseKubeconfig(minted);
    } catch (e) {
      throw new KubeconfigFileError(`the kubeconfig of control plane ${cp} is refused: ${(e as Error).message}`);
    }
    const src = parse(renderParsed(parsed, parsed));
    const ctx = src.contexts[0].context;
    const cluster = src.clusters[0].cluster;
    const user = src.users[0].user;
    this.removeControlPlane(cp);
    this.doc.clusters.push({ name: kubeconfigEntryNames(cp).cluster, cluster });
    this.doc.users.push({ name: kubeconfigEntryNames(cp).user, user });
    this.doc.contexts.push({
      name: cp,
      context: {
        cluster: kubeconfigEntryNames(cp).cluster,
        user: kubeconfigEntryNames(cp).user,
        ...(ctx.namespace ? { namespace: ctx.namespace } : {}),
        extensions: setExtension(undefined, { [CP_NAME_KEY]: cp }),
      },
    });
  }

  /** Removes context `<cp>`, cluster `<cp>-cluster` and user `<cp>-admin`; true if any existed. */
  public removeControlPlane(cp: string): boolean {
    const before = this.doc.contexts.length + this.doc.clusters.length + this.doc.users.length;
    this.doc.contexts = this.doc.contexts.filter((c: any) => c.name !== cp);
    this.doc.clusters = this.doc.clusters.filter((c: any) => c.name !== kubeconfigEntryNames(cp).cluster);
    this.doc.users = this.doc.users.filter((u: any) => u.name !== kubeconfigEntryNames(cp).user);
    return before !== this.doc.contexts.length + this.doc.clusters.length + this.doc.users.length;
  }

  /** Renames a kflex trio (context, `-cluster`, `-admin`), keeping extensions; the control-plane mark follows. */
  public rename(from: string, to: string): void {
    const ctx = this.doc.contexts.find((c: any) => c.name === from);
    if (!ctx) throw new KubeconfigFileError(`context ${from} not found in ${this.file}`);
    if (this.hasContext(to)) throw new KubeconfigFileError(`context ${to} already exists in ${this.file}`);
    const cluster = this.doc.clusters.find((c: any) => c.name === ctx.context?.cluster);
    const user = this.doc.users.find((u: any) => u.name === ctx.context?.user);
    if (cluster && cluster.name === kubeconfigEntryNames(from).cluster) cluster.name = kubeconfigEntryNames(to).cluster;
    if (user && user.name === kubeconfigEntryNames(from).user) user.name = kubeconfigEntryNames(to).user;
    ctx.name = to;
    ctx.context = {
      ...ctx.context,
      cluster: cluster?.name ?? ctx.context?.cluster,
      user: user?.name ?? ctx.context?.user,
    };
    if (this.currentContext === from) this.currentContext = to;
    if (this.storedHostingContext === from) this.setHostingContext(to);
  }

  /**
   * Writes the file atomically with mode 0600 (it holds credentials). A symlinked kubeconfig is written where it
   * points (the link stays). The temp file has an unpredictable name and is created exclusively, so a planted file or
   * symlink in a shared directory is never followed (review L5); it is flushed before the rename.
   */
  public save(): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    let target = this.file;
    try {
      target = fs.realpathSync(this.file);
    } catch {
      // not there yet
    }
    const tmp = path.join(path.dirname(target), `.${path.basename(target)}.kflex-${randomBytes(8).toString('hex')}`);
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    try {
      fs.writeSync(fd, stringify(this.doc));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.renameSync(tmp, target);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  }
}

function extensionData(exts: unknown): Record<string, string> {
  const e = Array.isArray(exts) ? (exts as Named<unknown>[]).find((x) => x?.name === EXTENSION) : undefined;
  return { ...(((e as any)?.extension?.data as Record<string, string>) ?? {}) };
}

function setExtension(exts: unknown, data: Record<string, string>): unknown[] {
  const list = Array.isArray(exts) ? (exts as Named<unknown>[]).filter((x) => x?.name !== EXTENSION) : [];
  // KubeFlex stores a ConfigMap-shaped object under the extension name `kubeflex`.
  return [...list, { name: EXTENSION, extension: { metadata: { name: EXTENSION, creationTimestamp: null }, data } }];
}
