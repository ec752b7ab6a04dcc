// The controller's pure core: from observed state (a ControlPlane, its Secrets, workload and hook readiness) to
// desired Secrets and status. No I/O here; lib/controller/reconcile.ts feeds it, lib/kube/client.ts talks to the
// API server. Randomness (new keys, passwords) is the only side effect.
import { randomBytes } from 'crypto';
import { renderHookTemplates } from '../hook-render';
import type { HostingConfig } from '../hosting-config';
import { parseKubeconfig, ParsedKubeconfig, renderKubeconfig, renderParsed, tokenTimes } from '../kube/kubeconfig';
import { HOSTING_NAMESPACE, TenantNames } from '../names';
import {
  ADMIN_GROUP,
  ADMIN_KUBECONFIG_KEYS,
  CONFIG_KUBECONFIG_KEYS,
  typeContract,
  WorkloadRef,
  POSTGRES_CA_KEY,
  MATERIALIZE_ERROR,
  POSTGRES_TLS_SECRET,
  TENANT_DATABASE_MARK_KEY,
  tenantDatabaseMark,
  K3S_CA_SECRET,
  K3S_KUBECONFIG_SECRET,
  K8S_SECRETS,
  VCLUSTER_KUBECONFIG_SECRET,
  VCLUSTER_RELEASE,
  Condition,
  ControlPlaneObject,
  ControlPlaneStatus,
  HookUse,
  hookUses,
  MANAGED_BY,
  SecretRef,
} from '../wire';
import { certProblem, issue, KeyAndCert, newServiceAccountKey, publicKeyMatches } from './x509';

// The ControlPlane object and KubeFlex's marks live in the ground floor (wire.ts), shared with the materializer and
// kflex; re-exported for the controller's own files.
export { FINALIZER, MANAGED_BY, hookUses } from '../wire';
export type { Condition, ControlPlaneObject, ControlPlaneStatus, HookUse, SecretRef } from '../wire';

/** Decoded Secret data. */
export type SecretData = Record<string, string>;

/** A Secret the controller wants to exist with (at least) these keys. */
export interface SecretWrite {
  readonly namespace: string;
  readonly name: string;
  /** Complete data to store (existing keys the controller does not own are carried over). */
  readonly data: SecretData;
  /** Why it is written, for the log. */
  readonly reason: string;
}

/** Certificate lifetimes. */
export interface MintOptions {
  readonly now: Date;
  /** Validity of every leaf certificate the controller issues. */
  readonly certValiditySeconds: number;
  /**
   * Validity of the CAs. Longer than the leaves (as kubeadm does) so that routine leaf rotation never changes the
   * trust root that users' kubeconfigs carry. @default 5 x certValiditySeconds
   */
  readonly caValiditySeconds?: number;
}

/** Renew when less than a third of the validity (at most 30 days) remains. */
export const renewBeforeSeconds = (validity: number) => Math.min(validity / 3, 30 * 86400);

/** A random password: 32 URL-safe characters (192 bits). */
export const newPassword = () => randomBytes(24).toString('base64url');

/**
 * A host plane is the hosting cluster itself: its ServiceAccount token is only usable against the in-cluster address,
 * and the hosting API server's external address is not known to us, so no off-cluster kubeconfig is made.
 */
export const HOST_NO_OFF_CLUSTER_KUBECONFIG =
  'no off-cluster kubeconfig: a host control plane is the hosting cluster itself, so status.secretRef names only ' +
  'inClusterKey; off the cluster, use your own kubeconfig of the hosting cluster';

/**
 * KubeFlex's kubeconfig Secret per type (wire contract, reference §2.9). Every key named exists in the Secret: an
 * external plane's kubeconfig reaches the adopted cluster's own address from anywhere, so it is written under both
 * keys; a host plane has no off-cluster key (HOST_NO_OFF_CLUSTER_KUBECONFIG says so in its status).
 */
export function secretRefFor(type: string, names: TenantNames): SecretRef | undefined {
  const contract = typeContract(type);
  return contract && { namespace: names.namespace, ...contract.kubeconfig };
}

/** The workload whose readiness makes the tenant API "ready" (KubeFlex's apiServerReady). */
export function workloadFor(type: string): WorkloadRef | undefined {
  return typeContract(type)?.apiWorkload;
}

// ---- Secrets per type --------------------------------------------------------------------------------------------

type Lookup = (namespace: string, name: string) => SecretData | undefined;

/** Result of planning a tenant's Secrets: what to write, or what the controller is waiting for. */
export interface SecretPlan {
  readonly writes: SecretWrite[];
  /** Set when a Secret the controller derives from is not there yet (not an error: Ready stays False). */
  readonly waitingFor?: string;
}

/** Off-cluster URL of a tenant: `https://<cp>.<domain>:<externalPort>`, or the OpenShift Route host on 443. */
export function externalUrl(names: TenantNames, config: HostingConfig, routeHost?: string): string {
  return routeHost ? `https://${routeHost}` : `https://${names.host(config.domain)}:${config.externalPort}`;
}

function write(lookup: Lookup, namespace: string, name: string, desired: SecretData, reason: string): SecretWrite {
  return { namespace, name, data: { ...(lookup(namespace, name) ?? {}), ...desired }, reason };
}

function ensureCa(existing: SecretData | undefined, certKey: string, keyKey: string, cn: string, opts: MintOptions) {
  const validity = opts.caValiditySeconds ?? 5 * opts.certValiditySeconds;
  const problem = certProblem(
    existing?.[certKey],
    // A CA must outlive every leaf it signs.
    {
      key: existing?.[keyKey] ?? '',
      renewBeforeSeconds: Math.max(renewBeforeSeconds(validity), opts.certValiditySeconds),
    },
    opts.now,
  );
  if (!problem) return { ca: { cert: existing![certKey], key: existing![keyKey] }, problem };
  const ca = issue({ subject: { cn }, usage: 'ca', validitySeconds: validity }, opts.now);
  return { ca, problem };
}

/** A client-certificate kubeconfig, kept when still valid for `server` and `ca`, otherwise issued anew. */
function clientKubeconfig(
  existing: string | undefined,
  want: { server: string; ca: KeyAndCert; cn: string; o?: string[]; cluster: string; user: string; context: string },
  opts: MintOptions,
): { text: string; problem?: string } {
  let problem: string | undefined;
  if (existing) {
    try {
      const kc = parseKubeconfig(existing);
      if (kc.server !== want.server) problem = `server is ${kc.server}, want ${want.server}`;
      else if (kc.caCert !== want.ca.cert) problem = 'CA changed';
      else
        problem = certProblem(
          kc.cert,
          {
            ca: want.ca.cert,
            key: kc.key ?? '',
            renewBeforeSeconds: renewBeforeSeconds(opts.certValiditySeconds),
            subject: { cn: want.cn, o: want.o },
          },
          opts.now,
        );
      if (!problem) return { text: existing };
    } catch (e) {
      problem = `unreadable (${(e as Error).message})`;
    }
  } else {
    problem = 'missing';
  }
  const client = issue(
    { subject: { cn: want.cn, o: want.o }, usage: 'client', validitySeconds: opts.certValiditySeconds },
    opts.now,
    want.ca,
  );
  const text = renderKubeconfig({
    server: want.server,
    caCert: want.ca.cert,
    credentials: client,
    clusterName: want.cluster,
    userName: want.user,
    contextName: want.context,
  });
  return { text, problem };
}

/** The SANs of a k8s tenant's API server certificate (KubeFlex's list, with the configured host container). */
export function apiServerSans(names: TenantNames, config: HostingConfig, routeHost?: string): string[] {
  const svc = `${names.name}.${names.namespace}`;
  return [
    'kubernetes',
    'kubernetes.default',
    'kubernetes.default.svc',
    'kubernetes.default.svc.cluster',
    'kubernetes.default.svc.cluster.local',
    'localhost',
    '127.0.0.1',
    config.hostContainer,
    svc,
    `${svc}.svc`,
    `${svc}.svc.cluster`,
    `${svc}.svc.cluster.local`,
    names.host(config.domain),
    ...(routeHost ? [routeHost] : []),
  ];
}

/** In-cluster URL of a k8s tenant (KubeFlex's). */
export const k8sInClusterUrl = (names: TenantNames) => `https://${names.name}.${names.namespace}.svc.cluster.local`;

/** k8s: `k8s-certs`, `admin-kubeconfig`, `cm-kubeconfig` and the database password in both places it is read. */
export function planK8sSecrets(
  names: TenantNames,
  planeUid: string,
  config: HostingConfig,
  lookup: Lookup,
  opts: MintOptions,
  routeHost?: string,
): SecretPlan {
  const ns = names.namespace;
  const writes: SecretWrite[] = [];
  const renew = renewBeforeSeconds(opts.certValiditySeconds);
  const old = lookup(ns, K8S_SECRETS.certs);
  const { ca, problem: caProblem } = ensureCa(old, 'ca.crt', 'ca.key', 'kubernetes', opts);
  // A front-proxy CA of its own (security review M3): with the cluster CA, any client certificate the tenant's KCM
  // signs for CN=front-proxy-client could send X-Remote-Group: system:masters. Its key is mounted nowhere.
  const fp = ensureCa(old, 'front-proxy-ca.crt', 'front-proxy-ca.key', 'front-proxy-ca', opts);
  const certs: SecretData = {
    'ca.crt': ca.cert,
    'ca.key': ca.key,
    'front-proxy-ca.crt': fp.ca.cert,
    'front-proxy-ca.key': fp.ca.key,
  };
  const reasons: string[] = caProblem ? [`CA ${caProblem}`] : [];
  if (fp.problem) reasons.push(`front-proxy CA ${fp.problem}`);
  const leaf = (
    prefix: string,
    cn: string,
    usage: 'server-client' | 'client',
    sans?: string[],
    signer: { ca: KeyAndCert; problem?: string } = { ca, problem: caProblem },
  ) => {
    const problem = signer.problem
      ? 'new CA'
      : certProblem(
          old?.[`${prefix}.crt`],
          { ca: signer.ca.cert, key: old?.[`${prefix}.key`] ?? '', sans, renewBeforeSeconds: renew },
          opts.now,
        );
    if (!problem) {
      certs[`${prefix}.crt`] = old![`${prefix}.crt`];
      certs[`${prefix}.key`] = old![`${prefix}.key`];
      return;
    }
    if (!signer.problem) reasons.push(`${prefix} ${problem}`);
    const kc = issue({ subject: { cn }, usage, sans, validitySeconds: opts.certValiditySeconds }, opts.now, signer.ca);
    certs[`${prefix}.crt`] = kc.cert;
    certs[`${prefix}.key`] = kc.key;
  };
  leaf('apiserver', 'kube-apiserver', 'server-client', apiServerSans(names, config, routeHost));
  leaf('apiserver-kubelet-client', 'apiserver-kubelet-client', 'client');
  leaf('front-proxy-client', 'front-proxy-client', 'client', undefined, fp);
  if (publicKeyMatches(old?.['sa.key'], old?.['sa.pub'])) {
    certs['sa.key'] = old!['sa.key'];
    certs['sa.pub'] = old!['sa.pub'];
  } else {
    // A new signing key invalidates the tenant's existing service-account tokens; only done when it is unusable.
    reasons.push('service-account key pair missing or mismatched');
    const sa = newServiceAccountKey();
    certs['sa.key'] = sa.key;
    certs['sa.pub'] = sa.pub;
  }
  if (reasons.length) writes.push(write(lookup, ns, K8S_SECRETS.certs, certs, reasons.join('; ')));

  const triple = names.kubeconfig;
  const admin = lookup(ns, K8S_SECRETS.adminKubeconfig);
  const adminWant = { ca, cn: 'kubernetes-admin', o: [ADMIN_GROUP], ...triple };
  const off = clientKubeconfig(
    admin?.kubeconfig,
    { ...adminWant, server: externalUrl(names, config, routeHost) },
    opts,
  );
  const inc = clientKubeconfig(
    admin?.[ADMIN_KUBECONFIG_KEYS.inClusterKey],
    { ...adminWant, server: k8sInClusterUrl(names) },
    opts,
  );
  if (off.problem || inc.problem) {
    const why = [off.problem && `kubeconfig ${off.problem}`, inc.problem && `kubeconfig-incluster ${inc.problem}`];
    writes.push(
      write(
        lookup,
        ns,
        K8S_SECRETS.adminKubeconfig,
        { [ADMIN_KUBECONFIG_KEYS.key]: off.text, [ADMIN_KUBECONFIG_KEYS.inClusterKey]: inc.text },
        why.filter(Boolean).join('; '),
      ),
    );
  }
  const cm = clientKubeconfig(
    lookup(ns, K8S_SECRETS.controllerManagerKubeconfig)?.kubeconfig,
    {
      ca,
      cn: 'system:kube-controller-manager',
      server: k8sInClusterUrl(names),
      ...triple,
      user: 'system:kube-controller-manager',
    },
    opts,
  );
  if (cm.problem)
    writes.push(
      write(lookup, ns, K8S_SECRETS.controllerManagerKubeconfig, { kubeconfig: cm.text }, `kubeconfig ${cm.problem}`),
    );

  // Tenant Secrets are encrypted before kine stores them in the shared PostgreSQL (security review M1). The key is
  // minted once and never rotated here: a new key would make every stored Secret unreadable.
  const enc = lookup(ns, K8S_SECRETS.encryption)?.[ENCRYPTION_CONFIG_KEY];
  if (!enc || !/aescbc:/.test(enc)) {
    writes.push(
      write(
        lookup,
        ns,
        K8S_SECRETS.encryption,
        { [ENCRYPTION_CONFIG_KEY]: encryptionConfig(randomBytes(32).toString('base64')) },
        'encryption key missing',
      ),
    );
  }

  // One password, kept in the hosting namespace (what the controller sets on the role) and read by kine (tenant
  // namespace). The hosting copy is the one provisioned, so it wins if they ever differ.
  const hostingCopy = lookup(HOSTING_NAMESPACE, names.hostingDatabaseSecret)?.password;
  const tenantData = lookup(ns, K8S_SECRETS.database);
  const tenantCopy = tenantData?.password;
  const password = hostingCopy || tenantCopy || newPassword();
  // kine verifies PostgreSQL with a copy of its CA certificate (review M2): it cannot read kubeflex-system.
  const caRef = config.postgres?.ca;
  const pgCa = caRef && lookup(HOSTING_NAMESPACE, caRef.secret)?.[caRef.key];
  const waitingFor = caRef && !pgCa ? `Secret ${HOSTING_NAMESPACE}/${caRef.secret} key ${caRef.key}` : undefined;
  // The database's mark names this ControlPlane's UID (review N6): provisioning refuses a database of another plane.
  const mark = tenantDatabaseMark(planeUid);
  const hostingMark = lookup(HOSTING_NAMESPACE, names.hostingDatabaseSecret)?.[TENANT_DATABASE_MARK_KEY];
  if (hostingCopy !== password || hostingMark !== mark) {
    writes.push(
      write(
        lookup,
        HOSTING_NAMESPACE,
        names.hostingDatabaseSecret,
        { password, database: names.database, username: names.databaseRole, [TENANT_DATABASE_MARK_KEY]: mark },
        hostingCopy !== password ? 'database password missing' : 'database mark missing',
      ),
    );
  }
  const caStale = pgCa !== undefined && tenantData?.[POSTGRES_CA_KEY] !== pgCa;
  if (tenantCopy !== password || caStale) {
    writes.push(
      write(
        lookup,
        ns,
        K8S_SECRETS.database,
        { password, ...(pgCa ? { [POSTGRES_CA_KEY]: pgCa } : {}) },
        tenantCopy !== password
          ? tenantCopy
            ? 'database password differs from the provisioned one'
            : 'database password missing'
          : 'PostgreSQL CA certificate changed',
      ),
    );
  }
  return { writes, waitingFor };
}

/** k3s: the CAs k3s is seeded with, and `k3s-config` with kubeconfigs signed by them (no privileged helper Job). */
export function planK3sSecrets(
  names: TenantNames,
  config: HostingConfig,
  lookup: Lookup,
  opts: MintOptions,
): SecretPlan {
  const ns = names.namespace;
  const old = lookup(ns, K3S_CA_SECRET);
  const data: SecretData = {};
  const reasons: string[] = [];
  const cas: Record<string, KeyAndCert> = {};
  for (const [prefix, cn] of [
    ['server-ca', 'k3s-server-ca'],
    ['client-ca', 'k3s-client-ca'],
    ['request-header-ca', 'k3s-request-header-ca'],
  ]) {
    const { ca, problem } = ensureCa(old, `${prefix}.crt`, `${prefix}.key`, cn, opts);
    if (problem) reasons.push(`${prefix} ${problem}`);
    cas[prefix] = ca;
    data[`${prefix}.crt`] = ca.cert;
    data[`${prefix}.key`] = ca.key;
  }
  const writes: SecretWrite[] = [];
  if (reasons.length) writes.push(write(lookup, ns, K3S_CA_SECRET, data, reasons.join('; ')));
  const existing = lookup(ns, K3S_KUBECONFIG_SECRET);
  const want = {
    ca: cas['client-ca'],
    cn: 'system:admin',
    o: [ADMIN_GROUP],
    cluster: names.kubeconfig.cluster,
    user: names.kubeconfig.user,
    context: names.name,
  };
  // The client certificate is signed by client-ca, but clients must trust server-ca: build with client-ca, then
  // swap the cluster CA. Validity is checked against client-ca, the CA data against server-ca.
  const build = (current: string | undefined, server: string) => {
    const swapped = current?.replace(b64(cas['server-ca'].cert), b64(cas['client-ca'].cert));
    const r = clientKubeconfig(swapped, { ...want, server }, opts);
    return { text: r.text.replace(b64(cas['client-ca'].cert), b64(cas['server-ca'].cert)), problem: r.problem };
  };
  const off = build(existing?.config, externalUrl(names, config));
  const inc = build(existing?.[CONFIG_KUBECONFIG_KEYS.inClusterKey], `https://${names.serviceHost('k3s')}`);
  if (off.problem || inc.problem) {
    const why = [off.problem && `config ${off.problem}`, inc.problem && `config-incluster ${inc.problem}`];
    writes.push(
      write(
        lookup,
        ns,
        K3S_KUBECONFIG_SECRET,
        { [CONFIG_KUBECONFIG_KEYS.key]: off.text, [CONFIG_KUBECONFIG_KEYS.inClusterKey]: inc.text },
        why.filter(Boolean).join('; '),
      ),
    );
  }
  return { writes };
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** Path of the tenant ClusterRoleBinding that makes ADMIN_GROUP cluster-admin. */
export const ADMIN_BINDING_PATH = `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${ADMIN_GROUP}`;

/** The tenant ClusterRoleBinding that makes ADMIN_GROUP cluster-admin (server-side applied by the controller). */
export function adminBinding(): Record<string, unknown> {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: ADMIN_GROUP, labels: { ...MANAGED_BY } },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: ADMIN_GROUP }],
  };
}

/** The CA that signs a tenant's client certificates (k8s: the cluster CA; k3s: its client CA), when minted. */
export function clientSigner(type: string, names: TenantNames, lookup: Lookup): KeyAndCert | undefined {
  const [secret, prefix] =
    type === 'k8s' ? [K8S_SECRETS.certs, 'ca'] : type === 'k3s' ? [K3S_CA_SECRET, 'client-ca'] : [];
  const data = secret ? lookup(names.namespace, secret) : undefined;
  const cert = data?.[`${prefix}.crt`];
  const key = data?.[`${prefix}.key`];
  return cert && key ? { cert, key } : undefined;
}

/**
 * A five-minute `system:masters` credential for the controller's one call that creates the admin binding. It is
 * made in memory when needed and never stored, so no Secret holds a credential that bypasses the tenant's RBAC.
 */
export function bootstrapCredentials(signer: KeyAndCert, now: Date): KeyAndCert {
  return issue(
    { subject: { cn: 'kubeflex-controller', o: ['system:masters'] }, usage: 'client', validitySeconds: 300 },
    now,
    signer,
  );
}

/** vcluster: `config-incluster` derived from the syncer's `config` with the in-cluster Service URL (KubeFlex's). */
export function planVClusterSecrets(names: TenantNames, lookup: Lookup): SecretPlan {
  const ns = names.namespace;
  const existing = lookup(ns, VCLUSTER_KUBECONFIG_SECRET);
  if (!existing?.config)
    return { writes: [], waitingFor: `the vCluster syncer to write Secret ${ns}/${VCLUSTER_KUBECONFIG_SECRET}` };
  // The syncer's Secret is writable from the tenant side: only validated fields are carried over (no exec, files,
  // proxy or impersonation can reach config-incluster, which the controller itself then uses).
  let parsed: ParsedKubeconfig;
  try {
    parsed = parseKubeconfig(existing.config);
  } catch (e) {
    throw new Error(`Secret ${ns}/${VCLUSTER_KUBECONFIG_SECRET} key config is refused: ${(e as Error).message}`);
  }
  const text = renderParsed({ ...parsed, server: `https://${VCLUSTER_RELEASE}.${ns}` }, parsed);
  if (existing[CONFIG_KUBECONFIG_KEYS.inClusterKey] === text) return { writes: [] };
  return {
    writes: [
      write(
        lookup,
        ns,
        VCLUSTER_KUBECONFIG_SECRET,
        { [CONFIG_KUBECONFIG_KEYS.inClusterKey]: text },
        'config-incluster out of date',
      ),
    ],
  };
}

/** What to do about a host plane's token: keep it until its renewal time, or mint one with the TokenRequest API. */
export type HostTokenPlan = { action: 'keep'; renewAt?: Date } | { action: 'mint'; reason: string };

/**
 * host: `admin-kubeconfig` carries a TokenRequest token of ServiceAccount `<cp>`, renewed after `renewFraction` of
 * its lifetime like adopted clusters' tokens: never a non-expiring legacy token Secret (security review H4).
 */
export function planHostToken(admin: SecretData | undefined, now: Date, renewFraction = 0.8): HostTokenPlan {
  const current = admin?.[ADMIN_KUBECONFIG_KEYS.inClusterKey];
  if (!current) return { action: 'mint', reason: 'kubeconfig-incluster missing' };
  let token: string | undefined;
  try {
    token = parseKubeconfig(current).token;
  } catch {
    return { action: 'mint', reason: 'kubeconfig-incluster unreadable' };
  }
  const exp = token ? tokenTimes(token).exp : undefined;
  if (!token || exp === undefined) return { action: 'mint', reason: 'token without expiry replaced' };
  const renewAt = tokenRenewAt(token, renewFraction);
  if (renewAt && now < renewAt) return { action: 'keep', renewAt };
  return { action: 'mint', reason: `token renewal (expires ${new Date(exp * 1000).toISOString()})` };
}

/** host: the kubeconfig for a minted token of ServiceAccount `<cp>`, against the in-cluster API server. */
export function hostKubeconfig(names: TenantNames, caCert: string, token: string): string {
  return renderKubeconfig({
    server: 'https://kubernetes.default.svc',
    caCert,
    credentials: { token },
    clusterName: names.kubeconfig.cluster,
    userName: names.kubeconfig.user,
    contextName: names.name,
  });
}

/** The names the bundled PostgreSQL's certificate is valid for: its Service, and loopback for clients in its pod. */
export function postgresSans(host: string): string[] {
  const service = host.replace(/\.svc(\.cluster\.local)?$/, '');
  const [name] = service.split('.');
  return [...new Set([host, `${service}.svc`, `${service}.svc.cluster.local`, service, name, 'localhost'])];
}

/**
 * Shared PostgreSQL, when bundled: the superuser password, minted once, and the TLS Secret (review M2): a CA (kept
 * when an operator supplied `ca.crt`/`ca.key`) and a server certificate for the Service names, renewed before expiry.
 */
export function planHostingSecrets(config: HostingConfig, lookup: Lookup, opts: MintOptions): SecretWrite[] {
  const pg = config.postgres;
  if (!pg?.bundled) return [];
  const writes: SecretWrite[] = [];
  if (!lookup(HOSTING_NAMESPACE, pg.passwordSecret)?.[pg.passwordKey]) {
    writes.push(
      write(
        lookup,
        HOSTING_NAMESPACE,
        pg.passwordSecret,
        { [pg.passwordKey]: newPassword() },
        'superuser password missing',
      ),
    );
  }
  const old = lookup(HOSTING_NAMESPACE, POSTGRES_TLS_SECRET);
  const { ca, problem: caProblem } = ensureCa(old, POSTGRES_CA_KEY, 'ca.key', 'kubeflex-postgres-ca', opts);
  const sans = postgresSans(pg.host);
  const problem = caProblem
    ? `CA ${caProblem}`
    : certProblem(
        old?.['tls.crt'],
        {
          ca: ca.cert,
          key: old?.['tls.key'] ?? '',
          sans,
          renewBeforeSeconds: renewBeforeSeconds(opts.certValiditySeconds),
        },
        opts.now,
      );
  if (problem) {
    const server = issue(
      { subject: { cn: sans[0] }, usage: 'server', sans, validitySeconds: opts.certValiditySeconds },
      opts.now,
      ca,
    );
    writes.push(
      write(
        lookup,
        HOSTING_NAMESPACE,
        POSTGRES_TLS_SECRET,
        { [POSTGRES_CA_KEY]: ca.cert, 'ca.key': ca.key, 'tls.crt': server.cert, 'tls.key': server.key },
        `server certificate ${problem}`,
      ),
    );
  }
  return writes;
}

// ---- External ----------------------------------------------------------------------------------------------------

/** What to do for an external (adopted) cluster. */
export type ExternalPlan =
  | { readonly action: 'keep'; readonly renewAt?: Date }
  | {
      readonly action: 'mint';
      readonly via: ParsedKubeconfig;
      readonly reason: string;
      readonly deleteBootstrap: boolean;
    }
  | { readonly action: 'error'; readonly message: string };

/** Renew a token once `fraction` of its lifetime has passed (KubeFlex never renews). */
export function tokenRenewAt(token: string, fraction = 0.8): Date | undefined {
  const { iat, exp } = tokenTimes(token);
  if (exp === undefined) return undefined;
  const start = iat ?? exp - 3600;
  return new Date((start + fraction * (exp - start)) * 1000);
}

/**
 * Decides how to get (or keep) the adopted cluster's token. The bootstrap kubeconfig is used for the first token;
 * renewals use the current token (its ServiceAccount is cluster-admin there), so the bootstrap Secret can go.
 */
export function planExternal(
  cp: ControlPlaneObject,
  admin: SecretData | undefined,
  bootstrap: SecretData | undefined,
  now: Date,
  renewFraction = 0.8,
): ExternalPlan {
  const ref = cp.spec?.bootstrapSecretRef;
  const current = admin?.[ADMIN_KUBECONFIG_KEYS.inClusterKey];
  if (current) {
    try {
      const kc = parseKubeconfig(current);
      const renewAt = kc.token ? tokenRenewAt(kc.token, renewFraction) : undefined;
      const exp = kc.token ? tokenTimes(kc.token).exp : undefined;
      if (!renewAt || now < renewAt) return { action: 'keep', renewAt };
      if (exp !== undefined && now.getTime() / 1000 < exp - 5) {
        return {
          action: 'mint',
          via: kc,
          reason: `token renewal (expires ${new Date(exp * 1000).toISOString()})`,
          deleteBootstrap: false,
        };
      }
    } catch {
      // fall through to the bootstrap Secret
    }
  }
  if (!ref?.name || !ref.namespace) {
    return {
      action: 'error',
      message:
        'spec.bootstrapSecretRef is missing: an external control plane needs the kubeconfig of the cluster to adopt',
    };
  }
  const where = `bootstrap Secret ${ref.namespace}/${ref.name}`;
  if (!bootstrap) {
    return {
      action: 'error',
      message: current
        ? `the token in admin-kubeconfig has expired and the ${where} is gone: run kflex adopt again`
        : `${where} not found: create it (kflex adopt does) with the kubeconfig of the cluster to adopt`,
    };
  }
  const key = ref.inClusterKey || ADMIN_KUBECONFIG_KEYS.inClusterKey;
  if (!bootstrap[key]) return { action: 'error', message: `${where} has no key "${key}"` };
  try {
    return { action: 'mint', via: parseKubeconfig(bootstrap[key]), reason: 'first token', deleteBootstrap: true };
  } catch (e) {
    return { action: 'error', message: `${where} key "${key}" is not a usable kubeconfig: ${(e as Error).message}` };
  }
}

/**
 * Data of an external plane's `admin-kubeconfig`: the adopted cluster's own address serves in and off the hosting
 * cluster, so the one kubeconfig is written under both keys status.secretRef names.
 */
export const externalAdminData = (kubeconfig: string) => ({
  [ADMIN_KUBECONFIG_KEYS.inClusterKey]: kubeconfig,
  [ADMIN_KUBECONFIG_KEYS.key]: kubeconfig,
});

/** The admin kubeconfig of an adopted cluster: its cluster entry, user and context `<cp>` with the minted token. */
export function externalKubeconfig(names: TenantNames, via: ParsedKubeconfig, token: string): string {
  return renderParsed(via, { userName: names.name, contextName: names.name }, token);
}

// ---- Hooks and status --------------------------------------------------------------------------------------------

/** An object a hook renders, identified as the controller looks it up. */
export interface HookObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
}

/** Renders a hook the way the constructs did, to learn which objects it consists of; error text on failure. */
export function hookObjects(
  cp: ControlPlaneObject,
  names: TenantNames,
  hook: { spec?: { templates?: Record<string, unknown>[]; defaultVars?: { name: string; value: string }[] } },
  use: HookUse,
): HookObjectRef[] | string {
  const r = renderHookTemplates(use.hookName, hook.spec?.templates ?? [], hook.spec?.defaultVars ?? [], {
    controlPlanePath: names.name,
    controlPlaneName: names.name,
    namespace: names.namespace,
    globalVars: cp.spec?.globalVars ?? {},
    vars: use.vars ?? {},
  });
  if ('error' in r)
    return `PostCreateHook "${use.hookName}": ${r.error.prop} ${JSON.stringify(r.error.value)} ${r.error.reason}`;
  return r.objects.map((o) => ({
    apiVersion: o.apiVersion,
    kind: o.kind,
    name: o.metadata.name,
    namespace: o.metadata.namespace,
  }));
}

/** KubeFlex's readiness rules for hook objects; undefined = does not exist. */
export function objectReady(kind: string, obj: any): { ready: boolean; detail: string } {
  if (!obj) return { ready: false, detail: 'not found' };
  const s = obj.status ?? {};
  switch (kind) {
    case 'Deployment':
    case 'StatefulSet': {
      const want = obj.spec?.replicas ?? 1;
      return { ready: (s.readyReplicas ?? 0) >= want, detail: `${s.readyReplicas ?? 0}/${want} replicas ready` };
    }
    case 'Job':
      return {
        ready: (s.succeeded ?? 0) > 0,
        detail: (s.succeeded ?? 0) > 0 ? 'succeeded' : `not succeeded (${s.failed ?? 0} failed pods)`,
      };
    case 'DaemonSet':
      return {
        ready: (s.numberReady ?? 0) === (s.desiredNumberScheduled ?? 0),
        detail: `${s.numberReady ?? 0}/${s.desiredNumberScheduled ?? 0} ready`,
      };
    case 'CustomResourceDefinition': {
      const ok = (s.conditions ?? []).some((c: any) => c.type === 'Established' && c.status === 'True');
      return { ready: ok, detail: ok ? 'established' : 'not established' };
    }
    case 'Pod':
      return { ready: s.phase === 'Running' || s.phase === 'Succeeded', detail: `phase ${s.phase ?? 'Unknown'}` };
    default:
      return { ready: true, detail: 'exists' };
  }
}

/** Workload readiness (KubeFlex: readyReplicas == replicas == spec.replicas > 0). */
export function workloadReady(obj: any): { ready: boolean; detail: string } {
  if (!obj) return { ready: false, detail: 'not found' };
  const want = obj.spec?.replicas ?? 1;
  const s = obj.status ?? {};
  const ready = want > 0 && s.readyReplicas === want && s.replicas === want;
  return { ready, detail: `${s.readyReplicas ?? 0}/${want} replicas ready` };
}

/**
 * What a pass reads of a Deployment, StatefulSet or Job (workloadReady, objectReady, the sleep and parking scale):
 * an event that changes none of it needs no pass.
 */
export function workloadFingerprint(obj: any): string {
  const s = obj?.status ?? {};
  return JSON.stringify([
    obj?.metadata?.generation,
    obj?.metadata?.deletionTimestamp,
    obj?.spec?.replicas,
    s.replicas,
    s.readyReplicas,
    s.succeeded,
    s.failed,
  ]);
}

/** Everything status is computed from. */
export interface StatusInput {
  /** Set when reconciling failed; becomes Synced=False/ReconcileError. */
  readonly syncError?: string;
  /** Why the tenant API is not ready yet; undefined when it is (workload ready and answering discovery). */
  readonly notReady?: string;
  /** Per hook: complete, and what is missing. */
  readonly hooks: { readonly name: string; readonly complete: boolean; readonly detail: string }[];
  readonly secretRef?: SecretRef;
  /** The plane is asleep (SLEEP_ANNOTATION): Ready=False/Sleeping, nothing probed. */
  readonly sleeping?: boolean;
  /** Message of Ready=True (empty unless something about the plane must be said, e.g. no off-cluster kubeconfig). */
  readonly readyMessage?: string;
}

function setCondition(
  previous: Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime' | 'lastUpdateTime'>,
  now: string,
): Condition {
  const old = previous?.find((c) => c.type === next.type);
  const same = old && old.status === next.status && old.reason === next.reason && old.message === next.message;
  // Exactly KubeFlex's six fields: KubeStellar decodes conditions strictly (an extra field is an error there).
  if (same) return { ...next, lastTransitionTime: old.lastTransitionTime, lastUpdateTime: old.lastUpdateTime };
  return {
    ...next,
    lastTransitionTime: old && old.status === next.status ? old.lastTransitionTime : now,
    lastUpdateTime: now,
  };
}

/** The desired status: conditions keep their timestamps unless they change. */
export function computeStatus(cp: ControlPlaneObject, input: StatusInput, now: Date): ControlPlaneStatus {
  const t = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const gen = cp.metadata.generation;
  const prev = cp.status?.conditions;
  const synced = input.syncError
    ? { type: 'Synced' as const, status: 'False' as const, reason: 'ReconcileError', message: input.syncError }
    : { type: 'Synced' as const, status: 'True' as const, reason: 'ReconcileSuccess', message: '' };
  const allHooks = input.hooks.every((h) => h.complete);
  let ready: Omit<Condition, 'lastTransitionTime' | 'lastUpdateTime'>;
  if (input.sleeping && !input.syncError) {
    ready = {
      type: 'Ready',
      status: 'False',
      reason: 'Sleeping',
      message:
        'asleep: workloads scaled to zero, data kept; a client request wakes it (with the activator installed) or kflex wake' +
        // What would keep it from waking (its database not made yet, say) is said while it sleeps, not at the wake.
        (input.notReady ? `; not ready to wake: ${input.notReady}` : ''),
    };
  } else if (input.notReady) {
    ready = { type: 'Ready', status: 'False', reason: 'Unavailable', message: input.notReady };
  } else if (cp.spec?.waitForPostCreateHooks && !allHooks) {
    const waiting = input.hooks.filter((h) => !h.complete).map((h) => `${h.name}: ${h.detail}`);
    ready = {
      type: 'Ready',
      status: 'False',
      reason: 'WaitingForPostCreateHooks',
      message: `Waiting for PostCreateHook completion (${waiting.join('; ')})`,
    };
  } else {
    ready = { type: 'Ready', status: 'True', reason: 'Available', message: input.readyMessage ?? '' };
  }
  const status: ControlPlaneStatus = {
    conditions: [setCondition(prev, synced, t), setCondition(prev, ready, t)],
    observedGeneration: gen,
  };
  if (input.secretRef) status.secretRef = input.secretRef;
  if (input.hooks.length > 0) {
    status.postCreateHooks = Object.fromEntries(input.hooks.map((h) => [h.name, h.complete]));
    status.postCreateHookCompleted = allHooks;
  }
  return status;
}

/** A PostCreateHook as the controller reads it. */
export interface PostCreateHookObject {
  readonly metadata: { readonly name: string; readonly generation?: number; readonly resourceVersion?: string };
  readonly spec?: unknown;
  readonly status?: HookStatus;
}

/** Status of a PostCreateHook: KubeFlex's CRD fields (conditions Synced/Ready, observedGeneration). */
export interface HookStatus {
  conditions?: Condition[];
  observedGeneration?: number;
}

/** How many waiting control planes a hook's Ready message names before "and N more". */
const HOOK_STATUS_NAMES = 20;

/**
 * Status of a PostCreateHook from the ControlPlanes that use it (a hook is shared, so its status aggregates):
 * Ready=True when every plane that uses it has completed it (`status.postCreateHooks[hook]`), else False with the
 * planes still waiting. `kubectl get pch` shows both columns.
 */
export function computeHookStatus(hook: PostCreateHookObject, cps: ControlPlaneObject[], now: Date): HookStatus {
  const t = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const name = hook.metadata.name;
  // The planes that use this hook (deleting ones do not count), by name.
  const using = cps
    .filter((cp) => !cp.metadata.deletionTimestamp && hookUses(cp).some((u) => u.hookName === name))
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  const users = using.map((cp) => ({ name: cp.metadata.name, done: cp.status?.postCreateHooks?.[name] === true }));
  const waiting = users.filter((u) => !u.done).map((u) => u.name);
  const done = users.length - waiting.length;
  const listed =
    waiting.slice(0, HOOK_STATUS_NAMES).join(', ') +
    (waiting.length > HOOK_STATUS_NAMES ? ` and ${waiting.length - HOOK_STATUS_NAMES} more` : '');
  const ready: Omit<Condition, 'lastTransitionTime' | 'lastUpdateTime'> = waiting.length
    ? {
        type: 'Ready',
        status: 'False',
        reason: 'Unavailable',
        message: `completed in ${done} of ${users.length} control planes that use it; waiting in ${listed}`,
      }
    : {
        type: 'Ready',
        status: 'True',
        reason: 'Available',
        message: users.length
          ? `completed in all ${users.length} control planes that use it`
          : 'no control plane uses it',
      };
  const prev = hook.status?.conditions;
  // A plane the materializer refused (its note on the ControlPlane) never runs this hook: say so here too, with why.
  const refused = using.filter((cp) => cp.metadata.annotations?.[MATERIALIZE_ERROR]);
  const synced = refused.length
    ? {
        type: 'Synced' as const,
        status: 'False' as const,
        reason: 'ReconcileError',
        message: `not materialized in ${refused.length} control plane(s) that use it; ${refused[0].metadata.name}: ${refused[0].metadata.annotations![MATERIALIZE_ERROR]}`,
      }
    : { type: 'Synced' as const, status: 'True' as const, reason: 'ReconcileSuccess', message: '' };
  return {
    conditions: [setCondition(prev, synced, t), setCondition(prev, ready, t)],
    observedGeneration: hook.metadata.generation,
  };
}

/** True when writing `next` would change what is stored. */
export function statusChanged(
  current: ControlPlaneStatus | HookStatus | undefined,
  next: ControlPlaneStatus | HookStatus,
): boolean {
  return JSON.stringify(normalize(current ?? {})) !== JSON.stringify(normalize(next));
}

function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .filter((k) => (v as any)[k] !== undefined)
        .map((k) => [k, normalize((v as any)[k])]),
    );
  }
  return v;
}

/** Key of the EncryptionConfiguration in Secret `encryption-config`. */
export const ENCRYPTION_CONFIG_KEY = 'encryption-config.yaml';

/**
 * An EncryptionConfiguration encrypting Secrets with AES-CBC under `key` (base64 of 32 bytes); `identity` second so
 * that data written before encryption was on stays readable.
 */
export function encryptionConfig(key: string): string {
  return [
    'apiVersion: apiserver.config.k8s.io/v1',
    'kind: EncryptionConfiguration',
    'resources:',
    '  - resources: [secrets]',
    '    providers:',
    '      - aescbc:',
    '          keys:',
    '            - name: key1',
    `              secret: ${key}`,
    '      - identity: {}',
    '',
  ].join('\n');
}
