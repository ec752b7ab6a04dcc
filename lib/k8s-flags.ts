// Flags of a k8s tenant's components that come from props: the Kubernetes release, OIDC authentication and extra
// arguments. Each is validated here as kube-apiserver would validate it at start, so synth refuses what would keep
// the API server from starting.
import { KubeflexConfigError, checkDnsSubdomain } from './errors';
import { DEFAULT_KUBERNETES_MINOR, KUBERNETES_RELEASES, KubernetesRelease } from './versions';

/** Resolves `kubernetesVersion` ("1.33", "v1.33" or the exact pinned patch "v1.33.13") to a supported release. */
export function resolveKubernetesRelease(
  construct: string,
  value: string | undefined,
): KubernetesRelease & { minor: string } {
  const minor = value === undefined ? DEFAULT_KUBERNETES_MINOR : /^v?(1\.\d+)(\.\d+)?$/.exec(value)?.[1];
  const release = minor !== undefined ? KUBERNETES_RELEASES[minor] : undefined;
  const supported = Object.entries(KUBERNETES_RELEASES)
    .map(([m, r]) => `${m} (${r.version})`)
    .join(', ');
  if (!release || (value !== undefined && /\.\d+\.\d+$/.test(value) && value.replace(/^v?/, 'v') !== release.version)) {
    throw new KubeflexConfigError(construct, 'kubernetesVersion', value, `is not supported; supported: ${supported}`);
  }
  return { ...release, minor: minor! };
}

/** OIDC authentication of a tenant API server: tokens of one issuer and client, rendered as `--oidc-*` flags. */
export interface OidcAuthentication {
  /** Issuer URL: https, no query, fragment or user info. Must equal the tokens' `iss` claim. */
  readonly issuerUrl: string;
  /** Client ID the tokens must be issued for (their `aud` claim). */
  readonly clientId: string;
  /** Claim that holds the user name. @default "sub" */
  readonly usernameClaim?: string;
  /**
   * Prefix of user names, so OIDC users cannot collide with other users. "-" means no prefix.
   * @default "oidc:"
   */
  readonly usernamePrefix?: string;
  /** Claim that holds the user's groups. @default - no groups from tokens */
  readonly groupsClaim?: string;
  /** Prefix of group names. @default "oidc:" */
  readonly groupsPrefix?: string;
  /** Claims every token must carry with exactly these values. @default - none */
  readonly requiredClaims?: Record<string, string>;
  /** Accepted signing algorithms. @default ["RS256"] */
  readonly signingAlgs?: string[];
  /**
   * ConfigMap in `<name>-system` holding the CA certificate of the issuer's TLS server, and its key.
   * @default - the API server image's trust store
   */
  readonly caConfigMap?: { readonly name: string; readonly key?: string };
}

/** Mount path of the issuer's CA in the API server container. */
export const OIDC_CA_DIR = '/etc/kubernetes/oidc';
const SIGNING_ALGS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'];
const CLAIM = /^[A-Za-z0-9_.:/-]{1,253}$/;

/** The `--oidc-*` flags of `oidc`, validated. */
export function oidcFlags(construct: string, oidc: OidcAuthentication): string[] {
  const fail = (prop: string, value: unknown, why: string) => {
    throw new KubeflexConfigError(construct, `oidc.${prop}`, value, why);
  };
  let url: URL | undefined;
  try {
    url = new URL(oidc.issuerUrl);
  } catch {
    fail('issuerUrl', oidc.issuerUrl, 'must be an https URL');
  }
  if (url!.protocol !== 'https:') fail('issuerUrl', oidc.issuerUrl, 'must use https (kube-apiserver refuses http)');
  if (url!.search || url!.hash || url!.username || url!.password || /[?#]/.test(oidc.issuerUrl)) {
    fail('issuerUrl', oidc.issuerUrl, 'must not have a query, fragment or user info');
  }
  if (typeof oidc.clientId !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(oidc.clientId) || oidc.clientId.includes(',')) {
    fail('clientId', oidc.clientId, 'must be 1-256 printable characters without spaces or commas');
  }
  for (const prop of ['usernameClaim', 'groupsClaim'] as const) {
    const v = oidc[prop];
    if (v !== undefined && !CLAIM.test(v)) fail(prop, v, 'must be a claim name (letters, digits, _ . : / -)');
  }
  for (const prop of ['usernamePrefix', 'groupsPrefix'] as const) {
    const v = oidc[prop];
    if (v === undefined) continue;
    if (!/^[\x21-\x7e]{1,64}$/.test(v) || v.includes(','))
      fail(prop, v, 'must be 1-64 printable characters without spaces or commas');
    // A token must never name a system user or group (system:masters would be cluster-admin).
    if (v.startsWith('system:')) fail(prop, v, 'must not start with "system:"');
  }
  if (oidc.groupsPrefix !== undefined && oidc.groupsClaim === undefined) {
    fail('groupsPrefix', oidc.groupsPrefix, 'needs groupsClaim');
  }
  for (const [k, v] of Object.entries(oidc.requiredClaims ?? {})) {
    if (!CLAIM.test(k)) fail(`requiredClaims.${k}`, k, 'must be a claim name (letters, digits, _ . : / -)');
    if (typeof v !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(v) || /[,=]/.test(v))
      fail(`requiredClaims.${k}`, v, 'must be 1-256 printable characters without spaces, commas or "="');
  }
  const algs = oidc.signingAlgs ?? ['RS256'];
  if (!algs.length) fail('signingAlgs', algs, `must name at least one of ${SIGNING_ALGS.join(', ')}`);
  for (const a of algs) {
    if (!SIGNING_ALGS.includes(a)) fail('signingAlgs', a, `must be one of ${SIGNING_ALGS.join(', ')}`);
  }
  if (oidc.caConfigMap) {
    checkDnsSubdomain(construct, 'oidc.caConfigMap.name', oidc.caConfigMap.name);
    const key = oidc.caConfigMap.key ?? 'ca.crt';
    if (!/^[-._a-zA-Z0-9]{1,253}$/.test(key) || key === '.' || key === '..') {
      fail('caConfigMap.key', key, 'must be a ConfigMap key (letters, digits, - _ .)');
    }
  }
  const groups = oidc.groupsClaim;
  return [
    `--oidc-issuer-url=${oidc.issuerUrl}`,
    `--oidc-client-id=${oidc.clientId}`,
    `--oidc-username-claim=${oidc.usernameClaim ?? 'sub'}`,
    `--oidc-username-prefix=${oidc.usernamePrefix ?? 'oidc:'}`,
    ...(groups ? [`--oidc-groups-claim=${groups}`, `--oidc-groups-prefix=${oidc.groupsPrefix ?? 'oidc:'}`] : []),
    ...Object.entries(oidc.requiredClaims ?? {})
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `--oidc-required-claim=${k}=${v}`),
    `--oidc-signing-algs=${algs.join(',')}`,
    ...(oidc.caConfigMap ? [`--oidc-ca-file=${OIDC_CA_DIR}/ca.crt`] : []),
  ];
}

/** Extra command-line arguments per component of a k8s tenant, flag name (without dashes) to value. */
export interface K8sExtraArgs {
  /** kube-apiserver. @default - none */
  readonly apiServer?: Record<string, string>;
  /** kube-controller-manager. @default - none */
  readonly controllerManager?: Record<string, string>;
  /** kine. @default - none */
  readonly kine?: Record<string, string>;
}

/**
 * Flags that change who a tenant's components trust: authentication, authorization, admission, TLS, audit, encryption
 * and the storage connection (security review N5). Refused in extraArgs whether or not the construct renders them;
 * a prefix covers a whole family (every `--oidc-*` flag, say), so a flag added by a later release is refused too.
 */
const TRUST_FLAGS: Record<keyof K8sExtraArgs, { readonly prefixes: string[]; readonly names: string[] }> = {
  apiServer: {
    prefixes: [
      'oidc-',
      'authentication-',
      'authorization-',
      'admission-',
      'audit-',
      'etcd-',
      'requestheader-',
      'service-account-',
      'encryption-provider-',
      'tls-',
      'proxy-client-',
      'kubelet-client-',
      'kubelet-certificate-',
      'insecure-',
    ],
    names: [
      'token-auth-file',
      'basic-auth-file',
      'enable-admission-plugins',
      'disable-admission-plugins',
      'anonymous-auth',
      'client-ca-file',
      'enable-bootstrap-token-auth',
      'storage-backend',
      'cert-dir',
      'api-audiences',
    ],
  },
  controllerManager: {
    prefixes: ['authentication-', 'authorization-', 'requestheader-', 'tls-', 'cluster-signing-', 'service-account-'],
    names: ['client-ca-file', 'root-ca-file', 'kubeconfig', 'use-service-account-credentials', 'cert-dir'],
  },
  kine: {
    prefixes: ['server-', 'endpoint'],
    names: ['ca-file', 'cert-file', 'key-file', 'listen-address'],
  },
};

/**
 * Appends `extra` to `owned` as `--name=value` (sorted, so output is deterministic), refusing a flag that `owned`
 * already sets: the flags we render carry the tenant's security and wiring, and a second value of a flag silently
 * wins or merges depending on the flag.
 */
export function withExtraArgs(
  construct: string,
  component: keyof K8sExtraArgs,
  owned: string[],
  extra: Record<string, string> | undefined,
): string[] {
  const ownedNames = new Set(owned.map((a) => a.replace(/^--/, '').split('=')[0]));
  const out = [...owned];
  for (const name of Object.keys(extra ?? {}).sort()) {
    const value = extra![name];
    const prop = `extraArgs.${component}.${name}`;
    if (!/^[a-z0-9][a-z0-9-]{0,99}$/.test(name)) {
      throw new KubeflexConfigError(construct, prop, name, 'must be a flag name without leading dashes (a-z, 0-9, -)');
    }
    if (ownedNames.has(name)) {
      throw new KubeflexConfigError(
        construct,
        prop,
        value,
        `--${name} is set by the construct (${owned.find((a) => a.startsWith(`--${name}=`) || a === `--${name}`)}); set it through its prop (replicas, oidc, allowPrivileged, serviceClusterIpRange, kubernetesVersion) or the ApiObject.of() escape hatch`,
      );
    }
    const trust = TRUST_FLAGS[component];
    if (trust.names.includes(name) || trust.prefixes.some((p) => name.startsWith(p))) {
      throw new KubeflexConfigError(
        construct,
        prop,
        value,
        `--${name} changes whom the tenant trusts (authentication, authorization, admission, TLS, audit, encryption or storage) and is refused in extraArgs; use the construct's props (oidc, allowPrivileged, serviceClusterIpRange, ...) or, knowingly, the ApiObject.of() escape hatch`,
      );
    }
    if (typeof value !== 'string' || /[\n\r\0]/.test(value)) {
      throw new KubeflexConfigError(construct, prop, value, 'must be a string on one line');
    }
    if (value.includes('$(')) {
      // The kubelet expands $(VAR) in args from the container's environment: $(KINE_DB_PASSWORD) would put the
      // database password on the command line.
      throw new KubeflexConfigError(
        construct,
        prop,
        value,
        'must not contain "$(": the kubelet expands $(VAR) from the environment',
      );
    }
    out.push(`--${name}=${value}`);
  }
  return out;
}
