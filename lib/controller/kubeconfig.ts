// Kubeconfig documents as the controller writes and reads them. Pure functions over plain objects.
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

/** Parses a kubeconfig and resolves its current context; throws an Error saying what is wrong. */
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
  const find = (list: unknown, n: unknown, what: string) => {
    const hit = Array.isArray(list) ? list.find((e: any) => e?.name === n) : undefined;
    if (!hit) throw new Error(`current-context "${current}" refers to ${what} "${String(n)}", which is not defined`);
    return hit;
  };
  const ctx = find(doc.contexts, current, 'context').context ?? {};
  const cluster = find(doc.clusters, ctx.cluster, 'cluster').cluster ?? {};
  const user = find(doc.users, ctx.user, 'user').user ?? {};
  if (typeof cluster.server !== 'string' || !/^https?:\/\//.test(cluster.server)) {
    throw new Error(`cluster "${ctx.cluster}" has no http(s) server URL`);
  }
  if (cluster['certificate-authority'] || user['client-certificate'] || user['client-key'] || user.tokenFile) {
    throw new Error('refers to files; embed the data (kubectl config view --flatten --minify)');
  }
  if (user.exec || user['auth-provider']) {
    throw new Error(
      'uses an exec or auth-provider plugin, which the controller cannot run; use a token or client certificate',
    );
  }
  const out: ParsedKubeconfig = {
    contextName: current,
    clusterName: ctx.cluster,
    userName: ctx.user,
    server: cluster.server,
    caCert: unb64(cluster['certificate-authority-data']),
    insecure: cluster['insecure-skip-tls-verify'] === true,
    tlsServerName: cluster['tls-server-name'],
    cert: unb64(user['client-certificate-data']),
    key: unb64(user['client-key-data']),
    token: typeof user.token === 'string' ? user.token : undefined,
    context: ctx,
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
