// ConfigMap `kubeflex-config` (KubeFlex's name): the one encoder and decoder of the hosting install's settings.
// The hosting construct writes it, the controller and the materializer read it; free of cdk8s.
import { isIP } from 'net';
import { DNS1123_LABEL } from './api-validation';
import { parseIdleTimeout } from './idle';
import { HOSTING_NAMESPACE } from './names';
import { HOSTING_CONFIGMAP, POSTGRES_CA_KEY } from './wire';

/**
 * An IPv4 or IPv6 CIDR as NetworkPolicy ipBlock accepts it: an address and a prefix length in range.
 */
export function isCidr(c: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(c);
  if (!m) return false;
  const kind = isIP(m[1]);
  const bits = Number(m[2]);
  return (kind === 4 && bits <= 32) || (kind === 6 && bits <= 128);
}

/** Default reach of `hosting-api` hook egress: any address on the ports API servers listen on. */
export const DEFAULT_HOSTING_API_EGRESS = { cidrs: ['0.0.0.0/0'], ports: [443, 6443] } as const;

/** KubeFlex's names for the bundled PostgreSQL (Bitnami release `postgres`), kept so existing tooling finds it. */
export const POSTGRES_NAME = 'postgres-postgresql';
export const POSTGRES_PASSWORD_KEY = 'postgres-password';

/** Upper bound of `bootSlots`: more API server starts at once than any node has cores for. */
export const MAX_BOOT_SLOTS = 64;

/** Defaults of the hosting install, shared by the construct and the decoder. */
export const HOSTING_DEFAULTS = {
  domain: 'localtest.me',
  externalPort: 9443,
  hostContainer: 'kubeflex-control-plane',
  ingressClassName: 'nginx',
  postgresPort: 5432,
  postgresSuperuser: 'postgres',
  postgresPasswordSecret: POSTGRES_NAME,
  postgresPasswordKey: POSTGRES_PASSWORD_KEY,
  postgresSslMode: 'prefer',
} as const;

/** The settings of a hosting install as stored in `kubeflex-config`. */
export interface HostingConfig {
  readonly domain: string;
  readonly externalPort: number;
  readonly isOpenShift: boolean;
  readonly hostContainer: string;
  readonly ingressClassName: string;
  /** Absent in installs written before it was stored: the construct's default applies. */
  readonly ingressNamespace?: string;
  readonly gateway?: { readonly name: string; readonly namespace: string; readonly sectionName?: string };
  /** Whether `host` planes may be made (absent in installs written before it was stored: true, as then). */
  readonly hostControlPlanes: boolean;
  /** Where hook workloads with `hosting-api` egress may connect (absent: the default). */
  readonly hostingApi?: { readonly cidrs: readonly string[]; readonly ports: readonly number[] };
  /** Namespaces besides kubeflex-system where bootstrap Secrets may be (absent: none). */
  readonly bootstrapSecretNamespaces?: readonly string[];
  /** Whether the activator runs (it holds clients of sleeping planes and wakes them); absent: false. */
  readonly activator?: boolean;
  /** Idle timeout of planes that set none (a duration, lib/idle.ts); absent: planes never sleep on their own. */
  readonly idleTimeout?: string;
  /**
   * API server Pods that may start at once (boot admission, wire BOOT_GATE); absent: none are gated (installs written
   * before it was stored, and installs that switched it off).
   */
  readonly bootSlots?: number;
  /**
   * k8s planes' kube-controller-manager is parked (scaled to zero) after this long without a client request, and
   * started again on the next (a duration, lib/idle.ts); absent: never parked (installs written before it was stored,
   * and installs that switched it off).
   */
  readonly managerIdleTimeout?: string;
  readonly postgres?: {
    readonly host: string;
    readonly port: number;
    readonly superuser: string;
    readonly passwordSecret: string;
    readonly passwordKey: string;
    readonly sslMode: string;
    readonly bundled: boolean;
    /** Secret in kubeflex-system and key with the CA that signed the server's certificate, when known. */
    readonly ca?: { readonly secret: string; readonly key: string };
  };
}

/** The data of `kubeflex-config` for `config` (keys in a fixed order; optional settings only when set). */
export function encodeHostingConfig(config: HostingConfig): Record<string, string> {
  const pg = config.postgres;
  return {
    domain: config.domain,
    externalPort: String(config.externalPort),
    isOpenShift: String(config.isOpenShift),
    hostContainer: config.hostContainer,
    ingressClassName: config.ingressClassName,
    ...(config.ingressNamespace !== undefined ? { ingressNamespace: config.ingressNamespace } : {}),
    ...(config.gateway
      ? {
          gatewayName: config.gateway.name,
          gatewayNamespace: config.gateway.namespace,
          ...(config.gateway.sectionName ? { gatewaySectionName: config.gateway.sectionName } : {}),
        }
      : {}),
    hostControlPlanes: String(config.hostControlPlanes),
    ...(config.hostingApi
      ? { hostingApiCidrs: config.hostingApi.cidrs.join(','), hostingApiPorts: config.hostingApi.ports.join(',') }
      : {}),
    ...(config.bootstrapSecretNamespaces?.length
      ? { bootstrapSecretNamespaces: config.bootstrapSecretNamespaces.join(',') }
      : {}),
    ...(config.activator ? { activator: 'true' } : {}),
    ...(config.idleTimeout !== undefined ? { idleTimeout: config.idleTimeout } : {}),
    ...(config.bootSlots ? { bootSlots: String(config.bootSlots) } : {}),
    ...(config.managerIdleTimeout !== undefined ? { managerIdleTimeout: config.managerIdleTimeout } : {}),
    ...(pg
      ? {
          postgresHost: pg.host,
          postgresPort: String(pg.port),
          postgresSuperuser: pg.superuser,
          postgresPasswordSecret: pg.passwordSecret,
          postgresPasswordKey: pg.passwordKey,
          postgresSslMode: pg.sslMode,
          ...(pg.ca ? { postgresCaSecret: pg.ca.secret, postgresCaKey: pg.ca.key } : {}),
          postgresBundled: String(pg.bundled),
        }
      : {}),
  };
}

/** Decodes `kubeflex-config`; throws an Error naming the bad key and value. */
export function decodeHostingConfig(data: Record<string, string> | undefined): HostingConfig {
  if (!data) {
    throw new Error(`ConfigMap ${HOSTING_NAMESPACE}/${HOSTING_CONFIGMAP} not found: apply the hosting install first`);
  }
  const int = (key: string, fallback: number) => {
    const raw = data[key];
    if (raw === undefined || raw === '') return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) {
      throw new Error(`ConfigMap ${HOSTING_CONFIGMAP} key ${key}="${raw}" is not a port number`);
    }
    return Number(raw);
  };
  const bootSlots = (raw: string) => {
    if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_BOOT_SLOTS) {
      throw new Error(
        `ConfigMap ${HOSTING_CONFIGMAP} key bootSlots="${raw}" is not an integer from 1 to ${MAX_BOOT_SLOTS}`,
      );
    }
    return Number(raw);
  };
  const bool = (key: string, fallback = false) => {
    const raw = data[key] ?? String(fallback);
    if (raw !== 'true' && raw !== 'false') {
      throw new Error(`ConfigMap ${HOSTING_CONFIGMAP} key ${key}="${raw}" is not true or false`);
    }
    return raw === 'true';
  };
  const hostingApi = () => {
    const cidrs = (data.hostingApiCidrs ?? '').split(',');
    const ports = (data.hostingApiPorts ?? '').split(',');
    if (!cidrs.every(isCidr))
      throw new Error(
        `ConfigMap ${HOSTING_CONFIGMAP} key hostingApiCidrs="${data.hostingApiCidrs}" is not a list of CIDRs`,
      );
    if (!ports.every((p) => /^\d+$/.test(p) && Number(p) >= 1 && Number(p) <= 65535)) {
      throw new Error(
        `ConfigMap ${HOSTING_CONFIGMAP} key hostingApiPorts="${data.hostingApiPorts}" is not a list of ports`,
      );
    }
    return { cidrs, ports: ports.map(Number) };
  };
  const namespaces = (key: string) => {
    const list = data[key].split(',');
    for (const n of list) {
      if (n.length > 63 || !DNS1123_LABEL.test(n) || n === HOSTING_NAMESPACE) {
        throw new Error(`ConfigMap ${HOSTING_CONFIGMAP} key ${key}="${data[key]}" is not a list of other namespaces`);
      }
    }
    return list;
  };
  const idleTimeout = (raw: string, key = 'idleTimeout') => {
    const parsed = parseIdleTimeout(raw);
    if ('error' in parsed) throw new Error(`ConfigMap ${HOSTING_CONFIGMAP} key ${key}="${raw}" ${parsed.error}`);
    return raw;
  };
  const d = HOSTING_DEFAULTS;
  return {
    domain: data.domain || d.domain,
    externalPort: int('externalPort', d.externalPort),
    isOpenShift: bool('isOpenShift'),
    hostContainer: data.hostContainer || d.hostContainer,
    ingressClassName: data.ingressClassName || d.ingressClassName,
    ...(data.ingressNamespace ? { ingressNamespace: data.ingressNamespace } : {}),
    ...(data.gatewayName
      ? {
          gateway: {
            name: data.gatewayName,
            namespace: data.gatewayNamespace,
            ...(data.gatewaySectionName ? { sectionName: data.gatewaySectionName } : {}),
          },
        }
      : {}),
    hostControlPlanes: bool('hostControlPlanes', true),
    ...(data.hostingApiCidrs || data.hostingApiPorts ? { hostingApi: hostingApi() } : {}),
    ...(data.bootstrapSecretNamespaces ? { bootstrapSecretNamespaces: namespaces('bootstrapSecretNamespaces') } : {}),
    ...(data.activator ? { activator: bool('activator') } : {}),
    ...(data.idleTimeout ? { idleTimeout: idleTimeout(data.idleTimeout) } : {}),
    ...(data.bootSlots ? { bootSlots: bootSlots(data.bootSlots) } : {}),
    ...(data.managerIdleTimeout
      ? { managerIdleTimeout: idleTimeout(data.managerIdleTimeout, 'managerIdleTimeout') }
      : {}),
    ...(data.postgresHost
      ? {
          postgres: {
            host: data.postgresHost,
            port: int('postgresPort', d.postgresPort),
            superuser: data.postgresSuperuser || d.postgresSuperuser,
            passwordSecret: data.postgresPasswordSecret || d.postgresPasswordSecret,
            passwordKey: data.postgresPasswordKey || d.postgresPasswordKey,
            sslMode: data.postgresSslMode || d.postgresSslMode,
            bundled: bool('postgresBundled'),
            ...(data.postgresCaSecret
              ? { ca: { secret: data.postgresCaSecret, key: data.postgresCaKey || POSTGRES_CA_KEY } }
              : {}),
          },
        }
      : {}),
  };
}
