// What the Kubernetes API server checks on the objects we emit, as plain functions (no cdk8s), so synth refuses
// exactly what `kubectl apply` would: ObjectMeta rules (apimachinery's ValidateObjectMeta, also applied to the
// embedded templates of a PostCreateHook by apiextensions), object names by kind, and the Pod Security Standards
// (pod-security-admission, v1.32 policies) for pod templates landing in a namespace with an enforced level.

/** A Pod Security Standard level. */
export type PodSecurityLevel = 'privileged' | 'baseline' | 'restricted';
export const POD_SECURITY_LEVELS: readonly PodSecurityLevel[] = ['privileged', 'baseline', 'restricted'];

/** One problem: where in the object (a field path) and what is wrong. */
export interface ApiProblem {
  readonly path: string;
  readonly message: string;
}

export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export const isDnsLabel = (v: string): boolean => v.length <= 63 && DNS1123_LABEL.test(v);
export const isDnsSubdomain = (v: string): boolean => v.length <= 253 && DNS1123_SUBDOMAIN.test(v);

/** apimachinery's IsQualifiedName: `[prefix/]name`, name at most 63 characters, prefix a DNS subdomain. */
export function isQualifiedName(v: string): boolean {
  const parts = v.split('/');
  if (parts.length > 2) return false;
  const name = parts[parts.length - 1];
  if (!name || name.length > 63 || !QUALIFIED_NAME_PART.test(name)) return false;
  return parts.length === 1 || (parts[0].length > 0 && isDnsSubdomain(parts[0]));
}

export const isLabelValue = (v: string): boolean => v.length <= 63 && LABEL_VALUE.test(v);

const isStringMap = (v: unknown): v is Record<string, string> =>
  !!v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');

/** Name rules of built-in kinds that differ from a DNS-1123 subdomain (k8s.io/kubernetes pkg/apis/.../validation). */
const NAME_RULES: Record<string, NameRule> = {
  Namespace: 'dns-label',
  StatefulSet: 'dns-label',
  Service: 'dns-1035-label',
  Role: 'path-segment',
  ClusterRole: 'path-segment',
  RoleBinding: 'path-segment',
  ClusterRoleBinding: 'path-segment',
};
/** Longest names where a controller derives labels or names from them (Job: job-name label; CronJob: + 11). */
const MAX_NAME: Record<string, number> = { Job: 63, CronJob: 52 };
/** API groups whose kinds are built in: names default to DNS-1123 subdomains; custom kinds need a path segment. */
const BUILT_IN_API_VERSIONS = new Set([
  'v1',
  'apps/v1',
  'batch/v1',
  'rbac.authorization.k8s.io/v1',
  'networking.k8s.io/v1',
  'policy/v1',
  'autoscaling/v2',
  'scheduling.k8s.io/v1',
  'storage.k8s.io/v1',
  'apiextensions.k8s.io/v1',
  'admissionregistration.k8s.io/v1',
  'coordination.k8s.io/v1',
  'discovery.k8s.io/v1',
]);

type NameRule = 'path-segment' | 'dns-subdomain' | 'dns-label' | 'dns-1035-label';

function pathSegmentProblems(v: string, prefix: boolean): string[] {
  if (!prefix && (v === '.' || v === '..')) return [`may not be '${v}'`];
  if (v.includes('/')) return ["may not contain '/'"];
  if (v.includes('%')) return ["may not contain '%'"];
  return [];
}

/**
 * ObjectMeta checks of apimachinery's ValidateObjectMeta: name (by `nameRule`), generateName, namespace, labels,
 * annotations (keys and total size) and finalizers. `meta` may be anything: wrong types are problems too.
 */
export function objectMetaProblems(meta: unknown, at: string, nameRule: NameRule, maxName = 253): ApiProblem[] {
  const out: ApiProblem[] = [];
  const p = (path: string, message: string) => out.push({ path: `${at}.${path}`, message });
  if (meta === undefined) return out;
  if (!meta || typeof meta !== 'object' || Array.isArray(meta)) return [{ path: at, message: 'must be an object' }];
  const m = meta as Record<string, unknown>;
  for (const f of ['name', 'generateName', 'namespace'] as const) {
    if (m[f] !== undefined && typeof m[f] !== 'string') p(f, 'must be a string');
  }
  const name = typeof m.name === 'string' ? m.name : undefined;
  if (name !== undefined && name !== '') {
    if (nameRule === 'path-segment') for (const e of pathSegmentProblems(name, false)) p('name', e);
    else if (nameRule === 'dns-1035-label' && !(name.length <= 63 && DNS1035_LABEL.test(name)))
      p('name', 'must be a DNS-1035 label (a lowercase letter first, then letters, digits, -; at most 63 characters)');
    else if (nameRule === 'dns-label' && !isDnsLabel(name))
      p('name', 'must be a DNS-1123 label (lowercase letters, digits, -; at most 63 characters)');
    else if (nameRule === 'dns-subdomain' && !isDnsSubdomain(name))
      p('name', 'must be a DNS-1123 subdomain (lowercase letters, digits, - and .; at most 253 characters)');
    else if (name.length > maxName) p('name', `must be at most ${maxName} characters (is ${name.length})`);
  } else if (!m.generateName) {
    if (nameRule !== 'path-segment') p('name', 'is required');
  }
  if (typeof m.generateName === 'string' && m.generateName)
    for (const e of pathSegmentProblems(m.generateName, true)) p('generateName', e);
  if (typeof m.namespace === 'string' && m.namespace && !isDnsLabel(m.namespace))
    p('namespace', 'must be a DNS-1123 label (lowercase letters, digits, -; at most 63 characters)');
  if (m.labels !== undefined) {
    if (!isStringMap(m.labels)) p('labels', 'must map strings to strings');
    else
      for (const [k, v] of Object.entries(m.labels)) {
        if (!isQualifiedName(k)) p(`labels[${k}]`, 'key must be a qualified name ([prefix/]name, name ≤ 63 chars)');
        if (!isLabelValue(v))
          p(
            `labels[${k}]`,
            `value ${JSON.stringify(v)} must be at most 63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit`,
          );
      }
  }
  if (m.annotations !== undefined) {
    if (!isStringMap(m.annotations)) p('annotations', 'must map strings to strings');
    else {
      let size = 0;
      for (const [k, v] of Object.entries(m.annotations)) {
        if (!isQualifiedName(k.toLowerCase())) p(`annotations[${k}]`, 'key must be a qualified name');
        size += k.length + v.length;
      }
      if (size > 256 * 1024) p('annotations', `total size ${size} exceeds 262144 bytes`);
    }
  }
  if (m.finalizers !== undefined) {
    if (!Array.isArray(m.finalizers) || m.finalizers.some((f) => typeof f !== 'string'))
      p('finalizers', 'must be a list of strings');
    else
      for (const f of m.finalizers as string[])
        if (!isQualifiedName(f)) p('finalizers', `${f} is not a qualified name`);
  }
  return out;
}

/** apiVersion/kind of an embedded resource (apiextensions' validateEmbeddedResource). */
function typeMetaProblems(obj: Record<string, unknown>, at: string): ApiProblem[] {
  const out: ApiProblem[] = [];
  const { apiVersion, kind } = obj;
  if (typeof apiVersion !== 'string' || !apiVersion)
    out.push({ path: `${at}.apiVersion`, message: 'must be a non-empty string' });
  else if (apiVersion.split('/').length > 2 || apiVersion.startsWith('/') || apiVersion.endsWith('/'))
    out.push({ path: `${at}.apiVersion`, message: 'must be "version" or "group/version"' });
  if (typeof kind !== 'string' || !kind) out.push({ path: `${at}.kind`, message: 'must be a non-empty string' });
  else if (kind.length > 63 || !DNS1035_LABEL.test(kind.toLowerCase()))
    out.push({ path: `${at}.kind`, message: 'may have mixed case, but should otherwise be a DNS-1035 label' });
  return out;
}

/**
 * What the API server checks on a PostCreateHook template as written (before rendering): the CRD marks templates
 * `x-kubernetes-embedded-resource`, so apiVersion, kind and ObjectMeta are validated with `{{.Var}}` still in place.
 */
export function embeddedTemplateProblems(template: Record<string, unknown>, at: string): ApiProblem[] {
  return [
    ...typeMetaProblems(template, at),
    ...objectMetaProblems(template.metadata, `${at}.metadata`, 'path-segment'),
  ];
}

const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
/** A valid ConfigMap/Secret data key. */
export const isConfigKey = (k: string): boolean => k.length <= 253 && CONFIG_KEY.test(k) && k !== '.' && k !== '..';

/** What the API server checks on a concrete object's type, metadata (names by kind) and ConfigMap/Secret keys. */
export function objectProblems(obj: Record<string, any>): ApiProblem[] {
  const rule: NameRule =
    NAME_RULES[obj.kind] ?? (BUILT_IN_API_VERSIONS.has(obj.apiVersion) ? 'dns-subdomain' : 'path-segment');
  const out = [...typeMetaProblems(obj, ''), ...objectMetaProblems(obj.metadata, 'metadata', rule, MAX_NAME[obj.kind])];
  if (obj.apiVersion === 'v1' && (obj.kind === 'ConfigMap' || obj.kind === 'Secret')) {
    for (const field of ['data', 'stringData', 'binaryData']) {
      for (const k of Object.keys(obj[field] ?? {})) {
        if (!isConfigKey(k))
          out.push({ path: `${field}[${k}]`, message: "key must consist of letters, digits, '-', '_' or '.'" });
      }
    }
  }
  return out.map((x) => ({ ...x, path: x.path.replace(/^\./, '') }));
}

/** Where a pod spec sits in each workload kind (as pod-security-admission looks for it). */
export function podTemplatesOf(obj: Record<string, any>): { path: string; meta: any; spec: any }[] {
  const s = obj.spec;
  switch (obj.kind) {
    case 'Pod':
      return [{ path: 'spec', meta: obj.metadata, spec: s }];
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'ReplicationController':
    case 'Job':
    case 'PodTemplate':
      return obj.kind === 'PodTemplate'
        ? [{ path: 'template.spec', meta: obj.template?.metadata, spec: obj.template?.spec }]
        : [{ path: 'spec.template.spec', meta: s?.template?.metadata, spec: s?.template?.spec }];
    case 'CronJob':
      return [
        {
          path: 'spec.jobTemplate.spec.template.spec',
          meta: s?.jobTemplate?.spec?.template?.metadata,
          spec: s?.jobTemplate?.spec?.template?.spec,
        },
      ];
    default:
      return [];
  }
}

const BASELINE_CAPS = new Set([
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
]);
const SELINUX_TYPES = new Set(['', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t']);
const RESTRICTED_VOLUMES = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);

/**
 * The Pod Security Standards checks of pod-security-admission (latest policy versions) for one pod spec:
 * what a namespace enforcing `level` refuses. Returns one message per violation, naming the containers.
 */
export function podSecurityViolations(meta: any, spec: any, level: PodSecurityLevel): string[] {
  if (level === 'privileged' || !spec || typeof spec !== 'object') return [];
  const out: string[] = [];
  const psc = spec.securityContext ?? {};
  const containers: { kind: string; c: any }[] = [
    ...(spec.initContainers ?? []).map((c: any) => ({ kind: 'initContainer', c })),
    ...(spec.containers ?? []).map((c: any) => ({ kind: 'container', c })),
    ...(spec.ephemeralContainers ?? []).map((c: any) => ({ kind: 'ephemeralContainer', c })),
  ];
  const which = (pred: (c: any) => boolean) =>
    containers
      .filter(({ c }) => pred(c))
      .map(({ c }) => `"${c?.name}"`)
      .join(', ');
  const check = (bad: string, what: string) => bad && out.push(`${what} (${bad})`);

  // baseline
  if (
    psc.windowsOptions?.hostProcess === true ||
    containers.some(({ c }) => c?.securityContext?.windowsOptions?.hostProcess === true)
  )
    out.push('hostProcess containers are not allowed');
  for (const f of ['hostNetwork', 'hostPID', 'hostIPC'] as const)
    if (spec[f] === true) out.push(`${f}=true is not allowed`);
  check(
    which((c) => c?.securityContext?.privileged === true),
    'privileged containers are not allowed',
  );
  check(
    which((c) => (c?.securityContext?.capabilities?.add ?? []).some((x: string) => !BASELINE_CAPS.has(x))),
    'capabilities beyond the baseline set may not be added',
  );
  const hostPathVolumes = (spec.volumes ?? []).filter((v: any) => v?.hostPath).map((v: any) => `"${v.name}"`);
  if (hostPathVolumes.length) out.push(`hostPath volumes are not allowed (${hostPathVolumes.join(', ')})`);
  check(
    which((c) => (c?.ports ?? []).some((p: any) => p?.hostPort)),
    'hostPort is not allowed',
  );
  const badAppArmor = (p: any) => p?.type !== undefined && p.type !== 'RuntimeDefault' && p.type !== 'Localhost';
  const annotations = meta?.annotations ?? {};
  if (
    badAppArmor(psc.appArmorProfile) ||
    containers.some(({ c }) => badAppArmor(c?.securityContext?.appArmorProfile)) ||
    Object.entries(annotations).some(
      ([k, v]) =>
        k.startsWith('container.apparmor.security.beta.kubernetes.io/') &&
        v !== 'runtime/default' &&
        !String(v).startsWith('localhost/'),
    )
  )
    out.push('AppArmor profiles other than RuntimeDefault/Localhost are not allowed');
  const badSelinux = (o: any) => !!o && (!SELINUX_TYPES.has(o.type ?? '') || !!o.user || !!o.role);
  if (badSelinux(psc.seLinuxOptions) || containers.some(({ c }) => badSelinux(c?.securityContext?.seLinuxOptions)))
    out.push('seLinuxOptions type/user/role are not allowed');
  check(
    which((c) => c?.securityContext?.procMount !== undefined && c.securityContext.procMount !== 'Default'),
    'procMount must be Default',
  );
  if (
    psc.seccompProfile?.type === 'Unconfined' ||
    containers.some(({ c }) => c?.securityContext?.seccompProfile?.type === 'Unconfined')
  )
    out.push('seccompProfile Unconfined is not allowed');
  const badSysctls = (psc.sysctls ?? []).map((s: any) => s?.name).filter((n: string) => !SAFE_SYSCTLS.has(n));
  if (badSysctls.length) out.push(`unsafe sysctls are not allowed (${badSysctls.join(', ')})`);
  if (level === 'baseline') return out;

  // restricted
  const restrictedVolumes = (spec.volumes ?? [])
    .filter((v: any) => !Object.keys(v ?? {}).some((k) => RESTRICTED_VOLUMES.has(k)))
    .map((v: any) => `"${v?.name}"`);
  if (restrictedVolumes.length)
    out.push(
      `only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected and secret volumes are allowed (${restrictedVolumes.join(', ')})`,
    );
  check(
    which((c) => c?.securityContext?.allowPrivilegeEscalation !== false),
    'securityContext.allowPrivilegeEscalation must be false',
  );
  const nonRoot = (c: any) => c?.securityContext?.runAsNonRoot ?? psc.runAsNonRoot;
  check(
    which((c) => nonRoot(c) !== true),
    'runAsNonRoot must be true (pod or container securityContext)',
  );
  if (psc.runAsUser === 0) out.push('runAsUser=0 is not allowed');
  check(
    which((c) => c?.securityContext?.runAsUser === 0),
    'runAsUser=0 is not allowed',
  );
  const seccomp = (c: any) => c?.securityContext?.seccompProfile?.type ?? psc.seccompProfile?.type;
  check(
    which((c) => seccomp(c) !== 'RuntimeDefault' && seccomp(c) !== 'Localhost'),
    'seccompProfile.type must be RuntimeDefault or Localhost (pod or container securityContext)',
  );
  check(
    which((c) => !(c?.securityContext?.capabilities?.drop ?? []).includes('ALL')),
    'capabilities.drop must include ALL',
  );
  check(
    which((c) => (c?.securityContext?.capabilities?.add ?? []).some((x: string) => x !== 'NET_BIND_SERVICE')),
    'only NET_BIND_SERVICE may be added to capabilities',
  );
  return out;
}

/** The value at a field path such as `metadata.labels[app.kubernetes.io/name]`, for error messages. */
export function valueAtPath(obj: unknown, path: string): unknown {
  let v: any = obj;
  for (const part of path.split(/\.(?![^[]*\])|\[|\]/).filter(Boolean)) v = v?.[part];
  return v;
}
