// Kubeconfig documents as the controller, the materializer and kflex write and read them. Pure functions over
// plain objects.
import { parse, stringify } from 'yaml';

/** Credentials of a kubeconfig user: a client certificate or a bearer token. */
export type KubeconfigCredentials = { readonly cert: string; readonly key: string } | { readonly token: string };

/** One cluster/user/context triple (KubeFlex names them `<cp>-cluster`, `<cp>-admin`, `<cp>`). */
export interface KubeconfigSpec {
  readonly server: string;
  readonly caCert: string;
  readonly credentials: KubeconfigCredentials;
  readonly clusterName: string;
  readonly userName: string;
  readonly contextName: string;
  /** Namespace of the context. @default "default" */
  readonly namespace?: string;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: unknown) => (typeof s === 'string' ? Buffer.from(s, 'base64').toString('utf8') : undefined);

/** Renders a kubeconfig with one context, which is current. */
export function renderKubeconfig(spec: KubeconfigSpec): string {
  const user =
    'token' in spec.credentials
      ? { token: spec.credentials.token }
      : { 'client-certificate-data': b64(spec.credentials.cert), 'client-key-data': b64(spec.credentials.key) };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: spec.clusterName, cluster: { server: spec.server, 'certificate-authority-data': b64(spec.caCert) } },
    ],
    users: [{ name: spec.userName, user }],
    contexts: [
      {
        name: spec.contextName,
        context: { cluster: spec.clusterName, user: spec.userName, namespace: spec.namespace ?? 'default' },
      },
    ],
    'current-context': spec.contextName,
    preferences: {},
  });
}

/** The current context of a kubeconfig, resolved. */
export interface ParsedKubeconfig {
  readonly contextName: string;
  readonly clusterName: string;
  readonly userName: string;
  readonly server: string;
  readonly caCert?: string;
  readonly insecure: boolean;
  readonly tlsServerName?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly token?: string;
  /** The raw context entry (namespace, extensions), for copying. */
  readonly context: Record<string, unknown>;
}

/**
 * Fields that make a client run a program, read a file, send credentials elsewhere or act as someone else. Every
 * kubeconfig that comes from a Secret (tenant-writable, or written by a syncer) is refused when it has one: only
 * server, CA data, TLS server name, client certificate/key data and a token are ever used (security review H1, M5).
 */
const UNSAFE_USER: Record<string, string> = {
  exec: 'an exec plugin (runs a program)',
  'auth-provider': 'an auth-provider plugin (can run a program)',
  tokenFile: 'a token file (reads a file)',
  'token-file': 'a token file (reads a file)',
  'client-certificate': 'a client certificate file (reads a file)',
  'client-key': 'a client key file (reads a file)',
  as: 'impersonation (as)',
  'as-user-extra': 'impersonation (as-user-extra)',
  'as-groups': 'impersonation (as-groups)',
  'as-uid': 'impersonation (as-uid)',
  username: 'basic authentication (username)',
  password: 'basic authentication (password)',
};
const UNSAFE_CLUSTER: Record<string, string> = {
  'certificate-authority': 'a CA file (reads a file)',
  'proxy-url': 'a proxy URL (sends the credentials through another host)',
  'insecure-skip-tls-verify': 'insecure-skip-tls-verify (no server authentication)',
};

function refuseUnsafe(cluster: Record<string, unknown>, user: Record<string, unknown>): void {
  for (const [k, what] of Object.entries(UNSAFE_USER)) {
    if (user[k] !== undefined && user[k] !== null && user[k] !== '' && user[k] !== false)
      throw new Error(
        `user uses ${what}, which is refused: use embedded client-certificate-data/client-key-data or a token`,
      );
  }
  for (const [k, what] of Object.entries(UNSAFE_CLUSTER)) {
    if (cluster[k] !== undefined && cluster[k] !== null && cluster[k] !== '' && cluster[k] !== false)
      throw new Error(`cluster uses ${what}, which is refused: use embedded certificate-authority-data`);
  }
}

/** What a kubeconfig's context names, looked up as written (no validation): the one context resolver. */
export interface ContextEntries {
  /** The context's name (the current one unless another was asked for). */
  readonly name?: string;
  /** The list items `{name, context}`, `{name, cluster}` and `{name, user}` it names, where defined. */
  readonly contextEntry?: any;
  readonly clusterEntry?: any;
  readonly userEntry?: any;
  /** Their `context`, `cluster` and `user` fields. */
  readonly context?: any;
  readonly cluster?: any;
  readonly user?: any;
}

/** Resolves context `name` (default: `current-context`) of a parsed kubeconfig document to its entries. */
export function contextEntries(doc: any, name?: string): ContextEntries {
  const n = name ?? doc?.['current-context'];
  const find = (list: unknown, key: unknown) =>
    Array.isArray(list) && key !== undefined ? list.find((e: any) => e?.name === key) : undefined;
  const contextEntry = find(doc?.contexts, n);
  const ctx = contextEntry?.context;
  const clusterEntry = find(doc?.clusters, ctx?.cluster);
  const userEntry = find(doc?.users, ctx?.user);
  return {
    name: typeof n === 'string' && n ? n : undefined,
    contextEntry,
    clusterEntry,
    userEntry,
    context: ctx,
    cluster: clusterEntry?.cluster,
    user: userEntry?.user,
  };
}

/**
 * Parses a kubeconfig and resolves its current context, keeping only server, CA data, TLS server name, client
 * certificate/key data and token; refuses plugins, files, proxies, impersonation and basic auth. Throws an Error
 * saying what is wrong. Every kubeconfig read from a Secret goes through here before any client is built.
 */
export function parseKubeconfig(text: string): ParsedKubeconfig {
  let doc: any;
  try {
    doc = parse(text);
  } catch (e) {
    throw new Error(`not YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (!doc || typeof doc !== 'object') throw new Error('not a kubeconfig document');
  const current = doc['current-context'];
  if (typeof current !== 'string' || !current) throw new Error('has no current-context');
  const missing = (what: string, n: unknown) =>
    new Error(`current-context "${current}" refers to ${what} "${String(n)}", which is not defined`);
  const e = contextEntries(doc);
  if (!e.contextEntry) throw missing('context', current);
  const ctx = e.contextEntry.context ?? {};
  if (!e.clusterEntry) throw missing('cluster', ctx.cluster);
  const cluster = e.clusterEntry.cluster ?? {};
  if (!e.userEntry) throw missing('user', ctx.user);
  const user = e.userEntry.user ?? {};
  if (typeof cluster.server !== 'string' || !/^https:\/\//.test(cluster.server)) {
    // Every kubeconfig kept carries a credential, which is never sent over plain http (review L6).
    throw new Error(`cluster "${ctx.cluster}" has no https server URL`);
  }
  refuseUnsafe(cluster, user);
  const out: ParsedKubeconfig = {
    contextName: current,
    clusterName: ctx.cluster,
    userName: ctx.user,
    server: cluster.server,
    caCert: unb64(cluster['certificate-authority-data']),
    insecure: false,
    tlsServerName: cluster['tls-server-name'],
    cert: unb64(user['client-certificate-data']),
    key: unb64(user['client-key-data']),
    token: typeof user.token === 'string' ? user.token : undefined,
    // Only the namespace: extensions and anything else a tenant wrote are not carried over.
    context: typeof ctx.namespace === 'string' ? { namespace: ctx.namespace } : {},
  };
  if (!out.token && !(out.cert && out.key))
    throw new Error(`user "${ctx.user}" has neither a token nor a client certificate`);
  return out;
}

/**
 * Renders a parsed kubeconfig back as a one-context document: its cluster entry as it was, the user and context
 * under the given names (context fields such as namespace kept), with `token` replacing its credentials if given.
 */
export function renderParsed(
  via: ParsedKubeconfig,
  names: { readonly userName: string; readonly contextName: string },
  token?: string,
): string {
  const user = token
    ? { token }
    : via.token
      ? { token: via.token }
      : { 'client-certificate-data': b64(via.cert!), 'client-key-data': b64(via.key!) };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: via.clusterName,
        cluster: {
          server: via.server,
          ...(via.caCert ? { 'certificate-authority-data': b64(via.caCert) } : {}),
          ...(via.insecure ? { 'insecure-skip-tls-verify': true } : {}),
          ...(via.tlsServerName ? { 'tls-server-name': via.tlsServerName } : {}),
        },
      },
    ],
    users: [{ name: names.userName, user }],
    contexts: [
      { name: names.contextName, context: { ...via.context, cluster: via.clusterName, user: names.userName } },
    ],
    'current-context': names.contextName,
    preferences: {},
  });
}

/** Seconds-since-epoch `exp` and `iat` claims of a JWT (service-account token), without verifying it. */
export function tokenTimes(token: string): { iat?: number; exp?: number } {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
    return {
      iat: typeof payload.iat === 'number' ? payload.iat : undefined,
      exp: typeof payload.exp === 'number' ? payload.exp : undefined,
    };
  } catch {
    return {};
  }
}
