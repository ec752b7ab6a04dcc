// The one HTTP client of the controller, the materializer and kflex (lib/kube/ is what they share): the hosting
// cluster, tenant control planes (probes) and adopted clusters. Authentication and kubeconfig handling come from
// @kubernetes/client-node; requests are plain HTTPS with a keep-alive agent so that reconciling 1,000 control planes
// does not open 10,000 connections.
import * as http from 'http';
import * as https from 'https';
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { API_VERSION } from '../names';
import { parseKubeconfig, ParsedKubeconfig, renderParsed } from './kubeconfig';

/** `host:port` -> `address:port`: connect elsewhere but verify TLS for the original host (like curl --connect-to). */
export type ConnectTo = Record<string, string>;

/** A non-2xx answer from an API server. */
export class ApiError extends Error {
  public constructor(
    public readonly status: number,
    public readonly reason: string,
    message: string,
    public readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

interface Prepared {
  agent: http.Agent;
  /** What the agent's connections were made with: a new agent only when this changes. */
  tls: string;
  headers: Record<string, string>;
  base: URL;
  at: number;
}

/**
 * Lets an agent whose TLS material was replaced finish what it has: its idle connections close now, each busy one as
 * soon as it is free and nothing waits for it. (Destroying it outright broke requests in flight, and requests still
 * waiting for one of its sockets then never got one.)
 */
function retire(agent: http.Agent): void {
  const isIdle = (socket: unknown) => Object.values(agent.freeSockets).some((l) => l?.includes(socket as never));
  // Registered after the agent's own 'free' handler, which hands the socket to a waiting request or parks it.
  agent.on('free', (socket: { destroy(): void }) => {
    if (isIdle(socket)) socket.destroy();
  });
  for (const list of Object.values(agent.freeSockets)) for (const s of [...(list ?? [])]) s.destroy();
}

/** A client for one API server. */
export class KubeClient {
  /** From a kubeconfig file (or the in-cluster config when none is given). */
  public static fromFile(
    path: string | undefined,
    connectTo: ConnectTo = {},
    context?: string,
    timeoutMs = 30_000,
  ): KubeClient {
    const kc = new KubeConfig();
    if (path) kc.loadFromFile(path);
    else kc.loadFromDefault();
    if (context) kc.setCurrentContext(context);
    return new KubeClient(kc, connectTo, timeoutMs);
  }

  /**
   * From kubeconfig text read from a Secret (minted, bootstrap or syncer-written): it is parsed by the strict
   * parser first and client-node only ever sees a document rendered from the fields that parser keeps (server, CA
   * data, TLS server name, client certificate/key data, token), so no plugin, file, proxy or impersonation reaches it.
   */
  public static fromUntrusted(text: string, connectTo: ConnectTo = {}, timeoutMs = 10_000): KubeClient {
    return KubeClient.fromParsed(parseKubeconfig(text), connectTo, timeoutMs);
  }

  /** From a kubeconfig the strict parser already accepted (only its kept fields are rendered for client-node). */
  public static fromParsed(parsed: ParsedKubeconfig, connectTo: ConnectTo = {}, timeoutMs = 10_000): KubeClient {
    const kc = new KubeConfig();
    kc.loadFromString(renderParsed(parsed, parsed));
    return new KubeClient(kc, connectTo, timeoutMs);
  }

  private prepared?: Prepared;
  private preparing?: Promise<Prepared>;

  private constructor(
    public readonly config: KubeConfig,
    private readonly connectTo: ConnectTo,
    private readonly timeoutMs = 30_000,
    private readonly extraHeaders: Readonly<Record<string, string>> = {},
  ) {}

  /**
   * The same credentials acting as `user` (header Impersonate-User): the API server checks this identity's
   * `impersonate` right on `user`, then authorizes and admits every request as `user` (no rights of its own added).
   */
  public impersonating(user: string): KubeClient {
    // One client per identity (its connections are reused across passes), closed with this one.
    let c = this.impersonated.get(user);
    if (!c) {
      c = new KubeClient(this.config, this.connectTo, this.timeoutMs, { 'Impersonate-User': user });
      this.impersonated.set(user, c);
    }
    return c;
  }

  private readonly impersonated = new Map<string, KubeClient>();

  /** The server URL this client talks to, as written in its kubeconfig. */
  public get server(): string {
    return this.config.getCurrentCluster()?.server ?? '';
  }

  private async prepare(): Promise<Prepared> {
    // Auth options are re-read every minute: in-cluster service-account tokens are rotated on disk.
    if (this.prepared && Date.now() - this.prepared.at < 60_000) return this.prepared;
    if (this.preparing) return this.preparing;
    this.preparing = (async () => {
      const server = new URL(this.server);
      const target = this.connectTo[`${server.hostname}:${server.port || (server.protocol === 'https:' ? 443 : 80)}`];
      const opts: https.RequestOptions = { headers: {} };
      if (target) opts.servername = server.hostname;
      await this.config.applyToHTTPSOptions(opts);
      const agentOpts: https.AgentOptions = {
        keepAlive: true,
        maxSockets: 32,
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        servername: opts.servername,
        rejectUnauthorized: opts.rejectUnauthorized,
      };
      const base = new URL(server.toString());
      if (target) {
        const [host, port] = splitHostPort(target);
        base.hostname = host;
        base.port = port;
      }
      // A rotated service-account token only changes a header: the connections (and requests queued for one) stay.
      const tls = JSON.stringify([
        base.toString(),
        opts.ca,
        opts.cert,
        opts.key,
        opts.servername,
        opts.rejectUnauthorized,
      ]);
      let agent = this.prepared?.tls === tls ? this.prepared.agent : undefined;
      if (!agent) {
        if (this.prepared) retire(this.prepared.agent);
        agent = base.protocol === 'https:' ? new https.Agent(agentOpts) : new http.Agent({ keepAlive: true });
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k] = String(v);
      if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
      this.prepared = { agent, tls, headers, base, at: Date.now() };
      return this.prepared;
    })().finally(() => (this.preparing = undefined));
    return this.preparing;
  }

  /**
   * One request; resolves with the parsed body, rejects with ApiError on non-2xx. A 429 (throttled, or a new
   * resource's storage still initializing) was not processed, so it is retried a few times after Retry-After.
   */
  public async request<T = any>(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.requestOnce<T>(method, path, body, contentType);
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 429) || attempt >= 6) throw e;
        await sleep(Math.min(5, e.retryAfterSeconds ?? 1) * 1000);
      }
    }
  }

  private async requestOnce<T>(method: string, path: string, body: unknown, contentType: string): Promise<T> {
    const p = await this.prepare();
    const url = new URL(p.base.toString().replace(/\/$/, '') + path);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise<T>((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method,
          agent: p.agent,
          timeout: this.timeoutMs,
          headers: {
            ...p.headers,
            ...this.extraHeaders,
            Accept: 'application/json',
            ...(payload ? { 'Content-Type': contentType, 'Content-Length': String(payload.length) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: any = text;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              // not JSON (e.g. a proxy error page); keep the text
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(parsed as T);
            else {
              const msg = typeof parsed === 'object' && parsed?.message ? parsed.message : String(text).slice(0, 200);
              const retry = Number(res.headers['retry-after']);
              const after = Number.isFinite(retry) ? retry : undefined;
              reject(new ApiError(status, parsed?.reason ?? '', `${method} ${path}: ${status} ${msg}`, after));
            }
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out after ${this.timeoutMs} ms`)));
      // The socket timeout above covers an idle connection only; a request still waiting for a socket, or a response
      // that trickles, gets this hard deadline, so no reconcile can wait forever on one request.
      const deadline = setTimeout(
        () => req.destroy(new Error(`${method} ${path}: no complete response after ${2 * this.timeoutMs} ms`)),
        2 * this.timeoutMs,
      );
      req.on('close', () => clearTimeout(deadline));
      req.on('error', (e) => reject(new Error(`${method} ${this.server}${path}: ${e.message}`)));
      if (payload) req.write(payload);
      req.end();
    });
  }

  /** GET, with undefined for 404. */
  public async get<T = any>(path: string): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', path);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return undefined;
      throw e;
    }
  }

  /** Create, treating 409 AlreadyExists as success (create-if-absent). */
  public async createIfAbsent(path: string, obj: unknown): Promise<void> {
    try {
      await this.request('POST', path, obj);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 409)) throw e;
    }
  }

  /** DELETE, with 404 as success; dependents are collected in the background (Jobs default to orphaning). */
  public async deleteIfPresent(path: string, preconditions?: { readonly uid: string }): Promise<void> {
    try {
      await this.request('DELETE', path, {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        propagationPolicy: 'Background',
        ...(preconditions ? { preconditions } : {}),
      });
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
    }
  }

  /**
   * List then watch `path`, forever. A watch the server ends (its request timeout, 30-60 min by default) is resumed
   * from the last resourceVersion seen (bookmarks keep it fresh); only an expiry (410), an error or an API-server
   * restart re-lists. `onEvent` receives every object of the first list as ADDED and then every watch event; a
   * re-list tells only what changed meanwhile (WatchedSet): a re-list that told every object again made every
   * consumer look at every plane again (a pass each), once per watch and half hour.
   */
  public runListWatch(
    path: string,
    onEvent: (type: string, obj: any) => void,
    onSynced: () => void,
    onError: (err: Error) => void,
    signal: AbortSignal,
  ): void {
    const seen = new WatchedSet();
    const loop = async () => {
      let backoff = 500;
      let rv: string | undefined;
      while (!signal.aborted) {
        try {
          if (rv === undefined) {
            const list = await this.request<any>('GET', path);
            for (const [type, obj] of seen.relist(list.items ?? [])) onEvent(type, obj);
            onSynced();
            rv = String(list.metadata?.resourceVersion ?? '');
          }
          const from: string = rv;
          const ended = await new Promise<{ rv?: string; error?: Error }>((resolve) => {
            let last = from;
            let expired = false;
            const w = new Watch(this.config);
            let controller: AbortController | undefined;
            const stop = () => controller?.abort();
            signal.addEventListener('abort', stop, { once: true });
            w.watch(
              path,
              { resourceVersion: from, allowWatchBookmarks: true },
              (type, obj) => {
                if (type === 'ERROR') {
                  // 410 Gone and its kin: the resourceVersion is too old to resume from.
                  expired = true;
                  controller?.abort();
                  return;
                }
                if (obj?.metadata?.resourceVersion) last = String(obj.metadata.resourceVersion);
                if (type === 'BOOKMARK') return;
                seen.saw(type, obj);
                onEvent(type, obj);
              },
              (err) => {
                signal.removeEventListener('abort', stop);
                const error =
                  err && !signal.aborted && (err as Error).name !== 'AbortError' ? (err as Error) : undefined;
                resolve(expired || error ? { error } : { rv: last });
              },
            )
              .then((c) => (controller = c))
              .catch((err: Error) => resolve({ error: err }));
          });
          rv = ended.rv;
          if (ended.error) throw ended.error;
          if (rv === undefined) continue;
          backoff = 500;
        } catch (e) {
          rv = undefined;
          if (!signal.aborted) onError(e as Error);
          await sleep(backoff, signal);
          backoff = Math.min(backoff * 2, 30_000);
          continue;
        }
        await sleep(200, signal);
      }
    };
    void loop();
  }

  /** Closes idle connections. */
  public close(): void {
    this.prepared?.agent.destroy();
    for (const c of this.impersonated.values()) c.close();
  }
}

/**
 * What a list-watch consumer has been told of each object (its resourceVersion, and its name, namespace and uid for
 * a DELETED it may have missed), so that a re-list tells only the difference, as an informer's store does.
 */
export class WatchedSet {
  private readonly known = new Map<string, { rv: string; stub: any }>();

  /** Records a watch event the consumer received. */
  public saw(type: string, obj: any): void {
    const key = objectKey(obj);
    if (type === 'DELETED') this.known.delete(key);
    else this.known.set(key, { rv: String(obj?.metadata?.resourceVersion ?? ''), stub: stubOf(obj) });
  }

  /**
   * The events a (re-)list means to that consumer: a new or changed object as ADDED, an object gone meanwhile as
   * DELETED (name, namespace and uid only), an unchanged one nothing.
   */
  public relist(items: readonly any[]): Array<[string, any]> {
    const events: Array<[string, any]> = [];
    const listed = new Set<string>();
    for (const item of items) {
      const key = objectKey(item);
      listed.add(key);
      const rv = String(item?.metadata?.resourceVersion ?? '');
      if (rv && this.known.get(key)?.rv === rv) continue;
      this.known.set(key, { rv, stub: stubOf(item) });
      events.push(['ADDED', item]);
    }
    for (const [key, { stub }] of this.known) {
      if (listed.has(key)) continue;
      this.known.delete(key);
      events.push(['DELETED', stub]);
    }
    return events;
  }
}

const objectKey = (obj: any) => `${obj?.metadata?.namespace ?? ''}/${obj?.metadata?.name ?? ''}`;
const stubOf = (obj: any) => ({
  apiVersion: obj?.apiVersion,
  kind: obj?.kind,
  metadata: { name: obj?.metadata?.name, namespace: obj?.metadata?.namespace, uid: obj?.metadata?.uid },
});

function splitHostPort(s: string): [string, string] {
  const i = s.lastIndexOf(':');
  return i < 0 ? [s, ''] : [s.slice(0, i).replace(/^\[|\]$/g, ''), s.slice(i + 1)];
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Maps `host:port` through `connectTo` (used for non-HTTP connections such as PostgreSQL). */
export function resolveConnectTo(connectTo: ConnectTo, host: string, port: number): { host: string; port: number } {
  const target = connectTo[`${host}:${port}`];
  if (!target) return { host, port };
  const [h, p] = splitHostPort(target);
  return { host: h, port: Number(p) };
}

// ---- REST paths --------------------------------------------------------------------------------------------------

export const GROUP_PATH = `/apis/${API_VERSION}`;

/**
 * One path segment from a name that may come from a tenant (hook names, rendered object names): `.`, `..` and empty
 * names are refused and everything else is percent-encoded, so no name can walk to another resource (review L1).
 */
export function segment(name: string): string {
  if (name === '' || name === '.' || name === '..') throw new Error(`"${name}" is not a valid object name`);
  return encodeURIComponent(name);
}

export const paths = {
  controlPlanes: `${GROUP_PATH}/controlplanes`,
  controlPlane: (n: string) => `${GROUP_PATH}/controlplanes/${segment(n)}`,
  postCreateHooks: `${GROUP_PATH}/postcreatehooks`,
  postCreateHook: (n: string) => `${GROUP_PATH}/postcreatehooks/${segment(n)}`,
  namespace: (n: string) => `/api/v1/namespaces/${segment(n)}`,
  secrets: (ns: string) => `/api/v1/namespaces/${segment(ns)}/secrets`,
  secret: (ns: string, n: string) => `/api/v1/namespaces/${segment(ns)}/secrets/${segment(n)}`,
  configMap: (ns: string, n: string) => `/api/v1/namespaces/${segment(ns)}/configmaps/${segment(n)}`,
  clusterRoleBindings: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
  clusterRoleBinding: (n: string) => `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${segment(n)}`,
  /** Path of a named object of a well-known kind (the kinds hook readiness and workloads need). */
  object: (apiVersion: string, kind: string, name: string, namespace?: string): string | undefined => {
    const plural = PLURALS[kind];
    if (!plural || !/^([a-z0-9.-]+\/)?v[a-z0-9]+$/.test(apiVersion)) return undefined;
    const prefix = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    return namespace
      ? `${prefix}/namespaces/${segment(namespace)}/${plural}/${segment(name)}`
      : `${prefix}/${plural}/${segment(name)}`;
  },
};

const PLURALS: Record<string, string> = {
  Deployment: 'deployments',
  StatefulSet: 'statefulsets',
  DaemonSet: 'daemonsets',
  Job: 'jobs',
  Pod: 'pods',
  CustomResourceDefinition: 'customresourcedefinitions',
  Route: 'routes',
};
